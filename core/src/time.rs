//! The crate's own monotonic clock value.
//!
//! The core never reads a clock: every call that depends on time takes `now`
//! as an argument, so tests drive virtual time and timer behaviour is
//! deterministic.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on a monotonic clock, counted in microseconds from an arbitrary
/// origin chosen by the caller (boot, process start, a test's zero).
///
/// Only differences between two `Instant`s from the same clock mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The clock's origin.
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Milliseconds since the origin (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// `d` in whole microseconds, saturating at `u64::MAX`. Computed from the
/// seconds and the sub-second part rather than with `Duration::as_micros`,
/// whose `u128` arithmetic costs flash on 32-bit targets.
fn duration_micros(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

/// `micros + d`, saturating; out of line because every timer computes one.
#[inline(never)]
fn later(micros: u64, d: &Duration) -> u64 {
    micros.saturating_add(duration_micros(*d))
}

impl Instant {
    /// `self + *d` (saturating), the duration by reference: what the
    /// connection's timers use, so that each call passes a pointer to a
    /// configured duration rather than the duration itself.
    pub(crate) fn after(self, d: &Duration) -> Self {
        Self {
            micros: later(self.micros, d),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at the end of the clock instead of overflowing.
    fn add(self, rhs: Duration) -> Self {
        Self {
            micros: later(self.micros, &rhs),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    /// Saturates at the origin instead of underflowing.
    fn sub(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_sub(duration_micros(rhs)),
        }
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// The duration between two instants, zero if `rhs` is later.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1_500);
        assert_eq!(t.as_micros(), 1_500_000);
        assert_eq!((t + Duration::from_millis(500)).as_millis(), 2_000);
        assert_eq!(t - Duration::from_secs(10), Instant::ZERO);
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
        assert_eq!(
            Instant::from_secs(3) - Instant::from_secs(1),
            Duration::from_secs(2)
        );
        assert_eq!(
            Instant::from_secs(1) - Instant::from_secs(3),
            Duration::ZERO
        );
    }

    #[test]
    fn duration_conversion_matches_as_micros() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_999),
            Duration::from_micros(1),
            Duration::new(5, 123_456_789),
            Duration::from_secs(u64::MAX / 1_000_000),
            Duration::new(u64::MAX / 1_000_000, 999_999_999),
            Duration::new(u64::MAX / 1_000_000 + 1, 0),
            Duration::MAX,
        ] {
            let expected = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            assert_eq!(duration_micros(d), expected, "{d:?}");
            assert_eq!((Instant::ZERO + d).as_micros(), expected, "{d:?}");
        }
    }
}
