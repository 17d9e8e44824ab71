//! [`ConnectionHandle`]: what the application holds to send on a connection
//! from any thread, and the per-connection state it shares with the event
//! loop that owns the connection.
//!
//! A send never waits. It encodes the frame (with the core's one frame
//! encoder) into the connection's outbox under a short lock. A send from
//! the connection's own callback while its loop feeds it input needs no
//! more: the loop writes the outbox when the callback returns. Any other
//! send tells the owning loop there is output through the loop's inbox
//! (once until the loop takes it), waking the loop when the sender is
//! another thread. The loop writes the outbox when the socket takes it.
//! The outbox is bounded ([`ServerConfig::max_buffered_bytes`]): a send that
//! would pass the bound returns [`SendError::Full`] and queues nothing; so
//! are all outboxes together ([`ServerConfig::output_budget`],
//! [`SendError::OverBudget`]). Each outbox keeps what it holds charged to
//! the server's output budget: the senders as they queue, the loop as it
//! writes (and at the end).
//!
//! [`ServerConfig::max_buffered_bytes`]: crate::ServerConfig::max_buffered_bytes
//! [`ServerConfig::output_budget`]: crate::ServerConfig::output_budget

use core::any::Any;
use core::cell::Cell;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand_core::RngCore;
use snowsocket_core::frame::MAX_CONTROL_PAYLOAD;
use snowsocket_core::{encode_frame_vec, CloseCode, FrameHeader, MessageKind, OpCode};

pub use snowsocket_core::Message;

use crate::close::{CloseCause, SendError};
use crate::deflate::DeflateTx;
use crate::event_loop::budget::Budget;
use crate::event_loop::command::LoopShared;
use crate::forward;
use crate::rng::Rng;
use crate::spare;

/// What the opening handshake settled, kept for the connection's life.
/// Kept small for the common case (path `/`, nothing else: no allocation):
/// an idle connection pays for every byte here.
pub(crate) struct Upgraded {
    /// The request's path (up to `?`); `None` for `/`.
    path: Option<Box<str>>,
    /// The rest, when there is any.
    extra: Option<Box<Extra>>,
}

struct Extra {
    /// The request's query (after `?`), if any.
    query: Option<Box<str>>,
    /// The subprotocol chosen, if any.
    subprotocol: Option<Box<str>>,
    /// What the server's handler attached (`Accept::with_context`).
    context: Option<Arc<dyn Any + Send + Sync>>,
}

