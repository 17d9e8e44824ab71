//! The random numbers a connection needs: client masking keys, the client
//! handshake key and heartbeat ping payloads.

use rand_core::{OsRng, RngCore};

/// A connection's generator: SplitMix64 (8 bytes of state), seeded from a
/// per-thread xoshiro256** that is itself seeded from the operating
/// system's entropy once. Masking keys (one per client frame) and heartbeat
/// payloads then cost no system call, and an idle connection carries 8
/// bytes for them.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator with a fresh seed.
    pub(crate) fn from_os() -> Self {
        thread_local! {
            static SEEDS: core::cell::RefCell<Seeder> = core::cell::RefCell::new(Seeder::from_os());
        }
        Self(SEEDS.with(|s| s.borrow_mut().next_u64()))
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// xoshiro256**, seeded from the operating system: the per-thread source
/// of connection seeds.
struct Seeder {
    s: [u64; 4],
}

impl Seeder {
    fn from_os() -> Self {
        let mut seed = [0u8; 32];
        if OsRng.try_fill_bytes(&mut seed).is_err() {
            // No entropy source: fall back to the clock. Masking keys then
            // only need to vary, which they do.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            seed[..16].copy_from_slice(&t.to_le_bytes());
        }
        let mut s = [0u64; 4];
        for (word, chunk) in s.iter_mut().zip(seed.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *word = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        Self { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_generators_differ_and_bytes_vary() {
        let (mut a, mut b) = (Rng::from_os(), Rng::from_os());
        assert_ne!(a.next_u64(), b.next_u64());
        let mut buf = [0u8; 13];
        a.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&x| x != 0));
    }
}
