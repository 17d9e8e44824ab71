//! What a [`Rooms`](crate::Rooms) is given: where Redis is, who this
//! instance is, and the bounds of its fan-out.

use core::time::Duration;

/// The configuration of [`Rooms::start`](crate::Rooms::start).
///
/// ```
/// use snowsocket_pubsub::RoomsConfig;
///
/// let config = RoomsConfig::new("a").redis("redis://127.0.0.1:6379/");
/// assert_eq!(config.instance, "a");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RoomsConfig {
    /// This instance's name, for the logs and the join notice. Give each
    /// instance of a cluster its own.
    pub instance: String,
    /// The Redis URL (`redis://HOST:PORT/`); `None` serves every room on
    /// this instance alone, without Redis.
    pub redis_url: Option<String>,
    /// The prefix of each room's Redis channel: room `lobby` is published
    /// on `{prefix}lobby`. Default `snowsocket:room:`.
    pub channel_prefix: String,
    /// The first wait before reconnecting to Redis; it doubles on each
    /// failure up to [`RoomsConfig::backoff_max`]. Default 100 ms.
    pub backoff_min: Duration,
    /// The longest wait between reconnection attempts. Default 5 s.
    pub backoff_max: Duration,
    /// How many messages may wait for the publishing thread. Past it a
    /// message is delivered on this instance only, and a warning logged.
    /// Default 65,536.
    pub publish_queue: usize,
    /// How long a Redis command (connect, subscribe, publish) may take
    /// before the connection is given up as broken. Default 2 s.
    pub command_timeout: Duration,
    /// Whether each member gets a text notice (see
    /// [`Rooms::join`](crate::Rooms::join)) once its room is live. Default
    /// true.
    pub notice: bool,
}

impl RoomsConfig {
    /// The defaults, for the instance `name`, without Redis.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            redis_url: None,
            channel_prefix: "snowsocket:room:".to_owned(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            publish_queue: 65_536,
            command_timeout: Duration::from_secs(2),
            notice: true,
        }
    }

    /// Sets [`RoomsConfig::redis_url`].
    #[must_use]
    pub fn redis(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Sets [`RoomsConfig::notice`].
    #[must_use]
    pub const fn notice(mut self, on: bool) -> Self {
        self.notice = on;
        self
    }
}

/// Doubling waits between reconnection attempts, from `min` to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) const fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next attempt (and doubles the one after).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Back to the shortest wait, after a success.
    pub(crate) const fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..4).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(100));
    }
}
