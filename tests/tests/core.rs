//! snowsocket-core's behaviour through its public API: one test binary, one
//! module per RFC 6455 topic (the files under `core/`). Shared helpers live
//! in the `snowsocket_tests` library.
// A test binary: its helper functions (not only the #[test] ones) panic on
// purpose when an expectation fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "core/close.rs"]
mod close;
#[path = "core/driver.rs"]
mod driver;
#[path = "core/framing.rs"]
mod framing;
#[path = "core/fuzz_replay.rs"]
mod fuzz_replay;
#[path = "core/handshake.rs"]
mod handshake;
#[path = "core/heartbeat.rs"]
mod heartbeat;
#[path = "core/limits.rs"]
mod limits;
#[path = "core/linger.rs"]
mod linger;
#[path = "core/masking.rs"]
mod masking;
#[path = "core/no_std.rs"]
mod no_std;
#[path = "core/reassembly.rs"]
mod reassembly;
#[path = "core/utf8.rs"]
mod utf8;
#[path = "core/violations.rs"]
mod violations;

/// The fuzz oracle, shared with `core/fuzz` (replayed by `fuzz_replay`).
#[allow(unreachable_pub, dead_code)]
#[path = "../../core/fuzz/src/oracle.rs"]
mod oracle;
