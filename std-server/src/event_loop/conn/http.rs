//! Plain HTTP on the loop: a request that asks for no WebSocket (the core
//! refused it as `NotUpgrade`, `InvalidUpgrade`, `NotGet` or `NotHttp11`,
//! and no `Upgrade` header names `websocket`) goes to
//! `on_request`; its body is read first (bounded); the answer is written
//! through the connection's output, then the connection lingers and
//! closes (no keep-alive).

use snowsocket_core::handshake::{HandshakeError, EMPTY_HEADER};
use snowsocket_core::Instant;

use super::ws::guard;
use super::{Conn, Phase, Socket};
use crate::http::{HttpRequest, HttpResponse};

/// How the body of a plain request stands.
enum Body {
    /// `Content-Length` of this many bytes (0: none).
    Length(usize),
    /// Refused before the handler runs.
    Refused(HttpResponse),
}

impl<S: Socket> Conn<S> {
    /// `buf` holds a complete header block that the core refused with
    /// `error`, a refusal that a plain HTTP request also gets. Unless an
    /// `Upgrade` header names `websocket` it is plain HTTP: answered by
    /// `on_request` once its body is here; otherwise a bad upgrade:
    /// answered as the core says.
    pub(super) fn plain_request(&mut self, buf: Vec<u8>, error: HandshakeError, now: Instant) {
        let limits = self.service.config.handshake_limits;
        // The core parsed this block within these limits: so does httparse.
        let mut headers = vec![EMPTY_HEADER; limits.max_headers.clamp(1, 256)];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = request.parse(&buf) else {
            return self.bad_request(error, now);
        };
        let httparse::Request {
            method: Some(method),
            path: Some(target),
            version: Some(version),
            headers,
        } = request
        else {
            return self.bad_request(error, now);
        };
        if asks_for_websocket(headers) {
            return self.bad_request(error, now);
        }
        let response = match body_length(headers) {
            Body::Refused(response) => response,
            Body::Length(len) if head_len.saturating_add(len) > limits.max_request_size => {
                HttpResponse::text(413, "request body too large")
            }
            Body::Length(len) => {
                let Some(body) = buf.get(head_len..head_len + len) else {
                    // The body is still coming (within the handshake
                    // deadline, and bounded by the size just checked).
                    if let Phase::Handshake { request, .. } = &mut self.phase {
                        *request = buf;
                    }
                    return;
                };
                let request = HttpRequest {
                    method,
                    target,
                    version,
                    headers,
                    body,
                    peer: self.peer,
                    tls: self.tls.is_some(),
                };
                let handler = &self.service.handler;
                guard(|| handler.on_request(&request)).unwrap_or_else(|()| {
                    log::error!("{}: on_request panicked; answering 500", self.peer);
                    HttpResponse::text(500, "internal error")
                })
            }
        };
        log::debug!(
            "{}: {method} {target} answered {}",
            self.peer,
            response.status()
        );
        let head_only = method == "HEAD";
        let max_body = self.service.config.max_buffered_bytes;
        if let Err(e) = response.write(&mut self.out, head_only, max_body) {
            log::error!(
                "{}: on_request's answer to {method} {target} is not sent ({e}); answering 500",
                self.peer
            );
            let fallback = HttpResponse::text(500, "internal error");
            let _ = fallback.write(&mut self.out, head_only, max_body);
        }
        self.refused(now);
    }
}

/// Whether an `Upgrade` header names `websocket`: a WebSocket upgrade
/// (if a bad one), never plain HTTP. Another upgrade (`h2c`, as `curl
/// --http2` asks) is ignored, as RFC 9110 §7.8 allows: plain HTTP.
fn asks_for_websocket(headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Upgrade"))
        .flat_map(|h| h.value.split(|&c| c == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"websocket"))
}

/// The request body's length from its headers (RFC 9112 §6.3): one
/// `Content-Length` (repeats must agree), none at all, or a refusal.
fn body_length(headers: &[httparse::Header<'_>]) -> Body {
    if headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        return Body::Refused(HttpResponse::text(
            411,
            "a request body needs a Content-Length",
        ));
    }
    let mut length = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    {
        let value = core::str::from_utf8(h.value).map(str::trim);
        let parsed = match value {
            Ok(v) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => v.parse().ok(),
            _ => None,
        };
        match (parsed, length) {
            (Some(n), None) => length = Some(n),
            (Some(n), Some(m)) if n == m => {}
            _ => return Body::Refused(HttpResponse::text(400, "bad Content-Length")),
        }
    }
    Body::Length(length.unwrap_or(0))
}
