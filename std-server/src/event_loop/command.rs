//! What other threads tell a loop: its inbox and the waker that interrupts
//! its `poll`.

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use mio::Waker;

use super::conn::Adopted;

/// A request to a loop.
pub(crate) enum Command {
    /// Connection `id` at `token` has output in its outbox.
    Flush { token: usize, id: u64 },
    /// Connection `id` at `token` may read again (see
    /// `ConnectionHandle::resume_reading`).
    Resume { token: usize, id: u64 },
    /// Take over an established client connection.
    Adopt(Box<Adopted>),
    /// Close every connection with 1001 and stop once they are gone, or at
    /// the shutdown deadline.
    Shutdown,
}

/// The part of a loop that other threads reach.
pub(crate) struct LoopShared {
    inbox: Mutex<Vec<Command>>,
    waker: Waker,
    /// Set when the loop has been woken and has not drained its inbox yet:
    /// a burst of sends costs one wake-up.
    woken: AtomicBool,
}

thread_local! {
    /// The loop running on this thread (its `LoopShared`'s address), 0 on
    /// other threads: a loop's own sends need no wake-up.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

impl LoopShared {
    pub(crate) fn new(waker: Waker) -> Self {
        Self {
            inbox: Mutex::new(Vec::new()),
            waker,
            woken: AtomicBool::new(false),
        }
    }

    fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Marks the calling thread as this loop's.
    pub(crate) fn enter(&self) {
        CURRENT.with(|c| c.set(self.key()));
    }

    fn inbox(&self) -> MutexGuard<'_, Vec<Command>> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `command`; wakes the loop unless this is the loop's thread
    /// (it drains its inbox after every callback batch).
    pub(crate) fn send(&self, command: Command) {
        self.inbox().push(command);
        if CURRENT.with(Cell::get) != self.key() && !self.woken.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake an event loop: {e}");
            }
        }
    }

    /// Connection `id` at `token` has output.
    pub(crate) fn flush_later(&self, token: usize, id: u64) {
        self.send(Command::Flush { token, id });
    }

    /// Takes every queued command (into `into`, which is cleared first).
    pub(crate) fn drain(&self, into: &mut Vec<Command>) {
        self.woken.store(false, Ordering::Release);
        into.clear();
        core::mem::swap(&mut *self.inbox(), into);
    }
}
