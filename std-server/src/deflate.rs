//! permessage-deflate (RFC 7692) for servers and clients: the options
//! ([`PerMessageDeflate`], snowsocket-core's, which the async driver uses
//! too; re-exported), and each connection's sending half, which the
//! connection's handles share (compression happens on the sender's
//! thread, in the order messages are sent).

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use snowsocket_core::deflate::PerMessageDeflate;
use snowsocket_core::deflate::{Compressor, DeflateParams};
use snowsocket_core::Role;

/// What a compressor with context takeover keeps between messages (a
/// 15-bit window at memory level 6, as measured; smaller windows keep
/// less, and are charged as much).
const COMPRESSOR_KEPT: usize = 294_000;

/// What an inflater with context takeover keeps between messages (its
/// 32 KiB window, state and 8 KiB output scratch, as measured).
const INFLATER_KEPT: usize = 56_000;

/// The memory a server's connection keeps for permessage-deflate with
/// `params` between messages, charged to the server's memory budget for
/// the connection's life: the compressor with server context takeover,
/// the inflater with client context takeover. Without context takeover
/// neither is kept between messages.
pub(crate) const fn kept_memory(params: &DeflateParams) -> usize {
    let mut kept = 0;
    if !params.server_no_context_takeover {
        kept += COMPRESSOR_KEPT;
    }
    if !params.client_no_context_takeover {
        kept += INFLATER_KEPT;
    }
    kept
}

/// A connection's sending half of permessage-deflate, shared by its
/// handles.
pub(crate) struct DeflateTx {
    /// Messages shorter than this are sent uncompressed.
    pub(crate) min_size: usize,
    /// `None` once the connection ended ([`DeflateTx::release`]).
    compressor: Mutex<Option<Compressor>>,
}

impl DeflateTx {
    pub(crate) fn new(role: Role, params: &DeflateParams, options: &PerMessageDeflate) -> Self {
        Self {
            min_size: options.min_size,
            compressor: Mutex::new(Some(Compressor::new(role, params, options.level))),
        }
    }

    /// Locks the compressor (a panic elsewhere never poisons a send),
    /// `None` once the connection ended. Hold it from compressing until
    /// the frame is in the outbox: frames must go out in the order they
    /// were compressed.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Compressor>> {
        self.compressor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection ended: the compressor's memory (charged to the
    /// memory budget until now) goes, even while the application keeps
    /// handles to the connection.
    pub(crate) fn release(&self) {
        drop(self.lock().take());
    }
}
