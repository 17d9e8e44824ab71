//! Every limit and timer of the server, with its default, in one place.

#[cfg(feature = "tls")]
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
    /// peer that keeps reading, however slowly, is not failed: while
    /// output waits for it, this timeout alone judges it, and the
    /// connection's own deadlines (heartbeat, pong, fragment, close
    /// handshake) wait until the backlog is written. A Close requested
    /// meanwhile follows the data sent before it; its close-handshake
    /// deadline counts from when it is written.
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
    /// reassembled (fragmented, or arriving in pieces) and for the
    /// permessage-deflate state they keep between messages (with context
    /// takeover, about 294 KB for the compressor and 56 KB for the
    /// inflater, charged from the upgrade on). Default: a quarter of
    /// physical memory (1 GiB where it cannot be read). A message that
    /// would need more is refused: its connection is closed with 1009. A
    /// connection whose deflate state does not fit is accepted without
    /// permessage-deflate.
    pub memory_budget: usize,
    /// The output all connections together may hold: bytes sent and not
    /// yet written to their sockets (their outboxes, see
    /// [`ServerConfig::max_buffered_bytes`]). Default: a quarter of
    /// physical memory (1 GiB where it cannot be read). Once it is spent,
    /// a send to a connection that already has output waiting returns
    /// [`SendError::OverBudget`](crate::SendError::OverBudget) and queues
    /// nothing ([`Handler::on_drain`](crate::Handler::on_drain) runs once
    /// that connection's outbox has been written out); a send into an
    /// empty outbox is still accepted, so every connection can make
    /// progress. A connection's first 64 KiB of output are not counted
    /// (ordinary traffic then never touches the budget's counter, which
    /// the loops share). Peers that send and never read thus hold at most
    /// this much together (plus 64 KiB and one message each), not
    /// [`ServerConfig::max_buffered_bytes`] each.
    pub output_budget: usize,
    /// The TLS configuration: `Some` serves `wss://`. Default `None`.
    /// See [`tls::server_config_from_pem`](crate::tls::server_config_from_pem).
    /// (Feature `tls`.)
    #[cfg(feature = "tls")]
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
            output_budget: physical_memory().map_or(1 << 30, |m| m / 4),
            #[cfg(feature = "tls")]
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
    /// Sets [`ServerConfig::output_budget`].
    #[must_use]
    pub const fn output_budget(mut self, bytes: usize) -> Self {
        self.output_budget = bytes;
        self
    }

    /// Checks that every value can work: a zero where something must
    /// happen, or values that contradict each other, are an error naming
    /// the field ([`Config::validate`] for [`ServerConfig::connection`]).
    /// [`Server::bind`](crate::Server::bind) checks it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use snowsocket_server::{Config, ServerConfig};
    ///
    /// let config = ServerConfig::default()
    ///     .connection(Config::DEFAULT.pong_timeout(Duration::ZERO));
    /// let error = config.validate().unwrap_err();
    /// assert_eq!(error.field(), "connection.pong_timeout");
    /// assert_eq!(error.to_string(), "invalid configuration: connection.pong_timeout is 0");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let limits = &self.handshake_limits;
        let zero: [(bool, &'static str); 13] = [
            (self.event_loops == 0, "event_loops"),
            (self.max_buffered_bytes == 0, "max_buffered_bytes"),
            (self.max_pending_handshakes == 0, "max_pending_handshakes"),
            (self.max_handshakes_per_ip == 0, "max_handshakes_per_ip"),
            (self.max_connections == 0, "max_connections"),
            (self.handshake_timeout.is_zero(), "handshake_timeout"),
            (self.write_timeout.is_zero(), "write_timeout"),
            (self.read_buffer_size == 0, "read_buffer_size"),
            (self.memory_budget == 0, "memory_budget"),
            (self.output_budget == 0, "output_budget"),
            (self.thread_stack_size == 0, "thread_stack_size"),
            (
                limits.max_request_size == 0,
                "handshake_limits.max_request_size",
            ),
            (limits.max_headers == 0, "handshake_limits.max_headers"),
        ];
        if let Some((_, field)) = zero.iter().find(|(bad, _)| *bad) {
            return Err(ConfigError::zero(field));
        }
        self.connection.validate().map_err(ConfigError::connection)
    }

    /// Accepts permessage-deflate (RFC 7692) with these options when a
    /// client offers it; see [`PerMessageDeflate`].
    ///
    /// ```
    /// use snowsocket_server::{PerMessageDeflate, ServerConfig};
    ///
    /// let config = ServerConfig::default().permessage_deflate(
    ///     PerMessageDeflate::default()
    ///         .server_no_context_takeover(true) // no compressor kept between messages
    ///         .min_size(256)
    ///         .level(1),
    /// );
    /// assert!(config.deflate.is_some());
    /// ```
    #[must_use]
    pub const fn permessage_deflate(mut self, options: PerMessageDeflate) -> Self {
        self.deflate = Some(options);
        self
    }

    /// Serves `wss://` with this TLS configuration. (Feature `tls`.)
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// A configuration value that cannot work (a [`ServerConfig`]'s, or a
/// [`ClientConfig`](crate::client::ClientConfig)'s); [`ConfigError::field`]
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, with its path (`connection.pong_timeout`).
    field: &'static str,
}

impl ConfigError {
    /// `field` is 0.
    pub(crate) const fn zero(field: &'static str) -> Self {
        Self { field }
    }

    /// A field of the `connection` ([`Config`]).
    pub(crate) fn connection(e: snowsocket_core::InvalidConfig) -> Self {
        // The paths of every field `Config::validate` can name.
        const FIELDS: [&str; 7] = [
            "connection.max_message_size",
            "connection.max_frame_size",
            "connection.max_fragments",
            "connection.fragment_timeout",
            "connection.ping_interval",
            "connection.pong_timeout",
            "connection.close_timeout",
        ];
        let field = FIELDS
            .iter()
            .find(|path| path.strip_prefix("connection.") == Some(e.field()))
            .copied()
            .unwrap_or(e.field());
        Self { field }
    }

    /// The field that cannot be 0, with its path
    /// (`"connection.max_message_size"`).
    pub const fn field(&self) -> &'static str {
        self.field
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid configuration: {} is 0", self.field)?;
        if self.field.ends_with("ping_interval") {
            f.write_str(" (use None to turn the heartbeat off)")?;
        } else if self.field.ends_with("fragment_timeout") {
            f.write_str(" (use None for no limit)")?;
        }
        Ok(())
    }
}

impl core::error::Error for ConfigError {}

impl From<ConfigError> for std::io::Error {
    fn from(e: ConfigError) -> Self {
        Self::new(std::io::ErrorKind::InvalidInput, e)
    }
}
