//! The sans-I/O WebSocket connection: bytes and time in, events and bytes out.
//!
//! See the [crate documentation](crate) for the call order.

use core::fmt;

use rand_core::RngCore;

use crate::buffer::MessageBuffer;
use crate::close::{self, CloseCode};
use crate::error::{InsufficientSizeError, ProtocolError};
use crate::frame::{encode_frame, saturating_usize, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use crate::mask::apply_mask;
use crate::time::Instant;
use crate::timer::{Timer, TimerTable};

pub use crate::config::Config;
pub use crate::event::{CloseFrame, Event, MessageKind, Payload, UnborrowedEvent};
pub use crate::role::{ClientSide, Role, ServerSide, Side};
pub use errors::{Error, SendError};

/// A sans-I/O WebSocket connection (after the opening handshake).
///
/// The connection does no I/O and reads no clock: bytes and the time go in,
/// events and bytes come out. Its methods are of four kinds (grouped so in
/// the source and in these docs, as quinn-proto groups its `Connection`'s):
///
/// - **Getters**, taking `&self`, callable at any time: [`role`](Self::role),
///   [`is_open`](Self::is_open), [`is_closed`](Self::is_closed),
///   [`failure`](Self::failure), [`wants_transmit`](Self::wants_transmit),
///   [`frame_len`](Self::frame_len), …
/// - **Inputs**, named `handle_*`: bytes from the peer
///   ([`handle_read`](Self::handle_read), or
///   [`handle_read_unborrowed`](Self::handle_read_unborrowed) and later
///   [`event`](Self::event), for a caller that must drop a borrow or a lock
///   in between) and the clock ([`handle_timeout`](Self::handle_timeout)).
/// - **Commands** from the application: [`send`](Self::send) and its
///   variants, [`ping`](Self::ping), [`close`](Self::close),
///   [`fail`](Self::fail), [`abort`](Self::abort). Data frames are written
///   straight into the caller's buffer; a Close is queued.
/// - **Outputs**, named `poll_*`: [`poll_transmit`](Self::poll_transmit)
///   (or [`poll_transmit_with`](Self::poll_transmit_with)) hands out the
///   queued control frames (Pongs, heartbeat Pings, the Close; a caller
///   that writes a handed-out Ping later says when with
///   [`heartbeat_sent`](Self::heartbeat_sent), one whose Ping waits behind
///   a frame the peer is slow to take says how it progresses with
///   [`heartbeat_held`](Self::heartbeat_held)), and
///   [`poll_timeout`](Self::poll_timeout) says when
///   [`handle_timeout`](Self::handle_timeout) is due next.
///
/// # Call order
///
/// Call inputs and commands as things happen. Feed received bytes to
/// `handle_read` in a loop, each time with the unconsumed rest, until it
/// returns no event, handling each event on the way. After every input or
/// command, call the outputs, in this order:
///
/// 1. [`poll_transmit`](Self::poll_transmit) until it returns 0, writing
///    what it gives to the peer;
/// 2. [`poll_timeout`](Self::poll_timeout), and arrange to call
///    [`handle_timeout`](Self::handle_timeout) at that instant (an input or
///    command may move it: a heartbeat Ping sent, a fragmented message
///    begun, a Close sent or received).
///
/// When [`is_closed`](Self::is_closed) is true, the last frame has been
/// handed out: close the transport.
///
/// # Time
///
/// Every `now` comes from one monotonic clock, and time must not go
/// backwards: give each call a `now` no earlier than the one before. If it
/// does go backwards, nothing panics and no error results, but the timers
/// take each instant as given: a deadline already set fires only once
/// `now` reaches it again, and a deadline set by that call (the next
/// heartbeat, a fragment or close timeout) counts from the earlier `now`,
/// so it comes sooner than intended. Instants saturate at the end of the
/// clock rather than wrapping.
///
/// `B` is the storage for messages that do not arrive in one piece; `R`
/// supplies client masking keys and heartbeat payloads; `S` is the
/// [`Side`].
pub struct Connection<B, R, S = Role> {
    side: S,
    config: Config,
    rng: R,
    state: State,
    rx: Rx,
    /// The fragmented (or partially received) data message being assembled.
    message: Option<Assembly>,
    message_buf: B,
    /// How many bytes of the text message in `message_buf` are known to
    /// be UTF-8 (all but an incomplete character at the end, if any).
    utf8_checked: usize,
    /// Every deadline: heartbeat, Pong, fragmented message, close.
    timers: TimerTable,
    /// The payload of our last heartbeat Ping: while [`Timer::Pong`] runs,
    /// the Pong that stops it.
    heartbeat: [u8; 4],
    /// Control frames waiting for `poll_transmit`, sent in this order (the
    /// Ping's payload is `heartbeat`).
    pending_pong: Option<QueuedPayload>,
    pending_ping: bool,
    pending_close: Option<QueuedPayload>,
    /// Whether we are sending a fragmented message.
    sending_fragmented: bool,
    /// permessage-deflate, once enabled (boxed: a pointer while off).
    #[cfg(feature = "deflate")]
    deflate: Option<alloc::boxed::Box<crate::deflate::Deflate>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// Our Close is queued or sent; waiting for the peer's until
    /// [`Timer::Close`] expires.
    CloseSent,
    /// The peer's Close arrived; our reply is queued.
    Replying,
    /// We failed the connection; our Close is queued.
    Failing(Error),
    /// We failed the connection after our Close had gone out, or with an
    /// error that sends none: closed, as `Closed`, remembering why.
    Failed(Error),
    /// Nothing more will be sent or received.
    Closed,
}

/// A control frame's payload (at most 125 bytes: a one-byte length).
#[cfg(not(feature = "alloc"))]
type ControlPayload = heapless::Vec<u8, MAX_CONTROL_PAYLOAD, u8>;

/// A queued control frame's payload: a Pong's, or a Close's code and
/// reason. Inline without an allocator; with one (feature `alloc`) on the
/// heap, and only while it is queued: every connection then carries two
/// pointers rather than twice 126 bytes (a server holding many idle
/// connections pays for each byte here).
#[cfg(not(feature = "alloc"))]
type QueuedPayload = ControlPayload;
#[cfg(feature = "alloc")]
type QueuedPayload = alloc::boxed::Box<[u8]>;

/// `head` then `tail` (together at most 125 bytes) as a queued payload,
/// where there is an allocator (without one it is filled in place).
#[cfg(feature = "alloc")]
fn queued(head: &[u8], tail: &[u8]) -> QueuedPayload {
    [head, tail].concat().into_boxed_slice()
}

/// Why an internal step stopped. The error itself is kept in the state
/// rather than returned through every layer: `Stop` fits in a register, an
/// [`Error`] does not (on a 32-bit target each layer would copy it).
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// The step failed the connection: the error is in `state`.
    Failed,
    /// The connection had already failed: [`Error::Closed`].
    Closed,
}

