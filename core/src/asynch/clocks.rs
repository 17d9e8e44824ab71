//! [`Clock`](super::Clock)s for the runtimes users run: tokio (feature
//! `tokio`) and embassy (feature `embassy-time`).

use crate::time::Instant;

/// tokio's clock (feature `tokio`): instants count from the clock's
/// creation, and waits are `tokio::time::sleep_until` (so they follow
/// tokio's paused test time too).
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl super::Clock for TokioClock {
    fn now(&self) -> Instant {
        let micros = self.origin.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    async fn wait_until(&self, deadline: Instant) {
        let at = self
            .origin
            .checked_add(core::time::Duration::from_micros(deadline.as_micros()));
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            // Past the end of tokio's clock: never.
            None => core::future::pending().await,
        }
    }
}

/// embassy's clock (feature `embassy-time`): `embassy_time::Instant`
/// (ticks since boot) and `embassy_time::Timer::at`.
#[cfg(feature = "embassy-time")]
#[cfg_attr(docsrs, doc(cfg(feature = "embassy-time")))]
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl super::Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_micros(embassy_time::Instant::now().as_micros())
    }

    async fn wait_until(&self, deadline: Instant) {
        embassy_time::Timer::at(embassy_time::Instant::from_micros(deadline.as_micros())).await;
    }
}
