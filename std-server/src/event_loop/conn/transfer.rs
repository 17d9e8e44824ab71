//! Bytes in and out of a connection: plain TCP, or through its TLS
//! session (`crate::session`); what is waiting goes out (`flush`), and
//! the peer's progress on what we write; a read turn (`Conn::read_turn`).

use core::mem;
use std::io::{self, IoSlice};
use std::sync::Arc;

use snowsocket_core::Instant;

use super::ws::guard;
use super::{would_block, Conn, Phase, Socket, HOLD_FOR, READS_PER_TURN};
use crate::close::CloseCause;
use crate::event_loop::command::LoopShared;
use crate::forward;
use crate::session::{TlsFailure, TlsRead};
use crate::spare;

/// What a read brought.
enum Input {
    Bytes(usize),
    WouldBlock,
    Eof,
}

impl<S: Socket> Conn<S> {
    /// Writes what is waiting: the outbox's frames, the core's control
    /// frames (pongs, pings, our Close), a handshake answer; then moves on
    /// to lingering once the last frame is out.
    pub(crate) fn flush(&mut self, now: Instant) {
        self.flush_from(now, &[]);
    }

    /// [`Conn::flush`] after feeding input read into `rbuf`, where the
    /// replies may have left payloads (see `crate::forward`): they are
    /// written from there, or copied.
    pub(super) fn flush_from(&mut self, now: Instant, rbuf: &[u8]) {
        let mut close_requested = false;
        let mut taken = false;
        if let Phase::Open(ws) = &mut self.phase {
            close_requested = ws.take_outbox(&mut self.out, &mut self.sent);
            taken = true;
        }
        let mut unwritten = true;
        if forward::pending() {
            if !taken {
                // Left by a connection that is no longer open: they go
                // with it.
                forward::clear();
            } else if let Err(cause) = self.write_spliced(rbuf) {
                return self.fail_hard(cause);
            } else {
                unwritten = false;
            }
        }
        if let Phase::Open(ws) = &mut self.phase {
            unwritten |= ws.take_control(&mut self.out, &mut self.sent, true);
        }
        if unwritten {
            if let Err(cause) = self.write() {
                return self.fail_hard(cause);
            }
        }
        // Control frames held back behind a backlog (see `take_control`)
        // go once the peer has taken enough of it.
        if let Phase::Open(ws) = &mut self.phase {
            if ws.take_control(&mut self.out, &mut self.sent, true) {
                if let Err(cause) = self.write() {
                    return self.fail_hard(cause);
                }
            }
        }
        let mut written = self.sent == self.out.len() && !self.tls_pending();
        // A requested Close follows everything sent before it, and is
        // started only once that is written: the close handshake's
        // deadline then counts from when our Close reaches the socket.
        if let (true, true, Phase::Open(ws)) = (close_requested, written, &mut self.phase) {
            ws.start_close(now);
            ws.take_control(&mut self.out, &mut self.sent, true);
            if let Err(cause) = self.write() {
                return self.fail_hard(cause);
            }
            written = self.sent == self.out.len() && !self.tls_pending();
        }
        if written && matches!(self.phase, Phase::Answering { .. }) {
            return self.start_linger(now);
        }
        if let Phase::Open(ws) = &mut self.phase {
            let drained = {
                let mut tx = ws.handle.shared.outbox();
                tx.in_loop = self.out.len() - self.sent;
                tx.settle(&ws.handle.shared.output_budget);
                if !ws.core.is_open() {
                    tx.closed = true;
                }
                let drained = tx.wants_drain && tx.buffered() == 0;
                if drained {
                    tx.wants_drain = false;
                }
                drained
            };
            if drained {
                let handler = &self.service.handler;
                if guard(|| handler.on_drain(&ws.handle)).is_err() {
                    ws.panicked(now);
                    return self.flush(now);
                }
            }
            if ws.core.is_closed() && written {
                self.start_linger(now);
            }
        }
    }

    /// Nothing more to read (or write) now: give back buffers an idle
    /// connection does not need.
    pub(super) fn quiet(&mut self) {
        if self.sent == self.out.len() {
            spare::give(mem::take(&mut self.out));
            self.sent = 0;
        }
        if let Some(tls) = &mut self.tls {
            tls.release();
        }
        if let Phase::Open(ws) = &mut self.phase {
            if ws.rx.is_empty() {
                ws.rx = Vec::new();
            }
            if let Some(buf) = ws.core.idle_message_buffer() {
                buf.release();
            }
            let mut tx = ws.handle.shared.outbox();
            if tx.frames.is_empty() {
                spare::give(mem::take(&mut tx.frames));
            }
        }
    }

