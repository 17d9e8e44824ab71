//! An upgraded connection: the core, its handle, and how it ended. Feeds
//! input to the core and events to the handler; takes the outbox and the
//! core's control frames for writing.

use core::mem;
use core::panic::AssertUnwindSafe;
use std::panic;

use snowsocket_core::{encode_frame, CloseCode, Error as CoreError, Event, Instant, OpCode};

use super::Core;
use crate::close::{CloseCause, CloseInfo};
use crate::forward;
use crate::handle::{ConnectionHandle, Feeding, Message, Outbox};
use crate::handler::Handler;

/// Unsent output from which the core's control frames wait in the core
/// (see [`Ws::take_control`]). They would wait behind it anyway.
pub(crate) const CONTROL_BACKLOG: usize = 64 * 1024;

/// An upgraded connection.
pub(super) struct Ws {
    pub(super) core: Core,
    pub(super) handle: ConnectionHandle,
    /// Input not consumed by the core yet (part of a frame header or of a
    /// control frame).
    pub(super) rx: Vec<u8>,
    /// How it ended: the first cause found wins.
    pub(super) end: Option<Box<CloseInfo>>,
    /// Why we sent our Close, and what it said.
    pub(super) our_close: Option<Box<(CloseCause, CloseCode, String)>>,
    /// What the connection's permessage-deflate state holds of the memory
    /// budget (a server's, with context takeover; see
    /// `deflate::kept_memory`), given back when it ends.
    pub(super) deflate_charged: usize,
}

