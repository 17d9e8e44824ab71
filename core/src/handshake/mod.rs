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

use core::fmt;

use base64ct::{Base64, Encoding};
pub use httparse::{Header, EMPTY_HEADER};

use crate::error::InsufficientSizeError;
use crate::texts::{total_len, Texts};

mod client;
mod server;

pub(crate) use client::parse_response_expecting;
#[cfg(feature = "deflate")]
pub(crate) use client::parse_response_with_deflate_expecting;
pub(crate) use client::write_generated_request;
pub use client::{generate_key, parse_response, write_request, ClientRequest, Response};
#[cfg(feature = "deflate")]
pub use client::{parse_response_with_deflate, write_request_with_deflate};
#[cfg(feature = "deflate")]
pub use server::write_accept_with_deflate;
#[cfg(feature = "deflate")]
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

/// Why a handshake was refused.
///
/// The server-side variants know the HTTP status to answer with
/// ([`status`](Self::status)) and can write that answer
/// ([`write_response`](Self::write_response)). The client-side variants
/// (a bad server response) fail the connection; their status is 400 and is
/// not meant to be sent anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Malformed HTTP, as reported by `httparse`. 400.
    Http(httparse::Error),
    /// The header block did not end within
    /// [`HandshakeLimits::max_request_size`] bytes. 431.
    TooLarge,
    /// More headers than [`HandshakeLimits::max_headers`] or than the header
    /// slice holds. 431.
    TooManyHeaders,
    /// A request method other than `GET` (RFC 6455 §4.1). 405, answered with
    /// `Allow: GET`.
    NotGet,
    /// A version other than HTTP/1.1. 400.
    NotHttp11,
    /// A request with no `Upgrade` header at all: a plain HTTP request sent to
    /// a WebSocket endpoint. 426, answered with `Upgrade: websocket`.
    NotUpgrade,
    /// An `Upgrade` header without the `websocket` token. 400.
    InvalidUpgrade,
    /// No `Connection` header with the `Upgrade` token. 400.
    MissingConnectionUpgrade,
    /// No `Host` header, or an empty one. 400.
    MissingHost,
    /// Several `Host` headers, or one that is not UTF-8 (RFC 7230 §5.4). 400.
    InvalidHost,
    /// Several `Origin` headers, or one that is not UTF-8. 400.
    InvalidOrigin,
    /// No `Sec-WebSocket-Version` header. 426, answered with
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than a single `13`. 426, answered with
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2, §4.4).
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header. 400.
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not the padded base64 of exactly 16
    /// bytes, or several of them. 400.
    InvalidKey,
    /// A `Sec-WebSocket-Protocol` element that is not an HTTP token. 400.
    InvalidSubprotocol,
    /// A request announcing a body (`Transfer-Encoding`, or a
    /// `Content-Length` other than 0): the bytes after the header block must
    /// be WebSocket frames. 400.
    UnexpectedBody,
    /// Client side: the server answered with a status other than 101.
    BadStatus(u16),
    /// Client side: no `Sec-WebSocket-Accept` header.
    MissingAccept,
    /// Client side: a `Sec-WebSocket-Accept` that does not match the key sent,
    /// or several of them.
    InvalidAccept,
    /// Client side: a subprotocol that was not offered, or more than one.
    UnexpectedSubprotocol,
    /// Client side: a `Sec-WebSocket-Extensions` header when none was
    /// offered, or (feature `deflate`) an answer that does not match the
    /// permessage-deflate offer or is malformed.
    UnexpectedExtensions,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with: 431 for the size
    /// limits, 405 for a method other than `GET`, 426 for a plain HTTP
    /// request and for a missing or unsupported WebSocket version, 400 for
    /// everything else (including the client-side variants, which are never
    /// answered).
    pub const fn status(self) -> u16 {
        match self {
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::NotGet => 405,
            Self::NotUpgrade | Self::MissingVersion | Self::UnsupportedVersion => 426,
            _ => 400,
        }
    }

    /// A short, static description, used as the body of the HTTP answer.
    pub const fn reason(self) -> &'static str {
        REASONS[self.index()]
    }

    /// The variant's position in [`REASONS`].
    const fn index(self) -> usize {
        match self {
            Self::Http(_) => 0,
            Self::TooLarge => 1,
            Self::TooManyHeaders => 2,
            Self::NotGet => 3,
            Self::NotHttp11 => 4,
            Self::NotUpgrade => 5,
            Self::InvalidUpgrade => 6,
            Self::MissingConnectionUpgrade => 7,
            Self::MissingHost => 8,
            Self::InvalidHost => 9,
            Self::InvalidOrigin => 10,
            Self::MissingVersion => 11,
            Self::UnsupportedVersion => 12,
            Self::MissingKey => 13,
            Self::InvalidKey => 14,
            Self::InvalidSubprotocol => 15,
            Self::UnexpectedBody => 16,
            Self::BadStatus(_) => 17,
            Self::MissingAccept => 18,
            Self::InvalidAccept => 19,
            Self::UnexpectedSubprotocol => 20,
            Self::UnexpectedExtensions => 21,
        }
    }

    /// Writes the HTTP answer for this error into `out` (a
    /// [`write_reject`] with [`status`](Self::status) and
    /// [`reason`](Self::reason) as the body, plus `Allow: GET` for 405) and
    /// returns its length. Without the `reasons` feature the body is empty.
    /// The contents of `out` are unspecified on error.
    #[inline(never)]
    pub fn write_response(self, out: &mut [u8]) -> Result<usize, InsufficientSizeError> {
        // The same bytes as `write_reject` with these arguments, from fixed
        // strings: this answer is what every server links, so it is kept
        // small (the general writer handles any status and extra headers).
        let status = self.status();
        let (line, connection): (&[u8], &[u8]) = match status {
            405 => (b"405 Method Not Allowed", b"close"),
            426 => (
                b"426 Upgrade Required",
                b"Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13",
            ),
            431 => (b"431 Request Header Fields Too Large", b"close"),
            _ => (b"400 Bad Request", b"close"),
        };
        // Empty without the `reasons` feature.
        let body = if cfg!(feature = "reasons") {
            PACKED_REASONS.get(self.index())
        } else {
            &[]
        };
        let mut w = Writer::new(out);
        w.put(b"HTTP/1.1 ");
        w.put(line);
        w.put(b"\r\nConnection: ");
        w.put(connection);
        // Without the `reasons` feature the length is a constant 0, and
        // the decimal writer is not linked for it.
        if cfg!(feature = "reasons") {
            w.put(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
            // Every reason is shorter than 100 bytes (checked when
            // compiling, below): one or two digits.
            let len = body.len() as u8;
            if len >= 10 {
                w.put(&[b'0' + len / 10]);
            }
            w.put(&[b'0' + len % 10]);
        } else {
            w.put(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0");
        }
        w.put(if status == 405 {
            b"\r\nAllow: GET\r\n\r\n"
        } else {
            b"\r\n\r\n"
        });
        if cfg!(feature = "reasons") {
            w.put(body);
        }
        w.finish()
    }
}

/// [`HandshakeError::reason`] of each variant, in declaration order.
const REASONS: [&str; 22] = [
    "malformed request",
    "headers too large",
    "too many headers",
    "GET required",
    "HTTP/1.1 required",
    "WebSocket upgrade required",
    "bad Upgrade",
    "bad Connection",
    "no Host",
    "bad Host",
    "bad Origin",
    "no version",
    "version 13 only",
    "no key",
    "bad key",
    "bad subprotocol",
    "unexpected body",
    "upgrade refused",
    "no accept key",
    "bad accept key",
    "unoffered subprotocol",
    "unoffered extension",
];

static PACKED_REASONS: Texts<22, { total_len(&REASONS) }> = Texts::new(&REASONS);

// `write_response` writes a reason's length as one or two digits.
const _: () = {
    let mut i = 0;
    while i < REASONS.len() {
        assert!(REASONS[i].len() < 100);
        i += 1;
    }
};

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => write!(f, "malformed HTTP: {e}"),
            Self::BadStatus(code) => write!(f, "server answered with status {code}, not 101"),
            other => f.write_str(other.reason()),
        }
    }
}

