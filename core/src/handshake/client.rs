//! Client side: write the upgrade request, check the server's answer.

use httparse::Header;
use rand_core::RngCore;

#[cfg(feature = "deflate")]
use crate::error::InsufficientSizeError;

use super::{
    accept_key, check_extra_headers, complete_or_limit, find_header, is_field_value, is_token,
    is_valid_key, is_visible_ascii, limit_headers, limit_input, name, HandshakeError,
    HandshakeLimits, Parsed, Scan, Single, WriteError, Writer,
};

/// A fresh `Sec-WebSocket-Key`: the base64 of 16 bytes from `rng`
/// (RFC 6455 §4.1 asks for a randomly selected nonce per connection).
pub fn generate_key<R: RngCore + ?Sized>(rng: &mut R) -> [u8; 24] {
    // Four `next_u32`: the bytes `fill_bytes` gives with rand_core's
    // helpers, and the RNG need not link its `fill_bytes` (as for the
    // heartbeat payload and the masking keys).
    let mut nonce = [0u8; 16];
    for chunk in nonce.chunks_exact_mut(4) {
        chunk.copy_from_slice(&rng.next_u32().to_le_bytes());
    }
    let mut key = [0u8; 24];
    super::encode_padded(&nonce, &mut key);
    key
}

/// What a client asks for in its opening handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    /// The `Host` header: host, and port when not the default
    /// (`example.com`, `127.0.0.1:8080`, `[::1]:9001`).
    pub host: &'a str,
    /// The request target: the path, starting with `/`, with its query if any
    /// (`/chat?room=1`), already percent-encoded.
    pub path: &'a str,
    /// The `Origin` header, if any (browsers always send one).
    pub origin: Option<&'a str>,
    /// The subprotocols offered, in order of preference (HTTP tokens);
    /// empty for none.
    pub subprotocols: &'a [&'a str],
    /// More headers (`Authorization`, `Cookie`, …): token names and values
    /// without CR, LF or other controls, none that the request writes itself.
    pub extra_headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> ClientRequest<'a> {
    /// A request for `path` on `host`, with no origin, subprotocol or extra
    /// header.
    pub const fn new(host: &'a str, path: &'a str) -> Self {
        Self {
            host,
            path,
            origin: None,
            subprotocols: &[],
            extra_headers: &[],
        }
    }
}

/// Headers [`write_request`] writes itself, refused as extra headers
/// (extensions too: an accepted one would fail [`parse_response`]; with
/// the `deflate` feature, `write_request_with_deflate` offers one).
const REQUEST_RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
    "Content-Length",
    "Transfer-Encoding",
];

/// Writes the client's opening handshake into `out` and returns its length:
///
/// ```text
/// GET <path> HTTP/1.1
/// Host: <host>
/// Upgrade: websocket
/// Connection: Upgrade
/// Sec-WebSocket-Key: <key>
/// Sec-WebSocket-Version: 13
/// [Origin: <origin>]
/// [Sec-WebSocket-Protocol: <a>, <b>]
/// [extra headers]
/// ```
///
/// Refused before anything is written: an empty host or one with spaces or
/// controls ([`WriteError::InvalidHost`]); a path not starting with `/` or
/// holding anything but visible ASCII ([`WriteError::InvalidTarget`]); an
/// empty origin or one with controls ([`WriteError::InvalidHeaderValue`]); a
/// subprotocol that is not a token ([`WriteError::InvalidSubprotocol`]); a
/// `key` that is not the base64 of 16 bytes ([`WriteError::InvalidKey`]);
/// extra headers as for
/// [`write_accept`](super::write_accept). If only the buffer is too small,
/// the error carries the exact length needed. The contents of `out` are
/// unspecified on error.
pub fn write_request(
    out: &mut [u8],
    request: &ClientRequest<'_>,
    key: &[u8; 24],
) -> Result<usize, WriteError> {
    write_request_checked(out, request, key, true)
}

/// [`write_request`] with a key from [`generate_key`], which needs no check
/// (what the driver sends).
pub(crate) fn write_generated_request(
    out: &mut [u8],
    request: &ClientRequest<'_>,
    key: &[u8; 24],
) -> Result<usize, WriteError> {
    write_request_checked(out, request, key, false)
}

