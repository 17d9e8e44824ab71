//! A connection's permessage-deflate state: the compressor for what it
//! sends and the inflater for what it receives (RFC 7692 §7.2), each kept
//! between messages only with context takeover.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::DeflateParams;
use crate::connection::Role;
use crate::error::ProtocolError;

/// The four bytes a sync flush ends with, removed by the sender and
/// appended again by the receiver (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// How many inflated bytes are handed on at a time: the most a message
/// can overshoot its limit by in memory before it is refused is nothing
/// (each piece is checked before it is stored); this is only the scratch.
const SCRATCH: usize = 8 * 1024;
/// The largest stored block.
const MAX_STORED: usize = 0xFFFF;

/// One connection's permessage-deflate state.
pub(crate) struct Deflate {
    /// The window we compress with, in bits.
    tx_window_bits: u8,
    /// We reset our compressor after every message.
    tx_no_context_takeover: bool,
    /// The peer resets its compressor after every message: our inflater
    /// need not keep its window.
    rx_no_context_takeover: bool,
    /// miniz_oxide's compression level, 0–10.
    level: u8,
    compressor: Option<Box<CompressorOxide>>,
    inflater: Option<Inflater>,
    /// The data message being received is compressed (RSV1 on its first
    /// frame).
    pub(crate) rx_message: bool,
}

/// The inflater and its output scratch.
struct Inflater {
    state: Box<InflateState>,
    scratch: Box<[u8; SCRATCH]>,
    /// The stream ended with a final block: the rest of the message is
    /// ignored and the next message starts a new stream.
    ended: bool,
}