impl Upgraded {
    pub(crate) fn new(
        path: &str,
        query: Option<&str>,
        subprotocol: Option<String>,
        context: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Self {
        let extra = (query.is_some() || subprotocol.is_some() || context.is_some()).then(|| {
            Box::new(Extra {
                query: query.map(Into::into),
                subprotocol: subprotocol.map(String::into_boxed_str),
                context,
            })
        });
        Self {
            path: (path != "/").then(|| path.into()),
            extra,
        }
    }

    fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// The state a connection's handles share with its loop.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) upgraded: Upgraded,
    /// The connection's key in its loop.
    pub(crate) token: usize,
    /// The loop that owns the connection.
    pub(crate) owner: Arc<LoopShared>,
    /// The bound on [`Outbox::buffered`].
    pub(crate) max_buffered: usize,
    /// The server's bound on all outboxes together.
    pub(crate) output_budget: Arc<Budget>,
    pub(crate) tx: Mutex<Outbox>,
    /// Reading is paused (`ConnectionHandle::pause_reading`).
    pub(crate) paused: AtomicBool,
    /// permessage-deflate's sending half, when negotiated.
    /// Boxed: a pointer on every connection without it.
    pub(crate) deflate: Option<Box<DeflateTx>>,
}

/// Frames encoded by senders, waiting for the loop.
pub(crate) struct Outbox {
    /// Encoded frames, in the order they were sent.
    pub(crate) frames: Vec<u8>,
    /// Bytes the loop took from `frames` and has not written yet.
    pub(crate) in_loop: usize,
    /// What this outbox holds charged to the output budget: `buffered()`
    /// once [`Outbox::settle`] has run.
    charged: usize,
    /// A fragmented message is being sent.
    pub(crate) fragmenting: bool,
    /// No more data frames: a Close was requested or sent, or the
    /// connection ended.
    pub(crate) closed: bool,
    /// A Close requested by a handle, for the loop to send after `frames`.
    pub(crate) close: Option<Box<CloseRequest>>,
    /// The loop has been told about this output and not taken it yet.
    pub(crate) scheduled: bool,
    /// A send was refused as full: tell the handler when all is written.
    pub(crate) wants_drain: bool,
    /// Masking keys (a client's frames); `None` for a server.
    pub(crate) mask: Option<Rng>,
    /// How many bytes the loop took last time (at most [`BATCH_HINT_MAX`]):
    /// `frames` starts that large after the loop took it, so a burst of
    /// sends grows it once instead of doubling its way up (each doubling a
    /// copy of everything queued so far).
    pub(crate) batch: u32,
    /// Payload bytes of the frames in `frames` that stay in the loop's
    /// read buffer until it writes them (see [`crate::forward`]).
    pub(crate) forwarded: u32,
}

/// The largest batch `frames` is sized for in advance: twice what a turn
/// holds back before writing, since the read that crosses that mark adds
/// its own replies.
pub(crate) const BATCH_HINT_MAX: usize = 2 * crate::event_loop::conn::WRITE_BATCH;

/// What an outbox may hold without charging the output budget: a
/// connection's usual few frames in flight cost the budget's shared
/// counter (contended between the loops) nothing; only a backlog does.
/// All outboxes together hold at most the budget plus this much (and one
/// message) each.
pub(crate) const UNCHARGED: usize = 64 * 1024;

/// What an outbox holding `buffered` bytes charges the output budget.
const fn charge_for(buffered: usize) -> usize {
    buffered.saturating_sub(UNCHARGED)
}

/// A Close requested through a handle.
pub(crate) struct CloseRequest {
    pub(crate) code: CloseCode,
    pub(crate) reason: String,
    pub(crate) cause: CloseCause,
}

impl Outbox {
    pub(crate) fn new(mask: Option<Rng>) -> Self {
        Self {
            frames: Vec::new(),
            in_loop: 0,
            charged: 0,
            fragmenting: false,
            closed: false,
            close: None,
            scheduled: false,
            wants_drain: false,
            mask,
            batch: 0,
            forwarded: 0,
        }
    }

    /// Makes room for `len` more bytes: for the whole of the last batch
    /// when `frames` is empty (a batch starts), in the loop thread's spare
    /// buffer when `frames` has none.
    fn reserve(&mut self, len: usize) {
        if self.frames.is_empty() {
            let want = len.max(usize::try_from(self.batch).unwrap_or(BATCH_HINT_MAX));
            if self.frames.capacity() == 0 {
                self.frames = spare::take(want);
            }
            self.frames.reserve(want);
        }
    }

    /// The loop takes the frames: remembers how much that was.
    pub(crate) fn taken(&mut self) {
        self.batch = u32::try_from(self.frames.len().min(BATCH_HINT_MAX)).unwrap_or(u32::MAX);
    }

    /// Bytes sent and not yet written to the socket.
    pub(crate) fn buffered(&self) -> usize {
        self.frames.len() + self.in_loop + self.forwarded as usize
    }

    /// Whether `len` more bytes fit under `limit` and in `budget`; if so,
    /// what they add past [`UNCHARGED`] is charged to `budget` (the caller
    /// queues them). Anything fits an empty outbox, so a message larger
    /// than the bound can still be sent, and every connection makes
    /// progress when the budget is spent.
    fn fits(&mut self, len: usize, limit: usize, budget: &Budget) -> Result<(), SendError> {
        let buffered = self.buffered();
        let after = buffered.saturating_add(len);
        let more = charge_for(after).saturating_sub(self.charged);
        if buffered == 0 {
            if more > 0 {
                budget.charge(more);
            }
        } else if after > limit {
            self.wants_drain = true;
            return Err(SendError::Full { buffered, limit });
        } else if more > 0 && !budget.take(more) {
            self.wants_drain = true;
            return Err(SendError::OverBudget {
                budget: budget.limit(),
            });
        }
        self.charged += more;
        Ok(())
    }

