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
use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::panic;
use std::sync::Arc;

use snowsocket_core::handshake::{self, Parsed, EMPTY_HEADER};
use snowsocket_core::{CloseCode, Connection, Error as CoreError, Event, Instant, Role};

use super::budget::Budgeted;
use super::Service;
use crate::close::{CloseCause, CloseInfo};
use crate::event_loop::command::LoopShared;
use crate::handle::{ConnectionHandle, Message, Outbox, Shared, Upgraded};
use crate::handler::{Accept, Handler, UpgradeRequest};
use crate::rng::Rng;

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
    pub(crate) tls: Option<Box<rustls::Connection>>,
    pub(crate) service: Arc<Service>,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) upgraded: Upgraded,
    pub(crate) leftover: Vec<u8>,
    pub(crate) id: u64,
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

/// An upgraded connection.
struct Ws {
    core: Core,
    handle: ConnectionHandle,
    handler: Arc<dyn Handler>,
    /// Input not consumed by the core yet (part of a frame header).
    rx: Vec<u8>,
    /// How it ended: the first cause found wins.
    end: Option<CloseInfo>,
    /// Why we sent our Close, and what it said.
    our_close: Option<(CloseCause, CloseCode, String)>,
}

/// What a read brought.
enum Input {
    Bytes(usize),
    WouldBlock,
    Eof,
}

/// A connection on a loop.
pub(crate) struct Conn<S> {
    pub(crate) id: u64,
    io: S,
    peer: SocketAddr,
    service: Arc<Service>,
    tls: Option<Box<rustls::Connection>>,
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
}

