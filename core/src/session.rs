//! What the blocking and the async driver share: everything but the I/O.
//!
//! A driver owns a transport, an [`Input`] (the read buffer), an [`Output`]
//! (the write buffer) and a [`Session`] (the [`Connection`] and what the
//! driver remembers between calls). Every decision is taken here, without
//! I/O: [`Session::step`] says what the driver must do next (write the
//! bytes waiting in the output, read more input, or hand out an event), a
//! [`FrameWrite`] cuts an outgoing frame into pieces that fit the output,
//! and the handshake steps ([`server_handshake_with`], [`client_handshake`])
//! parse and answer the opening handshake. The drivers only move bytes:
//! `io.read(..)` in one, `io.read(..).await` in the other.
//!
//! Everything here uses only [`Connection`]'s public API.

use core::ops::Range;

use rand_core::RngCore;

use crate::buffer::MessageBuffer;
use crate::connection::{
    Connection, Error, MessageKind, Payload, Role, SendError, Side, UnborrowedEvent,
};
use crate::driver::MIN_WRITE_BUFFER;
use crate::driver::{Decision, DriverError, Message, MAX_HEADERS, MIN_READ_BUFFER};
use crate::error::{InsufficientSizeError, ProtocolError};
use crate::frame::FrameHeader;
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Parsed, Request};
use crate::mask::apply_mask;
use crate::time::Instant;

mod buffers;
#[cfg(all(feature = "async", feature = "deflate"))]
mod deflate;
mod opening;
#[cfg(all(feature = "async", feature = "deflate"))]
pub(crate) use deflate::{client_handshake_deflate, client_request_deflate, DeflateSend};

#[cfg(not(target_os = "none"))]
pub(crate) use buffers::IN_PLACE_FROM;
pub(crate) use buffers::{Input, Output};
pub(crate) use opening::{
    client_handshake, client_request, handshake_room, refuse, server_handshake_with,
    ServerHandshake,
};

/// What a driver must do next to get an event (see [`Session::step`]).
#[derive(Debug)]
pub(crate) enum Step {
    /// Write [`Output::unsent`] (and flush), then step again.
    Transmit,
    /// Read into [`Input::room`] (or wait for the next deadline, see
    /// [`Session::deadline`]), then step again.
    Read,
    /// An event; its ranges index [`Input::from`]`(base)`.
    Event(UnborrowedEvent, usize),
    /// The connection failed, its Close (if any) written, or it is
    /// closed (`Error::Closed`): nothing more comes.
    Failed(Error),
}

/// The connection and what the driver remembers between calls.
pub(crate) struct Session<B, R, S> {
    pub(crate) conn: Connection<B, R, S>,
    /// A failure whose Close is still to be written.
    pub(crate) failure: Option<Error>,
    /// An event whose replies are still to be written, with its base.
    ready: Option<(UnborrowedEvent, usize)>,
    /// A data frame was being written when its write stopped (an I/O error
    /// or a cancelled send): the peer saw part of a frame, so nothing else
    /// can follow it.
    pub(crate) torn: bool,
    /// The latest instant at which the transport was seen to hold no more
    /// input ([`Session::read_through`]). Deadlines are judged only up to
    /// it: see [`Session::advance`].
    read_through: Instant,
}

impl<B: MessageBuffer, R: RngCore, S: Side> Session<B, R, S> {
    /// Drives `conn`.
    pub(crate) const fn new(conn: Connection<B, R, S>) -> Self {
        Self {
            conn,
            failure: None,
            ready: None,
            torn: false,
            read_through: Instant::ZERO,
        }
    }

    /// The driver's read at `now` showed that the transport held no more
    /// input: it came back short (less than the room it was given: all
    /// there was; the blocking driver's), timed out (the blocking driver's
    /// tick), or lost its race to a deadline (the async driver's only
    /// sign).
    #[inline]
    pub(crate) fn read_through(&mut self, now: Instant) {
        self.read_through = now;
    }

