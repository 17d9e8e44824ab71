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
mod server;

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
mod tests;
