//! The sending half of permessage-deflate: messages compressed into frames
//! with RSV1 (RFC 7692 §7.2.1), usable apart from a [`Connection`](crate::Connection)
//! by a shell whose senders write frames themselves.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{
    create_comp_flags_from_zip_params, CompressionStrategy, CompressorOxide,
};
use miniz_oxide::{MZError, MZFlush};

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
/// With context takeover it keeps miniz_oxide's compressor (about 300 KB)
/// from the first compressed message on; without it the compressor is
/// dropped after every message. Under a window limited below 15 bits it
/// compresses with Huffman codes and runs only (see [`crate::deflate`]).
pub struct Compressor {
    /// The window we compress with, in bits.
    window_bits: u8,
    /// We reset our compressor after every message.
    no_context_takeover: bool,
    /// miniz_oxide's compression level, 0–10.
    level: u8,
    pub(super) compressor: Option<Box<CompressorOxide>>,
}

impl Compressor {
    /// The compressor of `role` (this end) after agreeing on `params`,
    /// at `level` (0 = stored only, 1 fastest … 9 best, 10 slowest; higher
    /// is taken as 10).
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
            level: level.min(10),
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
    /// server). Returns the number of bytes appended. Should miniz_oxide
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
        let start = out.len();
        let flags = flags(self.level, self.window_bits);
        let compressor = self
            .compressor
            .get_or_insert_with(|| Box::new(CompressorOxide::new(flags)));
        let mut input = data;
        let ok = loop {
            let at = out.len();
            let room = (input.len() / 2).max(1024);
            out.resize(at + room, 0);
            let r = miniz_oxide::deflate::stream::deflate(
                compressor,
                input,
                out.get_mut(at..).unwrap_or_default(),
                MZFlush::Sync,
            );
            out.truncate(at + r.bytes_written);
            input = input.get(r.bytes_consumed..).unwrap_or_default();
            match r.status {
                Ok(_) if input.is_empty() && r.bytes_written < room => break true,
                Ok(_) => {}
                // Nothing left to flush.
                Err(MZError::Buf) if input.is_empty() => break true,
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

/// miniz_oxide's flags for `level` when our window is `window_bits`.
///
/// miniz_oxide always searches a 32 KiB window and cannot be limited, so
/// under a smaller window (the peer's `*_max_window_bits` below 15) it
/// runs in RLE mode: Huffman-coded literals plus matches at distance 1
/// only, which every window holds (RFC 1951 distances start at 1, the
/// smallest window is 256 bytes). Level 0 is stored blocks under any
/// window.
const fn flags(level: u8, window_bits: u8) -> u32 {
    let level = level as i32;
    if window_bits >= 15 || level == 0 {
        return create_comp_flags_from_zip_params(level, -15, 0);
    }
    let flags = create_comp_flags_from_zip_params(level, -15, CompressionStrategy::RLE as i32);
    // miniz_oxide takes its fast path, which searches the whole window
    // and ignores RLE mode, at exactly one probe (level 1): use two. The
    // probe count means nothing in RLE mode.
    if flags & MAX_PROBES_MASK == 1 {
        flags + 1
    } else {
        flags
    }
}

/// The probe count's bits in miniz_oxide's flags (`MAX_PROBES_MASK`,
/// crate-private there).
const MAX_PROBES_MASK: u32 = 0xFFF;

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
        for bits in 9..=14u8 {
            for level in [1u8, 3, 6, 9] {
                for no_takeover in [false, true] {
                    let mut c = server(bits, no_takeover, level);
                    let mut d = Decompress::new_with_window_bits(false, bits);
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
                    // Huffman coding alone takes off well over a fifth.
                    assert!(
                        sent * 10 < data.len() * 8,
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