    /// Brings the budget's charge in line with what the outbox holds now
    /// (after the loop wrote some, added control frames, or dropped it
    /// all at the end).
    pub(crate) fn settle(&mut self, budget: &Budget) {
        let due = charge_for(self.buffered());
        if due > self.charged {
            budget.charge(due - self.charged);
        } else if due < self.charged {
            budget.give(self.charged - due);
        }
        self.charged = due;
    }

    /// Whether a whole message may be queued: not closed, no fragmented
    /// message in progress.
    fn check_message(&self) -> Result<(), SendError> {
        if self.closed {
            Err(SendError::Closed)
        } else if self.fragmenting {
            Err(SendError::Refused(
                snowsocket_core::SendError::FragmentInProgress,
            ))
        } else {
            Ok(())
        }
    }

    fn header(&mut self, opcode: OpCode, fin: bool, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            mask: self.mask.as_mut().map(|r| r.next_u32().to_le_bytes()),
            payload_len: len as u64,
        }
    }
}

impl Shared {
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Locks the outbox (a panic elsewhere never poisons a send).
    pub(crate) fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes one frame under the lock and tells the loop.
    fn push(
        &self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        check: impl FnOnce(&mut Outbox) -> Result<(), SendError>,
    ) -> Result<(), SendError> {
        let mut tx = self.outbox();
        if tx.closed {
            return Err(SendError::Closed);
        }
        check(&mut tx)?;
        let header = tx.header(opcode, fin, payload.len());
        let head = header.encoded_len();
        let len = head + payload.len();
        tx.fits(len, self.max_buffered, &self.output_budget)?;
        // A large payload that the loop is feeding us stays where it was
        // read (a server's frames only: a client's are masked).
        let left = forward::locate(self, payload)
            .filter(|_| tx.mask.is_none())
            .zip(u32::try_from(tx.forwarded as usize + payload.len()).ok());
        if let Some((start, forwarded)) = left {
            tx.reserve(head);
            let at = tx.frames.len() + head;
            tx.frames.resize(at, 0);
            // Sized for the header: encoding cannot fail.
            let _ = header.encode(&mut tx.frames[at - head..]);
            tx.forwarded = forwarded;
            forward::note(forward::Piece {
                at,
                start,
                len: payload.len(),
            });
        } else {
            tx.reserve(len);
            encode_frame_vec(header, payload, &mut tx.frames);
        }
        if opcode == OpCode::Continuation || matches!(opcode, OpCode::Text | OpCode::Binary) {
            tx.fragmenting = !fin;
        }
        self.schedule(tx);
        Ok(())
    }

    /// Compresses a whole message (permessage-deflate) and queues it.
    /// Compression runs outside the outbox's lock (the loop keeps writing
    /// meanwhile) but inside the compressor's, which is held until the
    /// frame is queued: frames go out in the order they were compressed.
    /// A frame that is not queued after all (closed, full) resets the
    /// compressor, so that no later message refers to it.
    // Out of line: compression dwarfs a call, and inlined here it would
    // cost every uncompressed send a larger stack frame.
    #[inline(never)]
    fn push_compressed(
        &self,
        deflate: &DeflateTx,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), SendError> {
        let mut compressor = deflate.lock();
        let Some(compressor) = compressor.as_mut() else {
            return Err(SendError::Closed);
        };
        let mask = {
            let mut tx = self.outbox();
            tx.check_message()?;
            tx.mask.as_mut().map(|r| r.next_u32().to_le_bytes())
        };
        let mut frame = Vec::new();
        compressor.write_message(kind, payload, mask, &mut frame);
        let mut tx = self.outbox();
        if let Err(e) = tx
            .check_message()
            .and_then(|()| tx.fits(frame.len(), self.max_buffered, &self.output_budget))
        {
            compressor.reset();
            return Err(e);
        }
        tx.reserve(frame.len());
        tx.frames.extend_from_slice(&frame);
        self.schedule(tx);
        Ok(())
    }

