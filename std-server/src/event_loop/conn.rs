//! One connection on an event loop, from accept to the socket's close.
//!
//! A [`Conn`] is driven by its loop with readiness and time, and never
//! blocks: [`Conn::on_readable`], [`Conn::on_writable`], [`Conn::flush`]
//! (the outbox has frames), [`Conn::on_timeout`]; after each,
//! [`Conn::deadline`] is the next time it needs the clock and
//! [`Conn::is_done`] says the socket can go. It takes `now` as an argument
//! and its socket is any [`Socket`], so tests drive it on virtual time
//! through an in-memory pipe.
//!
//! Its life: `Handshake` (TLS, then the HTTP upgrade, within the handshake
//! timeout from accept however the bytes arrive) → `Open` (the core
//! [`Connection`] and the handler) → `Linger` (our Close, or an HTTP answer,
//! has been written: the write side is shut and the peer's input is read
//! and discarded until its EOF or the close timeout, so the kernel never
//! resets a connection that has a Close in flight) → `Done`.

use core::mem;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::sync::Arc;

use snowsocket_core::deflate::DeflateParams;
use snowsocket_core::{CloseCode, Connection, Error as CoreError, Instant, Role};

mod ending;
mod http;
mod transfer;
mod upgrade;
mod ws;

#[cfg(test)]
pub(super) use self::ws::CONTROL_BACKLOG;
use self::ws::{guard, Ws};
use super::budget::Budgeted;
use super::Service;
use crate::close::{CloseCause, CloseInfo};
use crate::deflate::{kept_memory, DeflateTx};
use crate::event_loop::command::LoopShared;
use crate::forward;
use crate::handle::{ConnectionHandle, Outbox, Shared, Upgraded};

use crate::rng::Rng;
use crate::session::{server_session, TlsSession};

/// The core connection as the shell uses it.
pub(crate) type Core = Connection<Budgeted, Rng>;

/// A byte stream a connection runs over: non-blocking reads and writes
/// (`WouldBlock` when nothing can be done now) and a half-close.
pub(crate) trait Socket: Read + Write {
    /// Shuts the write side (sends FIN).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Socket for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// An established client connection handed to a loop.
pub(crate) struct Adopted {
    pub(crate) socket: mio::net::TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: Option<Box<TlsSession>>,
    pub(crate) service: Arc<Service>,
    pub(crate) upgraded: Upgraded,
    pub(crate) leftover: Vec<u8>,
    pub(crate) id: u64,
    /// The permessage-deflate the server agreed to, if any.
    pub(crate) deflate: Option<DeflateParams>,
    /// Gets the connection's handle once it is registered.
    pub(crate) ready: std::sync::mpsc::SyncSender<ConnectionHandle>,
}

enum Phase {
    /// TLS and the HTTP upgrade; `request` holds the request so far.
    Handshake {
        request: Vec<u8>,
        deadline: Instant,
    },
    /// A refused upgrade: the HTTP answer is being written, until `until`.
    Answering {
        until: Instant,
    },
    Open(Box<Ws>),
    /// Our last bytes are written and the write side is shut; the peer's
    /// input is discarded until its EOF or `until`.
    Linger {
        until: Instant,
        ws: Option<Box<Ws>>,
    },
    Done(Option<Box<Ws>>),
}

/// A connection on a loop.
pub(crate) struct Conn<S> {
    pub(crate) id: u64,
    io: S,
    peer: SocketAddr,
    service: Arc<Service>,
    tls: Option<Box<TlsSession>>,
    phase: Phase,
    /// Bytes to write (under TLS: plaintext for the session); `sent` of
    /// them are written.
    out: Vec<u8>,
    sent: usize,
    /// Since when output has been waiting without the peer taking any.
    stalled_since: Option<Instant>,
    /// It holds one of the server's handshake slots.
    slot: bool,
    /// The deadline armed in the loop's timers.
    pub(crate) armed: Option<Instant>,
    /// The read side needs another look (a read stopped before
    /// `WouldBlock`, to be fair to other connections).
    pub(crate) more_to_read: bool,
    /// The poller reported the peer's end of input (its FIN): a read that
    /// comes back short is not the last one, the EOF follows it.
    pub(crate) read_closed: bool,
    /// A read returned the peer's EOF: nothing more will come.
    at_eof: bool,
}

/// Reads per readiness event before other connections get a turn.
pub(super) const READS_PER_TURN: usize = 8;

/// A turn writes the replies to its reads once they reach this many bytes
/// (and at its end): see [`Conn::holds_output`].
pub(crate) const WRITE_BATCH: usize = 1 << 20;

/// The loop's read buffer for reads of `read_buffer_size` bytes: room for
/// one read, and after it for the reads of a turn that holds replies
/// which left their payloads in it (see `crate::forward`), up to about a
/// [`WRITE_BATCH`]. Only the first read's part is touched unless replies
/// leave payloads (pages are given on first touch).
pub(crate) fn read_buffer_len(read_buffer_size: usize) -> usize {
    let read_len = read_buffer_size.max(4096);
    read_len.saturating_add(WRITE_BATCH.min(read_len.saturating_mul(4)))
}

/// Nor does a turn hold replies once this long has passed since the first
/// held read began (slow callbacks): batching saves system calls, which is
/// not worth more of a reply's latency.
pub(super) const HOLD_FOR: Duration = Duration::from_millis(1);

/// `now` plus `d`, saturating.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    Instant::from_micros(
        now.as_micros()
            .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
    )
}

