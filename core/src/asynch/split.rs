//! [`Reader`] and [`Writer`]: the async driver in two halves, for two
//! tasks (see [`WebSocket::split`]).
//!
//! The halves share the connection through a [`Lock`] (a `RefCell` on a
//! single-threaded executor such as embassy's; a `std::sync::Mutex`,
//! perhaps in an `Arc`, across threads), held only for short synchronous
//! steps, never across an `.await`. The write half of the transport is
//! shared too, with the write buffer, taken by whichever half writes (the
//! reader writes pongs, heartbeat pings and close replies; the writer
//! writes what it is asked): a frame is always written whole before the
//! other half may write, and what a cancelled write left in the buffer
//! goes out first, whoever writes next.
//!
//! A send waits only for control frames the reader is writing, never for
//! a read. Nor does a read wait for the writer: a reply that cannot be
//! written yet (the writer half is in the middle of a frame, or the peer
//! does not read what we write) stays queued in the connection, which
//! keeps the Pong to the latest Ping only, and the reader reads on and
//! hands out events meanwhile (a Ping's event may come before its Pong
//! has gone out). Had it waited, two peers that both send a large message
//! and read only once it is out would wait for each other forever as soon
//! as a Ping arrived. The queued frames go out as soon as the transport is
//! free: the writer half writes them right after each of its frames (a
//! writer that sends again at once would otherwise take the transport
//! before the reader, woken by its release, gets to run), and the reader,
//! while it waits for input, also waits for the transport and writes them
//! when it gets it. Only the end waits for the writer without reading:
//! the reply to the peer's Close goes out before the reader hands out the
//! Close, a failure's Close before the failure.
//!
//! The heartbeat runs in the reader: while it waits for input it races
//! the next deadline, so pings go out and a silent peer is closed with
//! 1001 "pong timeout" even when the writer is idle. A Ping that waits
//! behind the writer's frame cannot be answered yet: meanwhile the peer is
//! judged by its progress on that frame (it must take some of our bytes
//! in each pong timeout; [`crate::Connection::heartbeat_held`]), and its
//! Pong's timeout counts from when the Ping goes out.
//!
//! A peer that takes nothing at all cannot hold either half: the end (a
//! failure's Close, the reply to the peer's Close) waits at most the close
//! timeout for the transport and for its write. Past that the connection
//! is given up without its Close: a write of the writer's in progress is
//! dropped, and both halves return the failure (or
//! [`Error::CloseTimeout`]), also to later calls. Drop the transport then.

#[cfg(feature = "std")]
extern crate std;

use core::cell::RefCell;
use core::future::{pending, poll_fn, Future};
use core::ops::Deref;
use core::task::{Poll, Waker};

use embedded_io_async::{Error as _, Read, Write};
use rand_core::RngCore;

use super::websocket::{is_tick, transmit, write_frame, WebSocket};
use super::{race, until, Clock, Either};
use crate::buffer::MessageBuffer;
use crate::close::CloseCode;
use crate::connection::{Error, Event, MessageKind, Payload, Side, UnborrowedEvent};
use crate::driver::{DriverError, Message};
use crate::frame::FrameHeader;
#[cfg(feature = "deflate")]
use crate::session::DeflateSend;
use crate::session::{self, FrameWrite, Input, Output, Session, Step};
use crate::time::Instant;

mod writer;

/// A lock around the state the halves share. It is held only for short,
/// synchronous steps (never across an `.await`, never re-entered).
pub trait Lock {
    /// What it guards.
    type Target;

    /// Runs `f` with the guarded value.
    fn with<T>(&self, f: impl FnOnce(&mut Self::Target) -> T) -> T;
}

/// For halves on one thread (embassy, a tokio `LocalSet`, one task that
/// joins both).
impl<X> Lock for RefCell<X> {
    type Target = X;

    fn with<T>(&self, f: impl FnOnce(&mut X) -> T) -> T {
        f(&mut self.borrow_mut())
    }
}

/// For halves on different threads (feature `std`).
#[cfg(feature = "std")]
impl<X> Lock for std::sync::Mutex<X> {
    type Target = X;

