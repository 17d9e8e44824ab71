//! SHA-1 (FIPS 180-4 §6.1), for the opening handshake's accept key only.
//!
//! RFC 6455 uses SHA-1 to prove that a server read the client's key, not
//! for secrecy: every input here is public (the key sent in the clear and
//! the GUID). So this is written for size rather than speed: bytes go into
//! the block one at a time and the 80 rounds are one loop over a 16-word
//! schedule: about 0.4 KB of code on a Cortex-M, where sha1_smol's
//! unrolled rounds took about 2.7 KB (scripts/footprint.sh). A handshake
//! hashes 60 bytes (two blocks) once per connection; sha1_smol stays as
//! the tests' oracle.

/// A SHA-1 computation in progress.
pub(crate) struct Sha1 {
    state: [u32; 5],
    block: [u8; 64],
    /// Bytes hashed so far; `len % 64` of them wait in `block`.
    len: u64,
}

impl Sha1 {
    /// The initial hash value (FIPS 180-4 §5.3.1).
    pub(crate) const fn new() -> Self {
        Self {
            state: [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            block: [0; 64],
            len: 0,
        }
    }

    /// Hashes `data` after what came before.
    pub(crate) fn update(&mut self, data: &[u8]) {
        for &byte in data {
            self.push(byte);
        }
    }

    /// The digest of everything hashed: the message padded with `0x80`,
    /// zeros up to 56 bytes into the last block, then its length in bits
    /// (FIPS 180-4 §5.1.1).
    pub(crate) fn digest(mut self) -> [u8; 20] {
        let bits = self.len.wrapping_mul(8);
        self.push(0x80);
        while self.len % 64 != 56 {
            self.push(0);
        }
        for byte in bits.to_be_bytes() {
            self.push(byte);
        }
        let mut out = [0u8; 20];
        for (to, word) in out.chunks_exact_mut(4).zip(self.state) {
            to.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Adds one byte; a full block is compressed into the state.
    fn push(&mut self, byte: u8) {
        let at = (self.len % 64) as usize;
        if let Some(slot) = self.block.get_mut(at) {
            *slot = byte;
        }
        self.len = self.len.wrapping_add(1);
        if at == 63 {
            self.compress();
        }
    }

    /// The compression function on the full block (FIPS 180-4 §6.1.2),
    /// with the message schedule kept in 16 words (`W[t]` overwrites
    /// `W[t - 16]`).
    fn compress(&mut self) {
        let mut w = [0u32; 16];
        for (word, bytes) in w.iter_mut().zip(self.block.chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().unwrap_or_default());
        }
        let [mut a, mut b, mut c, mut d, mut e] = self.state;
        for t in 0..80 {
            let s = t % 16;
            if t >= 16 {
                w[s] = (w[(t + 13) % 16] ^ w[(t + 8) % 16] ^ w[(t + 2) % 16] ^ w[s]).rotate_left(1);
            }
            let (f, k) = match t / 20 {
                0 => ((b & c) | (!b & d), 0x5A82_7999),
                1 => (b ^ c ^ d, 0x6ED9_EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(w[s]);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (h, v) in self.state.iter_mut().zip([a, b, c, d, e]) {
            *h = h.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1(data: &[u8]) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(data);
        h.digest()
    }

    fn hex(digest: [u8; 20]) -> std::string::String {
        digest.iter().map(|b| std::format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_examples() {
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million_a = std::vec![b'a'; 1_000_000];
        assert_eq!(
            hex(sha1(&million_a)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn equals_sha1_smol_at_every_length_and_split() {
        // Every length across three blocks (each padding case: the length
        // fits in the last block or needs one more), fed whole and in two
        // pieces split anywhere.
        let data: std::vec::Vec<u8> = (0..200u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in 0..=data.len() {
            let input = &data[..len];
            let expected = sha1_smol::Sha1::from(input).digest().bytes();
            assert_eq!(sha1(input), expected, "{len} bytes");
            for split in [0, 1, len / 3, len / 2, len.saturating_sub(1), len] {
                let (x, y) = input.split_at(split.min(len));
                let mut h = Sha1::new();
                h.update(x);
                h.update(y);
                assert_eq!(h.digest(), expected, "{len} bytes split at {split}");
            }
        }
    }
}
