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
//! Beware of adapters: `embedded_io_adapters::std::FromStd` reports a std
//! socket's read timeout (`WouldBlock` on Unix) as `ErrorKind::Other`, which
//! the driver must take for a real failure. Wrap such a transport so that
//! timeouts come out as `ErrorKind::TimedOut` (the WASI echo server in
//! `examples/wasi-echo` carries such an adapter).
//!
//! The driver shares everything but its I/O calls with the async driver
//! (`crate::session`: the read loop, the timers, the close, the frame
//! writer, the handshake steps), and like it uses only [`Connection`]'s
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
use crate::error::InsufficientSizeError;
use crate::frame::{FrameHeader, MAX_CONTROL_FRAME, MAX_CONTROL_PAYLOAD};
use crate::handshake::{self, ClientRequest, HandshakeLimits, Request};
use crate::session::{self, FrameWrite, Input, Output, ServerHandshake, Session, Step};
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

impl<'buf, T, B, R, C, S> WebSocket<'buf, T, B, R, C, S>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
    S: Side,
{
    /// Drives `conn` (whose opening handshake is done) over `io`.
    /// `read[..pending]` holds bytes already received after the handshake.
    pub fn new(
        io: T,
        conn: Connection<B, R, S>,
        clock: C,
        read: &'buf mut [u8],
        pending: usize,
        write: &'buf mut [u8],
    ) -> Result<Self, DriverError<T::Error>> {
        Ok(Self {
            io,
            session: Session::new(conn),
            clock,
            input: Input::new(read, 0, pending)?,
            output: Output::new(write)?,
        })
    }

    /// The underlying connection.
    pub const fn connection(&self) -> &Connection<B, R, S> {
        &self.session.conn
    }

    /// The transport.
    pub const fn transport(&self) -> &T {
        &self.io
    }

    /// The transport, mutably (e.g. to change its timeouts).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.io
    }

    /// Waits for the next event from the peer, answering pings and sending
    /// heartbeat pings meanwhile. A Close from the peer is answered before
    /// it is returned; after it, [`WebSocket::read`] returns
    /// `DriverError::Connection(Error::Closed)`.
    pub fn read(&mut self) -> Result<Event<'_>, DriverError<T::Error>> {
        let (raw, base) = self.next_raw()?;
        let Self {
            session,
            input,
            io,
            output,
            ..
        } = self;
        if let UnborrowedEvent::Text(Payload::Input(range)) = &raw {
            return match session.input_text(input, base, range.clone()) {
                Ok(text) => Ok(Event::Text(text)),
                Err(_) => Err(fail_now(session, output, io)),
            };
        }
        // Only text from the input can fail (above).
        session
            .conn
            .event(raw, input.from(base))
            .map_err(DriverError::Connection)
    }

    /// Waits for the next text or binary message; pings and pongs are
    /// handled on the way. `Ok(None)` means the peer closed the connection
    /// (its Close was answered); the transport may then be dropped.
    pub fn read_message(&mut self) -> Result<Option<Message<'_>>, DriverError<T::Error>> {
        let Some((text, payload, base)) = self.next_message()? else {
            return Ok(None);
        };
        let Self {
            session,
            input,
            io,
            output,
            ..
        } = self;
        if let (true, Payload::Input(range)) = (text, &payload) {
            return match session.input_text(input, base, range.clone()) {
                Ok(text) => Ok(Some(Message::Text(text))),
                Err(_) => Err(fail_now(session, output, io)),
            };
        }
        Ok(Some(session::message(
            &session.conn,
            input,
            base,
            text,
            payload,
        )))
    }

    /// Reads the next message and sends `reply`'s answer to it, which may
    /// be the message itself or borrow from it: an echo needs the read and
    /// write buffers and nothing else (`while ws.respond(echo)? {}`, see
    /// [`echo`]).
    /// Pings and pongs are handled on the way.
    ///
    /// Returns `Ok(true)` when a message was read (and `reply`'s answer,
    /// if any, sent), `Ok(false)` when the peer closed the connection (its
    /// Close was answered). While more received bytes are already in the
    /// read buffer, the answer waits in the write buffer to go out with the
    /// next ones (one write for many small replies): it is written before
    /// the next read that has to wait, and by any send, [`flush`](Self::flush)
    /// or close; flush before dropping the driver mid-conversation.
    /// A message that arrives after our own Close is
    /// still handed to `reply`, but its answer cannot be sent (no data may
    /// follow a Close): that answer is refused with [`DriverError::Send`].
    pub fn respond<F>(&mut self, reply: F) -> Result<bool, DriverError<T::Error>>
    where
        F: for<'m> FnOnce(Message<'m>) -> Option<Message<'m>>,
    {
        let Some((text, payload, base)) = self.next_message()? else {
            return Ok(false);
        };
        // The masking key is taken before the message borrows the
        // connection; the length and opcode are filled in below.
        let header = self.session.reply_header();
        let side = self.session.conn.side();
        let Self {
            session,
            input,
            io,
            output,
            ..
        } = self;
        let Some(message) = session::checked_message(&session.conn, input, base, text, payload)
        else {
            session.invalid_text();
            return Err(self.fail_through_read_loop());
        };
        let Some(answer) = reply(message) else {
            return Ok(true);
        };
        let (kind, bytes) = session::message_parts(answer);
        let header = session::reply_header(header?, kind, bytes.len());
        let mut frame = FrameWrite::new(side, header, bytes);
        // A reply that fits goes after what waits in the output, whole:
        // a write that stops half way leaves its rest there. One that
        // does not fit goes through the emptied output in pieces, and a
        // stop half way tears the connection.
        let whole = header.encoded_len() + bytes.len() <= output.room();
        if !whole {
            transmit(io, output)?;
        }
        session.torn = !whole;
        while frame
            .next_piece(output)
            .map_err(DriverError::BufferTooSmall)?
        {
            if whole && input.waiting() {
                // More messages are already here: the reply goes out with
                // theirs, before the next read that has to wait.
                break;
            }
            transmit(io, output)?;
        }
        session.torn = false;
        Ok(true)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), DriverError<T::Error>> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), DriverError<T::Error>> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a whole message as one frame. Payloads larger than the write
    /// buffer are streamed through it.
    pub fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), DriverError<T::Error>> {
        let header = self.session.conn.message_header(kind, payload.len())?;
        self.send_frame(header, payload)
    }

    /// Sends one fragment of a message; see [`Connection::send_fragment`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), DriverError<T::Error>> {
        let header = self
            .session
            .conn
            .fragment_header(kind, payload.len(), fin)?;
        self.send_frame(header, payload)
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), DriverError<T::Error>> {
        transmit(&mut self.io, &mut self.output)?;
        let n = self.session.conn.ping(payload, self.output.buffer())?;
        self.output.queue(n);
        transmit(&mut self.io, &mut self.output)
    }

    /// Closes the connection: sends Close with `code` and `reason`, then
    /// reads (discarding data) until the peer's Close arrives or the close
    /// timeout passes. Returns `Ok(())` when the handshake completed.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), DriverError<T::Error>> {
        let now = self.clock.now();
        self.session.conn.close(code, reason, now)?;
        loop {
            match self.next_raw() {
                Ok((UnborrowedEvent::Close(_), _)) => return Ok(()),
                Ok(_) => {}
                Err(DriverError::Connection(Error::Closed)) if self.session.conn.is_closed() => {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes queued control frames (pongs, heartbeat pings, close) now.
    pub fn flush(&mut self) -> Result<(), DriverError<T::Error>> {
        loop {
            transmit(&mut self.io, &mut self.output)?;
            let n = self
                .session
                .conn
                .poll_transmit(self.output.buffer())
                .map_err(DriverError::BufferTooSmall)?;
            if n == 0 {
                return Ok(());
            }
            self.output.queue(n);
        }
    }

    /// Writes a data frame whose header the connection gave.
    fn send_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), DriverError<T::Error>> {
        transmit(&mut self.io, &mut self.output)?;
        let frame = self.session.frame(header, payload);
        write_frame(&mut self.io, &mut self.output, frame)?;
        self.session.torn = false;
        Ok(())
    }

    /// Reads until the next data message: whether it is text, where its
    /// payload is and the base its ranges index; `None` when the peer
    /// closed the connection.
    fn next_message(&mut self) -> Result<Option<session::Data>, DriverError<T::Error>> {
        loop {
            let (event, base) = self.next_raw()?;
            match session::data(event, base) {
                Some(None) => {}
                Some(Some(data)) => return Ok(Some(data)),
                None => return Ok(None),
            }
        }
    }

    /// The connection failed (its Close is queued): the read loop, which
    /// with a failure waiting does nothing but write, writes the Close and
    /// returns the failure. (`fail_now` does the same for the callers that
    /// still lend out the input.)
    fn fail_through_read_loop(&mut self) -> DriverError<T::Error> {
        match self.next_raw() {
            Err(e) => e,
            Ok(_) => DriverError::Connection(Error::Closed),
        }
    }

    /// Does what the session asks until it yields an event: writes
    /// replies, services timers, reads.
    #[inline(never)]
    fn next_raw(&mut self) -> Result<(UnborrowedEvent, usize), DriverError<T::Error>> {
        loop {
            let now = self.clock.now();
            match self.session.step(&mut self.input, &mut self.output, now) {
                Step::Transmit => {
                    if let Err(e) = transmit(&mut self.io, &mut self.output) {
                        return Err(self.session.write_failed(e));
                    }
                }
                Step::Read => self.fill()?,
                Step::Event(event, base) => return Ok((event, base)),
                Step::Failed(e) => return Err(DriverError::Connection(e)),
            }
        }
    }

    /// Reads more bytes into the input; a timeout is a clock tick.
    fn fill(&mut self) -> Result<(), DriverError<T::Error>> {
        match self.io.read(self.input.room()) {
            Ok(0) => Err(self.session.eof()),
            Ok(n) => {
                self.input.filled(n);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => Ok(()),
            Err(e) => Err(DriverError::Io(e)),
        }
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ServerSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// Server side: reads the upgrade request from `io`, accepts it with no
    /// subprotocol, and returns the open WebSocket. An invalid request is
    /// answered with the matching HTTP error (400, 426, 431, …) and returned
    /// as [`DriverError::Handshake`].
    pub fn accept(io: T, parts: Parts<'buf, B, R, C>) -> Result<Self, DriverError<T::Error>> {
        Self::accept_with(io, parts, |_| Decision::Accept { subprotocol: None })
    }

    /// Server side, letting `decide` look at the request (path, query,
    /// headers, Origin, offered subprotocols) and accept or reject it.
    pub fn accept_with<'d>(
        mut io: T,
        parts: Parts<'buf, B, R, C>,
        decide: impl FnOnce(&Request<'_, '_>) -> Decision<'d>,
    ) -> Result<Self, DriverError<T::Error>> {
        let Parts {
            read_buf,
            write_buf,
            message_buf,
            rng,
            mut clock,
            config,
            limits,
            handshake_timeout,
        } = parts;
        config.validate().map_err(DriverError::InvalidConfig)?;
        let mut output = Output::new(write_buf)?;
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let mut decide = Some(decide);
        let mut filled = 0;
        let outcome = loop {
            let read = read_buf.get(..filled).unwrap_or_default();
            match session::server_handshake(read, &mut output, &limits, &mut decide)
                .map_err(DriverError::Request)?
            {
                ServerHandshake::Answered(outcome) => break outcome,
                ServerHandshake::Incomplete => {}
            }
            let room = read_buf.get_mut(filled..).unwrap_or_default();
            match read_handshake(&mut io, room, &mut clock, deadline) {
                Ok(n) => filled += n,
                Err(DriverError::Handshake(e)) => break session::refuse(&mut output, e),
                Err(e) => return Err(e),
            }
        };
        transmit(&mut io, &mut output)?;
        let consumed = outcome.open()?;
        let conn = Connection::new(ServerSide, config, message_buf, rng, clock.now());
        Ok(Self {
            io,
            session: Session::new(conn),
            clock,
            input: Input::new(read_buf, consumed, filled)?,
            output,
        })
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ClientSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// Client side: sends the upgrade `request`, checks the server's answer
    /// (status 101, the accept key, the subprotocol) and returns the open
    /// WebSocket and the subprotocol the server chose (an index into
    /// `request.subprotocols`).
    pub fn connect(
        mut io: T,
        parts: Parts<'buf, B, R, C>,
        request: &ClientRequest<'_>,
    ) -> Result<(Self, Option<usize>), DriverError<T::Error>> {
        let Parts {
            read_buf,
            write_buf,
            message_buf,
            mut rng,
            mut clock,
            config,
            limits,
            handshake_timeout,
        } = parts;
        config.validate().map_err(DriverError::InvalidConfig)?;
        let mut output = Output::new(write_buf)?;
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let accept = session::client_request(&mut output, request, &mut rng)
            .map_err(DriverError::Request)?;
        transmit(&mut io, &mut output)?;
        let mut filled = 0;
        let (consumed, chosen) = loop {
            let read = read_buf.get(..filled).unwrap_or_default();
            if let Some(done) = session::client_handshake(read, &accept, request, &limits)
                .map_err(DriverError::Handshake)?
            {
                break done;
            }
            let room = read_buf.get_mut(filled..).unwrap_or_default();
            filled += read_handshake(&mut io, room, &mut clock, deadline)?;
        };
        let conn = Connection::new(ClientSide, config, message_buf, rng, clock.now());
        let ws = Self {
            io,
            session: Session::new(conn),
            clock,
            input: Input::new(read_buf, consumed, filled)?,
            output,
        };
        Ok((ws, chosen))
    }
}

/// One read during the opening handshake: the bytes read (0 on a tick),
/// or an error when the buffer is full, the peer left, or time is up.
fn read_handshake<T: Read, C: Clock>(
    io: &mut T,
    room: &mut [u8],
    clock: &mut C,
    deadline: Option<Instant>,
) -> Result<usize, DriverError<T::Error>> {
    session::handshake_room(room.len(), clock.now(), deadline)?;
    match io.read(room) {
        Ok(0) => Err(DriverError::UnexpectedEof),
        Ok(n) => Ok(n),
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => Ok(0),
        Err(e) => Err(DriverError::Io(e)),
    }
}

impl<T, B, R, C, S: Side> fmt::Debug for WebSocket<'_, T, B, R, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.session.conn)
            .finish_non_exhaustive()
    }
}

/// The connection failed (its Close is queued): writes the Close and
/// returns the failure.
fn fail_now<T: Write, B: MessageBuffer, R: RngCore, S: Side>(
    session: &mut Session<B, R, S>,
    output: &mut Output<'_>,
    io: &mut T,
) -> DriverError<T::Error> {
    loop {
        match session.pending(output, false) {
            Some(Step::Transmit) => {
                if let Err(e) = transmit(io, output) {
                    return session.write_failed(e);
                }
            }
            Some(Step::Failed(e)) => return DriverError::Connection(e),
            _ => return DriverError::Connection(Error::Closed),
        }
    }
}

/// Writes the bytes waiting in `output`, then flushes the transport if
/// there were any.
fn transmit<T: Write>(io: &mut T, output: &mut Output<'_>) -> Result<(), DriverError<T::Error>> {
    if output.is_empty() {
        return Ok(());
    }
    while !output.is_empty() {
        match io.write(output.unsent()) {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => output.sent(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    io.flush().map_err(DriverError::Io)
}

/// Writes `frame` piece by piece through `output` (which is empty).
fn write_frame<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
    mut frame: FrameWrite<'_>,
) -> Result<(), DriverError<T::Error>> {
    while frame
        .next_piece(output)
        .map_err(DriverError::BufferTooSmall)?
    {
        transmit(io, output)?;
    }
    Ok(())
}
