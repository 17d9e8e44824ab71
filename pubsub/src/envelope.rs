//! What travels on a room's Redis channel: the message and who sent it,
//! so that no instance echoes a message to its author and the author's
//! instance can tell its own messages apart.
//!
//! ```text
//! byte 0      version (1)
//! byte 1      kind: 0 text, 1 binary
//! bytes 2-9   origin: the publishing instance's random token (big-endian)
//! bytes 10-17 seq: the origin's message number (big-endian)
//! bytes 18-25 author: the connection id on the origin (big-endian)
//! bytes 26-   the payload
//! ```

use core::fmt;

use snowsocket_server::Message;

const VERSION: u8 = 1;
const HEADER: usize = 26;

/// A message as published on a room's channel, borrowed from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) origin: u64,
    pub(crate) seq: u64,
    pub(crate) author: u64,
    pub(crate) message: Message<'a>,
}

/// Why bytes on a channel are not an [`Envelope`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnvelopeError {
    /// Shorter than the header.
    Short,
    /// Another version or kind byte.
    Unknown,
    /// Kind text, payload not UTF-8.
    NotUtf8,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Short => "shorter than an envelope's header",
            Self::Unknown => "unknown envelope version or message kind",
            Self::NotUtf8 => "a text message that is not UTF-8",
        })
    }
}

impl<'a> Envelope<'a> {
    /// The envelope's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, payload) = match self.message {
            Message::Text(text) => (0, text.as_bytes()),
            Message::Binary(data) => (1, data),
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&self.origin.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.author.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Parses `bytes` (anything may arrive on a channel: never panics).
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let (header, payload) = bytes.split_at_checked(HEADER).ok_or(EnvelopeError::Short)?;
        let word = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&header[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let message = match (header[0], header[1]) {
            (VERSION, 0) => {
                Message::Text(core::str::from_utf8(payload).map_err(|_| EnvelopeError::NotUtf8)?)
            }
            (VERSION, 1) => Message::Binary(payload),
            _ => return Err(EnvelopeError::Unknown),
        };
        Ok(Self {
            origin: word(2),
            seq: word(10),
            author: word(18),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_binary() {
        for message in [Message::Text("héllo"), Message::Binary(&[0, 255, 7])] {
            let e = Envelope {
                origin: 0x0102_0304_0506_0708,
                seq: 42,
                author: 7,
                message,
            };
            assert_eq!(Envelope::decode(&e.encode()), Ok(e));
        }
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        assert_eq!(Envelope::decode(b"hello"), Err(EnvelopeError::Short));
        let mut bytes = Envelope {
            origin: 1,
            seq: 2,
            author: 3,
            message: Message::Text("x"),
        }
        .encode();
        bytes[0] = 9;
        assert_eq!(Envelope::decode(&bytes), Err(EnvelopeError::Unknown));
        bytes[0] = VERSION;
        bytes[1] = 0;
        bytes.push(0xff);
        assert_eq!(Envelope::decode(&bytes), Err(EnvelopeError::NotUtf8));
        // Every truncation is refused or parsed, never a panic.
        for n in 0..bytes.len() {
            let _ = Envelope::decode(&bytes[..n]);
        }
    }
}
