//! The opening handshake (RFC 6455 §4), both roles, without allocation.
//!
//! Everything here works on caller-owned memory: requests and responses are
//! parsed (with [`httparse`]) into a caller-provided `&mut [Header]` slice and
//! borrow from the input buffer; answers are written into a caller-provided
//! `&mut [u8]`, and a buffer that is too small is reported with the exact
//! number of bytes needed.
//!
//! # Server
//!
//! 1. Read bytes; call [`parse_request`] on everything read so far. On
//!    [`Parsed::Incomplete`] read more and call it again *on the whole buffer*
//!    (parsing restarts from the first byte; the input is bounded by
//!    [`HandshakeLimits::max_request_size`]).
//! 2. On [`Parsed::Complete`] inspect the [`Request`] (path, `Origin`, offered
//!    subprotocols, any header), then answer with [`write_accept`] or
//!    [`write_reject`]. The bytes after `consumed` are the client's first
//!    WebSocket frames: hand them to the connection.
//! 3. On an error, [`HandshakeError::write_response`] writes the HTTP answer
//!    the RFC asks for (400, 405, 426 with `Sec-WebSocket-Version: 13`, 431);
//!    then close the stream.
//!
//! ```
//! use snowsocket_core::handshake::{self, HandshakeLimits, Parsed, EMPTY_HEADER};
//!
//! let input = b"GET /chat HTTP/1.1\r\n\
//!     Host: server.example.com\r\n\
//!     Upgrade: websocket\r\n\
//!     Connection: Upgrade\r\n\
//!     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Protocol: chat, superchat\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n";
//! let mut headers = [EMPTY_HEADER; 32];
//! let mut out = [0u8; 512];
//! let written = match handshake::parse_request(input, &mut headers, &HandshakeLimits::default()) {
//!     Ok(Parsed::Complete { value: request, consumed }) => {
//!         assert_eq!(request.path(), "/chat");
//!         assert_eq!(consumed, input.len()); // nothing after the header block
//!         let chosen = request.subprotocols().find(|p| *p == "chat");
//!         handshake::write_accept(&mut out, &request, chosen, &[])?
//!     }
//!     Ok(Parsed::Incomplete) => unreachable!("read more and parse again"),
//!     Err(error) => error.write_response(&mut out)?,
//! };
//! assert!(out[..written].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Client
//!
//! [`generate_key`] (from an injected RNG), [`write_request`], then
//! [`parse_response`] on the bytes read, in the same incomplete/complete loop
//! as the server. A [`Response`] is returned only when the server accepted the
//! upgrade: status 101, the right `Sec-WebSocket-Accept`, a subprotocol among
//! the offered ones (or none) and no extension (with the `deflate` feature,
//! `parse_response_with_deflate` checks a permessage-deflate answer
//! against the offer instead).
//!
//! # Choices
//!
//! - Token lists (`Connection`, `Upgrade`, `Sec-WebSocket-Protocol`) are split
//!   on commas, trimmed, empty elements skipped, and several headers of the
//!   same name combine. `Connection` and `Upgrade` tokens compare
//!   case-insensitively; subprotocol names compare exactly.
//! - Header names compare case-insensitively everywhere.
//! - The writers refuse anything that could inject a header or a line
//!   (CR, LF and other control characters in values, non-token header names)
//!   and extra headers that would duplicate one the writer emits itself
//!   ([`WriteError::ReservedHeader`]).

use base64ct::{Base64, Encoding};
pub use httparse::{Header, EMPTY_HEADER};

use crate::error::InsufficientSizeError;
use crate::texts::{total_len, Texts};

mod client;
mod error;
mod headers;
mod server;

use headers::*;

pub(crate) use client::parse_response_expecting;
#[cfg(all(feature = "async", feature = "deflate"))]
pub(crate) use client::parse_response_with_deflate_expecting;
pub(crate) use client::write_generated_request;
pub use client::{generate_key, parse_response, write_request, ClientRequest, Response};
#[cfg(feature = "deflate")]
pub use client::{parse_response_with_deflate, write_request_with_deflate};
pub use error::{HandshakeError, WriteError};
#[cfg(feature = "deflate")]
pub use server::write_accept_with_deflate;
#[cfg(all(feature = "async", feature = "deflate"))]
pub(crate) use server::write_accept_with_deflate_keyed;
pub use server::{parse_request, write_accept, write_reject, Request, Subprotocols};
pub(crate) use server::{write_accept_keyed, ACCEPT_KEY_AT};

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
/// base64(SHA-1(key ++ [`GUID`])), RFC 6455 §1.3 and §4.2.2.
///
/// `key` is the header value as sent (the 24 base64 characters), not the
/// decoded nonce.
///
/// ```
/// let accept = snowsocket_core::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[inline(always)]
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha1 = hmac_sha1_compact::Hash::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    let mut out = [0u8; 28];
    encode_padded(&sha1.finalize(), &mut out);
    out
}