impl core::error::Error for HandshakeError {}

/// Why a handshake message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The output buffer is too small; `required` is the exact length of the
    /// message.
    InsufficientSize(InsufficientSizeError),
    /// A header name that is not an HTTP token (e.g. contains `:`, a space,
    /// CR or LF), or is empty.
    InvalidHeaderName,
    /// A header value with CR, LF or another control character (only HTAB is
    /// allowed), or an empty `Origin`.
    InvalidHeaderValue,
    /// An extra header that the writer already emits itself (e.g.
    /// `Connection`, `Content-Length`, `Sec-WebSocket-Key`).
    ReservedHeader,
    /// A rejection status outside 300–599, or 304 (which has no body).
    InvalidStatus(u16),
    /// An empty host, or one with spaces or control characters.
    InvalidHost,
    /// A request path that does not start with `/` or holds spaces or
    /// characters outside visible ASCII.
    InvalidTarget,
    /// A client key that is not the padded base64 of 16 bytes.
    InvalidKey,
    /// An offered subprotocol that is not an HTTP token.
    InvalidSubprotocol,
    /// An accepted subprotocol that the client did not offer.
    UnofferedSubprotocol,
}

impl From<InsufficientSizeError> for WriteError {
    fn from(e: InsufficientSizeError) -> Self {
        Self::InsufficientSize(e)
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InsufficientSize(e) => fmt::Display::fmt(e, f),
            Self::InvalidHeaderName => f.write_str("invalid header name"),
            Self::InvalidHeaderValue => f.write_str("invalid header value"),
            Self::ReservedHeader => f.write_str("header is written by the handshake itself"),
            Self::InvalidStatus(code) => write!(f, "status {code} cannot reject a handshake"),
            Self::InvalidHost => f.write_str("invalid host"),
            Self::InvalidTarget => f.write_str("invalid request path"),
            Self::InvalidKey => f.write_str("invalid Sec-WebSocket-Key"),
            Self::InvalidSubprotocol => f.write_str("subprotocol is not an HTTP token"),
            Self::UnofferedSubprotocol => f.write_str("subprotocol was not offered by the client"),
        }
    }
}