    /// Tells the owning loop that this connection has output, once until
    /// the loop takes it; not at all from the connection's own callbacks
    /// while its loop feeds it (see [`Feeding`]).
    #[inline]
    pub(crate) fn schedule(&self, mut tx: MutexGuard<'_, Outbox>) {
        if tx.scheduled || Feeding::is(self) {
            return;
        }
        tx.scheduled = true;
        drop(tx);
        self.owner.flush_later(self.token, self.id);
    }

    /// Appends an already encoded frame (a broadcast), under the bound.
    pub(crate) fn push_encoded(&self, frame: &[u8]) -> Result<(), SendError> {
        let mut tx = self.outbox();
        if tx.closed {
            return Err(SendError::Closed);
        }
        if tx.fragmenting {
            return Err(SendError::Refused(
                snowsocket_core::SendError::FragmentInProgress,
            ));
        }
        tx.fits(frame.len(), self.max_buffered, &self.output_budget)?;
        tx.reserve(frame.len());
        tx.frames.extend_from_slice(frame);
        self.schedule(tx);
        Ok(())
    }

    /// Requests a Close, sent after everything already sent.
    pub(crate) fn request_close(
        &self,
        code: CloseCode,
        reason: &str,
        cause: CloseCause,
    ) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::Refused(
                snowsocket_core::SendError::InvalidCloseCode(code),
            ));
        }
        let mut tx = self.outbox();
        if tx.closed {
            return Err(SendError::Closed);
        }
        tx.closed = true;
        tx.close = Some(Box::new(CloseRequest {
            code,
            reason: reason.to_owned(),
            cause,
        }));
        self.schedule(tx);
        Ok(())
    }
}

thread_local! {
    /// The connection ([`Shared`]'s address) whose input the loop on this
    /// thread is feeding to the handler, 0 when none.
    static FEEDING: Cell<usize> = const { Cell::new(0) };
}

/// Marks a connection as fed by its loop on this thread, for as long as it
/// lives. Its loop flushes the connection right after feeding it, so its
/// own callbacks' sends need no flush command (each would cost a command
/// through the loop's inbox and a second flush per read). Sends from other
/// threads, or for other connections, are told to their loop as usual.
pub(crate) struct Feeding {
    previous: usize,
}

impl Feeding {
    /// `shared`'s callbacks run now; its loop flushes it after this drops.
    pub(crate) fn enter(shared: &Shared) -> Self {
        let previous = FEEDING.with(|c| c.replace(core::ptr::from_ref(shared) as usize));
        Self { previous }
    }

    fn is(shared: &Shared) -> bool {
        FEEDING.with(Cell::get) == core::ptr::from_ref(shared) as usize
    }
}

impl Drop for Feeding {
    fn drop(&mut self) {
        FEEDING.with(|c| c.set(self.previous));
    }
}

