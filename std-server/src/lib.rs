//! snowsocket-server: the std shell around [`snowsocket_core`] — a threaded
//! `ws://` and `wss://` server and a blocking client.
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
//! - **Threads**: one thread per active connection (stack size
//!   [`ServerConfig::thread_stack_size`], 1 MiB reserved by default, a few
//!   pages of it touched), the accept thread, and one poller thread for idle
//!   connections; every one is joined by [`ServerHandle::shutdown`].
//! - **Idle connections give their thread back.** A connection that
//!   received nothing for [`ServerConfig::release_idle_after`] (1 s) parks:
//!   the poller thread (mio: epoll, kqueue) watches its socket and its
//!   timers, and it gets a thread again when bytes arrive, a heartbeat
//!   timer is due or it is closed from another thread. Busy connections
//!   never pay for this; idle ones cost a few KiB instead of a thread.
//! - **No send waits behind a read.** The connection's thread owns the
//!   socket's read half and blocks in `read` with no lock held. It locks the
//!   session (the core `Connection` and the rustls session) only to feed
//!   the bytes it read and take one event out; callbacks run with no lock
//!   held. Senders lock the session to encode (and encrypt), and a separate
//!   writer lock orders the writes, so frames and TLS records go out in the
//!   order they were made. See the `engine` module source for the details.
//! - **Heartbeat**: the read timeout is set to the core's next timer
//!   (`poll_timeout`), so pings go out on time and dead peers are dropped
//!   after ping interval + pong timeout.
//! - **Backpressure**: nothing is queued without bound. A send writes before
//!   it returns; when the peer stops reading, a write that makes no progress
//!   for [`ServerConfig::write_timeout`] fails that connection
//!   ([`CloseCause::WriteTimeout`]) and no other. What a slow peer costs is
//!   the frame being written, never a growing queue. Sends made by a handler on the
//!   connection's own thread are written together once the bytes read so far
//!   are handled: one system call for a batch of replies.
//! - **Transport**: [`Transport`] is the one seam between plain TCP and
//!   rustls. The socket is shared (`Arc<TcpStream>`; `&TcpStream` reads and
//!   writes), so a connection costs one file descriptor.
//! - **Idle cost**: while active, a 1 KiB read buffer (grown on demand up
//!   to 64 KiB), message and output buffers that grow with use, and the
//!   thread. Once parked, its buffers are freed too: what is left is the
//!   core's state, the socket, and the rustls session under TLS.
//! - **Logging** through the `log` facade; the library prints nothing.

mod close;
mod config;
mod engine;
mod handler;
#[cfg_attr(not(unix), path = "park_stub.rs")]
mod park;
mod rng;
mod server;
mod transport;

pub mod client;
pub mod tls;

pub use close::{CloseCause, CloseInfo, SendError};
pub use config::ServerConfig;
pub use engine::{ConnectionHandle, Message};
pub use handler::{on_message, Accept, Context, Handler, MessageFn, UpgradeRequest};
pub use server::{thread_name, Server, ServerHandle};
pub use transport::Transport;

pub use rustls;
pub use snowsocket_core::handshake::HandshakeLimits;
pub use snowsocket_core::{CloseCode, Config, MessageKind, ProtocolError};
