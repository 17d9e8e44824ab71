//! The sending half of permessage-deflate: messages compressed into frames
//! with RSV1 (RFC 7692 §7.2.1), usable apart from a [`Connection`](crate::Connection)
//! by a shell whose senders write frames themselves.

use alloc::boxed::Box;
use alloc::vec::Vec;

use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Method, Strategy};

use super::{DeflateParams, TAIL};
use crate::connection::{MessageKind, Role};
use crate::frame::FrameHeader;
use crate::mask::apply_mask;

/// The "per-message compressed" bit in a frame's first byte (RSV1).
pub(crate) const RSV1: u8 = 0x40;

/// One end's compressor for permessage-deflate: what
/// [`Connection::send_compressed`](crate::Connection::send_compressed)
/// uses, for a shell that frames messages outside the connection (senders
/// on other threads). Messages must reach the peer in the order they were
/// compressed; a compressed frame that is not sent after all must be
/// followed by [`Compressor::reset`].
///
/// With context takeover it keeps zlib-rs's compressor (294 KB with a
/// 15-bit window, see [`crate::deflate`]) from the first compressed
/// message on; without it the compressor is dropped after every message.
pub struct Compressor {
    /// The window we compress with, in bits.
    window_bits: u8,
    /// We reset our compressor after every message.
    no_context_takeover: bool,
    /// zlib's compression level, 0–9.
    level: u8,
    /// Boxed: zlib-rs's stream is about 130 bytes, a pointer while unused.
    pub(super) compressor: Option<Box<Deflate>>,
}

impl Compressor {
    /// The compressor of `role` (this end) after agreeing on `params`,
    /// at `level` (0 = stored only, 1 fastest … 9 best; higher is taken
    /// as 9).
    pub fn new(role: Role, params: &DeflateParams, level: u8) -> Self {
        let (bits, no_takeover) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
        };
        Self {
            window_bits: bits.unwrap_or(15),
            no_context_takeover: no_takeover,
            level: level.min(9),
            compressor: None,
        }
    }

    /// Forgets the window (the next message refers to nothing before it):
    /// after a compressed frame was dropped instead of sent. Always safe:
    /// the peer's window may hold more than ours.
    pub fn reset(&mut self) {
        self.compressor = None;
    }

    /// Appends a whole message as one frame to `out`: compressed, with
    /// RSV1, and masked with `mask` (a client's fresh key; `None` for a
    /// server). Returns the number of bytes appended. Should zlib-rs
    /// fail (it does not with these parameters) the message is appended
    /// uncompressed instead, which the RFC allows.
    pub fn write_message(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        out: &mut Vec<u8>,
    ) -> usize {
        let start = out.len();
        const ROOM: usize = FrameHeader::MAX_LEN;
        out.resize(start + ROOM, 0);
        let body = start + ROOM;
        let compressed = self.compress(payload, out);
        if !compressed {
            out.extend_from_slice(payload);
        }
        let header = FrameHeader {
            fin: true,
            opcode: kind.opcode(),
            mask,
            payload_len: (out.len() - body) as u64,
        };
        let at = body - header.encoded_len();
        // Sized to fit: the header takes exactly `body - at` bytes.
        let _ = header.encode(&mut out[at..body]);
        if compressed {
            out[at] |= RSV1;
        }
        if let Some(key) = mask {
            apply_mask(&mut out[body..], key, 0);
        }
        out.drain(start..at);
        out.len() - start
    }

    /// Appends `data` compressed to `out`, without the sync flush's last
    /// four bytes (a message's payload, RFC 7692 §7.2.1). On a compressor
    /// failure `out` is left as it was, the compressor is dropped and
    /// `false` is returned: send the message uncompressed.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        if data.is_empty() {
            // An empty stored block's first byte (RFC 7692 §7.2.3.6): the
            // window is untouched. (zlib gives nothing for a sync flush
            // with no input right after another one.)
            out.push(0x00);
            return true;
        }
        let start = out.len();
        let (level, bits) = (self.level, self.window_bits);
        let deflate = self
            .compressor
            .get_or_insert_with(|| Box::new(Deflate::new_with_config(config(level, bits))));
        let mut input = data;
        let ok = loop {
            let at = out.len();
            let room = (input.len() / 2).max(1024);
            out.resize(at + room, 0);
            let (read, wrote) = (deflate.total_in(), deflate.total_out());
            let r = deflate.compress(
                input,
                out.get_mut(at..).unwrap_or_default(),
                DeflateFlush::SyncFlush,
            );
            let written = usize::try_from(deflate.total_out() - wrote).unwrap_or(usize::MAX);
            let consumed = usize::try_from(deflate.total_in() - read).unwrap_or(usize::MAX);
            out.truncate(at + written.min(room));
            input = input.get(consumed..).unwrap_or_default();
            match r {
                // Everything is in and the flush fitted: done. (A flush
                // asked for again with nothing new is a no-op, `BufError`.)
                Ok(_) if input.is_empty() && written < room => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        if !ok || !out.ends_with(&TAIL) {
            out.truncate(start);
            self.compressor = None;
            return false;
        }
        out.truncate(out.len() - TAIL.len());
        if self.no_context_takeover {
            self.compressor = None;
        }
        true
    }
}

impl core::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor")
            .field("window_bits", &self.window_bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .field("level", &self.level)
            .field("holds_window", &self.compressor.is_some())
            .finish()
    }
}

