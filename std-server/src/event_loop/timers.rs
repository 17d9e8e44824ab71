//! A loop's timers: one deadline per connection (the earliest of its core's
//! timers, its handshake, write-stall and linger deadlines), in a heap.
//!
//! A connection whose deadline changes pushes a new entry; the old one stays
//! in the heap and is skipped when it comes up (it no longer matches the
//! connection's armed deadline), so re-arming costs one push and no search.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use snowsocket_core::Instant;

/// The deadlines of a loop's connections.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    /// Arms `deadline` for connection `id` at `token`, if it differs from
    /// `armed` (the deadline armed before, updated here).
    pub(crate) fn arm(
        &mut self,
        armed: &mut Option<Instant>,
        deadline: Option<Instant>,
        token: usize,
        id: u64,
    ) {
        if *armed != deadline {
            *armed = deadline;
            if let Some(at) = deadline {
                self.heap.push(Reverse((at, token, id)));
            }
        }
    }

    /// The earliest entry's time (possibly a stale one: waking for it is
    /// harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`: its time, token and connection id. The
    /// caller checks it against the connection's armed deadline.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// The number of entries (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
