//! Frames by hand.

use super::*;

/// The bytes of a frame header as given, valid or not: `rsv` is the three
/// RSV bits (0–7), `opcode` any 4-bit value, `len` the declared payload
/// length in its shortest encoding.
pub fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame as given, valid or not: [`header`] then `payload`, masked
/// with `mask` when there is one.
pub fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, rsv, opcode, mask, payload.len() as u64);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    out
}

/// A well-formed frame from a client (masked with a fixed key) or a server
/// (unmasked).
pub fn frame_from(role: Role, fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mask = match role {
        Role::Client => Some([0xA1, 0x5B, 0x07, 0xE3]),
        Role::Server => None,
    };
    frame(fin, 0, opcode.as_u8(), mask, payload)
}

/// A Close payload: the code, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame read back from the wire, unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// Whether the frame was masked.
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The close code, if this is a Close frame with one.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, self.payload.as_slice()) {
            (OpCode::Close, [a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

/// Splits `bytes` into whole frames (panics on anything else: what a
/// connection sends must be well-formed).
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (h, used) = FrameHeader::decode(bytes)
            .expect("a connection sent an invalid header")
            .expect("a connection sent an incomplete header");
        let len = usize::try_from(h.payload_len).unwrap();
        let mut payload = bytes[used..used + len].to_vec();
        if let Some(key) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        frames.push(WireFrame {
            fin: h.fin,
            opcode: h.opcode,
            masked: h.mask.is_some(),
            payload,
        });
        bytes = &bytes[used + len..];
    }
    frames
}

/// The code of the last Close frame in `bytes` (what a connection sent).
pub fn close_code(bytes: &[u8]) -> Option<u16> {
    parse_frames(bytes)
        .iter()
        .rev()
        .find(|f| f.opcode == OpCode::Close)
        .and_then(WireFrame::close_code)
}