#[derive(Clone, Copy, Debug)]
enum Rx {
    /// Waiting for a frame header.
    Header,
    /// Inside a frame's payload.
    Payload {
        frame: Frame,
        /// Payload bytes not yet received. A `usize`: the header passed
        /// the frame-size limit (a `usize`), or is a control frame.
        remaining: usize,
        /// Payload bytes already received (the masking offset).
        received: usize,
    },
    /// The peer's Close has arrived: any further bytes are discarded.
    Done,
    /// The connection failed: what the peer still sends is read past,
    /// frame by frame, to its Close ([`Connection::handle_linger`]). The
    /// next frame header starts `remaining` bytes on (counted from the
    /// start of the input of the read that failed, which consumed none of
    /// it, or else from the next byte).
    Skip {
        /// Bytes before the next frame header.
        remaining: usize,
    },
    /// As `Skip`, inside a frame header, read a byte at a time (it may come
    /// cut short): what of it is known so far. Each header is taken at its
    /// word, whatever it breaks (a reserved opcode, a long control frame:
    /// the failure may have been that very header), as long as its length
    /// can be read.
    SkipHeader {
        /// Its bytes read so far.
        read: u8,
        /// Its opcode is Close.
        close: bool,
        /// A masking key follows the length.
        masked: bool,
        /// Extended length bytes (0, 2 or 8), once the second byte is read.
        extended: u8,
        /// The payload length read so far.
        len: u64,
    },
}

/// What the payload loop needs of a frame's header.
#[derive(Clone, Copy, Debug)]
struct Frame {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    /// A data frame of a text message (decided once, by `check_header`).
    text: bool,
}

/// A fragmented message being received (its deadline is [`Timer::Fragment`]).
#[derive(Clone, Copy, Debug)]
struct Assembly {
    kind: MessageKind,
    fragments: u32,
}

