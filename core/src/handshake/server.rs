//! Server side: parse the client's upgrade request, write the answer.

use httparse::Header;

use super::{
    accept_key, check_extra_headers, complete_or_limit, find_header, limit_headers, limit_input,
    name, HandshakeError, HandshakeLimits, Parsed, Scan, Single, Tokens, WriteError, Writer,
};
use crate::error::InsufficientSizeError;

/// A valid WebSocket upgrade request (RFC 6455 §4.2.1), borrowing the input
/// buffer (`'b`) and the header slice (`'h`).
#[derive(Clone, Copy, Debug)]
pub struct Request<'h, 'b> {
    method: &'b str,
    target: &'b str,
    host: &'b str,
    origin: Option<&'b str>,
    /// Checked to be base64 (ASCII) by `validate`.
    key: &'b [u8],
    headers: &'h [Header<'b>],
}

impl<'h, 'b> Request<'h, 'b> {
    /// The request method (always `GET` once validated).
    pub const fn method(&self) -> &'b str {
        self.method
    }

    /// The request target as sent: path and query.
    pub const fn target(&self) -> &'b str {
        self.target
    }

    /// The path: the request target up to the first `?`.
    pub fn path(&self) -> &'b str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }

    /// The query: what follows the first `?`, if there is one.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The `Host` header, trimmed (present exactly once and non-empty).
    pub const fn host(&self) -> &'b str {
        self.host
    }

    /// The `Origin` header, trimmed, if sent (browsers always send it).
    pub const fn origin(&self) -> Option<&'b str> {
        self.origin
    }

    /// The `Sec-WebSocket-Key` header, trimmed: 24 base64 characters.
    pub fn key(&self) -> &'b str {
        // Base64, so ASCII: the conversion cannot fail.
        core::str::from_utf8(self.key).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Key` value as sent (base64, checked).
    pub(crate) const fn key_bytes(&self) -> &'b [u8] {
        self.key
    }

    /// The `Sec-WebSocket-Accept` value answering this request's key.
    pub fn accept_key(&self) -> [u8; 28] {
        accept_key_out_of_line(self.key)
    }

    /// Every header of the request, in order.
    pub const fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        find_header(self.headers, name)
    }

    /// The subprotocols the client offers, in its order of preference: the
    /// comma-separated elements of every `Sec-WebSocket-Protocol` header,
    /// trimmed, empty elements skipped. Each is an HTTP token.
    pub fn subprotocols(&self) -> Subprotocols<'h, 'b> {
        Subprotocols {
            tokens: Tokens::new(self.headers, "Sec-WebSocket-Protocol"),
        }
    }

    /// Whether the client offers the subprotocol `name` (exact comparison).
    pub fn offers_subprotocol(&self, name: &str) -> bool {
        self.subprotocols().any(|offered| offered == name)
    }
}

/// The subprotocols a client offers; see [`Request::subprotocols`].
#[derive(Clone, Debug)]
pub struct Subprotocols<'h, 'b> {
    tokens: Tokens<'h, 'b>,
}

impl<'b> Iterator for Subprotocols<'_, 'b> {
    type Item = &'b str;

    fn next(&mut self) -> Option<&'b str> {
        // Validated as tokens (ASCII) by `parse_request`.
        self.tokens.find_map(|t| core::str::from_utf8(t).ok())
    }
}

impl core::iter::FusedIterator for Subprotocols<'_, '_> {}

/// Parses a client's opening handshake from the start of `buf`.
///
/// Returns [`Parsed::Incomplete`] until the header block has ended: read more
/// and call again with the whole buffer. On [`Parsed::Complete`], `consumed`
/// is the length of the header block; what follows belongs to the WebSocket
/// connection.
///
/// Headers are parsed into `headers`; at most
/// min(`headers.len()`, [`HandshakeLimits::max_headers`]) are accepted.
///
/// The checks, in order (the first failure is reported): HTTP syntax, size
/// and header-count limits; method `GET` ([`HandshakeError::NotGet`]);
/// HTTP/1.1 ([`HandshakeError::NotHttp11`]); an `Upgrade` header at all
/// ([`HandshakeError::NotUpgrade`], a plain HTTP request); one non-empty UTF-8
/// `Host`; the `websocket` token in `Upgrade`; the `Upgrade` token in
/// `Connection`; `Sec-WebSocket-Version: 13`; one `Sec-WebSocket-Key` that is
/// the base64 of 16 bytes; at most one UTF-8 `Origin`; subprotocols that are
/// tokens; no request body.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: &HandshakeLimits,
) -> Result<Parsed<Request<'h, 'b>>, HandshakeError> {
    let input = limit_input(buf, limits);
    let mut request = httparse::Request::new(limit_headers(headers, limits));
    let status = request.parse(input);
    let Some(consumed) = complete_or_limit(status, input.len(), limits)? else {
        return Ok(Parsed::Incomplete);
    };
    let httparse::Request {
        method,
        path,
        version,
        headers,
    } = request;
    let value = validate(
        method.unwrap_or_default(),
        path.unwrap_or_default(),
        version,
        headers,
    )?;
    Ok(Parsed::Complete { value, consumed })
}

/// The server's header scan, out of line: less flash than inlined in
/// the request parser (the client's is better inlined).
#[inline(never)]
fn scan<'b>(headers: &[Header<'b>]) -> Scan<'b> {
    Scan::new::<true>(headers)
}

/// [`accept_key`], out of line: less flash in a server than inlined into
/// the request handling (a client's is better inlined).
#[inline(never)]
fn accept_key_out_of_line(key: &[u8]) -> [u8; 28] {
    accept_key(key)
}

fn validate<'h, 'b>(
    method: &'b str,
    target: &'b str,
    version: Option<u8>,
    headers: &'h [Header<'b>],
) -> Result<Request<'h, 'b>, HandshakeError> {
    // Compared byte by byte: a `!=` on the strings is the firmware's only
    // call to `memcmp` (116 bytes of flash on a Cortex-M).
    if !matches!(method.as_bytes(), [b'G', b'E', b'T']) {
        return Err(HandshakeError::NotGet);
    }
    if version != Some(1) {
        return Err(HandshakeError::NotHttp11);
    }
    let scan = scan(headers);
    if !scan.has(name::UPGRADE) {
        return Err(HandshakeError::NotUpgrade);
    }
    let host = match scan.single(name::HOST) {
        Single::Absent => return Err(HandshakeError::MissingHost),
        Single::Many => return Err(HandshakeError::InvalidHost),
        Single::One(value) => {
            core::str::from_utf8(value).map_err(|_| HandshakeError::InvalidHost)?
        }
    };
    if host.is_empty() {
        return Err(HandshakeError::MissingHost);
    }
    if !scan.upgrade_websocket {
        return Err(HandshakeError::InvalidUpgrade);
    }
    if !scan.connection_upgrade {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match scan.single(name::VERSION) {
        Single::Absent => return Err(HandshakeError::MissingVersion),
        Single::One(b"13") => {}
        Single::One(_) | Single::Many => return Err(HandshakeError::UnsupportedVersion),
    }
    let key = match scan.single(name::KEY) {
        Single::Absent => return Err(HandshakeError::MissingKey),
        Single::Many => return Err(HandshakeError::InvalidKey),
        Single::One(value) => value,
    };
    if !super::is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    let origin = match scan.single(name::ORIGIN) {
        Single::Absent => None,
        Single::Many => return Err(HandshakeError::InvalidOrigin),
        Single::One(value) => {
            Some(core::str::from_utf8(value).map_err(|_| HandshakeError::InvalidOrigin)?)
        }
    };
    if scan.invalid_subprotocol {
        return Err(HandshakeError::InvalidSubprotocol);
    }
    if scan.body {
        return Err(HandshakeError::UnexpectedBody);
    }
    Ok(Request {
        method,
        target,
        host,
        origin,
        key,
        headers,
    })
}

/// Headers [`write_accept`] writes itself, refused as extra headers.
const ACCEPT_RESERVED: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// Writes the `101 Switching Protocols` answer to `request` into `out` and
/// returns its length:
///
/// ```text
/// HTTP/1.1 101 Switching Protocols
/// Upgrade: websocket
/// Connection: Upgrade
/// Sec-WebSocket-Accept: <accept key>
/// [Sec-WebSocket-Protocol: <subprotocol>]
/// [extra headers]
/// ```
///
/// `subprotocol` must be one the client offered
/// ([`Request::offers_subprotocol`]); otherwise
/// [`WriteError::UnofferedSubprotocol`]. Extra headers must have token names
/// and values without CR, LF or other controls, and must not repeat a header
/// written here (or `Content-Length`, `Transfer-Encoding`,
/// `Sec-WebSocket-Extensions`: an extension is answered with
/// `write_accept_with_deflate`, feature `deflate`).
/// All checks happen before anything is written; if only the buffer is too
/// small, the error carries the exact length needed. The contents of `out`
/// are unspecified on error.
pub fn write_accept(
    out: &mut [u8],
    request: &Request<'_, '_>,
    subprotocol: Option<&str>,
    extra_headers: &[(&str, &[u8])],
) -> Result<usize, WriteError> {
    write_accept_keyed(
        out,
        request,
        subprotocol,
        None,
        extra_headers,
        Some(&request.accept_key()),
    )
}

