//! snowsocket's examples (run them from the workspace root):
//!
//! - `cargo run --release --example echo_server` — echo on `ws://127.0.0.1:9001`
//!   (flags: `--addr`, `--tls-cert`/`--tls-key` for `wss://`,
//!   `--ping-interval`, `--pong-timeout`, `--max-message-size`; `--help`);
//!   Ctrl-C or SIGTERM shuts down gracefully.
//! - `cargo run --release --example tls_demo` — `wss://` end to end with a
//!   certificate made at start-up.
//! - `cargo run --release --example broadcast [-- --demo]` — chat-style
//!   broadcast, sent from a separate thread.
//!
//! The command-line client is its own package (`cli/`, `snowsocket URL`).
//! Every example answers `--help` and logs through `env_logger`
//! (`RUST_LOG`, see [`cli`]).
//!
//! The library part holds code shared with other examples.
pub mod cli;
pub mod embedded_tls;
