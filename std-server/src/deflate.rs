//! permessage-deflate (RFC 7692) for servers and clients: the options
//! ([`PerMessageDeflate`], snowsocket-core's, which the async driver uses
//! too; re-exported), and each connection's sending half, which the
//! connection's handles share (compression happens on the sender's
//! thread, in the order messages are sent).

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use snowsocket_core::deflate::PerMessageDeflate;
use snowsocket_core::deflate::{Compressor, DeflateParams};
use snowsocket_core::Role;

/// A connection's sending half of permessage-deflate, shared by its
/// handles.
pub(crate) struct DeflateTx {
    /// Messages shorter than this are sent uncompressed.
    pub(crate) min_size: usize,
    compressor: Mutex<Compressor>,
}

impl DeflateTx {
    pub(crate) fn new(role: Role, params: &DeflateParams, options: &PerMessageDeflate) -> Self {
        Self {
            min_size: options.min_size,
            compressor: Mutex::new(Compressor::new(role, params, options.level)),
        }
    }

    /// Locks the compressor (a panic elsewhere never poisons a send).
    /// Hold it from compressing until the frame is in the outbox: frames
    /// must go out in the order they were compressed.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Compressor> {
        self.compressor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
