//! The connection engine shared by the server and the client.
//!
//! One connection is three pieces:
//!
//! - a [`Session`] behind a mutex: the core [`Connection`], the rustls
//!   session if any, and `out`, the bytes (ciphertext under TLS) encoded but
//!   not yet written. It is only ever locked briefly: to feed received bytes
//!   and collect one event, or to encode/encrypt a frame. Never across a
//!   blocking socket call.
//! - a writer (the socket's write half) behind a second mutex, which orders
//!   writes: whoever holds it takes everything in `out` (in encoding order)
//!   and writes it with the session unlocked. Lock order: writer, then
//!   session; the session holder never waits for the writer.
//! - a [`Reader`], owned by one thread, holding the read half
//!   (`TcpStream::try_clone`) and the input buffers. It reads with no lock
//!   held, with the socket's read timeout set to the next timer of the core
//!   (heartbeat ping, pong deadline, close deadline).
//!
//! So a send from any thread waits at most for another write (bounded by the
//! write timeout), never for a read.

use core::any::Any;
use core::cell::Cell;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::Instant as StdInstant;

use snowsocket_core::{
    CloseCode, Config, Connection, Error as CoreError, Event, FrameHeader, Instant, MessageKind,
    OpCode,
};

pub use snowsocket_core::Message;

use crate::close::{CloseCause, CloseInfo, SendError};
use crate::rng::Rng;

/// What the core connection is, here: a growable message buffer.
type Core = Connection<Vec<u8>, Rng>;

/// Output held at most before a send on the connection's own reader thread
/// flushes instead of deferring to the end of the read batch.
const DEFER_LIMIT: usize = 64 * 1024;
/// The largest the read buffer grows to.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// Buffers that grew past this are given back after use.
const KEEP_CAPACITY: usize = 64 * 1024;
/// The same for the reassembly buffers: a stream of 64 KiB messages must
/// not reallocate them every time (a `Vec` grown to fit 64 KiB may hold up
/// to twice that).
const KEEP_MESSAGE: usize = 256 * 1024;
/// Messages from this size on are written without a copy when possible.
const DIRECT_MIN: usize = 64 * 1024;
/// The largest binary frame (header included) the reader waits for, so that
/// the core hands it out without copying it.
const WHOLE_FRAME_MAX: usize = 128 * 1024 + FrameHeader::MAX_LEN;
/// Unprocessed input up to this size is moved to the front of the buffer
/// before each read (cheaper than reads cut short by a full buffer).
const CHEAP_MOVE: usize = 4096;
/// Under TLS, payloads from this size on are encrypted at once, without a
/// copy (smaller frames are gathered and sealed together).
const SEAL_DIRECT: usize = 16 * 1024;

thread_local! {
    /// The id of the connection whose reader runs on this thread (0: none).
    /// Sends from that thread for that connection are deferred and written
    /// together before the next blocking read.
    static READER_OF: Cell<u64> = const { Cell::new(0) };
}

/// Marks the current thread as the reader thread of connection `id`.
pub(crate) fn set_reader_thread(id: u64) {
    READER_OF.with(|r| r.set(id));
}

/// The core's clock: microseconds since the first call in this process.
pub(crate) fn now() -> Instant {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(StdInstant::now);
    Instant::from_micros(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Everything the core and TLS need, locked briefly.
pub(crate) struct Session {
    conn: Core,
    /// Boxed: a plain connection does not carry a TLS session's size.
    tls: Option<Box<rustls::Connection>>,
    /// Encoded (and encrypted) bytes not yet handed to the writer. Taken
    /// from [`OUT_POOL`] when the first frame is pushed, given back once
    /// written.
    out: Vec<u8>,
    /// TLS only: frames not yet encrypted. They are sealed into records
    /// when written (`seal`), so a batch of small frames makes few records.
    plain: Vec<u8>,
    /// The first recorded reason for the end (a close we started, a failed
    /// write); the reader's own findings come second.
    ended: Option<CloseInfo>,
}

impl Session {
    /// Encodes a frame (header + payload, masked when the header says so)
    /// onto `out`, through TLS if any.
    fn push_frame(&mut self, header: FrameHeader, payload: &[u8]) {
        // The common case of a server's small reply: a two-byte header,
        // written here without the general encoder.
        if let (None, None, Ok(len @ 0..=125)) =
            (&self.tls, header.mask, u8::try_from(header.payload_len))
        {
            if self.out.capacity() == 0 {
                self.out = pooled();
            }
            let first = u8::from(header.fin) << 7 | header.opcode.as_u8();
            self.out.reserve(2 + payload.len());
            self.out.extend_from_slice(&[first, len]);
            self.out.extend_from_slice(payload);
            return;
        }
        let mut head = [0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut head).unwrap_or(0);
        let head = &head[..n];
        match (&mut self.tls, header.mask) {
            (None, mask) => {
                if self.out.capacity() == 0 {
                    self.out = pooled();
                }
                self.out.reserve(n + payload.len());
                self.out.extend_from_slice(head);
                let start = self.out.len();
                self.out.extend_from_slice(payload);
                if let Some(key) = mask {
                    snowsocket_core::mask::apply_mask(&mut self.out[start..], key, 0);
                }
            }
            (Some(tls), None) if payload.len() >= SEAL_DIRECT => {
                // A large payload: seal what is pending, then encrypt header
                // and payload into the same records without a copy.
                if !self.plain.is_empty() {
                    encrypt(tls, &self.plain, &mut self.out);
                    self.plain.clear();
                }
                let mut parts = [head, payload];
                while !parts[0].is_empty() || !parts[1].is_empty() {
                    let slices = [io::IoSlice::new(parts[0]), io::IoSlice::new(parts[1])];
                    match tls.writer().write_vectored(&slices) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let from_head = n.min(parts[0].len());
                            parts[0] = &parts[0][from_head..];
                            parts[1] = &parts[1][n - from_head..];
                        }
                    }
                }
                encrypt(tls, &[], &mut self.out);
            }
            (Some(_), mask) => {
                self.plain.extend_from_slice(head);
                let start = self.plain.len();
                self.plain.extend_from_slice(payload);
                if let Some(key) = mask {
                    snowsocket_core::mask::apply_mask(&mut self.plain[start..], key, 0);
                }
            }
        }
    }

    /// Encrypts the pending TLS plaintext onto `out`.
    fn seal(&mut self) {
        if let Some(tls) = &mut self.tls {
            if !self.plain.is_empty() {
                if self.out.capacity() == 0 {
                    self.out = pooled();
                }
                encrypt(tls, &self.plain, &mut self.out);
                self.plain.clear();
                shrink(&mut self.plain);
            }
        }
    }

    /// Bytes waiting to be written (encrypted or not yet).
    fn pending(&self) -> usize {
        self.out.len() + self.plain.len()
    }

    /// Moves the core's queued control frames (pongs, heartbeat pings,
    /// close) onto `out`.
    #[inline]
    fn pump_control(&mut self) {
        // Called after every event: most of the time nothing is queued.
        if self.conn.wants_transmit() {
            self.pump_queued();
        }
    }

    #[inline(never)]
    fn pump_queued(&mut self) {
        let mut buf = [0u8; 160];
        loop {
            match self.conn.poll_transmit(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.push_raw(n, &buf),
            }
        }
    }

    fn push_raw(&mut self, n: usize, buf: &[u8]) {
        let bytes = &buf[..n];
        match &self.tls {
            None => self.out.extend_from_slice(bytes),
            Some(_) => self.plain.extend_from_slice(bytes),
        }
    }

    /// Records the end of the connection unless one is already recorded.
    /// A close we started is replaced by a later failure (close timeout,
    /// protocol error, write timeout…), which says more.
    fn record(&mut self, info: CloseInfo) {
        let mut info = info;
        match &self.ended {
            None => {}
            Some(prev)
                if prev.cause == CloseCause::ClosedByUs
                    && !matches!(
                        info.cause,
                        CloseCause::PeerClosed | CloseCause::UnexpectedEof
                    ) =>
            {
                // After our Close nothing else is sent (the core queues no
                // second Close): the code exchanged is still ours.
                info.code = prev.code;
                info.reason.clone_from(&prev.reason);
            }
            Some(_) => return,
        }
        self.ended = Some(info);
    }

    /// Starts the close handshake with `code`, recording `cause`.
    fn close(&mut self, code: CloseCode, reason: &str, cause: CloseCause) -> Result<(), SendError> {
        self.conn.close(code, reason, now())?;
        self.record(CloseInfo::new(cause, Some(code), reason));
        self.pump_control();
        Ok(())
    }
}