    /// Reads and feeds the core, up to [`READS_PER_TURN`] reads. Each read
    /// takes up to `read_buffer_size` bytes of `rbuf`: at its start, or,
    /// while the replies to earlier reads are held and left payloads in
    /// `rbuf` (see `crate::forward`), past them, as long as `rbuf` has
    /// room for a whole read there.
    pub(super) fn read_turn(
        &mut self,
        rbuf: &mut [u8],
        owner: &Arc<LoopShared>,
        token: usize,
        mut now: Instant,
    ) {
        self.more_to_read = false;
        let read_len = rbuf
            .len()
            .min(self.service.config.read_buffer_size.max(4096));
        let mut at = 0;
        // Output held back from the previous read (see `holds_output`),
        // and since when: the clock read before the first held read's
        // callbacks ran.
        let mut held = false;
        let mut holding_since = None;
        for _ in 0..READS_PER_TURN {
            if self.paused() {
                if held {
                    self.flush_from(now, rbuf);
                }
                // The socket keeps the rest (TCP backpressure) until
                // `resume`; TLS records read ahead keep a buffer of
                // their own size meanwhile.
                if let Some(tls) = &mut self.tls {
                    tls.release();
                }
                return;
            }
            match self.phase {
                Phase::Done(_) => return,
                Phase::Linger { .. } | Phase::Answering { .. } => {
                    return self.discard(&mut rbuf[at..at + read_len])
                }
                Phase::Handshake { .. } | Phase::Open(_) => {}
            }
            let input = match self.read(&mut rbuf[at..at + read_len]) {
                Ok(input) => input,
                Err(cause) => return self.fail_hard(cause),
            };
            let n = match input {
                Input::WouldBlock => {
                    self.flush_from(now, rbuf);
                    return self.quiet();
                }
                Input::Eof => {
                    self.at_eof = true;
                    if held {
                        self.flush_from(now, rbuf);
                    }
                    return self.eof_after_kept(now);
                }
                Input::Bytes(n) => n,
            };
            if n == read_len && holding_since.is_none() {
                // A full read, whose replies may be held: the clock is
                // read only where holding is possible.
                holding_since = Some(self.service.now());
            }
            match &mut self.phase {
                // TLS records that carried no data yet.
                _ if n == 0 => {}
                Phase::Handshake { request, .. } => {
                    request.extend_from_slice(&rbuf[at..at + n]);
                    self.handshake(owner, token, now);
                }
                Phase::Open(ws) => {
                    let leftover = mem::take(&mut ws.rx);
                    self.deliver_read(leftover, rbuf, (at, n), now);
                }
                _ => {}
            }
            // The handler's callbacks may have taken a while: what follows
            // (the flush, a linger, the next read's timers) starts now.
            now = self.service.now();
            // A plain socket that gave less than was asked for is empty:
            // the next read would only say `WouldBlock` (one system call
            // saved per readiness event; epoll reports new data anew).
            // Not so once the poller has reported the peer's FIN: it came
            // with (or before) that data, no new event will tell of it, and
            // the next read says EOF. A TLS session says so itself (it
            // reads until the socket is empty or the buffer full).
            let drained = self.tls.as_ref().is_none_or(|tls| tls.drained());
            if drained && n < read_len && !self.read_closed {
                self.flush_from(now, rbuf);
                return self.quiet();
            }
            held = holding_since.is_some_and(|t| now.saturating_duration_since(t) < HOLD_FOR)
                && self.holds_output();
            if held && forward::pending() {
                // The next read goes past the payloads left in `rbuf`;
                // without room for a whole read there, they go now.
                at += n;
                held = at + read_len <= rbuf.len();
            }
            if !held {
                holding_since = None;
                at = 0;
                self.flush_from(now, rbuf);
            }
        }
        if held {
            self.flush_from(now, rbuf);
        }
        self.more_to_read = true;
    }

    /// Reads into `rbuf`: plaintext, through TLS when there is a session.
    fn read(&mut self, rbuf: &mut [u8]) -> Result<Input, CloseCause> {
        let Some(tls) = &mut self.tls else {
            return match self.io.read(rbuf) {
                Ok(0) => Ok(Input::Eof),
                Ok(n) => Ok(Input::Bytes(n)),
                Err(e) if would_block(&e) => Ok(Input::WouldBlock),
                Err(e) => Err(CloseCause::Io(e.kind())),
            };
        };
        match tls.read(&mut self.io, rbuf) {
            Ok(TlsRead::Bytes(n)) => Ok(Input::Bytes(n)),
            Ok(TlsRead::WouldBlock) => Ok(Input::WouldBlock),
            Ok(TlsRead::Eof) => Ok(Input::Eof),
            Err(TlsFailure::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Input::Eof),
            Err(TlsFailure::Io(e)) => Err(CloseCause::Io(e.kind())),
            Err(TlsFailure::Tls(e)) => {
                // Send the alert, then give up.
                let _ = tls.send(&mut self.io);
                Err(CloseCause::Tls(e.to_string()))
            }
        }
    }

