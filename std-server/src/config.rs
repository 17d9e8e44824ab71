//! Every limit and timer of the server, with its default, in one place.

use std::sync::Arc;

use core::time::Duration;

use snowsocket_core::handshake::HandshakeLimits;
use snowsocket_core::Config;

/// The server's configuration. [`ServerConfig::default`] gives the
/// documented defaults; the builder methods change one field each:
///
/// ```
/// use std::time::Duration;
/// use snowsocket_server::{Config, ServerConfig};
///
/// let config = ServerConfig::default()
///     .max_connections(500)
///     .write_timeout(Duration::from_secs(5))
///     .connection(Config::DEFAULT.ping_interval(Some(Duration::from_secs(20))));
/// assert_eq!(config.max_connections, 500);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The WebSocket connection's limits and timers (snowsocket-core's
    /// [`Config`]): max frame and message size (16 MiB, over → close 1009),
    /// max fragments (131,072), fragment timeout (60 s), heartbeat ping
    /// interval (30 s), pong timeout (10 s), close-handshake timeout (5 s).
    pub connection: Config,
    /// The opening handshake's size limits: 8 KiB of request header block,
    /// 64 headers (over → HTTP 431).
    pub handshake_limits: HandshakeLimits,
    /// How long a client has, from the TCP accept, to complete the TLS
    /// handshake (if any) and send its whole upgrade request. Default 10 s.
    /// A slow or silent client costs only its own connection.
    pub handshake_timeout: Duration,
    /// How long a write may make no progress because the peer does not
    /// read (the socket's send timeout). Default 10 s; then the connection
    /// is failed and reported with
    /// [`CloseCause::WriteTimeout`](crate::CloseCause::WriteTimeout). A
    /// peer that keeps reading, however slowly, is not failed.
    pub write_timeout: Duration,
    /// The most connections at once (handshaking ones included). Default
    /// 10,000. Connections over the limit get `HTTP 503` with
    /// `Retry-After: 1` (under `wss://` after the TLS handshake), answered
    /// one at a time by a helper thread that gives each at most 1 s; when
    /// 32 are already waiting for it, more are closed without an answer.
    pub max_connections: usize,
    /// How long [`ServerHandle::shutdown`](crate::ServerHandle::shutdown)
    /// waits for peers to answer its Close 1001 before closing their
    /// sockets. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The stack size of each connection thread. Default 1 MiB of address
    /// space, of which only the pages a thread touches cost memory (a few).
    /// Smaller stacks save address space, not memory (32-bit targets with
    /// many connections may want 128 KiB: enough for rustls handshakes and
    /// the examples' handlers). It also bounds how many finished threads'
    /// stacks the C library keeps for reuse (glibc: 40 MiB of them), which
    /// stay resident: larger stacks, fewer kept.
    pub thread_stack_size: usize,
    /// The initial size of a connection's read buffer. Default 1 KiB; it
    /// doubles whenever a read fills it (up to 64 KiB, or to twice a binary
    /// frame of up to 128 KiB, which then arrives whole and is handed out
    /// without a copy; one read can bring the next such frame too). Other
    /// messages that do not arrive whole (text, larger or fragmented
    /// messages) are assembled in a separate buffer that grows up to the
    /// message-size limit. An idle connection frees it (see
    /// [`ServerConfig::release_idle_after`]).
    pub read_buffer_size: usize,
    /// How long an open connection may receive no data before its thread
    /// is given back. Default 1 s; `None` keeps one thread per open
    /// connection for its whole life. A heartbeat does not count as data:
    /// a connection woken up by it (our Ping, the peer's Pong, or a Ping
    /// from the peer, which is answered) gives its thread back again at
    /// once. More Pings and Pongs within this time do count, so a flood of
    /// them keeps one thread instead of starting one per read.
    ///
    /// An idle connection's socket is then watched by the server's one
    /// poller thread (epoll, kqueue: Unix only), its read buffers are freed,
    /// and a thread is started for it again as soon as bytes arrive, a timer
    /// is due (heartbeat ping, pong, close or fragment deadline) or it is
    /// closed from another thread. An idle connection then costs its core
    /// state and socket (and TLS session), a few KiB, instead of a thread
    /// and its stack. Sends from other threads to an idle connection are
    /// written at once, as always. Callbacks for one connection still run
    /// one at a time, but not always on the same thread.
    pub release_idle_after: Option<Duration>,
    /// The TLS configuration: `Some` serves `wss://`. Default `None`.
    /// See [`tls::server_config_from_pem`](crate::tls::server_config_from_pem).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            connection: Config::DEFAULT,
            handshake_limits: HandshakeLimits::DEFAULT,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(5),
            thread_stack_size: 1024 * 1024,
            read_buffer_size: 1024,
            release_idle_after: Some(Duration::from_secs(1)),
            tls: None,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::connection`].
    #[must_use]
    pub const fn connection(mut self, config: Config) -> Self {
        self.connection = config;
        self
    }
    /// Sets [`ServerConfig::handshake_limits`].
    #[must_use]
    pub const fn handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.handshake_limits = limits;
        self
    }
    /// Sets [`ServerConfig::handshake_timeout`].
    #[must_use]
    pub const fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::write_timeout`].
    #[must_use]
    pub const fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::max_connections`].
    #[must_use]
    pub const fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }
    /// Sets [`ServerConfig::shutdown_timeout`].
    #[must_use]
    pub const fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
    /// Sets [`ServerConfig::thread_stack_size`].
    #[must_use]
    pub const fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread_stack_size = bytes;
        self
    }
    /// Sets [`ServerConfig::read_buffer_size`].
    #[must_use]
    pub const fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }
    /// Sets [`ServerConfig::release_idle_after`].
    #[must_use]
    pub const fn release_idle_after(mut self, after: Option<Duration>) -> Self {
        self.release_idle_after = after;
        self
    }
    /// Serves `wss://` with this TLS configuration.
    #[must_use]
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}
