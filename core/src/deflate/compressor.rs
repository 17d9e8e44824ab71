//! The sending half of permessage-deflate: messages compressed into frames
//! with RSV1 (RFC 7692 §7.2.1), usable apart from a [`Connection`](crate::Connection)
//! by a shell whose senders write frames themselves.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::{MZError, MZFlush};

use super::{DeflateParams, TAIL};
use crate::connection::{MessageKind, Role};
use crate::frame::FrameHeader;
use crate::mask::apply_mask;

/// The "per-message compressed" bit in a frame's first byte (RSV1).
pub(crate) const RSV1: u8 = 0x40;
/// The largest stored block.
const MAX_STORED: usize = 0xFFFF;

/// One end's compressor for permessage-deflate: what
/// [`Connection::send_compressed`](crate::Connection::send_compressed)
/// uses, for a shell that frames messages outside the connection (senders
/// on other threads). Messages must reach the peer in the order they were
/// compressed; a compressed frame that is not sent after all must be
/// followed by [`Compressor::reset`].
///
/// With context takeover it keeps miniz_oxide's compressor (about 300 KB)
/// from the first compressed message on; without it the compressor is
/// dropped after every message. A window limited below 15 bits is met
/// with stored (uncompressed) DEFLATE blocks (see [`crate::deflate`]).
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
        if self.window_bits < 15 {
            // miniz_oxide always searches a 32 KiB window: stored blocks
            // are valid under any window the peer limited us to.
            stored_blocks(data, out);
            return true;
        }
        let start = out.len();
        let level = i32::from(self.level);
        let compressor = self.compressor.get_or_insert_with(|| {
            Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
                level, -15, 0,
            )))
        });
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

/// Appends `data` as stored DEFLATE blocks, ending where a sync flush's
/// empty stored block would begin (its header byte; the receiver appends
/// the other four bytes).
fn stored_blocks(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / MAX_STORED * 5 + 6);
    for chunk in data.chunks(MAX_STORED) {
        // BFINAL 0, BTYPE 00, then LEN and NLEN, little-endian.
        let len = chunk.len() as u16;
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0);
}