/// Construction and getters: what can be read at any time, in any state.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// A connection in `role` (a [`Role`], or a [`Side`] fixed when
    /// compiling), open since `now` (the first heartbeat Ping is
    /// due one interval later).
    pub fn new(role: S, config: Config, message_buf: B, rng: R, now: Instant) -> Self {
        let mut conn = Self {
            side: role,
            config,
            rng,
            state: State::Open,
            rx: Rx::Header,
            message: None,
            message_buf,
            utf8_checked: 0,
            timers: TimerTable::new(now),
            heartbeat: [0; 4],
            pending_pong: None,
            pending_ping: false,
            pending_close: None,
            sending_fragmented: false,
            #[cfg(feature = "deflate")]
            deflate: None,
        };
        if let Some(interval) = &conn.config.ping_interval {
            conn.timers.set(Timer::Ping, now.after(interval));
        }
        conn
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.side.role()
    }

    /// This end's [`Side`]: a [`Role`], or [`ServerSide`] / [`ClientSide`]
    /// when fixed when compiling (then `side().role()` is a constant, and
    /// code that matches on it keeps only this role's branch).
    #[inline]
    pub fn side(&self) -> S {
        self.side
    }

    /// The configuration.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Whether data may still be sent (no Close sent or received, no failure).
    pub const fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// Whether the connection is over: the close handshake completed, or
    /// the connection failed (or replied to a Close) and its last frame was
    /// handed out by [`Connection::poll_transmit`]. Close the transport then.
    pub const fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed(_))
    }

    /// Whether the peer's Close has arrived: it sends nothing more (after
    /// a failure, as far as [`Connection::handle_linger`] could follow).
    pub const fn peer_closed(&self) -> bool {
        matches!(self.rx, Rx::Done)
    }

    /// Whether frames are waiting for [`Connection::poll_transmit`].
    pub const fn wants_transmit(&self) -> bool {
        self.pending_pong.is_some() || self.pending_ping || self.pending_close.is_some()
    }

    /// The failure that ended the connection, if it failed: kept after its
    /// Close went out and the connection closed, so a shell can report why.
    pub const fn failure(&self) -> Option<Error> {
        match self.state {
            State::Failing(e) | State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The effective message-size limit: the configured one, lowered to what
    /// the message buffer can hold.
    pub fn max_message_size(&self) -> usize {
        self.config.max_message_size.min(self.message_buf.max_len())
    }

    /// The number of bytes a frame with `payload_len` bytes of payload takes
    /// on the wire from this end (header, mask key, payload).
    pub fn frame_len(&self, payload_len: usize) -> usize {
        let header = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: match self.role() {
                Role::Client => Some([0; 4]),
                Role::Server => None,
            },
            payload_len: payload_len as u64,
        };
        header.encoded_len() + payload_len
    }

    /// The data frame whose payload is being received, part of it already
    /// handed to [`Connection::handle_read`]: `(still to come, whole
    /// payload length)`; `None` between frames and in control frames. A
    /// driver may read no further than its end, so that the next frame
    /// starts at the front of its read buffer and can arrive whole there
    /// (no copy into the message buffer).
    pub const fn data_frame_rest(&self) -> Option<(usize, usize)> {
        match self.rx {
            Rx::Payload {
                frame,
                remaining,
                received,
            } if !frame.opcode.is_control() => Some((remaining, received + remaining)),
            _ => None,
        }
    }

    /// The message buffer, when nothing in it is needed any more: no data
    /// frame or fragmented message is being received (the last message's
    /// payload, if it came from the buffer, has been handed out). For
    /// example, to give back a growable buffer's capacity while the
    /// connection is idle, or to take the last message out by swapping.
    /// `None` while a frame or message is being received.
    pub fn idle_message_buffer(&mut self) -> Option<&mut B> {
        match (&self.rx, &self.message) {
            (Rx::Payload { .. }, _) | (_, Some(_)) => None,
            _ => Some(&mut self.message_buf),
        }
    }
}

