//! The engine: event loops, one thread each, each with a `mio::Poll`, that
//! own their connections and drive the sans-I/O core.
//!
//! ```text
//! accept ─► loop k owns: Slab<Conn>, timers, read buffer, inbox
//!   readable ─► (TLS decrypt) ─► core ─► handler callbacks, inline ─► outbox
//!   writable ─► write the output (TLS records sealed as they go)
//!   timer    ─► core.handle_timeout ─► pings; pong, close, handshake,
//!               write-stall and linger deadlines
//!   inbox    ─► output from other threads (a waker interrupts the poll),
//!               client connections to adopt, shutdown
//! ```
//!
//! Every loop watches the listening socket and accepts when it is woken
//! for it: the loop that is least busy gets there first, so new
//! connections go where there is time for them. Nothing blocks: a
//! callback runs on its connection's loop and must not block it.

pub(crate) mod budget;
pub(crate) mod command;
pub(crate) mod conn;
#[cfg(test)]
mod tests;
pub(crate) mod timers;

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant as StdInstant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use snowsocket_core::Instant;

use self::budget::Budget;
use self::command::{Command, LoopShared};
use self::conn::{later, Conn};
use self::timers::Timers;
use crate::close::CloseCause;
use crate::config::ServerConfig;
use crate::handle::ConnectionHandle;
use crate::handler::Handler;

const WAKER: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);

/// How long a loop waits before accepting again after running out of
/// file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The timers' granularity, in microseconds (see `Loop::timeout`): 65.5 ms.
/// No deadline here needs finer precision (the finest promise is a write
/// stall noticed within `write_timeout` + 1 s), and the coarser the grid,
/// the more heartbeat Pings go out per wake-up: 10,000 idle connections
/// pinged every 5 s took 1.60–1.85 % of a core against 1.75–2.00 % with a
/// 4 ms grid (`--modes heartbeat`, eight runs each, interleaved).
const TIMER_GRAIN: u64 = 65_536;

/// The core's clock: microseconds since the first call in this process.
pub(crate) fn now() -> Instant {
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(StdInstant::now);
    Instant::from_micros(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// What the connections of one server (or one client connection) share:
/// the configuration, the handler, the counters behind the limits, the
/// memory budget, and the registry of open connections.
pub(crate) struct Service {
    pub(crate) config: ServerConfig,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) budget: Arc<Budget>,
    /// The connections' unsent output ([`ServerConfig::output_budget`]).
    pub(crate) output_budget: Arc<Budget>,
    established: AtomicUsize,
    handshaking: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    registry: Mutex<HashMap<u64, ConnectionHandle>>,
    /// The clock ([`now`]; a virtual one in the unit tests).
    clock: fn() -> Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Service {
    pub(crate) fn new(config: ServerConfig, handler: Arc<dyn Handler>) -> Self {
        Self {
            budget: Arc::new(Budget::new(config.memory_budget)),
            output_budget: Arc::new(Budget::new(config.output_budget)),
            config,
            handler,
            established: AtomicUsize::new(0),
            handshaking: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            registry: Mutex::new(HashMap::new()),
            clock: now,
        }
    }

    /// The service on another clock (the unit tests' virtual one).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: fn() -> Instant) -> Self {
        self.clock = clock;
        self
    }

    /// The time now. A turn of the loop starts with one `now` for all its
    /// work, but a handler's callback may take long: what measures the
    /// peer (the write stall) or starts a wait after a callback reads the
    /// clock again.
    pub(crate) fn now(&self) -> Instant {
        (self.clock)()
    }

    /// Whether an upgrade now would pass `max_connections` (the client gets
    /// a 503).
    pub(crate) fn at_capacity(&self) -> bool {
        self.established.load(Ordering::Acquire) >= self.config.max_connections
    }

    /// Takes a handshake slot for a connection from `peer`, if the bounds
    /// on pending handshakes (all, and from that address) allow it.
    pub(crate) fn admit(&self, peer: SocketAddr) -> bool {
        let mut per_ip = lock(&self.per_ip);
        let from_peer = per_ip.entry(peer.ip()).or_insert(0);
        if *from_peer >= self.config.max_handshakes_per_ip
            || self.handshaking.load(Ordering::Acquire) >= self.config.max_pending_handshakes
        {
            if *from_peer == 0 {
                per_ip.remove(&peer.ip());
            }
            return false;
        }
        *from_peer += 1;
        self.handshaking.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Gives back the handshake slot of a connection from `peer`.
    pub(crate) fn release_slot(&self, peer: SocketAddr) {
        let mut per_ip = lock(&self.per_ip);
        if let Some(n) = per_ip.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&peer.ip());
            }
        }
        self.handshaking.fetch_sub(1, Ordering::AcqRel);
    }

    /// An upgraded connection opened.
    pub(crate) fn opened(&self, handle: &ConnectionHandle) {
        self.established.fetch_add(1, Ordering::AcqRel);
        lock(&self.registry).insert(handle.id(), handle.clone());
    }

    /// An upgraded connection is gone.
    pub(crate) fn closed(&self, id: u64) {
        self.established.fetch_sub(1, Ordering::AcqRel);
        lock(&self.registry).remove(&id);
    }

    /// Open connections, and connections in their handshake.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.established.load(Ordering::Acquire),
            self.handshaking.load(Ordering::Acquire),
        )
    }

    /// Every open connection's handle.
    pub(crate) fn handles(&self) -> Vec<ConnectionHandle> {
        lock(&self.registry).values().cloned().collect()
    }
}

