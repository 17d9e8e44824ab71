//! snowsocket's examples (run them from the workspace root):
//!
//! - `cargo run --release --example echo_server` — echo on `ws://127.0.0.1:9001`
//!   (flags: `--addr`, `--tls-cert`/`--tls-key` for `wss://`,
//!   `--ping-interval`, `--pong-timeout`, `--max-message-size`); Ctrl-C shuts
//!   down gracefully.
//! - `cargo run --release --example echo_client -- URL [--ca PEM]` — echoes
//!   what a server sends, exits 0 after a clean close.
//! - `cargo run --release --example tls_demo` — `wss://` end to end with a
//!   certificate made at start-up.
//! - `cargo run --release --example broadcast [-- --demo]` — chat-style
//!   broadcast, sent from a separate thread.
//! - `cargo run --release --example tokio_echo_server [-- --addr HOST:PORT]` —
//!   the async driver on tokio, a task per connection;
//!   `tokio_echo_client URL` is its client.
//! - `cargo run --release --example hyper_upgrade [-- --addr HOST:PORT]` — one
//!   port for plain HTTP (`/health`, a small page) and WebSocket (`/ws`,
//!   upgraded through hyper, then the async driver).
//!
//! The library part holds code shared with other examples.
pub mod embedded_tls;
pub mod hyper_ws;
pub mod tokio_ws;
