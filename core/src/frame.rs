//! The frame codec (RFC 6455 §5.2): header decode and encode.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use core::fmt;

use crate::error::{InsufficientSizeError, ProtocolError};
use crate::mask::apply_mask;

/// A frame's opcode (RFC 6455 §5.2). Reserved values are refused when
/// decoding, so they have no variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: a text frame.
    Text,
    /// 0x2: a binary frame.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Whether this is a control opcode (close, ping, pong).
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;
    fn try_from(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpCode(other)),
        })
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Continuation => "continuation",
            Self::Text => "text",
            Self::Binary => "binary",
            Self::Close => "close",
            Self::Ping => "ping",
            Self::Pong => "pong",
        })
    }
}

/// `n` as a `usize`, saturated (a declared length carried by an error).
pub(crate) fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The largest control-frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The largest control frame, header included: a 2-byte header, a masking
/// key, 125 bytes of payload. [`Connection::handle_read`](crate::Connection::handle_read)
/// takes a control frame only whole, so its input must be able to hold
/// this many bytes.
pub const MAX_CONTROL_FRAME: usize = 2 + 4 + MAX_CONTROL_PAYLOAD;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit: this frame ends its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest header: 2 bytes, 8 of extended length, 4 of mask.
    pub const MAX_LEN: usize = 14;

    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header
    /// (incomplete is a status, not an error), otherwise the header and the
    /// number of bytes it took. Refuses what is wrong whatever the role:
    /// RSV bits (no extension is ever negotiated), reserved opcodes, long or
    /// fragmented control frames, and a 64-bit length with its top bit set.
    /// Masking direction and size limits depend on the connection and are
    /// checked there.
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(None);
        };
        let rsv = (b0 >> 4) & 0b111;
        if rsv != 0 {
            return Err(ProtocolError::ReservedBits(rsv));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::try_from(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        // The extended length, big-endian, if its bytes have arrived.
        let ext_bytes = rest.get(..ext);
        let payload_len = match ext_bytes {
            Some(&[a, b]) => u64::from(u16::from_be_bytes([a, b])),
            Some(&[a, b, c, d, e, f, g, h]) => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => u64::from(len7),
        };
        if opcode.is_control() && !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if ext_bytes.is_none() {
            return Ok(None);
        }
        // A control frame must use the 7-bit length. The error carries the
        // extended length, which is why it waits for those bytes: the same
        // input gives the same error however it arrives.
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(ProtocolError::ControlFrameTooLong(saturating_usize(
                payload_len,
            )));
        }
        if payload_len >> 63 != 0 {
            return Err(ProtocolError::InvalidPayloadLength);
        }
        let mask = if masked {
            match rest.get(ext..ext + 4) {
                Some(&[a, b, c, d]) => Some([a, b, c, d]),
                _ => return Ok(None),
            }
        } else {
            None
        };
        let used = 2 + ext + if masked { 4 } else { 0 };
        Ok(Some((
            Self {
                fin,
                opcode,
                mask,
                payload_len,
            },
            used,
        )))
    }

    /// The number of bytes [`FrameHeader::encode`] writes.
    pub const fn encoded_len(&self) -> usize {
        let ext = if self.payload_len < 126 {
            0
        } else if self.payload_len <= 0xFFFF {
            2
        } else {
            8
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header to the start of `out`, using the shortest length
    /// encoding, and returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, InsufficientSizeError> {
        let required = self.encoded_len();
        let Some(out) = out.get_mut(..required) else {
            return Err(InsufficientSizeError { required });
        };
        let (first, rest) = out.split_at_mut(2);
        first[0] = (u8::from(self.fin) << 7) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        // `required` is 2, 4 or 10 plus 4 for the key: the extended length
        // takes what the key leaves.
        let ext = required - 2 - if self.mask.is_some() { 4 } else { 0 };
        first[1] = mask_bit
            | match ext {
                // Fits in 7 bits: that is when there is no extended length.
                0 => self.payload_len as u8,
                2 => 126,
                _ => 127,
            };
        let (len, key) = rest.split_at_mut(ext);
        // Fixed-size copies (a copy of `ext` bytes would be a `memcpy` call
        // on every frame sent).
        // (and for the 8-byte length and the key, a `memcpy` call whose
        // frame adds to the deepest stack of a firmware).
        if let Ok(len) = <&mut [u8; 2]>::try_from(&mut *len) {
            *len = (self.payload_len as u16).to_be_bytes();
        } else if let Ok(len) = <&mut [u8; 8]>::try_from(len) {
            *len = self.payload_len.to_be_bytes();
        }
        if let (Some(mask), Ok(key)) = (self.mask, <&mut [u8; 4]>::try_from(key)) {
            *key = mask;
        }
        Ok(required)
    }
}