impl Ws {
    /// Keeps unconsumed input (part of a frame header or of a
    /// control frame) for the next read.
    pub(super) fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() && !self.core.is_closed() {
            self.rx.extend_from_slice(rest);
        }
    }

    /// Feeds input to the core and hands each event to the handler; the
    /// replies go after what waits in `out` (whose first `sent` bytes are
    /// written). Returns how much was consumed (all of it once the
    /// connection failed: the rest is discarded).
    ///
    /// `earlier` is the loop's read buffer before `input`, which holds
    /// payloads sent by earlier feeds and left there ([`forward`]); with
    /// `in_place`, `input` follows it in that buffer, and large payloads
    /// sent from the callbacks may be left there too.
    pub(super) fn feed(
        &mut self,
        handler: &dyn Handler,
        (earlier, input, in_place): (&[u8], &mut [u8], bool),
        (out, sent): (&mut Vec<u8>, &mut usize),
        now: Instant,
    ) -> usize {
        // The caller flushes after this: sends from the callbacks below
        // need not be scheduled.
        let _feeding = Feeding::enter(&self.handle.shared);
        let _open = in_place.then(|| forward::Open::new(&self.handle.shared, input, earlier.len()));
        let mut pos = 0;
        while pos < input.len() {
            let (n, event) = match self.core.handle_read_unborrowed(&mut input[pos..], now) {
                Ok(read) => read,
                Err(e) => {
                    self.core_failed(e);
                    return input.len();
                }
            };
            let base = pos;
            pos += n;
            let Some(event) = event else {
                if n == 0 {
                    break;
                }
                continue;
            };
            // What the handler sent for earlier messages, then the
            // control frames they caused (pongs, our Close reply), then
            // any reply the handler makes to this one: a reply to a
            // message never follows the Close that came after it.
            if self.core.wants_transmit() {
                self.take_frames(out, sent, earlier, input);
                self.take_control(out, sent, true);
            }
            let Self {
                core,
                handle,
                our_close,
                end,
                ..
            } = self;
            let outcome = match core.event(event, &input[base..pos]) {
                Ok(Event::Text(text)) => guard(|| handler.on_message(handle, Message::Text(text))),
                Ok(Event::Binary(data)) => {
                    guard(|| handler.on_message(handle, Message::Binary(data)))
                }
                Ok(Event::Close(frame)) => {
                    let info = match our_close.as_deref() {
                        // The answer to our Close: the handshake completed.
                        Some((cause, code, reason)) => {
                            CloseInfo::new(cause.clone(), Some(*code), reason)
                        }
                        None => CloseInfo::new(
                            CloseCause::PeerClosed,
                            frame.map(|f| f.code),
                            frame.map_or("", |f| f.reason),
                        ),
                    };
                    if end.is_none() {
                        *end = Some(Box::new(info));
                    }
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => {
                    self.core_failed(e);
                    return input.len();
                }
            };
            if outcome.is_err() {
                self.panicked(now);
            }
            if self.handle.shared.is_paused() {
                // The rest waits for `resume_reading`.
                break;
            }
        }
        pos
    }

    /// Takes the outbox's frames (not a requested Close) into `out`, with
    /// the payloads left in the read buffer copied in: they are in
    /// `earlier`, or in `input`, which follows it there.
    fn take_frames(&mut self, out: &mut Vec<u8>, sent: &mut usize, earlier: &[u8], input: &[u8]) {
        let mut tx = self.handle.shared.outbox();
        let base = Self::move_frames(&mut tx, out, sent);
        if forward::pending() {
            // The frames just moved, with the payloads spliced in (the
            // pieces' places are in the frames as the outbox had them).
            let frames = out.split_off(base);
            forward::take(|pieces| {
                let read = |p: &forward::Piece| match p.start.checked_sub(earlier.len()) {
                    Some(i) => &input[i..i + p.len],
                    None => &earlier[p.start..p.start + p.len],
                };
                for part in forward::parts(&frames, 0, pieces, read) {
                    out.extend_from_slice(part);
                }
            });
        }
    }

    /// Moves the outbox's frames after what waits in `out`, whose first
    /// `sent` bytes are written; returns where they start there. Payloads
    /// left in the read buffer ([`forward`]) now count as the loop's: the
    /// caller writes or copies them.
    fn move_frames(tx: &mut Outbox, out: &mut Vec<u8>, sent: &mut usize) -> usize {
        if tx.frames.is_empty() {
            return out.len();
        }
        // The frames stay counted (now as the loop's) until the write
        // updates `in_loop`: a send meanwhile sees them.
        tx.in_loop += tx.frames.len() + mem::take(&mut tx.forwarded) as usize;
        tx.taken();
        if out.is_empty() {
            mem::swap(out, &mut tx.frames);
            0
        } else {
            let grows = out.len() + tx.frames.len() > out.capacity();
            if grows && *sent > 0 && *sent >= out.len() / 2 {
                // Written bytes make up half the buffer or more: they
                // make room, rather than the buffer growing (and
                // copying them). A peer that always leaves some of our
                // bytes unread must not make it grow for as long as
                // the connection lives: the buffer stays within a
                // small multiple of what waits in it.
                out.drain(..*sent);
                *sent = 0;
            }
            let base = out.len();
            out.extend_from_slice(&tx.frames);
            tx.frames.clear();
            base
        }
    }

    /// Takes the outbox's frames into `out` (whose first `sent` bytes are
    /// written). Returns whether a Close was requested ([`Ws::start_close`]
    /// starts it).
    ///
    /// Payloads left in the read buffer stay there, now placed in `out`:
    /// the caller writes or copies them.
    pub(super) fn take_outbox(&mut self, out: &mut Vec<u8>, sent: &mut usize) -> bool {
        let mut tx = self.handle.shared.outbox();
        tx.scheduled = false;
        let base = Self::move_frames(&mut tx, out, sent);
        forward::rebase(base);
        // Once the core has stopped sending data (a Close received,
        // queued or sent, or a failure), nothing more may follow: later
        // sends are refused from here on.
        if !self.core.is_open() {
            tx.closed = true;
        }
        tx.close.is_some()
    }

    /// Starts the requested Close: called once everything sent before it
    /// is written, so that the close handshake's deadline counts from when
    /// our Close reaches the socket, not from a backlog the peer has yet
    /// to read.
    pub(super) fn start_close(&mut self, now: Instant) {
        let Some(request) = self.handle.shared.outbox().close.take() else {
            return;
        };
        if self.core.close(request.code, &request.reason, now).is_ok() {
            let reason = truncate(&request.reason);
            self.our_close = Some(Box::new((request.cause, request.code, reason)));
        }
    }

    /// Appends the core's queued control frames to `out` (whose first
    /// `sent` bytes are written): all of them, or with `close` false the
    /// Pongs and Pings before a Close (which must follow the data already
    /// sent). None while [`CONTROL_BACKLOG`] bytes or more wait unsent:
    /// they stay queued in the core, which keeps the Pong to the latest
    /// Ping only (RFC 6455 §5.5.3), so a peer that sends Pings and reads
    /// nothing cannot make us buffer Pongs without end.
    ///
    /// Once the core has stopped sending data, our Close may be among
    /// them: the outbox's frames go first, and the outbox is closed in the
    /// same step, so that no send from another thread lands after it.
    ///
    /// Returns whether it appended anything.
    pub(super) fn take_control(
        &mut self,
        out: &mut Vec<u8>,
        sent: &mut usize,
        close: bool,
    ) -> bool {
        let unsent = out.len() - *sent;
        if !self.core.wants_transmit() || unsent >= CONTROL_BACKLOG {
            return false;
        }
        if close && !self.core.is_open() {
            let mut tx = self.handle.shared.outbox();
            // Payloads left in the read buffer were written or copied
            // before: nothing here refers to it.
            debug_assert!(!forward::pending());
            Self::move_frames(&mut tx, out, sent);
            tx.closed = true;
        }
        let _ = self.core.poll_transmit_with(|header, payload| {
            if header.opcode == OpCode::Close && !close {
                return Err(());
            }
            let len = out.len();
            out.resize(len + header.encoded_len() + payload.len(), 0);
            // Sized for the frame: encoding cannot fail (if it did, the
            // frame would stay queued).
            let written = encode_frame(header, payload, &mut out[len..]);
            out.truncate(len + written.as_ref().map_or(0, |n| *n));
            written.map(drop).map_err(drop)
        });
        out.len() - *sent > unsent
    }

    /// The core failed the connection with `e` (its Close, if any, is
    /// queued).
    pub(super) fn core_failed(&mut self, e: CoreError) {
        // A failed connection reads no more messages: its reassembly
        // memory goes back to the budget now, not when the peer hangs up.
        if let Some(buf) = self.core.idle_message_buffer() {
            buf.release();
        }
        let ours = self
            .our_close
            .as_deref()
            .map(|(_, code, reason)| (*code, reason.as_str()));
        let info = match e {
            CoreError::Protocol(p) => match ours {
                // After our Close no second one is sent: report ours.
                Some((code, reason)) => {
                    CloseInfo::new(CloseCause::ProtocolError(p), Some(code), reason)
                }
                None => CloseInfo::new(
                    CloseCause::ProtocolError(p),
                    Some(p.close_code()),
                    p.reason(),
                ),
            },
            CoreError::PongTimeout => CloseInfo::new(
                CloseCause::PongTimeout,
                Some(CloseCode::GOING_AWAY),
                "pong timeout",
            ),
            CoreError::FragmentTimeout => CloseInfo::new(
                CloseCause::FragmentTimeout,
                Some(CloseCode::POLICY_VIOLATION),
                "fragment timeout",
            ),
            CoreError::CloseTimeout => match self.our_close.as_deref() {
                // A shutdown ends the connection whether or not it answers.
                Some((CloseCause::ServerShutdown, code, reason)) => {
                    CloseInfo::new(CloseCause::ServerShutdown, Some(*code), reason)
                }
                Some((_, code, reason)) => {
                    CloseInfo::new(CloseCause::CloseTimeout, Some(*code), reason)
                }
                None => CloseInfo::new(CloseCause::CloseTimeout, None, ""),
            },
            _ => return,
        };
        self.record(info);
    }

    /// The handler panicked: the connection is closed with 1011.
    pub(super) fn panicked(&mut self, now: Instant) {
        log::error!("connection {}: the handler panicked", self.handle.shared.id);
        self.record(CloseInfo::new(
            CloseCause::HandlerPanicked,
            Some(CloseCode::INTERNAL_ERROR),
            "",
        ));
        if self.core.close(CloseCode::INTERNAL_ERROR, "", now).is_ok() {
            self.our_close = Some(Box::new((
                CloseCause::HandlerPanicked,
                CloseCode::INTERNAL_ERROR,
                String::new(),
            )));
        }
        self.handle.shared.outbox().closed = true;
    }

    pub(super) fn record(&mut self, info: CloseInfo) {
        if self.end.is_none() {
            self.end = Some(Box::new(info));
        }
    }

    /// Fills in how it ended, if nothing did yet.
    pub(super) fn settle(&mut self) {
        if self.end.is_none() {
            let info = match self.our_close.as_deref() {
                Some((cause, code, reason)) => CloseInfo::new(cause.clone(), Some(*code), reason),
                None => CloseInfo::new(CloseCause::UnexpectedEof, None, ""),
            };
            self.end = Some(Box::new(info));
        }
    }
}

/// A close reason as the core sends it: at most 123 bytes, cut on a
/// character boundary.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Runs a handler callback; a panic is caught and reported as `Err`.
pub(super) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}