impl core::error::Error for WriteError {}

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

/// The first header named `name` (case-insensitive).
fn find_header<'b>(headers: &[Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| eq_ignore_case(h.name.as_bytes(), name.as_bytes()))
        .map(|h| h.value)
}

/// A header that must appear at most once.
enum Single<'b> {
    Absent,
    One(&'b [u8]),
    Many,
}

/// The headers the handshake checks, as indexes into a [`Scan`] and into
/// the side's table ([`SERVER_NAMES`] or [`CLIENT_NAMES`]: each side links
/// only the names it looks for). Both tables start with the names both
/// sides check.
mod name {
    pub(super) const UPGRADE: usize = 0;
    pub(super) const CONNECTION: usize = 1;
    pub(super) const PROTOCOL: usize = 2;
    // The server's.
    pub(super) const HOST: usize = 3;
    pub(super) const VERSION: usize = 4;
    pub(super) const KEY: usize = 5;
    pub(super) const ORIGIN: usize = 6;
    pub(super) const TRANSFER_ENCODING: usize = 7;
    pub(super) const CONTENT_LENGTH: usize = 8;
    // The client's.
    pub(super) const ACCEPT: usize = 3;
    pub(super) const EXTENSIONS: usize = 4;
}

/// The header names a server checks (see [`name`]).
const SERVER: [&str; 9] = [
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Protocol",
    "Host",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Key",
    "Origin",
    "Transfer-Encoding",
    "Content-Length",
];
/// The header names a client checks (see [`name`]).
const CLIENT: [&str; 5] = [
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Extensions",
];

/// [`SERVER`], packed.
static SERVER_NAMES: Texts<9, { total_len(&SERVER) }> = Texts::new(&SERVER);
/// [`CLIENT`], packed.
static CLIENT_NAMES: Texts<5, { total_len(&CLIENT) }> = Texts::new(&CLIENT);

/// The most names a [`Scan`] counts (the server's).
const MAX_NAMES: usize = SERVER.len();

/// What one pass over the headers found, for every header name either side
/// of the handshake checks (names compare case-insensitively). One pass
/// with one name comparison loop, rather than a search per header name,
/// keeps the parsers small.
struct Scan<'b> {
    /// How many headers of each name (saturating).
    count: [u8; MAX_NAMES],
    /// The first value of each name, trimmed of whitespace.
    first: [&'b [u8]; MAX_NAMES],
    /// `websocket` is an element of an `Upgrade` list (any case).
    upgrade_websocket: bool,
    /// `upgrade` is an element of a `Connection` list (any case).
    connection_upgrade: bool,
    /// An element of a `Sec-WebSocket-Protocol` list is not an HTTP token.
    invalid_subprotocol: bool,
    /// A `Sec-WebSocket-Extensions` list has a (non-empty) element.
    extension: bool,
    /// A `Transfer-Encoding`, or a `Content-Length` other than 0.
    body: bool,
}

