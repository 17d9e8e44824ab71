//! Every limit and timer of the server, with its default, in one place.

use std::sync::Arc;

use core::time::Duration;

use snowsocket_core::handshake::HandshakeLimits;
use snowsocket_core::Config;

use crate::PerMessageDeflate;

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
    /// How long output may wait with the peer taking none of it (it does
    /// not read). Default 10 s; then the connection is failed (within about
    /// this time, whatever the send calls) and reported with
    /// [`CloseCause::WriteTimeout`](crate::CloseCause::WriteTimeout). A
    /// peer that keeps reading, however slowly, is not failed.
    pub write_timeout: Duration,
    /// The most open (upgraded) connections at once. Default 10,000.
    /// An upgrade request over the limit gets `HTTP 503` with
    /// `Retry-After: 1` (under `wss://` after the TLS handshake), answered
    /// on the event loop like any other. Connections in their handshake
    /// have their own bounds ([`ServerConfig::max_pending_handshakes`]).
    pub max_connections: usize,
    /// How long [`ServerHandle::shutdown`](crate::ServerHandle::shutdown)
    /// waits for peers to answer its Close 1001 before closing their
    /// sockets. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The stack size of each event-loop thread (the handler's callbacks
    /// run on them). Default 1 MiB of address space, of which only the
    /// pages touched cost memory.
    pub thread_stack_size: usize,
    /// The size of each event loop's read buffer (shared by its
    /// connections: an idle connection holds none). Default 256 KiB, so
    /// that frames of 64 KiB and more usually arrive whole and are handed
    /// to the handler where they were read, without a copy. A
    /// message that does not arrive whole in one read is assembled in its
    /// connection's message buffer, which grows up to the message-size
    /// limit and is given back when the connection goes quiet.
    pub read_buffer_size: usize,
    /// How many event loops (threads) serve connections. Default: the
    /// number of available cores. Each loop owns the connections it
    /// accepted and runs their callbacks.
    pub event_loops: usize,
    /// The most bytes a connection may have sent and not yet written to
    /// its socket (its outbox). Default 16 MiB + 16 (a whole 16 MiB
    /// message). A send that would pass it returns
    /// [`SendError::Full`](crate::SendError::Full) and queues nothing
    /// (a single message larger than this is still accepted into an empty
    /// outbox); [`Handler::on_drain`](crate::Handler::on_drain) runs once
    /// the outbox has been written out.
    pub max_buffered_bytes: usize,
    /// The most connections in their opening handshake (TCP accepted, TLS
    /// and upgrade request not complete) at once. Default 1,024. Over it,
    /// new connections are closed at once, so handshakes cannot crowd out
    /// established connections. Handshaking connections do not count
    /// toward [`ServerConfig::max_connections`].
    pub max_pending_handshakes: usize,
    /// The most connections in their handshake from one IP address.
    /// Default 256.
    pub max_handshakes_per_ip: usize,
    /// The memory all connections together may hold for messages being
    /// reassembled (fragmented, or arriving in pieces). Default: a quarter
    /// of physical memory (1 GiB where it cannot be read). A message that
    /// would need more is refused: its connection is closed with 1009.
    pub memory_budget: usize,
    /// The TLS configuration: `Some` serves `wss://`. Default `None`.
    /// See [`tls::server_config_from_pem`](crate::tls::server_config_from_pem).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// permessage-deflate (RFC 7692): accepted when a client offers it and
    /// this is set ([`ServerConfig::permessage_deflate`]). Default `None`
    /// (declined).
    pub deflate: Option<PerMessageDeflate>,
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
            read_buffer_size: 256 * 1024,
            event_loops: std::thread::available_parallelism().map_or(1, usize::from),
            max_buffered_bytes: (16 << 20) + 16,
            max_pending_handshakes: 1024,
            max_handshakes_per_ip: 256,
            memory_budget: physical_memory().map_or(1 << 30, |m| m / 4),
            tls: None,
            deflate: None,
        }
    }
}

/// The machine's physical memory, where it can be read.
fn physical_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
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
    /// Sets [`ServerConfig::event_loops`].
    #[must_use]
    pub const fn event_loops(mut self, loops: usize) -> Self {
        self.event_loops = loops;
        self
    }
    /// Sets [`ServerConfig::max_buffered_bytes`].
    #[must_use]
    pub const fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }
    /// Sets [`ServerConfig::max_pending_handshakes`].
    #[must_use]
    pub const fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max;
        self
    }
    /// Sets [`ServerConfig::max_handshakes_per_ip`].
    #[must_use]
    pub const fn max_handshakes_per_ip(mut self, max: usize) -> Self {
        self.max_handshakes_per_ip = max;
        self
    }
    /// Sets [`ServerConfig::memory_budget`].
    #[must_use]
    pub const fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Checks that every value can work: a zero where something must
    /// happen, or values that contradict each other, are an error naming
    /// the field. [`Server::bind`](crate::Server::bind) checks it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.connection;
        let checks: [(bool, &'static str); 11] = [
            (self.event_loops == 0, "event_loops is 0"),
            (self.max_buffered_bytes == 0, "max_buffered_bytes is 0"),
            (
                self.max_pending_handshakes == 0,
                "max_pending_handshakes is 0",
            ),
            (
                self.max_handshakes_per_ip == 0,
                "max_handshakes_per_ip is 0",
            ),
            (self.max_connections == 0, "max_connections is 0"),
            (self.handshake_timeout.is_zero(), "handshake_timeout is 0"),
            (self.write_timeout.is_zero(), "write_timeout is 0"),
            (c.max_message_size == 0, "connection.max_message_size is 0"),
            (c.max_frame_size == 0, "connection.max_frame_size is 0"),
            (
                self.handshake_limits.max_request_size == 0
                    || self.handshake_limits.max_headers == 0,
                "handshake_limits has a zero limit",
            ),
            (
                c.ping_interval.is_some_and(|i| i.is_zero()),
                "connection.ping_interval is 0 (use None to turn the heartbeat off)",
            ),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, what)) => Err(ConfigError(what)),
            None => Ok(()),
        }
    }

    /// Accepts permessage-deflate (RFC 7692) with these options when a
    /// client offers it; see [`PerMessageDeflate`].
    #[must_use]
    pub const fn permessage_deflate(mut self, options: PerMessageDeflate) -> Self {
        self.deflate = Some(options);
        self
    }

    /// Serves `wss://` with this TLS configuration.
    #[must_use]
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A [`ServerConfig`] value that cannot work; the message names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError(&'static str);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid server configuration: {}", self.0)
    }
}

impl core::error::Error for ConfigError {}

impl From<ConfigError> for std::io::Error {
    fn from(e: ConfigError) -> Self {
        Self::new(std::io::ErrorKind::InvalidInput, e)
    }
}
