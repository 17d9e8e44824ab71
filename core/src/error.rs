//! Error types. Each peer violation knows the close code it fails the
//! connection with (RFC 6455 §7.1.7, §7.4.1).

use core::fmt;

use crate::close::{CloseCode, ClosePayloadError};
use crate::texts::{total_len, Texts};

/// A violation of RFC 6455 (or of a configured limit) by the peer.
///
/// The list is meant as a checklist of everything the decoder refuses; each
/// variant maps to the close code sent when failing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set with no extension negotiated that defines it
    /// (§5.2); with permessage-deflate, RSV1 on a control frame or a
    /// continuation frame (RFC 7692 §6.1). 1002.
    ReservedBits(u8),
    /// Opcode 3–7 or 0xB–0xF (§5.2). 1002.
    ReservedOpCode(u8),
    /// A control frame with more than 125 bytes of payload (§5.5). 1002.
    /// The declared length, saturated at `usize::MAX` (only a 32-bit target
    /// can receive a longer one).
    ControlFrameTooLong(usize),
    /// A control frame without FIN (§5.5). 1002.
    FragmentedControlFrame,
    /// An unmasked frame received by a server (§5.1). 1002.
    UnmaskedClientFrame,
    /// A masked frame received by a client (§5.1). 1002.
    MaskedServerFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2). 1002.
    InvalidPayloadLength,
    /// A continuation frame with no fragmented message in progress (§5.4). 1002.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (§5.4). 1002.
    ExpectedContinuation,
    /// A close payload that is one byte long or carries a code not allowed on the wire. 1002.
    InvalidCloseCode(Option<CloseCode>),
    /// A text message or close reason that is not valid UTF-8 (§8.1). 1007.
    InvalidUtf8,
    /// A frame whose declared length exceeds the frame-size limit. 1009.
    FrameTooLarge {
        /// The length the header declared, saturated at `usize::MAX` (only
        /// a 32-bit target can receive a longer one).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A message larger than the message-size limit (or than the fixed
    /// reassembly buffer). 1009.
    MessageTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// A fragmented message made of more frames than allowed. 1008.
    TooManyFragments {
        /// The configured limit.
        max: u32,
    },
    /// A compressed message (permessage-deflate) that is not valid DEFLATE
    /// data. 1007.
    #[cfg(feature = "deflate")]
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code the connection is failed with.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            #[cfg(feature = "deflate")]
            Self::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::TooManyFragments { .. } => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason suitable for the close frame (always ≤ 123 bytes),
    /// sent in it with the `reasons` feature.
    pub const fn reason(self) -> &'static str {
        REASONS[self.index()]
    }

    /// The reason's bytes, from the packed table (what the connection
    /// writes into its Close frame).
    pub(crate) fn reason_bytes(self) -> &'static [u8] {
        PACKED_REASONS.get(self.index())
    }

    /// The variant's position in [`REASONS`].
    const fn index(self) -> usize {
        match self {
            Self::ReservedBits(_) => 0,
            Self::ReservedOpCode(_) => 1,
            Self::ControlFrameTooLong(_) => 2,
            Self::FragmentedControlFrame => 3,
            Self::UnmaskedClientFrame => 4,
            Self::MaskedServerFrame => 5,
            Self::InvalidPayloadLength => 6,
            Self::UnexpectedContinuation => 7,
            Self::ExpectedContinuation => 8,
            Self::InvalidCloseCode(_) => 9,
            Self::InvalidUtf8 => 10,
            Self::FrameTooLarge { .. } => 11,
            Self::MessageTooLarge { .. } => 12,
            Self::TooManyFragments { .. } => 13,
            #[cfg(feature = "deflate")]
            Self::InvalidCompressedData => 14,
        }
    }
}

/// How many variants [`ProtocolError`] has.
const VARIANTS: usize = if cfg!(feature = "deflate") { 15 } else { 14 };

/// [`ProtocolError::reason`] of each variant, in declaration order.
const REASONS: [&str; VARIANTS] = [
    "reserved bits",
    "reserved opcode",
    "control frame > 125",
    "fragmented control",
    "unmasked frame",
    "masked frame",
    "bad length",
    "unexpected continuation",
    "expected continuation",
    "bad close code",
    "invalid UTF-8",
    "frame too large",
    "message too large",
    "too many fragments",
    #[cfg(feature = "deflate")]
    "bad compressed data",
];

static PACKED_REASONS: Texts<VARIANTS, { total_len(&REASONS) }> = Texts::new(&REASONS);

impl From<ClosePayloadError> for ProtocolError {
    fn from(e: ClosePayloadError) -> Self {
        match e {
            ClosePayloadError::OneByte => Self::InvalidCloseCode(None),
            ClosePayloadError::InvalidCode(c) => Self::InvalidCloseCode(Some(c)),
            ClosePayloadError::InvalidReason => Self::InvalidUtf8,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedBits(bits) => {
                write!(f, "reserved bits {bits:#05b} set that no extension defines")
            }
            Self::ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ControlFrameTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (at most 125)")
            }
            Self::InvalidCloseCode(Some(code)) => {
                write!(f, "close code {} is not allowed on the wire", code.0)
            }
            Self::InvalidCloseCode(None) => f.write_str("close frame payload of one byte"),
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            Self::MessageTooLarge { max } => write!(f, "message exceeds the limit of {max} bytes"),
            Self::TooManyFragments { max } => {
                write!(f, "message split into more than {max} fragments")
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// An output buffer was too small; `required` bytes would have fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsufficientSizeError {
    /// The number of bytes the operation needs.
    pub required: usize,
}

impl fmt::Display for InsufficientSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output buffer too small: {} bytes required",
            self.required
        )
    }
}

impl core::error::Error for InsufficientSizeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_match_their_variants() {
        let all = [
            (ProtocolError::ReservedBits(1), "reserved bits"),
            (ProtocolError::ReservedOpCode(3), "reserved opcode"),
            (
                ProtocolError::ControlFrameTooLong(126),
                "control frame > 125",
            ),
            (ProtocolError::FragmentedControlFrame, "fragmented control"),
            (ProtocolError::UnmaskedClientFrame, "unmasked frame"),
            (ProtocolError::MaskedServerFrame, "masked frame"),
            (ProtocolError::InvalidPayloadLength, "bad length"),
            (
                ProtocolError::UnexpectedContinuation,
                "unexpected continuation",
            ),
            (ProtocolError::ExpectedContinuation, "expected continuation"),
            (ProtocolError::InvalidCloseCode(None), "bad close code"),
            (ProtocolError::InvalidUtf8, "invalid UTF-8"),
            (
                ProtocolError::FrameTooLarge { len: 2, max: 1 },
                "frame too large",
            ),
            (
                ProtocolError::MessageTooLarge { max: 1 },
                "message too large",
            ),
            (
                ProtocolError::TooManyFragments { max: 1 },
                "too many fragments",
            ),
        ];
        for (error, reason) in all {
            assert_eq!(error.reason(), reason);
            assert_eq!(error.reason_bytes(), reason.as_bytes());
        }
    }
}
