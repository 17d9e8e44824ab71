//! The open connection's methods, for both drivers (see
//! [`super::driver_body!`]): reading, replying, sending, closing, and the
//! read loop under them.

/// `impl WebSocket`: the methods of an open connection.
macro_rules! connection_methods {
    ($m:tt $($async:tt)?) => {
impl<'buf, T, B, R, C, S> WebSocket<'buf, T, B, R, C, S>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
    S: Side,
{
    by_mode! { $m {
        /// Drives `conn` (whose opening handshake is done) over `io`.
        /// `read[..pending]` holds bytes already received after the handshake.
    } {
        /// Drives `conn` (whose opening handshake is done, by hyper say) over
        /// `io`. `read[..pending]` holds bytes already received after the
        /// handshake.
    }
    pub fn new(
        io: T,
        conn: Connection<B, R, S>,
        clock: C,
        read: &'buf mut [u8],
        pending: usize,
        write: &'buf mut [u8],
    ) -> Result<Self, DriverError<T::Error>> {
        let input = Input::new(read, 0, pending)?;
        let output = Output::new(write)?;
        Ok(assemble!($m, io, conn, clock, input, output))
    }
    }

    /// The underlying connection.
    pub const fn connection(&self) -> &Connection<B, R, S> {
        &self.session.conn
    }

    /// The transport.
    pub const fn transport(&self) -> &T {
        &self.io
    }

    by_mode! { $m {
        /// The transport, mutably (e.g. to change its timeouts).
    } {
        /// The transport, mutably.
    }
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.io
    }

    by_mode! { $m {
        /// Waits for the next event from the peer, answering pings and sending
        /// heartbeat pings meanwhile. A Close from the peer is answered before
        /// it is returned; after it, [`WebSocket::read`] returns
        /// `DriverError::Connection(Error::Closed)`.
    } {
        /// Waits for the next event from the peer, answering pings and sending
        /// heartbeat pings meanwhile; see [`crate::WebSocket::read`].
        /// Cancel-safe.
    }
    pub $($async)? fn read(&mut self) -> Result<Event<'_>, DriverError<T::Error>> {
        let (raw, base) = io!($m, self.next_raw())?;
        let Self {
            session,
            input,
            io,
            output,
            clock,
            ..
        } = self;
        if let UnborrowedEvent::Text(Payload::Input(range)) = &raw {
            return match session.input_text(input, base, range.clone()) {
                Ok(text) => Ok(Event::Text(text)),
                Err(_) => Err(io!($m, fail_now(session, input, output, io, clock))),
            };
        }
        // Only text from the input can fail (above).
        session
            .conn
            .event(raw, input.from(base))
            .map_err(DriverError::Connection)
    }
    }

    by_mode! { $m {
        /// Waits for the next text or binary message; pings and pongs are
        /// handled on the way. `Ok(None)` means the peer closed the connection
        /// (its Close was answered); the transport may then be dropped.
    } {
        /// Waits for the next text or binary message; `Ok(None)` when the peer
        /// closed the connection. See [`crate::WebSocket::read_message`].
        /// Cancel-safe.
    }
    pub $($async)? fn read_message(&mut self) -> Result<Option<Message<'_>>, DriverError<T::Error>> {
        let Some((text, payload, base)) = io!($m, self.next_message())? else {
            return Ok(None);
        };
        let Self {
            session,
            input,
            io,
            output,
            clock,
            ..
        } = self;
        if let (true, Payload::Input(range)) = (text, &payload) {
            return match session.input_text(input, base, range.clone()) {
                Ok(text) => Ok(Some(Message::Text(text))),
                Err(_) => Err(io!($m, fail_now(session, input, output, io, clock))),
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
    }

    by_mode! { $m {
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
        ///
        /// On hosts, a server's answer that is the message itself, arrived
        /// whole in the read buffer, of 16 KiB or more (or larger than the
        /// room in the write buffer), goes out from the read buffer in one
        /// write, its header written in front of it: no copy.
    } {
        /// Reads the next message and sends `reply`'s answer to it, which may
        /// be the message itself or borrow from it; see
        /// [`crate::WebSocket::respond`] (answers may wait in the write buffer
        /// while more input is already here; they go out before the next read
        /// that has to wait, or on [`flush`](Self::flush)). An echo: `while ws.respond(echo).await? {}`
        /// ([`crate::echo`]).
        ///
        /// On hosts, a server's answer that is the message itself, arrived
        /// whole in the read buffer, of 16 KiB or more (or larger than the
        /// room in the write buffer), goes out from the read buffer in one
        /// write, its header written in front of it: no copy. Like any send, a
        /// `respond` dropped while it writes such an answer fails the
        /// connection (see the [module](super) docs); smaller answers wait in
        /// the write buffer.
    }
    pub $($async)? fn respond<F>(&mut self, reply: F) -> Result<bool, DriverError<T::Error>>
    where
        F: for<'m> FnOnce(Message<'m>) -> Option<Message<'m>>,
    {
        let Some((text, payload, base)) = io!($m, self.next_message())? else {
            return Ok(false);
        };
        // The masking key is taken before the message borrows the
        // connection; the length and opcode are filled in below.
        let header = self.session.reply_header();
        let side = self.session.conn.side();
        by_mode! { $m {} {
            #[cfg(feature = "deflate")]
            let deflate = &mut self.deflate;
        } }
        let Self {
            session,
            input,
            io,
            output,
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
            return Err(io!($m, self.fail_through_read_loop()));
        };
        let Some(answer) = reply(message) else {
            return Ok(true);
        };
        let (kind, bytes) = session::message_parts(answer);
        by_mode! { $m {} {
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
        } }
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
                io!($m, transmit(io, output))?;
                // A stop half way tears the connection, as below.
                session.torn = true;
                let frame = input.frame_in_place(
                    r,
                    &FrameHeader {
                        mask: None,
                        ..header
                    },
                );
                io!($m, write_all(io, frame))?;
                io!($m, io.flush()).map_err(DriverError::Io)?;
                session.torn = false;
                return Ok(true);
            }
        }
        // A reply that fits goes after what waits in the output, whole:
        // a write that stops half way (an error, a cancelled future)
        // leaves its rest there. One that does not fit goes out after the
        // output is emptied (on hosts an unmasked payload straight from
        // where it lies, after its header: `write_frame`; elsewhere in
        // pieces through the output), and a stop half way tears the
        // connection.
        if !whole {
            io!($m, transmit(io, output))?;
        }
        session.torn = !whole;
        #[cfg(not(target_os = "none"))]
        if !whole {
            io!($m, write_frame(io, output, frame))?;
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
            io!($m, transmit(io, output))?;
        }
        session.torn = false;
        Ok(true)
    }
    }

    /// Sends a text message.
    pub $($async)? fn send_text(&mut self, text: &str) -> Result<(), DriverError<T::Error>> {
        io!($m, self.send(MessageKind::Text, text.as_bytes()))
    }

    /// Sends a binary message.
    pub $($async)? fn send_binary(&mut self, data: &[u8]) -> Result<(), DriverError<T::Error>> {
        io!($m, self.send(MessageKind::Binary, data))
    }

    by_mode! { $m {
        /// Sends a whole message as one frame. Payloads larger than the write
        /// buffer are streamed through it.
    } {
        /// Sends a whole message as one frame, streamed through the write
        /// buffer. With permessage-deflate agreed (`accept_deflate`,
        /// `connect_deflate`), a message of at least `min_size` bytes is
        /// compressed here, in this call (as is a reply of
        /// [`respond`](Self::respond)): its frame is built whole in the
        /// driver's frame buffer, then written (see the [module](super) docs).
    }
    pub $($async)? fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), DriverError<T::Error>> {
        io!($m, self.unsent())?;
        let header = self.session.conn.message_header(kind, payload.len())?;
        by_mode! { $m {} {
            #[cfg(feature = "deflate")]
            if let Some(tx) = self
                .deflate
                .as_mut()
                .filter(|tx| tx.compresses(payload.len()))
            {
                let frame = tx.encode(kind, payload, header.mask);
                self.session.torn = true;
                super::deflate::write_encoded(&mut self.io, &mut self.output, frame, false)
                    .await?;
                self.session.torn = false;
                tx.sent();
                return Ok(());
            }
        } }
        io!($m, self.send_frame(header, payload))
    }
    }

    by_mode! { $m {
        /// Sends one fragment of a message; see [`Connection::send_fragment`].
    } {
        /// Sends one fragment of a message; see
        /// [`Connection::send_fragment`](crate::Connection::send_fragment).
        /// Fragmented messages are sent uncompressed, also with
        /// permessage-deflate (RFC 7692 allows it).
    }
    pub $($async)? fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), DriverError<T::Error>> {
        io!($m, self.unsent())?;
        let header = self
            .session
            .conn
            .fragment_header(kind, payload.len(), fin)?;
        io!($m, self.send_frame(header, payload))
    }
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub $($async)? fn ping(&mut self, payload: &[u8]) -> Result<(), DriverError<T::Error>> {
        io!($m, self.unsent())?;
        let n = self.session.conn.ping(payload, self.output.buffer())?;
        self.output.queue(n);
        io!($m, transmit(&mut self.io, &mut self.output))
    }

    /// Closes the connection: sends Close with `code` and `reason`, then
    /// reads (discarding data) until the peer's Close arrives or the close
    /// timeout passes. Returns `Ok(())` when the handshake completed.
    pub $($async)? fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DriverError<T::Error>> {
        let now = self.clock.now();
        self.session.conn.close(code, reason, now)?;
        loop {
            match io!($m, self.next_raw()) {
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
    pub $($async)? fn flush(&mut self) -> Result<(), DriverError<T::Error>> {
        loop {
            io!($m, transmit(&mut self.io, &mut self.output))?;
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

    /// Before a send: what an earlier call left (a control frame half
    /// written: finished; a data frame: the connection fails).
    $($async)? fn unsent(&mut self) -> Result<(), DriverError<T::Error>> {
        if self.session.torn {
            self.session.conn.abort();
            return Err(DriverError::Connection(Error::Closed));
        }
        io!($m, transmit(&mut self.io, &mut self.output))
    }

    /// Writes a data frame whose header the connection gave.
    $($async)? fn send_frame(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), DriverError<T::Error>> {
        let frame = self.session.frame(header, payload);
        io!($m, write_frame(&mut self.io, &mut self.output, frame))?;
        self.session.torn = false;
        Ok(())
    }

    /// Reads until the next data message: whether it is text, where its
    /// payload is and the base its ranges index; `None` when the peer
    /// closed the connection.
    $($async)? fn next_message(&mut self) -> Result<Option<session::Data>, DriverError<T::Error>> {
        loop {
            let (event, base) = io!($m, self.next_raw())?;
            match session::data(event, base) {
                Some(None) => {}
                Some(Some(data)) => return Ok(Some(data)),
                None => return Ok(None),
            }
        }
    }

    /// The connection failed (its Close is queued): the read loop, which
    /// with a failure waiting does nothing but write (and linger), writes
    /// the Close and returns the failure. (`fail_now` does the same for the
    /// callers that still lend out the input.)
    $($async)? fn fail_through_read_loop(&mut self) -> DriverError<T::Error> {
        match io!($m, self.next_raw()) {
            Err(e) => e,
            Ok(_) => DriverError::Connection(Error::Closed),
        }
    }

    /// Does what the session asks until it yields an event: writes
    /// replies, services timers, reads (the async driver racing the next
    /// deadline); after a failure, lingers (see `Session::step`).
    #[inline(never)]
    $($async)? fn next_raw(&mut self) -> Result<(UnborrowedEvent, usize), DriverError<T::Error>> {
        // The last read showed the transport held no more input: it was
        // read through as of the next look at the clock (see
        // `Session::read_through`).
        let mut through = false;
        loop {
            let now = self.clock.now();
            if core::mem::take(&mut through) {
                self.session.read_through(now);
            }
            match self.session.step(&mut self.input, &mut self.output, now) {
                Step::Transmit => {
                    if let Err(e) = io!($m, transmit(&mut self.io, &mut self.output)) {
                        return Err(self.session.write_failed(e));
                    }
                }
                Step::Read => {
                    let session = &self.session;
                    // On hosts a read stops at the end of a large frame in
                    // progress, so that the next one can arrive whole.
                    #[cfg(not(target_os = "none"))]
                    let room = self.input.room_within(session.conn.data_frame_rest());
                    #[cfg(target_os = "none")]
                    let room = self.input.room();
                    let asked = room.len();
                    let read = read_some(
                        &mut self.io,
                        room,
                        &mut self.clock,
                        || session.conn.poll_timeout(),
                    );
                    through = match io!($m, read) {
                        None => true,
                        // (While lingering after a failure: the failure.)
                        Some(Ok(0)) => return Err(self.session.eof()),
                        Some(Ok(n)) => {
                            self.input.filled(n);
                            short_read_is_through(n, asked)
                        }
                        Some(Err(e)) if is_tick(e.kind()) => true,
                        Some(Err(e)) => return Err(self.session.write_failed(DriverError::Io(e))),
                    };
                }
                Step::Event(event, base) => return Ok((event, base)),
                Step::Failed(e) => return Err(DriverError::Connection(e)),
            }
        }
    }
}
    };
}
pub(crate) use connection_methods;
