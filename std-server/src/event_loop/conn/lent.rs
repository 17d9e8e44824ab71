//! Writing the payloads a handler echoed from the input it was handed
//! (see [`lend`](crate::event_loop::lend)): headers and payloads in one
//! vectored write, and a copy of only what the socket did not take.

use core::mem;
use std::io::{self, IoSlice};

use super::{Conn, Phase, Socket};
use crate::event_loop::lend;

impl<S: Socket> Conn<S> {
    /// Sends the outbox's frames with the payloads noted in `input` in
    /// their places: on a plain socket written straight from `input`,
    /// after what the output still holds, in one vectored write; what the
    /// socket does not take (and everything, under TLS) is copied to the
    /// output.
    pub(super) fn send_lent(&mut self, input: &[u8]) {
        let spans = lend::take();
        if spans.is_empty() {
            return;
        }
        let Phase::Open(ws) = &mut self.phase else {
            return;
        };
        let frames = {
            let mut tx = ws.handle.shared.outbox();
            // The payloads were counted when noted; `flush` counts again
            // once the write is done.
            tx.in_loop += tx.frames.len();
            tx.taken();
            mem::take(&mut tx.frames)
        };
        // What the output still holds goes first, in the same write.
        let written = if self.tls.is_none() {
            let mut parts = Vec::with_capacity(spans.len() * 2 + 2);
            parts.push(IoSlice::new(&self.out[self.sent..]));
            parts.extend(lend::slices(&frames, &spans, input));
            write_all_vectored(&mut self.io, &mut parts)
        } else {
            0
        };
        if written > 0 && self.stalled_since.is_some() {
            // The peer takes data again.
            self.stalled_since = Some(self.service.now());
        }
        let from_out = written.min(self.out.len() - self.sent);
        self.sent += from_out;
        let mut skip = written - from_out;
        for part in lend::slices(&frames, &spans, input) {
            let taken = skip.min(part.len());
            skip -= taken;
            self.out.extend_from_slice(&part[taken..]);
        }
    }
}

/// Writes `parts` in order until the socket would block (or fails: the
/// caller's next write sees that again). Returns how many bytes went.
fn write_all_vectored(io: &mut impl io::Write, parts: &mut [IoSlice<'_>]) -> usize {
    let mut rest = parts;
    let mut written = 0;
    while !rest.is_empty() {
        match io.write_vectored(rest) {
            Ok(0) => break,
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    written
}