    fn with<T>(&self, f: impl FnOnce(&mut X) -> T) -> T {
        // A panic in another holder cannot leave the state half changed:
        // every step under the lock is the connection's own.
        let mut guard = self
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

/// What the halves share: the connection, and the transport's write half
/// with the write buffer while no half is writing. Put it in a [`Lock`]
/// and give that to [`ReadHalf::with`].
pub struct Shared<'buf, W, B, R, S> {
    session: Session<B, R, S>,
    writer: Option<(W, Output<'buf>)>,
    /// The halves waiting for the writer: the reader's, the writer's.
    waiting: [Option<Waker>; 2],
    /// When the peer last took bytes of the writer half's frames: while a
    /// heartbeat Ping waits behind one, its Pong's deadline runs from here
    /// ([`crate::Connection::heartbeat_held`]).
    progress: Instant,
    /// The reader gave the connection up (its end could not be written
    /// within the close timeout): why, for both halves.
    abandoned: Option<Error>,
    /// The writer half, in the middle of a write, waiting to hear that.
    watching: Option<Waker>,
}

const READER: usize = 0;
const WRITER: usize = 1;

impl<W, B: MessageBuffer, R: RngCore, S: Side> Shared<'_, W, B, R, S> {
    /// Whether the reader has something to write: control frames queued
    /// in the connection, or what a cancelled write left in the buffer
    /// (while a half holds the transport, that half writes it).
    fn queued(&self) -> bool {
        let left = self
            .writer
            .as_ref()
            .is_some_and(|(_, output)| !output.is_empty());
        self.session.conn.wants_transmit() || left
    }
}

/// The reading half before it is joined to the shared state (see
/// [`WebSocket::split`]).
pub struct ReadHalf<'buf, Rd, C> {
    io: Rd,
    input: Input<'buf>,
    clock: C,
    /// permessage-deflate's sending half, for the writer.
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateSend>,
}

impl<'buf, Rd, C: Clone> ReadHalf<'buf, Rd, C> {
    /// The two halves over `shared` (a reference to, or an `Arc` of, the
    /// lock around the [`Shared`] state).
    pub fn with<P: Clone>(self, shared: P) -> (Reader<'buf, Rd, C, P>, Writer<C, P>) {
        let writer = Writer {
            clock: self.clock.clone(),
            shared: shared.clone(),
            #[cfg(feature = "deflate")]
            deflate: self.deflate,
        };
        let reader = Reader {
            io: self.io,
            input: self.input,
            clock: self.clock,
            shared,
        };
        (reader, writer)
    }
}

impl<'buf, T, B, R, C, S> WebSocket<'buf, T, B, R, C, S>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
    S: Side,
{
    /// Splits the driver for two tasks: `split_io` splits the transport
    /// into its read and write halves (tokio's `into_split`, embassy-net's
    /// `TcpSocket::split`). The write buffer goes with the transport's
    /// write half: the writer's frames and the reader's control frames
    /// take turns in it.
    ///
    /// ```ignore
    /// let (read_half, shared) = ws.split(|io| io.split()).await?;
    /// let shared = RefCell::new(shared);
    /// let (mut reader, mut writer) = read_half.with(&shared);
    /// ```
    #[allow(clippy::type_complexity)]
    pub async fn split<Rd, W>(
        mut self,
        split_io: impl FnOnce(T) -> (Rd, W),
    ) -> Result<(ReadHalf<'buf, Rd, C>, Shared<'buf, W, B, R, S>), DriverError<T::Error>> {
        // Replies that wait (see `respond`) or the rest of a cancelled
        // write go out first.
        transmit(&mut self.io, &mut self.output).await?;
        let Self {
            io,
            session,
            clock,
            input,
            output,
            #[cfg(feature = "deflate")]
            deflate,
        } = self;
        let progress = clock.now();
        let (rd, wr) = split_io(io);
        let half = ReadHalf {
            io: rd,
            input,
            clock,
            #[cfg(feature = "deflate")]
            deflate,
        };
        let shared = Shared {
            progress,
            session,
            writer: Some((wr, output)),
            waiting: [None, None],
            abandoned: None,
            watching: None,
        };
        Ok((half, shared))
    }
}

