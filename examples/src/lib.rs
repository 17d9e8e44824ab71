//! snowsocket's examples (run them from the workspace root):
//!
//! - `cargo run --release --example echo_server` — echo on `ws://127.0.0.1:9001`
//!   (flags: `--addr`, `--tls-cert`/`--tls-key` for `wss://`,
//!   `--ping-interval`, `--pong-timeout`, `--max-message-size`; `--help`);
//!   Ctrl-C or SIGTERM shuts down gracefully.
//! - `cargo run --release --example tls_demo` — `wss://` end to end with a
//!   certificate made at start-up.
//! - `cargo run --release --example chat [-- --demo]` — a browser chat: its
//!   page and its WebSocket on one port, messages relayed to every other
//!   member of a room (alone, or shared through Redis with `--redis`).
//! - `cargo run --release --example embedded_tls_client` — the `no_std`
//!   `wss://` client of `snowsocket-embedded-tls`, on a host.
//! - `cargo run --release --example tokio_echo_server [-- --addr HOST:PORT]` —
//!   the async driver on tokio, a task per connection;
//!   `tokio_echo_client URL` is its client.
//! - `cargo run --release --example hyper_upgrade [-- --addr HOST:PORT]` — one
//!   port for plain HTTP (`/health`, a small page) and WebSocket (`/ws`,
//!   upgraded through hyper, then the async driver).
//!
//! The command-line client is its own package (`cli/`, `snowsocket URL`).
//! Every example answers `--help`; those on snowsocket-server log through
//! `env_logger` (`RUST_LOG`, see [`cli`]).
//!
//! The library part holds code shared by the examples.
pub mod cli;
pub mod hyper_ws;
pub mod tokio_ws;
