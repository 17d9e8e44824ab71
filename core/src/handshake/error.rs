//! Why a handshake was refused ([`HandshakeError`], with the HTTP answer
//! it calls for) and why an answer could not be written ([`WriteError`]).

use core::fmt;

use super::*;

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
