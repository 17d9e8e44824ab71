//! The connection's deadlines, in one table (quinn-proto's `TimerTable` is
//! the model).
//!
//! Each kind of deadline has one slot. A slot is set only while its timer
//! can fire (the heartbeat, Pong and fragment timers while the connection
//! is open, the close timer while we wait for the peer's Close), so the
//! next deadline is simply the earliest set slot, and leaving a state stops
//! the timers that belonged to it.

use crate::time::Instant;

/// A kind of deadline. The declaration order is the order in which
/// [`Connection::handle_timeout`](crate::Connection::handle_timeout) fires
/// expired timers: the failures first, the heartbeat last (a Ping is not
/// queued on a connection that is failing anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Our Close went out; the peer's is overdue: the connection is closed
    /// (`Error::CloseTimeout`).
    Close,
    /// Our heartbeat Ping went out; its Pong is overdue: fail with 1001
    /// (`Error::PongTimeout`). Primed when the Ping is queued, started
    /// when it is handed out: a Pong cannot be overdue for a Ping that
    /// still waits to be written.
    Pong,
    /// A fragmented message is being received; it is overdue: fail with
    /// 1008 (`Error::FragmentTimeout`).
    Fragment,
    /// The next heartbeat Ping is due.
    Ping,
}

impl Timer {
    /// Every kind, in firing order.
    pub(crate) const ALL: [Self; 4] = [Self::Close, Self::Pong, Self::Fragment, Self::Ping];
}

/// When each [`Timer`] expires, if it runs.
///
/// Which timers run is a bit set beside the deadlines rather than an
/// `Option` per slot: stopping them all is then one store (the connection
/// does it on every way out of its open state), and the table is half the
/// size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerTable {
    deadlines: [Instant; 4],
    /// Bit `timer as u8` is set while `timer` runs.
    running: u8,
}

impl TimerTable {
    /// A table with no timer running, made at `now`. (The idle slots hold
    /// `now` rather than zero: zeroing the table would link a `memset` on
    /// a Cortex-M.)
    pub(crate) const fn new(now: Instant) -> Self {
        Self {
            deadlines: [now; 4],
            running: 0,
        }
    }

    /// Starts (or restarts) `timer`, to expire at `deadline`.
    pub(crate) fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer as usize] = deadline;
        self.running |= bit(timer);
    }

    /// Sets `timer`'s deadline without starting it ([`TimerTable::start`]
    /// does, later).
    pub(crate) fn prime(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer as usize] = deadline;
    }

    /// Starts `timer` with the deadline it was given last.
    pub(crate) fn start(&mut self, timer: Timer) {
        self.running |= bit(timer);
    }

    /// The deadline `timer` was given last (whether or not it runs).
    pub(crate) const fn deadline(&self, timer: Timer) -> Instant {
        self.deadlines[timer as usize]
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.running &= !bit(timer);
    }

    /// Stops every timer.
    pub(crate) fn stop_all(&mut self) {
        self.running = 0;
    }

    /// Whether `timer` runs.
    pub(crate) const fn is_set(&self, timer: Timer) -> bool {
        self.running & bit(timer) != 0
    }

    /// Whether `timer` runs and has expired at `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.is_set(timer) && now >= self.deadlines[timer as usize]
    }

    /// The earliest deadline of all running timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for timer in Timer::ALL {
            if self.is_set(timer) {
                let deadline = self.deadlines[timer as usize];
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        next
    }
}

/// `timer`'s bit in [`TimerTable::running`].
const fn bit(timer: Timer) -> u8 {
    1 << timer as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_deadline_is_the_earliest_running_one() {
        let mut t = TimerTable::new(Instant::ZERO);
        assert_eq!(t.next(), None);
        t.set(Timer::Ping, Instant::from_secs(30));
        t.set(Timer::Pong, Instant::from_secs(10));
        assert_eq!(t.next(), Some(Instant::from_secs(10)));
        assert!(t.is_expired(Timer::Pong, Instant::from_secs(10)));
        assert!(!t.is_expired(Timer::Pong, Instant::from_millis(9_999)));
        assert!(!t.is_expired(Timer::Close, Instant::from_secs(99)));
        t.stop(Timer::Pong);
        assert!(!t.is_set(Timer::Pong));
        assert_eq!(t.next(), Some(Instant::from_secs(30)));
        t.stop_all();
        assert_eq!(t.next(), None);
        assert!(!t.is_set(Timer::Ping));
        // Primed, a timer does not run until started.
        t.prime(Timer::Pong, Instant::from_secs(5));
        assert_eq!(t.next(), None);
        assert!(!t.is_expired(Timer::Pong, Instant::from_secs(9)));
        t.start(Timer::Pong);
        assert_eq!(t.next(), Some(Instant::from_secs(5)));
        assert_eq!(t.deadline(Timer::Pong), Instant::from_secs(5));
    }

    #[test]
    fn firing_order_is_the_declaration_order() {
        for (i, timer) in Timer::ALL.iter().enumerate() {
            assert_eq!(*timer as usize, i);
        }
    }
}