    /// The next thing to do on the way to an event, at `now`: write what
    /// waits (replies and heartbeat pings before the event that caused
    /// them is handed out, a failure's Close before the failure), service
    /// the timers, consume input, or read more.
    #[inline(never)]
    pub(crate) fn step(
        &mut self,
        input: &mut Input<'_>,
        output: &mut Output<'_>,
        now: Instant,
    ) -> Step {
        loop {
            // After a failure whose Close went out: what the peer still
            // sends is read past to its Close (or EOF, or the close
            // timeout) before the failure is handed out.
            if self.conn.is_closed() && output.is_empty() && self.failure.is_some_and(lingers) {
                if self.conn.handle_linger(input.take(), now) {
                    return Step::Read;
                }
                return Step::Failed(self.failure.take().unwrap_or(Error::Closed));
            }
            if let Some(step) = self.pending(output, input.waiting()) {
                return step;
            }
            if self.advance(input, now) {
                continue;
            }
            // What the timers queued (the heartbeat's Ping) goes into the
            // output now, not after the next wait (which may be the pong
            // timeout's).
            self.queue_controls(output);
            if !output.is_empty() {
                return Step::Transmit;
            }
            return Step::Read;
        }
    }

    /// [`Session::step`] for a driver that cannot write whenever it likes:
    /// the split reader, whose writes wait for the other half's frame or
    /// for the peer to read. The control frames stay queued in the
    /// connection (which keeps the Pong to the latest Ping only) until the
    /// driver gets the writer and puts them after what waits there
    /// ([`Session::queue_controls`]); meanwhile input is consumed and
    /// events handed out, a Ping's before its Pong is written. Only what
    /// must not go ahead of the queued frames waits for them, with
    /// [`Step::Transmit`] (take the writer, then step with
    /// [`Session::pending`]): the peer's Close (its reply goes first) and
    /// the end (a failure's Close, the last frames).
    #[cfg(feature = "async")]
    pub(crate) fn step_held(&mut self, input: &mut Input<'_>, now: Instant) -> Step {
        loop {
            if self.torn {
                self.conn.abort();
                self.torn = false;
                return Step::Failed(Error::Closed);
            }
            if matches!(self.ready, Some((UnborrowedEvent::Close(_), _))) {
                return Step::Transmit;
            }
            if let Some((event, base)) = self.ready.take() {
                return Step::Event(event, base);
            }
            if self.failure.is_some() || self.conn.is_closed() {
                return Step::Transmit;
            }
            if self.advance(input, now) {
                continue;
            }
            return Step::Read;
        }
    }

    /// The input, then the timers: `true` when that gave an event or a
    /// failure (step again), `false` when more input is needed.
    ///
    /// A deadline is judged only once the input that arrived before it has
    /// been read: once the transport has been seen empty at or after it
    /// ([`Session::read_through`]). The application reads when it likes,
    /// so a Pong (or a message's last fragment) may have been waiting in
    /// the transport, behind a backlog or while the application was busy,
    /// long after its deadline passed here; judged on the clock alone, a
    /// peer that answered in time would be failed. A peer that sends
    /// nothing is still failed as soon as a read finds the transport empty
    /// (at once, for the async driver, whose read races the deadline).
    /// While every read fills its buffer, nothing is judged (the peer is
    /// evidently sending) until we stop sending data: see
    /// [`Session::timers`].
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    fn advance(&mut self, input: &mut Input<'_>, now: Instant) -> bool {
        if input.start < input.end || self.conn.is_open() {
            let base = input.start;
            let bytes = input.buf.get_mut(base..input.end).unwrap_or_default();
            match self.conn.handle_read_unborrowed(bytes, now) {
                Ok((consumed, event)) => {
                    input.start += consumed;
                    if let Some(event) = event {
                        self.ready = Some((event, base));
                        return true;
                    }
                }
                Err(e) => {
                    self.failure = Some(e);
                    return true;
                }
            }
        }
        self.timers(now)
    }

    /// The timers whose deadlines the input has been read through (see
    /// [`Session::advance`]): `true` when one failed the connection.
    ///
    /// Once we no longer send data (our Close is out, or the peer's came),
    /// the clock alone judges: what the peer still sends is read past, and
    /// a peer that keeps every read full must not hold the close open
    /// beyond its timeout (a Close of its own waiting unread behind such a
    /// stream then ends the connection as a close timeout, not a clean
    /// close).
    #[inline]
    fn timers(&mut self, now: Instant) -> bool {
        let due = self.conn.poll_timeout();
        let open = self.conn.is_open();
        if due.is_some_and(|due| due <= self.read_through || (!open && due <= now)) {
            if let Err(e) = self.conn.handle_timeout(now) {
                self.failure = Some(e);
                return true;
            }
        }
        false
    }

