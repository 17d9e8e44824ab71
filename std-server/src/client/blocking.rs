//! [`BlockingSender`]: sends that wait for room in the outbox, woken by
//! the connection's drains and its end.

use core::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use snowsocket_core::MessageKind;

use super::{Route, Sender};
use crate::close::SendError;

/// A handle to send on a client connection from any thread that waits for
/// room in the outbox
/// ([`Client::blocking_sender`](super::Client::blocking_sender)).
/// `Clone + Send + Sync`.
#[derive(Clone)]
pub struct BlockingSender {
    pub(super) handle: Sender,
    pub(super) route: Arc<Route>,
}

impl fmt::Debug for BlockingSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingSender")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl BlockingSender {
    /// Sends a message of `kind`; while the outbox has no room for it (a
    /// plain send would fail with [`SendError::Full`], see
    /// [`ClientConfig::max_buffered_bytes`](super::ClientConfig::max_buffered_bytes),
    /// or [`SendError::OverBudget`]),
    /// waits until the outbox has been written out, then sends. It waits
    /// as long as the peer reads:
    /// a peer that stops reading is failed after the write timeout, and
    /// the send then returns [`SendError::Closed`], as it does once the
    /// connection is closing.
    pub fn send(&self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        loop {
            // Read before trying: a drain between the refusal and the wait
            // is then seen.
            let seen = *self.route.room.changes();
            match self.handle.send(kind, payload) {
                Err(e) if e.waits_for_drain() => self.route.room.wait_change(seen),
                other => return other,
            }
        }
    }

    /// Sends a text message, waiting for room (see [`BlockingSender::send`]).
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// The non-blocking handle: close, ping, `buffered_amount`.
    pub fn handle(&self) -> &Sender {
        &self.handle
    }
}

/// Counts the outbox's drains and the connection's end, for
/// [`BlockingSender::send`] to wait on.
#[derive(Default)]
pub(super) struct Room {
    changes: Mutex<u64>,
    changed: Condvar,
}

impl Room {
    fn changes(&self) -> MutexGuard<'_, u64> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn notify(&self) {
        *self.changes() += 1;
        self.changed.notify_all();
    }

    /// Waits until [`Room::notify`] has run since `seen` was read.
    fn wait_change(&self, seen: u64) {
        let mut changes = self.changes();
        while *changes == seen {
            changes = self
                .changed
                .wait(changes)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