/// zlib-rs's configuration for `level` and a window of `window_bits`
/// (8–15; larger is taken as 15).
///
/// zlib has no raw DEFLATE stream with an 8-bit window (it would make one
/// with 9 bits), so under 8 bits the compressor runs in RLE mode with 9:
/// Huffman-coded literals and repeats of the previous byte (distance 1),
/// which every window holds.
fn config(level: u8, window_bits: u8) -> DeflateConfig {
    let (window_bits, strategy) = match window_bits {
        0..=8 => (9, Strategy::Rle),
        9..=15 => (window_bits, Strategy::Default),
        _ => (15, Strategy::Default),
    };
    DeflateConfig {
        level: i32::from(level.min(9)),
        method: Method::Deflated,
        // Negative: a raw DEFLATE stream, no zlib header or checksum.
        window_bits: -i32::from(window_bits),
        // Memory level 6 rather than zlib's default 8: 294 KB per
        // compressor with a 15-bit window instead of 380 KB, the same
        // compressed sizes and speed on JSON-like text of 256 B to 64 KiB
        // (measured with zlib-rs 0.6.9).
        mem_level: 6,
        strategy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    /// JSON-like text: keys repeat at distances of a few hundred bytes,
    /// beyond the smallest windows, and values vary.
    fn json(records: usize) -> Vec<u8> {
        let mut s = alloc::string::String::from("[");
        for i in 0..records {
            s += &alloc::format!(
                "{{\"id\":{i},\"user\":\"user-{}\",\"price\":{}.{:02},\"tags\":[\"{}\"],\"note\":\"{}\"}},",
                i * 7919 % 1000,
                i * 31 % 977,
                i % 100,
                ["red", "green", "blue", "amber"][i % 4],
                "lorem ipsum dolor sit amet ".repeat(i % 5 + 1),
            );
        }
        s += "]";
        s.into_bytes()
    }

    fn server(bits: u8, no_takeover: bool, level: u8) -> Compressor {
        let params = DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: false,
            server_max_window_bits: Some(bits),
            client_max_window_bits: None,
        };
        Compressor::new(Role::Server, &params, level)
    }

    /// Inflates one message (the payload plus the tail the sender removed)
    /// with zlib's inflater limited to `bits`, which fails on a distance
    /// beyond that window.
    fn inflate(d: &mut Decompress, payload: &[u8]) -> Result<Vec<u8>, flate2::DecompressError> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(input.len() * 8 + 64);
        let mut at = 0;
        loop {
            let before = d.total_in();
            let status = d.decompress_vec(&input[at..], &mut out, FlushDecompress::Sync)?;
            at += (d.total_in() - before) as usize;
            if at == input.len() || status == Status::StreamEnd {
                return Ok(out);
            }
            out.reserve(out.capacity().max(1024));
        }
    }

    #[test]
    fn small_windows_are_honoured_and_still_compress() {
        let data = json(200);
        for bits in 8..=14u8 {
            for level in [1u8, 3, 6, 9] {
                for no_takeover in [false, true] {
                    let mut c = server(bits, no_takeover, level);
                    // zlib reads no raw stream with an 8-bit window: the
                    // 8-bit compressor's RLE mode (distance 1) is read
                    // with 9 bits.
                    let mut d = Decompress::new_with_window_bits(false, bits.max(9));
                    let mut sent = 0;
                    // Several messages in a row: with context takeover the
                    // window carries over between them.
                    for part in data.chunks(3000) {
                        let mut out = Vec::new();
                        assert!(c.compress(part, &mut out));
                        sent += out.len();
                        let back = inflate(&mut d, &out)
                            .unwrap_or_else(|e| panic!("bits {bits} level {level}: {e}"));
                        assert_eq!(back, part, "bits {bits} level {level}");
                    }
                    // Runs and Huffman codes alone (8 bits) take off a
                    // fifth; a real window, more than half.
                    let most = if bits == 8 {
                        data.len() * 8 / 10
                    } else {
                        data.len() / 2
                    };
                    assert!(
                        sent < most,
                        "bits {bits} level {level}: {sent} of {}",
                        data.len()
                    );
                }
            }
        }
    }

    #[test]
    fn the_window_checker_catches_a_far_distance() {
        // The control for the test above: a 15-bit window's output, with
        // repeats 1,000+ bytes apart, is refused by a 9-bit inflater.
        let data = json(50);
        let mut c = server(15, false, 6);
        let mut out = Vec::new();
        assert!(c.compress(&data, &mut out));
        assert!(out.len() * 3 < data.len());
        let mut d = Decompress::new_with_window_bits(false, 9);
        assert!(inflate(&mut d, &out).is_err());
        let mut d = Decompress::new_with_window_bits(false, 15);
        assert_eq!(inflate(&mut d, &out).as_deref().ok(), Some(&data[..]));
    }

    #[test]
    fn an_empty_message_is_one_byte_and_keeps_the_window() {
        let data = json(20);
        let mut c = server(15, false, 3);
        let mut d = Decompress::new_with_window_bits(false, 15);
        for message in [&data[..], &[], &[], &data[..]] {
            let mut out = Vec::new();
            assert!(c.compress(message, &mut out));
            if message.is_empty() {
                assert_eq!(out, [0x00]);
            }
            assert_eq!(inflate(&mut d, &out).as_deref().ok(), Some(message));
            // The compressor (and its window) is kept throughout.
            assert!(c.compressor.is_some());
        }
    }

    #[test]
    fn level_zero_is_stored_under_any_window() {
        let data = json(20);
        for bits in [9u8, 15] {
            let mut c = server(bits, false, 0);
            let mut out = Vec::new();
            assert!(c.compress(&data, &mut out));
            assert!(out.len() >= data.len());
            let mut d = Decompress::new_with_window_bits(false, bits);
            assert_eq!(inflate(&mut d, &out).as_deref().ok(), Some(&data[..]));
        }
    }
}