/// [`write_request`], checking the key only if `check_key`.
fn write_request_checked(
    out: &mut [u8],
    request: &ClientRequest<'_>,
    key: &[u8; 24],
    check_key: bool,
) -> Result<usize, WriteError> {
    let host = request.host.as_bytes();
    if host.is_empty() || !is_visible_ascii(host) {
        return Err(WriteError::InvalidHost);
    }
    let path = request.path.as_bytes();
    if path.first() != Some(&b'/') || !is_visible_ascii(path) {
        return Err(WriteError::InvalidTarget);
    }
    if let Some(origin) = request.origin {
        if origin.is_empty() || !is_field_value(origin.as_bytes()) {
            return Err(WriteError::InvalidHeaderValue);
        }
    }
    if !request.subprotocols.iter().all(|p| is_token(p.as_bytes())) {
        return Err(WriteError::InvalidSubprotocol);
    }
    if check_key && !is_valid_key(key) {
        return Err(WriteError::InvalidKey);
    }
    check_extra_headers(request.extra_headers, REQUEST_RESERVED)?;

    let mut w = Writer::new(out);
    w.put(b"GET ");
    w.put(path);
    w.put(b" HTTP/1.1\r\nHost: ");
    w.put(host);
    w.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    w.put(key);
    w.put(b"\r\nSec-WebSocket-Version: 13\r\n");
    if let Some(origin) = request.origin {
        w.header("Origin", origin.as_bytes());
    }
    if let Some((first, rest)) = request.subprotocols.split_first() {
        w.put(b"Sec-WebSocket-Protocol: ");
        w.put(first.as_bytes());
        for protocol in rest {
            w.put(b", ");
            w.put(protocol.as_bytes());
        }
        w.put(b"\r\n");
    }
    w.extra_headers(request.extra_headers);
    w.put(b"\r\n");
    Ok(w.finish()?)
}

/// A server's acceptance of the upgrade (RFC 6455 §4.2.2), borrowing the
/// input buffer (`'b`) and the header slice (`'h`).
#[derive(Clone, Copy, Debug)]
pub struct Response<'h, 'b> {
    subprotocol: Option<&'b str>,
    headers: &'h [Header<'b>],
}

impl<'h, 'b> Response<'h, 'b> {
    /// The subprotocol the server chose (one of those offered), if any.
    pub const fn subprotocol(&self) -> Option<&'b str> {
        self.subprotocol
    }

    /// Every header of the response, in order.
    pub const fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        find_header(self.headers, name)
    }
}

/// Parses the server's answer to a handshake sent with `key` and
/// `offered_subprotocols`, from the start of `buf`.
///
/// Incomplete input, `consumed` and the limits work as in
/// [`parse_request`](super::parse_request). The checks, in order: status 101
/// ([`HandshakeError::BadStatus`] with the status otherwise; the body of such
/// an answer is not read); HTTP/1.1; the `websocket` token in `Upgrade`
/// ([`HandshakeError::InvalidUpgrade`]); the `Upgrade` token in `Connection`;
/// one `Sec-WebSocket-Accept` equal to [`accept_key`]`(key)`; no
/// `Sec-WebSocket-Extensions`; at most one `Sec-WebSocket-Protocol`, naming
/// exactly one of `offered_subprotocols`.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    key: &[u8; 24],
    offered_subprotocols: &[&str],
    limits: &HandshakeLimits,
) -> Result<Parsed<Response<'h, 'b>>, HandshakeError> {
    parse_response_expecting(buf, headers, &accept_key(key), offered_subprotocols, limits)
}

/// [`parse_response`] with the `Sec-WebSocket-Accept` value to expect
/// computed already ([`accept_key`] of the request's key): a driver
/// computes it before the answer's headers are on its stack.
pub(crate) fn parse_response_expecting<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    accept: &[u8; 28],
    offered_subprotocols: &[&str],
    limits: &HandshakeLimits,
) -> Result<Parsed<Response<'h, 'b>>, HandshakeError> {
    parse_response_checked(buf, headers, accept, offered_subprotocols, limits, false)
}

/// [`parse_response`] for a request written with
/// [`write_request_with_deflate`] (feature `deflate`): the server's
/// `Sec-WebSocket-Extensions` answer is checked against `offer` (see
/// [`crate::deflate`] for the rules) instead of refused, and the agreed
/// parameters come with the response (`None`: the server declined, or
/// nothing was offered). An answer we must refuse is
/// [`HandshakeError::UnexpectedExtensions`]: fail the connection.
#[cfg(feature = "deflate")]
pub fn parse_response_with_deflate<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    key: &[u8; 24],
    offered_subprotocols: &[&str],
    offer: Option<&crate::deflate::DeflateConfig>,
    limits: &HandshakeLimits,
) -> Result<Parsed<(Response<'h, 'b>, Option<crate::deflate::DeflateParams>)>, HandshakeError> {
    let accept = accept_key(key);
    parse_response_with_deflate_expecting(
        buf,
        headers,
        &accept,
        offered_subprotocols,
        offer,
        limits,
    )
}

