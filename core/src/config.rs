//! A connection's limits and timers, with their documented defaults.

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