/// The start of every accepting answer, up to its accept key.
const ACCEPT_HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: ";

/// Where the accept key is in an answer [`write_accept_keyed`] wrote: a
/// driver writes the answer with the key's place held and fills it in
/// once the request's headers are off the stack (see
/// `session::server_handshake_with`).
pub(crate) const ACCEPT_KEY_AT: usize = ACCEPT_HEAD.len();

/// [`write_accept`] and [`write_accept_with_deflate`] (the answer's
/// `Sec-WebSocket-Extensions` value in `extension`), with the accept key
/// given: it goes at [`ACCEPT_KEY_AT`]. With `None` its 28 bytes there are
/// left as they were, for the caller to fill in.
pub(crate) fn write_accept_keyed(
    out: &mut [u8],
    request: &Request<'_, '_>,
    subprotocol: Option<&str>,
    extension: Option<&[u8]>,
    extra_headers: &[(&str, &[u8])],
    accept: Option<&[u8; 28]>,
) -> Result<usize, WriteError> {
    if let Some(chosen) = subprotocol {
        if !request.offers_subprotocol(chosen) {
            return Err(WriteError::UnofferedSubprotocol);
        }
    }
    check_extra_headers(extra_headers, ACCEPT_RESERVED)?;
    let mut w = Writer::new(out);
    w.put(ACCEPT_HEAD);
    match accept {
        Some(accept) => w.put(accept),
        None => w.skip(28),
    }
    w.put(b"\r\n");
    if let Some(chosen) = subprotocol {
        w.header("Sec-WebSocket-Protocol", chosen.as_bytes());
    }
    if let Some(answer) = extension {
        w.header("Sec-WebSocket-Extensions", answer);
    }
    w.extra_headers(extra_headers);
    w.put(b"\r\n");
    Ok(w.finish()?)
}

