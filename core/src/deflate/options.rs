//! [`PerMessageDeflate`]: permessage-deflate as a shell or driver applies
//! it — the negotiation's parameters, the size below which messages go
//! uncompressed, and the compression level.

use super::DeflateConfig;

/// permessage-deflate options for a server or client: the async driver's
/// `asynch::WebSocket::accept_deflate` and `connect_deflate` (feature
/// `async`), and snowsocket-server's `ServerConfig::permessage_deflate` and
/// `ClientConfig::permessage_deflate` (which re-exports it). Off unless
/// set.
///
/// The four RFC 7692 parameters read from this end's role (see
/// [`DeflateConfig`]): as a server, `server_*` are what we do and
/// `client_*` what we ask of the client; as a client, `client_*` are what
/// we declare and `server_*` what we ask of the server.
///
/// ```
/// use snowsocket_core::deflate::PerMessageDeflate;
///
/// let options = PerMessageDeflate::default()
///     .server_no_context_takeover(true) // no compressor kept between messages
///     .min_size(256)
///     .level(1);
/// assert!(options.params.server_no_context_takeover);
/// assert_eq!((options.min_size, options.level), (256, 1));
/// ```
///
/// Memory: with context takeover a connection keeps its compressor (about
/// 294 KB) once it has sent a compressed message and its inflater (about
/// 56 KB) once it has received one; without context takeover neither is
/// kept between messages. Messages are compressed per connection (each
/// connection's compressor has its own window).
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
        Self::DEFAULT
    }
}

impl PerMessageDeflate {
    /// The defaults: [`DeflateConfig::DEFAULT`], a minimum size of 64
    /// bytes, level 3.
    pub const DEFAULT: Self = Self {
        params: DeflateConfig::DEFAULT,
        min_size: 64,
        level: 3,
    };

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