/// One event loop.
pub(crate) struct Loop {
    poll: Poll,
    shared: Arc<LoopShared>,
    conns: Slab<Conn<TcpStream>>,
    timers: Timers,
    rbuf: Box<[u8]>,
    listener: Option<(TcpListener, Arc<Service>)>,
    accept_again: Option<Instant>,
    commands: Vec<Command>,
    /// Shutting down: every connection got its Close; the rest are dropped
    /// at this deadline.
    stopping: Option<Instant>,
    /// Commands were left for the next turn.
    commands_pending: bool,
    /// Connections with more to read (their `more_to_read` is set).
    more: Vec<usize>,
}

impl Loop {
    /// A loop; with `listener`, it accepts for `service`.
    pub(crate) fn new(
        listener: Option<(std::net::TcpListener, Arc<Service>)>,
        read_buffer: usize,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let listener = match listener {
            Some((listener, service)) => {
                listener.set_nonblocking(true)?;
                let mut listener = TcpListener::from_std(listener);
                poll.registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)?;
                Some((listener, service))
            }
            None => None,
        };
        Ok(Self {
            poll,
            shared: Arc::new(LoopShared::new(waker)),
            conns: Slab::new(),
            timers: Timers::default(),
            rbuf: vec![0; conn::read_buffer_len(read_buffer)].into_boxed_slice(),
            listener,
            accept_again: None,
            commands: Vec::new(),
            stopping: None,
            commands_pending: false,
            more: Vec::new(),
        })
    }

    /// The part other threads reach.
    pub(crate) fn shared(&self) -> Arc<LoopShared> {
        Arc::clone(&self.shared)
    }

    /// Runs until shut down (and every connection is gone).
    pub(crate) fn run(mut self) {
        self.shared.enter();
        let mut events = Events::with_capacity(1024);
        loop {
            let now = now();
            let timeout = self.timeout(now);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("event loop: poll failed: {e}");
                break;
            }
            let now = self::now();
            for event in &events {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept(now),
                    Token(token) => {
                        if let Some(conn) = self.conns.get_mut(token) {
                            if event.is_read_closed() {
                                conn.read_closed = true;
                            }
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.on_readable(&mut self.rbuf, &self.shared, token, now);
                            }
                            if event.is_writable() {
                                conn.on_writable(now);
                            }
                            self.settle(token, now);
                        }
                    }
                }
            }
            self.read_more(now);
            self.run_commands(now);
            self.fire_timers(now);
            if self.accept_again.is_some_and(|at| now >= at) {
                self.accept_again = None;
                self.accept(now);
            }
            if let Some(deadline) = self.stopping {
                if now >= deadline {
                    self.abort_all(now);
                }
                if self.conns.is_empty() {
                    break;
                }
            }
        }
    }

    fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.commands_pending || !self.more.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [self.timers.next(), self.accept_again, self.stopping]
            .into_iter()
            .flatten()
            .min()?;
        // Woken on a grid of TIMER_GRAIN: deadlines that fall into the same
        // slot (heartbeats of many connections) are served by one wake-up.
        // No timer needs finer precision.
        let at = next
            .as_micros()
            .div_ceil(TIMER_GRAIN)
            .saturating_mul(TIMER_GRAIN);
        Some(Duration::from_micros(at.saturating_sub(now.as_micros())))
    }

    /// Accepts every pending connection.
    fn accept(&mut self, now: Instant) {
        let Some((listener, service)) = &self.listener else {
            return;
        };
        loop {
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors (or memory): try again soon;
                    // the pending connections wait in the backlog.
                    log::warn!("accept failed: {e}; retrying");
                    self.accept_again = Some(later(now, ACCEPT_RETRY));
                    return;
                }
            };
            if self.stopping.is_some() || !service.admit(peer) {
                log::debug!("{peer}: refused (handshake bounds or shutting down)");
                continue;
            }
            let _ = socket.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let token = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                Token(token),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::error!("{peer}: cannot register: {e}");
                service.release_slot(peer);
                continue;
            }
            let conn = Conn::accepted(socket, peer, Arc::clone(service), now);
            let id = conn.id;
            let conn = entry.insert(conn);
            let deadline = conn.deadline();
            self.timers.arm(&mut conn.armed, deadline, token, id);
        }
    }

    /// Connections that stopped reading to give others a turn (listed by
    /// `settle`: no walk over every connection).
    fn read_more(&mut self, now: Instant) {
        let tokens = core::mem::take(&mut self.more);
        for &token in &tokens {
            if let Some(conn) = self.conns.get_mut(token) {
                if conn.more_to_read {
                    conn.on_readable(&mut self.rbuf, &self.shared, token, now);
                    self.settle(token, now);
                }
            }
        }
        // The list's allocation is kept for the next turn.
        if self.more.is_empty() {
            self.more = tokens;
            self.more.clear();
        }
    }

    fn run_commands(&mut self, now: Instant) {
        // Callbacks run by one command may queue more: drain until empty.
        for _ in 0..64 {
            self.commands_pending = false;
            let mut commands = core::mem::take(&mut self.commands);
            self.shared.drain(&mut commands);
            if commands.is_empty() {
                self.commands = commands;
                return;
            }
            for command in commands.drain(..) {
                match command {
                    Command::Flush { token, id } => {
                        if let Some(conn) = self.conns.get_mut(token) {
                            if conn.id == id {
                                conn.flush_pushed(now);
                                self.settle(token, now);
                            }
                        }
                    }
                    Command::Resume { token, id } => {
                        if let Some(conn) = self.conns.get_mut(token) {
                            if conn.id == id {
                                conn.resume(&mut self.rbuf, &self.shared, token, now);
                                self.settle(token, now);
                            }
                        }
                    }
                    Command::Adopt(adopted) => self.adopt(*adopted, now),
                    Command::Shutdown => self.shutdown(now),
                }
            }
            self.commands = commands;
        }
        // Still more: the next turn of the loop takes it without waiting.
        self.commands_pending = true;
    }

    fn adopt(&mut self, mut adopted: conn::Adopted, now: Instant) {
        let entry = self.conns.vacant_entry();
        let token = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut adopted.socket,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::error!("{}: cannot register: {e}", adopted.peer);
            return;
        }
        let ready = adopted.ready.clone();
        let (conn, handle) = Conn::adopted(adopted, &self.shared, token, now);
        entry.insert(conn);
        let _ = ready.send(handle);
        self.settle(token, now);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, token, id)) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(token) else {
                continue;
            };
            if timers::short_id(conn.id) != id || conn.armed != Some(at) {
                continue;
            }
            conn.armed = None;
            // The deadline may have moved later since this entry was
            // pushed (see `Timers`): then it is only re-armed.
            if conn.deadline().is_some_and(|deadline| deadline <= now) {
                conn.on_timeout(now);
            }
            if conn.more_to_read && !conn.is_done() {
                // Input waits for the next turn's reads (the connection
                // is listed in `more`), and a deadline is not judged
                // before them (`Conn::on_timeout`): re-armed here, it
                // would come up again at once, in this very loop. The
                // reads' `settle` re-arms it.
                continue;
            }
            self.settle(token, now);
        }
    }

    /// After a connection did something: removes it if it is over, else
    /// arms its next deadline.
    fn settle(&mut self, token: usize, _now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if !conn.is_done() {
            let deadline = conn.deadline();
            let id = conn.id;
            self.timers.arm(&mut conn.armed, deadline, token, id);
            if conn.more_to_read {
                self.more.push(token);
            }
            return;
        }
        let mut conn = self.conns.remove(token);
        let _ = self.poll.registry().deregister(conn.socket_mut());
        conn.finish();
    }

    /// Starts the shutdown: Close 1001 to every open connection; the
    /// handshaking ones are dropped.
    fn shutdown(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        if let Some((mut listener, service)) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
            self.stopping = Some(later(now, service.config.shutdown_timeout));
        } else {
            self.stopping = Some(now);
        }
        let tokens: Vec<usize> = self.conns.iter().map(|(t, _)| t).collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(token) {
                conn.shut_down(now);
                self.settle(token, now);
            }
        }
    }

    /// The shutdown deadline passed: whoever is left is dropped.
    fn abort_all(&mut self, now: Instant) {
        let tokens: Vec<usize> = self.conns.iter().map(|(t, _)| t).collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(token) {
                conn.abort(CloseCause::ServerShutdown);
                self.settle(token, now);
            }
        }
    }
}

/// A running loop: where to send it commands, and its thread.
pub(crate) struct LoopThread {
    pub(crate) shared: Arc<LoopShared>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopThread {
    /// Asks the loop to shut down and waits for it.
    pub(crate) fn stop(&mut self) {
        self.shared.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