/// Encrypts `plain` and appends the TLS records to `out`.
fn encrypt(tls: &mut rustls::Connection, plain: &[u8], out: &mut Vec<u8>) {
    // The session's buffer limit is lifted, so the writer takes everything.
    if !plain.is_empty() {
        let _ = tls.writer().write_all(plain);
    }
    while tls.wants_write() {
        if tls.write_tls(out).is_err() {
            break;
        }
    }
}

fn shrink(buf: &mut Vec<u8>) {
    shrink_past(buf, KEEP_CAPACITY);
}

/// Empties `buf` and lowers its capacity if it is over `limit`.
fn shrink_past(buf: &mut Vec<u8>, limit: usize) {
    if buf.capacity() > limit {
        buf.clear();
        buf.shrink_to(KEEP_CAPACITY / 4);
    }
}

/// Output buffers between uses, shared by all connections, last in first
/// out: a buffer just written is still in the CPU's cache, so the next batch
/// of frames (of any connection) is encoded into warm memory rather than
/// into a buffer of its own that went cold while other connections ran.
static OUT_POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// The most buffers [`OUT_POOL`] keeps.
const POOL_MAX: usize = 16;

/// An empty output buffer, from the pool if it has one.
fn pooled() -> Vec<u8> {
    lock(&OUT_POOL).pop().unwrap_or_default()
}

