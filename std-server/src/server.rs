//! The server: a listener, one thread per connection, a handler, limits and
//! graceful shutdown.

use core::fmt;
use core::net::SocketAddr;
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::panic;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant as StdInstant;

use snowsocket_core::handshake::{self, HandshakeError, Parsed, EMPTY_HEADER};
use snowsocket_core::{CloseCode, Role};

use crate::close::{CloseCause, CloseInfo};
use crate::config::ServerConfig;
use crate::engine::{self, ConnectionHandle, Reader, Shared, Step, Upgraded};
use crate::handler::{Accept, Handler, UpgradeRequest};
use crate::park::{Parked, Parking};
use crate::transport::{deadline_in, set_deadline, Transport};

/// Connection ids, unique in the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds to `addr` (port 0 picks a free port; see
    /// [`Server::local_addr`]).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        Ok(Self { listener, config })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves on the current thread, forever (until the listener fails;
    /// running out of file descriptors is waited out).
    pub fn serve(self, handler: impl Handler) -> io::Result<()> {
        let inner = Inner::new(self.config, Arc::new(handler), self.listener.local_addr()?);
        inner.start_parker()?;
        let result = inner.accept_loop(&self.listener);
        inner.shutdown();
        result
    }

    /// Serves on a new thread; the [`ServerHandle`] shuts it down.
    pub fn spawn(self, handler: impl Handler) -> io::Result<ServerHandle> {
        let local_addr = self.listener.local_addr()?;
        let inner = Inner::new(self.config, Arc::new(handler), local_addr);
        inner.start_parker()?;
        let accept_inner = Arc::clone(&inner);
        let listener = self.listener;
        let thread = thread::Builder::new()
            .name(thread_name(local_addr))
            .stack_size(inner.config.thread_stack_size)
            .spawn(move || {
                if let Err(e) = accept_inner.accept_loop(&listener) {
                    log::error!("accept loop on {local_addr} failed: {e}");
                }
            })?;
        Ok(ServerHandle {
            inner,
            accept_thread: Some(thread),
            local_addr,
        })
    }
}

/// The name of every thread a server starts (at most 15 bytes, as Linux
/// keeps them): `ssk-<port>`.
pub fn thread_name(local_addr: SocketAddr) -> String {
    format!("ssk-{}", local_addr.port())
}

