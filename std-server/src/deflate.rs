//! permessage-deflate (RFC 7692) for servers and clients: the options
//! ([`PerMessageDeflate`]), and each connection's sending half, which the
//! connection's handles share (compression happens on the sender's
//! thread, in the order messages are sent).

use std::sync::{Mutex, MutexGuard, PoisonError};

use snowsocket_core::deflate::{Compressor, DeflateConfig, DeflateParams};
use snowsocket_core::Role;

/// permessage-deflate options for [`ServerConfig::permessage_deflate`](crate::ServerConfig::permessage_deflate)
/// and [`ClientConfig::permessage_deflate`](crate::client::ClientConfig::permessage_deflate).
/// Off unless set.
///
/// The four RFC 7692 parameters read from this end's role (see
/// snowsocket-core's [`DeflateConfig`]): as a server, `server_*` are what we
/// do and `client_*` what we ask of the client; as a client, `client_*` are
/// what we declare and `server_*` what we ask of the server.
///
/// ```
/// use snowsocket_server::{PerMessageDeflate, ServerConfig};
///
/// let config = ServerConfig::default().permessage_deflate(
///     PerMessageDeflate::default()
///         .server_no_context_takeover(true) // no compressor kept between messages
///         .min_size(256)
///         .level(1),
/// );
/// assert!(config.deflate.is_some());
/// ```
///
/// Memory: with context takeover a connection keeps its compressor (about
/// 294 KB) once it has sent a compressed message and its inflater (about
/// 56 KB) once it has received one; without context takeover neither is
/// kept between messages. Messages of the same kind are compressed per
/// connection, broadcasts included (each connection's compressor has its
/// own window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessageDeflate {
    /// The negotiation's parameters.
    pub params: DeflateConfig,
    /// Messages shorter than this are sent uncompressed. Default 64 bytes.
    pub min_size: usize,
    /// The compression level: 0 = stored only, 1 fastest … 9 best (and
    /// slowest); higher is taken as 9. Default 3.
    pub level: u8,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        Self {
            params: DeflateConfig::DEFAULT,
            min_size: 64,
            level: 3,
        }
    }
}

impl PerMessageDeflate {
    /// Sets `server_no_context_takeover` (see [`DeflateConfig`]).
    #[must_use]
    pub const fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.params = self.params.server_no_context_takeover(on);
        self
    }
    /// Sets `client_no_context_takeover` (see [`DeflateConfig`]).
    #[must_use]
    pub const fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.params = self.params.client_no_context_takeover(on);
        self
    }
    /// Sets `server_max_window_bits` (8–15; see [`DeflateConfig`]).
    #[must_use]
    pub const fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.params = self.params.server_max_window_bits(bits);
        self
    }
    /// Sets `client_max_window_bits` (8–15; see [`DeflateConfig`]).
    #[must_use]
    pub const fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.params = self.params.client_max_window_bits(bits);
        self
    }
    /// Sets [`PerMessageDeflate::min_size`].
    #[must_use]
    pub const fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }
    /// Sets [`PerMessageDeflate::level`].
    #[must_use]
    pub const fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }
}

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
