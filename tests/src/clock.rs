//! Virtual time.

use super::*;

/// A clock that moves only when told to: a shared handle (clones see the
/// same time), usable from several threads. Implements
/// [`snowsocket_core::Clock`].
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(start.as_micros())),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.micros.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Instant) {
        self.micros.store(to.as_micros(), Ordering::SeqCst);
    }
}

impl snowsocket_core::Clock for ManualClock {
    fn now(&mut self) -> Instant {
        Self::now(self)
    }
}
