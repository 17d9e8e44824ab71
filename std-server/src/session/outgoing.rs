//! The TLS bytes a session has to send, in a buffer that stays
//! initialized: rustls encrypts into `&mut [u8]`, and a `Vec` grown for
//! each record would be zeroed for each record (a 64 KiB memset before
//! every 64 KiB encrypted). Here the room after the unsent bytes is
//! zeroed once, when the buffer grows, and a loop thread keeps the
//! buffer of the last connection to go quiet for the next one that
//! writes, as it keeps a receive buffer (`SPARE_INCOMING`).

use rustls::unbuffered::InsufficientSizeError;

/// The largest buffer kept as a thread's spare: what encrypting up to the
/// session's high-water mark plus one chunk needs (see `OUTGOING_HIGH`).
const MAX_KEPT: usize = 256 << 10;

std::thread_local! {
    static SPARE: core::cell::Cell<Vec<u8>> = const { core::cell::Cell::new(Vec::new()) };
}

/// TLS bytes to send: `buf[sent..end]` are unsent; `buf[end..]` is
/// initialized room.
#[derive(Default)]
pub(super) struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
    end: usize,
}

impl Outgoing {
    /// The bytes still to send.
    pub(super) fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..self.end]
    }

    /// `n` of [`Outgoing::unsent`] were sent.
    pub(super) fn sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.end);
        if self.sent == self.end {
            self.sent = 0;
            self.end = 0;
        }
    }

    /// The buffer's size, for tests.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives the buffer to the thread's spare if nothing waits in it: an
    /// idle connection holds none.
    pub(super) fn release(&mut self) {
        if self.end > 0 {
            return;
        }
        let buf = core::mem::take(&mut self.buf);
        if buf.len() > MAX_KEPT {
            return;
        }
        SPARE.with(|spare| {
            let kept = spare.take();
            spare.set(if kept.len() >= buf.len() { kept } else { buf });
        });
    }

    /// Room for at least `want` bytes after the unsent ones.
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = SPARE.with(core::cell::Cell::take);
        }
        if self.buf.len() < self.end + want && self.sent > 0 {
            // What was sent makes room: a peer that always leaves some of
            // our bytes unread must not make the buffer grow for ever.
            self.buf.copy_within(self.sent..self.end, 0);
            self.end -= self.sent;
            self.sent = 0;
        }
        let need = self.end + want;
        if self.buf.len() < need {
            // Zeroed once, here; later records reuse it as it is.
            self.buf.resize(need.max(2 * self.buf.len()), 0);
        }
        &mut self.buf[self.end..]
    }

    /// Runs `write` on the room after the unsent bytes (at least `first`
    /// bytes, then as much as it says it needs) and keeps what it wrote.
    pub(super) fn write_with(
        &mut self,
        first: usize,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<InsufficientSizeError>>,
    ) -> Result<usize, ()> {
        let result = match write(self.room(first)) {
            Err(Some(s)) => write(self.room(s.required_size)),
            other => other,
        };
        match result {
            Ok(n) => {
                self.end += n;
                Ok(n)
            }
            Err(_) => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_zeroed_when_the_buffer_grows_and_reused_after_sending() {
        let mut out = Outgoing::default();
        assert_eq!(
            out.write_with(4, |buf| {
                buf[..3].copy_from_slice(b"abc");
                Ok(3)
            }),
            Ok(3)
        );
        assert_eq!(out.unsent(), b"abc");
        // Asks for more than the first offer: the room grows.
        let mut asked = 0;
        let n = out.write_with(1, |buf| {
            asked += 1;
            if buf.len() < 100 {
                return Err(Some(InsufficientSizeError { required_size: 100 }));
            }
            buf[..100].fill(b'x');
            Ok(100)
        });
        assert_eq!((n, asked), (Ok(100), 2));
        assert_eq!(out.unsent().len(), 103);
        out.sent(2);
        assert_eq!(&out.unsent()[..2], b"cx");
        out.sent(101);
        assert!(out.unsent().is_empty());
        // Emptied: the next bytes start at the front of the same buffer.
        let capacity = out.capacity();
        out.write_with(8, |buf| {
            buf[..2].copy_from_slice(b"hi");
            Ok(2)
        })
        .unwrap();
        assert_eq!(out.unsent(), b"hi");
        assert_eq!(out.capacity(), capacity);
        // A failed write keeps nothing.
        assert_eq!(out.write_with(8, |_| Err(None)), Err(()));
        assert_eq!(out.unsent(), b"hi");
    }

    #[test]
    fn a_peer_that_always_leaves_some_unread_does_not_grow_the_buffer() {
        let mut out = Outgoing::default();
        out.write_with(1000, |_| Ok(1000)).unwrap();
        for _ in 0..1000 {
            // Half of what waits is sent; as much again is added.
            out.sent(500);
            out.write_with(500, |buf| {
                buf[..500].fill(1);
                Ok(500)
            })
            .unwrap();
            assert_eq!(out.unsent().len(), 1000);
        }
        assert!(out.capacity() <= 4000, "{}", out.capacity());
    }

    #[test]
    fn a_quiet_connection_gives_its_buffer_to_the_next_one() {
        let mut a = Outgoing::default();
        a.write_with(1000, |_| Ok(10)).unwrap();
        a.release();
        assert!(a.capacity() >= 1000, "bytes wait: kept");
        a.sent(10);
        a.release();
        assert_eq!(a.capacity(), 0, "given up");
        let mut b = Outgoing::default();
        b.write_with(10, |_| Ok(5)).unwrap();
        assert!(b.capacity() >= 1000, "the spare, not a new buffer");
    }
}