/// Inputs (`handle_*`): bytes from the peer (and, for the unborrowed read,
/// turning its event into an [`Event`]), and the clock. See [`Connection`]
/// for the call order and the rules on `now`.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// Feeds bytes received from the peer.
    ///
    /// Returns how many bytes of `input` were consumed and at most one event.
    /// Call again with the unconsumed rest (`&mut input[consumed..]`) until it
    /// returns no event; bytes it leaves unconsumed (an incomplete frame
    /// header, or an incomplete control frame: at most
    /// [`MAX_CONTROL_FRAME`](crate::frame::MAX_CONTROL_FRAME)` - 1` = 130
    /// bytes) must be given again, followed by newer bytes, so the buffer
    /// the input comes from must hold at least that many plus one.
    /// Payloads are unmasked in place, which is why `input` is mutable: a
    /// message that arrives whole in `input` is returned without a copy, and
    /// a control frame's payload is named in the input rather than kept.
    ///
    /// An `Err` fails the connection: the matching Close is queued for
    /// [`Connection::poll_transmit`], and calls made before it is handed out
    /// return [`Error::Closed`]. Once the connection is closed (cleanly or
    /// not), input is consumed and discarded.
    ///
    /// This is [`Connection::handle_read_unborrowed`] followed by
    /// [`Connection::event`].
    pub fn handle_read<'a>(
        &'a mut self,
        input: &'a mut [u8],
        now: Instant,
    ) -> Result<(usize, Option<Event<'a>>), Error> {
        let (consumed, event) = self.handle_read_unborrowed(input, now)?;
        match event {
            None => Ok((consumed, None)),
            Some(event) => Ok((consumed, Some(self.event(event, input)?))),
        }
    }

    /// [`Connection::handle_read`] without the borrow: the event names where
    /// its payload is ([`UnborrowedEvent`]), and [`Connection::event`] makes
    /// it an [`Event`] when the caller is ready (after dropping a lock, or
    /// with the input moved elsewhere: the range stays valid for the same
    /// bytes). The same rules apply: an `Err` failed the connection; call
    /// again with the unconsumed rest until no event comes.
    pub fn handle_read_unborrowed(
        &mut self,
        input: &mut [u8],
        now: Instant,
    ) -> Result<(usize, Option<UnborrowedEvent>), Error> {
        // Where the frames stand at the start of `input`: a failure in
        // this call consumes none of it, so what the peer still sends is
        // followed from here (see `handle_linger`).
        let resume = match self.rx {
            Rx::Payload { remaining, .. } => remaining,
            _ => 0,
        };
        self.read_raw(input, now)
            .map_err(|s| self.failed_in_read(s, resume))
    }

    /// Turns `event`, from [`Connection::handle_read_unborrowed`], into an
    /// [`Event`] borrowing its payload: from `input` (the bytes that call
    /// was given, at the same positions) or from the connection.
    ///
    /// A text message that arrived whole in the input is validated here,
    /// once (text assembled in the message buffer was validated as it
    /// arrived): invalid UTF-8 fails the connection with 1007 and returns
    /// the error, as [`Connection::handle_read`] would have. Call it before
    /// the next read: a later read may reuse the message buffer.
    pub fn event<'a>(
        &'a mut self,
        event: UnborrowedEvent,
        input: &'a [u8],
    ) -> Result<Event<'a>, Error> {
        if let UnborrowedEvent::Text(Payload::Input(range)) = &event {
            // The text borrows only `input`, so the failure may still use
            // `self`: one pass, not a check and then a conversion.
            return match core::str::from_utf8(input.get(range.clone()).unwrap_or_default()) {
                Ok(text) => Ok(Event::Text(text)),
                Err(_) => {
                    let stop = self.fail_protocol(ProtocolError::InvalidUtf8);
                    Err(self.error(stop))
                }
            };
        }
        Ok(self.materialize(event, input))
    }

    /// The bytes of a data message's `payload`, from `input` or the message
    /// buffer, as they arrived. Text from the input has not been validated
    /// yet: use [`Connection::event`] for text.
    pub fn payload<'a>(&'a self, payload: &Payload, input: &'a [u8]) -> &'a [u8] {
        match payload {
            Payload::Input(range) => input.get(range.clone()).unwrap_or_default(),
            Payload::Message => self.message_buf.as_slice(),
        }
    }

    /// Advances the timers to `now`. A heartbeat Ping that is due is queued
    /// for [`Connection::poll_transmit`]; an overdue Pong, fragmented message
    /// or close handshake fails the connection, returned as the error.
    ///
    /// Expired timers fire in a fixed order: the close handshake, the Pong,
    /// the fragmented message (each fails the connection, which stops every
    /// timer), then the heartbeat.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        // The timer table's firing order (`Timer`'s declaration order),
        // written out: one failure at most, each timer at most once.
        let expired = |timer| self.timers.is_expired(timer, now);
        let error = if expired(Timer::Close) {
            Error::CloseTimeout
        } else if expired(Timer::Pong) {
            Error::PongTimeout
        } else if expired(Timer::Fragment) {
            Error::FragmentTimeout
        } else {
            if expired(Timer::Ping) {
                self.heartbeat(now);
            }
            return Ok(());
        };
        Err(match self.fail_with(error) {
            Stop::Failed => error,
            Stop::Closed => Error::Closed,
        })
    }
}