/// A handle to one connection: send from any thread, close, inspect.
///
/// `Clone + Send + Sync`; cheap to clone (an `Arc`). Sends never block:
/// each frame is encoded into the connection's outbox and written by the
/// connection's event loop as soon as the socket takes it. The outbox is
/// bounded ([`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes)):
/// a send that would pass the bound returns [`SendError::Full`] and queues
/// nothing, and [`Handler::on_drain`](crate::Handler::on_drain) runs once
/// the outbox has been written out; [`ConnectionHandle::buffered_amount`]
/// tells how much is waiting. Sends after the connection closed return
/// [`SendError::Closed`], never panic.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ConnectionHandle {
    /// A number unique to this connection within the process (never 0).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer
    }

    /// The path of the upgrade request (the request target up to `?`).
    pub fn path(&self) -> &str {
        self.shared.upgraded.path()
    }

    /// The query of the upgrade request (after `?`), if it had one.
    pub fn query(&self) -> Option<&str> {
        self.shared.upgraded.extra.as_ref()?.query.as_deref()
    }

    /// The subprotocol chosen in the opening handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.shared.upgraded.extra.as_ref()?.subprotocol.as_deref()
    }

    /// What the server's handler attached to this connection when it
    /// accepted it ([`Accept::with_context`](crate::Accept::with_context)),
    /// if it is a `T`.
    pub fn context<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.shared
            .upgraded
            .extra
            .as_ref()?
            .context
            .as_deref()?
            .downcast_ref()
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a message of `kind` (text must be UTF-8; use
    /// [`ConnectionHandle::send_text`] to have the compiler check it).
    ///
    /// With permessage-deflate negotiated, a message of at least
    /// [`PerMessageDeflate::min_size`](crate::PerMessageDeflate::min_size)
    /// bytes is compressed here, on the calling thread.
    pub fn send(&self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        if let Some(deflate) = &self.shared.deflate {
            if payload.len() >= deflate.min_size {
                return self.shared.push_compressed(deflate, kind, payload);
            }
        }
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        self.shared.push(opcode, true, payload, |tx| {
            if tx.fragmenting {
                Err(SendError::Refused(
                    snowsocket_core::SendError::FragmentInProgress,
                ))
            } else {
                Ok(())
            }
        })
    }

    /// Sends one fragment of a message: the first call starts a message of
    /// `kind`, later ones continue it (their `kind` is ignored), and `fin`
    /// ends it.
    pub fn send_fragment(
        &self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let first = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let continuing = self.shared.outbox().fragmenting;
        let opcode = if continuing {
            OpCode::Continuation
        } else {
            first
        };
        self.shared.push(opcode, fin, payload, |tx| {
            // Another thread may have ended or started a message meanwhile.
            if tx.fragmenting == continuing {
                Ok(())
            } else {
                Err(SendError::Refused(
                    snowsocket_core::SendError::FragmentInProgress,
                ))
            }
        })
    }

    /// Sends a Ping (payload at most 125 bytes). The heartbeat pings by
    /// itself; this is for applications that want their own.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::Refused(
                snowsocket_core::SendError::ControlPayloadTooLong,
            ));
        }
        self.shared.push(OpCode::Ping, true, payload, |_| Ok(()))
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123
    /// bytes): the Close goes out after everything sent before it. Does not
    /// wait for the peer's answer; `on_close` reports the end
    /// ([`CloseCause::ClosedByUs`]).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.shared
            .request_close(code, reason, CloseCause::ClosedByUs)
    }

    /// Whether messages may still be sent (no Close sent or received, not
    /// failed).
    pub fn is_open(&self) -> bool {
        !self.shared.outbox().closed
    }

    /// Stops reading from this connection after the message being handled
    /// (call it from `on_message`, or from any thread): no more input is
    /// parsed, so no more callbacks run, and the socket's data waits in the
    /// kernel (TCP tells the peer to slow down). Pings are not answered
    /// meanwhile, so keep pauses shorter than the peer's pong timeout; our
    /// own heartbeat, pong and close deadlines wait too (the peer's
    /// answers sit unread), so a connection paused for good is not checked
    /// for a dead peer (the write timeout still applies). Sends still go
    /// out.
    pub fn pause_reading(&self) {
        self.shared.paused.store(true, Ordering::Release);
    }

    /// Reads again after [`ConnectionHandle::pause_reading`].
    pub fn resume_reading(&self) {
        if self.shared.paused.swap(false, Ordering::AcqRel) {
            self.shared
                .owner
                .send(crate::event_loop::command::Command::Resume {
                    token: self.shared.token,
                    id: self.shared.id,
                });
        }
    }

    /// How many bytes were sent and are not written to the socket yet (as
    /// the browser's `WebSocket.bufferedAmount`).
    pub fn buffered_amount(&self) -> usize {
        self.shared.outbox().buffered()
    }
}

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("id", &self.shared.id)
            .field("peer", &self.shared.peer)
            .finish_non_exhaustive()
    }
}