    /// The part of [`Session::step`] that needs no input: what waits to be
    /// written, then a waiting event or failure, or the end. `None`: go on
    /// to the timers and the input. A driver that has just failed the
    /// connection steps with this alone until [`Step::Failed`].
    pub(crate) fn pending(&mut self, output: &mut Output<'_>, input_waiting: bool) -> Option<Step> {
        // Replies may wait in the output while more input is already here
        // (their bytes then go out together, in one write); before a read
        // that would wait, or when room runs short, they go.
        let defer = input_waiting && output.room() >= MIN_WRITE_BUFFER;
        if !output.is_empty() && !defer {
            return Some(Step::Transmit);
        }
        if self.torn {
            self.conn.abort();
            self.torn = false;
            return Some(Step::Failed(Error::Closed));
        }
        // The queued control frames, as many as fit (the room holds any
        // one: `MIN_WRITE_BUFFER`); the rest stay queued.
        self.queue_controls(output);
        if let Some((event, _)) = &self.ready {
            // A data event may go ahead of waiting replies while more input
            // waits; a control event (a Close answered) goes after them.
            let data = matches!(event, UnborrowedEvent::Text(_) | UnborrowedEvent::Binary(_));
            let goes = output.is_empty() || (defer && data);
            if !goes {
                return Some(Step::Transmit);
            }
            return self
                .ready
                .take()
                .map(|(event, base)| Step::Event(event, base));
        }
        // A failure's Close, or the last frames before the end, go first.
        let ending = self.failure.is_some() || self.conn.is_closed();
        if !output.is_empty() && (!defer || ending) {
            return Some(Step::Transmit);
        }
        if ending {
            return Some(Step::Failed(self.failure.take().unwrap_or(Error::Closed)));
        }
        None
    }

    /// Puts the queued control frames after what waits in `output`, as
    /// many as fit, each whole; the rest stay queued.
    #[inline(never)]
    pub(crate) fn queue_controls(&mut self, output: &mut Output<'_>) {
        let side = self.conn.side();
        let _ = self.conn.poll_transmit_with(|header, payload| {
            // Only a client masks (see `FrameWrite::new`).
            let key = match side.role() {
                Role::Client => header.mask,
                Role::Server => None,
            };
            // A control payload is at most 125 bytes (the connection keeps
            // it in a buffer of that size): a 2-byte header, no extended
            // length, then the key. Written here rather than through
            // `FrameHeader::encode`, which stays inlined in the data
            // frames' writer.
            let len = payload.len();
            let head = if key.is_some() { 6 } else { 2 };
            let end = output.end;
            let room = output.buf.get_mut(end..).unwrap_or_default();
            let (Some(frame), Ok(len7 @ 0..=125)) = (room.get_mut(..head + len), u8::try_from(len))
            else {
                return Err(());
            };
            let (first, body) = frame.split_at_mut(head);
            if let [b0, b1, rest @ ..] = first {
                *b0 = (u8::from(header.fin) << 7) | header.opcode.as_u8();
                *b1 = (u8::from(key.is_some()) << 7) | len7;
                if let (Some(key), Ok(slot)) = (key, <&mut [u8; 4]>::try_from(rest)) {
                    *slot = key;
                }
            }
            // Copied and masked in one byte loop: no `memcpy` call, whose
            // frame would add to the deepest stack.
            let key = key.unwrap_or_default();
            for (i, (to, from)) in body.iter_mut().zip(payload).enumerate() {
                *to = from ^ key[i % 4];
            }
            output.end = end + head + len;
            Ok(())
        });
    }

    /// [`Session::queue_controls`] for a driver whose control frames wait
    /// behind the other half's frame: a heartbeat Ping handed out here has
    /// its Pong's deadline counted from `now()` (the clock is read only
    /// then).
    #[cfg(feature = "async")]
    pub(crate) fn queue_controls_at(
        &mut self,
        output: &mut Output<'_>,
        now: impl FnOnce() -> Instant,
    ) {
        let pinging = self.conn.heartbeat_queued();
        self.queue_controls(output);
        if pinging && !self.conn.heartbeat_queued() {
            self.conn.heartbeat_sent(now());
        }
    }