impl<'b> Scan<'b> {
    /// Scans `headers` for the names one side checks: the server's
    /// ([`SERVER`]) if `IS_SERVER`, else the client's ([`CLIENT`]).
    fn new<const IS_SERVER: bool>(headers: &[Header<'b>]) -> Self {
        let server = IS_SERVER;
        let mut scan = Self {
            count: [0; MAX_NAMES],
            first: [&[]; MAX_NAMES],
            upgrade_websocket: false,
            connection_upgrade: false,
            invalid_subprotocol: false,
            extension: false,
            body: false,
        };
        for header in headers {
            let name = header.name.as_bytes();
            let names = if server { SERVER.len() } else { CLIENT.len() };
            let Some(i) = (0..names).find(|&i| {
                let known = if server {
                    SERVER_NAMES.get(i)
                } else {
                    CLIENT_NAMES.get(i)
                };
                eq_ignore_case(name, known)
            }) else {
                continue;
            };
            let value = header.value;
            if let (Some(count), Some(first)) = (scan.count.get_mut(i), scan.first.get_mut(i)) {
                if *count == 0 {
                    *first = trim_ows(value);
                }
                *count = count.saturating_add(1);
            }
            for_each_element(value, |token| match (server, i) {
                (_, name::UPGRADE) => {
                    scan.upgrade_websocket |= eq_ignore_case(token, b"websocket");
                }
                (_, name::CONNECTION) => {
                    scan.connection_upgrade |= eq_ignore_case(token, b"upgrade");
                }
                // A client checks the one subprotocol chosen against those
                // it offered instead.
                (true, name::PROTOCOL) => scan.invalid_subprotocol |= !is_token(token),
                (false, name::EXTENSIONS) => scan.extension = true,
                _ => {}
            });
            match (server, i) {
                (true, name::TRANSFER_ENCODING) => scan.body = true,
                (true, name::CONTENT_LENGTH) => scan.body |= trim_ows(value) != b"0",
                _ => {}
            }
        }
        scan
    }

    /// Whether any header has the name of index `i` (see [`name`]).
    fn has(&self, i: usize) -> bool {
        self.count.get(i).is_some_and(|&c| c > 0)
    }

    /// The header with the name of index `i` (see [`name`]), which must
    /// appear at most once (trimmed).
    fn single(&self, i: usize) -> Single<'b> {
        match (self.count.get(i), self.first.get(i)) {
            (Some(1), Some(value)) => Single::One(value),
            (Some(0) | None, _) | (_, None) => Single::Absent,
            (Some(_), Some(_)) => Single::Many,
        }
    }
}

/// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3)
/// around it: all the whitespace a header value that httparse accepted
/// can hold, so the same as `trim_ascii` there, in less code.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Calls `f` with each element of one comma-separated header value,
/// trimmed of whitespace, empty elements skipped. A loop over `position`
/// rather than `split().map().filter()`, whose iterator adapters cost
/// flash.
fn for_each_element(value: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = value;
    loop {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let (element, tail) = rest.split_at(end);
        let element = trim_ows(element);
        if !element.is_empty() {
            f(element);
        }
        match tail.split_first() {
            Some((_, tail)) => rest = tail,
            None => return,
        }
    }
}

/// The elements of a comma-separated header list over every header named
/// `name`: trimmed of whitespace, empty elements skipped.
#[derive(Clone, Debug)]
struct Tokens<'h, 'b> {
    name: &'static str,
    headers: core::slice::Iter<'h, Header<'b>>,
    rest: Option<&'b [u8]>,
}

impl<'h, 'b> Tokens<'h, 'b> {
    fn new(headers: &'h [Header<'b>], name: &'static str) -> Self {
        Self {
            name,
            headers: headers.iter(),
            rest: None,
        }
    }
}

impl<'b> Iterator for Tokens<'_, 'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        loop {
            let rest = match self.rest {
                Some(rest) => rest,
                None => {
                    let name = self.name;
                    self.headers
                        .find(|h| eq_ignore_case(h.name.as_bytes(), name.as_bytes()))?
                        .value
                }
            };
            let mut parts = rest.splitn(2, |&b| b == b',');
            let element = trim_ows(parts.next().unwrap_or_default());
            self.rest = parts.next();
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