impl<S: Socket> Conn<S> {
    /// A connection just accepted by a server: its handshake starts.
    pub(crate) fn accepted(io: S, peer: SocketAddr, service: Arc<Service>, now: Instant) -> Self {
        let (tls, failed) = match server_session(&service.config) {
            Ok(tls) => (tls, false),
            Err(e) => {
                log::error!("{peer}: cannot start a TLS session: {e}");
                (None, true)
            }
        };
        let deadline = later(now, service.config.handshake_timeout);
        Self {
            id: crate::next_id(),
            io,
            slot: true,
            peer,
            tls,
            phase: if failed {
                Phase::Done(None)
            } else {
                Phase::Handshake {
                    request: Vec::new(),
                    deadline,
                }
            },
            service,
            out: Vec::new(),
            sent: 0,
            stalled_since: None,
            armed: None,
            more_to_read: false,
            read_closed: false,
            at_eof: false,
        }
    }

    /// Whether the connection is over: remove it and call [`Conn::finish`].
    pub(crate) const fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// The service the connection belongs to.
    #[cfg(test)]
    pub(crate) fn service(&self) -> Arc<Service> {
        Arc::clone(&self.service)
    }

    /// Bytes of write buffer the connection holds (its output and its
    /// outbox), in use or not.
    #[cfg(test)]
    pub(crate) fn write_capacity(&self) -> usize {
        let outbox = match &self.phase {
            Phase::Open(ws) => ws.handle.shared.outbox().frames.capacity(),
            _ => 0,
        };
        self.out.capacity() + outbox
    }