/// The steps behind the public methods.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// The error an internal step that stopped with `stop` stands for.
    #[inline]
    fn error(&self, stop: Stop) -> Error {
        match (stop, self.state) {
            (Stop::Failed, State::Failing(e) | State::Failed(e)) => e,
            _ => Error::Closed,
        }
    }

    /// A failure in [`Connection::read_raw`] (`stop`), whose input began
    /// `resume` bytes before the next frame header: what the peer still
    /// sends is followed from there, over the frames of that input again
    /// (unless the failure was the peer's own Close).
    #[cold]
    #[inline(never)]
    fn failed_in_read(&mut self, stop: Stop, resume: usize) -> Error {
        if matches!(stop, Stop::Failed) && !matches!(self.rx, Rx::Done) {
            self.rx = Rx::Skip { remaining: resume };
        }
        self.error(stop)
    }

    /// Turns a raw event into one that borrows its payload. Text from the
    /// input must have been validated by the caller (see `handle_read`);
    /// text from the buffer was validated as it arrived.
    fn materialize<'a>(&'a self, raw: UnborrowedEvent, input: &'a [u8]) -> Event<'a> {
        let bytes = |source: Payload| self.payload(&source, input);
        match raw {
            // The incremental validator accepted every byte and the end of
            // the message, so this conversion cannot fail; the fallback only
            // keeps the code free of panics.
            UnborrowedEvent::Text(source) => {
                Event::Text(core::str::from_utf8(bytes(source)).unwrap_or_default())
            }
            UnborrowedEvent::Binary(source) => Event::Binary(bytes(source)),
            UnborrowedEvent::Ping(range) => Event::Ping(input.get(range).unwrap_or_default()),
            UnborrowedEvent::Pong(range) => Event::Pong(input.get(range).unwrap_or_default()),
            UnborrowedEvent::Close(range) => {
                let payload = input.get(range).unwrap_or_default();
                Event::Close(match close::parse_close_payload(payload) {
                    Ok(Some((code, reason))) => Some(CloseFrame { code, reason }),
                    _ => None,
                })
            }
        }
    }

    /// [`Connection::fail_with`] for a protocol error (converted here, once).
    fn fail_protocol(&mut self, error: ProtocolError) -> Stop {
        self.fail_with(Error::Protocol(error))
    }

    /// Fails the connection with `error`: queues the Close it calls for and
    /// drops everything else that was pending. The error is kept in the
    /// state ([`Connection::error`]). A connection that has already failed
    /// or closed stays as it is ([`Stop::Closed`]).
    fn fail_with(&mut self, error: Error) -> Stop {
        let already_sent_close = match self.state {
            State::Open | State::Replying => false,
            State::CloseSent => true,
            State::Failing(_) | State::Failed(_) | State::Closed => return Stop::Closed,
        };
        self.pending_pong = None;
        self.pending_ping = false;
        self.message = None;
        self.timers.stop_all();
        // What the peer still sends is followed from the end of the frame
        // under way (see `handle_linger`; a failure inside `read_raw`
        // says where that is in its input).
        self.rx = match self.rx {
            Rx::Payload { remaining, .. } => Rx::Skip { remaining },
            Rx::Done => Rx::Done,
            _ => Rx::Skip { remaining: 0 },
        };
        match (error.close_code(), already_sent_close) {
            (Some(code), false) => {
                // Empty without the `reasons` feature.
                let reason: &[u8] = match error {
                    _ if !cfg!(feature = "reasons") => b"",
                    Error::Protocol(e) => e.reason_bytes(),
                    Error::PongTimeout => b"pong timeout",
                    Error::FragmentTimeout => b"fragment timeout",
                    Error::CloseTimeout | Error::Closed => b"",
                };
                self.queue_close(code, reason);
                self.state = State::Failing(error);
            }
            _ => {
                self.pending_close = None;
                self.state = State::Failed(error);
            }
        }
        Stop::Failed
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(SendError::Closed),
        }
    }

    /// A frame header from this end, with a fresh masking key for a client.
    fn header(&mut self, opcode: OpCode, fin: bool, payload_len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            mask: self.mask_key(),
            payload_len: payload_len as u64,
        }
    }

    /// A fresh masking key for a client, none for a server.
    fn mask_key(&mut self) -> Option<[u8; 4]> {
        match self.role() {
            // As for the heartbeat payload: `next_u32`, not `fill_bytes`.
            Role::Client => Some(self.rng.next_u32().to_le_bytes()),
            Role::Server => None,
        }
    }
}

impl<B, R, S: Side> fmt::Debug for Connection<B, R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.side.role())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

mod commands;
#[cfg(feature = "deflate")]
mod deflate;
mod errors;
mod linger;
mod receive;
mod transmit;

#[cfg(test)]
mod linger_tests;
#[cfg(test)]
mod tests;
