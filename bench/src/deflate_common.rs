//! What the two permessage-deflate benchmarks (`deflate_figures`,
//! `deflate_sockets`) share, included by both with `#[path]`.

/// A deterministic RNG for masking keys.
pub(crate) struct Rng(pub(crate) u64);

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// JSON-like text of `len` bytes, deterministic and distinct per `seed`.
pub(crate) fn json(len: usize, seed: usize) -> String {
    let mut s = String::with_capacity(len + 80);
    let mut i = seed;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"score\":{},\"tags\":[\"alpha\",\"beta\"],\"ok\":true}},",
            i % 97,
            (i * 7919) % 10_000
        ));
        i += 1;
    }
    s.truncate(len);
    s
}
