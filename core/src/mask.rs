//! Payload masking (RFC 6455 §5.3).
//!
//! Every byte of a masked payload is XORed with the masking key byte at
//! its position modulo 4: `out[i] = in[i] ^ key[i % 4]`. XOR is its own
//! inverse, so the same function masks and unmasks.
//!
//! A payload often arrives in pieces (one per read call), so both functions
//! take the `offset` of `buf` within the payload: unmasking each piece with
//! the running offset gives the same bytes as unmasking the whole payload.
//!
//! ```
//! use snowsocket_core::mask::apply_mask;
//!
//! // RFC 6455 §5.7: a masked "Hello".
//! let key = [0x37, 0xfa, 0x21, 0x3d];
//! let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let (first, second) = payload.split_at_mut(2);
//! apply_mask(first, key, 0);
//! apply_mask(second, key, 2);
//! assert_eq!(&payload, b"Hello");
//! ```

/// XORs `buf` with the masking `key`, as if `buf` started `offset` bytes
/// into the payload.
///
/// To unmask a payload in pieces across read calls, pass the number of
/// payload bytes already processed as `offset`. Only `offset % 4` matters.
///
/// This is the fast path: it processes 32 bytes at a time (which the
/// compiler turns into vector instructions where the target has them), then
/// the remaining bytes one at a time. On bare-metal targets
/// (`target_os = "none"`: microcontrollers, where flash is scarce and there
/// is no vector unit) it is a byte loop with the key rotating in a register
/// instead: 28 bytes of code on a Cortex-M4 rather than hundreds, at a few
/// cycles per byte. Either way it gives the same result as
/// [`apply_mask_bytewise`].
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    #[cfg(target_os = "none")]
    apply_mask_small(buf, key, offset);
    #[cfg(not(target_os = "none"))]
    apply_mask_wide(buf, key, offset);
}

/// [`apply_mask`] for targets with vector units: 32 bytes per iteration.
#[cfg_attr(target_os = "none", allow(dead_code))]
#[inline]
fn apply_mask_wide(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    // The key repeated to the width of a chunk. Each chunk starts at a
    // multiple of 4 bytes from the start of `buf`, so it lines up with the
    // rotated key.
    let wide = widen_key(key);
    let mut chunks = buf.chunks_exact_mut(CHUNK);
    for chunk in &mut chunks {
        for (byte, k) in chunk.iter_mut().zip(wide.iter()) {
            *byte ^= k;
        }
    }
    // The tail starts at a multiple of CHUNK (itself a multiple of 4), and
    // each 4-byte word of it too, so they all line up with the rotated key.
    let mut words = chunks.into_remainder().chunks_exact_mut(4);
    for word in &mut words {
        for (byte, k) in word.iter_mut().zip(key) {
            *byte ^= k;
        }
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// [`apply_mask`] for microcontrollers: the smallest loop, one byte per
/// iteration with the (rotated) key as a little-endian word that turns by
/// one byte each time.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
#[cfg_attr(target_os = "none", inline(never))]
fn apply_mask_small(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = u32::from_le_bytes(rotate_key(key, offset));
    for byte in buf {
        *byte ^= k as u8;
        k = k.rotate_right(8);
    }
}

/// The byte-at-a-time reference version of [`apply_mask`], with the same
/// contract. Public for tests and benchmarks; prefer [`apply_mask`].
#[doc(hidden)]
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset.wrapping_add(i)) % 4];
    }
}

/// Bytes processed per iteration of the fast path's main loop.
const CHUNK: usize = 32;

/// The key as seen from a position `offset` bytes into the payload.
#[inline]
const fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Treat the key as a little-endian word: rotating the word right by 8
    // bits per byte of offset moves key[offset % 4] to the front.
    let word = u32::from_le_bytes(key);
    // `offset % 4 * 8` is at most 24, so the cast cannot truncate.
    word.rotate_right((offset % 4 * 8) as u32).to_le_bytes()
}

/// The (rotated) key repeated to fill one chunk.
#[inline]
const fn widen_key(key: [u8; 4]) -> [u8; CHUNK] {
    let mut wide = [0u8; CHUNK];
    let mut i = 0;
    while i < CHUNK {
        wide[i] = key[i % 4];
        i += 1;
    }
    wide
}

#[cfg(test)]
mod tests {
    use std::vec;

    use super::*;

    /// A tiny deterministic PRNG (xorshift64) for test data.
    struct XorShift(u64);

