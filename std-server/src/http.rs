//! Plain HTTP beside the WebSocket, on the same port: what
//! [`Handler::on_request`](crate::Handler::on_request) sees
//! ([`HttpRequest`]) and answers ([`HttpResponse`]).
//!
//! The server answers one request per connection and then closes it
//! (`Connection: close`; no keep-alive, no pipelining): enough for a
//! health check, a small page or a redirect, not a web server.

use core::fmt;
use core::net::SocketAddr;

use snowsocket_core::handshake::Header;

/// A request that is not a WebSocket upgrade (no `Upgrade` header names
/// `websocket`), as [`Handler::on_request`](crate::Handler::on_request) sees
/// it. Any method; HTTP/1.0 or HTTP/1.1.
#[derive(Debug)]
pub struct HttpRequest<'h, 'b> {
    pub(crate) method: &'b str,
    pub(crate) target: &'b str,
    pub(crate) version: u8,
    pub(crate) headers: &'h [Header<'b>],
    pub(crate) body: &'b [u8],
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
}

impl<'h, 'b> HttpRequest<'h, 'b> {
    /// The method, as sent (`GET`, `HEAD`, `POST`, ...).
    pub const fn method(&self) -> &'b str {
        self.method
    }
    /// Whether the method is `HEAD`: the server then sends the answer's
    /// head only (with the `Content-Length` of its body), whatever the
    /// handler returns.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
    /// The request target as sent: path and query.
    pub const fn target(&self) -> &'b str {
        self.target
    }
    /// The path (request target up to `?`).
    pub fn path(&self) -> &'b str {
        self.target
            .split_once('?')
            .map_or(self.target, |(path, _)| path)
    }
    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, query)| query)
    }
    /// The HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub const fn version(&self) -> u8 {
        self.version
    }
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
    /// Every header, in order.
    pub const fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }
    /// The body: the `Content-Length` bytes after the header block (empty
    /// when there is none). Header block and body together fit in
    /// [`HandshakeLimits::max_request_size`](crate::HandshakeLimits)
    /// (larger bodies are refused with 413 before the handler runs) and
    /// arrive within the handshake timeout.
    pub const fn body(&self) -> &'b [u8] {
        self.body
    }
    /// The peer's address.
    pub const fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
    /// Whether the connection is TLS (`https://`).
    pub const fn is_tls(&self) -> bool {
        self.tls
    }
}

/// The answer to an [`HttpRequest`]: a status, headers and a body.
///
/// The server adds `Connection: close` and `Content-Length` itself (and,
/// on a 426, `Upgrade: websocket` and `Sec-WebSocket-Version: 13`), then
/// closes the connection once the answer is written. Header names must
/// be HTTP tokens and values must hold no CR, LF or other control
/// character (HTAB is allowed): an answer that breaks a rule is not sent
/// but replaced by a `500` and logged with the reason (see
/// [`HttpResponse::check`]), so a header can never split the answer.
///
/// ```
/// use snowsocket_server::HttpResponse;
///
/// let page = HttpResponse::html("<h1>hello</h1>");
/// let moved = HttpResponse::redirect(308, "/chat");
/// let health = HttpResponse::text(200, "ok").with_header("Cache-Control", "no-store");
/// assert!(page.check().is_ok() && moved.check().is_ok() && health.check().is_ok());
/// let bad = HttpResponse::text(200, "").with_header("X-A", "1\r\nSet-Cookie: evil=1");
/// assert!(bad.check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Headers the server writes itself, refused in an [`HttpResponse`].
const RESERVED: &[&str] = &["Connection", "Content-Length", "Transfer-Encoding"];
/// Also refused on a 426, which names the upgrade itself.
const RESERVED_426: &[&str] = &["Upgrade", "Sec-WebSocket-Version"];

impl HttpResponse {
    /// `status` (200–599), no header, an empty body.
    pub const fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with a plain-text body (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// `200 OK` with an HTML page (`text/html; charset=utf-8`).
    pub fn html(body: impl Into<String>) -> Self {
        Self::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(body.into())
    }

    /// A redirect (`status` 301, 302, 303, 307 or 308) to `location`.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Self::new(status).with_header("Location", location)
    }