/// [`write_accept`] with permessage-deflate (feature `deflate`): when
/// `deflate` is the agreement [`crate::deflate::negotiate`] found, its
/// answer is written as a `Sec-WebSocket-Extensions` header after the
/// others (with `None` this is [`write_accept`]). Then enable it on the
/// connection ([`crate::Connection::enable_deflate`]).
#[cfg(feature = "deflate")]
pub fn write_accept_with_deflate(
    out: &mut [u8],
    request: &Request<'_, '_>,
    subprotocol: Option<&str>,
    deflate: Option<&crate::deflate::DeflateParams>,
    extra_headers: &[(&str, &[u8])],
) -> Result<usize, WriteError> {
    let accept = request.accept_key();
    write_accept_with_deflate_keyed(
        out,
        request,
        subprotocol,
        deflate,
        extra_headers,
        Some(&accept),
    )
}

/// [`write_accept_with_deflate`] with the accept key given (see
/// [`write_accept_keyed`]).
#[cfg(feature = "deflate")]
pub(crate) fn write_accept_with_deflate_keyed(
    out: &mut [u8],
    request: &Request<'_, '_>,
    subprotocol: Option<&str>,
    deflate: Option<&crate::deflate::DeflateParams>,
    extra_headers: &[(&str, &[u8])],
    accept: Option<&[u8; 28]>,
) -> Result<usize, WriteError> {
    let answer = deflate.map(crate::deflate::DeflateParams::answer);
    let extension = answer.as_ref().map(|a| a.as_bytes());
    write_accept_keyed(out, request, subprotocol, extension, extra_headers, accept)
}

