//! The server-wide memory budgets (one for message reassembly, one for
//! unsent output), and the message buffer that draws on the first.
//!
//! A message that does not arrive in one piece is assembled in its
//! connection's buffer, which grows as the bytes come. Each growth is taken
//! from the budget first; when the budget has no room, the buffer refuses
//! the bytes and the core fails the connection with 1009 (message too big
//! for now), before the memory is spent. So many connections each stalled
//! inside a large frame cannot pin more than the budget together.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use snowsocket_core::MessageBuffer;

/// Bytes of reassembly memory the whole server may hold.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` bytes, if they fit.
    pub(crate) fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Takes `n` bytes whether or not they fit (what must be held anyway).
    pub(crate) fn charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    /// The bound.
    pub(crate) const fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A growable message buffer whose capacity is drawn from a [`Budget`].
#[derive(Debug)]
pub(crate) struct Budgeted {
    buf: Vec<u8>,
    budget: Arc<Budget>,
}

impl Budgeted {
    pub(crate) const fn new(budget: Arc<Budget>) -> Self {
        Self {
            buf: Vec::new(),
            budget,
        }
    }

    /// Gives back all capacity (call when the connection goes idle).
    pub(crate) fn release(&mut self) {
        self.budget.give(self.buf.capacity());
        self.buf = Vec::new();
    }
}

impl Drop for Budgeted {
    fn drop(&mut self) {
        self.budget.give(self.buf.capacity());
    }
}

impl MessageBuffer for Budgeted {
    fn max_len(&self) -> usize {
        usize::MAX
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    fn clear(&mut self) {
        self.buf.clear();
    }

    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()> {
        let needed = self.buf.len().checked_add(data.len()).ok_or(())?;
        let capacity = self.buf.capacity();
        if needed > capacity {
            // Double (amortised growth) if the budget allows, else just
            // what is needed; the budget is charged before allocating.
            let doubled = needed.max(capacity.saturating_mul(2)).max(1024);
            let target = if self.budget.take(doubled - capacity) {
                doubled
            } else if self.budget.take(needed - capacity) {
                needed
            } else {
                return Err(());
            };
            if self.buf.try_reserve_exact(target - self.buf.len()).is_err() {
                self.budget.give(target - capacity);
                return Err(());
            }
            // `reserve_exact` gives exactly `target` for bytes; should it
            // give more, the budget is charged for it too.
            let extra = self.buf.capacity() - target;
            if extra > 0 {
                self.budget.charge(extra);
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_refused_past_the_budget_and_given_back_on_release() {
        let budget = Arc::new(Budget::new(10_000));
        let mut a = Budgeted::new(Arc::clone(&budget));
        let mut b = Budgeted::new(Arc::clone(&budget));
        assert!(a.extend_from_slice(&[1; 6_000]).is_ok());
        assert!(budget.used() >= 6_000);
        // b cannot get 6,000 more while a holds its buffer.
        assert!(b.extend_from_slice(&[2; 6_000]).is_err());
        assert!(b.as_slice().is_empty());
        a.release();
        assert_eq!(budget.used(), 0);
        assert!(b.extend_from_slice(&[2; 6_000]).is_ok());
        drop(b);
        assert_eq!(budget.used(), 0);
        drop(a);
        assert_eq!(budget.used(), 0);
    }
}
