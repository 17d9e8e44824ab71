//! The drivers' read buffer ([`Input`]) and write buffer ([`Output`]).

use super::*;

/// The payload length from which a data frame in progress limits the next
/// read to its end (see [`Input::room_within`]): below it, a copy of the
/// frame costs less than the extra read.
#[cfg(not(target_os = "none"))]
const ALIGN_FRAMES_FROM: usize = 16 * 1024;

// Zero-copy paths of the async driver: large replies written straight
// from where they lie, large frames kept whole in the read buffer (see
// `Input::room_within`, `Input::frame_in_place`, `FrameWrite::header_only`).
// Hosts only: bare-metal targets (`target_os = "none"`), whose buffers are
// a few KiB, keep the smaller code (about 1 KB less flash), as
// `apply_mask` does. A `cfg` rather than a constant: an async function
// keeps the states of every `.await` it was written with.

/// The reply length from which the async driver sends a message back
/// from the read buffer, in place (see [`Input::frame_in_place`]), even
/// when it would fit in the write buffer: above it, the copy costs more
/// than the write of its own it may take.
#[cfg(not(target_os = "none"))]
pub(crate) const IN_PLACE_FROM: usize = 16 * 1024;

/// The read buffer: bytes received at `buf[start..end]`, not yet consumed.
pub(crate) struct Input<'buf> {
    pub(super) buf: &'buf mut [u8],
    pub(super) start: usize,
    pub(super) end: usize,
}

impl<'buf> Input<'buf> {
    /// `buf`, with `buf[start..end]` received and not yet consumed.
    pub(crate) fn new<E>(
        buf: &'buf mut [u8],
        start: usize,
        end: usize,
    ) -> Result<Self, DriverError<E>> {
        if buf.len() < MIN_READ_BUFFER {
            return Err(DriverError::BufferTooSmall(InsufficientSizeError {
                required: MIN_READ_BUFFER,
            }));
        }
        let end = end.min(buf.len());
        Ok(Self {
            buf,
            start: start.min(end),
            end,
        })
    }

    /// Where to read more bytes into (never empty: the unconsumed rest is
    /// at most a partial frame header or control frame, moved to the front
    /// when needed).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        // Nothing left (then this only rewinds), or no room left.
        if self.start == self.end || self.end == self.buf.len() {
            self.compact();
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// [`Input::room`], ending where the data frame being received ends
    /// when it is a large one (`rest`: [`Connection::data_frame_rest`]):
    /// the next frame then starts at the front of the buffer and, if it
    /// fits, arrives whole there, answered without a copy. A read that
    /// runs on into the next frame leaves that frame's start at the end of
    /// the buffer and its payload copied into the message buffer, and so
    /// on for every frame after it while the reads stay out of step.
    /// Small frames are not worth the extra read.
    #[cfg(not(target_os = "none"))]
    pub(crate) fn room_within(&mut self, rest: Option<(usize, usize)>) -> &mut [u8] {
        let whole_fits = self.buf.len().saturating_sub(FrameHeader::MAX_LEN);
        let room = self.room();
        match rest {
            // Only for a frame that could have arrived whole: a longer one
            // would be cut into a full buffer and a short read every time.
            Some((remaining, len))
                if len >= ALIGN_FRAMES_FROM
                    && len <= whole_fits
                    && (1..room.len()).contains(&remaining) =>
            {
                room.get_mut(..remaining).unwrap_or_default()
            }
            _ => room,
        }
    }

    /// Whether a header of `len` bytes fits before `payload` (a range of
    /// the buffer) over bytes already consumed (see
    /// [`Input::frame_in_place`]).
    #[cfg(not(target_os = "none"))]
    pub(crate) fn fits_before(&self, payload: &Range<usize>, len: usize) -> bool {
        payload.start >= len && payload.end <= self.start
    }

    /// A server's reply that is the payload at `payload` (a range of the
    /// buffer, consumed, with room before it: [`Input::fits_before`]):
    /// `header` is written into the consumed bytes just before it (where
    /// the received frame's own header was, usually: a client's header
    /// carries a mask key, so it is longer than the server's reply's) and
    /// the whole frame returned, to be written straight from the read
    /// buffer.
    #[cfg(not(target_os = "none"))]
    pub(crate) fn frame_in_place(&mut self, payload: Range<usize>, header: &FrameHeader) -> &[u8] {
        let start = payload.start.saturating_sub(header.encoded_len());
        if let Some(head) = self.buf.get_mut(start..payload.start) {
            // Exactly the header's length (checked by `fits_before`).
            let _ = header.encode(head);
        }
        self.buf.get(start..payload.end).unwrap_or_default()
    }

    /// Whether received bytes wait to be consumed (more messages may be
    /// here already, so a reply can wait to go out with theirs).
    pub(crate) fn waiting(&self) -> bool {
        self.start < self.end
    }

    /// The bytes received and not consumed yet.
    pub(crate) fn unconsumed(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The bytes received and not consumed yet, consumed now.
    pub(crate) fn take(&mut self) -> &[u8] {
        let from = self.start;
        self.start = self.end;
        self.buf.get(from..self.end).unwrap_or_default()
    }

    /// `n` bytes were read into [`Input::room`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The bytes from `base` on, which an event's ranges index.
    pub(crate) fn from(&self, base: usize) -> &[u8] {
        self.buf.get(base..).unwrap_or_default()
    }

    /// Moves the unconsumed bytes (at most a partial frame header or control
    /// frame) to the start, a byte at a time rather than with `copy_within`,
    /// which would link a general `memmove` (1.5 KiB of flash on a
    /// Cortex-M) for a copy of at most 130 bytes.
    fn compact(&mut self) {
        let mut to = 0;
        for from in self.start..self.end {
            // `from` is in bounds and `to <= from`; `get` keeps the
            // (impossible) failure a no-op, and the byte loop is not turned
            // into a `memmove` call.
            if let Some(&byte) = self.buf.get(from) {
                if let Some(slot) = self.buf.get_mut(to) {
                    *slot = byte;
                }
            }
            to += 1;
        }
        self.start = 0;
        self.end = to;
    }
}

/// The write buffer: bytes at `buf[start..end]` are waiting to be written.
/// A write that stops half way (an error, or a cancelled future in the
/// async driver) leaves the rest here for the next call to write first.
pub(crate) struct Output<'buf> {
    pub(super) buf: &'buf mut [u8],
    pub(super) start: usize,
    pub(super) end: usize,
}

impl<'buf> Output<'buf> {
    /// An empty output over `buf`.
    pub(crate) fn new<E>(buf: &'buf mut [u8]) -> Result<Self, DriverError<E>> {
        if buf.len() < MIN_WRITE_BUFFER {
            return Err(DriverError::BufferTooSmall(InsufficientSizeError {
                required: MIN_WRITE_BUFFER,
            }));
        }
        Ok(Self {
            buf,
            start: 0,
            end: 0,
        })
    }

    /// The bytes waiting to be written.
    pub(crate) fn unsent(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// `n` of the [`Output::unsent`] bytes were written.
    pub(crate) fn sent(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            // All out: the next frames go at the front again.
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free bytes after what waits.
    pub(crate) fn room(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Whether every byte has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The whole buffer, for the handshake (which writes its answer or
    /// request into it and then marks `n` bytes as waiting).
    pub(crate) fn buffer(&mut self) -> &mut [u8] {
        self.buf
    }

    /// Marks `buf[..n]` as waiting to be written.
    pub(crate) fn queue(&mut self, n: usize) {
        self.start = 0;
        self.end = n.min(self.buf.len());
    }
}
