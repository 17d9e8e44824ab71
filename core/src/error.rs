//! Error types. Each peer violation knows the close code it fails the
//! connection with (RFC 6455 §7.1.7, §7.4.1).

use core::fmt;

use crate::close::{CloseCode, ClosePayloadError};

/// A violation of RFC 6455 (or of a configured limit) by the peer.
///
/// The list is meant as a checklist of everything the decoder refuses; each
/// variant maps to the close code sent when failing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set with no extension negotiated (§5.2). 1002.
    ReservedBits(u8),
    /// Opcode 3–7 or 0xB–0xF (§5.2). 1002.
    ReservedOpCode(u8),
    /// A control frame with more than 125 bytes of payload (§5.5). 1002.
    ControlFrameTooLong(u64),
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
        /// The length the header declared.
        len: u64,
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
}

impl ProtocolError {
    /// The close code the connection is failed with.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::TooManyFragments { .. } => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason suitable for the close frame (always ≤ 123 bytes).
    pub const fn reason(self) -> &'static str {
        match self {
            Self::ReservedBits(_) => "reserved bits",
            Self::ReservedOpCode(_) => "reserved opcode",
            Self::ControlFrameTooLong(_) => "control frame > 125",
            Self::FragmentedControlFrame => "fragmented control",
            Self::UnmaskedClientFrame => "unmasked frame",
            Self::MaskedServerFrame => "masked frame",
            Self::InvalidPayloadLength => "bad length",
            Self::UnexpectedContinuation => "unexpected continuation",
            Self::ExpectedContinuation => "expected continuation",
            Self::InvalidCloseCode(_) => "bad close code",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::FrameTooLarge { .. } => "frame too large",
            Self::MessageTooLarge { .. } => "message too large",
            Self::TooManyFragments { .. } => "too many fragments",
        }
    }
}

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
                write!(f, "reserved bits {bits:#05b} set without an extension")
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
