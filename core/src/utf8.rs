//! Strict incremental UTF-8 validation for text messages (RFC 6455 §8.1).
//!
//! A text message may arrive in many frames, and each frame in many reads,
//! with a character split anywhere. [`Utf8Validator`] checks the pieces as
//! they come and fails *fast*: an invalid sequence is reported as soon as
//! the bytes that make it invalid have arrived, not at the end of the
//! message. For example `F4 90` (above U+10FFFF), `ED A0` (a surrogate) and
//! `E0 80` (overlong) are refused at their second byte, and a byte that can
//! never appear (`C0`, `C1`, `F5`–`FF`) or a continuation byte where a
//! character should start is refused at that byte.
//!
//! ```
//! use snowsocket_core::utf8::Utf8Validator;
//!
//! let mut v = Utf8Validator::new();
//! // "é" split across two pieces.
//! assert!(v.feed(b"caf\xC3").is_ok());
//! assert!(!v.is_char_boundary());
//! assert!(v.feed(b"\xA9!").is_ok());
//! assert!(v.finish().is_ok());
//!
//! // A surrogate is refused at its second byte, before the message ends.
//! v.reset();
//! assert!(v.feed(b"\xED\xA0").is_err());
//! ```

use core::fmt;

/// Incremental validator: an invalid sequence is reported as soon as the
/// bytes that make it invalid have arrived, even if the message (or frame)
/// is not complete.
///
/// Call [`feed`](Self::feed) with each piece of the text in order, then
/// [`finish`](Self::finish) at the end of the message, then
/// [`reset`](Self::reset) before the next message. Once an error has been
/// reported the validator stays failed until it is reset: `feed` and
/// `finish` keep returning [`Utf8Error`].
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    /// Continuation bytes the character in progress still needs (0 to 3).
    need: u8,
    /// The range the next continuation byte must fall in (Unicode table
    /// 3-7: it depends on the lead byte for the second byte only).
    lo: u8,
    hi: u8,
    /// An error was reported since the last reset.
    failed: bool,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Self {
            need: 0,
            lo: 0,
            hi: 0,
            failed: false,
        }
    }

    /// Validates the next piece of the text.
    ///
    /// Returns `Err` as soon as the data so far cannot be the start of valid
    /// UTF-8. An incomplete character at the end of `bytes` is fine (it is
    /// kept and completed by the next piece) as long as it can still be
    /// completed into a valid character.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.failed {
            return Err(Utf8Error);
        }
        // First the rest of a character the last piece left incomplete.
        let mut rest = bytes;
        while self.need > 0 {
            let Some((&byte, after)) = rest.split_first() else {
                return Ok(());
            };
            if !self.step(byte) {
                return self.fail();
            }
            rest = after;
        }
        // Then whole characters: a run of ASCII first, then the standard
        // library's check, and an incomplete character at the end byte by
        // byte.
        let rest = rest.get(ascii_prefix(rest)..).unwrap_or_default();
        let tail = match core::str::from_utf8(rest) {
            Ok(_) => return Ok(()),
            Err(e) if e.error_len().is_none() => rest.get(e.valid_up_to()..).unwrap_or_default(),
            Err(_) => return self.fail(),
        };
        for &byte in tail {
            if !self.step(byte) {
                return self.fail();
            }
        }
        Ok(())
    }

    /// Ends the text: returns `Err` if a character is left incomplete (or if
    /// an error was already reported).
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        if self.failed || self.need != 0 {
            return self.fail();
        }
        Ok(())
    }

    /// Forgets everything, for the next message.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// True when no partial character is pending (and no error has been
    /// reported): the text so far is valid UTF-8 on its own.
    pub const fn is_char_boundary(&self) -> bool {
        self.need == 0 && !self.failed
    }

    /// Takes one byte (Unicode table 3-7); `false` if it cannot come next.
    /// The second byte's range depends on the lead, which is what rules out
    /// overlong forms, surrogates and code points above U+10FFFF as early
    /// as possible.
    fn step(&mut self, byte: u8) -> bool {
        if self.need == 0 {
            let (need, lo, hi) = match byte {
                0x00..=0x7F => return true,
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xE1..=0xEF => (2, 0x80, 0xBF),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                // Continuation bytes, overlong leads C0/C1, and F5..FF.
                _ => return false,
            };
            self.need = need;
            self.lo = lo;
            self.hi = hi;
            return true;
        }
        if byte < self.lo || byte > self.hi {
            return false;
        }
        self.need -= 1;
        self.lo = 0x80;
        self.hi = 0xBF;
        true
    }

    fn fail(&mut self) -> Result<(), Utf8Error> {
        self.failed = true;
        self.need = 0;
        Err(Utf8Error)
    }
}