/// [`parse_response_with_deflate`] with the accept value to expect given
/// (see [`parse_response_expecting`]).
#[cfg(feature = "deflate")]
pub(crate) fn parse_response_with_deflate_expecting<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    accept: &[u8; 28],
    offered_subprotocols: &[&str],
    offer: Option<&crate::deflate::DeflateConfig>,
    limits: &HandshakeLimits,
) -> Result<Parsed<(Response<'h, 'b>, Option<crate::deflate::DeflateParams>)>, HandshakeError> {
    Ok(
        match parse_response_checked(buf, headers, accept, offered_subprotocols, limits, true)? {
            Parsed::Incomplete => Parsed::Incomplete,
            Parsed::Complete { value, consumed } => {
                let agreed = crate::deflate::accept_answer(value.headers, offer)?;
                Parsed::Complete {
                    value: (value, agreed),
                    consumed,
                }
            }
        },
    )
}

/// [`write_request`] with a permessage-deflate offer (feature `deflate`):
/// a `Sec-WebSocket-Extensions` header with `offer`'s parameters after the
/// others (none when `offer` is `None`). Read the answer with
/// [`parse_response_with_deflate`].
#[cfg(feature = "deflate")]
pub fn write_request_with_deflate(
    out: &mut [u8],
    request: &ClientRequest<'_>,
    key: &[u8; 24],
    offer: Option<&crate::deflate::DeflateConfig>,
) -> Result<usize, WriteError> {
    let Some(offer) = offer else {
        return write_request_checked(out, request, key, true);
    };
    let value = offer.offer();
    // "Sec-WebSocket-Extensions: " and the line's end.
    let extra = 26 + value.as_bytes().len() + 2;
    let n = write_request_checked(out, request, key, true).map_err(|e| match e {
        WriteError::InsufficientSize(e) => WriteError::InsufficientSize(InsufficientSizeError {
            required: e.required + extra,
        }),
        other => other,
    })?;
    // The request ends with its blank line: the header goes before it.
    let head = n - 2;
    let mut w = Writer::new(out.get_mut(head..).unwrap_or_default());
    w.header("Sec-WebSocket-Extensions", value.as_bytes());
    w.put(b"\r\n");
    match w.finish() {
        Ok(len) => Ok(head + len),
        Err(e) => Err(WriteError::InsufficientSize(InsufficientSizeError {
            required: head + e.required,
        })),
    }
}

/// [`parse_response`], with extensions left to the caller if
/// `allow_extensions` (inlined: a constant there).
#[inline(always)]
fn parse_response_checked<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    accept: &[u8; 28],
    offered_subprotocols: &[&str],
    limits: &HandshakeLimits,
    allow_extensions: bool,
) -> Result<Parsed<Response<'h, 'b>>, HandshakeError> {
    let input = limit_input(buf, limits);
    let mut response = httparse::Response::new(limit_headers(headers, limits));
    let status = response.parse(input);
    let Some(consumed) = complete_or_limit(status, input.len(), limits)? else {
        return Ok(Parsed::Incomplete);
    };
    let httparse::Response {
        version,
        code,
        headers,
        ..
    } = response;
    let code = code.unwrap_or_default();
    if code != 101 {
        return Err(HandshakeError::BadStatus(code));
    }
    if version != Some(1) {
        return Err(HandshakeError::NotHttp11);
    }
    let scan = Scan::new::<false>(headers);
    if !scan.upgrade_websocket {
        return Err(HandshakeError::InvalidUpgrade);
    }
    if !scan.connection_upgrade {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match scan.single(name::ACCEPT) {
        Single::Absent => return Err(HandshakeError::MissingAccept),
        Single::One(value) if value == accept => {}
        Single::One(_) | Single::Many => return Err(HandshakeError::InvalidAccept),
    }
    if scan.extension && !allow_extensions {
        return Err(HandshakeError::UnexpectedExtensions);
    }
    let subprotocol = match scan.single(name::PROTOCOL) {
        Single::Absent => None,
        Single::Many => return Err(HandshakeError::UnexpectedSubprotocol),
        Single::One(value) => {
            let chosen = core::str::from_utf8(value)
                .ok()
                .filter(|chosen| offered_subprotocols.contains(chosen));
            Some(chosen.ok_or(HandshakeError::UnexpectedSubprotocol)?)
        }
    };
    Ok(Parsed::Complete {
        value: Response {
            subprotocol,
            headers,
        },
        consumed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
