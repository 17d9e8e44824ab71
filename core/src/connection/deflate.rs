//! permessage-deflate in the connection (feature `deflate`): enabling it
//! with the agreed parameters, compressed sends, and the receive path's
//! hooks (RSV1 checked on each header, compressed messages inflated into
//! the message buffer within the message-size limit, text validated as it
//! comes out).

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::*;
use crate::deflate::{Deflate, DeflateParams, RSV1};

/// permessage-deflate (feature `deflate`).
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// Turns permessage-deflate on with the parameters the handshake
    /// agreed on ([`crate::deflate::negotiate`] as a server,
    /// [`crate::handshake::parse_response_with_deflate`] as a client),
    /// compressing at `level` (0 = stored only, 1 fastest … 9 best;
    /// higher is taken as 9). Call it before the first frame is
    /// received or sent. From then on received messages with RSV1 are
    /// inflated (within [`Connection::max_message_size`]) and
    /// [`Connection::send_compressed`] compresses; [`Connection::send`]
    /// still sends uncompressed messages, which the RFC allows.
    pub fn enable_deflate(&mut self, params: &DeflateParams, level: u8) {
        self.deflate = Some(Box::new(Deflate::new(self.role(), params, level)));
    }

    /// Whether permessage-deflate is on ([`Connection::enable_deflate`]).
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate.is_some()
    }

    /// Appends a whole message as one frame to `out`: compressed (RSV1
    /// set) when permessage-deflate is on, as [`Connection::send`] would
    /// otherwise; masked when this end is a client. Returns the number of
    /// bytes appended. With context takeover, messages must reach the peer
    /// in the order they were compressed: send every frame this writes.
    ///
    /// On an error nothing is appended and the compressor is untouched.
    pub fn send_compressed(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        if self.sending_fragmented {
            return Err(SendError::FragmentInProgress);
        }
        self.check_open()?;
        let mask = self.mask_key();
        if let Some(deflate) = self.deflate.as_deref_mut() {
            return Ok(deflate.tx.write_message(kind, payload, mask, out));
        }
        let start = out.len();
        let len = self.frame_len(payload.len());
        out.resize(start + len, 0);
        let header = FrameHeader {
            fin: true,
            opcode: kind.opcode(),
            mask,
            payload_len: payload.len() as u64,
        };
        encode_frame(header, payload, &mut out[start..])?;
        Ok(len)
    }

    /// [`FrameHeader::decode`], with RSV1 allowed on the first frame of a
    /// data message (which is then compressed) and refused on control and
    /// continuation frames (RFC 7692 §6.1).
    pub(super) fn decode_header(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(deflate) = self.deflate.as_deref_mut() else {
            return FrameHeader::decode(buf);
        };
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let compressed = first & RSV1 != 0;
        let decoded = if compressed {
            let mut copy = [0u8; FrameHeader::MAX_LEN];
            let n = buf.len().min(copy.len());
            copy[..n].copy_from_slice(&buf[..n]);
            copy[0] &= !RSV1;
            FrameHeader::decode(&copy[..n])?
        } else {
            FrameHeader::decode(buf)?
        };
        if let Some((header, _)) = &decoded {
            match header.opcode {
                OpCode::Text | OpCode::Binary => deflate.rx_message = compressed,
                _ if compressed => return Err(ProtocolError::ReservedBits(RSV1 >> 4)),
                _ => {}
            }
        }
        Ok(decoded)
    }

    /// Whether the data message being received is compressed.
    #[inline(always)]
    pub(super) fn inflating_message(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| d.rx_message)
    }

    /// Inflates a piece of a compressed message's payload into the message
    /// buffer.
    pub(super) fn inflate_piece(&mut self, data: &[u8], text: bool) -> Result<(), Stop> {
        let max = self.max_message_size();
        let Some(deflate) = self.deflate.as_deref_mut() else {
            return Ok(());
        };
        let (buf, checked) = (&mut self.message_buf, &mut self.utf8_checked);
        deflate
            .inflate(data, |out| store(buf, checked, out, text, max))
            .map_err(|e| self.fail_protocol(e))
    }

    /// The compressed message's last frame is in: inflates what the sender
    /// removed from its end.
    pub(super) fn inflate_end(&mut self, text: bool) -> Result<(), Stop> {
        let max = self.max_message_size();
        let Some(deflate) = self.deflate.as_deref_mut() else {
            return Ok(());
        };
        let (buf, checked) = (&mut self.message_buf, &mut self.utf8_checked);
        deflate
            .finish_message(|out| store(buf, checked, out, text, max))
            .map_err(|e| self.fail_protocol(e))
    }
}

/// Appends inflated bytes to the message buffer if the message stays
/// within `max` (checked before storing them: a message that would
/// inflate past the limit costs no more than the limit), validating text.
fn store<B: MessageBuffer>(
    buf: &mut B,
    checked: &mut usize,
    out: &[u8],
    text: bool,
    max: usize,
) -> Result<(), ProtocolError> {
    let too_large = ProtocolError::MessageTooLarge { max };
    if buf.len().checked_add(out.len()).is_none_or(|n| n > max) {
        return Err(too_large);
    }
    buf.extend_from_slice(out).map_err(|()| too_large)?;
    if text && !check_utf8(buf.as_slice(), checked) {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(())
}

/// The receive path's incremental UTF-8 step (`Connection::check_utf8`)
/// on `buf`, of which `checked` bytes were validated before: `false` once
/// it cannot be UTF-8 whatever follows, else `checked` advances past what
/// is valid (an incomplete character at the end waits for more).
fn check_utf8(buf: &[u8], checked: &mut usize) -> bool {
    let unchecked = buf.get(*checked..).unwrap_or_default();
    let ascii = crate::utf8::ascii_prefix(unchecked);
    let rest = unchecked.get(ascii..).unwrap_or_default();
    let valid = match core::str::from_utf8(rest) {
        Ok(_) => rest.len(),
        // Cut short by the end of the input: a prefix of a character.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    *checked += ascii + valid;
    true
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