/// Invalid UTF-8: a text message or close reason that is not UTF-8 fails the
/// connection with close code 1007 (invalid payload data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl core::error::Error for Utf8Error {}

/// The length of the ASCII run that starts `bytes`, in whole 32-byte blocks:
/// a test compilers turn into vector instructions, about twice as fast on
/// text as `core::str::from_utf8` alone. 0 on bare-metal targets, where
/// flash is worth more than the time.
pub(crate) fn ascii_prefix(bytes: &[u8]) -> usize {
    if cfg!(target_os = "none") {
        return 0;
    }
    let mut ascii = 0;
    for block in bytes.chunks_exact(32) {
        if block.iter().fold(0, |seen, &b| seen | b) >= 0x80 {
            break;
        }
        ascii += 32;
    }
    ascii
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::string::String;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn ascii_runs_are_counted_in_whole_blocks_and_stop_at_any_high_byte() {
        let text = [b'a'; 100];
        assert_eq!(ascii_prefix(&text), 96);
        assert_eq!(ascii_prefix(&text[..31]), 0);
        for at in [0, 1, 31, 32, 33, 63, 64, 95] {
            let mut bytes = text;
            bytes[at] = 0x80;
            assert_eq!(ascii_prefix(&bytes), at / 32 * 32, "high byte at {at}");
        }
    }

    #[test]
    fn a_character_across_an_ascii_block_boundary_is_checked_like_any_other() {
        for at in [29, 30, 31, 32, 33, 62, 63, 64] {
            for ch in ["é", "€", "😀"] {
                let mut text = "a".repeat(80);
                text.replace_range(at..=at, ch);
                let mut bad = text.clone().into_bytes();
                let last = at + ch.len() - 1;
                bad[last] = b'a'; // the character cut short
                for piece in [1, 7, 32, 200] {
                    let mut v = Utf8Validator::new();
                    let ok = text.as_bytes().chunks(piece).try_for_each(|c| v.feed(c));
                    assert!(ok.and_then(|()| v.finish()).is_ok(), "{at} {ch} {piece}");
                    let mut v = Utf8Validator::new();
                    let bad = bad.chunks(piece).try_for_each(|c| v.feed(c));
                    assert!(bad.and_then(|()| v.finish()).is_err(), "{at} {ch} {piece}");
                }
            }
        }
    }

    /// Whether `bytes` can be completed into valid UTF-8: the reference
    /// "valid prefix" oracle, from the standard library's validator.
    fn std_valid_prefix(bytes: &[u8]) -> bool {
        match core::str::from_utf8(bytes) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    /// The index of the first byte at which `bytes` stops being a valid
    /// prefix, by the oracle.
    fn oracle_error_index(bytes: &[u8]) -> Option<usize> {
        (1..=bytes.len())
            .find(|&n| !std_valid_prefix(&bytes[..n]))
            .map(|n| n - 1)
    }

    /// Feeds `bytes` one at a time; the index of the byte that failed.
    fn bytewise_error_index(bytes: &[u8]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        for (i, &b) in bytes.iter().enumerate() {
            if v.feed(&[b]).is_err() {
                // Once failed, stays failed.
                assert_eq!(v.feed(b"a"), Err(Utf8Error));
                assert_eq!(v.finish(), Err(Utf8Error));
                return Some(i);
            }
        }
        None
    }

    fn whole(bytes: &[u8]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        v.feed(bytes)?;
        v.finish()
    }

    /// Checks `bytes` whole, byte by byte, and (for short inputs) at
    /// every split point against the standard library.
    fn check(bytes: &[u8]) {
        let expected = core::str::from_utf8(bytes).is_ok();
        assert_eq!(whole(bytes).is_ok(), expected, "{bytes:02x?} whole");
        assert_eq!(
            bytewise_error_index(bytes),
            oracle_error_index(bytes),
            "{bytes:02x?} byte by byte"
        );
        let mut v = Utf8Validator::new();
        let streamed = bytes.iter().try_for_each(|&b| v.feed(&[b]));
        assert_eq!(
            streamed.and_then(|()| v.finish()).is_ok(),
            expected,
            "{bytes:02x?} byte by byte, finished"
        );
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            let mut v = Utf8Validator::new();
            let r = v.feed(a).and_then(|()| v.feed(b)).and_then(|()| v.finish());
            assert_eq!(r.is_ok(), expected, "{bytes:02x?} split at {split}");
        }
    }

    #[test]
    fn all_one_and_two_byte_sequences() {
        for a in 0..=255u8 {
            check(&[a]);
            for b in 0..=255u8 {
                check(&[a, b]);
            }
        }
    }

    /// Bytes that cover every boundary of Unicode table 3-7.
    const INTERESTING: [u8; 26] = [
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
        0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF,
    ];

    #[test]
    fn three_byte_sequences() {
        // Every lead byte from C0 with every second and third byte.
        for a in 0xC0..=0xFFu8 {
            for b in 0..=255u8 {
                for c in INTERESTING {
                    check(&[a, b, c]);
                }
            }
        }
        // Every three-byte character (and its neighbours).
        for a in 0xE0..=0xEFu8 {
            for b in 0x7F..=0xC0u8 {
                for c in 0x7F..=0xC0u8 {
                    check(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    fn four_byte_sequences() {
        for a in INTERESTING {
            for b in INTERESTING {
                for c in INTERESTING {
                    for d in INTERESTING {
                        check(&[a, b, c, d]);
                    }
                }
            }
        }
        // Every second byte after each four-byte lead, with valid tails.
        for a in 0xF0..=0xF7u8 {
            for b in 0..=255u8 {
                check(&[a, b, 0x80, 0x80]);
                check(&[a, b, 0xBF, 0xBF]);
                check(&[a, b, 0x80, b'x']);
            }
        }
    }

    #[test]
    fn random_byte_strings_match_std() {
        // xorshift64, biased towards bytes that form (and break) characters.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    INTERESTING[(r % INTERESTING.len() as u64) as usize] ^ ((r >> 32) as u8 & 1)
                })
                .collect();
            check(&bytes);
        }
    }

    #[test]
    fn every_split_of_multibyte_strings_matches_whole() {
        let texts = [
            "κόσμε",
            "κ\u{1F79}σμε",
            "\u{10FFFF}",
            "\u{FFFF}",
            "\u{FFFE}\u{1FFFE}",
            "\u{D7FF}\u{E000}\u{10000}",
            "Hello-µ@ßöäüàá-UTF-8!!",
            "a\u{80}b\u{7FF}c\u{800}d\u{FFFF}e\u{10000}f",
            "日本語のテキスト and ASCII 🦀🦀 mixed",
            "",
        ];
        for text in texts {
            let bytes = text.as_bytes();
            check(bytes);
            // Every pair of split points (three pieces).
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    let mut v = Utf8Validator::new();
                    v.feed(&bytes[..i]).unwrap();
                    v.feed(&bytes[i..j]).unwrap();
                    v.feed(&bytes[j..]).unwrap();
                    assert!(v.is_char_boundary());
                    v.finish().unwrap();
                }
            }
        }
    }

    #[test]
    fn long_text_in_pieces() {
        let mut text = String::new();
        for i in 0..2_000u32 {
            text.push(char::from_u32(i * 37 % 0x11_0000).unwrap_or('x'));
            text.push_str("ascii run ");
        }
        let bytes = text.as_bytes();
        for piece in [1, 2, 3, 5, 7, 64, 1000] {
            let mut v = Utf8Validator::new();
            for chunk in bytes.chunks(piece) {
                v.feed(chunk).unwrap();
            }
            v.finish().unwrap();
        }
        // Appending an invalid byte fails in every piece size.
        let mut bad = bytes.to_vec();
        bad.insert(bytes.len() / 2, 0xFF);
        for piece in [1, 3, 1000] {
            let mut v = Utf8Validator::new();
            assert!(bad.chunks(piece).try_for_each(|c| v.feed(c)).is_err());
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // (bytes, index of the byte that makes them invalid)
        let cases: &[(&[u8], usize)] = &[
            (b"\xF4\x90", 1),         // above U+10FFFF
            (b"\xF4\x8F\xBF\xC0", 3), // bad fourth byte
            (b"\xED\xA0", 1),         // surrogate
            (b"\xE0\x80", 1),         // overlong
            (b"\xE0\x9F", 1),         // overlong
            (b"\xF0\x8F", 1),         // overlong
            (b"\xC0", 0),             // overlong lead
            (b"\xC1", 0),             // overlong lead
            (b"\xF5", 0),             // above U+10FFFF
            (b"\xFF", 0),             // never valid
            (b"ab\x80", 2),           // continuation without a lead
            (b"\xC3\xA9\xA9", 2),     // one continuation too many
            (b"\xE2\x82a", 2),        // character cut short
        ];
        for &(bytes, at) in cases {
            assert_eq!(bytewise_error_index(bytes), Some(at), "{bytes:02x?}");
            // Also fed as one piece, and as a valid prefix plus the rest.
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(bytes), Err(Utf8Error), "{bytes:02x?}");
            let mut v = Utf8Validator::new();
            v.feed(&bytes[..at]).unwrap();
            assert_eq!(v.feed(&bytes[at..]), Err(Utf8Error), "{bytes:02x?}");
        }
    }

    #[test]
    fn autobahn_6_x_cases() {
        // κόσμε (with U+1F79 for the ό) + surrogate U+D800 (ED A0 80) +
        // "edited": 6.3.1 style.
        let bytes = hex("cebae1bdb9cf83cebcceb5eda080656469746564");
        assert_eq!(&bytes[..11], "κ\u{1F79}σμε".as_bytes());
        assert_eq!(bytewise_error_index(&bytes), Some(12));
        check(&bytes);

        // κόσμε + F4 90 80 80 (above U+10FFFF) + "edited": 6.4.x.
        let bytes = hex("cebae1bdb9cf83cebcceb5f4908080656469746564");
        assert_eq!(bytewise_error_index(&bytes), Some(12));
        check(&bytes);

        let valid = [
            "",
            "cebae1bdb9cf83cebcceb5", // κόσμε
            "f0908080",               // U+10000
            "f48fbfbf",               // U+10FFFF
            "efbfbf",                 // U+FFFF
            "efbfbe",                 // U+FFFE
            "ed9fbf",                 // U+D7FF
            "ee8080",                 // U+E000
        ];
        for h in valid {
            check(&hex(h));
            assert_eq!(whole(&hex(h)), Ok(()), "{h}");
        }
        let invalid = [
            ("f8888080", 0),     // five-byte lead
            ("fc8480808080", 0), // six-byte lead
            ("80", 0),           // lone continuation
            ("bf", 0),           // lone continuation
            ("c0af", 0),         // overlong '/'
            ("e080af", 1),       // overlong '/'
            ("f08080af", 1),     // overlong '/'
            ("eda080edb080", 1), // paired surrogates
            ("edbfbf", 1),       // U+DFFF
            ("f4908080", 1),     // U+110000
            ("c220", 1),         // lead then space
        ];
        for (h, at) in invalid {
            let bytes = hex(h);
            check(&bytes);
            assert_eq!(bytewise_error_index(&bytes), Some(at), "{h}");
            assert_eq!(whole(&bytes), Err(Utf8Error), "{h}");
        }
        // An unfinished character is only an error at the end.
        let bytes = hex("cebae1bdb9cf83ce");
        check(&bytes);
        assert_eq!(bytewise_error_index(&bytes), None);
        assert_eq!(whole(&bytes), Err(Utf8Error));
    }

    #[test]
    fn pending_character_and_reset() {
        let mut v = Utf8Validator::default();
        assert!(v.is_char_boundary());
        v.feed(b"\xF0\x9F").unwrap();
        assert!(!v.is_char_boundary());
        v.feed(b"").unwrap();
        v.feed(b"\xA6").unwrap();
        assert!(!v.is_char_boundary());
        v.feed(b"\x80").unwrap();
        assert!(v.is_char_boundary());
        v.feed(b"\xE2").unwrap();
        assert_eq!(v.finish(), Err(Utf8Error));
        assert!(!v.is_char_boundary());
        v.reset();
        assert!(v.is_char_boundary());
        v.feed("🦀".as_bytes()).unwrap();
        v.finish().unwrap();
        // An empty text is valid.
        v.reset();
        v.finish().unwrap();
    }

    #[test]
    fn error_display() {
        assert_eq!(std::format!("{Utf8Error}"), "invalid UTF-8");
    }
}