/// Writes the padded base64 of `src` into `out`, which holds exactly that
/// many characters (`4 * ceil(len / 3)`).
///
/// base64ct's constant-time encoder is given whole 3-byte groups only
/// (`src` and zero bytes, at most 21 in all), so its partial-group path is
/// never linked; the characters that stand only for the added zero bytes
/// become `=`.
fn encode_padded(src: &[u8], out: &mut [u8]) {
    let whole_len = out.len() / 4 * 3;
    let mut input = [0u8; 21];
    if let Some(to) = input.get_mut(..src.len()) {
        to.copy_from_slice(src);
    }
    let encoded = Base64::encode(input.get(..whole_len).unwrap_or_default(), out);
    debug_assert!(encoded.is_ok());
    // Each added zero byte is the whole of one character: padding.
    let added = whole_len.saturating_sub(src.len());
    for c in out.iter_mut().rev().take(added) {
        *c = b'=';
    }
}

/// Limits applied while parsing a handshake (request or response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// The largest header block accepted, in bytes (request or status line,
    /// headers and the final empty line). A header block not complete within
    /// this many bytes fails with [`HandshakeError::TooLarge`]. Default: 8192.
    pub max_request_size: usize,
    /// The most headers accepted. The effective limit is the smaller of this
    /// and the length of the header slice passed to the parser; more headers
    /// fail with [`HandshakeError::TooManyHeaders`] (never a silent
    /// truncation). Default: 64.
    pub max_headers: usize,
}

impl HandshakeLimits {
    /// The defaults: 8192 bytes, 64 headers.
    pub const DEFAULT: Self = Self {
        max_request_size: 8192,
        max_headers: 64,
    };
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outcome of parsing a buffer that may not yet hold the whole header
/// block. Incomplete input is a status, not an error: read more, then parse
/// the whole buffer again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The header block has not ended yet (and the limits are not exceeded).
    Incomplete,
    /// The header block is complete.
    Complete {
        /// What was parsed.
        value: T,
        /// The length of the header block, final empty line included. Bytes
        /// after it (frames the peer sent right away) belong to the WebSocket
        /// connection.
        consumed: usize,
    },
}

impl<T> Parsed<T> {
    /// `true` for [`Parsed::Complete`].
    pub const fn is_complete(&self) -> bool {
        matches!(self, Self::Complete { .. })
    }

    /// The value and the number of bytes consumed, if complete.
    pub fn into_complete(self) -> Option<(T, usize)> {
        match self {
            Self::Incomplete => None,
            Self::Complete { value, consumed } => Some((value, consumed)),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers shared by the server and client halves.

/// The input httparse may look at: at most `max_request_size` bytes, so that
/// the work per call is bounded and an over-long header block is seen as
/// incomplete at exactly the limit.
fn limit_input<'b>(buf: &'b [u8], limits: &HandshakeLimits) -> &'b [u8] {
    buf.get(..limits.max_request_size).unwrap_or(buf)
}

/// The header slots httparse may fill: min(slice length, `max_headers`).
fn limit_headers<'h, 'b>(
    headers: &'h mut [Header<'b>],
    limits: &HandshakeLimits,
) -> &'h mut [Header<'b>] {
    let n = headers.len().min(limits.max_headers);
    &mut headers[..n]
}

/// Maps httparse's result: `Some(consumed)`, `None` for incomplete, or the
/// error (an incomplete block that already fills the limit is too large).
fn complete_or_limit(
    status: httparse::Result<usize>,
    input_len: usize,
    limits: &HandshakeLimits,
) -> Result<Option<usize>, HandshakeError> {
    match status {
        Ok(httparse::Status::Complete(consumed)) => Ok(Some(consumed)),
        Ok(httparse::Status::Partial) if input_len >= limits.max_request_size => {
            Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HandshakeError::TooManyHeaders),
        Err(e) => Err(HandshakeError::Http(e)),
    }
}

/// Checks caller-supplied extra headers: token names, safe values, and no
/// name from `reserved`.
fn check_extra_headers(extra: &[(&str, &[u8])], reserved: &[&str]) -> Result<(), WriteError> {
    for (name, value) in extra {
        if !is_token(name.as_bytes()) {
            return Err(WriteError::InvalidHeaderName);
        }
        if !is_field_value(value) {
            return Err(WriteError::InvalidHeaderValue);
        }
        if reserved
            .iter()
            .any(|r| eq_ignore_case(r.as_bytes(), name.as_bytes()))
        {
            return Err(WriteError::ReservedHeader);
        }
    }
    Ok(())
}

/// Writes into a caller buffer, counting past its end so that an overflow
/// reports the exact length required.
struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl<'o> Writer<'o> {
    fn new(out: &'o mut [u8]) -> Self {
        Self { out, len: 0 }
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// Leaves `n` bytes as they are, for the caller to fill in.
    fn skip(&mut self, n: usize) {
        self.len = self.len.saturating_add(n);
    }

    fn put_decimal(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[start..]);
    }

    fn header(&mut self, name: &str, value: &[u8]) {
        self.put(name.as_bytes());
        self.put(b": ");
        self.put(value);
        self.put(b"\r\n");
    }

    fn extra_headers(&mut self, extra: &[(&str, &[u8])]) {
        for (name, value) in extra {
            self.header(name, value);
        }
    }

    fn finish(self) -> Result<usize, InsufficientSizeError> {
        if self.len <= self.out.len() {
            Ok(self.len)
        } else {
            Err(InsufficientSizeError { required: self.len })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