    /// When the next [`Session::step`] has timer work (a driver that waits
    /// for input wakes up then; the blocking one relies on read timeouts).
    #[cfg(feature = "async")]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// The transport ended: the failure it lingered after, if any, else
    /// [`DriverError::UnexpectedEof`].
    pub(crate) fn eof<E>(&mut self) -> DriverError<E> {
        if let Some(failure) = self.failure.take() {
            return DriverError::Connection(failure);
        }
        self.conn.abort();
        DriverError::UnexpectedEof
    }

    /// The transport failed with `e` while writing (or while lingering
    /// after a failure): the failure whose Close was being written, or
    /// that it lingered after, if any, else the I/O error.
    pub(crate) fn write_failed<E>(&mut self, e: DriverError<E>) -> DriverError<E> {
        match self.failure.take() {
            Some(failure) => DriverError::Connection(failure),
            None => e,
        }
    }

    /// A text message that arrived whole in `input`, validated here (its
    /// one UTF-8 pass). Invalid text fails the connection with 1007: step
    /// on to write its Close, then report the returned error.
    pub(crate) fn input_text<'a>(
        &mut self,
        input: &'a Input<'_>,
        base: usize,
        range: Range<usize>,
    ) -> Result<&'a str, Error> {
        let bytes = input.from(base).get(range).unwrap_or_default();
        core::str::from_utf8(bytes).map_err(|_| self.invalid_text())
    }

    /// Text that is not UTF-8: fails the connection with 1007 (step on to
    /// write its Close, then report the returned error).
    pub(crate) fn invalid_text(&mut self) -> Error {
        let e = self.conn.fail(ProtocolError::InvalidUtf8);
        self.failure = Some(e);
        e
    }

    /// Starts writing a data frame with `header` and `payload`: the
    /// session counts as torn until the driver sets `torn` back once the
    /// last piece is written.
    pub(crate) fn frame<'p>(&mut self, header: FrameHeader, payload: &'p [u8]) -> FrameWrite<'p> {
        self.torn = true;
        FrameWrite::new(self.conn.side(), header, payload)
    }

    /// The header of the reply to a data message, taken before the
    /// message is borrowed (taking a masking key needs the connection
    /// mutably); [`reply_header`] completes it once the reply is known.
    pub(crate) fn reply_header(&mut self) -> Result<FrameHeader, SendError> {
        self.conn.message_header(MessageKind::Binary, 0)
    }
}

/// Whether a driver lingers after failing with `error` (see
/// [`Session::step`]): after failures that sent a Close to a peer that
/// still answers, not after a pong timeout (the peer is presumed gone).
pub(crate) const fn lingers(error: Error) -> bool {
    matches!(error, Error::Protocol(_) | Error::FragmentTimeout)
}

/// `header` (from [`Session::reply_header`]) for a reply of `kind` with
/// `len` bytes of payload.
pub(crate) fn reply_header(header: FrameHeader, kind: MessageKind, len: usize) -> FrameHeader {
    FrameHeader {
        opcode: kind.opcode(),
        payload_len: len as u64,
        ..header
    }
}

/// A frame on its way out: the header, then the payload, both through the
/// output (masked there when the header carries a key), in as many pieces
/// as it takes; a small frame is one piece. Every frame a driver sends
/// that is not a control frame of the connection's takes this one path.
pub(crate) struct FrameWrite<'p> {
    header: FrameHeader,
    /// Whether the header is still to be written.
    fresh: bool,
    rest: &'p [u8],
    offset: usize,
}

impl<'p> FrameWrite<'p> {
    pub(crate) fn new<S: Side>(side: S, header: FrameHeader, payload: &'p [u8]) -> Self {
        // Only a client masks: with a side fixed when compiling, the other
        // side's code is not linked.
        let mask = match side.role() {
            Role::Client => header.mask,
            Role::Server => None,
        };
        Self {
            header: FrameHeader { mask, ..header },
            fresh: true,
            rest: payload,
            offset: 0,
        }
    }