/// Encodes one frame into the start of `out`: the header, then the payload,
/// masked when the header carries a key. Returns the frame's length
/// ([`FrameHeader::encoded_len`] plus the payload's); `out` is left as it
/// was when it is too short. This is the workspace's one frame encoder:
/// [`Connection`](crate::Connection) uses it, and so do shells that encode
/// frames away from the connection (another thread, a broadcast).
///
/// To send a large payload without copying it, encode only the header
/// ([`FrameHeader::encode`]) and write the payload after it (masked with
/// [`apply_mask`] when `mask` is set).
pub fn encode_frame(
    header: FrameHeader,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, InsufficientSizeError> {
    let required = header.encoded_len() + payload.len();
    let Some(out) = out.get_mut(..required) else {
        return Err(InsufficientSizeError { required });
    };
    let at = header.encode(out)?;
    let body = &mut out[at..];
    body.copy_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(body, key, 0);
    }
    Ok(required)
}

/// [`encode_frame`] appending to a `Vec` (feature `alloc`), which grows to
/// fit. Returns the frame's length.
///
/// The same bytes as [`FrameHeader::encode`], written with a few fixed-size
/// appends: this runs once per frame a shell sends (a 16-byte echo spent a
/// quarter of its send path in the slice encoder's general form).
#[cfg(feature = "alloc")]
#[inline]
pub fn encode_frame_vec(
    header: FrameHeader,
    payload: &[u8],
    out: &mut alloc::vec::Vec<u8>,
) -> usize {
    let n = header.encoded_len();
    out.reserve(n + payload.len());
    let first = (u8::from(header.fin) << 7) | header.opcode.as_u8();
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    let len = header.payload_len;
    if len < 126 {
        // Fits in 7 bits.
        out.extend_from_slice(&[first, mask_bit | len as u8]);
    } else if let Ok(short) = u16::try_from(len) {
        let [high, low] = short.to_be_bytes();
        out.extend_from_slice(&[first, mask_bit | 126, high, low]);
    } else {
        out.extend_from_slice(&[first, mask_bit | 127]);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = header.mask {
        out.extend_from_slice(&key);
    }
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key, 0);
    }
    n + payload.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(h: FrameHeader) {
        let mut buf = [0u8; FrameHeader::MAX_LEN];
        let n = h.encode(&mut buf).unwrap();
        assert_eq!(n, h.encoded_len());
        assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((h, n))));
        for cut in 0..n {
            assert_eq!(FrameHeader::decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn length_encodings_round_trip() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [OpCode::Text, OpCode::Binary, OpCode::Continuation] {
                    roundtrip(FrameHeader {
                        fin: len % 2 == 0,
                        opcode,
                        mask,
                        payload_len: len,
                    });
                }
            }
        }
        roundtrip(FrameHeader {
            fin: true,
            opcode: OpCode::Ping,
            mask: None,
            payload_len: 125,
        });
    }

    #[test]
    fn rejects_what_the_rfc_forbids() {
        assert_eq!(
            FrameHeader::decode(&[0x91, 0]),
            Err(ProtocolError::ReservedBits(1))
        );
        assert_eq!(
            FrameHeader::decode(&[0xC1, 0]),
            Err(ProtocolError::ReservedBits(4))
        );
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpCode(op))
            );
        }
        assert_eq!(
            FrameHeader::decode(&[0x09, 0]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::decode(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert_eq!(
            FrameHeader::decode(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidPayloadLength)
        );
    }

    #[test]
    fn output_too_small_is_reported() {
        let h = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: Some([0; 4]),
            payload_len: 70_000,
        };
        assert_eq!(
            h.encode(&mut [0u8; 5]),
            Err(InsufficientSizeError { required: 14 })
        );
    }

    #[test]
    fn the_encoder_into_a_slice_and_into_a_vec_agree() {
        use std::vec;
        use std::vec::Vec;
        let lengths = [0, 1, 5, 125, 126, 127, 0xFFFF, 0x1_0000, 70_000];
        let masks = [None, Some([0x37, 0xfa, 0x21, 0x3d])];
        let kinds = [
            (true, OpCode::Binary),
            (false, OpCode::Text),
            (true, OpCode::Continuation),
        ];
        for (len, mask, (fin, opcode)) in lengths
            .into_iter()
            .flat_map(|len| masks.map(|mask| (len, mask)))
            .flat_map(|(len, mask)| kinds.map(|kind| (len, mask, kind)))
        {
            let header = FrameHeader {
                fin,
                opcode,
                mask,
                payload_len: len as u64,
            };
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut slice = vec![0u8; header.encoded_len() + len];
            let n = encode_frame(header, &payload, &mut slice).unwrap();
            assert_eq!(n, slice.len());
            assert_eq!(
                encode_frame(header, &payload, &mut slice[..n - 1]),
                Err(InsufficientSizeError { required: n })
            );
            // The `Vec` flavour appends the same bytes.
            #[cfg(feature = "alloc")]
            {
                let mut grown = vec![7u8];
                assert_eq!(encode_frame_vec(header, &payload, &mut grown), n);
                assert_eq!(&grown[1..], &slice[..]);
            }
        }
    }
}
