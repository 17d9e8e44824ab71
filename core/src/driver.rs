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
//! The driver uses only [`Connection`]'s public API: the unborrowed read
//! ([`Connection::handle_read_unborrowed`], then [`Connection::event`], or
//! for text that arrived whole its own UTF-8 check and
//! [`Connection::fail`]), [`Connection::handle_timeout`], and
//! [`Connection::poll_transmit_with`] to write control frames through its
//! one write buffer.

use core::fmt;
use core::ops::Range;

use embedded_io::{Error as _, ErrorKind, Read, Write};
use rand_core::RngCore;

use crate::buffer::MessageBuffer;
use crate::close::CloseCode;
use crate::connection::{ClientSide, Config, Role, ServerSide, Side};
use crate::connection::{
    Connection, Error, Event, MessageKind, Payload, SendError, UnborrowedEvent,
};
use crate::error::{InsufficientSizeError, ProtocolError};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD};
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Parsed, Request};
use crate::mask::apply_mask;
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

/// The smallest read buffer the driver accepts (a whole frame header).
pub const MIN_READ_BUFFER: usize = FrameHeader::MAX_LEN;
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
    conn: Connection<B, R, S>,
    clock: C,
    rx: &'buf mut [u8],
    rx_start: usize,
    rx_end: usize,
    tx: &'buf mut [u8],
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
        Self::with_pending(io, conn, clock, read, 0, pending, write)
    }

    /// [`WebSocket::new`] with the bytes already received at
    /// `read[start..end]` (after the opening handshake), left in place.
    /// (Built in place: a `Self::new(..)?` here would copy the whole
    /// connection once more.)
    fn with_pending(
        io: T,
        conn: Connection<B, R, S>,
        clock: C,
        read: &'buf mut [u8],
        start: usize,
        end: usize,
        write: &'buf mut [u8],
    ) -> Result<Self, DriverError<T::Error>> {
        if read.len() < MIN_READ_BUFFER {
            return Err(DriverError::BufferTooSmall(InsufficientSizeError {
                required: MIN_READ_BUFFER,
            }));
        }
        if write.len() < MIN_WRITE_BUFFER {
            return Err(DriverError::BufferTooSmall(InsufficientSizeError {
                required: MIN_WRITE_BUFFER,
            }));
        }
        let rx_end = end.min(read.len());
        Ok(Self {
            io,
            conn,
            clock,
            rx: read,
            rx_start: start.min(rx_end),
            rx_end,
            tx: write,
        })
    }

    /// The underlying connection.
    pub const fn connection(&self) -> &Connection<B, R, S> {
        &self.conn
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
        self.finish(raw, base)
    }

    /// Waits for the next text or binary message; pings and pongs are
    /// handled on the way. `Ok(None)` means the peer closed the connection
    /// (its Close was answered); the transport may then be dropped.
    pub fn read_message(&mut self) -> Result<Option<Message<'_>>, DriverError<T::Error>> {
        loop {
            let (raw, base) = self.next_raw()?;
            // Control events go round again before anything is borrowed.
            let (text, payload) = match raw {
                UnborrowedEvent::Ping | UnborrowedEvent::Pong => continue,
                UnborrowedEvent::Close => return Ok(None),
                UnborrowedEvent::Text(payload) => (true, payload),
                UnborrowedEvent::Binary(payload) => (false, payload),
            };
            // As `finish`, for data only.
            let Self {
                conn, rx, io, tx, ..
            } = self;
            let range = match payload {
                // Validated as it arrived, so the conversion cannot fail.
                Payload::Message => {
                    let bytes = conn.payload(&Payload::Message, &[]);
                    return Ok(Some(if text {
                        Message::Text(core::str::from_utf8(bytes).unwrap_or_default())
                    } else {
                        Message::Binary(bytes)
                    }));
                }
                Payload::Input(range) => range,
            };
            let input: &[u8] = rx.get(base..).unwrap_or_default();
            if !text {
                return Ok(Some(Message::Binary(input.get(range).unwrap_or_default())));
            }
            return Ok(Some(Message::Text(input_text(conn, io, tx, input, range)?)));
        }
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
        let header = self.conn.message_header(kind, payload.len())?;
        write_frame(&mut self.io, self.tx, self.conn.side(), header, payload)?;
        self.io.flush().map_err(DriverError::Io)
    }

    /// Sends one fragment of a message; see [`Connection::send_fragment`].
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), DriverError<T::Error>> {
        let header = self.conn.fragment_header(kind, payload.len(), fin)?;
        write_frame(&mut self.io, self.tx, self.conn.side(), header, payload)?;
        self.io.flush().map_err(DriverError::Io)
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), DriverError<T::Error>> {
        let n = self.conn.ping(payload, self.tx)?;
        send_all(&mut self.io, &self.tx[..n])
    }

    /// Closes the connection: sends Close with `code` and `reason`, then
    /// reads (discarding data) until the peer's Close arrives or the close
    /// timeout passes. Returns `Ok(())` when the handshake completed.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), DriverError<T::Error>> {
        let now = self.clock.now();
        self.conn.close(code, reason, now)?;
        flush(&mut self.conn, &mut self.io, self.tx)?;
        loop {
            match self.next_raw() {
                Ok((UnborrowedEvent::Close, _)) => return Ok(()),
                Ok(_) => {}
                Err(DriverError::Connection(Error::Closed)) if self.conn.is_closed() => {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes queued control frames (pongs, heartbeat pings, close) now.
    pub fn flush(&mut self) -> Result<(), DriverError<T::Error>> {
        flush(&mut self.conn, &mut self.io, self.tx)
    }

    /// Reads until the connection yields an event, servicing timers and
    /// flushing replies; returns the event and where in `rx` its input
    /// ranges start.
    #[inline(never)]
    fn next_raw(&mut self) -> Result<(UnborrowedEvent, usize), DriverError<T::Error>> {
        let failure = loop {
            let now = self.clock.now();
            if let Err(e) = self.conn.handle_timeout(now) {
                break e;
            }
            if self.rx_start < self.rx_end || self.conn.is_open() {
                let base = self.rx_start;
                let input = &mut self.rx[base..self.rx_end];
                match self.conn.handle_read_unborrowed(input, now) {
                    Ok((consumed, event)) => {
                        self.rx_start += consumed;
                        if let Some(event) = event {
                            flush(&mut self.conn, &mut self.io, self.tx)?;
                            return Ok((event, base));
                        }
                    }
                    Err(e) => break e,
                }
            }
            flush(&mut self.conn, &mut self.io, self.tx)?;
            if self.conn.is_closed() {
                return Err(DriverError::Connection(Error::Closed));
            }
            self.fill()?;
        };
        Err(self.fail_with(failure))
    }

    /// Reads more bytes into `rx`, keeping unconsumed ones (at most a partial header).
    fn fill(&mut self) -> Result<(), DriverError<T::Error>> {
        // Nothing left (then this only rewinds), or no room left.
        if self.rx_start == self.rx_end || self.rx_end == self.rx.len() {
            self.compact();
        }
        match self.io.read(&mut self.rx[self.rx_end..]) {
            Ok(0) => {
                self.conn.abort();
                Err(DriverError::UnexpectedEof)
            }
            Ok(n) => {
                self.rx_end += n;
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => Ok(()),
            Err(e) => Err(DriverError::Io(e)),
        }
    }

    /// Moves the unconsumed bytes (at most a partial frame header) to the
    /// start of `rx`, a byte at a time rather than with `copy_within`, which
    /// would link a general `memmove` (1.5 KiB of flash on a Cortex-M) for a
    /// copy of at most 13 bytes.
    fn compact(&mut self) {
        let mut to = 0;
        for from in self.rx_start..self.rx_end {
            // `from` is in bounds and `to <= from`; `get` keeps the
            // (impossible) failure a no-op, and the byte loop is not turned
            // into a `memmove` call.
            if let Some(&byte) = self.rx.get(from) {
                if let Some(slot) = self.rx.get_mut(to) {
                    *slot = byte;
                }
            }
            to += 1;
        }
        self.rx_start = 0;
        self.rx_end = to;
    }

    /// Sends the Close a failure queued (best effort) and returns the error.
    fn fail_with(&mut self, e: Error) -> DriverError<T::Error> {
        let _ = flush(&mut self.conn, &mut self.io, self.tx);
        DriverError::Connection(e)
    }

    /// Turns a raw event into a borrowed one, validating text that arrived
    /// whole (its one UTF-8 pass).
    fn finish(
        &mut self,
        raw: UnborrowedEvent,
        base: usize,
    ) -> Result<Event<'_>, DriverError<T::Error>> {
        let Self {
            conn, rx, io, tx, ..
        } = self;
        let input: &[u8] = rx.get(base..).unwrap_or_default();
        match raw {
            UnborrowedEvent::Text(Payload::Input(range)) => {
                Ok(Event::Text(input_text(conn, io, tx, input, range)?))
            }
            // Only text from the input can fail (above): nothing to flush.
            raw => conn.event(raw, input).map_err(DriverError::Connection),
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
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let mut filled = 0;
        let (consumed, refused) = loop {
            let mut headers = [handshake::EMPTY_HEADER; MAX_HEADERS];
            let error = match handshake::parse_request(&read_buf[..filled], &mut headers, &limits) {
                Ok(Parsed::Complete {
                    value: request,
                    consumed,
                }) => {
                    let answer = match decide(&request) {
                        Decision::Accept { subprotocol } => {
                            handshake::write_accept(write_buf, &request, subprotocol, &[])
                                .map(|n| (n, None))
                        }
                        Decision::Reject { status, body } => {
                            handshake::write_reject(write_buf, status, body, &[])
                                .map(|n| (n, Some(status)))
                        }
                    };
                    let (n, rejected) = answer.map_err(DriverError::Request)?;
                    send_all(&mut io, &write_buf[..n])?;
                    break (consumed, rejected);
                }
                Ok(Parsed::Incomplete) => {
                    let room = &mut read_buf[filled..];
                    match read_handshake(&mut io, room, &mut clock, deadline) {
                        Ok(n) => {
                            filled += n;
                            continue;
                        }
                        Err(DriverError::Handshake(e)) => e,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => e,
            };
            // The HTTP answer to a refused request, then the error.
            if let Ok(n) = error.write_response(write_buf) {
                send_all(&mut io, &write_buf[..n])?;
            }
            return Err(DriverError::Handshake(error));
        };
        if let Some(status) = refused {
            return Err(DriverError::Rejected { status });
        }
        let now = clock.now();
        let conn = Connection::new(ServerSide, config, message_buf, rng, now);
        Self::with_pending(io, conn, clock, read_buf, consumed, filled, write_buf)
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
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let key = handshake::generate_key(&mut rng);
        let n = handshake::write_generated_request(write_buf, request, &key)
            .map_err(DriverError::Request)?;
        send_all(&mut io, &write_buf[..n])?;
        let mut filled = 0;
        let (consumed, chosen) = loop {
            let mut headers = [handshake::EMPTY_HEADER; MAX_HEADERS];
            match handshake::parse_response(
                &read_buf[..filled],
                &mut headers,
                &key,
                request.subprotocols,
                &limits,
            ) {
                Ok(Parsed::Complete {
                    value: response,
                    consumed,
                }) => {
                    let chosen = response
                        .subprotocol()
                        .and_then(|p| request.subprotocols.iter().position(|o| *o == p));
                    break (consumed, chosen);
                }
                Ok(Parsed::Incomplete) => {}
                Err(e) => return Err(DriverError::Handshake(e)),
            }
            filled += read_handshake(&mut io, &mut read_buf[filled..], &mut clock, deadline)?;
        };
        let now = clock.now();
        let conn = Connection::new(ClientSide, config, message_buf, rng, now);
        Ok((
            Self::with_pending(io, conn, clock, read_buf, consumed, filled, write_buf)?,
            chosen,
        ))
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
    if deadline.is_some_and(|d| clock.now() >= d) {
        return Err(DriverError::HandshakeTimeout);
    }
    if room.is_empty() {
        return Err(DriverError::Handshake(HandshakeError::TooLarge));
    }
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
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// A text message that arrived whole in `input` at `range`, validated here
/// (its one UTF-8 pass) so that the text borrows only the input, not the
/// connection, which a failure needs: invalid text fails the connection
/// with 1007 ([`Connection::fail`]) and its Close is sent.
fn input_text<'a, T: Write, B: MessageBuffer, R: RngCore, S: Side>(
    conn: &mut Connection<B, R, S>,
    io: &mut T,
    tx: &mut [u8],
    input: &'a [u8],
    range: Range<usize>,
) -> Result<&'a str, DriverError<T::Error>> {
    match core::str::from_utf8(input.get(range).unwrap_or_default()) {
        Ok(text) => Ok(text),
        Err(_) => {
            let e = conn.fail(ProtocolError::InvalidUtf8);
            let _ = flush(conn, io, tx);
            Err(DriverError::Connection(e))
        }
    }
}

/// [`write_all`], then a flush of the transport.
fn send_all<T: Write>(io: &mut T, bytes: &[u8]) -> Result<(), DriverError<T::Error>> {
    write_all(io, bytes)?;
    io.flush().map_err(DriverError::Io)
}

fn write_all<T: Write>(io: &mut T, mut bytes: &[u8]) -> Result<(), DriverError<T::Error>> {
    while !bytes.is_empty() {
        match io.write(bytes) {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    Ok(())
}

/// Writes the queued control frames (pongs, heartbeat pings, close)
/// through `tx`, then flushes the transport if anything was written.
fn flush<T: Write, B: MessageBuffer, R: RngCore, S: Side>(
    conn: &mut Connection<B, R, S>,
    io: &mut T,
    tx: &mut [u8],
) -> Result<(), DriverError<T::Error>> {
    let side = conn.side();
    let written =
        conn.poll_transmit_with(|header, payload| write_frame(io, tx, side, header, payload))?;
    if written > 0 {
        io.flush().map_err(DriverError::Io)?;
    }
    Ok(())
}

/// Writes a frame: the header, then the payload, both through the write
/// buffer `tx` (masked there when the header carries a key), in as many
/// pieces as it takes; a small frame is one write. Every frame the driver
/// sends, data or control, takes this one path. The transport is not
/// flushed.
fn write_frame<T: Write, S: Side>(
    io: &mut T,
    tx: &mut [u8],
    side: S,
    header: FrameHeader,
    payload: &[u8],
) -> Result<(), DriverError<T::Error>> {
    // Only a client masks: with a side fixed when compiling, the other
    // side's code is not linked.
    let header = FrameHeader {
        mask: match side.role() {
            Role::Client => header.mask,
            Role::Server => None,
        },
        ..header
    };
    let mut filled = header.encode(tx).map_err(DriverError::BufferTooSmall)?;
    let mut rest = payload;
    let mut offset = 0;
    loop {
        let room = &mut tx[filled..];
        let take = room.len().min(rest.len());
        let (piece, after) = rest.split_at(take);
        let room = &mut room[..take];
        room.copy_from_slice(piece);
        if let Some(key) = header.mask {
            apply_mask(room, key, offset);
        }
        write_all(io, &tx[..filled + take])?;
        rest = after;
        offset += take;
        filled = 0;
        if rest.is_empty() {
            return Ok(());
        }
    }
}
