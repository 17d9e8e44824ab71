//! A blocking driver: a [`Connection`] over any `embedded_io::{Read, Write}`
//! byte stream (a TCP socket, an `embedded-tls` session, a UART, a WASI
//! socket), with caller-provided buffers and no allocation.
//!
//! Heartbeat deadlines are serviced while waiting for data as long as reads
//! return now and then: give the transport a read timeout shorter than the
//! ping interval and let it report [`embedded_io::ErrorKind::TimedOut`] (or
//! `Interrupted`); each such read is a clock tick, not an error. A transport
//! without timeouts still works, but a silent peer is then only noticed when
//! it sends something or the transport fails.
//!
//! A deadline that waits for the peer (the Pong to a heartbeat Ping, a
//! fragmented message's end) is judged only once the driver has read what
//! arrived before it: after a read that came back short (the transport
//! held no more) or timed out. (Once our Close is out, the close timeout
//! is the clock's alone: a peer that keeps sending cannot hold it open.) The application reads
//! when it likes, and a Pong that came while it was busy (or behind a
//! backlog it is working through) answered in time. A transport that hands
//! out less than it holds (one TLS record per read, say) is taken at its
//! word, so there the judgement may come a read early. (The async driver
//! has no such caveat: it judges only once a read loses its race to the
//! deadline.)
//!
//! Beware of adapters: `embedded_io_adapters::std::FromStd` reports a std
//! socket's read timeout (`WouldBlock` on Unix) as `ErrorKind::Other`, which
//! the driver must take for a real failure. Wrap such a transport so that
//! timeouts come out as `ErrorKind::TimedOut` (the WASI echo server in
//! `examples/wasi-echo` carries such an adapter).
//!
//! A failure (a Close such as 1009 for a message over the limit, 1002,
//! 1007) is returned once its Close is written and the driver has read
//! past what the peer still sent, until the peer's Close, its EOF, or
//! [`Config::close_timeout`] (RFC 6455 §7.1.1): dropping a TCP transport
//! with unread input makes the kernel reset the connection, and the peer
//! may then never read the Close. Not after a pong timeout (the peer is
//! presumed gone). Without read timeouts, a peer that neither sends nor
//! closes keeps that wait open.
//!
//! The driver shares everything but its `.await`s with the async driver:
//! both are made from one text (`crate::driver_body`) around the same
//! steps (`crate::session`: the read loop, the timers, the close, the frame
//! writer, the handshake steps), and like it it uses only [`Connection`]'s
//! public API: the unborrowed read ([`Connection::handle_read_unborrowed`],
//! then [`Connection::event`], or for text that arrived whole its own UTF-8
//! check and [`Connection::fail`]), [`Connection::handle_timeout`], and
//! [`Connection::poll_transmit`] into its one write buffer.

use core::fmt;

use embedded_io::{Error as _, ErrorKind, Read, Write};
use rand_core::RngCore;

use crate::buffer::MessageBuffer;
use crate::close::CloseCode;
use crate::connection::{ClientSide, Config, Role, ServerSide, Side};
use crate::connection::{
    Connection, Error, Event, MessageKind, Payload, SendError, UnborrowedEvent,
};
use crate::driver_body::{assemble, by_mode, driver_body, io, is_tick, linger};
use crate::error::InsufficientSizeError;
use crate::frame::{FrameHeader, MAX_CONTROL_FRAME, MAX_CONTROL_PAYLOAD};
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Request};
use crate::session::{self, lingers, FrameWrite, Input, Output, ServerHandshake, Session, Step};
use crate::time::Instant;

/// A source of the current time for the driver.
pub trait Clock {
    /// The current instant on a monotonic clock.
    fn now(&mut self) -> Instant;
}

impl<F: FnMut() -> Instant> Clock for F {
    fn now(&mut self) -> Instant {
        self()
    }
}

/// The smallest read buffer the driver accepts: a whole control frame
/// (which the connection takes only whole), and so any frame header.
pub const MIN_READ_BUFFER: usize = MAX_CONTROL_FRAME;
/// The smallest write buffer the driver accepts (any control frame).
pub const MIN_WRITE_BUFFER: usize = FrameHeader::MAX_LEN + MAX_CONTROL_PAYLOAD;

/// A complete data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// The reply of an echo, for [`WebSocket::respond`] (and the async
/// driver's): the message itself, sent back as it came.
/// `while ws.respond(echo)? {}` echoes until the peer closes.
pub const fn echo(message: Message<'_>) -> Option<Message<'_>> {
    Some(message)
}

/// What went wrong in the driver.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverError<E> {
    /// The transport failed.
    Io(E),
    /// The transport ended (EOF) before the close handshake completed.
    UnexpectedEof,
    /// The connection failed (its Close, if any, was sent) or is closed.
    Connection(Error),
    /// A send was refused.
    Send(SendError),
    /// The opening handshake failed (a rejection was sent when we are the server).
    Handshake(crate::handshake::HandshakeError),
    /// The opening handshake did not complete before its deadline.
    HandshakeTimeout,
    /// The server's `decide` hook rejected the request; the rejection was sent.
    Rejected {
        /// The HTTP status sent.
        status: u16,
    },
    /// The server's answer to our request could not be written (an invalid
    /// host, path or header in the [`ClientRequest`], or buffers too small).
    Request(handshake::WriteError),
    /// A buffer given to the driver is too small.
    BufferTooSmall(InsufficientSizeError),
    /// [`Parts::config`] holds a value that cannot work (checked before
    /// the handshake, see [`Config::validate`]).
    InvalidConfig(crate::InvalidConfig),
}