    /// Lingering: reads and drops whatever the peer still sends, until
    /// its EOF.
    pub(super) fn discard(&mut self, rbuf: &mut [u8]) {
        for _ in 0..READS_PER_TURN {
            match self.io.read(rbuf) {
                Ok(0) => return self.finish_linger(),
                Ok(_) => {}
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.finish_linger(),
            }
        }
        // More to drop: other connections get a turn first.
        self.more_to_read = true;
    }

    /// Writes `out` (through TLS when there is a session) as far as the
    /// socket takes it, tracking whether the peer makes progress. The stall
    /// is timed from the clock read here, not from the turn's start: a
    /// long callback before the write is not the peer's stall.
    pub(super) fn write(&mut self) -> Result<(), CloseCause> {
        let mut progress = false;
        match &mut self.tls {
            None => {
                while self.sent < self.out.len() {
                    match self.io.write(&self.out[self.sent..]) {
                        Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                        Ok(n) => {
                            self.sent += n;
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(CloseCause::Io(e.kind())),
                    }
                }
            }
            Some(tls) => loop {
                if self.sent < self.out.len() {
                    match tls.encrypt(&self.out[self.sent..]) {
                        Ok(n) => self.sent += n,
                        Err(e) => {
                            let _ = tls.send(&mut self.io);
                            return Err(CloseCause::Tls(e.to_string()));
                        }
                    }
                }
                if !tls.wants_write() {
                    break;
                }
                match tls.send(&mut self.io) {
                    Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                    Ok(_) => progress = true,
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(CloseCause::Io(e.kind())),
                }
            },
        }
        self.wrote(progress);
        Ok(())
    }

    /// Writes `out` with the payloads left in `rbuf` in their places
    /// (`crate::forward`; plain TCP only) as far as the socket takes it,
    /// in vectored writes; what it does not take is copied into `out`.
    fn write_spliced(&mut self, rbuf: &[u8]) -> Result<(), CloseCause> {
        /// Parts per write: a 1 MiB batch of 64 KiB replies has 33.
        const PARTS: usize = 64;
        debug_assert!(self.tls.is_none(), "payloads left for a TLS session");
        let (out, sent, io) = (&self.out, self.sent, &mut self.io);
        let (result, written, rest) = forward::take(|pieces| {
            let parts = || forward::parts(out, sent, pieces, |p| &rbuf[p.start..p.start + p.len]);
            let total: usize = parts().map(<[u8]>::len).sum();
            let mut written = 0;
            let mut result = Ok(());
            while written < total {
                let mut slices = [IoSlice::new(&[]); PARTS];
                let mut count = 0;
                let mut skip = written;
                for part in parts() {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices[count] = IoSlice::new(&part[skip..]);
                    skip = 0;
                    count += 1;
                    if count == PARTS {
                        break;
                    }
                }
                match io.write_vectored(&slices[..count]) {
                    Ok(0) => result = Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if would_block(&e) => break,
                    Err(e) => result = Err(CloseCause::Io(e.kind())),
                }
                if result.is_err() {
                    break;
                }
            }
            // What the socket did not take waits in `out`, in order.
            let mut rest = Vec::new();
            if result.is_ok() && written < total {
                rest = spare::take(total - written);
                let mut skip = written;
                for part in parts() {
                    let from = skip.min(part.len());
                    skip -= from;
                    rest.extend_from_slice(&part[from..]);
                }
            }
            (result, written, rest)
        });
        result?;
        spare::give(mem::replace(&mut self.out, rest));
        self.sent = 0;
        self.wrote(written > 0);
        Ok(())
    }

    /// After a write: forgets what is written, and times the peer's stall
    /// while output waits (from now, when this write made `progress`).
    fn wrote(&mut self, progress: bool) {
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        let pending = !self.out.is_empty() || self.tls_pending();
        self.stalled_since = match (pending, progress) {
            (false, _) => None,
            (true, true) => Some(self.service.now()),
            (true, false) => self.stalled_since.or_else(|| Some(self.service.now())),
        };
    }

    pub(super) fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}
