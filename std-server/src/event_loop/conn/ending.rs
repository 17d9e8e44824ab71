//! How a connection ends: shutdown's Close, an abort, the linger after
//! our Close (reading until the peer's Close, EOF or the close timeout),
//! the end of input, and `on_close`, run once.

use super::*;

impl<S: Socket> Conn<S> {
    /// The server shuts down: Close 1001 to an open connection; one still
    /// in its handshake is dropped.
    pub(crate) fn shut_down(&mut self, now: Instant) {
        match &self.phase {
            Phase::Handshake { .. } => self.phase = Phase::Done(None),
            Phase::Open(ws) => {
                let _ = ws.handle.shared.request_close(
                    CloseCode::GOING_AWAY,
                    "server shutdown",
                    CloseCause::ServerShutdown,
                );
                self.flush(now);
            }
            _ => {}
        }
    }

    /// Ends the connection at once (the shutdown deadline passed).
    pub(crate) fn abort(&mut self, cause: CloseCause) {
        self.fail_hard(cause);
    }

    /// Our last bytes are out: closes the socket so that the peer gets
    /// them. After a complete close handshake (both Closes went out) the
    /// peer has nothing more to send: the socket is closed at once (after
    /// reading what is already there, so the kernel has no reason to reset
    /// it). After a failure, or an HTTP answer, the peer may still be
    /// sending: the write side is shut and its input is read and dropped
    /// until its EOF or the close timeout (RFC 6455 §7.1.1), so a reset
    /// never destroys our Close in flight.
    pub(super) fn start_linger(&mut self, now: Instant) {
        let (ws, linger) = match mem::replace(&mut self.phase, Phase::Done(None)) {
            Phase::Open(mut ws) => {
                ws.settle();
                let linger = match ws.core.failure() {
                    // Our Close was never answered: nothing to wait for.
                    Some(CoreError::CloseTimeout) => {
                        self.phase = Phase::Done(Some(ws));
                        return;
                    }
                    Some(_) => true,
                    None => false,
                };
                (Some(ws), linger)
            }
            Phase::Handshake { .. } | Phase::Answering { .. } => (None, true),
            other => {
                self.phase = other;
                return;
            }
        };
        // The peer's EOF was read already: nothing more can come.
        let linger = linger && !self.at_eof;
        if let Some(tls) = &mut self.tls {
            let _ = tls.close_notify();
            let _ = self.write();
        }
        let _ = self.io.shutdown_write();
        self.stalled_since = None;
        self.phase = Phase::Linger {
            until: later(now, self.service.config.connection.close_timeout),
            ws,
        };
        if !linger {
            // Whatever is readable now is dropped; then the socket goes.
            let mut scratch = [0u8; 512];
            for _ in 0..READS_PER_TURN {
                match self.io.read(&mut scratch) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            self.finish_linger();
        }
    }

    /// Runs `on_close` (for an upgraded connection) and gives back what the
    /// connection held; call once, when [`Conn::is_done`].
    pub(crate) fn finish(&mut self) -> Option<ConnectionHandle> {
        self.release_slot();
        let Phase::Done(ws) = &mut self.phase else {
            return None;
        };
        let mut ws = ws.take()?;
        self.service.closed(self.id);
        self.service.budget.give(ws.deflate_charged);
        if let Some(deflate) = &ws.handle.shared.deflate {
            deflate.release();
        }
        ws.settle();
        let info = ws
            .end
            .take()
            .map(|info| *info)
            .unwrap_or_else(|| CloseInfo::new(CloseCause::UnexpectedEof, None, ""));
        {
            let mut tx = ws.handle.shared.outbox();
            tx.closed = true;
            tx.frames = Vec::new();
            tx.in_loop = 0;
            tx.forwarded = 0;
            tx.settle(&ws.handle.shared.output_budget);
        }
        let handler = &self.service.handler;
        if guard(|| handler.on_close(&ws.handle, info)).is_err() {
            log::error!("{}: on_close panicked", self.peer);
        }
        Some(ws.handle.clone())
    }

    /// The peer's EOF (or the linger deadline) ends a lingering close.
    pub(super) fn finish_linger(&mut self) {
        match &mut self.phase {
            Phase::Linger { ws, .. } => {
                let ws = ws.take();
                self.phase = Phase::Done(ws);
            }
            Phase::Answering { .. } => self.phase = Phase::Done(None),
            _ => {}
        }
    }

    /// The peer ended its side; what was kept while reading was paused
    /// (messages, maybe the peer's Close) is handled first. If that pauses
    /// reading again, the end waits: once resumed, the socket is read
    /// again and says EOF again.
    pub(super) fn eof_after_kept(&mut self, now: Instant) {
        if let Phase::Open(ws) = &mut self.phase {
            if !ws.rx.is_empty() {
                let kept = mem::take(&mut ws.rx);
                self.deliver(&[], kept, now);
                self.flush(now);
                // Paused again, or the kept Close ended it.
                if self.paused() || matches!(self.phase, Phase::Done(_)) {
                    return;
                }
            }
        }
        self.eof(now);
    }

    /// The peer ended its side. What was sent before still goes out (the
    /// peer may only have shut its write side, and read on): the
    /// connection ends once it is written (or at the write timeout, if the
    /// peer reads nothing).
    pub(super) fn eof(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Open(ws) => {
                let cause = match ws.our_close.as_deref() {
                    // We closed and the peer then hung up: as we asked.
                    Some((cause, code, reason)) if !ws.core.is_open() => {
                        CloseInfo::new(cause.clone(), Some(*code), reason)
                    }
                    _ => CloseInfo::new(CloseCause::UnexpectedEof, None, ""),
                };
                ws.record(cause);
                ws.core.abort();
                let waiting = !ws.handle.shared.outbox().frames.is_empty();
                if waiting || self.sent < self.out.len() || self.tls_pending() {
                    // Once all is written, `flush` ends it (`start_linger`).
                    return self.flush(now);
                }
                let ws = mem::replace(&mut self.phase, Phase::Done(None));
                if let Phase::Open(ws) = ws {
                    self.phase = Phase::Done(Some(ws));
                }
            }
            Phase::Linger { ws, .. } => self.phase = Phase::Done(ws.take()),
            _ => self.phase = Phase::Done(None),
        }
    }

    /// Ends the connection at once, without a close handshake (the socket
    /// failed, the peer stopped reading, TLS broke).
    pub(super) fn fail_hard(&mut self, cause: CloseCause) {
        let ws = match mem::replace(&mut self.phase, Phase::Done(None)) {
            Phase::Open(mut ws)
            | Phase::Linger {
                ws: Some(mut ws), ..
            } => {
                // The Close we sent, if any, is what the peer was told.
                let info = match ws.our_close.as_deref() {
                    Some((_, code, reason)) => CloseInfo::new(cause, Some(*code), reason),
                    None => CloseInfo::new(cause, None, ""),
                };
                ws.record(info);
                ws.core.abort();
                Some(ws)
            }
            _ => None,
        };
        self.phase = Phase::Done(ws);
    }
}