    impl XorShift {
        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next_u64() as u8;
            }
        }
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn rfc6455_hello_example_both_ways() {
        const MASKED: [u8; 5] = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let mut buf = MASKED;
        apply_mask(&mut buf, KEY, 0);
        assert_eq!(&buf, b"Hello");
        apply_mask(&mut buf, KEY, 0);
        assert_eq!(buf, MASKED);

        let mut buf = *b"Hello";
        apply_mask_bytewise(&mut buf, KEY, 0);
        assert_eq!(buf, MASKED);
        apply_mask_bytewise(&mut buf, KEY, 0);
        assert_eq!(&buf, b"Hello");
    }

    #[test]
    fn bytewise_follows_the_rfc_formula() {
        let mut rng = XorShift(0x1234_5678_9abc_def0);
        let mut data = [0u8; 37];
        rng.fill(&mut data);
        for offset in [0, 1, 2, 3, 4, 5, 1023, usize::MAX] {
            let mut buf = data;
            apply_mask_bytewise(&mut buf, KEY, offset);
            for (j, (&out, &inp)) in buf.iter().zip(data.iter()).enumerate() {
                let i = offset.wrapping_add(j);
                assert_eq!(out, inp ^ KEY[i % 4], "offset {offset} byte {j}");
            }
        }
    }

    #[test]
    fn fast_path_equals_byte_loop_at_every_length_alignment_and_offset() {
        const MAX_LEN: usize = 1024;
        const MAX_ALIGN: usize = 16;
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut data = [0u8; MAX_LEN + MAX_ALIGN];
        rng.fill(&mut data);
        let key = [0xa5, 0x0f, 0x3c, 0xc3];
        let mut fast = [0u8; MAX_LEN + MAX_ALIGN];
        let mut slow = [0u8; MAX_LEN + MAX_ALIGN];
        for offset in [0, 1, 2, 3, 4, 5, 6, 7, 1023, 4096 + 3, usize::MAX] {
            for align in 0..MAX_ALIGN {
                for len in 0..=MAX_LEN {
                    fast.copy_from_slice(&data);
                    slow.copy_from_slice(&data);
                    apply_mask(&mut fast[align..align + len], key, offset);
                    apply_mask_bytewise(&mut slow[align..align + len], key, offset);
                    assert!(
                        fast == slow,
                        "len {len}, alignment {align}, offset {offset}"
                    );
                }
            }
        }
    }

    #[test]
    fn wide_and_small_paths_equal_byte_loop() {
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        let mut data = [0u8; 200];
        rng.fill(&mut data);
        let key = [0x5a, 0x01, 0xff, 0x80];
        for offset in [0, 1, 2, 3, 4, 7, usize::MAX] {
            for start in 0..8 {
                for len in 0..data.len() - start {
                    let mut slow = data;
                    apply_mask_bytewise(&mut slow[start..start + len], key, offset);
                    let mut small = data;
                    apply_mask_small(&mut small[start..start + len], key, offset);
                    let mut wide = data;
                    apply_mask_wide(&mut wide[start..start + len], key, offset);
                    assert!(
                        small == slow,
                        "small: start {start}, len {len}, offset {offset}"
                    );
                    assert!(
                        wide == slow,
                        "wide: start {start}, len {len}, offset {offset}"
                    );
                }
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_input() {
        let mut rng = XorShift(42);
        let mut data = [0u8; 300];
        rng.fill(&mut data);
        for offset in 0..8 {
            let mut buf = data;
            apply_mask(&mut buf, KEY, offset);
            assert_ne!(buf, data);
            apply_mask(&mut buf, KEY, offset);
            assert_eq!(buf, data, "offset {offset}");
        }
    }

    #[test]
    fn streaming_in_random_pieces_equals_whole() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for round in 0..200 {
            let len = rng.below(3000);
            let mut data = vec![0u8; len];
            rng.fill(&mut data);
            let mut key = [0u8; 4];
            rng.fill(&mut key);

            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);

            let mut pieces = data.clone();
            let mut at = 0;
            while at < len {
                // Mostly small pieces, sometimes large ones.
                let max = if rng.below(4) == 0 { 700 } else { 40 };
                let n = (1 + rng.below(max)).min(len - at);
                apply_mask(&mut pieces[at..at + n], key, at);
                at += n;
            }
            assert_eq!(pieces, whole, "round {round}, len {len}");
        }
    }
}