impl core::iter::FusedIterator for Tokens<'_, '_> {}

/// Whether any element of the `name` lists equals `token`, ignoring case.
#[cfg(test)]
fn has_token(headers: &[Header<'_>], name: &'static str, token: &str) -> bool {
    Tokens::new(headers, name).any(|t| eq_ignore_case(t, token.as_bytes()))
}

/// `a` and `b` are equal ignoring ASCII case. One byte at a time: what
/// `<[u8]>::eq_ignore_ascii_case` does for the short names and tokens of a
/// handshake, without linking its word-at-a-time path (about 100 bytes of
/// flash on a Cortex-M).
#[inline(never)]
fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// An HTTP `tchar` (RFC 9110 §5.6.2).
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// A non-empty HTTP token.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A header value that cannot end the line: HTAB, visible ASCII, space and
/// obs-text; no CR, LF, NUL, other controls or DEL.
fn is_field_value(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b == b'\t' || matches!(b, 0x20..=0x7e) || b >= 0x80)
}

/// Visible ASCII only (no space, no controls): hosts and request targets.
fn is_visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| matches!(b, 0x21..=0x7e))
}

/// Whether `key` is the padded base64 of exactly 16 bytes (canonical, as a
/// strict decoder accepts it).
///
/// Checked by shape rather than by decoding (the nonce itself is never
/// used): 21 characters of the standard alphabet, then one whose low four
/// bits are zero (`A`, `Q`, `g` or `w`: the last two bits of the 16th byte
/// followed by zero padding bits), then `==`.
#[inline(never)]
fn is_valid_key(key: &[u8]) -> bool {
    let [body @ .., last, b'=', b'='] = key else {
        return false;
    };
    body.len() == 21
        && body.iter().all(|&b| is_base64(b))
        && matches!(last, b'A' | b'Q' | b'g' | b'w')
}

/// A character of the standard base64 alphabet (RFC 4648 §4), padding
/// excluded.
const fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
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
mod tests {
    use super::*;

    #[test]
    fn accept_key_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn eq_ignore_case_is_std_eq_ignore_ascii_case() {
        let words: [&[u8]; 9] = [
            b"",
            b"a",
            b"A",
            b"Upgrade",
            b"uPGRADE",
            b"upgrade!",
            b"\xc3\xa9",
            b"\xc3\x89",
            b"@[`{",
        ];
        for a in words {
            for b in words {
                assert_eq!(
                    eq_ignore_case(a, b),
                    a.eq_ignore_ascii_case(b),
                    "{a:?} {b:?}"
                );
            }
        }
        for x in 0..=255u8 {
            for y in 0..=255u8 {
                assert_eq!(eq_ignore_case(&[x], &[y]), [x].eq_ignore_ascii_case(&[y]));
            }
        }
    }

    #[test]
    fn encode_padded_equals_base64ct_padded() {
        // Every length up to the largest input (21 bytes), with bytes that
        // exercise every bit of the partial group.
        for len in 0..=21 {
            for fill in [0x00u8, 0xff, 0x5a, 0xa5] {
                let src: std::vec::Vec<u8> = (0..len)
                    .map(|i| fill ^ (i as u8).wrapping_mul(37))
                    .collect();
                let mut expected = [0u8; 28];
                let expected = Base64::encode(&src, &mut expected).unwrap().as_bytes();
                let mut out = [0u8; 28];
                let out = &mut out[..expected.len()];
                encode_padded(&src, out);
                assert_eq!(out, expected, "{len} bytes of {fill:#x}");
            }
        }
    }

    #[test]
    fn accept_key_rfc_example_decodes_to_sha1() {
        // The other direction: the RFC's accept value is the SHA-1 of the
        // key followed by the GUID.
        let mut digest = [0u8; 20];
        let decoded = Base64::decode(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &mut digest).unwrap();
        assert_eq!(decoded.len(), 20);
        let mut concatenated = std::vec::Vec::new();
        concatenated.extend_from_slice(b"dGhlIHNhbXBsZSBub25jZQ==");
        concatenated.extend_from_slice(GUID.as_bytes());
        assert_eq!(
            concatenated,
            b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        );
        assert_eq!(
            digest,
            sha1_smol::Sha1::from(&concatenated).digest().bytes()
        );
        // And the nonce behind the RFC key.
        let mut nonce = [0u8; 16];
        Base64::decode(b"dGhlIHNhbXBsZSBub25jZQ==", &mut nonce).unwrap();
        assert_eq!(&nonce, b"the sample nonce");
    }

