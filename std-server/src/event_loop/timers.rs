//! A loop's timers: one deadline per connection (the earliest of its core's
//! timers, its handshake, write-stall and linger deadlines), in a heap.
//!
//! A connection's armed deadline is its earliest entry: the time it is
//! sure to be woken. A deadline that moves earlier pushes a new entry (the
//! old one stays in the heap and is skipped when it comes up: it no longer
//! matches the armed deadline), so re-arming costs one push and no search.
//! One that moves later, or goes, pushes nothing: the armed entry wakes the
//! connection early, and the loop then looks at its deadline again (see
//! `Loop::fire_timers`). A deadline that moves later on every write
//! or read (the write-stall deadline while output waits for a peer that
//! takes it slowly) thus costs one entry per deadline period, not one per
//! move.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use snowsocket_core::Instant;

/// The deadlines of a loop's connections.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Deadline, token, and the low half of the connection's id: 16 bytes
    /// an entry (an idle connection has one or two). The id only tells a
    /// reused token's new connection from the old one, and the caller
    /// also checks the connection's armed deadline.
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

/// The low half of a connection id, as kept in the heap.
pub(crate) const fn short_id(id: u64) -> u32 {
    id as u32
}

impl Timers {
    /// Makes sure connection `id` at `token` is woken by `deadline`:
    /// pushes an entry unless `armed` (its earliest entry, updated here)
    /// comes first anyway.
    pub(crate) fn arm(
        &mut self,
        armed: &mut Option<Instant>,
        deadline: Option<Instant>,
        token: usize,
        id: u64,
    ) {
        let Some(at) = deadline else {
            return;
        };
        if armed.is_some_and(|armed| armed <= at) {
            return;
        }
        // A loop's tokens index its connections: far below 2^32.
        if let Ok(token) = u32::try_from(token) {
            *armed = Some(at);
            self.heap.push(Reverse((at, token, short_id(id))));
        }
    }

    /// The earliest entry's time (possibly a stale one: waking for it is
    /// harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`: its time, token and connection id. The
    /// caller checks it against the connection's armed deadline.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let entry = self
                    .heap
                    .pop()
                    .map(|Reverse((at, token, id))| (at, token as usize, id));
                // Give back what a burst of entries (stale ones included)
                // left, once most of it is unused.
                if self.heap.capacity() > 64 && self.heap.len() < self.heap.capacity() / 4 {
                    self.heap.shrink_to(self.heap.len() * 2);
                }
                entry
            }
            _ => None,
        }
    }

    /// The number of entries (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The entries the heap has room for.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_that_moves_later_pushes_nothing() {
        let mut timers = Timers::default();
        let mut armed = None;
        // A write-stall deadline pushed on by every write that makes
        // progress: the first entry wakes the connection, which then
        // re-arms once.
        for ms in 0..1000 {
            timers.arm(&mut armed, Some(Instant::from_millis(10_000 + ms)), 1, 10);
        }
        assert_eq!(timers.len(), 1);
        assert_eq!(armed, Some(Instant::from_secs(10)));
        // Gone: the entry stays (a harmless early wake).
        timers.arm(&mut armed, None, 1, 10);
        assert_eq!(armed, Some(Instant::from_secs(10)));
        assert_eq!(
            timers.pop_due(Instant::from_secs(10)),
            Some((Instant::from_secs(10), 1, 10))
        );
        // The caller clears `armed` when its entry comes up, and re-arms.
        armed = None;
        timers.arm(&mut armed, Some(Instant::from_millis(10_999)), 1, 10);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next(), Some(Instant::from_millis(10_999)));
    }

    #[test]
    fn rearming_skips_nothing_and_stale_entries_are_returned_for_the_caller_to_drop() {
        let mut timers = Timers::default();
        let mut armed = None;
        timers.arm(&mut armed, Some(Instant::from_secs(5)), 1, 10);
        // The same deadline again: no new entry.
        timers.arm(&mut armed, Some(Instant::from_secs(5)), 1, 10);
        assert_eq!(timers.len(), 1);
        timers.arm(&mut armed, Some(Instant::from_secs(3)), 1, 10);
        assert_eq!(armed, Some(Instant::from_secs(3)));
        assert_eq!(timers.next(), Some(Instant::from_secs(3)));
        assert_eq!(timers.pop_due(Instant::from_secs(2)), None);
        assert_eq!(
            timers.pop_due(Instant::from_secs(6)),
            Some((Instant::from_secs(3), 1, 10))
        );
        // The stale 5 s entry comes up too; it no longer matches `armed`.
        assert_eq!(
            timers.pop_due(Instant::from_secs(6)),
            Some((Instant::from_secs(5), 1, 10))
        );
        assert_eq!(timers.pop_due(Instant::from_secs(6)), None);
    }

    #[test]
    fn the_heap_gives_back_room_once_a_burst_has_drained() {
        let mut timers = Timers::default();
        for token in 0..4096_usize {
            let mut armed = None;
            let at = Instant::from_secs(1 + token as u64 % 7);
            timers.arm(&mut armed, Some(at), token, token as u64);
        }
        let full = timers.capacity();
        assert!(full >= 4096);
        let mut popped = 0;
        while timers.pop_due(Instant::from_secs(100)).is_some() {
            popped += 1;
        }
        assert_eq!(popped, 4096);
        assert!(
            timers.capacity() <= 64 * 2,
            "capacity {}",
            timers.capacity()
        );
        // A connection whose id differs above 32 bits keeps its low half.
        let mut armed = None;
        timers.arm(&mut armed, Some(Instant::from_secs(1)), 3, (7 << 32) | 9);
        assert_eq!(
            timers.pop_due(Instant::from_secs(2)),
            Some((Instant::from_secs(1), 3, 9))
        );
    }
}