/// Reads per readiness event before other connections get a turn.
const READS_PER_TURN: usize = 8;

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
        let tls =
            service.config.tls.as_ref().and_then(|config| {
                match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(c) => Some(Box::new(rustls::Connection::Server(c))),
                    Err(e) => {
                        log::error!("{peer}: cannot start a TLS session: {e}");
                        None
                    }
                }
            });
        let failed = service.config.tls.is_some() && tls.is_none();
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
        }
    }

    /// Whether the connection is over: remove it and call [`Conn::finish`].
    pub(crate) const fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
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
        self.more_to_read = false;
        for _ in 0..READS_PER_TURN {
            match self.phase {
                Phase::Done(_) => return,
                Phase::Linger { .. } | Phase::Answering { .. } => return self.discard(rbuf),
                Phase::Handshake { .. } | Phase::Open(_) => {}
            }
            let input = match self.read(rbuf) {
                Ok(input) => input,
                Err(cause) => return self.fail_hard(cause),
            };
            match input {
                Input::WouldBlock => {
                    self.flush(now);
                    return self.quiet();
                }
                Input::Eof => return self.eof(),
                Input::Bytes(n) => match &mut self.phase {
                    Phase::Handshake { request, .. } => {
                        request.extend_from_slice(&rbuf[..n]);
                        self.handshake(owner, token, now);
                    }
                    Phase::Open(ws) => {
                        let leftover = mem::take(&mut ws.rx);
                        self.deliver_read(leftover, rbuf, n, now);
                    }
                    _ => {}
                },
            }
            self.flush(now);
        }
        self.more_to_read = true;
    }

    /// The socket takes bytes again.
    pub(crate) fn on_writable(&mut self, now: Instant) {
        self.flush(now);
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
            Phase::Open(ws) => {
                if let Err(e) = ws.core.handle_timeout(now) {
                    ws.core_failed(e);
                }
                self.flush(now);
            }
            Phase::Linger { until, ws } if now >= *until => {
                self.phase = Phase::Done(ws.take());
            }
            Phase::Answering { until } if now >= *until => self.phase = Phase::Done(None),
            _ => {}
        }
    }

    /// Writes what is waiting: the outbox's frames, the core's control
    /// frames (pongs, pings, our Close), a handshake answer; then moves on
    /// to lingering once the last frame is out.
    pub(crate) fn flush(&mut self, now: Instant) {
        if let Phase::Open(ws) = &mut self.phase {
            ws.take_outbox(&mut self.out, now);
            ws.take_control(&mut self.out);
        }
        if let Err(cause) = self.write(now) {
            return self.fail_hard(cause);
        }
        let written = self.sent == self.out.len() && !self.tls_pending();
        if written && matches!(self.phase, Phase::Answering { .. }) {
            return self.start_linger(now);
        }
        if let Phase::Open(ws) = &mut self.phase {
            let drained = {
                let mut tx = ws.handle.shared.outbox();
                tx.in_loop = self.out.len() - self.sent;
                if !ws.core.is_open() {
                    tx.closed = true;
                }
                let drained = tx.wants_drain && tx.buffered() == 0;
                if drained {
                    tx.wants_drain = false;
                }
                drained
            };
            if drained {
                let Ws {
                    handler, handle, ..
                } = &mut **ws;
                if guard(|| handler.on_drain(handle)).is_err() {
                    ws.panicked(now);
                    return self.flush(now);
                }
            }
            if ws.core.is_closed() && written {
                self.start_linger(now);
            }
        }
    }

    /// Gives back the handshake slot, if it holds one.
    fn release_slot(&mut self) {
        if mem::take(&mut self.slot) {
            self.service.release_slot(self.peer);
        }
    }

    /// The server shuts down: Close 1001 to an open connection; one still
    /// in its handshake is dropped.
    pub(crate) fn shut_down(&mut self, now: Instant) {
        match &self.phase {
            Phase::Handshake { .. } => self.phase = Phase::Done(None),
            Phase::Open(ws) => {
                let _ = ws.handle.shared.request_close(
                    CloseCode::GOING_AWAY,
                    "server shutdown",
                    CloseCause::ServerShutdown,
                );
                self.flush(now);
            }
            _ => {}
        }
    }

    /// Ends the connection at once (the shutdown deadline passed).
    pub(crate) fn abort(&mut self, cause: CloseCause) {
        self.fail_hard(cause);
    }

    /// Our last bytes are out: closes the socket so that the peer gets
    /// them. After a complete close handshake (both Closes went out) the
    /// peer has nothing more to send: the socket is closed at once (after
    /// reading what is already there, so the kernel has no reason to reset
    /// it). After a failure, or an HTTP answer, the peer may still be
    /// sending: the write side is shut and its input is read and dropped
    /// until its EOF or the close timeout (RFC 6455 §7.1.1), so a reset
    /// never destroys our Close in flight.
    fn start_linger(&mut self, now: Instant) {
        let (ws, linger) = match mem::replace(&mut self.phase, Phase::Done(None)) {
            Phase::Open(mut ws) => {
                ws.settle();
                let linger = match ws.core.failure() {
                    // Our Close was never answered: nothing to wait for.
                    Some(CoreError::CloseTimeout) => {
                        self.phase = Phase::Done(Some(ws));
                        return;
                    }
                    Some(_) => true,
                    None => false,
                };
                (Some(ws), linger)
            }
            Phase::Handshake { .. } | Phase::Answering { .. } => (None, true),
            other => {
                self.phase = other;
                return;
            }
        };
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = self.write(now);
        }
        let _ = self.io.shutdown_write();
        self.stalled_since = None;
        self.phase = Phase::Linger {
            until: later(now, self.service.config.connection.close_timeout),
            ws,
        };
        if !linger {
            // Whatever is readable now is dropped; then the socket goes.
            let mut scratch = [0u8; 512];
            for _ in 0..READS_PER_TURN {
                match self.io.read(&mut scratch) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            self.finish_linger();
        }
    }

    /// Runs `on_close` (for an upgraded connection) and gives back what the
    /// connection held; call once, when [`Conn::is_done`].
    pub(crate) fn finish(&mut self) -> Option<ConnectionHandle> {
        self.release_slot();
        let Phase::Done(ws) = &mut self.phase else {
            return None;
        };
        let mut ws = ws.take()?;
        self.service.closed(self.id);
        ws.settle();
        let info = ws
            .end
            .take()
            .unwrap_or_else(|| CloseInfo::new(CloseCause::UnexpectedEof, None, ""));
        {
            let mut tx = ws.handle.shared.outbox();
            tx.closed = true;
            tx.frames = Vec::new();
            tx.in_loop = 0;
        }
        let Ws {
            handler, handle, ..
        } = &*ws;
        if guard(|| handler.on_close(handle, info)).is_err() {
            log::error!("{}: on_close panicked", self.peer);
        }
        Some(ws.handle.clone())
    }

    /// Reads into `rbuf`: plaintext, through TLS when there is a session.
    fn read(&mut self, rbuf: &mut [u8]) -> Result<Input, CloseCause> {
        let Some(tls) = &mut self.tls else {
            return match self.io.read(rbuf) {
                Ok(0) => Ok(Input::Eof),
                Ok(n) => Ok(Input::Bytes(n)),
                Err(e) if would_block(&e) => Ok(Input::WouldBlock),
                Err(e) => Err(CloseCause::Io(e.kind())),
            };
        };
        loop {
            match tls.reader().read(rbuf) {
                Ok(0) => return Ok(Input::Eof),
                Ok(n) => return Ok(Input::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Input::Eof),
                Err(e) => return Err(CloseCause::Io(e.kind())),
            }
            match tls.read_tls(&mut self.io) {
                Ok(0) => return Ok(Input::Eof),
                Ok(_) => {}
                Err(e) if would_block(&e) => {
                    // The handshake may have produced records to send.
                    return Ok(Input::WouldBlock);
                }
                Err(e) => return Err(CloseCause::Io(e.kind())),
            }
            if let Err(e) = tls.process_new_packets() {
                // Send the alert, then give up.
                let _ = tls.write_tls(&mut self.io);
                return Err(CloseCause::Tls(e.to_string()));
            }
            if tls.wants_write() {
                let _ = tls.write_tls(&mut self.io);
            }
        }
    }

    /// Lingering: reads and drops whatever the peer still sends, until
    /// its EOF.
    fn discard(&mut self, rbuf: &mut [u8]) {
        for _ in 0..READS_PER_TURN {
            match self.io.read(rbuf) {
                Ok(0) => return self.finish_linger(),
                Ok(_) => {}
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.finish_linger(),
            }
        }
        // More to drop: other connections get a turn first.
        self.more_to_read = true;
    }

    /// The peer's EOF (or the linger deadline) ends a lingering close.
    fn finish_linger(&mut self) {
        match &mut self.phase {
            Phase::Linger { ws, .. } => {
                let ws = ws.take();
                self.phase = Phase::Done(ws);
            }
            Phase::Answering { .. } => self.phase = Phase::Done(None),
            _ => {}
        }
    }

    /// The peer ended its side.
    fn eof(&mut self) {
        match &mut self.phase {
            Phase::Open(ws) => {
                let cause = match &ws.our_close {
                    // We closed and the peer then hung up: as we asked.
                    Some((cause, code, reason)) if !ws.core.is_open() => {
                        CloseInfo::new(cause.clone(), Some(*code), reason)
                    }
                    _ => CloseInfo::new(CloseCause::UnexpectedEof, None, ""),
                };
                ws.record(cause);
                ws.core.abort();
                let ws = mem::replace(&mut self.phase, Phase::Done(None));
                if let Phase::Open(ws) = ws {
                    self.phase = Phase::Done(Some(ws));
                }
            }
            Phase::Linger { ws, .. } => self.phase = Phase::Done(ws.take()),
            _ => self.phase = Phase::Done(None),
        }
    }

    /// Ends the connection at once, without a close handshake (the socket
    /// failed, the peer stopped reading, TLS broke).
    fn fail_hard(&mut self, cause: CloseCause) {
        let ws = match mem::replace(&mut self.phase, Phase::Done(None)) {
            Phase::Open(mut ws)
            | Phase::Linger {
                ws: Some(mut ws), ..
            } => {
                // The Close we sent, if any, is what the peer was told.
                let info = match &ws.our_close {
                    Some((_, code, reason)) => CloseInfo::new(cause, Some(*code), reason),
                    None => CloseInfo::new(cause, None, ""),
                };
                ws.record(info);
                ws.core.abort();
                Some(ws)
            }
            _ => None,
        };
        self.phase = Phase::Done(ws);
    }

    /// Nothing more to read now: give back buffers an idle connection does
    /// not need.
    fn quiet(&mut self) {
        if self.sent == self.out.len() {
            self.out = Vec::new();
            self.sent = 0;
        }
        if let Phase::Open(ws) = &mut self.phase {
            if ws.rx.is_empty() {
                ws.rx = Vec::new();
            }
            if let Some(buf) = ws.core.idle_message_buffer() {
                buf.release();
            }
            let mut tx = ws.handle.shared.outbox();
            if tx.frames.is_empty() {
                tx.frames = Vec::new();
            }
        }
    }

    /// Hands `n` bytes just read into `rbuf` (after `leftover`) to the core.
    fn deliver_read(&mut self, leftover: Vec<u8>, rbuf: &mut [u8], n: usize, now: Instant) {
        if !leftover.is_empty() {
            let mut input = leftover;
            input.extend_from_slice(&rbuf[..n]);
            return self.deliver(input, now);
        }
        if let Phase::Open(ws) = &mut self.phase {
            let consumed = ws.feed(&mut rbuf[..n], &mut self.out, now);
            ws.keep(&rbuf[consumed..n]);
        }
    }

    /// Hands `input` (bytes not yet seen by the core) to the core.
    fn deliver(&mut self, mut input: Vec<u8>, now: Instant) {
        if let Phase::Open(ws) = &mut self.phase {
            if input.is_empty() {
                return;
            }
            let consumed = ws.feed(&mut input, &mut self.out, now);
            input.drain(..consumed);
            ws.keep(&input);
        }
    }

    /// The HTTP upgrade, once the request so far may be complete.
    fn handshake(&mut self, owner: &Arc<LoopShared>, token: usize, now: Instant) {
        let Phase::Handshake { request, .. } = &mut self.phase else {
            return;
        };
        let buf = mem::take(request);
        let limits = self.service.config.handshake_limits;
        let wanted = limits.max_headers.min(256);
        let mut headers = vec![EMPTY_HEADER; wanted];
        let (decision, consumed, upgraded) =
            match handshake::parse_request(&buf, &mut headers, &limits) {
                Ok(Parsed::Incomplete) => {
                    if let Phase::Handshake { request, .. } = &mut self.phase {
                        *request = buf;
                    }
                    return;
                }
                Err(e) => {
                    log::debug!("{}: bad upgrade request: {e}", self.peer);
                    let _ = write_grow(&mut self.out, |out| {
                        e.write_response(out)
                            .map_err(handshake::WriteError::InsufficientSize)
                    });
                    return self.refused(now);
                }
                Ok(Parsed::Complete { value, consumed }) => {
                    let request = UpgradeRequest {
                        request: value,
                        peer: self.peer,
                        tls: self.tls.is_some(),
                    };
                    let decision = if self.service.at_capacity() {
                        Accept::reject(503, "server at capacity")
                    } else {
                        let handler = &self.service.handler;
                        guard(|| handler.on_accept(&request))
                            .unwrap_or_else(|()| Accept::reject(500, "internal error"))
                    };
                    let written = match &decision {
                        Accept::Upgrade {
                            subprotocol,
                            headers,
                            ..
                        } => {
                            let extra: Vec<(&str, &[u8])> = headers
                                .iter()
                                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                                .collect();
                            write_grow(&mut self.out, |out| {
                                handshake::write_accept(
                                    out,
                                    &request.request,
                                    subprotocol.as_deref(),
                                    &extra,
                                )
                            })
                        }
                        Accept::Reject { status, body } => {
                            let extra: &[(&str, &[u8])] = if *status == 503 {
                                &[("Retry-After", b"1")]
                            } else {
                                &[]
                            };
                            write_grow(&mut self.out, |out| {
                                handshake::write_reject(out, *status, body, extra)
                            })
                        }
                    };
                    if let Err(e) = written {
                        log::error!(
                            "{}: the handler's answer cannot be written: {e:?}",
                            self.peer
                        );
                        self.out.clear();
                        let _ = write_grow(&mut self.out, |out| {
                            handshake::write_reject(out, 500, "internal error", &[])
                        });
                        return self.refused(now);
                    }
                    let upgraded = Upgraded {
                        path: request.path().into(),
                        query: request.query().map(Into::into),
                        subprotocol: None,
                        context: None,
                    };
                    (decision, consumed, upgraded)
                }
            };
        drop(headers);
        match decision {
            Accept::Reject { .. } => self.refused(now),
            Accept::Upgrade {
                subprotocol,
                context,
                ..
            } => {
                let upgraded = Upgraded {
                    subprotocol: subprotocol.map(String::into_boxed_str),
                    context: context.0,
                    ..upgraded
                };
                let handler = Arc::clone(&self.service.handler);
                self.release_slot();
                self.open(handler, upgraded, owner, token, Role::Server, now);
                let rest = buf.get(consumed..).unwrap_or_default().to_vec();
                self.deliver(rest, now);
            }
        }
    }

    /// A refused upgrade: the answer is in `out`; write it, then linger.
    fn refused(&mut self, now: Instant) {
        self.release_slot();
        self.phase = Phase::Answering {
            until: later(now, self.service.config.handshake_timeout),
        };
        self.flush(now);
    }

    /// Opens the WebSocket: the core, the handle, `on_connect`.
    fn open(
        &mut self,
        handler: Arc<dyn Handler>,
        upgraded: Upgraded,
        owner: &Arc<LoopShared>,
        token: usize,
        role: Role,
        now: Instant,
    ) -> ConnectionHandle {
        let config = &self.service.config;
        let mask = (role == Role::Client).then(Rng::from_os);
        let shared = Arc::new(Shared {
            id: self.id,
            peer: self.peer,
            upgraded,
            token,
            owner: Arc::clone(owner),
            max_buffered: config.max_buffered_bytes,
            tx: std::sync::Mutex::new(Outbox::new(mask)),
        });
        let handle = ConnectionHandle { shared };
        let core = Connection::new(
            role,
            config.connection,
            Budgeted::new(Arc::clone(&self.service.budget)),
            Rng::from_os(),
            now,
        );
        let mut ws = Box::new(Ws {
            core,
            handle: handle.clone(),
            handler,
            rx: Vec::new(),
            end: None,
            our_close: None,
        });
        self.service.opened(&handle);
        if guard(|| ws.handler.on_connect(&ws.handle)).is_err() {
            ws.panicked(now);
        }
        self.phase = Phase::Open(ws);
        handle
    }

    /// Writes `out` (through TLS when there is a session) as far as the
    /// socket takes it, tracking whether the peer makes progress.
    fn write(&mut self, now: Instant) -> Result<(), CloseCause> {
        let mut progress = false;
        match &mut self.tls {
            None => {
                while self.sent < self.out.len() {
                    match self.io.write(&self.out[self.sent..]) {
                        Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                        Ok(n) => {
                            self.sent += n;
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(CloseCause::Io(e.kind())),
                    }
                }
            }
            Some(tls) => loop {
                if self.sent < self.out.len() {
                    match tls.writer().write(&self.out[self.sent..]) {
                        Ok(n) => self.sent += n,
                        Err(e) => return Err(CloseCause::Io(e.kind())),
                    }
                }
                if !tls.wants_write() {
                    break;
                }
                match tls.write_tls(&mut self.io) {
                    Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(CloseCause::Io(e.kind())),
                }
            },
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        let pending = !self.out.is_empty() || self.tls_pending();
        self.stalled_since = match (pending, progress) {
            (false, _) => None,
            (true, true) => Some(now),
            (true, false) => self.stalled_since.or(Some(now)),
        };
        Ok(())
    }

    fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
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
            handler,
            upgraded,
            leftover,
            id,
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
        };
        let handle = conn.open(handler, upgraded, owner, token, Role::Client, now);
        conn.deliver(leftover, now);
        conn.flush(now);
        (conn, handle)
    }
}

