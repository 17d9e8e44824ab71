//! Sending a received payload without copying it: while a loop hands a
//! connection's input to its handler, a send *to that connection, from
//! that thread,* of a large payload that lies in that input (an echo, a
//! forwarded part of a message) queues only the frame's header and notes
//! where the payload lies. Once the handler is done with the input, the
//! loop writes the headers and the payloads from where they lie with one
//! vectored write, and copies only what the socket did not take.
//!
//! The note lives in a thread-local of the loop's thread, so a send from
//! any other thread, to another connection, or of a payload that lies
//! elsewhere (a message assembled in the message buffer, the
//! application's own bytes) is copied into the outbox as before. Order is
//! kept: a noted payload belongs at a position in the outbox's frames, and
//! whatever is sent after it (from any thread) is appended after it.

use core::cell::RefCell;
use std::io::IoSlice;

use snowsocket_core::{encode_frame_vec, FrameHeader};

use crate::handle::Outbox;

/// Payloads from this size on are noted rather than copied: below it a
/// copy costs less than the vectored write's bookkeeping.
pub(crate) const LEND_MIN: usize = 8 * 1024;

/// At most this many payloads are noted per lending; later ones are
/// copied (one vectored write takes a bounded number of slices).
const MAX_SPANS: usize = 64;

/// A payload noted while lending: it belongs at `at` in the outbox's
/// frames and lies at `start..start + len` in the lent input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) at: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// What this thread lends: the connection (its `Shared`'s address), the
/// input's address and length, and the payloads noted so far.
struct Lent {
    key: usize,
    base: usize,
    len: usize,
    spans: Vec<Span>,
}

thread_local! {
    static LENT: RefCell<Lent> = const {
        RefCell::new(Lent { key: 0, base: 0, len: 0, spans: Vec::new() })
    };
}

/// Lends `input` to sends to the connection `key` until the returned
/// guard is dropped. Noted payloads stay noted after that, until
/// [`take`] collects them.
pub(crate) fn lend(key: usize, input: &[u8]) -> Lending {
    LENT.with(|l| {
        let mut l = l.borrow_mut();
        l.key = key;
        l.base = input.as_ptr() as usize;
        l.len = input.len();
    });
    Lending
}

/// Ends a lending when dropped (also when a handler panics).
pub(crate) struct Lending;

impl Drop for Lending {
    fn drop(&mut self) {
        LENT.with(|l| {
            let mut l = l.borrow_mut();
            l.key = 0;
            l.len = 0;
        });
    }
}

/// Queues the frame `header` + `payload` for the connection `key` as a
/// header and a note, if `payload` lies in the input lent for it.
/// Returns whether it did; `false` leaves `tx` untouched.
pub(crate) fn defer(key: usize, tx: &mut Outbox, header: FrameHeader, payload: &[u8]) -> bool {
    if payload.len() < LEND_MIN || header.mask.is_some() {
        return false;
    }
    LENT.with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return false;
        };
        let addr = payload.as_ptr() as usize;
        let inside = l.key == key
            && addr >= l.base
            && addr
                .checked_add(payload.len())
                .is_some_and(|end| end <= l.base + l.len);
        if !inside || l.spans.len() >= MAX_SPANS {
            return false;
        }
        encode_frame_vec(header, &[], &mut tx.frames);
        let span = Span {
            at: tx.frames.len(),
            start: addr - l.base,
            len: payload.len(),
        };
        l.spans.push(span);
        // Counted as the loop's until it is written or copied.
        tx.in_loop += payload.len();
        true
    })
}

/// The payloads noted on this thread, oldest first (and forgets them).
pub(crate) fn take() -> Vec<Span> {
    LENT.with(|l| core::mem::take(&mut l.borrow_mut().spans))
}

/// `frames` with the noted payloads from `input` put in their places, as
/// slices in order (empty ones left out).
pub(crate) fn slices<'a>(frames: &'a [u8], spans: &[Span], input: &'a [u8]) -> Vec<IoSlice<'a>> {
    let mut out = Vec::with_capacity(spans.len() * 2 + 1);
    let mut from = 0;
    for span in spans {
        let head = frames.get(from..span.at).unwrap_or_default();
        let payload = input
            .get(span.start..span.start + span.len)
            .unwrap_or_default();
        for part in [head, payload] {
            if !part.is_empty() {
                out.push(IoSlice::new(part));
            }
        }
        from = span.at;
    }
    let tail = frames.get(from..).unwrap_or_default();
    if !tail.is_empty() {
        out.push(IoSlice::new(tail));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowsocket_core::OpCode;

    fn header(len: usize) -> FrameHeader {
        FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: len as u64,
        }
    }

    #[test]
    fn only_large_payloads_lying_in_the_input_lent_to_that_connection_are_noted() {
        let input = vec![7u8; 3 * LEND_MIN];
        let elsewhere = vec![7u8; LEND_MIN];
        let mut tx = Outbox::new(None);
        {
            let _lending = lend(1, &input);
            // Too small, another connection, not in the input: copied.
            assert!(!defer(1, &mut tx, header(10), &input[..10]));
            assert!(!defer(2, &mut tx, header(LEND_MIN), &input[..LEND_MIN]));
            assert!(!defer(1, &mut tx, header(LEND_MIN), &elsewhere));
            assert!(tx.frames.is_empty());
            // In the input: a header queued and the payload noted.
            assert!(defer(
                1,
                &mut tx,
                header(LEND_MIN),
                &input[LEND_MIN..2 * LEND_MIN]
            ));
        }
        // Lending over: nothing more is noted.
        assert!(!defer(1, &mut tx, header(LEND_MIN), &input[..LEND_MIN]));
        let spans = take();
        assert_eq!(
            spans,
            [Span {
                at: 4,
                start: LEND_MIN,
                len: LEND_MIN
            }]
        );
        assert_eq!(tx.frames, [0x82, 126, 0x20, 0x00]);
        assert_eq!(tx.in_loop, LEND_MIN);
        assert!(take().is_empty());
    }

    #[test]
    fn slices_put_each_payload_in_its_place() {
        let frames = b"AB-CD-E";
        let input = b"0123456789";
        let spans = [
            Span {
                at: 2,
                start: 0,
                len: 3,
            },
            Span {
                at: 5,
                start: 7,
                len: 3,
            },
            Span {
                at: 7,
                start: 3,
                len: 1,
            },
        ];
        let joined: Vec<u8> = slices(frames, &spans, input)
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert_eq!(joined, b"AB012-CD789-E3");
    }
}
