//! An RNG repeating a fixed byte sequence: it reproduces the RFC 6455
//! vectors (masking keys, handshake nonces). One RNG, shared by the
//! self-tests and the connection's unit tests; a leaf module, so that the
//! connection's tests need not import the self-tests (which import the
//! connection).

use rand_core::RngCore;

/// An RNG repeating a fixed byte sequence.
pub(crate) struct SeqRng {
    bytes: &'static [u8],
    at: usize,
}

impl SeqRng {
    pub(crate) const fn new(bytes: &'static [u8]) -> Self {
        Self { bytes, at: 0 }
    }
}

impl RngCore for SeqRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self
                .bytes
                .get(self.at % self.bytes.len().max(1))
                .copied()
                .unwrap_or(0);
            self.at = self.at.wrapping_add(1);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