/// The write half of the transport with the writer's buffer, taken from
/// the shared state by one half; given back when dropped (also when the
/// future holding it is cancelled).
struct Taken<'l, 'buf, L, W, B, R, S>
where
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
{
    lock: &'l L,
    taken: Option<(W, Output<'buf>)>,
    /// A data frame is part written: if this is dropped before it is whole,
    /// the connection cannot go on.
    torn: bool,
}

impl<'buf, L, W, B, R, S> Taken<'_, 'buf, L, W, B, R, S>
where
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
{
    /// Waits until no other half writes, then takes the writer.
    async fn take(lock: &L, who: usize) -> Taken<'_, 'buf, L, W, B, R, S> {
        let taken = poll_fn(|cx| {
            lock.with(|shared| match shared.writer.take() {
                Some(writer) => Poll::Ready(writer),
                None => {
                    if let Some(slot) = shared.waiting.get_mut(who) {
                        *slot = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            })
        })
        .await;
        Taken {
            lock,
            taken: Some(taken),
            torn: false,
        }
    }
}

impl<'buf, L, W, B, R, S> Drop for Taken<'_, 'buf, L, W, B, R, S>
where
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
{
    fn drop(&mut self) {
        let wakers = self.lock.with(|shared| {
            if let Some(writer) = self.taken.take() {
                shared.writer = Some(writer);
            }
            if self.torn {
                shared.session.torn = true;
            }
            [shared.waiting[READER].take(), shared.waiting[WRITER].take()]
        });
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// The reading half: reads events, answers pings, runs the heartbeat.
///
/// A heartbeat Ping that waits behind the [`Writer`]'s frame has its
/// Pong's timeout counted from when it goes out; meanwhile the peer must
/// take some of that frame in each pong timeout
/// ([`Connection::heartbeat_held`](crate::Connection::heartbeat_held)),
/// else the connection fails with 1001 "pong timeout". The end (a
/// failure's Close, the reply to the peer's Close) waits at most the close
/// timeout for the transport and its write: past that the connection is
/// given up without its Close, a write of the writer's in progress is
/// dropped, and both halves return the failure (or
/// [`Error::CloseTimeout`](crate::Error::CloseTimeout)), also to later
/// calls. Drop the transport then.
pub struct Reader<'buf, Rd, C, P> {
    io: Rd,
    input: Input<'buf>,
    clock: C,
    shared: P,
}

/// The writing half: sends messages, fragments, pings and the Close
/// (and, with permessage-deflate, compresses: see the [module](super)
/// docs).
pub struct Writer<C, P> {
    clock: C,
    shared: P,
    /// permessage-deflate's sending half, once agreed.
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateSend>,
}

impl<'buf, Rd, C, P, L, W, B, R, S> Reader<'buf, Rd, C, P>
where
    Rd: Read,
    W: Write<Error = Rd::Error>,
    C: Clock,
    P: Deref<Target = L>,
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
{
    /// Waits for the next event and hands it to `f` (which runs under the
    /// lock: keep it short). Pings are answered and heartbeat pings sent
    /// on the way, without waiting for the [`Writer`]: a frame that cannot
    /// be written yet, while the writer is in the middle of one, stays
    /// queued and goes out right after it (or, with the writer idle, while
    /// this waits for input), so a Ping's event may come before its Pong
    /// has gone out. The peer's Close comes only once its reply is out.
    /// Cancel-safe as [`WebSocket::read`].
    pub async fn read<T>(
        &mut self,
        f: impl FnOnce(Event<'_>) -> T,
    ) -> Result<T, DriverError<Rd::Error>> {
        let (raw, base) = self.next_raw().await?;
        let input = &self.input;
        let result = self.shared.with(|shared| {
            if let UnborrowedEvent::Text(Payload::Input(range)) = &raw {
                let text = shared.session.input_text(input, base, range.clone())?;
                return Ok(f(Event::Text(text)));
            }
            shared.session.conn.event(raw, input.from(base)).map(f)
        });
        match result {
            Ok(value) => Ok(value),
            Err(_) => Err(self.fail_now().await),
        }
    }

    /// Waits for the next text or binary message and hands it to `f`
    /// (under the lock); `Ok(None)` when the peer closed the connection.
    pub async fn read_message<T>(
        &mut self,
        f: impl FnOnce(Message<'_>) -> T,
    ) -> Result<Option<T>, DriverError<Rd::Error>> {
        let (text, payload, base) = loop {
            let (event, base) = self.next_raw().await?;
            match session::data(event, base) {
                Some(None) => {}
                Some(Some(data)) => break data,
                None => return Ok(None),
            }
        };
        let input = &self.input;
        let result: Result<T, Error> = self.shared.with(|shared| {
            if let (true, Payload::Input(range)) = (text, &payload) {
                let text = shared.session.input_text(input, base, range.clone())?;
                return Ok(f(Message::Text(text)));
            }
            let conn = &shared.session.conn;
            Ok(f(session::message(conn, input, base, text, payload)))
        });
        match result {
            Ok(value) => Ok(Some(value)),
            Err(_) => Err(self.fail_now().await),
        }
    }

    /// Does what the session asks until it yields an event: reads (racing
    /// the next deadline, and writing what is queued once the transport is
    /// free), and at the end waits for the transport to write the last
    /// frames.
    async fn next_raw(&mut self) -> Result<(UnborrowedEvent, usize), DriverError<Rd::Error>> {
        let lock = &*self.shared;
        // The last read showed the transport held no more input: it was
        // read through as of the next look at the clock (see
        // `Session::read_through`).
        let mut through = false;
        loop {
            let now = self.clock.now();
            let input = &mut self.input;
            let read_through = core::mem::take(&mut through);
            let (step, deadline, queued) = lock.with(|shared| {
                if let Some(error) = shared.abandoned {
                    return (Step::Failed(error), None, false);
                }
                if read_through {
                    shared.session.read_through(now);
                }
                // The writer half holds the transport: a heartbeat Ping
                // waits behind its frame, and the peer is judged by its
                // progress on that frame.
                if shared.writer.is_none() {
                    shared.session.conn.heartbeat_held(shared.progress);
                }
                let step = shared.session.step_held(input, now);
                (step, shared.session.deadline(), shared.queued())
            });
            let step = match step {
                Step::Transmit => match self.with_writer().await {
                    Ok(Some(step)) => step,
                    Ok(None) => continue,
                    Err(e) => return Err(e),
                },
                step => step,
            };
            match step {
                Step::Read => {
                    let room = self.input.room();
                    let read = until(&self.clock, deadline, self.io.read(room));
                    through = match race(read, write_queued(lock, &self.clock, queued)).await {
                        Either::First(Some(Ok(0))) => return Err(lock.with(|s| s.session.eof())),
                        // Not read through even if short: only a read that
                        // loses its race to the deadline shows that (see
                        // `asynch::websocket::short_read_is_through`).
                        Either::First(Some(Ok(n))) => {
                            self.input.filled(n);
                            false
                        }
                        Either::First(Some(Err(e))) if is_tick(e.kind()) => true,
                        Either::First(Some(Err(e))) => return Err(DriverError::Io(e)),
                        // A deadline came first.
                        Either::First(None) => true,
                        // What was queued is out.
                        Either::Second(Ok(())) => false,
                        Either::Second(Err(e)) => {
                            return Err(lock.with(|s| s.session.write_failed(e)))
                        }
                    };
                }
                Step::Event(event, base) => return Ok((event, base)),
                Step::Failed(e) => {
                    self.linger(e).await;
                    return Err(DriverError::Connection(e));
                }
                Step::Transmit => {}
            }
        }
    }

    /// After the failure `error`, whose Close went out: reads past what the
    /// peer still sends until its Close, its EOF or the close timeout
    /// ([`Connection::handle_linger`](crate::Connection::handle_linger)), as
    /// the one-value driver does, so that dropping the transport does not
    /// reset the connection with our Close unread. Not after a pong timeout.
    async fn linger(&mut self, error: Error) {
        if !session::lingers(error) {
            return;
        }
        let lock = &*self.shared;
        loop {
            let now = self.clock.now();
            let input = &mut self.input;
            let (more, deadline) = lock.with(|shared| {
                let conn = &mut shared.session.conn;
                (conn.handle_linger(input.take(), now), conn.poll_timeout())
            });
            if !more {
                return;
            }
            match until(&self.clock, deadline, self.io.read(self.input.room())).await {
                Some(Ok(n)) if n > 0 => self.input.filled(n),
                // A tick, or the deadline (the next turn sees it).
                Some(Err(e)) if is_tick(e.kind()) => {}
                None => {}
                // EOF, or a failed transport.
                _ => return,
            }
        }
    }

    /// Takes the transport (waiting, without reading, for the writer's
    /// frame) and steps the session with it until it has written what
    /// must go before the end: the next step, or `None` to step on.
    ///
    /// Within the close timeout: a peer that takes nothing of ours (the
    /// writer half stuck in the middle of a frame to it, or our Close
    /// stuck behind what it left unread) cannot hold the end. Then the
    /// connection is given up without its Close: the writer half's write
    /// is dropped (its sends fail with the same error) and the failure, or
    /// [`Error::CloseTimeout`], is returned.
    async fn with_writer(&self) -> Result<Option<Step>, DriverError<Rd::Error>> {
        let lock = &*self.shared;
        let timeout = lock.with(|shared| shared.session.conn.config().close_timeout);
        let give_up = self.clock.now() + timeout;
        match until(&self.clock, Some(give_up), self.write_end()).await {
            Some(step) => step,
            None => Err(DriverError::Connection(self.abandon())),
        }
    }

    /// Gives the connection up (see [`Reader::with_writer`]): the error.
    fn abandon(&self) -> Error {
        let (error, watching) = self.shared.with(|shared| {
            let error = shared.session.failure.take().unwrap_or(Error::CloseTimeout);
            shared.session.conn.abort();
            shared.abandoned = Some(error);
            (error, shared.watching.take())
        });
        if let Some(waker) = watching {
            waker.wake();
        }
        error
    }

    /// [`Reader::with_writer`] without its time limit.
    async fn write_end(&self) -> Result<Option<Step>, DriverError<Rd::Error>> {
        let lock = &*self.shared;
        let mut taken = Taken::take(lock, READER).await;
        let Some((io, output)) = taken.taken.as_mut() else {
            return Ok(None);
        };
        loop {
            match lock.with(|shared| shared.session.pending(output, false)) {
                Some(Step::Transmit) => {
                    if let Err(e) = transmit(io, output).await {
                        return Err(lock.with(|shared| shared.session.write_failed(e)));
                    }
                }
                step => return Ok(step),
            }
        }
    }

    /// The connection failed (its Close is queued): writes the Close,
    /// lingers and returns the failure.
    async fn fail_now(&mut self) -> DriverError<Rd::Error> {
        match self.with_writer().await {
            Ok(Some(Step::Failed(e))) => {
                self.linger(e).await;
                DriverError::Connection(e)
            }
            Err(e) => e,
            Ok(_) => DriverError::Connection(Error::Closed),
        }
    }
}

/// Writes the control frames queued in the connection after what waits
/// in `output`, until none is left (the writer half, which holds the
/// transport).
async fn write_controls<'buf, L, W, B, R, S, T>(
    lock: &L,
    clock: &impl Clock,
    io: &mut T,
    output: &mut Output<'buf>,
) -> Result<(), DriverError<T::Error>>
where
    T: Write,
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
{
    loop {
        // A heartbeat Ping queued while the other half's frame was being
        // written goes out now: its Pong's deadline counts from here.
        lock.with(|shared| shared.session.queue_controls_at(output, || clock.now()));
        if output.is_empty() {
            return Ok(());
        }
        transmit(io, output).await?;
    }
}

/// For the reader: waits until the transport is free, then writes what
/// is `queued` (never completes when nothing is). Each write that
/// completes is recorded, so the reader may drop this when input comes
/// first: the transport goes back with the rest in its buffer, to be
/// written first by whichever half takes it next.
async fn write_queued<'buf, L, W, B, R, S>(
    lock: &L,
    clock: &impl Clock,
    queued: bool,
) -> Result<(), DriverError<W::Error>>
where
    W: Write,
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
{
    if !queued {
        return pending().await;
    }
    let mut taken = Taken::take(lock, READER).await;
    let Some((io, output)) = taken.taken.as_mut() else {
        return pending().await;
    };
    // After a data frame left part written, nothing may follow it: the
    // next step fails the connection.
    if lock.with(|shared| shared.session.torn) {
        return Ok(());
    }
    transmit(io, output).await?;
    write_controls(lock, clock, io, output).await
}