    /// `404 Not Found`, plain text.
    pub fn not_found() -> Self {
        Self::text(404, "not found")
    }

    /// `426 Upgrade Required` (with `Upgrade: websocket` and
    /// `Sec-WebSocket-Version: 13`): the answer of a WebSocket-only
    /// server, and what [`Handler::on_request`](crate::Handler::on_request)
    /// answers unless overridden.
    pub fn upgrade_required() -> Self {
        Self::text(426, "WebSocket upgrade required")
    }

    /// Adds a header (checked when the answer is written, see
    /// [`check`](Self::check)).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (set its `Content-Type` with
    /// [`with_header`](Self::with_header)).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The headers added, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether the server will send this answer as it is: a status in
    /// 200–599; no body on a 204 or 304; header names that are HTTP
    /// tokens; values without CR, LF or other control characters; none
    /// of the headers the server writes itself (`Connection`,
    /// `Content-Length`, `Transfer-Encoding`; on a 426 also `Upgrade` and
    /// `Sec-WebSocket-Version`).
    pub fn check(&self) -> Result<(), ResponseError> {
        if !(200..=599).contains(&self.status) {
            return Err(ResponseError::InvalidStatus(self.status));
        }
        if matches!(self.status, 204 | 304) && !self.body.is_empty() {
            return Err(ResponseError::BodyNotAllowed(self.status));
        }
        for (name, value) in &self.headers {
            check_header(name, value.as_bytes())?;
            let reserved = RESERVED
                .iter()
                .chain(if self.status == 426 {
                    RESERVED_426
                } else {
                    &[]
                })
                .any(|r| r.eq_ignore_ascii_case(name));
            if reserved {
                return Err(ResponseError::ReservedHeader(name.clone()));
            }
        }
        Ok(())
    }

    /// Appends the answer to `out` (the head only when `head_only`, for a
    /// `HEAD` request), after [`check`](Self::check) and a body of at most
    /// `max_body` bytes; on error nothing is appended.
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        head_only: bool,
        max_body: usize,
    ) -> Result<(), ResponseError> {
        self.check()?;
        if self.body.len() > max_body {
            return Err(ResponseError::BodyTooLarge {
                len: self.body.len(),
                max: max_body,
            });
        }
        let status = self.status;
        out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
        if status == 426 {
            out.extend_from_slice(
                b"Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            );
        } else {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !matches!(status, 204 | 304) {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        Ok(())
    }
}

impl Default for HttpResponse {
    /// [`HttpResponse::upgrade_required`].
    fn default() -> Self {
        Self::upgrade_required()
    }
}

/// Checks one header: a token name and a value without control characters
/// other than HTAB (RFC 9110 §5.1, §5.5).
pub(crate) fn check_header(name: &str, value: &[u8]) -> Result<(), ResponseError> {
    let tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(ResponseError::InvalidHeaderName(
            name.escape_debug().to_string(),
        ));
    }
    if value.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f) {
        return Err(ResponseError::InvalidHeaderValue(name.to_owned()));
    }
    Ok(())
}

/// Why an [`HttpResponse`] (or an [`Accept`](crate::Accept)'s headers)
/// cannot be sent as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// A status outside 200–599 (an [`Accept::reject`](crate::Accept::reject):
    /// outside 300–599, or 304).
    InvalidStatus(u16),
    /// A body on a status that has none (204, 304).
    BodyNotAllowed(u16),
    /// A header name (escaped) that is not an HTTP token.
    InvalidHeaderName(String),
    /// The value of this header holds CR, LF or another control character.
    InvalidHeaderValue(String),
    /// The server writes this header itself.
    ReservedHeader(String),
    /// A body larger than
    /// [`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes).
    BodyTooLarge {
        /// The body's length.
        len: usize,
        /// The largest body sent.
        max: usize,
    },
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidStatus(status) => write!(f, "status {status} cannot be answered here"),
            Self::BodyNotAllowed(status) => write!(f, "a {status} answer has no body"),
            Self::InvalidHeaderName(name) => {
                write!(f, "header name \"{name}\" is not an HTTP token")
            }
            Self::InvalidHeaderValue(name) => write!(
                f,
                "value of header \"{name}\" holds CR, LF or another control character"
            ),
            Self::ReservedHeader(name) => {
                write!(f, "header \"{name}\" is written by the server itself")
            }
            Self::BodyTooLarge { len, max } => {
                write!(f, "body of {len} bytes is larger than the limit, {max}")
            }
        }
    }
}

