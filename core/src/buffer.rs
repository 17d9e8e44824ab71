//! Storage for reassembling fragmented (or partially received) messages.
//!
//! The connection never allocates by itself: it appends to a
//! [`MessageBuffer`] the caller chose. Fixed storage for targets without an
//! allocator ([`SliceBuffer`] over `&mut [u8]` or `[u8; N]`, and
//! `heapless::Vec<u8, N>`), and with the `alloc` feature `alloc::vec::Vec<u8>`,
//! which grows on demand up to the message-size limit and never preallocates it.

/// Growable-up-to-a-bound storage for one message at a time.
pub trait MessageBuffer {
    /// The most bytes this storage can ever hold. The connection's effective
    /// message-size limit is the smaller of this and the configured limit,
    /// so that a message is accepted or refused the same way however it
    /// arrives (in one read or many).
    fn max_len(&self) -> usize;
    /// The bytes held.
    fn as_slice(&self) -> &[u8];
    /// Forgets the bytes held (capacity may be kept).
    fn clear(&mut self);
    /// Appends `data`, or returns `Err(())` (holding what it held before) if it
    /// cannot: full, or an allocation failed.
    #[allow(clippy::result_unit_err)]
    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()>;
    /// The number of bytes held.
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    /// Whether no bytes are held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A message buffer over caller-provided fixed storage: `&mut [u8]`,
/// `&mut [u8; N]` or an owned `[u8; N]`.
#[derive(Debug)]
pub struct SliceBuffer<S> {
    storage: S,
    len: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> SliceBuffer<S> {
    /// Wraps `storage`, initially empty.
    pub const fn new(storage: S) -> Self {
        Self { storage, len: 0 }
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> S {
        self.storage
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> MessageBuffer for SliceBuffer<S> {
    fn max_len(&self) -> usize {
        self.storage.as_ref().len()
    }
    #[inline(always)]
    fn as_slice(&self) -> &[u8] {
        self.storage.as_ref().get(..self.len).unwrap_or(&[])
    }
    fn clear(&mut self) {
        self.len = 0;
    }
    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()> {
        let end = self.len.checked_add(data.len()).ok_or(())?;
        let dst = self.storage.as_mut().get_mut(self.len..end).ok_or(())?;
        dst.copy_from_slice(data);
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> MessageBuffer for heapless::Vec<u8, N> {
    fn max_len(&self) -> usize {
        N
    }
    fn as_slice(&self) -> &[u8] {
        self
    }
    fn clear(&mut self) {
        Self::clear(self);
    }
    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()> {
        Self::extend_from_slice(self, data).map_err(|_| ())
    }
}

#[cfg(feature = "alloc")]
impl MessageBuffer for alloc::vec::Vec<u8> {
    fn max_len(&self) -> usize {
        usize::MAX
    }
    fn as_slice(&self) -> &[u8] {
        self
    }
    fn clear(&mut self) {
        Self::clear(self);
    }
    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()> {
        // Grow on demand (amortised doubling), reporting allocation failure
        // instead of aborting.
        self.try_reserve(data.len()).map_err(|_| ())?;
        Self::extend_from_slice(self, data);
        Ok(())
    }
}

impl<B: MessageBuffer + ?Sized> MessageBuffer for &mut B {
    fn max_len(&self) -> usize {
        (**self).max_len()
    }
    fn as_slice(&self) -> &[u8] {
        (**self).as_slice()
    }
    fn clear(&mut self) {
        (**self).clear();
    }
    fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), ()> {
        (**self).extend_from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(buf: &mut dyn MessageBuffer, cap: usize) {
        assert!(buf.is_empty());
        assert_eq!(buf.max_len(), cap);
        assert_eq!(buf.extend_from_slice(b"abc"), Ok(()));
        assert_eq!(buf.extend_from_slice(b"defg"), Ok(()));
        assert_eq!(buf.as_slice(), b"abcdefg");
        assert_eq!(buf.extend_from_slice(b"hi"), Err(()));
        assert_eq!(
            buf.as_slice(),
            b"abcdefg",
            "a refused append keeps what was held"
        );
        assert_eq!(buf.extend_from_slice(b"h"), Ok(()));
        assert_eq!(buf.len(), 8);
        buf.clear();
        assert!(buf.is_empty());
    }

    #[test]
    fn fixed_buffers_refuse_past_capacity() {
        let mut storage = [0u8; 8];
        exercise(&mut SliceBuffer::new(&mut storage[..]), 8);
        exercise(&mut SliceBuffer::new([0u8; 8]), 8);
        exercise(&mut heapless::Vec::<u8, 8>::new(), 8);
    }
}
