//! The opening handshake on the loop: the upgrade request is parsed as it
//! arrives (within the handshake deadline, see `Conn::deadline`),
//! `on_accept` decides, and the answer (101, the handler's refusal, 503
//! over `max_connections`, or the parser's 4xx) is written. A request
//! that asks for no WebSocket goes to `on_request` (`http.rs`).

use core::mem;
use std::sync::Arc;

use snowsocket_core::deflate::{self, DeflateParams};
use snowsocket_core::handshake::{self, HandshakeError, Parsed, EMPTY_HEADER};
use snowsocket_core::{Instant, Role};

use super::ws::guard;
use super::{later, Conn, Phase, Socket};
use crate::deflate::kept_memory;
use crate::event_loop::command::LoopShared;
use crate::handle::Upgraded;
use crate::handler::{Accept, UpgradeRequest};
use crate::http::check_header;

impl<S: Socket> Conn<S> {
    /// The HTTP upgrade, once the request so far may be complete.
    pub(super) fn handshake(&mut self, owner: &Arc<LoopShared>, token: usize, now: Instant) {
        let Phase::Handshake { request, .. } = &mut self.phase else {
            return;
        };
        let buf = mem::take(request);
        let limits = self.service.config.handshake_limits;
        let wanted = limits.max_headers.min(256);
        // On the stack for the default limit (64): no allocation per parse.
        let mut on_stack = [EMPTY_HEADER; 64];
        let mut on_heap = Vec::new();
        let headers = match on_stack.get_mut(..wanted) {
            Some(headers) => headers,
            None => {
                on_heap.resize(wanted, EMPTY_HEADER);
                &mut on_heap[..]
            }
        };
        let (decision, consumed, target, deflate) =
            match handshake::parse_request(&buf, headers, &limits) {
                Ok(Parsed::Incomplete) => {
                    if let Phase::Handshake { request, .. } = &mut self.phase {
                        *request = buf;
                    }
                    return;
                }
                Err(
                    e @ (HandshakeError::NotUpgrade
                    | HandshakeError::InvalidUpgrade
                    | HandshakeError::NotGet
                    | HandshakeError::NotHttp11),
                ) => {
                    // Perhaps plain HTTP, for `on_request`.
                    return self.plain_request(buf, e, now);
                }
                Err(e) => return self.bad_request(e, now),
                Ok(Parsed::Complete { value, consumed }) => {
                    let request = UpgradeRequest {
                        request: value,
                        peer: self.peer,
                        tls: self.tls.is_some(),
                    };
                    let decision = if self.service.at_capacity() {
                        Accept::reject(503, "server at capacity")
                    } else {
                        let handler = &self.service.handler;
                        guard(|| handler.on_accept(&request))
                            .unwrap_or_else(|()| Accept::reject(500, "internal error"))
                    };
                    // permessage-deflate, when configured and offered, and
                    // when the memory budget has room for its state.
                    let deflate = match (&decision, &self.service.config.deflate) {
                        (Accept::Upgrade { .. }, Some(options)) => {
                            deflate::negotiate(request.request.headers(), &options.params)
                                .filter(|params| self.charge_deflate(params))
                        }
                        _ => None,
                    };
                    let written = match &decision {
                        Accept::Upgrade {
                            subprotocol,
                            headers,
                            ..
                        } => {
                            let extra: Vec<(&str, &[u8])> = headers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                                .collect();
                            write_grow(&mut self.out, |out| {
                                handshake::write_accept_with_deflate(
                                    out,
                                    &request.request,
                                    subprotocol.as_deref(),
                                    deflate.as_ref(),
                                    &extra,
                                )
                            })
                        }
                        Accept::Reject {
                            status,
                            body,
                            headers,
                        } => {
                            let mut extra: Vec<(&str, &[u8])> = headers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                                .collect();
                            let has_retry = headers
                                .iter()
                                .any(|(n, _)| n.eq_ignore_ascii_case("Retry-After"));
                            if *status == 503 && !has_retry {
                                extra.push(("Retry-After", b"1"));
                            }
                            write_grow(&mut self.out, |out| {
                                handshake::write_reject(out, *status, body, &extra)
                            })
                        }
                    };
                    if let Err(e) = written {
                        if let Some(params) = &deflate {
                            self.service.budget.give(kept_memory(params));
                        }
                        // Name the header at fault, where one is.
                        let headers = match &decision {
                            Accept::Upgrade { headers, .. } | Accept::Reject { headers, .. } => {
                                headers
                            }
                        };
                        let reason = headers
                            .iter()
                            .find_map(|(n, v)| check_header(n, v.as_bytes()).err())
                            .map_or_else(|| e.to_string(), |bad| bad.to_string());
                        log::error!(
                            "{}: on_accept's answer is not sent ({reason}); answering 500",
                            self.peer
                        );
                        self.out.clear();
                        let _ = write_grow(&mut self.out, |out| {
                            handshake::write_reject(out, 500, "internal error", &[])
                        });
                        return self.refused(now);
                    }
                    let target = (
                        request.path().to_owned(),
                        request.query().map(str::to_owned),
                    );
                    (decision, consumed, target, deflate)
                }
            };
        match decision {
            Accept::Reject { .. } => self.refused(now),
            Accept::Upgrade {
                subprotocol,
                context,
                ..
            } => {
                let (path, query) = target;
                let upgraded = Upgraded::new(&path, query.as_deref(), subprotocol, context.0);
                self.release_slot();
                self.open(upgraded, owner, token, Role::Server, deflate, now);
                let rest = buf.get(consumed..).unwrap_or_default().to_vec();
                self.deliver(&[], rest, now);
            }
        }
    }

    /// Takes what a connection keeps for permessage-deflate with `params`
    /// from the memory budget; without room, the connection is accepted
    /// without it.
    fn charge_deflate(&self, params: &DeflateParams) -> bool {
        let fits = self.service.budget.take(kept_memory(params));
        if !fits {
            log::debug!(
                "{}: memory budget spent: accepted without permessage-deflate",
                self.peer
            );
        }
        fits
    }

    /// A request the core refused: its answer (400, 405, 426, 431).
    pub(super) fn bad_request(&mut self, e: HandshakeError, now: Instant) {
        log::debug!("{}: bad upgrade request: {e}", self.peer);
        let _ = write_grow(&mut self.out, |out| {
            e.write_response(out)
                .map_err(handshake::WriteError::InsufficientSize)
        });
        self.refused(now);
    }

    /// A refused upgrade (or an HTTP answer): the answer is in `out`;
    /// write it, then linger.
    pub(super) fn refused(&mut self, now: Instant) {
        self.release_slot();
        self.phase = Phase::Answering {
            until: later(now, self.service.config.handshake_timeout),
        };
        self.flush(now);
    }
}

/// Runs a writer that may need a larger buffer, appending to `out`.
fn write_grow(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, handshake::WriteError>,
) -> Result<usize, handshake::WriteError> {
    let start = out.len();
    out.resize(start + 512, 0);
    let result = match write(&mut out[start..]) {
        Err(handshake::WriteError::InsufficientSize(e)) => {
            out.resize(start + e.required, 0);
            write(&mut out[start..])
        }
        other => other,
    };
    out.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}
