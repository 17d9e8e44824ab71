//! Randomness.

use super::*;

/// An "RNG" that hands out a fixed byte sequence, over and over: with
/// `[0x37, 0xfa, 0x21, 0x3d]` a client masks with the RFC 6455 §5.7 key.
#[derive(Clone, Debug)]
pub struct FixedRng {
    bytes: Vec<u8>,
    at: usize,
}

impl FixedRng {
    /// Repeats `bytes` (which must not be empty).
    pub fn new(bytes: &[u8]) -> Self {
        assert!(!bytes.is_empty(), "FixedRng needs at least one byte");
        Self {
            bytes: bytes.to_vec(),
            at: 0,
        }
    }

    /// The RFC 6455 §5.7 masking key, `37 fa 21 3d`.
    pub fn rfc_mask() -> Self {
        Self::new(&[0x37, 0xfa, 0x21, 0x3d])
    }
}

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.bytes[self.at];
            self.at = (self.at + 1) % self.bytes.len();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// A seeded xorshift64* generator: reproducible randomness for property
/// loops (not for anything secret).
#[derive(Clone, Debug)]
pub struct XorShiftRng(u64);

impl XorShiftRng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A value in `range`.
    pub fn range(&mut self, range: core::ops::RangeInclusive<usize>) -> usize {
        let span = (range.end() - range.start()) as u64 + 1;
        range.start() + self.below(span) as usize
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill_bytes(&mut v);
        v
    }
}

impl RngCore for XorShiftRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