impl<E> From<Error> for DriverError<E> {
    fn from(e: Error) -> Self {
        Self::Connection(e)
    }
}

impl<E> From<SendError> for DriverError<E> {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl<E: fmt::Debug> fmt::Display for DriverError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "transport error: {e:?}"),
            Self::UnexpectedEof => f.write_str("transport closed before the close handshake"),
            Self::Connection(e) => fmt::Display::fmt(e, f),
            Self::Send(e) => fmt::Display::fmt(e, f),
            Self::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            Self::HandshakeTimeout => f.write_str("opening handshake timed out"),
            Self::Rejected { status } => write!(f, "upgrade request rejected with HTTP {status}"),
            Self::Request(e) => write!(f, "cannot write the handshake: {e}"),
            Self::BufferTooSmall(e) => fmt::Display::fmt(e, f),
            Self::InvalidConfig(e) => write!(f, "invalid configuration: {e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for DriverError<E> {}

/// Everything a [`WebSocket`] needs besides its transport.
#[derive(Debug)]
pub struct Parts<'buf, B, R, C> {
    /// Incoming bytes (at least [`MIN_READ_BUFFER`]; during the opening
    /// handshake it must hold the whole request or response, up to
    /// [`HandshakeLimits::max_request_size`]).
    pub read_buf: &'buf mut [u8],
    /// Outgoing frames (at least [`MIN_WRITE_BUFFER`]; during the opening
    /// handshake it must hold the whole response or request).
    pub write_buf: &'buf mut [u8],
    /// Storage for messages that arrive in pieces.
    pub message_buf: B,
    /// Masking keys, handshake key and heartbeat payloads.
    pub rng: R,
    /// The clock.
    pub clock: C,
    /// Limits and timers.
    pub config: Config,
    /// Limits of the opening handshake.
    pub limits: HandshakeLimits,
    /// How long the opening handshake may take (checked on each read that
    /// returns or times out). `None`: no limit.
    pub handshake_timeout: Option<core::time::Duration>,
}

/// How long the opening handshake may take unless configured otherwise
/// ([`Parts::new`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(10);

impl<'buf, B, R, C> Parts<'buf, B, R, C> {
    /// The buffers, RNG and clock, with the default [`Config`] and
    /// [`HandshakeLimits`] and a handshake timeout of
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]; change them with the methods below.
    pub fn new(
        read_buf: &'buf mut [u8],
        write_buf: &'buf mut [u8],
        message_buf: B,
        rng: R,
        clock: C,
    ) -> Self {
        Self {
            read_buf,
            write_buf,
            message_buf,
            rng,
            clock,
            config: Config::default(),
            limits: HandshakeLimits::DEFAULT,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// With `config`.
    #[must_use]
    pub fn config(self, config: Config) -> Self {
        Self { config, ..self }
    }

    /// With the handshake `limits`.
    #[must_use]
    pub fn limits(self, limits: HandshakeLimits) -> Self {
        Self { limits, ..self }
    }

    /// With a handshake timeout (`None`: none).
    #[must_use]
    pub fn handshake_timeout(self, timeout: Option<core::time::Duration>) -> Self {
        Self {
            handshake_timeout: timeout,
            ..self
        }
    }
}

impl<'buf, B, C> Parts<'buf, B, crate::CounterRng, C> {
    /// [`Parts::new`] for a server, which needs no real RNG: heartbeat
    /// payloads come from a [`CounterRng`](crate::CounterRng) seeded with
    /// `seed` (a connection number, say).
    pub fn server(
        read_buf: &'buf mut [u8],
        write_buf: &'buf mut [u8],
        message_buf: B,
        clock: C,
        seed: u64,
    ) -> Self {
        Self::new(
            read_buf,
            write_buf,
            message_buf,
            crate::CounterRng::new(seed),
            clock,
        )
    }
}

/// The server's decision on an upgrade request (see [`WebSocket::accept_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'d> {
    /// Accept, choosing one of the offered subprotocols (or none).
    Accept {
        /// The subprotocol; it must be one the client offered.
        subprotocol: Option<&'d str>,
    },
    /// Refuse with an HTTP status (300–599) and a short plain-text body.
    Reject {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: &'d str,
    },
}

/// The largest number of headers the driver parses (its header array lives
/// on the stack).
pub const MAX_HEADERS: usize = 64;

/// A WebSocket over a blocking byte stream `T`.
///
/// `read` buffers incoming bytes (at least [`MIN_READ_BUFFER`]; a message
/// that arrives whole in it is returned without a copy), `write` buffers
/// outgoing frames (at least [`MIN_WRITE_BUFFER`]; larger messages are
/// streamed through it in pieces), and the connection's message buffer
/// holds messages that arrive in pieces.
pub struct WebSocket<'buf, T, B, R, C, S = Role> {
    io: T,
    session: Session<B, R, S>,
    clock: C,
    input: Input<'buf>,
    output: Output<'buf>,
}

driver_body!([]);

/// Whether a read that brought `n` of the `asked` bytes showed that the
/// transport held no more: for the blocking driver, which has no deadline
/// to race, a short read does (all there was; see the module docs for a
/// transport that hands out less than it holds).
#[inline(always)]
const fn short_read_is_through(n: usize, asked: usize) -> bool {
    n < asked
}

/// A read into `room` (the blocking driver has no deadline to race: its
/// transport's read timeouts are its clock ticks; `Some` always).
#[inline(always)]
fn read_some<T: Read, C>(
    io: &mut T,
    room: &mut [u8],
    _clock: &mut C,
    _deadline: impl FnOnce() -> Option<Instant>,
) -> Option<Result<usize, T::Error>> {
    Some(io.read(room))
}
