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
mod tests {
    use std::string::String;
    use std::vec::Vec;

    use super::*;
    use crate::handshake::EMPTY_HEADER;

    /// RFC 6455 §1.2's request, with a query added.
    const VALID: &[u8] = b"GET /chat?room=1&x HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    const BASE_HEADERS: [&str; 7] = [
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Version: 13",
    ];

    /// A request line followed by header lines.
    fn build(request_line: &str, lines: &[&str]) -> Vec<u8> {
        let mut s = String::from(request_line);
        s.push_str("\r\n");
        for line in lines {
            s.push_str(line);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    /// The base headers with those starting with `drop` (a name and colon)
    /// removed and `add` appended.
    fn variant(drop: &[&str], add: &[&str]) -> Vec<u8> {
        let mut lines: Vec<&str> = BASE_HEADERS
            .iter()
            .copied()
            .filter(|l| !drop.iter().any(|d| l.starts_with(d)))
            .collect();
        lines.extend_from_slice(add);
        build("GET /chat HTTP/1.1", &lines)
    }

    #[test]
    fn an_answer_written_with_its_key_held_is_the_same_once_filled_in() {
        // What a driver does (`session::server_handshake_with`): write the
        // answer with a placeholder, then put the key at ACCEPT_KEY_AT.
        with_request(VALID, |request, _| {
            for subprotocol in [None, Some("chat")] {
                let extra: &[(&str, &[u8])] = &[("Set-Cookie", b"id=1")];
                let mut whole = [0u8; 512];
                let n = write_accept(&mut whole, &request, subprotocol, extra).unwrap();
                let mut held = [0u8; 512];
                let m = write_accept_keyed(&mut held, &request, subprotocol, None, extra, None)
                    .unwrap();
                assert_eq!(m, n);
                assert_ne!(held[..n], whole[..n]);
                held[ACCEPT_KEY_AT..ACCEPT_KEY_AT + 28].copy_from_slice(&request.accept_key());
                assert_eq!(held[..n], whole[..n]);
            }
        });
    }

    fn parse_err(buf: &[u8]) -> HandshakeError {
        let mut headers = [EMPTY_HEADER; 64];
        match parse_request(buf, &mut headers, &HandshakeLimits::default()) {
            Err(e) => e,
            Ok(other) => panic!(
                "expected an error for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn with_request<R>(buf: &[u8], f: impl FnOnce(Request<'_, '_>, usize) -> R) -> R {
        let mut headers = [EMPTY_HEADER; 64];
        match parse_request(buf, &mut headers, &HandshakeLimits::default()) {
            Ok(Parsed::Complete { value, consumed }) => f(value, consumed),
            other => panic!(
                "expected a request from {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    #[test]
    fn parses_rfc_request() {
        with_request(VALID, |request, consumed| {
            assert_eq!(consumed, VALID.len());
            assert_eq!(request.method(), "GET");
            assert_eq!(request.target(), "/chat?room=1&x");
            assert_eq!(request.path(), "/chat");
            assert_eq!(request.query(), Some("room=1&x"));
            assert_eq!(request.host(), "server.example.com");
            assert_eq!(request.origin(), Some("http://example.com"));
            assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
            assert_eq!(&request.accept_key(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            assert_eq!(request.headers().len(), 7);
            assert_eq!(request.header("sec-websocket-version"), Some(&b"13"[..]));
            assert_eq!(request.header("ORIGIN"), Some(&b"http://example.com"[..]));
            assert_eq!(request.header("Cookie"), None);
            let offered: Vec<&str> = request.subprotocols().collect();
            assert_eq!(offered, ["chat", "superchat"]);
            assert!(request.offers_subprotocol("superchat"));
            assert!(!request.offers_subprotocol("Chat"));
            assert!(!request.offers_subprotocol("chat, superchat"));
        });
        // No query, no origin, no subprotocol.
        let buf = variant(&["Origin:", "Sec-WebSocket-Protocol:"], &[]);
        with_request(&buf, |request, _| {
            assert_eq!(request.path(), "/chat");
            assert_eq!(request.query(), None);
            assert_eq!(request.origin(), None);
            assert_eq!(request.subprotocols().next(), None);
        });
    }

    #[test]
    fn every_split_point_is_incomplete_then_complete() {
        // A masked text frame "Hello" (RFC 6455 §5.7) right after the request.
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut input = VALID.to_vec();
        input.extend_from_slice(&frame);
        let mut headers = [EMPTY_HEADER; 16];
        for end in 0..VALID.len() {
            let parsed = parse_request(&input[..end], &mut headers, &HandshakeLimits::default());
            assert_eq!(
                parsed.unwrap().into_complete().map(|(_, n)| n),
                None,
                "at {end}"
            );
        }
        for end in VALID.len()..=input.len() {
            let parsed = parse_request(&input[..end], &mut headers, &HandshakeLimits::default());
            let (request, consumed) = parsed.unwrap().into_complete().unwrap();
            assert_eq!(consumed, VALID.len());
            assert_eq!(request.path(), "/chat");
            assert_eq!(&input[consumed..end], &frame[..end - VALID.len()]);
        }
    }

    #[test]
    fn token_lists_in_request() {
        let accepted: [&[&str]; 6] = [
            &["Connection: keep-alive, Upgrade"],
            &["connection: KEEP-ALIVE ,\tupgrade"],
            &["Connection: keep-alive", "Connection: Upgrade"],
            &["Connection: Upgrade", "Connection: close"],
            &["Connection:upgrade,"],
            &["Connection: ,, Upgrade ,"],
        ];
        for lines in accepted {
            let buf = variant(&["Connection:"], lines);
            with_request(&buf, |_, _| ());
        }
        for upgrade in [
            "Upgrade: WebSocket",
            "Upgrade: h2c, websocket",
            "upgrade:websocket ",
        ] {
            let buf = variant(&["Upgrade:"], &[upgrade]);
            with_request(&buf, |_, _| ());
        }
        // Several Sec-WebSocket-Protocol headers combine, in order.
        let buf = variant(
            &["Sec-WebSocket-Protocol:"],
            &[
                "Sec-WebSocket-Protocol: chat, , superchat",
                "sec-websocket-protocol:  v2.json ",
                "SEC-WEBSOCKET-PROTOCOL:",
            ],
        );
        with_request(&buf, |request, _| {
            let offered: Vec<&str> = request.subprotocols().collect();
            assert_eq!(offered, ["chat", "superchat", "v2.json"]);
        });
    }

    #[test]
    fn rejections_with_status() {
        use HandshakeError as E;
        let plain_get = build(
            "GET / HTTP/1.1",
            &["Host: example.com", "Accept: text/html"],
        );
        let cases: Vec<(Vec<u8>, HandshakeError)> = std::vec![
            (build("POST /chat HTTP/1.1", &BASE_HEADERS), E::NotGet),
            (build("get /chat HTTP/1.1", &BASE_HEADERS), E::NotGet),
            (build("GET /chat HTTP/1.0", &BASE_HEADERS), E::NotHttp11),
            (plain_get, E::NotUpgrade),
            (variant(&["Upgrade:"], &[]), E::NotUpgrade),
            (variant(&["Upgrade:"], &["Upgrade: h2c"]), E::InvalidUpgrade),
            (
                variant(&["Upgrade:"], &["Upgrade: websocket2"]),
                E::InvalidUpgrade
            ),
            (variant(&["Connection:"], &[]), E::MissingConnectionUpgrade),
            (
                variant(&["Connection:"], &["Connection: keep-alive"]),
                E::MissingConnectionUpgrade
            ),
            (
                variant(&["Connection:"], &["Connection: Upgrader"]),
                E::MissingConnectionUpgrade
            ),
            (variant(&["Host:"], &[]), E::MissingHost),
            (variant(&["Host:"], &["Host: "]), E::MissingHost),
            (variant(&[], &["Host: other.example.com"]), E::InvalidHost),
            (variant(&["Sec-WebSocket-Version:"], &[]), E::MissingVersion),
            (
                variant(&["Sec-WebSocket-Version:"], &["Sec-WebSocket-Version: 8"]),
                E::UnsupportedVersion
            ),
            (
                variant(
                    &["Sec-WebSocket-Version:"],
                    &["Sec-WebSocket-Version: 13, 8"]
                ),
                E::UnsupportedVersion
            ),
            (
                variant(&[], &["Sec-WebSocket-Version: 13"]),
                E::UnsupportedVersion
            ),
            (variant(&["Sec-WebSocket-Key:"], &[]), E::MissingKey),
            (
                variant(
                    &["Sec-WebSocket-Key:"],
                    &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"]
                ),
                E::InvalidKey
            ),
            (
                // 15 bytes.
                variant(
                    &["Sec-WebSocket-Key:"],
                    &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j"]
                ),
                E::InvalidKey
            ),
            (
                // 17 bytes.
                variant(
                    &["Sec-WebSocket-Key:"],
                    &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE="]
                ),
                E::InvalidKey
            ),
            (
                variant(
                    &["Sec-WebSocket-Key:"],
                    &["Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="]
                ),
                E::InvalidKey
            ),
            (
                variant(&[], &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
                E::InvalidKey
            ),
            (
                variant(&[], &["Origin: http://evil.example"]),
                E::InvalidOrigin
            ),
            (
                variant(
                    &["Sec-WebSocket-Protocol:"],
                    &["Sec-WebSocket-Protocol: chat, sup er"]
                ),
                E::InvalidSubprotocol
            ),
            (
                variant(
                    &["Sec-WebSocket-Protocol:"],
                    &["Sec-WebSocket-Protocol: chat;q=1"]
                ),
                E::InvalidSubprotocol
            ),
            (variant(&[], &["Content-Length: 5"]), E::UnexpectedBody),
            (
                variant(&[], &["Transfer-Encoding: chunked"]),
                E::UnexpectedBody
            ),
        ];
        for (buf, expected) in cases {
            let error = parse_err(&buf);
            assert_eq!(error, expected, "{}", String::from_utf8_lossy(&buf));
        }
        // Non-UTF-8 Host and Origin (obs-text is valid HTTP).
        let mut buf = variant(&["Host:"], &[]);
        buf.splice(buf.len() - 2..buf.len() - 2, *b"Host: \xff\r\n");
        assert_eq!(parse_err(&buf), E::InvalidHost);
        let mut buf = variant(&["Origin:"], &[]);
        buf.splice(buf.len() - 2..buf.len() - 2, *b"Origin: \xfe\r\n");
        assert_eq!(parse_err(&buf), E::InvalidOrigin);
        // `Content-Length: 0` is no body.
        with_request(&variant(&[], &["Content-Length: 0"]), |_, _| ());
        // Malformed HTTP.
        for bad in [
            &b"GET /chat HTTP/1.1\r\nBad Header: x\r\n\r\n"[..],
            b"GET /chat HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET /chat HTTX/1.1\r\n\r\n",
            b"GET /ch at HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
        ] {
            let error = parse_err(bad);
            assert!(matches!(error, E::Http(_)), "{error:?}");
            assert_eq!(error.status(), 400);
        }
        assert_eq!(E::NotGet.status(), 405);
        assert_eq!(E::NotUpgrade.status(), 426);
        assert_eq!(E::UnsupportedVersion.status(), 426);
        assert_eq!(E::MissingVersion.status(), 426);
        assert_eq!(E::InvalidKey.status(), 400);
    }

    /// `VALID` without its final empty line, padded with an `X-Pad` header
    /// (`pad` value bytes) and completed when `complete`.
    fn padded(pad: usize, complete: bool) -> Vec<u8> {
        let mut buf = VALID[..VALID.len() - 2].to_vec();
        buf.extend_from_slice(b"X-Pad: ");
        buf.resize(buf.len() + pad, b'a');
        if complete {
            buf.extend_from_slice(b"\r\n\r\n");
        }
        buf
    }

    #[test]
    fn size_limit() {
        let limits = HandshakeLimits::default();
        let mut headers = [EMPTY_HEADER; 16];
        // Growing past 8192 bytes without completing.
        let growing = padded(9000, false);
        let parsed = parse_request(&growing[..8191], &mut headers, &limits);
        assert_eq!(parsed.unwrap().into_complete().map(|(_, n)| n), None);
        for end in [8192, 8193, growing.len()] {
            let parsed = parse_request(&growing[..end], &mut headers, &limits);
            assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
        }
        assert_eq!(HandshakeError::TooLarge.status(), 431);
        // A complete header block of exactly the limit passes, one byte more
        // does not, whatever follows it.
        let base = padded(0, true).len();
        let mut exact = padded(8192 - base, true);
        assert_eq!(exact.len(), 8192);
        exact.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0]);
        let parsed = parse_request(&exact, &mut headers, &limits);
        assert_eq!(parsed.unwrap().into_complete().unwrap().1, 8192);
        let over = padded(8193 - base, true);
        let parsed = parse_request(&over, &mut headers, &limits);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
        // A custom limit.
        let small = HandshakeLimits {
            max_request_size: 64,
            ..limits
        };
        let parsed = parse_request(VALID, &mut headers, &small);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
        let parsed = parse_request(&VALID[..63], &mut headers, &small);
        assert!(!parsed.unwrap().is_complete());
    }

    #[test]
    fn header_count_limit() {
        let limits = HandshakeLimits::default();
        let filler: Vec<String> = (0..64).map(|i| std::format!("X-Filler-{i}: {i}")).collect();
        let lines = |extra: usize| -> Vec<u8> {
            let mut lines: Vec<&str> = BASE_HEADERS.to_vec();
            lines.extend(filler[..extra].iter().map(String::as_str));
            build("GET /chat HTTP/1.1", &lines)
        };
        let mut headers = [EMPTY_HEADER; 100];
        // Exactly 64 headers pass; 65 do not.
        let buf = lines(64 - BASE_HEADERS.len());
        let parsed = parse_request(&buf, &mut headers, &limits);
        assert_eq!(
            parsed.unwrap().into_complete().unwrap().0.headers().len(),
            64
        );
        let buf = lines(65 - BASE_HEADERS.len());
        let parsed = parse_request(&buf, &mut headers, &limits);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
        // Even before the block is complete.
        let parsed = parse_request(&buf[..buf.len() - 2], &mut headers, &limits);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
        // The slice length also limits.
        let mut few = [EMPTY_HEADER; 6];
        let parsed = parse_request(VALID, &mut few, &limits);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
        // And a smaller configured limit.
        let three = HandshakeLimits {
            max_headers: 3,
            ..limits
        };
        let parsed = parse_request(VALID, &mut headers, &three);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
        assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn write_accept_rfc_example() {
        let mut out = [0u8; 256];
        let expected: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
            Upgrade: websocket\r\n\
            Connection: Upgrade\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
            Sec-WebSocket-Protocol: chat\r\n\
            Set-Cookie: id=1\r\n\r\n";
        let n = with_request(VALID, |request, _| {
            write_accept(&mut out, &request, Some("chat"), &[("Set-Cookie", b"id=1")]).unwrap()
        });
        assert_eq!(&out[..n], expected);
        // Without a subprotocol.
        let n = with_request(VALID, |request, _| {
            write_accept(&mut out, &request, None, &[]).unwrap()
        });
        assert_eq!(
            &out[..n],
            &b"HTTP/1.1 101 Switching Protocols\r\n\
            Upgrade: websocket\r\n\
            Connection: Upgrade\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..]
        );
    }

    #[test]
    fn write_accept_refusals() {
        with_request(VALID, |request, _| {
            let mut out = [0u8; 512];
            let mut accept =
                |sub, extra: &[(&str, &[u8])]| write_accept(&mut out, &request, sub, extra);
            assert_eq!(
                accept(Some("mqtt"), &[]),
                Err(WriteError::UnofferedSubprotocol)
            );
            assert_eq!(
                accept(Some("Chat"), &[]),
                Err(WriteError::UnofferedSubprotocol)
            );
            assert_eq!(accept(Some(""), &[]), Err(WriteError::UnofferedSubprotocol));
            for value in [&b"a\r\nX-Injected: 1"[..], b"a\nb", b"a\rb", b"\0"] {
                assert_eq!(
                    accept(None, &[("Set-Cookie", value)]),
                    Err(WriteError::InvalidHeaderValue)
                );
            }
            for name in ["X Bad", "X:Y", "", "X\r\nY", "Ünicode"] {
                assert_eq!(
                    accept(None, &[(name, b"v")]),
                    Err(WriteError::InvalidHeaderName)
                );
            }
            for name in [
                "connection",
                "Sec-WebSocket-Accept",
                "CONTENT-LENGTH",
                "Upgrade",
            ] {
                assert_eq!(
                    accept(None, &[(name, b"v")]),
                    Err(WriteError::ReservedHeader)
                );
            }
        });
    }

    #[test]
    fn write_accept_too_small() {
        with_request(VALID, |request, _| {
            let mut out = [0u8; 256];
            let extra: &[(&str, &[u8])] = &[("Set-Cookie", b"id=1")];
            let n = write_accept(&mut out, &request, Some("superchat"), extra).unwrap();
            for size in 0..n {
                assert_eq!(
                    write_accept(&mut out[..size], &request, Some("superchat"), extra),
                    Err(WriteError::InsufficientSize(InsufficientSizeError {
                        required: n
                    }))
                );
            }
            assert_eq!(
                write_accept(&mut out[..n], &request, Some("superchat"), extra),
                Ok(n)
            );
        });
    }

    #[test]
    fn write_reject_format() {
        let mut out = [0u8; 512];
        let n = write_reject(
            &mut out,
            403,
            "origin not allowed",
            &[("X-Reason", b"origin")],
        );
        assert_eq!(
            &out[..n.unwrap()],
            &b"HTTP/1.1 403 Forbidden\r\n\
            Connection: close\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Length: 18\r\n\
            X-Reason: origin\r\n\r\n\
            origin not allowed"[..]
        );
        let n = write_reject(&mut out, 426, "", &[]).unwrap();
        assert_eq!(
            &out[..n],
            &b"HTTP/1.1 426 Upgrade Required\r\n\
            Connection: Upgrade, close\r\n\
            Upgrade: websocket\r\n\
            Sec-WebSocket-Version: 13\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Length: 0\r\n\r\n"[..]
        );
        // The body may hold anything: it is counted, not parsed.
        let body = "line one\r\n\r\nHTTP/1.1 200 OK\r\n";
        let n = write_reject(&mut out, 499, body, &[]).unwrap();
        assert!(out[..n].starts_with(b"HTTP/1.1 499 Client Error\r\n"));
        assert!(
            out[..n].ends_with(b"Content-Length: 29\r\n\r\nline one\r\n\r\nHTTP/1.1 200 OK\r\n")
        );
        let n = write_reject(&mut out, 302, "", &[("Location", b"/login")]).unwrap();
        assert!(out[..n].starts_with(b"HTTP/1.1 302 Found\r\n"));
        for (status, phrase) in [
            (431, "Request Header Fields Too Large"),
            (503, "Service Unavailable"),
            (599, "Server Error"),
            (399, "Redirection"),
        ] {
            let n = write_reject(&mut out, status, "", &[]).unwrap();
            let line = std::format!("HTTP/1.1 {status} {phrase}\r\n");
            assert!(out[..n].starts_with(line.as_bytes()), "{status}");
        }
    }

    #[test]
    fn write_reject_refusals() {
        let mut out = [0u8; 512];
        for status in [0, 101, 200, 204, 299, 304, 600, 1000] {
            assert_eq!(
                write_reject(&mut out, status, "", &[]),
                Err(WriteError::InvalidStatus(status))
            );
        }
        assert_eq!(
            write_reject(&mut out, 400, "", &[("X-A", b"1\r\n\r\ninjected")]),
            Err(WriteError::InvalidHeaderValue)
        );
        assert_eq!(
            write_reject(&mut out, 400, "", &[("X-A: 1\r\nX-B", b"1")]),
            Err(WriteError::InvalidHeaderName)
        );
        for name in [
            "Content-Length",
            "content-type",
            "Connection",
            "Transfer-Encoding",
            "Sec-WebSocket-Version",
        ] {
            assert_eq!(
                write_reject(&mut out, 400, "", &[(name, b"1")]),
                Err(WriteError::ReservedHeader)
            );
        }
    }

    #[test]
    fn write_reject_too_small() {
        let mut out = [0u8; 256];
        let n = write_reject(&mut out, 426, "upgrade to WebSocket", &[("X-A", b"b")]).unwrap();
        for size in 0..n {
            assert_eq!(
                write_reject(
                    &mut out[..size],
                    426,
                    "upgrade to WebSocket",
                    &[("X-A", b"b")]
                ),
                Err(WriteError::InsufficientSize(InsufficientSizeError {
                    required: n
                }))
            );
        }
    }
}
