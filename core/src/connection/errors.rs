//! Why a connection failed ([`Error`]) and why a send was refused
//! ([`SendError`]).

use core::fmt;

use crate::close::CloseCode;
use crate::error::{InsufficientSizeError, ProtocolError};

/// Why a connection failed or can no longer be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol or a limit; a Close with
    /// [`ProtocolError::close_code`] is queued.
    Protocol(ProtocolError),
    /// No Pong answered our heartbeat Ping in time; Close 1001 ("pong
    /// timeout" with the `reasons` feature) is queued.
    PongTimeout,
    /// A fragmented message was not completed in time; Close 1008 is queued.
    FragmentTimeout,
    /// The peer did not answer our Close in time; the connection is closed.
    CloseTimeout,
    /// The connection has already failed or closed.
    Closed,
}

impl Error {
    /// The close code this failure sent (or queued), if it sent one.
    pub const fn close_code(self) -> Option<CloseCode> {
        match self {
            Self::Protocol(e) => Some(e.close_code()),
            Self::PongTimeout => Some(CloseCode::GOING_AWAY),
            Self::FragmentTimeout => Some(CloseCode::POLICY_VIOLATION),
            Self::CloseTimeout | Self::Closed => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "protocol error (close {}): {e}", e.close_code()),
            Self::PongTimeout => f.write_str("pong timeout"),
            Self::FragmentTimeout => f.write_str("fragmented message not completed in time"),
            Self::CloseTimeout => f.write_str("close handshake timed out"),
            Self::Closed => f.write_str("connection closed"),
        }
    }
}

impl core::error::Error for Error {}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A Close was sent (or the connection failed): no more frames may be sent.
    Closed,
    /// The output buffer is too small for the frame.
    InsufficientSize(InsufficientSizeError),
    /// A control payload (ping, pong) over 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent on the wire.
    InvalidCloseCode(CloseCode),
    /// A whole message was sent while a fragmented one is in progress.
    FragmentInProgress,
}

impl From<InsufficientSizeError> for SendError {
    fn from(e: InsufficientSizeError) -> Self {
        Self::InsufficientSize(e)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("connection is closing or closed"),
            Self::InsufficientSize(e) => fmt::Display::fmt(e, f),
            Self::ControlPayloadTooLong => f.write_str("control frame payload over 125 bytes"),
            Self::InvalidCloseCode(c) => write!(f, "close code {} may not be sent", c.0),
            Self::FragmentInProgress => f.write_str("a fragmented message is in progress"),
        }
    }
}

impl core::error::Error for SendError {}