impl Deflate {
    /// The state for `role` after agreeing on `params`, compressing at
    /// `level` (0–10; higher is clamped).
    pub(crate) fn new(role: Role, params: &DeflateParams, level: u8) -> Self {
        let (tx_bits, tx_no, rx_no) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            ),
        };
        Self {
            tx_window_bits: tx_bits.unwrap_or(15),
            tx_no_context_takeover: tx_no,
            rx_no_context_takeover: rx_no,
            level: level.min(10),
            compressor: None,
            inflater: None,
            rx_message: false,
        }
    }

    /// Appends `data` compressed to `out`, without the sync flush's last
    /// four bytes (a message's payload, RFC 7692 §7.2.1). On a compressor
    /// failure (which valid parameters never cause) `out` is left as it
    /// was, the compressor is dropped and `false` is returned: send the
    /// message uncompressed.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        if self.tx_window_bits < 15 {
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
        if self.tx_no_context_takeover {
            self.compressor = None;
        }
        true
    }

    /// Inflates `data`, a piece of a compressed message's payload, handing
    /// the bytes out to `sink` as they come (at most 8 KiB at a time); an
    /// error from `sink` stops inflating and is returned.
    pub(crate) fn inflate(
        &mut self,
        data: &[u8],
        mut sink: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let inflater = self.inflater.get_or_insert_with(|| Inflater {
            state: InflateState::new_boxed(DataFormat::Raw),
            scratch: Box::new([0; SCRATCH]),
            ended: false,
        });
        let mut input = data;
        while !inflater.ended {
            let r = miniz_oxide::inflate::stream::inflate(
                &mut inflater.state,
                input,
                &mut inflater.scratch[..],
                MZFlush::None,
            );
            input = input.get(r.bytes_consumed..).unwrap_or_default();
            if let Some(out) = inflater.scratch.get(..r.bytes_written) {
                if !out.is_empty() {
                    sink(out)?;
                }
            }
            match r.status {
                Ok(MZStatus::StreamEnd) => inflater.ended = true,
                Ok(_) => {}
                // No progress possible: it needs more input.
                Err(MZError::Buf) => break,
                Err(_) => return Err(ProtocolError::InvalidCompressedData),
            }
            if input.is_empty() && r.bytes_written < SCRATCH {
                break;
            }
        }
        Ok(())
    }

    /// The compressed message's payload is complete: inflates the tail the
    /// sender removed, then forgets the window if the peer does not take
    /// it over (or its stream ended).
    pub(crate) fn finish_message(
        &mut self,
        sink: impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.rx_message = false;
        self.inflate(&TAIL, sink)?;
        let ended = self.inflater.as_ref().is_some_and(|i| i.ended);
        if self.rx_no_context_takeover || ended {
            self.inflater = None;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn params(s: bool, c: bool, sb: Option<u8>, cb: Option<u8>) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: s,
            client_no_context_takeover: c,
            server_max_window_bits: sb,
            client_max_window_bits: cb,
        }
    }

    fn inflate_all(d: &mut Deflate, data: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        d.inflate(data, |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        d.finish_message(|c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn round_trips_with_and_without_context_takeover_and_small_windows() {
        let text: Vec<u8> = (0..100_000u32)
            .flat_map(|i| alloc::format!("{{\"id\":{i},\"name\":\"item\"}}").into_bytes())
            .take(200_000)
            .collect();
        for p in [
            params(false, false, None, None),
            params(true, true, None, None),
            params(false, false, Some(9), Some(9)),
            params(true, true, Some(8), Some(12)),
        ] {
            let mut tx = Deflate::new(Role::Server, &p, 6);
            let mut rx = Deflate::new(Role::Client, &p, 6);
            for msg in [
                &text[..0],
                &text[..1],
                &text[..300],
                &text[..],
                &text[..5000],
            ] {
                let mut wire = Vec::new();
                assert!(tx.compress(msg, &mut wire));
                if p.server_max_window_bits.is_none() && msg.len() > 1000 {
                    assert!(wire.len() < msg.len() / 3, "compressed");
                }
                assert_eq!(inflate_all(&mut rx, &wire).as_deref(), Ok(msg), "{p:?}");
            }
            assert_eq!(
                tx.compressor.is_none(),
                p.server_no_context_takeover || p.server_max_window_bits.is_some()
            );
            assert_eq!(rx.inflater.is_none(), p.server_no_context_takeover);
        }
    }

    #[test]
    fn rfc7692_examples_inflate() {
        // §7.2.3.1: "Hello" compressed; §7.2.3.2 the same again with
        // context takeover; §7.2.3.3 stored; §7.2.3.4 two blocks.
        let mut d = Deflate::new(Role::Client, &params(false, false, None, None), 6);
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_all(&mut d, &hello).as_deref(), Ok(&b"Hello"[..]));
        assert_eq!(
            inflate_all(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00]).as_deref(),
            Ok(&b"Hello"[..])
        );
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate_all(&mut d, &stored).as_deref(), Ok(&b"Hello"[..]));
        // A final block (BFINAL=1): accepted, and the next message starts afresh.
        let mut d = Deflate::new(Role::Client, &params(false, false, None, None), 6);
        assert_eq!(
            inflate_all(&mut d, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).as_deref(),
            Ok(&b"Hello"[..])
        );
        assert_eq!(inflate_all(&mut d, &hello).as_deref(), Ok(&b"Hello"[..]));
    }

    #[test]
    fn corrupt_data_is_an_error_and_the_sink_can_stop_a_bomb() {
        let mut d = Deflate::new(Role::Server, &params(false, false, None, None), 6);
        assert_eq!(
            inflate_all(&mut d, &[0xff, 0xff, 0xff]),
            Err(ProtocolError::InvalidCompressedData)
        );
        // 16 MiB of zeros compress to about 16 KiB; the sink refuses past 1 MiB.
        let mut tx = Deflate::new(Role::Client, &params(false, false, None, None), 9);
        let mut wire = Vec::new();
        assert!(tx.compress(&vec![0u8; 16 << 20], &mut wire));
        assert!(wire.len() < 64 << 10, "{}", wire.len());
        let mut rx = Deflate::new(Role::Server, &params(false, false, None, None), 6);
        let mut total = 0usize;
        let r = rx.inflate(&wire, |c| {
            total += c.len();
            if total > 1 << 20 {
                return Err(ProtocolError::MessageTooLarge { max: 1 << 20 });
            }
            Ok(())
        });
        assert_eq!(r, Err(ProtocolError::MessageTooLarge { max: 1 << 20 }));
        assert!(total <= (1 << 20) + SCRATCH);
    }
}