/// A running server (see [`Server::spawn`]). Dropping it shuts it down.
#[derive(Debug)]
pub struct ServerHandle {
    inner: Arc<Inner>,
    accept_thread: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl ServerHandle {
    /// The address the server listens on.
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The number of connections (handshaking or open).
    pub fn connections(&self) -> usize {
        lock(&self.inner.registry).len()
    }

    /// Graceful shutdown: stops accepting, sends Close 1001 to every open
    /// connection, waits for their answers up to
    /// [`ServerConfig::shutdown_timeout`], closes the sockets of the rest,
    /// and joins every thread the server started. `on_close` has run for
    /// every connection when this returns.
    ///
    /// It joins the connection threads, so call it from outside the
    /// handler's callbacks (e.g. signal one thread to call it).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.accept_thread.take() else {
            return;
        };
        self.inner.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let wake = wake_addr(self.local_addr);
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_err() {
            log::warn!("could not wake the accept loop on {wake}");
        }
        let _ = thread.join();
        self.inner.shutdown();
    }

    /// How many open connections are idle without a thread (see
    /// [`ServerConfig::release_idle_after`]).
    pub fn idle_connections(&self) -> usize {
        self.inner.parking.as_ref().map_or(0, |p| p.len())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => core::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => core::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

struct Entry {
    /// The socket, to close it at shutdown.
    socket: Arc<TcpStream>,
    /// Set once the connection is open.
    handle: Option<ConnectionHandle>,
}

struct Inner {
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    local_addr: SocketAddr,
    stopping: AtomicBool,
    registry: Mutex<HashMap<u64, Entry>>,
    /// Signalled when a connection leaves the registry.
    left: Condvar,
    /// Every thread started and not joined yet, by a serial number (a
    /// connection has one thread at a time, but may have several over its
    /// life when it parks).
    threads: Mutex<HashMap<u64, JoinHandle<()>>>,
    /// Serial numbers of threads that finished (to join).
    done_tx: Mutex<Sender<u64>>,
    done_rx: Mutex<Receiver<u64>>,
    /// Idle connections without a thread; `None` when disabled.
    parking: Option<Arc<Parking>>,
    /// The poller thread of `parking`, and its `Poll` before it starts.
    parker: Mutex<Option<JoinHandle<()>>>,
    parker_poll: Mutex<Option<crate::park::Poll>>,
    rejector: Mutex<Option<Rejector>>,
}

/// The thread that answers connections over the limit with 503.
struct Rejector {
    queue: SyncSender<Arc<TcpStream>>,
    thread: JoinHandle<()>,
    shared: Arc<RejectorShared>,
}

/// What the shutdown and the rejector thread share.
#[derive(Default)]
struct RejectorShared {
    /// Set by the shutdown: queued connections are closed unanswered.
    stopping: AtomicBool,
    /// The connection being answered, to close it at shutdown (its answer
    /// may wait for the peer's request up to [`REFUSE_WITHIN`]).
    current: Mutex<Option<Arc<TcpStream>>>,
}

impl RejectorShared {
    /// Makes `stream` the one being answered; `false` when stopping.
    fn start(&self, stream: &Arc<TcpStream>) -> bool {
        *lock(&self.current) = Some(Arc::clone(stream));
        !self.stopping.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(stream) = lock(&self.current).take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn new(config: ServerConfig, handler: Arc<dyn Handler>, local_addr: SocketAddr) -> Arc<Self> {
        let (done_tx, done_rx) = mpsc::channel();
        let (parking, parker_poll) = match config.release_idle_after.map(|_| Parking::new()) {
            Some(Ok((parking, poll))) => (Some(Arc::new(parking)), Some(poll)),
            Some(Err(e)) => {
                log::info!("idle connections keep their thread: {e}");
                (None, None)
            }
            None => (None, None),
        };
        Arc::new(Self {
            config,
            handler,
            local_addr,
            stopping: AtomicBool::new(false),
            registry: Mutex::new(HashMap::new()),
            left: Condvar::new(),
            threads: Mutex::new(HashMap::new()),
            done_tx: Mutex::new(done_tx),
            done_rx: Mutex::new(done_rx),
            parking,
            parker: Mutex::new(None),
            parker_poll: Mutex::new(parker_poll),
            rejector: Mutex::new(None),
        })
    }

    /// Starts the idle-connection poller thread, if parking is on.
    fn start_parker(self: &Arc<Self>) -> io::Result<()> {
        let Some(poll) = lock(&self.parker_poll).take() else {
            return Ok(());
        };
        let inner = Arc::clone(self);
        let thread = thread::Builder::new()
            .name(thread_name(self.local_addr))
            // The connection threads' size: when no thread can be started,
            // the poller ends a connection itself, running its on_close.
            .stack_size(self.config.thread_stack_size)
            .spawn(move || {
                if let Some(parking) = inner.parking.clone() {
                    parking.run(poll, |parked| inner.resume(parked), || inner.reap());
                }
            })?;
        *lock(&self.parker) = Some(thread);
        Ok(())
    }

    /// Starts a server thread running `body`. The thread list stays locked
    /// until the thread is in it, so a shutdown that drains the list cannot
    /// miss a thread started meanwhile.
    fn start_thread(
        self: &Arc<Self>,
        stack_size: usize,
        body: impl FnOnce(&Arc<Self>) + Send + 'static,
    ) -> io::Result<()> {
        let serial = next_id();
        let inner = Arc::clone(self);
        let mut threads = lock(&self.threads);
        let thread = thread::Builder::new()
            .name(thread_name(self.local_addr))
            .stack_size(stack_size)
            .spawn(move || {
                body(&inner);
                let _ = lock(&inner.done_tx).send(serial);
                // The poller joins finished threads when it wakes up.
                if let Some(parking) = &inner.parking {
                    parking.wake();
                }
            })?;
        threads.insert(serial, thread);
        Ok(())
    }

    fn accept_loop(self: &Arc<Self>, listener: &TcpListener) -> io::Result<()> {
        let mut failures = 0u32;
        loop {
            let accepted = listener.accept();
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.reap();
            let (stream, peer) = match accepted {
                Ok(x) => {
                    failures = 0;
                    x
                }
                Err(e) => {
                    // A listener that cannot accept at all: give up.
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                    ) {
                        return Err(e);
                    }
                    // Out of file descriptors and the like: back off (up to
                    // 1 s) and keep trying. Connections that end free them;
                    // a server that was full for a while (a peer can make it
                    // so) must not stop accepting for good.
                    log::warn!("accept on {} failed: {e}", self.local_addr);
                    failures = failures.saturating_add(1);
                    let pause = 10 * u64::from(failures.min(100));
                    thread::sleep(Duration::from_millis(pause));
                    continue;
                }
            };
            self.admit(stream, peer);
        }
    }

    fn admit(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let id = next_id();
        let stream = {
            let mut registry = lock(&self.registry);
            if registry.len() >= self.config.max_connections {
                drop(registry);
                log::info!("{peer}: over max_connections, refused");
                self.reject(stream);
                return;
            }
            let stream = Arc::new(stream);
            registry.insert(
                id,
                Entry {
                    socket: Arc::clone(&stream),
                    handle: None,
                },
            );
            stream
        };
        let started = self.start_thread(self.config.thread_stack_size, move |inner| {
            inner.connection_thread(id, stream, peer);
        });
        if let Err(e) = started {
            log::error!("{peer}: cannot start a connection thread: {e}");
            self.leave(id);
        }
    }

    /// Removes a connection that ended from the registry.
    fn leave(&self, id: u64) {
        lock(&self.registry).remove(&id);
        self.left.notify_all();
    }

    /// Joins the threads that finished.
    fn reap(&self) {
        let finished: Vec<u64> = lock(&self.done_rx).try_iter().collect();
        if finished.is_empty() {
            return;
        }
        let mut threads = lock(&self.threads);
        for id in finished {
            if let Some(thread) = threads.remove(&id) {
                let _ = thread.join();
            }
        }
    }

    /// Answers a connection over the limit with 503 (after the TLS
    /// handshake under `wss://`), on one helper thread with a bounded queue.
    fn reject(&self, stream: TcpStream) {
        let mut rejector = lock(&self.rejector);
        if rejector.is_none() {
            let (tx, rx) = mpsc::sync_channel::<Arc<TcpStream>>(32);
            let limits = self.config.handshake_limits;
            let tls = self.config.tls.clone();
            let shared = Arc::new(RejectorShared::default());
            let in_thread = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(thread_name(self.local_addr))
                .stack_size(256 * 1024)
                .spawn(move || {
                    for stream in rx {
                        if in_thread.start(&stream) {
                            refuse_busy(&stream, tls.as_ref(), limits.max_request_size);
                        }
                        *lock(&in_thread.current) = None;
                    }
                });
            match spawned {
                Ok(thread) => {
                    *rejector = Some(Rejector {
                        queue: tx,
                        thread,
                        shared,
                    });
                }
                Err(_) => return,
            }
        }
        if let Some(rejector) = rejector.as_ref() {
            let stream = Arc::new(stream);
            if let Err(TrySendError::Full(_)) = rejector.queue.try_send(stream) {
                log::warn!("too many refused connections waiting; dropping one");
            }
        }
    }

    fn connection_thread(self: &Arc<Self>, id: u64, stream: Arc<TcpStream>, peer: SocketAddr) {
        engine::set_reader_thread(id);
        let opened = panic::catch_unwind(AssertUnwindSafe(|| self.open(id, stream, peer)));
        match opened {
            Ok(Some((reader, stopping))) => {
                let handle = reader.handle();
                self.drive(reader, handle, Some(stopping));
            }
            Ok(None) => self.leave(id),
            Err(_) => {
                log::error!("{peer}: connection thread panicked");
                self.leave(id);
            }
        }
    }

    /// The handshake: `Some` with the open connection's reader (and
    /// whether the server is stopping), registered with its handle.
    fn open(&self, id: u64, stream: Arc<TcpStream>, peer: SocketAddr) -> Option<(Reader, bool)> {
        let _ = stream.set_nodelay(true);
        let deadline = deadline_in(self.config.handshake_timeout);
        let mut transport = match &self.config.tls {
            None => Transport::Plain(stream),
            Some(tls) => match rustls::ServerConnection::new(Arc::clone(tls)) {
                Ok(conn) => Transport::Tls(stream, Box::new(rustls::Connection::Server(conn))),
                Err(e) => {
                    log::error!("{peer}: TLS session: {e}");
                    return None;
                }
            },
        };
        if let Err(e) = transport.complete_handshake(deadline) {
            log::debug!("{peer}: TLS handshake failed: {e}");
            return None;
        }
        let (leftover, upgraded) = match self.upgrade(&mut transport, peer, deadline) {
            Ok(upgraded) => upgraded,
            Err(e) => {
                log::debug!("{peer}: no upgrade: {e}");
                let _ = transport.flush();
                let _ = transport.socket().shutdown(Shutdown::Write);
                return None;
            }
        };
        let (socket, tls) = transport.into_parts();
        let c = &self.config;
        let created = Shared::new(
            id,
            socket,
            tls,
            Role::Server,
            c.connection,
            c.write_timeout,
            upgraded,
        );
        let shared = match created {
            Ok(shared) => shared,
            Err(e) => {
                log::error!("{peer}: {e}");
                return None;
            }
        };
        let mut reader = Reader::new(shared, &leftover, c.read_buffer_size);
        drop(leftover);
        if let Some(parking) = &self.parking {
            reader.set_park_after(c.release_idle_after);
            let kicker: Arc<dyn engine::Kick> = Arc::clone(parking) as Arc<dyn engine::Kick>;
            reader.shared().set_kicker(kicker);
        }
        let handle = reader.handle();
        let mut registry = lock(&self.registry);
        if let Some(entry) = registry.get_mut(&id) {
            entry.handle = Some(handle);
        }
        Some((reader, self.stopping.load(Ordering::SeqCst)))
    }

    /// Runs an open connection on the current thread until it ends
    /// (`on_close`, then it leaves the registry) or parks (idle: the thread
    /// is given back; [`Inner::resume`] continues it). `connect` is
    /// `Some(stopping)` the first time (`on_connect` runs first).
    fn drive(self: &Arc<Self>, reader: Reader, handle: ConnectionHandle, connect: Option<bool>) {
        let handler = &*self.handler;
        let (mut reader, mut handle, mut connect) = (reader, handle, connect);
        let info = loop {
            let run = panic::catch_unwind(AssertUnwindSafe(|| {
                if let Some(stopping) = connect.take() {
                    handler.on_connect(&handle);
                    if stopping {
                        let _ = handle.close_with(
                            CloseCode::GOING_AWAY,
                            "server shutdown",
                            CloseCause::ServerShutdown,
                        );
                    }
                }
                loop {
                    match reader.next() {
                        Step::Message(message) => handler.on_message(&handle, message),
                        Step::Control => {}
                        Step::Idle => return None,
                        Step::Ended(info) => return Some(info),
                    }
                }
            }));
            match run {
                Ok(Some(info)) => break info,
                Ok(None) => {
                    let Some(parking) = &self.parking else {
                        reader.set_park_after(None);
                        continue;
                    };
                    reader.release_buffers();
                    match parking.park(Parked { reader, handle }) {
                        Ok(()) => return,
                        Err(parked) => {
                            (reader, handle) = (parked.reader, parked.handle);
                            reader.resume();
                            reader.set_park_after(None);
                        }
                    }
                }
                Err(_) => {
                    log::error!("{}: handler panicked", handle.peer_addr());
                    handle.abort(CloseCause::HandlerPanicked);
                    reader.set_park_after(None);
                    // The aborted reader only reports the end; should even
                    // that panic, the connection still ends properly.
                    let ended = panic::catch_unwind(AssertUnwindSafe(|| match reader.next() {
                        Step::Ended(info) => Some(info),
                        _ => None,
                    }));
                    break ended.ok().flatten().unwrap_or_else(|| CloseInfo {
                        code: None,
                        reason: String::new(),
                        cause: CloseCause::HandlerPanicked,
                    });
                }
            }
        };
        let id = handle.id();
        log::debug!("{}: connection {id} ended: {info}", handle.peer_addr());
        let _ = panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(&handle, info)));
        drop(reader);
        self.leave(id);
    }

    /// Continues a parked connection on a new thread (on the poller
    /// thread if none can be started).
    fn resume(self: &Arc<Self>, parked: Parked) {
        let id = parked.handle.id();
        let slot = Arc::new(Mutex::new(Some(parked)));
        let taken = Arc::clone(&slot);
        let started = self.start_thread(self.config.thread_stack_size, move |inner| {
            if let Some(Parked { mut reader, handle }) = lock(&taken).take() {
                engine::set_reader_thread(id);
                reader.resume();
                inner.drive(reader, handle, None);
            }
        });
        if let Err(e) = started {
            log::error!("connection {id}: cannot start a thread to resume it: {e}");
            if let Some(Parked { mut reader, handle }) = lock(&slot).take() {
                reader.resume();
                reader.set_park_after(None);
                handle.abort(CloseCause::Io(e.kind()));
                self.drive(reader, handle, None);
            }
        }
    }

    /// Reads the upgrade request, asks the handler, answers. Returns the
    /// bytes received after the request (the client's first frames) and
    /// what the connection keeps of the request and the answer.
    fn upgrade(
        &self,
        transport: &mut Transport,
        peer: SocketAddr,
        deadline: StdInstant,
    ) -> Result<(Vec<u8>, Upgraded), UpgradeError> {
        let limits = self.config.handshake_limits;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        // Sized by the first answer written (`write_grow`): what a
        // connection allocates during its handshake is freed, but stays
        // resident in the allocator for as long as the connection lives.
        let mut out = Vec::new();
        loop {
            set_deadline(transport.socket(), deadline)?;
            let n = match transport.read(&mut chunk) {
                Ok(0) => return Err(UpgradeError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            buf.extend_from_slice(&chunk[..n]);
            let wanted = limits.max_headers.min(256);
            let mut on_stack = [EMPTY_HEADER; 64];
            let mut on_heap = Vec::new();
            let headers = match on_stack.get_mut(..wanted) {
                Some(headers) => headers,
                None => {
                    on_heap.resize(wanted, EMPTY_HEADER);
                    &mut on_heap[..]
                }
            };
            let parsed = handshake::parse_request(&buf, headers, &limits);
            let (request, consumed) = match parsed {
                Ok(Parsed::Incomplete) => continue,
                Ok(Parsed::Complete { value, consumed }) => (value, consumed),
                Err(e) => {
                    let n = write_grow(&mut out, |out| {
                        e.write_response(out)
                            .map_err(handshake::WriteError::InsufficientSize)
                    })
                    .unwrap_or(0);
                    transport.write_all(&out[..n])?;
                    return Err(UpgradeError::Handshake(e));
                }
            };
            let request = UpgradeRequest {
                request,
                peer,
                tls: transport.is_tls(),
            };
            let decision = self.handler.on_accept(&request);
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
                    write_grow(&mut out, |out| {
                        handshake::write_accept(
                            out,
                            &request.request,
                            subprotocol.as_deref(),
                            &extra,
                        )
                    })
                }
                Accept::Reject { status, body } => write_grow(&mut out, |out| {
                    handshake::write_reject(out, *status, body, &[])
                }),
            };
            let written = match written {
                Ok(n) => n,
                Err(e) => {
                    // The handler's answer cannot be written (a subprotocol
                    // the client did not offer, a bad header): refuse.
                    log::error!("{peer}: handler's answer refused: {e:?}");
                    let n = write_grow(&mut out, |out| {
                        handshake::write_reject(out, 500, "internal error", &[])
                    })
                    .unwrap_or(0);
                    transport.write_all(&out[..n])?;
                    return Err(UpgradeError::Rejected(500));
                }
            };
            transport.write_all(&out[..written])?;
            transport.flush()?;
            let upgraded = match decision {
                Accept::Reject { status, .. } => return Err(UpgradeError::Rejected(status)),
                Accept::Upgrade {
                    subprotocol,
                    context,
                    ..
                } => Upgraded {
                    path: request.path().into(),
                    query: request.query().map(Into::into),
                    subprotocol: subprotocol.map(String::into_boxed_str),
                    context: context.0,
                },
            };
            // Usually nothing (no allocation): the client waits for the 101.
            return Ok((buf.split_off(consumed), upgraded));
        }
    }

    /// Closes every connection with 1001, waits for them, joins everything.
    fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = deadline_in(self.config.shutdown_timeout);
        let handles: Vec<ConnectionHandle> = lock(&self.registry)
            .values()
            .filter_map(|e| e.handle.clone())
            .collect();
        // Handshaking connections stop reading (a blocked read returns at
        // once). One that is past its read and about to open sees
        // `stopping` when it registers and closes itself with 1001.
        for entry in lock(&self.registry).values() {
            if entry.handle.is_none() {
                let _ = entry.socket.shutdown(Shutdown::Read);
            }
        }
        for handle in &handles {
            // A peer that does not read costs at most a slice of the
            // deadline here, not the write timeout.
            let left = deadline.saturating_duration_since(StdInstant::now());
            let budget = left.min(self.config.shutdown_timeout / 10);
            handle.close_for_shutdown(CloseCode::GOING_AWAY, "server shutdown", budget);
        }
        // Every parked connection gets a thread again (to see its Close
        // answered), and none parks any more.
        if let Some(parking) = &self.parking {
            parking.stop();
        }
        let mut registry = lock(&self.registry);
        while !registry.is_empty() {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                break;
            }
            registry = self
                .left
                .wait_timeout(registry, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        for entry in registry.values() {
            let _ = entry.socket.shutdown(Shutdown::Both);
        }
        // With their sockets shut, the rest end at once (their `on_close`
        // still runs); a parked one is resumed by the poller first.
        while !registry.is_empty() {
            registry = self
                .left
                .wait(registry)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(registry);
        if let Some(parker) = lock(&self.parker).take() {
            let _ = parker.join();
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain().map(|(_, t)| t).collect();
        for thread in threads {
            let _ = thread.join();
        }
        let _ = lock(&self.done_rx).try_iter().count();
        // Connections over the limit still waiting for their 503 are closed:
        // each may take a second, and up to 32 wait.
        if let Some(rejector) = lock(&self.rejector).take() {
            rejector.shared.stop();
            drop(rejector.queue);
            let _ = rejector.thread.join();
        }
    }
}

/// Runs a writer that may need a larger buffer.
fn write_grow(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, handshake::WriteError>,
) -> Result<usize, handshake::WriteError> {
    match write(out) {
        Err(handshake::WriteError::InsufficientSize(e)) => {
            out.resize(e.required, 0);
            write(out)
        }
        other => other,
    }
}

/// How long a connection over the limit may take to get its 503, TLS
/// handshake included: refusals are answered one at a time.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// Answers a connection over the limit: completes the TLS handshake under
/// `wss://`, reads the request (briefly), sends 503 and closes.
fn refuse_busy(stream: &TcpStream, tls: Option<&Arc<rustls::ServerConfig>>, max_request: usize) {
    let deadline = StdInstant::now() + REFUSE_WITHIN;
    match tls {
        None => answer_busy(stream, stream, deadline, max_request),
        Some(config) => {
            let Ok(mut session) = rustls::ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            let mut socket = stream;
            answer_busy(
                rustls::Stream::new(&mut session, &mut socket),
                stream,
                deadline,
                max_request,
            );
            session.send_close_notify();
            let _ = session.write_tls(&mut socket);
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = (&*stream).read(&mut [0u8; 256]);
}

/// Reads a request until its blank line (or `max_request` bytes, or the
/// deadline), then writes the 503. `socket` is the TCP socket under
/// `stream`, for its timeouts.
fn answer_busy(
    mut stream: impl Read + Write,
    socket: &TcpStream,
    deadline: StdInstant,
    max_request: usize,
) {
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < max_request {
        if set_deadline(socket, deadline).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let mut out = [0u8; 256];
    let n = handshake::write_reject(
        &mut out,
        503,
        "server at capacity",
        &[("Retry-After", b"1")],
    )
    .unwrap_or(0);
    // The answer gets a moment even when the request used up the deadline.
    let _ = socket.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(&out[..n]);
    let _ = stream.flush();
}

#[derive(Debug)]
enum UpgradeError {
    Io(io::Error),
    Handshake(HandshakeError),
    Rejected(u16),
}

impl From<io::Error> for UpgradeError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Handshake(e) => write!(f, "bad request ({}): {e}", e.status()),
            Self::Rejected(status) => write!(f, "rejected with {status}"),
        }
    }
}
