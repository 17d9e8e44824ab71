//! snowsocket-server: the std shell around [`snowsocket_core`] — a `ws://`
//! and `wss://` server on event loops, and a blocking client.
//!
//! ```no_run
//! use snowsocket_server::{Handler, ConnectionHandle, Message, Server, ServerConfig};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
//!         let _ = match message {
//!             Message::Text(text) => conn.send_text(text),
//!             Message::Binary(data) => conn.send_binary(data),
//!         };
//!     }
//! }
//!
//! let server = Server::bind("127.0.0.1:9001", ServerConfig::default())?;
//! let handle = server.spawn(Echo)?;
//! // ... later: Close 1001 to everyone, wait, join every thread.
//! handle.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! ```text
//! accept ─► loop k (one thread, mio::Poll) owns: its connections, their timers,
//!           one read buffer, an inbox
//!   readable ─► (rustls) ─► snowsocket-core ─► Handler callbacks, inline ─► outbox
//!   writable ─► write the output (TLS records sealed as they go)
//!   timer    ─► heartbeat pings; pong, close, handshake, write-stall deadlines
//!   inbox    ─► sends and closes from other threads (the loop is woken)
//! ```
//!
//! - **Threads**: [`ServerConfig::event_loops`] event loops (default: one
//!   per core), and nothing else: no thread per connection, per heartbeat
//!   or per wake-up. Each loop owns the connections it accepted, over
//!   `ws://` and `wss://`, from the TCP accept (TLS handshake, HTTP upgrade
//!   within [`ServerConfig::handshake_timeout`] however the bytes arrive)
//!   to the socket's close. The client's connections share one more loop.
//! - **Callbacks must not block**: they run on their connection's loop,
//!   one at a time (see [`Handler`]). Long work goes to your own threads,
//!   which send through the handle.
//! - **Sends never block.** A [`ConnectionHandle`] (`Clone + Send + Sync`)
//!   encodes the frame into the connection's outbox and tells its loop;
//!   the outbox is bounded ([`ServerConfig::max_buffered_bytes`]): past it
//!   a send returns [`SendError::Full`] and [`Handler::on_drain`] says when
//!   it has drained. All outboxes together are bounded too
//!   ([`ServerConfig::output_budget`], [`SendError::OverBudget`]), so peers
//!   that send and never read cannot take the server's memory. [`ServerHandle::broadcast`] frames a message once for
//!   many connections and skips (and reports) the slow ones. A peer that
//!   takes no data for [`ServerConfig::write_timeout`] is failed; no other
//!   connection notices.
//! - **Closes that peers receive**: after our Close (ours, a failure, a
//!   shutdown) the socket's write side is shut and the peer's input is
//!   read and dropped until its EOF or the close timeout, so the kernel
//!   never resets a connection with a Close in flight; under TLS a
//!   close_notify goes first. `on_close` runs once, when the socket is
//!   closed.
//! - **Limits**: message and frame sizes (1009), fragments (1008),
//!   [`ServerConfig::max_connections`] (503), bounds on pending handshakes
//!   (all, and per IP), a server-wide [`ServerConfig::memory_budget`] for
//!   messages being reassembled (1009 past it).
//! - **Idle cost**: an idle connection holds its core state, its socket,
//!   its handle's shared state and (under TLS) rustls's session state; no
//!   buffers: reads go into its loop's buffer and only an incomplete frame
//!   header (or TLS record) is kept (rustls's unbuffered API, over buffers
//!   of ours freed while idle).
//! - **HTTP beside the WebSocket**, on the same port: a request that asks
//!   for no WebSocket goes to [`Handler::on_request`] (a health check, the
//!   page that opens the WebSocket, a redirect; default: 426), answered
//!   and closed; [`Accept::reject`] takes headers (`WWW-Authenticate`,
//!   `Location`); [`Server::from_listener`] serves a listener bound
//!   elsewhere.
//! - **Logging** through the `log` facade; the library prints nothing.
//!
//! # Features
//!
//! - `tls` (default): `wss://` with rustls and its *ring* provider, for
//!   the server (`ServerConfig::tls`, the `tls` module) and the client.
//!   Without it the crate serves and connects over `ws://` only, and
//!   rustls and *ring* are not built.
//! - `webpki-roots` (default, implies `tls`): the client trusts the Mozilla
//!   roots (`webpki-roots`) unless told not to. Without it, only the roots
//!   given in [`client::ClientConfig`].
//!
//! The client and the server share one engine (the event loop, the
//! outbox, [`ConnectionHandle`]), so they live in one crate: a client-only
//! program pays for the engine it runs on, not for a second one.
//! `snowsocket-server = { version = "0.1", default-features = false }` is a
//! `ws://` server and client with no TLS stack at all.

mod close;
mod config;
mod deflate;
mod event_loop;
mod forward;
mod handle;
mod handler;
pub mod http;
mod rng;
mod server;
mod spare;
mod transport;

mod session;

pub mod client;
#[cfg(feature = "tls")]
pub mod tls;

pub use close::{CloseCause, CloseInfo, SendError};
pub use config::{ConfigError, ServerConfig};
pub use deflate::PerMessageDeflate;
pub use handle::{ConnectionHandle, Message};
pub use handler::{on_message, Accept, Context, Handler, MessageFn, UpgradeRequest};
pub use http::{HttpRequest, HttpResponse, ResponseError};
pub use server::{broadcast, thread_name, Broadcast, Server, ServerHandle};

/// Connection ids, unique in the process.
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// A fresh connection id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
}

#[cfg(feature = "tls")]
pub use rustls;
pub use snowsocket_core::handshake::HandshakeLimits;
pub use snowsocket_core::{CloseCode, Config, MessageKind, ProtocolError};
