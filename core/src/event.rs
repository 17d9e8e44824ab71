//! What a connection hands out: [`Event`]s (and their unborrowed form,
//! [`UnborrowedEvent`], whose payload is named by position) and the kinds
//! of data message.

use core::ops::Range;

use crate::close::CloseCode;
use crate::frame::OpCode;

/// A Close frame's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: &'a str,
}

/// Something the peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A complete text message (valid UTF-8).
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A Ping; its Pong is already queued for [`Connection::poll_transmit`](crate::Connection::poll_transmit).
    Ping(&'a [u8]),
    /// A Pong (solicited or not).
    Pong(&'a [u8]),
    /// The peer's Close, with its code and reason if it sent one. If we had
    /// not sent a Close yet, the reply (echoing the code, or 1000) is queued.
    Close(Option<CloseFrame<'a>>),
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Bytes.
    Binary,
}

impl MessageKind {
    pub(crate) const fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

/// An [`Event`] that borrows nothing: what [`Connection::handle_read_unborrowed`](crate::Connection::handle_read_unborrowed)
/// returns. Its payload is named by position ([`Payload`]), so the caller
/// can finish the read loop, drop a lock or move its buffer before it turns
/// the event into an [`Event`] with [`Connection::event`](crate::Connection::event) (rustls's
/// `UnborrowedPayload` is the model).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnborrowedEvent {
    /// A complete text message. A payload in the message buffer was
    /// validated as it arrived; one in the input is validated once, by
    /// [`Connection::event`](crate::Connection::event).
    Text(Payload),
    /// A complete binary message.
    Binary(Payload),
    /// A Ping (its Pong is queued); its payload is this range of the input
    /// (a control frame is taken only whole).
    Ping(Range<usize>),
    /// A Pong; its payload is this range of the input.
    Pong(Range<usize>),
    /// The peer's Close; its payload (code and reason) is this range of the
    /// input.
    Close(Range<usize>),
}

/// Where a data message's payload lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A range of the input given to [`Connection::handle_read_unborrowed`](crate::Connection::handle_read_unborrowed)
    /// (an unfragmented frame that arrived whole: no copy was made).
    Input(Range<usize>),
    /// The connection's message buffer (a fragmented message, or one that
    /// arrived in pieces), until the next read.
    Message,
}
