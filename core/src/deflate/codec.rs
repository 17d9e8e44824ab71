//! A connection's permessage-deflate state: the compressor for what it
//! sends and the inflater for what it receives (RFC 7692 §7.2), each kept
//! between messages only with context takeover.

use alloc::boxed::Box;

use zlib_rs::{Inflate, InflateFlush, Status};

use super::{Compressor, DeflateParams, TAIL};
use crate::connection::Role;
use crate::error::ProtocolError;

/// How many inflated bytes are handed on at a time: the most a message
/// can overshoot its limit by in memory before it is refused is nothing
/// (each piece is checked before it is stored); this is only the scratch.
const SCRATCH: usize = 8 * 1024;

/// One connection's permessage-deflate state.
pub(crate) struct Deflate {
    /// What we send.
    pub(crate) tx: Compressor,
    /// The peer resets its compressor after every message: our inflater
    /// need not keep its window.
    rx_no_context_takeover: bool,
    inflater: Option<Inflater>,
    /// The data message being received is compressed (RSV1 on its first
    /// frame).
    pub(crate) rx_message: bool,
}

/// The inflater and its output scratch.
struct Inflater {
    state: Inflate,
    scratch: Box<[u8; SCRATCH]>,
    /// The stream ended with a final block: the rest of the message is
    /// ignored and the next message starts a new stream.
    ended: bool,
}

impl Deflate {
    /// The state for `role` after agreeing on `params`, compressing at
    /// `level` (0–10; higher is clamped).
    pub(crate) fn new(role: Role, params: &DeflateParams, level: u8) -> Self {
        Self {
            tx: Compressor::new(role, params, level),
            rx_no_context_takeover: match role {
                Role::Server => params.client_no_context_takeover,
                Role::Client => params.server_no_context_takeover,
            },
            inflater: None,
            rx_message: false,
        }
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
            // A raw stream (no zlib header), read with the largest window:
            // it reads a stream made with any smaller one.
            state: Inflate::new(false, 15),
            scratch: Box::new([0; SCRATCH]),
            ended: false,
        });
        let mut input = data;
        while !inflater.ended {
            let (read, wrote) = (inflater.state.total_in(), inflater.state.total_out());
            let r =
                inflater
                    .state
                    .decompress(input, &mut inflater.scratch[..], InflateFlush::NoFlush);
            let consumed = usize::try_from(inflater.state.total_in() - read).unwrap_or(usize::MAX);
            let written = usize::try_from(inflater.state.total_out() - wrote).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            if let Some(out) = inflater.scratch.get(..written) {
                if !out.is_empty() {
                    sink(out)?;
                }
            }
            match r {
                Ok(Status::StreamEnd) => inflater.ended = true,
                Ok(Status::Ok) => {}
                // No progress possible: it needs more input.
                Ok(Status::BufError) => break,
                // Not DEFLATE data (or, a raw stream never asks for a
                // dictionary; out of memory is reported the same way).
                Err(_) => return Err(ProtocolError::InvalidCompressedData),
            }
            if input.is_empty() && written < SCRATCH {
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

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
                assert!(tx.tx.compress(msg, &mut wire));
                if p.server_max_window_bits.is_none() && msg.len() > 1000 {
                    assert!(wire.len() < msg.len() / 3, "compressed");
                } else if msg.len() > 1000 {
                    // A small window: Huffman codes and runs only.
                    assert!(wire.len() < msg.len() * 8 / 10, "compressed");
                }
                assert_eq!(inflate_all(&mut rx, &wire).as_deref(), Ok(msg), "{p:?}");
            }
            assert_eq!(tx.tx.compressor.is_none(), p.server_no_context_takeover);
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
        assert!(tx.tx.compress(&vec![0u8; 16 << 20], &mut wire));
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