    /// For an unmasked frame larger than the room in `output`: puts the
    /// header alone there and returns the payload, for the driver to write
    /// straight from where it lies after the header goes out (rather than
    /// copied through the output). `None` (nothing done) for a masked frame,
    /// one that fits, one already started, or no room for the header.
    #[cfg(not(target_os = "none"))]
    pub(crate) fn header_only(&mut self, output: &mut Output<'_>) -> Option<&'p [u8]> {
        let fits = self.header.encoded_len() + self.rest.len() <= output.room();
        if !self.fresh || self.header.mask.is_some() || fits {
            return None;
        }
        let end = output.end;
        let room = output.buf.get_mut(end..).unwrap_or_default();
        let filled = self.header.encode(room).ok()?;
        output.end = end + filled;
        self.fresh = false;
        Some(core::mem::take(&mut self.rest))
    }

    /// Puts the next piece after what waits in `output` and returns
    /// `true`, or `false` when the whole frame has been handed out.
    pub(crate) fn next_piece(
        &mut self,
        output: &mut Output<'_>,
    ) -> Result<bool, InsufficientSizeError> {
        let end = output.end;
        let room = output.buf.get_mut(end..).unwrap_or_default();
        let mut filled = 0;
        if self.fresh {
            self.fresh = false;
            filled = self.header.encode(room)?;
        } else if self.rest.is_empty() {
            return Ok(false);
        }
        let room = room.get_mut(filled..).unwrap_or_default();
        let take = room.len().min(self.rest.len());
        let (piece, after) = self.rest.split_at(take);
        if let Some(room) = room.get_mut(..take) {
            room.copy_from_slice(piece);
            if let Some(key) = self.header.mask {
                apply_mask(room, key, self.offset);
            }
        }
        self.rest = after;
        self.offset += take;
        output.end = end + filled + take;
        Ok(true)
    }
}

/// The data message named by `(text, payload)`: binary, or text assembled
/// in the message buffer (validated as it arrived). Text that arrived
/// whole in the input must go through [`Session::input_text`] first, which
/// fails the connection when it is not UTF-8; were it to come here, it
/// would be checked again and read as empty text if invalid.
pub(crate) fn message<'a, B: MessageBuffer, R: RngCore, S: Side>(
    conn: &'a Connection<B, R, S>,
    input: &'a Input<'_>,
    base: usize,
    text: bool,
    payload: Payload,
) -> Message<'a> {
    let bytes = conn.payload(&payload, input.from(base));
    if text {
        Message::Text(core::str::from_utf8(bytes).unwrap_or_default())
    } else {
        Message::Binary(bytes)
    }
}

/// The data message named by `(text, payload)`, for a caller that does
/// not lend it out (the message borrows the connection): text is checked
/// as UTF-8 here, which for text that arrived whole in the input is its one
/// pass (text assembled in the message buffer was checked as it arrived).
/// `None`: the text is not UTF-8; see [`Session::invalid_text`].
pub(crate) fn checked_message<'a, B: MessageBuffer, R: RngCore, S: Side>(
    conn: &'a Connection<B, R, S>,
    input: &'a Input<'_>,
    base: usize,
    text: bool,
    payload: Payload,
) -> Option<Message<'a>> {
    let bytes = conn.payload(&payload, input.from(base));
    if text {
        core::str::from_utf8(bytes).ok().map(Message::Text)
    } else {
        Some(Message::Binary(bytes))
    }
}

/// The kind and bytes of a message to send.
pub(crate) fn message_parts<'m>(message: Message<'m>) -> (MessageKind, &'m [u8]) {
    match message {
        Message::Text(text) => (MessageKind::Text, text.as_bytes()),
        Message::Binary(bytes) => (MessageKind::Binary, bytes),
    }
}

/// A data message as the read loop found it: whether it is text, where its
/// payload is, and the base its input ranges index.
pub(crate) type Data = (bool, Payload, usize);

/// What a message read makes of an event: a data message, the peer's
/// Close (`None`), or a control frame to read past (`Some(None)`).
pub(crate) const fn data(event: UnborrowedEvent, base: usize) -> Option<Option<Data>> {
    match event {
        UnborrowedEvent::Ping(_) | UnborrowedEvent::Pong(_) => Some(None),
        UnborrowedEvent::Close(_) => None,
        UnborrowedEvent::Text(payload) => Some(Some((true, payload, base))),
        UnborrowedEvent::Binary(payload) => Some(Some((false, payload, base))),
    }
}