/// Headers [`write_reject`] writes itself, refused as extra headers.
const REJECT_RESERVED: &[&str] = &[
    "Connection",
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Upgrade",
    "Sec-WebSocket-Version",
];

/// Writes an HTTP answer refusing the handshake into `out` and returns its
/// length:
///
/// ```text
/// HTTP/1.1 <status> <canonical reason phrase>
/// Connection: close                       (426: Connection: Upgrade, close)
/// [Upgrade: websocket]                    (426 only)
/// [Sec-WebSocket-Version: 13]             (426 only)
/// Content-Type: text/plain; charset=utf-8
/// Content-Length: <body length>
/// [extra headers]
///
/// <body>
/// ```
///
/// The 426 headers follow RFC 6455 §4.4 (the versions understood) and
/// RFC 9110 §15.5.22 (a 426 names the protocol to upgrade to, which RFC 9110
/// §7.8 says `Connection` must then list). `status` must be in 300–599 and
/// not 304 ([`WriteError::InvalidStatus`]); a 3xx needs its `Location` as an
/// extra header. `body` is sent as is (it is the body, so any text is safe).
/// Extra headers are checked as in [`write_accept`] and must not repeat a
/// header written here. The contents of `out` are unspecified on error.
pub fn write_reject(
    out: &mut [u8],
    status: u16,
    body: &str,
    extra_headers: &[(&str, &[u8])],
) -> Result<usize, WriteError> {
    if !(300..=599).contains(&status) || status == 304 {
        return Err(WriteError::InvalidStatus(status));
    }
    check_extra_headers(extra_headers, REJECT_RESERVED)?;
    Ok(write_reject_unchecked(out, status, body, extra_headers)?)
}

/// [`write_reject`] without the checks, for inputs known to be valid.
pub(super) fn write_reject_unchecked(
    out: &mut [u8],
    status: u16,
    body: &str,
    extra_headers: &[(&str, &[u8])],
) -> Result<usize, InsufficientSizeError> {
    let mut w = Writer::new(out);
    w.put(b"HTTP/1.1 ");
    w.put_decimal(usize::from(status));
    w.put(b" ");
    w.put(reason_phrase(status).as_bytes());
    w.put(b"\r\n");
    if status == 426 {
        w.header("Connection", b"Upgrade, close");
        w.header("Upgrade", b"websocket");
        w.header("Sec-WebSocket-Version", b"13");
    } else {
        w.header("Connection", b"close");
    }
    w.header("Content-Type", b"text/plain; charset=utf-8");
    w.put(b"Content-Length: ");
    w.put_decimal(body.len());
    w.put(b"\r\n");
    w.extra_headers(extra_headers);
    w.put(b"\r\n");
    w.put(body.as_bytes());
    w.finish()
}

/// The RFC 9110 reason phrase of `status`, or the name of its class.
const fn reason_phrase(status: u16) -> &'static str {
    match status {
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        511 => "Network Authentication Required",
        _ if status < 400 => "Redirection",
        _ if status < 500 => "Client Error",
        _ => "Server Error",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