/// Gives a written output buffer back to the pool (or frees it).
fn recycle(mut buf: Vec<u8>) {
    // A batch deferred up to DEFER_LIMIT, plus the frame that crossed it,
    // fits in twice that.
    if buf.capacity() == 0 || buf.capacity() > 2 * DEFER_LIMIT {
        return;
    }
    buf.clear();
    let mut pool = lock(&OUT_POOL);
    if pool.len() < POOL_MAX {
        pool.push(buf);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the writer lock guards: the right to write to the socket (the
/// holder takes `Session::out` and writes it with the session unlocked).
struct WriteHalf;

/// What the opening handshake settled, kept for the connection's life.
#[derive(Default)]
pub(crate) struct Upgraded {
    /// The request's path (up to `?`).
    pub(crate) path: Box<str>,
    /// The request's query (after `?`), if any.
    pub(crate) query: Option<Box<str>>,
    /// The subprotocol chosen, if any.
    pub(crate) subprotocol: Option<Box<str>>,
    /// What the server's handler attached (`Accept::with_context`).
    pub(crate) context: Option<Arc<dyn Any + Send + Sync>>,
}

/// The state shared by a connection's reader and its handles.
pub(crate) struct Shared {
    id: u64,
    peer: SocketAddr,
    upgraded: Upgraded,
    role: snowsocket_core::Role,
    /// The longest the reader blocks: a Close sent from another thread
    /// while it blocks is timed out at most this late.
    max_wait: Duration,
    session: Mutex<Session>,
    writer: Mutex<WriteHalf>,
    /// Output was queued by a thread that could not wait for the writer
    /// lock ([`Shared::flush_without_waiting`]): whoever holds it writes
    /// that output after letting go.
    flush_wanted: AtomicBool,
    /// The socket: read by the reader (no lock), written under the writer
    /// lock, shut down by anyone.
    socket: Arc<TcpStream>,
    /// Told when a Close is queued from elsewhere, so that a connection
    /// whose reader gave up its thread (the server's idle parking) gets
    /// one back to time the close handshake.
    kicker: OnceLock<Arc<dyn Kick>>,
}

/// Something that wakes a parked connection (see [`Shared::set_kicker`]).
pub(crate) trait Kick: Send + Sync {
    /// Connection `id` has new work for its reader (a Close was queued).
    fn kick(&self, id: u64);
}

impl Shared {
    /// Builds the engine for an upgraded connection. `tls` is the session
    /// that ran the handshake on `socket`.
    pub(crate) fn new(
        id: u64,
        socket: Arc<TcpStream>,
        tls: Option<rustls::Connection>,
        role: snowsocket_core::Role,
        config: Config,
        write_timeout: Duration,
        upgraded: Upgraded,
    ) -> io::Result<Arc<Self>> {
        let peer = socket.peer_addr()?;
        socket.set_write_timeout(Some(write_timeout.max(Duration::from_millis(1))))?;
        let mut tls = tls;
        if let Some(tls) = &mut tls {
            tls.set_buffer_limit(None);
        }
        let conn = Connection::new(role, config, Vec::new(), Rng::from_os(), now());
        let shared = Arc::new(Self {
            id,
            peer,
            upgraded,
            role,
            max_wait: config.close_timeout.max(Duration::from_millis(100)),
            session: Mutex::new(Session {
                conn,
                tls: tls.map(Box::new),
                out: Vec::new(),
                plain: Vec::new(),
                ended: None,
            }),
            writer: Mutex::new(WriteHalf),
            flush_wanted: AtomicBool::new(false),
            socket,
            kicker: OnceLock::new(),
        });
        Ok(shared)
    }

    /// Installs the parking hook (once).
    pub(crate) fn set_kicker(&self, kicker: Arc<dyn Kick>) {
        let _ = self.kicker.set(kicker);
    }

    fn kick(&self) {
        if let Some(kicker) = self.kicker.get() {
            kicker.kick(self.id);
        }
    }

    /// Gives back the spare capacity of the session's buffers (for a
    /// connection about to idle). The output buffer is normally back in the
    /// pool already.
    fn release_buffers(&self) {
        let mut s = lock(&self.session);
        if let Some(message) = s.conn.idle_message_buffer() {
            *message = Vec::new();
        }
        if s.out.is_empty() {
            s.out = Vec::new();
        }
        if s.plain.is_empty() {
            s.plain = Vec::new();
        }
    }

    /// Writes everything encoded so far, in order. Called by every sender
    /// (unless deferred) and by the reader before it blocks.
    fn flush(&self) -> Result<(), SendError> {
        let result = self.flush_locked(&mut lock(&self.writer));
        self.flush_if_wanted();
        result
    }

    /// Writes what is pending if the writer lock is free, else leaves it to
    /// the thread holding the lock, which writes it when it lets go (see
    /// `flush_if_wanted`): for a Close that must not wait behind a write
    /// blocked on a peer that does not read.
    fn flush_without_waiting(&self) {
        self.flush_wanted.store(true, Ordering::SeqCst);
        self.flush_if_wanted();
    }

    /// After letting go of the writer lock: writes the output that a thread
    /// which could not wait for the lock left behind. The flag is set
    /// before that thread tries the lock and checked after the holder lets
    /// go, so one of the two writes it.
    fn flush_if_wanted(&self) {
        while self.flush_wanted.load(Ordering::SeqCst) {
            let mut w = match self.writer.try_lock() {
                Ok(w) => w,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            self.flush_wanted.store(false, Ordering::SeqCst);
            let _ = self.flush_locked(&mut w);
        }
    }

    fn flush_locked(&self, _w: &mut WriteHalf) -> Result<(), SendError> {
        loop {
            let buf = {
                let mut s = lock(&self.session);
                s.seal();
                if s.out.is_empty() {
                    return Ok(());
                }
                core::mem::take(&mut s.out)
            };
            let result = write_all(&self.socket, &buf, &[]);
            recycle(buf);
            if let Err(e) = result {
                return Err(self.fail_write(&e));
            }
        }
    }

    /// A large message from a server over plain TCP is written straight
    /// from the caller's buffer (header and payload in one vectored write),
    /// without copying it, when nothing else is pending. `None` when this
    /// does not apply (the caller encodes as usual).
    fn send_direct(&self, kind: MessageKind, payload: &[u8]) -> Option<Result<(), SendError>> {
        if self.role != snowsocket_core::Role::Server || payload.len() < DIRECT_MIN {
            return None;
        }
        let mut w = lock(&self.writer);
        let mut head = [0u8; FrameHeader::MAX_LEN];
        let n = {
            let mut s = lock(&self.session);
            if s.tls.is_some() || !s.out.is_empty() {
                return None;
            }
            let header = match s.conn.message_header(kind, payload.len()) {
                Ok(header) => header,
                Err(e) => return Some(Err(e.into())),
            };
            header.encode(&mut head).unwrap_or(0)
        };
        let result = write_all(&self.socket, &head[..n], payload);
        if let Err(e) = result {
            return Some(Err(self.fail_write(&e)));
        }
        // Frames other senders encoded meanwhile.
        Some(self.flush_locked(&mut w))
    }

    /// A write failed: the connection is over. Records why, drops what was
    /// pending and shuts the socket down, which wakes the reader.
    fn fail_write(&self, e: &io::Error) -> SendError {
        let (cause, err) = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                (CloseCause::WriteTimeout, SendError::WriteTimeout)
            }
            kind => (CloseCause::Io(kind), SendError::Io(kind)),
        };
        log::debug!("connection {} ({}): write failed: {e}", self.id, self.peer);
        {
            let mut s = lock(&self.session);
            s.record(CloseInfo::new(cause, None, ""));
            s.conn.abort();
            s.out.clear();
            s.plain.clear();
        }
        let _ = self.socket.shutdown(Shutdown::Both);
        err
    }

    /// Flushes now, or defers to the end of the read batch when called from
    /// this connection's own reader thread (and little is pending).
    fn flush_or_defer(&self, pending: usize) -> Result<(), SendError> {
        if pending < DEFER_LIMIT && READER_OF.with(Cell::get) == self.id {
            return Ok(());
        }
        self.flush()
    }

    fn with_session<T>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, SendError>,
    ) -> Result<(T, usize), SendError> {
        let mut s = lock(&self.session);
        let value = f(&mut s)?;
        Ok((value, s.pending()))
    }
}

/// Writes all of `a` then `b` (one vectored write when both are there).
/// The socket's write timeout bounds each call: a call that makes no
/// progress for that long fails with `WouldBlock`/`TimedOut`, which is the
/// write timeout (a peer that keeps reading, however slowly, is not failed).
fn write_all(socket: &TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut socket = socket;
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let result = if a.is_empty() {
            socket.write(b)
        } else if b.is_empty() {
            socket.write(a)
        } else {
            socket.write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)])
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let from_a = n.min(a.len());
                a = &a[from_a..];
                b = &b[n - from_a..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A handle to one connection: send from any thread, close, inspect.
///
/// `Clone + Send + Sync`; cheap to clone (an `Arc`). Usable inside the
/// handler's callbacks, including on the connection's own thread: sends made
/// there (for this connection) are written together once the bytes already
/// read are handled, before the thread waits for more (fewer system calls;
/// [`ConnectionHandle::flush`] forces it). Sends from any other thread are
/// written before they return. Sends after the connection closed return
/// [`SendError::Closed`], never panic.
#[derive(Clone)]
pub struct ConnectionHandle {
    shared: Arc<Shared>,
}

impl ConnectionHandle {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

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
        &self.shared.upgraded.path
    }

    /// The query of the upgrade request (after `?`), if it had one.
    pub fn query(&self) -> Option<&str> {
        self.shared.upgraded.query.as_deref()
    }

    /// The subprotocol chosen in the opening handshake, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.shared.upgraded.subprotocol.as_deref()
    }

    /// What the server's handler attached to this connection when it
    /// accepted it ([`Accept::with_context`](crate::Accept::with_context)),
    /// if it is a `T`.
    pub fn context<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.shared.upgraded.context.as_deref()?.downcast_ref()
    }

    /// Sends a text message. Blocks while earlier frames are written (at
    /// most the write timeout).
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.send(MessageKind::Binary, data)
    }

    /// Sends a message of `kind` (text must be UTF-8; use
    /// [`ConnectionHandle::send_text`] to have the compiler check it).
    pub fn send(&self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        if let Some(result) = self.shared.send_direct(kind, payload) {
            self.shared.flush_if_wanted();
            return result;
        }
        let ((), pending) = self.shared.with_session(|s| {
            let header = s.conn.message_header(kind, payload.len())?;
            s.push_frame(header, payload);
            Ok(())
        })?;
        self.shared.flush_or_defer(pending)
    }

    /// Sends one fragment of a message: the first call starts a message of
    /// `kind`, later ones continue it, and `fin` ends it.
    pub fn send_fragment(
        &self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let ((), pending) = self.shared.with_session(|s| {
            let header = s.conn.fragment_header(kind, payload.len(), fin)?;
            s.push_frame(header, payload);
            Ok(())
        })?;
        self.shared.flush_or_defer(pending)
    }

    /// Sends a Ping (payload at most 125 bytes). The heartbeat pings by
    /// itself; this is for applications that want their own.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendError> {
        let ((), pending) = self.shared.with_session(|s| {
            let mut buf = [0u8; 160];
            let n = s.conn.ping(payload, &mut buf)?;
            s.push_raw(n, &buf);
            Ok(())
        })?;
        self.shared.flush_or_defer(pending)
    }

    /// Starts the close handshake with `code` and `reason` (cut to 123
    /// bytes). Does not wait for the peer's answer: the connection's reader
    /// receives it (or gives up after the close timeout) and reports the end
    /// ([`CloseCause::ClosedByUs`]).
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.close_with(code, reason, CloseCause::ClosedByUs)
    }

    pub(crate) fn close_with(
        &self,
        code: CloseCode,
        reason: &str,
        cause: CloseCause,
    ) -> Result<(), SendError> {
        let ((), pending) = self.shared.with_session(|s| s.close(code, reason, cause))?;
        let flushed = self.shared.flush_or_defer(pending);
        self.shared.kick();
        flushed
    }

    /// Writes what sends on the connection's own thread deferred (see the
    /// type's docs) now, instead of after the handler returns: for a
    /// handler that sends and then waits for something that needs the peer
    /// to have received it. Elsewhere, sends are already written.
    pub fn flush(&self) -> Result<(), SendError> {
        self.shared.flush()
    }

    /// For a server shutdown: queues Close `code` and writes it if the
    /// socket is free, each write bounded by `budget`. A write in progress
    /// on another thread (to a peer that does not read) is not waited for:
    /// it writes the Close after its own bytes.
    pub(crate) fn close_for_shutdown(&self, code: CloseCode, reason: &str, budget: Duration) {
        let queued = self
            .shared
            .with_session(|s| s.close(code, reason, CloseCause::ServerShutdown));
        if queued.is_err() {
            return;
        }
        let _ = self
            .shared
            .socket
            .set_write_timeout(Some(budget.max(Duration::from_millis(1))));
        self.shared.flush_without_waiting();
        self.shared.kick();
    }

    /// Whether messages may still be sent (no Close sent or received, not
    /// failed).
    pub fn is_open(&self) -> bool {
        lock(&self.shared.session).conn.is_open()
    }

    /// Changes how long a write may make no progress (the peer not
    /// reading) before the connection is failed.
    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.shared.socket.set_write_timeout(Some(timeout))
    }

    /// Closes the socket at once, without a close handshake (the reader
    /// reports `cause`).
    pub(crate) fn abort(&self, cause: CloseCause) {
        lock(&self.shared.session).record(CloseInfo::new(cause, None, ""));
        let _ = self.shared.socket.shutdown(Shutdown::Both);
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

/// What the reader found.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A complete data message.
    Message(Message<'a>),
    /// A Ping (answered) or a Pong.
    Control,
    /// Nothing arrived for the reader's idle time (see
    /// [`Reader::set_park_after`]): the caller may park the reader. Never
    /// returned when no idle time is set.
    Idle,
    /// The connection is over (reported once; later calls repeat it).
    Ended(CloseInfo),
}

/// Where an event's payload is, once the session lock is released.
enum Payload {
    /// In `input[range]`.
    Input(core::ops::Range<usize>),
    /// Copied into `owned`.
    Owned,
}

/// The receiving side of a connection, owned by one thread.
pub(crate) struct Reader {
    shared: Arc<Shared>,
    /// Plaintext bytes for the core: `input[start..end]` is unprocessed.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Ciphertext read from the socket (TLS only).
    raw: Vec<u8>,
    is_tls: bool,
    /// The size the buffers start at (again after [`Reader::release_buffers`]).
    buffer_size: usize,
    /// After this long with no input, [`Reader::next`] returns
    /// [`Step::Idle`] instead of blocking on.
    park_after: Option<Duration>,
    /// When data last arrived: bytes other than whole Ping and Pong frames
    /// (a heartbeat alone does not keep a connection busy).
    last_input: Instant,
    /// When the last bytes read arrived, until the frames they held are
    /// known: `None` once they counted as data.
    unjudged: Option<Instant>,
    /// A Ping or Pong was among the bytes of `unjudged`.
    control_seen: bool,
    /// When a read last brought nothing but whole Pings and Pongs. A second
    /// such read within the idle time counts as data: a heartbeat wakes a
    /// parked connection for a moment, a flood of pings keeps its thread
    /// (rather than starting one per read).
    control_only_at: Option<Instant>,
    /// Resumed and not read since: read once before idling again (the
    /// socket may be readable however short the idle time is).
    must_read: bool,
    /// Payloads copied out of the core's reassembly buffer.
    owned: Vec<u8>,
    /// The read timeout currently set on the socket.
    read_timeout: Option<Duration>,
    /// When the bytes in `input` arrived: the clock is read once per socket
    /// read, not once per event (it showed in profiles of small messages).
    received_at: Instant,
    done: Option<CloseInfo>,
    /// Whether the peer's Close (or our Close's answer) has been received.
    close_received: bool,
    /// TLS only: the peer sent close_notify, so no more input can come.
    tls_closed: bool,
    /// Whether the core is known to be between messages: the next frame
    /// starts a message (no fragmented message in progress).
    at_message_start: bool,
    /// The largest binary payload the core accepts at once: the frame and
    /// message size limits.
    binary_limit: usize,
    /// Where the next read stops: the end of the large binary frame being
    /// waited for (see [`Reader::wait_for_whole_frame`]).
    read_up_to: Option<usize>,
    /// How many times more than [`CHEAP_MOVE`] bytes of unprocessed input
    /// were moved to the front.
    #[cfg(test)]
    large_moves: usize,
}

impl Reader {
    /// The reader of `shared`'s socket, starting with `initial` bytes
    /// already received after the handshake.
    pub(crate) fn new(shared: Arc<Shared>, initial: &[u8], buffer_size: usize) -> Self {
        let size = buffer_size.clamp(64, MAX_READ_BUFFER).max(initial.len());
        let mut input = vec![0u8; size];
        input[..initial.len()].copy_from_slice(initial);
        let (tls, binary_limit) = {
            let s = lock(&shared.session);
            let limit = s
                .conn
                .config()
                .max_frame_size
                .min(s.conn.max_message_size());
            (s.tls.is_some(), limit)
        };
        // The handshake left a deadline on the socket; `read_timeout`
        // starts from "none".
        let _ = shared.socket.set_read_timeout(None);
        let started = now();
        let mut reader = Self {
            shared,
            input,
            start: 0,
            end: initial.len(),
            raw: if tls { vec![0u8; size] } else { Vec::new() },
            is_tls: tls,
            buffer_size: size,
            park_after: None,
            last_input: started,
            unjudged: None,
            control_seen: false,
            control_only_at: None,
            must_read: false,
            owned: Vec::new(),
            read_timeout: None,
            received_at: started,
            done: None,
            close_received: false,
            tls_closed: false,
            at_message_start: true,
            binary_limit,
            read_up_to: None,
            #[cfg(test)]
            large_moves: 0,
        };
        reader.drain_plaintext();
        reader
    }

    /// Moves plaintext that rustls already decrypted (frames that came in
    /// the same record as the handshake's end) into the input buffer.
    fn drain_plaintext(&mut self) {
        let mut s = lock(&self.shared.session);
        let Some(tls) = &mut s.tls else {
            return;
        };
        loop {
            if self.end == self.input.len() {
                let new_len = self.input.len() * 2;
                self.input.resize(new_len, 0);
            }
            match tls.reader().read(&mut self.input[self.end..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.end += n,
            }
        }
    }

    /// A handle to this connection.
    pub(crate) fn handle(&self) -> ConnectionHandle {
        ConnectionHandle::new(Arc::clone(&self.shared))
    }

    /// Lets [`Reader::next`] return [`Step::Idle`] once nothing has arrived
    /// for `after` (`None`: never, it blocks on).
    pub(crate) fn set_park_after(&mut self, after: Option<Duration>) {
        self.park_after = after;
    }

    /// The shared engine (to install the parking hook).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The socket, to watch it for input while the reader is parked.
    #[cfg_attr(not(unix), allow(dead_code))] // used by the Unix parking only
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.shared.socket
    }

    /// When the core's next timer is due (heartbeat ping, pong, close or
    /// fragment deadline), on the std clock.
    #[cfg_attr(not(unix), allow(dead_code))] // used by the Unix parking only
    pub(crate) fn next_deadline(&self) -> Option<StdInstant> {
        let deadline = lock(&self.shared.session).conn.poll_timeout()?;
        let left = deadline.saturating_duration_since(now());
        // `None` (no timer) for a deadline past what `Instant` can hold.
        StdInstant::now().checked_add(left)
    }

    /// For a reader about to park: gives back the buffers it can allocate
    /// again when it resumes (what an idle connection costs is then mostly
    /// the core's state and the TLS session).
    pub(crate) fn release_buffers(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.input = Vec::new();
        } else {
            self.compact();
            self.input.truncate(self.end);
            self.input.shrink_to_fit();
        }
        self.raw = Vec::new();
        self.owned = Vec::new();
        self.shared.release_buffers();
    }

    /// For a parked reader that runs again (the socket is readable, a timer
    /// is due, or a Close was queued): it reads once before it may idle
    /// again. The idle time goes on from the last data: a resume for a
    /// heartbeat ping, or for the peer's pong, parks again at once.
    pub(crate) fn resume(&mut self) {
        self.must_read = true;
        if self.is_tls && self.raw.is_empty() {
            self.raw = vec![0u8; self.buffer_size];
        }
        if self.input.len() < self.buffer_size {
            self.input.resize(self.buffer_size, 0);
        }
    }

    /// Blocks until the next message, control frame or the end, or returns
    /// [`Step::Idle`] (see [`Reader::set_park_after`]).
    pub(crate) fn next(&mut self) -> Step<'_> {
        match self.advance() {
            Ok(Some(event)) => self.materialize(event),
            Ok(None) => Step::Idle,
            Err(info) => self.finish(info),
        }
    }

    /// Blocks until the next data message (control frames are handled on
    /// the way); `Err` at the end.
    pub(crate) fn next_message(&mut self) -> Result<Message<'_>, CloseInfo> {
        let event = loop {
            match self.advance() {
                Ok(Some((Kind::Control, _)) | None) => {}
                Ok(Some(event)) => break event,
                Err(info) => {
                    self.finish(info.clone());
                    return Err(info);
                }
            }
        };
        match self.materialize(event) {
            Step::Message(message) => Ok(message),
            Step::Ended(info) => Err(info),
            Step::Control | Step::Idle => Err(unknown_end()),
        }
    }

    /// Reads and feeds until an event (located, not yet borrowed), the end,
    /// or (`None`) the idle time.
    fn advance(&mut self) -> Result<Option<(Kind, Payload)>, CloseInfo> {
        if let Some(info) = &self.done {
            return Err(info.clone());
        }
        loop {
            if self.start < self.end {
                if let Some(event) = self.process()? {
                    return Ok(Some(event));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Whether the unprocessed input starts with a binary message that has
    /// not arrived whole and is worth waiting for (see [`Reader::process`]);
    /// if so, makes room for all of it.
    fn wait_for_whole_frame(&mut self) -> bool {
        let rest = &self.input[self.start..self.end];
        if frame_fits(rest) {
            return false;
        }
        let Some((head, len)) = binary_frame(self.shared.role, self.binary_limit, rest) else {
            return false;
        };
        let needed = head + len;
        if needed <= rest.len() || needed > WHOLE_FRAME_MAX {
            return false;
        }
        // Room for the frame and as much again, so that one read can also
        // bring the next one, which then completes where it starts. Grown
        // with what has arrived, doubling when full: a header alone must
        // not make the reader allocate the frame it announces (a peer could
        // do that on every connection).
        if self.end == self.input.len() && self.input.len() < 2 * needed {
            let new_len = (self.input.len() * 2).clamp(64, 2 * needed);
            self.input.resize(new_len, 0);
        }
        // A frame that cannot complete where it starts moves to the front;
        // one that can is not moved at all. A large one is read up to its
        // end and no further, so that the next read starts a frame at the
        // front of the buffer again (then no byte is moved, whatever the
        // frames' size).
        if self.start > 0 && self.start + needed > self.input.len() {
            self.compact();
        }
        if needed > CHEAP_MOVE && !self.is_tls {
            self.read_up_to = Some(self.start + needed);
        }
        true
    }

    /// Moves the unprocessed input to the front of the buffer.
    fn compact(&mut self) {
        #[cfg(test)]
        {
            self.large_moves += usize::from(self.end - self.start > CHEAP_MOVE);
        }
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.read_up_to = self.read_up_to.map(|at| at.saturating_sub(self.start));
        self.start = 0;
    }

    /// Feeds buffered input to the core; returns the next event, if one is
    /// complete.
    ///
    /// Between messages, a binary message that has not arrived whole (and
    /// is not larger than [`WHOLE_FRAME_MAX`]) is not fed yet: the reader
    /// waits for the rest, so that the core hands it out in place instead of
    /// copying it into its message buffer (and this reader copying it out
    /// again). Text is always fed as it arrives: invalid UTF-8 fails the
    /// connection as soon as it is received.
    fn process(&mut self) -> Result<Option<(Kind, Payload)>, CloseInfo> {
        if self.at_message_start && self.wait_for_whole_frame() {
            return Ok(None);
        }
        let Self {
            shared,
            input,
            start,
            end,
            owned,
            close_received,
            received_at,
            at_message_start,
            last_input,
            unjudged,
            control_seen,
            ..
        } = self;
        let base = *start;
        let slice = &mut input[base..*end];
        let slice_addr = slice.as_ptr() as usize;
        let slice_len = slice.len();
        let mut s = lock(&shared.session);
        let s = &mut *s;
        let (consumed, event) = match s.conn.handle_read(slice, *received_at) {
            Ok(x) => x,
            Err(e) => {
                let info = core_failure(e);
                s.record(info);
                s.pump_control();
                return Err(s.ended.clone().unwrap_or_else(unknown_end));
            }
        };
        let mut locate = |bytes: &[u8]| {
            let addr = bytes.as_ptr() as usize;
            if addr >= slice_addr && addr + bytes.len() <= slice_addr + slice_len {
                let from = base + (addr - slice_addr);
                Payload::Input(from..from + bytes.len())
            } else {
                owned.clear();
                owned.extend_from_slice(bytes);
                Payload::Owned
            }
        };
        let mut peer_close = None;
        let result = match event {
            None => None,
            Some(Event::Text(t)) => Some((Kind::Text, locate(t.as_bytes()))),
            Some(Event::Binary(b)) => Some((Kind::Binary, locate(b))),
            Some(Event::Ping(_) | Event::Pong(_)) => Some((Kind::Control, Payload::Owned)),
            Some(Event::Close(frame)) => {
                *close_received = true;
                let (code, reason) = frame.map_or((None, ""), |f| (Some(f.code), f.reason));
                peer_close = Some(CloseInfo::new(CloseCause::PeerClosed, code, reason));
                Some((Kind::Close, Payload::Owned))
            }
            Some(_) => Some((Kind::Control, Payload::Owned)),
        };
        if let Some(info) = peer_close {
            s.record(info);
        }
        // A data message ends between messages; after anything else that
        // consumed bytes (a control frame, part of a frame) it is not known.
        match result {
            Some((Kind::Text | Kind::Binary, _)) => *at_message_start = true,
            _ if consumed > 0 => *at_message_start = false,
            _ => {}
        }
        // What keeps the connection from idling (see `fill`).
        match result {
            Some((Kind::Control, _)) => *control_seen = true,
            _ if consumed > 0 => {
                *last_input = *received_at;
                *unjudged = None;
            }
            _ => {}
        }
        s.pump_control();
        *start += consumed;
        if result.is_none() {
            // Keep the unconsumed rest (an incomplete header) at the front.
            input.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
        }
        Ok(result)
    }

    fn materialize(&mut self, (kind, payload): (Kind, Payload)) -> Step<'_> {
        if let Kind::Close = kind {
            let info = lock(&self.shared.session)
                .ended
                .clone()
                .unwrap_or_else(unknown_end);
            return self.finish(info);
        }
        let bytes: &[u8] = match payload {
            Payload::Input(range) => self.input.get(range).unwrap_or_default(),
            Payload::Owned => &self.owned,
        };
        match kind {
            // Validated by the core; checked again only because a `&str`
            // cannot be made without it (no `unsafe`).
            Kind::Text => Step::Message(Message::Text(
                core::str::from_utf8(bytes).unwrap_or_default(),
            )),
            Kind::Binary => Step::Message(Message::Binary(bytes)),
            Kind::Control | Kind::Close => Step::Control,
        }
    }

    /// Services timers, writes pending output, then blocks for more input.
    /// `Ok(false)`: idle for the parking time instead (nothing read).
    fn fill(&mut self) -> Result<bool, CloseInfo> {
        let (mut timeout, checked_at) = self.service_timers()?;
        if self.shared.flush().is_err() {
            return Err(self.recorded());
        }
        if self.close_received {
            return Err(self.recorded());
        }
        if self.tls_closed {
            // What is left can never complete: nothing follows close_notify.
            return Err(self.eof());
        }
        if let Some(after) = self.park_after {
            // The bytes of the last read count as data unless they were
            // whole Pings or Pongs and nothing else, for the first time in
            // a while.
            if let Some(at) = self.unjudged.take() {
                let control_only = self.control_seen && self.start == self.end;
                let again = self
                    .control_only_at
                    .is_some_and(|before| at.saturating_duration_since(before) < after);
                if !control_only || again {
                    self.last_input = at;
                }
                if control_only {
                    self.control_only_at = Some(at);
                }
            }
            self.control_seen = false;
            let idle = checked_at.saturating_duration_since(self.last_input);
            let left = match after.checked_sub(idle).filter(|left| !left.is_zero()) {
                Some(left) => left,
                // Woken up with bytes waiting, perhaps: look first.
                None if self.must_read => Duration::from_millis(1),
                None => return Ok(false),
            };
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        // The socket's read timeout needs to be at most the time to the
        // next timer (never wake late); when it must shrink it is set to half
        // of that, so that a busy connection re-sets it only a few times per
        // timer period, not once per read.
        let set = match (timeout, self.read_timeout) {
            (None, None) => None,
            (None, Some(_)) => Some(None),
            (Some(t), None) => Some(Some(t)),
            (Some(t), Some(cur)) if t < cur => Some(Some((t / 2).max(Duration::from_millis(1)))),
            (Some(t), Some(cur)) if t > cur.saturating_mul(4) => Some(Some(t)),
            (Some(_), Some(_)) => None,
        };
        if let Some(new) = set {
            if new != self.read_timeout {
                if let Err(e) = self.shared.socket.set_read_timeout(new) {
                    return Err(CloseInfo::new(CloseCause::Io(e.kind()), None, ""));
                }
                self.read_timeout = new;
            }
        }
        // Unprocessed bytes move to the front, so that the read has room,
        // unless they are many and the read has room anyway: then they are
        // most of a binary frame that completes in place (see
        // `wait_for_whole_frame`). Under TLS, where plaintext is appended as
        // it is decrypted, always.
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0
            && (self.is_tls || self.end == self.input.len() || self.end - self.start <= CHEAP_MOVE)
        {
            self.compact();
        }
        let is_tls = self.is_tls;
        let result = if is_tls {
            if self.raw.is_empty() {
                self.raw.resize(self.buffer_size, 0);
            }
            (&*self.shared.socket).read(&mut self.raw)
        } else {
            if self.end == self.input.len() {
                let new_len = (self.input.len() * 2)
                    .min(MAX_READ_BUFFER)
                    .max(self.end + 64);
                self.input.resize(new_len, 0);
            }
            let up_to = self.read_up_to.take().unwrap_or(usize::MAX);
            let up_to = up_to.clamp(self.end + 1, self.input.len());
            (&*self.shared.socket).read(&mut self.input[self.end..up_to])
        };
        self.received_at = now();
        self.must_read = false;
        if matches!(result, Ok(n) if n > 0) {
            self.unjudged = Some(self.received_at);
        }
        match result {
            Ok(0) => Err(self.eof()),
            Ok(n) if is_tls => {
                let full = n == self.raw.len();
                self.decrypt(n)?;
                if full && self.raw.len() < MAX_READ_BUFFER {
                    let new_len = (self.raw.len() * 2).min(MAX_READ_BUFFER);
                    self.raw.resize(new_len, 0);
                }
                Ok(true)
            }
            Ok(n) => {
                self.end += n;
                if self.end == self.input.len() && self.input.len() < MAX_READ_BUFFER {
                    let new_len = (self.input.len() * 2).min(MAX_READ_BUFFER);
                    self.input.resize(new_len, 0);
                }
                Ok(true)
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(true),
                kind => {
                    let mut s = lock(&self.shared.session);
                    s.record(CloseInfo::new(CloseCause::Io(kind), None, ""));
                    Err(s.ended.clone().unwrap_or_else(unknown_end))
                }
            },
        }
    }

    /// Advances the core's timers; returns the read timeout until the next,
    /// and the time it was checked at. Also gives back what a large message
    /// left in the reassembly buffers, between messages.
    fn service_timers(&mut self) -> Result<(Option<Duration>, Instant), CloseInfo> {
        shrink_past(&mut self.owned, KEEP_MESSAGE);
        let mut s = lock(&self.shared.session);
        if let Some(message) = s.conn.idle_message_buffer() {
            shrink_past(message, KEEP_MESSAGE);
        }
        if let Some(info) = &s.ended {
            if !matches!(
                info.cause,
                CloseCause::ClosedByUs | CloseCause::ServerShutdown
            ) {
                return Err(info.clone());
            }
        }
        if s.conn.is_closed() && !self.close_received {
            return Err(s.ended.clone().unwrap_or_else(unknown_end));
        }
        let now = now();
        if let Some(deadline) = s.conn.poll_timeout() {
            if deadline <= now {
                if let Err(e) = s.conn.handle_timeout(now) {
                    let info = core_failure(e);
                    s.record(info);
                    s.pump_control();
                    let info = s.ended.clone().unwrap_or_else(unknown_end);
                    drop(s);
                    let _ = self.shared.flush();
                    return Err(info);
                }
                s.pump_control();
            }
        }
        let next = s
            .conn
            .poll_timeout()
            .map_or(self.shared.max_wait, |deadline| {
                deadline.saturating_duration_since(now)
            });
        Ok((
            Some(next.clamp(Duration::from_millis(1), self.shared.max_wait)),
            now,
        ))
    }

    /// Feeds `n` bytes of ciphertext to rustls and moves the plaintext into
    /// the input buffer.
    fn decrypt(&mut self, n: usize) -> Result<(), CloseInfo> {
        let mut s = lock(&self.shared.session);
        let s = &mut *s;
        let Some(tls) = &mut s.tls else {
            return Ok(());
        };
        let mut ciphertext = &self.raw[..n];
        let mut peer_closed = false;
        while !ciphertext.is_empty() {
            match tls.read_tls(&mut ciphertext) {
                Ok(0) => {
                    // Once rustls has seen the peer's close_notify it takes
                    // nothing more: what follows is ignored (RFC 8446 §6.1).
                    // (Looping on it would spin with the session locked.)
                    peer_closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let info = CloseInfo::new(CloseCause::Tls(e.to_string()), None, "");
                    s.record(info);
                    return Err(s.ended.clone().unwrap_or_else(unknown_end));
                }
            }
            let state = match tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // Queue the alert rustls prepared.
                    while tls.wants_write() && tls.write_tls(&mut s.out).is_ok() {}
                    s.record(CloseInfo::new(CloseCause::Tls(e.to_string()), None, ""));
                    let info = s.ended.clone().unwrap_or_else(unknown_end);
                    return Err(info);
                }
            };
            peer_closed |= state.peer_has_closed();
            let want = state.plaintext_bytes_to_read();
            if self.input.len() - self.end < want {
                self.input.resize(self.end + want, 0);
            }
            let mut reader = tls.reader();
            while self.end < self.input.len() {
                match reader.read(&mut self.input[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => self.end += k,
                    Err(_) => break,
                }
            }
            // Key updates and the like may need an answer.
            while tls.wants_write() && tls.write_tls(&mut s.out).is_ok() {}
        }
        self.tls_closed |= peer_closed;
        if peer_closed && self.start == self.end && !self.close_received {
            s.record(CloseInfo::new(CloseCause::UnexpectedEof, None, ""));
            return Err(s.ended.clone().unwrap_or_else(unknown_end));
        }
        Ok(())
    }

    fn eof(&self) -> CloseInfo {
        let mut s = lock(&self.shared.session);
        s.record(CloseInfo::new(CloseCause::UnexpectedEof, None, ""));
        s.ended.clone().unwrap_or_else(unknown_end)
    }

    fn recorded(&self) -> CloseInfo {
        lock(&self.shared.session)
            .ended
            .clone()
            .unwrap_or_else(unknown_end)
    }

    /// The end: writes what is left (a Close reply), closes the socket and
    /// remembers the outcome.
    fn finish(&mut self, info: CloseInfo) -> Step<'_> {
        {
            let mut s = lock(&self.shared.session);
            let s = &mut *s;
            s.seal();
            if let Some(tls) = &mut s.tls {
                // End the TLS stream properly (after any Close reply).
                tls.send_close_notify();
                while tls.wants_write() && tls.write_tls(&mut s.out).is_ok() {}
            }
        }
        let _ = self.shared.flush();
        lock(&self.shared.session).conn.abort();
        let _ = self.shared.socket.shutdown(Shutdown::Both);
        self.done = Some(info.clone());
        Step::Ended(info)
    }
}

impl Drop for Reader {
    /// A reader dropped before the end (a client dropped mid-connection)
    /// closes the socket: the connection cannot be read any more.
    fn drop(&mut self) {
        if self.done.is_none() {
            lock(&self.shared.session).conn.abort();
            let _ = self.shared.socket.shutdown(Shutdown::Both);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Binary,
    Control,
    Close,
}

/// Whether `bytes` holds at least one whole frame, going by its length
/// fields alone (a quick test: nothing is validated).
fn frame_fits(bytes: &[u8]) -> bool {
    let [_, b1, rest @ ..] = bytes else {
        return false;
    };
    let (ext, len) = match b1 & 0x7F {
        126 => match rest {
            [a, b, ..] => (2, u64::from(u16::from_be_bytes([*a, *b]))),
            _ => return false,
        },
        127 => match rest {
            [a, b, c, d, e, f, g, h, ..] => {
                (8, u64::from_be_bytes([*a, *b, *c, *d, *e, *f, *g, *h]))
            }
            _ => return false,
        },
        n => (0, u64::from(n)),
    };
    let key = if b1 & 0x80 != 0 { 4 } else { 0 };
    len <= (rest.len() - ext).saturating_sub(key) as u64
}

/// If `bytes` starts with the header of an unfragmented binary message that
/// the core (in `role`) accepts when it is between messages (masked as it
/// must be, payload within `limit`): the header's length and the payload's.
fn binary_frame(role: snowsocket_core::Role, limit: usize, bytes: &[u8]) -> Option<(usize, usize)> {
    let Ok(Some((header, used))) = FrameHeader::decode(bytes) else {
        return None;
    };
    let masked = role == snowsocket_core::Role::Server;
    if header.opcode != OpCode::Binary
        || !header.fin
        || header.mask.is_some() != masked
        || header.payload_len > limit as u64
    {
        return None;
    }
    Some((used, header.payload_len as usize))
}

fn unknown_end() -> CloseInfo {
    CloseInfo::new(CloseCause::UnexpectedEof, None, "")
}

/// The end a core failure stands for.
fn core_failure(e: CoreError) -> CloseInfo {
    let code = e.close_code();
    let (cause, reason) = match e {
        CoreError::Protocol(p) => (CloseCause::ProtocolError(p), p.reason()),
        CoreError::PongTimeout => (CloseCause::PongTimeout, "pong timeout"),
        CoreError::FragmentTimeout => (CloseCause::FragmentTimeout, "fragmented message timeout"),
        CoreError::CloseTimeout => (CloseCause::CloseTimeout, ""),
        _ => (CloseCause::UnexpectedEof, ""),
    };
    CloseInfo::new(cause, code, reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::net::TcpListener;

    use snowsocket_core::{FrameHeader, OpCode, Role};

    use super::*;

    /// A server-side engine over a loopback socket, and the peer's socket.
    fn pair() -> (Reader, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        let config = Config::DEFAULT.ping_interval(None);
        let shared = Shared::new(
            1,
            Arc::new(socket),
            None,
            Role::Server,
            config,
            Duration::from_secs(5),
            Upgraded::default(),
        )
        .unwrap();
        (Reader::new(shared, &[], 1024), peer)
    }

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let header = FrameHeader {
            fin,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        let mut out = vec![0u8; FrameHeader::MAX_LEN];
        let n = header.encode(&mut out).unwrap();
        out.truncate(n);
        let start = out.len();
        out.extend_from_slice(payload);
        snowsocket_core::mask::apply_mask(&mut out[start..], key, 0);
        out
    }

    fn capacities(reader: &mut Reader) -> (usize, usize) {
        let message = lock(&reader.shared.session)
            .conn
            .idle_message_buffer()
            .map_or(usize::MAX, |b| b.capacity());
        (message, reader.owned.capacity())
    }

    #[test]
    fn a_large_message_leaves_no_large_buffers_behind() {
        let (mut reader, mut peer) = pair();
        // 1 MiB in two fragments: reassembled in the core's buffer, then
        // copied out for the handler.
        let half = vec![b'a'; 512 << 10];
        let mut bytes = client_frame(false, OpCode::Binary, &half);
        bytes.extend(client_frame(true, OpCode::Continuation, &half));
        let writer = std::thread::spawn(move || {
            peer.write_all(&bytes).unwrap();
            peer
        });
        match reader.next() {
            Step::Message(Message::Binary(b)) => assert_eq!(b.len(), 1 << 20),
            other => panic!("expected the message, got {other:?}"),
        }
        let mut peer = writer.join().unwrap();
        let (message, owned) = capacities(&mut reader);
        assert!(message >= 1 << 20 && owned >= 1 << 20, "{message} {owned}");
        // Before the reader waits again, both are given back.
        peer.write_all(&client_frame(true, OpCode::Text, b"next"))
            .unwrap();
        match reader.next() {
            Step::Message(Message::Text(t)) => assert_eq!(t, "next"),
            other => panic!("expected the message, got {other:?}"),
        }
        let (message, owned) = capacities(&mut reader);
        assert!(
            message <= KEEP_CAPACITY && owned <= KEEP_CAPACITY,
            "{message} {owned}"
        );
    }

    #[test]
    fn a_frame_announced_is_not_allocated_before_its_bytes_arrive() {
        let (mut reader, mut peer) = pair();
        reader.set_park_after(Some(Duration::from_millis(20)));
        // The header of a 120 KiB binary frame and a few bytes of it: the
        // input buffer grows with what arrived, not to what was announced.
        let frame = client_frame(true, OpCode::Binary, &[7; 120 << 10]);
        peer.write_all(&frame[..100]).unwrap();
        assert!(matches!(reader.next(), Step::Idle));
        assert!(reader.input.len() <= 4096, "{}", reader.input.len());
        // The rest: the frame is still handed out whole.
        reader.resume();
        let writer = std::thread::spawn(move || {
            peer.write_all(&frame[100..]).unwrap();
            peer
        });
        match reader.next() {
            Step::Message(Message::Binary(b)) => assert_eq!(b, &[7; 120 << 10][..]),
            other => panic!("expected the message, got {other:?}"),
        }
        drop(writer.join().unwrap());
    }

    #[test]
    fn a_resumed_reader_reads_before_it_idles_again_even_with_no_idle_time() {
        let (mut reader, mut peer) = pair();
        reader.set_park_after(Some(Duration::ZERO));
        assert!(matches!(reader.next(), Step::Idle));
        // Bytes arrive while it is parked; the poller resumes it.
        peer.write_all(&client_frame(true, OpCode::Text, b"wake"))
            .unwrap();
        reader.resume();
        match reader.next() {
            Step::Message(Message::Text(t)) => assert_eq!(t, "wake"),
            other => panic!("expected the message, got {other:?}"),
        }
        // Nothing more: idle at once.
        assert!(matches!(reader.next(), Step::Idle));
        // Resumed for a timer, with nothing to read: a short look, then idle.
        reader.resume();
        assert!(matches!(reader.next(), Step::Idle));
    }

    #[test]
    fn binary_frames_streaming_in_complete_where_they_start() {
        let (mut reader, mut peer) = pair();
        let payload: Vec<u8> = (0..30_000u32).map(|i| i as u8).collect();
        let frame = client_frame(true, OpCode::Binary, &payload);
        let stream: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * 20)
            .collect();
        // Pieces that end anywhere in a frame (a frame and a half, then
        // less), as TCP may deliver them.
        let writer = std::thread::spawn(move || {
            for piece in stream.chunks(frame.len() * 3 / 2 - 7) {
                peer.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            peer
        });
        for _ in 0..20 {
            match reader.next() {
                Step::Message(Message::Binary(b)) => assert_eq!(b, &payload[..]),
                other => panic!("expected the message, got {other:?}"),
            }
        }
        let _peer = writer.join().unwrap();
        // Once the buffer holds two frames, no large part of one is moved:
        // each completes where it started.
        assert!(
            reader.large_moves <= 2,
            "{} large moves",
            reader.large_moves
        );
    }

    #[test]
    fn a_heartbeat_alone_does_not_keep_a_reader_from_idling() {
        let after = Duration::from_millis(600);
        let (mut reader, mut peer) = pair();
        reader.set_park_after(Some(after));
        assert!(matches!(reader.next(), Step::Idle));
        // A control frame arrives while the reader is parked: how long it
        // then keeps its thread before it idles again.
        let mut woken_by = |opcode, payload: &[u8]| {
            peer.write_all(&client_frame(true, opcode, payload))
                .unwrap();
            reader.resume();
            let woken = StdInstant::now();
            assert!(matches!(reader.next(), Step::Control));
            assert!(matches!(reader.next(), Step::Idle));
            woken.elapsed()
        };
        // The peer's Pong (to a heartbeat ping): it idles again at once.
        let kept = woken_by(OpCode::Pong, b"hb");
        assert!(kept < after * 3 / 4, "{kept:?}");
        // More Pings and Pongs right after are not a heartbeat (a flood, say):
        // they keep the reader, which answers them, like data.
        let kept = woken_by(OpCode::Ping, b"p");
        assert!(kept >= after, "{kept:?}");
        let mut pong = [0u8; 3];
        peer.read_exact(&mut pong).unwrap();
        assert_eq!(pong, [0x8A, 1, b'p']);
        // Data restarts the idle time.
        peer.write_all(&client_frame(true, OpCode::Text, b"data"))
            .unwrap();
        reader.resume();
        let woken = StdInstant::now();
        match reader.next() {
            Step::Message(Message::Text(t)) => assert_eq!(t, "data"),
            other => panic!("expected the message, got {other:?}"),
        }
        assert!(matches!(reader.next(), Step::Idle));
        assert!(woken.elapsed() >= after, "{:?}", woken.elapsed());
    }

    #[test]
    fn a_parked_reader_holds_no_buffers_and_resumes() {
        let (mut reader, mut peer) = pair();
        reader.set_park_after(Some(Duration::from_millis(20)));
        peer.write_all(&client_frame(true, OpCode::Text, b"hello"))
            .unwrap();
        match reader.next() {
            Step::Message(Message::Text(t)) => assert_eq!(t, "hello"),
            other => panic!("expected the message, got {other:?}"),
        }
        // Nothing more arrives: idle. (Until it is resumed, it stays idle:
        // the caller parks it and resumes it when the socket is readable.)
        assert!(matches!(reader.next(), Step::Idle));
        reader.resume();
        // One byte of a header, then idle again: it stays in the input
        // buffer, which shrinks to it; everything else is given back.
        let frame = client_frame(true, OpCode::Binary, &[7; 300]);
        peer.write_all(&frame[..1]).unwrap();
        assert!(matches!(reader.next(), Step::Idle));
        reader.release_buffers();
        assert_eq!((reader.end, reader.input.capacity()), (1, 1));
        assert_eq!(reader.raw.capacity(), 0);
        assert_eq!(capacities(&mut reader), (0, 0));
        // Resumed: a binary frame waits whole in the input buffer, which a
        // release keeps.
        reader.resume();
        peer.write_all(&frame[1..100]).unwrap();
        assert!(matches!(reader.next(), Step::Idle));
        reader.release_buffers();
        assert_eq!((reader.end, reader.input.capacity()), (100, 100));
        reader.resume();
        peer.write_all(&frame[100..]).unwrap();
        match reader.next() {
            Step::Message(Message::Binary(b)) => assert_eq!(b, &[7; 300][..]),
            other => panic!("expected the message, got {other:?}"),
        }
        // Text is checked as it arrives, so part of it goes to the core's
        // message buffer: a release keeps that too.
        assert!(matches!(reader.next(), Step::Idle));
        reader.resume();
        let text = client_frame(true, OpCode::Text, &[b'a'; 300]);
        peer.write_all(&text[..100]).unwrap();
        assert!(matches!(reader.next(), Step::Idle));
        reader.release_buffers();
        assert_eq!(capacities(&mut reader).0, usize::MAX, "frame in progress");
        reader.resume();
        peer.write_all(&text[100..]).unwrap();
        match reader.next() {
            Step::Message(Message::Text(t)) => assert_eq!(t, "a".repeat(300)),
            other => panic!("expected the message, got {other:?}"),
        }
    }
}
