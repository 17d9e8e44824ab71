//! A connection's limits and timers, with their documented defaults.

use core::fmt;
use core::time::Duration;

/// Limits and timers of a connection. Every field has a documented default
/// ([`Config::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted. Default 16 MiB. A larger declared
    /// length fails the connection with 1009 before any byte of it is stored.
    pub max_frame_size: usize,
    /// The largest message accepted (all fragments together). Default 16 MiB;
    /// a message of exactly this size is accepted. Over → 1009, checked
    /// before appending. A fixed message buffer that is smaller lowers the
    /// effective limit to its size.
    pub max_message_size: usize,
    /// The most frames one fragmented message may consist of, empty ones
    /// included. Default 131,072 (as the `ws` package); over → 1008.
    pub max_fragments: u32,
    /// How long a fragmented message may take from its first frame to its
    /// last. Default 60 s; `None` disables it. Over → 1008.
    pub fragment_timeout: Option<Duration>,
    /// How often a heartbeat Ping is sent. Default 30 s; `None` disables
    /// the heartbeat.
    pub ping_interval: Option<Duration>,
    /// How long the matching Pong may take before the connection is failed
    /// with 1001 ("pong timeout" with the `reasons` feature). Default 10 s.
    ///
    /// It runs once the Ping is handed out to be written
    /// ([`Connection::poll_transmit`](crate::Connection::poll_transmit)):
    /// a Ping still waiting in the connection (behind the rest of a long
    /// frame being written) is not counted against the peer. It counts
    /// from when the Ping was queued (the heartbeat's
    /// [`Connection::handle_timeout`](crate::Connection::handle_timeout)),
    /// which is when it is handed out if the caller writes control frames
    /// at once; a caller that hands it out later tells the connection when
    /// ([`Connection::heartbeat_sent`](crate::Connection::heartbeat_sent)),
    /// as the async driver's split halves do. While it waits behind a
    /// frame, the peer must still take some of our bytes in each
    /// `pong_timeout` ([`Connection::heartbeat_held`](crate::Connection::heartbeat_held)).
    /// Once the Ping is written the
    /// peer must read up to it in time: a peer that stops reading in the
    /// middle of our writes is found dead this way by the drivers here;
    /// snowsocket-server stops the deadlines while output waits for the
    /// peer and judges the peer by its progress (`write_timeout`) instead.
    ///
    /// A caller should judge it (call `handle_timeout`) only once it has
    /// read what the peer sent before the deadline: a Pong still unread in
    /// the socket answered in time. The drivers here do (see
    /// [`crate::driver`]), as does snowsocket-server.
    pub pong_timeout: Duration,
    /// How long the peer may take to answer our Close. Default 5 s.
    pub close_timeout: Duration,
}

impl Config {
    /// The defaults, usable in `const` contexts.
    pub const DEFAULT: Self = Self {
        max_frame_size: 16 << 20,
        max_message_size: 16 << 20,
        max_fragments: 131_072,
        fragment_timeout: Some(Duration::from_secs(60)),
        ping_interval: Some(Duration::from_secs(30)),
        pong_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
    };

    /// Sets [`Config::max_frame_size`].
    pub const fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_message_size`].
    pub const fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`Config::max_fragments`].
    pub const fn max_fragments(mut self, frames: u32) -> Self {
        self.max_fragments = frames;
        self
    }
    /// Sets [`Config::fragment_timeout`].
    pub const fn fragment_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.fragment_timeout = timeout;
        self
    }
    /// Sets [`Config::ping_interval`].
    pub const fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }
    /// Sets [`Config::pong_timeout`].
    pub const fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }
    /// Sets [`Config::close_timeout`].
    pub const fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Config {
    /// Checks that every value can work: a zero where something must
    /// happen (a size limit, a timeout, a heartbeat interval given as
    /// `Some`) is an error naming the field. The blocking driver checks it
    /// before its handshake; the std shell when a server or client is built.
    ///
    /// ```
    /// use core::time::Duration;
    /// use snowsocket_core::Config;
    ///
    /// assert!(Config::DEFAULT.validate().is_ok());
    /// let bad = Config::DEFAULT.pong_timeout(Duration::ZERO);
    /// assert_eq!(bad.validate().unwrap_err().field(), "pong_timeout");
    /// ```
    pub const fn validate(&self) -> Result<(), InvalidConfig> {
        let field = if self.max_message_size == 0 {
            "max_message_size"
        } else if self.max_frame_size == 0 {
            "max_frame_size"
        } else if self.max_fragments == 0 {
            "max_fragments"
        } else if is_some_zero(self.fragment_timeout) {
            "fragment_timeout"
        } else if is_some_zero(self.ping_interval) {
            "ping_interval"
        } else if self.pong_timeout.is_zero() {
            "pong_timeout"
        } else if self.close_timeout.is_zero() {
            "close_timeout"
        } else {
            return Ok(());
        };
        Err(InvalidConfig { field })
    }
}

const fn is_some_zero(value: Option<Duration>) -> bool {
    matches!(value, Some(d) if d.is_zero())
}

/// A [`Config`] value that cannot work: a zero limit or timeout (use `None`
/// to turn an optional timer off). See [`Config::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidConfig {
    field: &'static str,
}

impl InvalidConfig {
    /// The field's name (`"pong_timeout"`).
    pub const fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is 0", self.field)
    }
}

impl core::error::Error for InvalidConfig {}