impl Ws {
    /// Keeps unconsumed input (part of a frame header) for the next read.
    fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() && !self.core.is_closed() {
            self.rx.extend_from_slice(rest);
        }
    }

    /// Feeds input to the core and hands each event to the handler.
    /// Returns how much was consumed (all of it once the connection
    /// failed: the rest is discarded).
    fn feed(&mut self, input: &mut [u8], out: &mut Vec<u8>, now: Instant) -> usize {
        let mut pos = 0;
        while pos < input.len() {
            let (n, event) = match self.core.handle_read_unborrowed(&mut input[pos..], now) {
                Ok(read) => read,
                Err(e) => {
                    self.core_failed(e);
                    return input.len();
                }
            };
            let base = pos;
            pos += n;
            let Some(event) = event else {
                if n == 0 {
                    break;
                }
                continue;
            };
            // Pongs queued by earlier frames go out before any reply the
            // handler makes to this message.
            self.take_control(out);
            let Self {
                core,
                handle,
                handler,
                our_close,
                end,
                ..
            } = self;
            let outcome = match core.event(event, &input[base..pos]) {
                Ok(Event::Text(text)) => guard(|| handler.on_message(handle, Message::Text(text))),
                Ok(Event::Binary(data)) => {
                    guard(|| handler.on_message(handle, Message::Binary(data)))
                }
                Ok(Event::Close(frame)) => {
                    let info = match our_close {
                        // The answer to our Close: the handshake completed.
                        Some((cause, code, reason)) => {
                            CloseInfo::new(cause.clone(), Some(*code), reason)
                        }
                        None => CloseInfo::new(
                            CloseCause::PeerClosed,
                            frame.map(|f| f.code),
                            frame.map_or("", |f| f.reason),
                        ),
                    };
                    end.get_or_insert(info);
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) => {
                    self.core_failed(e);
                    return input.len();
                }
            };
            if outcome.is_err() {
                self.panicked(now);
            }
        }
        pos
    }

    /// Takes the outbox's frames (and a requested Close) into `out`.
    fn take_outbox(&mut self, out: &mut Vec<u8>, now: Instant) {
        let request = {
            let mut tx = self.handle.shared.outbox();
            tx.scheduled = false;
            if !tx.frames.is_empty() {
                // The frames stay counted (now as the loop's) until the
                // write updates `in_loop`: a send meanwhile sees them.
                tx.in_loop += tx.frames.len();
                if out.is_empty() {
                    mem::swap(out, &mut tx.frames);
                } else {
                    out.extend_from_slice(&tx.frames);
                    tx.frames.clear();
                }
            }
            // Once the core has stopped sending data (a Close received,
            // queued or sent, or a failure), nothing more may follow:
            // later sends are refused from here on.
            if !self.core.is_open() {
                tx.closed = true;
            }
            tx.close.take()
        };
        if let Some(request) = request {
            if self.core.close(request.code, &request.reason, now).is_ok() {
                let reason = truncate(&request.reason);
                self.our_close = Some((request.cause, request.code, reason));
            }
        }
    }

    /// Appends the core's queued control frames to `out`.
    fn take_control(&mut self, out: &mut Vec<u8>) {
        if !self.core.wants_transmit() {
            return;
        }
        loop {
            let len = out.len();
            out.resize(len + 256, 0);
            match self.core.poll_transmit(&mut out[len..]) {
                Ok(n) => {
                    out.truncate(len + n);
                    if n == 0 {
                        break;
                    }
                }
                Err(_) => {
                    out.truncate(len);
                    break;
                }
            }
        }
    }

    /// The core failed the connection with `e` (its Close, if any, is
    /// queued).
    fn core_failed(&mut self, e: CoreError) {
        // A failed connection reads no more messages: its reassembly
        // memory goes back to the budget now, not when the peer hangs up.
        if let Some(buf) = self.core.idle_message_buffer() {
            buf.release();
        }
        let ours = self
            .our_close
            .as_ref()
            .map(|(_, code, reason)| (*code, reason.as_str()));
        let info = match e {
            CoreError::Protocol(p) => match ours {
                // After our Close no second one is sent: report ours.
                Some((code, reason)) => {
                    CloseInfo::new(CloseCause::ProtocolError(p), Some(code), reason)
                }
                None => CloseInfo::new(
                    CloseCause::ProtocolError(p),
                    Some(p.close_code()),
                    p.reason(),
                ),
            },
            CoreError::PongTimeout => CloseInfo::new(
                CloseCause::PongTimeout,
                Some(CloseCode::GOING_AWAY),
                "pong timeout",
            ),
            CoreError::FragmentTimeout => CloseInfo::new(
                CloseCause::FragmentTimeout,
                Some(CloseCode::POLICY_VIOLATION),
                "fragment timeout",
            ),
            CoreError::CloseTimeout => match &self.our_close {
                // A shutdown ends the connection whether or not it answers.
                Some((CloseCause::ServerShutdown, code, reason)) => {
                    CloseInfo::new(CloseCause::ServerShutdown, Some(*code), reason)
                }
                Some((_, code, reason)) => {
                    CloseInfo::new(CloseCause::CloseTimeout, Some(*code), reason)
                }
                None => CloseInfo::new(CloseCause::CloseTimeout, None, ""),
            },
            _ => return,
        };
        self.record(info);
    }

    /// The handler panicked: the connection is closed with 1011.
    fn panicked(&mut self, now: Instant) {
        log::error!("connection {}: the handler panicked", self.handle.shared.id);
        self.record(CloseInfo::new(
            CloseCause::HandlerPanicked,
            Some(CloseCode::INTERNAL_ERROR),
            "",
        ));
        if self.core.close(CloseCode::INTERNAL_ERROR, "", now).is_ok() {
            self.our_close = Some((
                CloseCause::HandlerPanicked,
                CloseCode::INTERNAL_ERROR,
                String::new(),
            ));
        }
        self.handle.shared.outbox().closed = true;
    }

    fn record(&mut self, info: CloseInfo) {
        self.end.get_or_insert(info);
    }

    /// Fills in how it ended, if nothing did yet.
    fn settle(&mut self) {
        if self.end.is_none() {
            let info = match &self.our_close {
                Some((cause, code, reason)) => CloseInfo::new(cause.clone(), Some(*code), reason),
                None => CloseInfo::new(CloseCause::UnexpectedEof, None, ""),
            };
            self.end = Some(info);
        }
    }
}

/// A close reason as the core sends it: at most 123 bytes, cut on a
/// character boundary.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Runs a handler callback; a panic is caught and reported as `Err`.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| ())
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Runs a writer that may need a larger buffer, appending to `out`.
fn write_grow(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, handshake::WriteError>,
) -> Result<usize, handshake::WriteError> {
    let start = out.len();
    out.resize(start + 512, 0);
    let result = match write(&mut out[start..]) {
        Err(handshake::WriteError::InsufficientSize(e)) => {
            out.resize(start + e.required, 0);
            write(&mut out[start..])
        }
        other => other,
    };
    out.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}