    #[test]
    fn accept_key_agrees_with_sha1_smol() {
        // hmac-sha1-compact against another SHA-1, through the accept key
        // for many keys (24 characters, as sent) and a few odd lengths.
        let mut seed = 0x2545_f491_u32;
        for len in [0usize, 1, 3, 4, 24, 24, 24, 55, 56, 64, 100] {
            for _ in 0..20 {
                let key: std::vec::Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                            [(seed % 64) as usize]
                    })
                    .collect();
                let mut input = key.clone();
                input.extend_from_slice(GUID.as_bytes());
                let mut expected = [0u8; 28];
                encode_padded(
                    &sha1_smol::Sha1::from(&input).digest().bytes(),
                    &mut expected,
                );
                assert_eq!(accept_key(&key), expected, "{len}");
            }
        }
    }

    #[test]
    fn limits_defaults() {
        let limits = HandshakeLimits::default();
        assert_eq!(limits.max_request_size, 8192);
        assert_eq!(limits.max_headers, 64);
        assert_eq!(limits, HandshakeLimits::DEFAULT);
    }

    #[test]
    fn parsed_accessors() {
        let done = Parsed::Complete {
            value: 7,
            consumed: 3,
        };
        assert!(done.is_complete());
        assert_eq!(done.into_complete(), Some((7, 3)));
        assert!(!Parsed::<u8>::Incomplete.is_complete());
        assert_eq!(Parsed::<u8>::Incomplete.into_complete(), None);
    }

    #[test]
    fn token_lists() {
        let headers = [
            Header {
                name: "connection",
                value: b"keep-alive ,\tUPGRADE",
            },
            Header {
                name: "Upgrade",
                value: b" h2c , WebSocket ",
            },
            Header {
                name: "X-List",
                value: b"a,, b ,c,",
            },
            Header {
                name: "x-list",
                value: b"",
            },
            Header {
                name: "X-LIST",
                value: b" d",
            },
        ];
        assert!(has_token(&headers, "Connection", "upgrade"));
        assert!(has_token(&headers, "Connection", "Keep-Alive"));
        assert!(has_token(&headers, "upgrade", "websocket"));
        assert!(!has_token(&headers, "Upgrade", "web"));
        assert!(!has_token(&headers, "Missing", "x"));
        let all: std::vec::Vec<&[u8]> = Tokens::new(&headers, "x-list").collect();
        assert_eq!(all, [&b"a"[..], b"b", b"c", b"d"]);
        // Tokens are whole elements, not substrings.
        let headers = [Header {
            name: "Connection",
            value: b"Upgrader, xupgrade",
        }];
        assert!(!has_token(&headers, "Connection", "upgrade"));
    }

    #[test]
    fn field_value_and_token_checks() {
        assert!(is_field_value(b"text/plain; charset=utf-8\t\x80"));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\x7f", b"\x1b"] {
            assert!(!is_field_value(bad));
        }
        assert!(is_token(b"Sec-WebSocket-Protocol"));
        for bad in [&b""[..], b"a b", b"a:b", b"a,b", b"a\r\n", b"(x)"] {
            assert!(!is_token(bad));
        }
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZSE=")); // 17 bytes
    }

    #[test]
    fn key_shape_check_agrees_with_a_strict_decoder() {
        // Every character at every position of a valid key, plus padding
        // and length variants: accepted exactly when base64ct decodes the
        // key to 16 bytes.
        let base = *b"dGhlIHNhbXBsZSBub25jZQ==";
        let decodes = |key: &[u8]| {
            let mut nonce = [0u8; 16];
            key.len() == 24 && matches!(Base64::decode(key, &mut nonce), Ok(d) if d.len() == 16)
        };
        for at in 0..base.len() {
            for b in 0..=255u8 {
                let mut key = base;
                key[at] = b;
                assert_eq!(is_valid_key(&key), decodes(&key), "{:?}", key);
            }
        }
        for key in [
            &b""[..],
            b"==",
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"AdGhlIHNhbXBsZSBub25jZQ==",
            b"dGhlIHNhbXBsZSBub25jZSE=",
            b"dGhlIHNhbXBsZSBub25jZQ\x00\x00",
        ] {
            assert_eq!(is_valid_key(key), decodes(key), "{key:?}");
        }
    }

    #[test]
    fn writer_reports_exact_size() {
        let mut out = [0u8; 4];
        let mut w = Writer::new(&mut out);
        w.put(b"abc");
        w.put_decimal(12345);
        w.put(b"z");
        assert_eq!(w.finish(), Err(InsufficientSizeError { required: 9 }));
        let mut out = [0u8; 30];
        let mut w = Writer::new(&mut out);
        w.put_decimal(0);
        w.put(b" ");
        w.put_decimal(usize::MAX);
        let n = w.finish().unwrap();
        assert_eq!(&out[..n], std::format!("0 {}", usize::MAX).as_bytes());
    }

    #[test]
    fn errors_statuses_and_display() {
        use HandshakeError as E;
        let all = [
            (E::Http(httparse::Error::Token), 400),
            (E::TooLarge, 431),
            (E::TooManyHeaders, 431),
            (E::NotGet, 405),
            (E::NotHttp11, 400),
            (E::NotUpgrade, 426),
            (E::InvalidUpgrade, 400),
            (E::MissingConnectionUpgrade, 400),
            (E::MissingHost, 400),
            (E::InvalidHost, 400),
            (E::InvalidOrigin, 400),
            (E::MissingVersion, 426),
            (E::UnsupportedVersion, 426),
            (E::MissingKey, 400),
            (E::InvalidKey, 400),
            (E::InvalidSubprotocol, 400),
            (E::UnexpectedBody, 400),
            (E::BadStatus(403), 400),
            (E::MissingAccept, 400),
            (E::InvalidAccept, 400),
            (E::UnexpectedSubprotocol, 400),
            (E::UnexpectedExtensions, 400),
        ];
        for (error, status) in all {
            assert_eq!(error.status(), status, "{error:?}");
            assert!(!std::format!("{error}").is_empty());
            // The answer parses back with that status, the reason as body,
            // and the headers the status calls for.
            let mut out = [0u8; 512];
            let n = error.write_response(&mut out).unwrap();
            let mut headers = [EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(body_start) = response.parse(&out[..n]).unwrap() else {
                panic!("incomplete answer for {error:?}");
            };
            assert_eq!(response.code, Some(status));
            let body = if cfg!(feature = "reasons") {
                error.reason()
            } else {
                ""
            };
            assert_eq!(&out[body_start..n], body.as_bytes());
            let headers = &*response.headers;
            let length = find_header(headers, "Content-Length").unwrap();
            assert_eq!(length, std::format!("{}", body.len()).as_bytes());
            assert_eq!(
                find_header(headers, "Sec-WebSocket-Version").is_some(),
                status == 426
            );
            assert_eq!(find_header(headers, "Upgrade").is_some(), status == 426);
            assert_eq!(find_header(headers, "Allow").is_some(), status == 405);
            assert!(has_token(headers, "Connection", "close"));
            // Too small a buffer: the exact size is reported.
            assert_eq!(
                error.write_response(&mut out[..n - 1]),
                Err(InsufficientSizeError { required: n })
            );
        }
        for (error, _) in all {
            // The same bytes as the general writer with the same arguments.
            let extra: &[(&str, &[u8])] = match error {
                E::NotGet => &[("Allow", b"GET")],
                _ => &[],
            };
            let body = if cfg!(feature = "reasons") {
                error.reason()
            } else {
                ""
            };
            let mut general = [0u8; 512];
            let n =
                server::write_reject_unchecked(&mut general, error.status(), body, extra).unwrap();
            let mut out = [0u8; 512];
            let m = error.write_response(&mut out).unwrap();
            assert_eq!(&out[..m], &general[..n], "{error:?}");
        }
        assert_eq!(
            std::format!("{}", E::Http(httparse::Error::HeaderName)),
            "malformed HTTP: invalid header name"
        );
        assert_eq!(
            std::format!("{}", E::BadStatus(404)),
            "server answered with status 404, not 101"
        );
    }

    #[test]
    fn write_error_display() {
        let e: WriteError = InsufficientSizeError { required: 10 }.into();
        assert_eq!(
            e,
            WriteError::InsufficientSize(InsufficientSizeError { required: 10 })
        );
        assert_eq!(
            std::format!("{e}"),
            "output buffer too small: 10 bytes required"
        );
        assert_eq!(
            std::format!("{}", WriteError::InvalidStatus(200)),
            "status 200 cannot reject a handshake"
        );
    }
}
