//! How a connection ended ([`CloseInfo`], [`CloseCause`]) and why a send
//! failed ([`SendError`]).

use core::fmt;
use std::io;

use snowsocket_core::{CloseCode, ProtocolError, SendError as CoreSendError};

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The peer started the close handshake; we answered.
    PeerClosed,
    /// We closed it ([`ConnectionHandle::close`](crate::ConnectionHandle::close)) and the close handshake
    /// completed (or the peer then hung up).
    ClosedByUs,
    /// The server shut down (Close 1001 sent).
    ServerShutdown,
    /// The peer broke the protocol or a limit; the Close with
    /// [`CloseInfo::code`] was sent.
    ProtocolError(ProtocolError),
    /// The peer did not answer a heartbeat ping in time (Close 1001 sent).
    PongTimeout,
    /// A fragmented message was not completed in time (Close 1008 sent).
    FragmentTimeout,
    /// The peer did not answer our Close in time.
    CloseTimeout,
    /// A write stalled longer than the write timeout: the peer stopped
    /// reading.
    WriteTimeout,
    /// The TCP connection ended without a close handshake.
    UnexpectedEof,
    /// The TLS layer failed (bad record, alert from the peer).
    Tls(String),
    /// A socket error.
    Io(io::ErrorKind),
    /// The handler panicked while handling this connection.
    HandlerPanicked,
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("closed by the peer"),
            Self::ClosedByUs => f.write_str("closed by us"),
            Self::ServerShutdown => f.write_str("server shutdown"),
            Self::ProtocolError(e) => write!(f, "protocol error: {e}"),
            Self::PongTimeout => f.write_str("pong timeout"),
            Self::FragmentTimeout => f.write_str("fragmented message timeout"),
            Self::CloseTimeout => f.write_str("close handshake timeout"),
            Self::WriteTimeout => f.write_str("write timeout (peer not reading)"),
            Self::UnexpectedEof => f.write_str("connection ended without a close handshake"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::Io(kind) => write!(f, "I/O error: {kind}"),
            Self::HandlerPanicked => f.write_str("handler panicked"),
        }
    }
}

/// How a connection ended: given to `on_close`, and by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code: the peer's for [`CloseCause::PeerClosed`], ours when
    /// we sent the Close; `None` when no Close frame was exchanged.
    pub code: Option<CloseCode>,
    /// The reason that went with [`CloseInfo::code`].
    pub reason: String,
    /// Why it ended.
    pub cause: CloseCause,
}

impl CloseInfo {
    pub(crate) fn new(cause: CloseCause, code: Option<CloseCode>, reason: &str) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            cause,
        }
    }

    /// Whether the close handshake completed normally (started by either
    /// side, including a server shutdown).
    pub fn is_clean(&self) -> bool {
        matches!(
            self.cause,
            CloseCause::PeerClosed | CloseCause::ClosedByUs | CloseCause::ServerShutdown
        )
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} (close {} {:?})", self.cause, code.0, self.reason),
            None => write!(f, "{}", self.cause),
        }
    }
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closing or closed (a Close was sent or received,
    /// or it failed).
    Closed,
    /// The connection's outbox holds `buffered` bytes not yet written, and
    /// this frame would take it past `limit`
    /// ([`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes)).
    /// Nothing was queued; [`Handler::on_drain`](crate::Handler::on_drain)
    /// runs once the outbox has been written out.
    Full {
        /// Bytes waiting.
        buffered: usize,
        /// The bound.
        limit: usize,
    },
    /// The server's output budget
    /// ([`ServerConfig::output_budget`](crate::ServerConfig::output_budget),
    /// `budget` bytes) is spent by all connections' unsent output
    /// together, and this connection has output waiting already. As with
    /// [`SendError::Full`], nothing was queued and
    /// [`Handler::on_drain`](crate::Handler::on_drain) runs once this
    /// connection's outbox has been written out (an empty outbox takes a
    /// message whatever the budget).
    OverBudget {
        /// The budget.
        budget: usize,
    },
    /// The core refused the frame (control payload over 125 bytes, a close
    /// code that may not be sent, a fragmented message in progress).
    Refused(CoreSendError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("connection is closing or closed"),
            Self::Full { buffered, limit } => write!(
                f,
                "outbox full: {buffered} bytes waiting, limit {limit} (the peer reads slowly)"
            ),
            Self::OverBudget { budget } => write!(
                f,
                "output budget spent: the connections' unsent output has used its {budget} bytes"
            ),
            Self::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl SendError {
    /// Whether the send may succeed later: [`SendError::Full`] or
    /// [`SendError::OverBudget`]. Nothing was queued, and
    /// [`Handler::on_drain`](crate::Handler::on_drain) runs once the
    /// connection's outbox has been written out: send it again then.
    pub const fn waits_for_drain(&self) -> bool {
        matches!(self, Self::Full { .. } | Self::OverBudget { .. })
    }
}

impl core::error::Error for SendError {}

impl From<CoreSendError> for SendError {
    fn from(e: CoreSendError) -> Self {
        match e {
            CoreSendError::Closed => Self::Closed,
            other => Self::Refused(other),
        }
    }
}
