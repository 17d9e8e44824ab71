//! [`WebSocket`]: the async driver in one value.

use core::fmt;

use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use rand_core::RngCore;

use super::{until, Clock};
use crate::buffer::MessageBuffer;
use crate::close::CloseCode;
use crate::connection::{Connection, Error, Event, MessageKind, Payload, Role};
use crate::connection::{Side, UnborrowedEvent};
use crate::driver::{DriverError, Message};
use crate::frame::FrameHeader;
#[cfg(feature = "deflate")]
use crate::session::DeflateSend;
use crate::session::{self, FrameWrite, Input, Output, Session, Step};

/// A WebSocket over an async byte stream `T`: the async twin of
/// [`crate::WebSocket`], with the same buffers, methods and errors (see
/// the [module](super) docs for time and cancellation).
pub struct WebSocket<'buf, T, B, R, C, S = Role> {
    pub(super) io: T,
    pub(super) session: Session<B, R, S>,
    pub(super) clock: C,
    pub(super) input: Input<'buf>,
    pub(super) output: Output<'buf>,
    /// permessage-deflate's sending half, once agreed.
    #[cfg(feature = "deflate")]
    pub(super) deflate: Option<DeflateSend>,
}

impl<'buf, T, B, R, C, S> WebSocket<'buf, T, B, R, C, S>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
    S: Side,
{
    /// Drives `conn` (whose opening handshake is done, by hyper say) over
    /// `io`. `read[..pending]` holds bytes already received after the
    /// handshake.
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
            #[cfg(feature = "deflate")]
            deflate: None,
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

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.io
    }

    /// Waits for the next event from the peer, answering pings and sending
    /// heartbeat pings meanwhile; see [`crate::WebSocket::read`].
    /// Cancel-safe.
    pub async fn read(&mut self) -> Result<Event<'_>, DriverError<T::Error>> {
        let (raw, base) = self.next_raw().await?;
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
                Err(_) => Err(fail_now(session, output, io).await),
            };
        }
        // Only text from the input can fail (above).
        session
            .conn
            .event(raw, input.from(base))
            .map_err(DriverError::Connection)
    }

    /// Waits for the next text or binary message; `Ok(None)` when the peer
    /// closed the connection. See [`crate::WebSocket::read_message`].
    /// Cancel-safe.
    pub async fn read_message(&mut self) -> Result<Option<Message<'_>>, DriverError<T::Error>> {
        let Some((text, payload, base)) = self.next_message().await? else {
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
                Err(_) => Err(fail_now(session, output, io).await),
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
    /// be the message itself or borrow from it; see
    /// [`crate::WebSocket::respond`] (answers may wait in the write buffer
    /// while more input is already here; they go out before the next read
    /// that has to wait, or on [`flush`](Self::flush)). An echo: `while ws.respond(echo).await? {}`
    /// ([`crate::echo`]).
    ///
    /// On hosts, a server's answer that is the message itself, arrived
    /// whole in the read buffer, of 16 KiB or more (or larger than the room
    /// in the write buffer), goes out from the read buffer in one write,
    /// its header written in front of it: no copy. Like any send, a
    /// `respond` dropped while it writes such an answer fails the
    /// connection (see the [module](super) docs); smaller answers wait in
    /// the write buffer.
    pub async fn respond<F>(&mut self, reply: F) -> Result<bool, DriverError<T::Error>>
    where
        F: for<'m> FnOnce(Message<'m>) -> Option<Message<'m>>,
    {
        let Some((text, payload, base)) = self.next_message().await? else {
            return Ok(false);
        };
        let header = self.session.reply_header();
        let side = self.session.conn.side();
        let Self {
            session,
            input,
            io,
            output,
            #[cfg(feature = "deflate")]
            deflate,
            ..
        } = self;
        // Where the message lies in the read buffer, if it arrived whole.
        #[cfg(not(target_os = "none"))]
        let received = match &payload {
            Payload::Input(range) => Some(base + range.start..base + range.end),
            Payload::Message => None,
        };
        let Some(message) = session::checked_message(&session.conn, input, base, text, payload)
        else {
            session.invalid_text();
            return Err(fail_now(session, output, io).await);
        };
        let Some(answer) = reply(message) else {
            return Ok(true);
        };
        let (kind, bytes) = session::message_parts(answer);
        #[cfg(feature = "deflate")]
        if let Some(tx) = deflate.as_mut().filter(|tx| tx.compresses(bytes.len())) {
            // Compressed by our own compressor (the reply borrows the
            // connection), masked with the key the header took.
            let frame = tx.encode(kind, bytes, header?.mask);
            // As below: a frame that fits goes into the output whole (a
            // cancelled write leaves its rest there); one that does not
            // tears the connection if cancelled half way.
            session.torn = frame.len() > output.room();
            super::deflate::write_encoded(io, output, frame, input.waiting()).await?;
            session.torn = false;
            tx.sent();
            return Ok(true);
        }
        let header = session::reply_header(header?, kind, bytes.len());
        let mut frame = FrameWrite::new(side, header, bytes);
        let whole = header.encoded_len() + bytes.len() <= output.room();
        // Hosts only (see `session`, "Zero-copy paths").
        #[cfg(not(target_os = "none"))]
        {
            // The message itself, sent back by a server (unmasked) from the
            // read buffer, when it is large or does not fit the write
            // buffer: its header goes in front of it there, over bytes
            // already consumed, and the frame is written from there in one
            // piece, without a copy.
            let in_place = received.filter(|r| {
                (!whole || r.len() >= session::IN_PLACE_FROM)
                    && side.role() == Role::Server
                    && input.from(0).get(r.clone()).map(<[u8]>::as_ptr) == Some(bytes.as_ptr())
                    && r.len() == bytes.len()
                    && input.fits_before(r, header.encoded_len())
            });
            if let Some(r) = in_place {
                transmit(io, output).await?;
                // A cancel half way tears the connection, as below.
                session.torn = true;
                let frame = input.frame_in_place(
                    r,
                    &FrameHeader {
                        mask: None,
                        ..header
                    },
                );
                write_all(io, frame).await?;
                io.flush().await.map_err(DriverError::Io)?;
                session.torn = false;
                return Ok(true);
            }
        }
        // As in the blocking driver: a reply that fits goes after what
        // waits in the output, whole (a cancelled write leaves its rest
        // there); one that does not goes out after the output is emptied
        // (an unmasked payload straight from where it lies, after its
        // header: `write_frame`), and a cancel half way tears the
        // connection.
        if !whole {
            transmit(io, output).await?;
        }
        session.torn = !whole;
        #[cfg(not(target_os = "none"))]
        if !whole {
            write_frame(io, output, frame).await?;
            session.torn = false;
            return Ok(true);
        }
        while frame
            .next_piece(output)
            .map_err(DriverError::BufferTooSmall)?
        {
            if whole && input.waiting() {
                // More messages are already here: the reply goes out with
                // theirs, before the next read that has to wait.
                break;
            }
            transmit(io, output).await?;
        }
        session.torn = false;
        Ok(true)
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), DriverError<T::Error>> {
        self.send(MessageKind::Text, text.as_bytes()).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), DriverError<T::Error>> {
        self.send(MessageKind::Binary, data).await
    }

    /// Sends a whole message as one frame, streamed through the write
    /// buffer. With permessage-deflate agreed (`accept_deflate`,
    /// `connect_deflate`), a message of at least `min_size` bytes is
    /// compressed here, in this call (as is a reply of
    /// [`respond`](Self::respond)): its frame is built whole in the
    /// driver's frame buffer, then written (see the [module](super) docs).
    pub async fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), DriverError<T::Error>> {
        self.unsent().await?;
        let header = self.session.conn.message_header(kind, payload.len())?;
        #[cfg(feature = "deflate")]
        if let Some(tx) = self
            .deflate
            .as_mut()
            .filter(|tx| tx.compresses(payload.len()))
        {
            let frame = tx.encode(kind, payload, header.mask);
            self.session.torn = true;
            super::deflate::write_encoded(&mut self.io, &mut self.output, frame, false).await?;
            self.session.torn = false;
            tx.sent();
            return Ok(());
        }
        self.send_frame(header, payload).await
    }

    /// Sends one fragment of a message; see
    /// [`Connection::send_fragment`](crate::Connection::send_fragment).
    /// Fragmented messages are sent uncompressed, also with
    /// permessage-deflate (RFC 7692 allows it).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), DriverError<T::Error>> {
        self.unsent().await?;
        let header = self
            .session
            .conn
            .fragment_header(kind, payload.len(), fin)?;
        self.send_frame(header, payload).await
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), DriverError<T::Error>> {
        self.unsent().await?;
        let n = self.session.conn.ping(payload, self.output.buffer())?;
        self.output.queue(n);
        transmit(&mut self.io, &mut self.output).await
    }

    /// Closes the connection: sends Close with `code` and `reason`, then
    /// reads (discarding data) until the peer's Close arrives or the close
    /// timeout passes. Returns `Ok(())` when the handshake completed.
    pub async fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DriverError<T::Error>> {
        let now = self.clock.now();
        self.session.conn.close(code, reason, now)?;
        loop {
            match self.next_raw().await {
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
    pub async fn flush(&mut self) -> Result<(), DriverError<T::Error>> {
        loop {
            transmit(&mut self.io, &mut self.output).await?;
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

    /// Before a send: what an earlier, cancelled call left (a control
    /// frame half written: finished; a data frame: the connection fails).
    async fn unsent(&mut self) -> Result<(), DriverError<T::Error>> {
        if self.session.torn {
            self.session.conn.abort();
            return Err(DriverError::Connection(Error::Closed));
        }
        transmit(&mut self.io, &mut self.output).await
    }

    /// Writes a data frame whose header the connection gave.
    async fn send_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), DriverError<T::Error>> {
        let frame = self.session.frame(header, payload);
        write_frame(&mut self.io, &mut self.output, frame).await?;
        self.session.torn = false;
        Ok(())
    }

    /// Reads until the next data message (see [`session::data`]).
    async fn next_message(&mut self) -> Result<Option<session::Data>, DriverError<T::Error>> {
        loop {
            let (event, base) = self.next_raw().await?;
            match session::data(event, base) {
                Some(None) => {}
                Some(Some(data)) => return Ok(Some(data)),
                None => return Ok(None),
            }
        }
    }

    /// Does what the session asks until it yields an event: writes
    /// replies, services timers, reads (racing the next deadline).
    async fn next_raw(&mut self) -> Result<(UnborrowedEvent, usize), DriverError<T::Error>> {
        loop {
            let now = self.clock.now();
            match self.session.step(&mut self.input, &mut self.output, now) {
                Step::Transmit => {
                    if let Err(e) = transmit(&mut self.io, &mut self.output).await {
                        return Err(self.session.write_failed(e));
                    }
                }
                Step::Read => {
                    let deadline = self.session.deadline();
                    #[cfg(not(target_os = "none"))]
                    let room = self.input.room_within(self.session.conn.data_frame_rest());
                    #[cfg(target_os = "none")]
                    let room = self.input.room();
                    let read = self.io.read(room);
                    if let Some(result) = until(&self.clock, deadline, read).await {
                        match result {
                            Ok(0) => return Err(self.session.eof()),
                            Ok(n) => self.input.filled(n),
                            Err(e) if is_tick(e.kind()) => {}
                            Err(e) => return Err(DriverError::Io(e)),
                        }
                    }
                }
                Step::Event(event, base) => return Ok((event, base)),
                Step::Failed(e) => return Err(DriverError::Connection(e)),
            }
        }
    }
}

impl<T, B, R, C, S: Side> fmt::Debug for WebSocket<'_, T, B, R, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.session.conn)
            .finish_non_exhaustive()
    }
}

/// A read error that is a clock tick, not a failure.
pub(super) fn is_tick(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// The connection failed (its Close is queued): writes the Close and
/// returns the failure.
pub(super) async fn fail_now<T: Write, B: MessageBuffer, R: RngCore, S: Side>(
    session: &mut Session<B, R, S>,
    output: &mut Output<'_>,
    io: &mut T,
) -> DriverError<T::Error> {
    loop {
        match session.pending(output, false) {
            Some(Step::Transmit) => {
                if let Err(e) = transmit(io, output).await {
                    return session.write_failed(e);
                }
            }
            Some(Step::Failed(e)) => return DriverError::Connection(e),
            _ => return DriverError::Connection(Error::Closed),
        }
    }
}

/// Writes the bytes waiting in `output`, then flushes the transport if
/// there were any. Each write that completes is recorded before the next
/// `.await`, so a cancelled call leaves the rest for the next one.
pub(super) async fn transmit<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
) -> Result<(), DriverError<T::Error>> {
    if output.is_empty() {
        return Ok(());
    }
    while !output.is_empty() {
        match io.write(output.unsent()).await {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => output.sent(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    io.flush().await.map_err(DriverError::Io)
}

/// Writes `frame` piece by piece through `output` (which is empty); an
/// unmasked frame larger than the output goes as its header through the
/// output and its payload straight from where it lies, not copied.
pub(super) async fn write_frame<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
    mut frame: FrameWrite<'_>,
) -> Result<(), DriverError<T::Error>> {
    #[cfg(not(target_os = "none"))]
    if let Some(payload) = frame.header_only(output) {
        transmit(io, output).await?;
        write_all(io, payload).await?;
        return io.flush().await.map_err(DriverError::Io);
    }
    while frame
        .next_piece(output)
        .map_err(DriverError::BufferTooSmall)?
    {
        transmit(io, output).await?;
    }
    Ok(())
}

#[cfg(not(target_os = "none"))]
/// Writes all of `bytes` (not through the output: a cancelled call leaves
/// the rest unwritten, so callers mark the connection torn meanwhile).
async fn write_all<T: Write>(io: &mut T, mut bytes: &[u8]) -> Result<(), DriverError<T::Error>> {
    while !bytes.is_empty() {
        match io.write(bytes).await {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    Ok(())
}