impl core::error::Error for ResponseError {}

/// The RFC 9110 reason phrase of `status`, or the name of its class.
const fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ if status < 300 => "Success",
        _ if status < 400 => "Redirection",
        _ if status < 500 => "Client Error",
        _ => "Server Error",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn written(response: &HttpResponse, head_only: bool) -> String {
        let mut out = Vec::new();
        response.write(&mut out, head_only, 1 << 20).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_status_headers_length_and_body() {
        let page = HttpResponse::html("<p>hi</p>").with_header("Cache-Control", "no-store");
        assert_eq!(
            written(&page, false),
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\
             Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n\
             Content-Length: 9\r\n\r\n<p>hi</p>"
        );
        // HEAD: the same head, no body.
        assert_eq!(
            written(&page, true),
            written(&page, false).trim_end_matches("<p>hi</p>")
        );
        assert_eq!(
            written(&HttpResponse::upgrade_required(), false),
            "HTTP/1.1 426 Upgrade Required\r\nConnection: Upgrade, close\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\n\
             WebSocket upgrade required"
        );
        assert_eq!(
            written(&HttpResponse::new(204), false),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn refuses_what_would_split_or_contradict_the_answer() {
        let base = || HttpResponse::new(200);
        let cases = [
            (base().with_header("X-A", "1\r\nX-B: 2"), "X-A"),
            (base().with_header("X-A", "1\nX-B: 2"), "X-A"),
            (base().with_header("X-A", "\0"), "X-A"),
        ];
        for (response, name) in cases {
            assert_eq!(
                response.check(),
                Err(ResponseError::InvalidHeaderValue(name.into()))
            );
        }
        for name in ["X A", "X:A", "", "X\r\nY", "Ü"] {
            let error = base().with_header(name, "v").check().unwrap_err();
            assert!(
                matches!(error, ResponseError::InvalidHeaderName(_)),
                "{name}"
            );
        }
        for name in ["content-length", "Connection", "Transfer-Encoding"] {
            assert_eq!(
                base().with_header(name, "1").check(),
                Err(ResponseError::ReservedHeader(name.into()))
            );
        }
        assert!(HttpResponse::text(426, "")
            .with_header("Upgrade", "h2c")
            .check()
            .is_err());
        assert!(HttpResponse::text(400, "")
            .with_header("Upgrade", "h2c")
            .check()
            .is_ok());
        for status in [0, 100, 101, 199, 600] {
            assert_eq!(
                HttpResponse::new(status).check(),
                Err(ResponseError::InvalidStatus(status))
            );
        }
        assert_eq!(
            HttpResponse::text(204, "x").check(),
            Err(ResponseError::BodyNotAllowed(204))
        );
        // A header value may hold a tab and non-ASCII text.
        assert!(base().with_header("X-A", "a\tb é").check().is_ok());
        // Too large a body: nothing is written.
        let mut out = Vec::new();
        let big = HttpResponse::text(200, "12345");
        assert_eq!(
            big.write(&mut out, false, 4),
            Err(ResponseError::BodyTooLarge { len: 5, max: 4 })
        );
        assert!(out.is_empty());
        let bad = base().with_header("X-A", "1\r\n\r\n<script>");
        assert!(bad.write(&mut out, false, 100).is_err());
        assert!(out.is_empty());
    }
}
