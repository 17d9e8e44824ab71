//! The oracle of snowsocket-core's fuzz targets, as a library so that the
//! targets (in `fuzz_targets/`) share it. The stable-toolchain replay of the
//! corpus in `tests/tests/core.rs` includes `oracle.rs` directly.

pub mod oracle;