    /// The socket, to (de)register it.
    pub(crate) fn socket_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The next time [`Conn::on_timeout`] has work.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let stall = self
            .stalled_since
            .map(|t| later(t, self.service.config.write_timeout));
        let own = match &self.phase {
            Phase::Handshake { deadline, .. } => Some(*deadline),
            // Paused by the application: the peer's answers wait unread in
            // the socket, so the core's deadlines wait too (they are
            // checked once reading resumes and has caught up). Likewise
            // while our output waits for the peer to take it: a peer
            // that takes our data, however slowly, is alive (one that
            // takes nothing fails at the write timeout), and a Ping or
            // Close queued behind that backlog cannot have been answered
            // yet; the heartbeat resumes once the backlog is written.
            // (While input waits for the next turn's reads, the deadline
            // stays armed but `on_timeout` does not judge it: see there.)
            Phase::Open(ws) if ws.handle.shared.is_paused() || self.stalled_since.is_some() => None,
            Phase::Open(ws) => ws.core.poll_timeout(),
            Phase::Linger { until, .. } | Phase::Answering { until } => Some(*until),
            Phase::Done(_) => None,
        };
        match (own, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The socket has bytes (or EOF) for us.
    pub(crate) fn on_readable(
        &mut self,
        rbuf: &mut [u8],
        owner: &Arc<LoopShared>,
        token: usize,
        now: Instant,
    ) {
        self.read_turn(rbuf, owner, token, now);
        // The turn wrote or copied the payloads its replies left in `rbuf`
        // (see `crate::forward`), unless the connection failed meanwhile:
        // then they go with it, before `rbuf` is read into again.
        forward::clear();
    }

    /// Whether the replies to a full read wait for the next read of the
    /// same turn, to go out together in fewer, larger writes: each write
    /// costs the kernel a share of its own (on loopback also waking the
    /// reader); at 64 KiB pipelined echoes, writing once per 1 MiB instead
    /// of once per 256 KiB read took the kernel's time per message from
    /// about 22.5 to 18.5 µs (`scripts/server-cpu.sh 65536`). Only while
    /// the connection is open, its core has no control frame to send, no
    /// Close is requested and less than [`WRITE_BATCH`] bytes (or a
    /// quarter of `max_buffered_bytes`, if that is less) wait. A read
    /// that comes back short, would block, or brings EOF, a pause and the
    /// turn's end all write what is held, and holding stops once
    /// [`HOLD_FOR`] has passed since the first held read began: a held
    /// reply waits at most that long plus the callbacks of one read.
    fn holds_output(&self) -> bool {
        let Phase::Open(ws) = &self.phase else {
            return false;
        };
        if !ws.core.is_open() || ws.core.wants_transmit() {
            return false;
        }
        // A quarter of the send bound at most: held replies must not be
        // what makes the handler's next send fail as full.
        let limit = WRITE_BATCH.min(self.service.config.max_buffered_bytes / 4);
        let tx = ws.handle.shared.outbox();
        let waiting = self.out.len() - self.sent + tx.frames.len() + tx.forwarded as usize;
        tx.close.is_none() && waiting < limit
    }

    /// Whether the application paused reading.
    fn paused(&self) -> bool {
        matches!(&self.phase, Phase::Open(ws) if ws.handle.shared.is_paused())
    }

    /// Reading was resumed: the input kept while paused first, then the
    /// socket.
    pub(crate) fn resume(
        &mut self,
        rbuf: &mut [u8],
        owner: &Arc<LoopShared>,
        token: usize,
        now: Instant,
    ) {
        if let Phase::Open(ws) = &mut self.phase {
            let kept = mem::take(&mut ws.rx);
            self.deliver(&[], kept, now);
            self.flush(now);
        }
        self.on_readable(rbuf, owner, token, now);
    }

    /// The socket takes bytes again.
    pub(crate) fn on_writable(&mut self, now: Instant) {
        // Output from the outbox comes with its own flush command; here
        // only what the socket refused before is waiting.
        if self.sent < self.out.len() || self.tls_pending() || self.stalled_since.is_some() {
            self.flush_pushed(now);
        }
    }

    /// Writes output that did not come from reading (sends from other
    /// threads, or what the socket refused before), then gives back the
    /// buffers it no longer needs: a connection that is only pushed to
    /// (a broadcast's silent listener) holds no write buffer between
    /// pushes, as one that reads holds none between reads.
    pub(crate) fn flush_pushed(&mut self, now: Instant) {
        self.flush(now);
        self.quiet();
    }

    /// Time passed: handshake, heartbeat, close, write-stall and linger
    /// deadlines.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if let Some(since) = self.stalled_since {
            if now >= later(since, self.service.config.write_timeout) {
                return self.fail_hard(CloseCause::WriteTimeout);
            }
        }
        match &mut self.phase {
            Phase::Handshake { deadline, .. } if now >= *deadline => {
                log::debug!("{}: handshake timed out", self.peer);
                self.phase = Phase::Done(None);
            }
            Phase::Open(ws) if ws.handle.shared.is_paused() => {}
            // Output waits for the peer: see `Conn::deadline`.
            Phase::Open(_) if self.stalled_since.is_some() => {}
            // Input waits for the next turn's reads (the loop comes back
            // to it before it sleeps): what the peer sent before the
            // deadline is read before it is judged. The deadline stays
            // armed rather than being taken out while input waits: a busy
            // connection's reads stop for other connections' turns all
            // the time, and re-arming each time would push a timer entry
            // per turn.
            Phase::Open(_) if self.more_to_read => {}
            Phase::Open(ws) => {
                if let Err(e) = ws.core.handle_timeout(now) {
                    ws.core_failed(e);
                }
                // A heartbeat Ping goes ahead of what other threads
                // pushed meanwhile: its Pong's deadline runs from now.
                ws.take_control(&mut self.out, &mut self.sent, false);
                self.flush(now);
            }
            Phase::Linger { until, ws } if now >= *until => {
                self.phase = Phase::Done(ws.take());
            }
            Phase::Answering { until } if now >= *until => self.phase = Phase::Done(None),
            _ => {}
        }
    }

    /// Gives back the handshake slot, if it holds one.
    fn release_slot(&mut self) {
        if mem::take(&mut self.slot) {
            self.service.release_slot(self.peer);
        }
    }

    /// Hands `n` bytes just read into `rbuf` at `at` (after `leftover`) to
    /// the core. Payloads left in `rbuf` by earlier reads are before `at`.
    fn deliver_read(
        &mut self,
        leftover: Vec<u8>,
        rbuf: &mut [u8],
        (at, n): (usize, usize),
        now: Instant,
    ) {
        let (earlier, rest) = rbuf.split_at_mut(at);
        let input = &mut rest[..n];
        if !leftover.is_empty() {
            let mut joined = leftover;
            joined.extend_from_slice(input);
            return self.deliver(earlier, joined, now);
        }
        // Payloads may be left where they were read only where the loop
        // writes them itself (see `crate::forward`).
        let in_place = self.tls.is_none();
        if let Phase::Open(ws) = &mut self.phase {
            let out = (&mut self.out, &mut self.sent);
            let fed = (&*earlier, &mut *input, in_place);
            let consumed = ws.feed(&*self.service.handler, fed, out, now);
            ws.keep(&input[consumed..]);
        }
    }

    /// Hands `input` (bytes not yet seen by the core) to the core;
    /// `earlier` holds the payloads left in the read buffer before.
    fn deliver(&mut self, earlier: &[u8], mut input: Vec<u8>, now: Instant) {
        if let Phase::Open(ws) = &mut self.phase {
            if input.is_empty() {
                return;
            }
            let out = (&mut self.out, &mut self.sent);
            let fed = (earlier, &mut input[..], false);
            let consumed = ws.feed(&*self.service.handler, fed, out, now);
            input.drain(..consumed);
            ws.keep(&input);
        }
    }

    /// Opens the WebSocket: the core, the handle, `on_connect`.
    fn open(
        &mut self,
        upgraded: Upgraded,
        owner: &Arc<LoopShared>,
        token: usize,
        role: Role,
        deflate: Option<DeflateParams>,
        now: Instant,
    ) -> ConnectionHandle {
        let config = &self.service.config;
        let mask = (role == Role::Client).then(Rng::from_os);
        // Negotiated only when the options are set.
        let deflate = deflate.zip(config.deflate);
        let shared = Arc::new(Shared {
            id: self.id,
            peer: self.peer,
            upgraded,
            token,
            owner: Arc::clone(owner),
            max_buffered: config.max_buffered_bytes,
            output_budget: Arc::clone(&self.service.output_budget),
            tx: std::sync::Mutex::new(Outbox::new(mask)),
            paused: core::sync::atomic::AtomicBool::new(false),
            deflate: deflate
                .as_ref()
                .map(|(params, options)| Box::new(DeflateTx::new(role, params, options))),
        });
        let handle = ConnectionHandle { shared };
        let mut core = Connection::new(
            role,
            config.connection,
            Budgeted::new(Arc::clone(&self.service.budget)),
            Rng::from_os(),
            now,
        );
        if let Some((params, options)) = &deflate {
            core.enable_deflate(params, options.level);
        }
        // The upgrade charged a server's deflate state to the budget.
        let deflate_charged = match (role, &deflate) {
            (Role::Server, Some((params, _))) => kept_memory(params),
            _ => 0,
        };
        let mut ws = Box::new(Ws {
            core,
            handle: handle.clone(),
            rx: Vec::new(),
            end: None,
            our_close: None,
            deflate_charged,
        });
        self.service.opened(&handle);
        if guard(|| self.service.handler.on_connect(&ws.handle)).is_err() {
            ws.panicked(now);
        }
        self.phase = Phase::Open(ws);
        handle
    }
}

impl Conn<mio::net::TcpStream> {
    /// A client connection whose handshake is done, owned by `owner` at
    /// `token`.
    pub(crate) fn adopted(
        adopted: Adopted,
        owner: &Arc<LoopShared>,
        token: usize,
        now: Instant,
    ) -> (Self, ConnectionHandle) {
        let Adopted {
            socket: io,
            peer,
            tls,
            service,
            upgraded,
            leftover,
            id,
            deflate,
            ..
        } = adopted;
        let mut conn = Self {
            id,
            io,
            slot: false,
            peer,
            tls,
            phase: Phase::Done(None),
            service,
            out: Vec::new(),
            sent: 0,
            stalled_since: None,
            armed: None,
            more_to_read: true,
            read_closed: false,
            at_eof: false,
        };
        let handle = conn.open(upgraded, owner, token, Role::Client, deflate, now);
        conn.deliver(&[], leftover, now);
        conn.flush(now);
        (conn, handle)
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
