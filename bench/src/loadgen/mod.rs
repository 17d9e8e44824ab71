//! The load generator: client threads, each a `mio` event loop owning a
//! share of the connections, keeping a fixed number of messages in flight
//! on each.
//!
//! Messages are pre-encoded once (masked binary client frames made by
//! `snowsocket_core::Connection::send_binary` in the client role). Each
//! completed echo (a final binary frame of the right length, unmasked, as
//! RFC 6455 asks of servers; every payload byte checked with `verify`) lets
//! one more message go. A Ping from the server is answered with a masked
//! Pong at the next frame boundary of what is being sent. For raw TCP a
//! "message" has the byte count of the WebSocket client frame (header and
//! mask included), and echoed bytes are counted in whole messages.

mod conn;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io;
use std::net::TcpStream;
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::Instant as StdInstant;

use mio::{Events, Interest, Poll, Token};
use snowsocket_server::rustls;

use self::conn::ClientConn;

use crate::client::{client_connection, XorShift};

/// A connection handed to the load generator, its handshakes done: a
/// socket, and under TLS its session.
pub(crate) struct Link {
    pub(crate) stream: TcpStream,
    pub(crate) tls: Option<Box<rustls::ClientConnection>>,
}

impl From<TcpStream> for Link {
    fn from(stream: TcpStream) -> Self {
        Self { stream, tls: None }
    }
}

/// The byte every payload is made of, so echoes can be verified cheaply.
pub(crate) const FILL: u8 = 0xA5;

/// What every client thread needs to know about the messages.
pub(crate) struct Workload {
    /// `in_flight` whole frames back to back, sent cyclically (empty: the
    /// connections only answer pings).
    pattern: Vec<u8>,
    /// Bytes one message takes on the wire from the client.
    frame_len: usize,
    payload_len: usize,
    websocket: bool,
    verify: bool,
    /// At most this many messages per connection in all.
    limit: Option<u64>,
}

impl Workload {
    pub(crate) fn new(
        size: usize,
        in_flight: usize,
        websocket: bool,
        verify: bool,
    ) -> Result<Self, String> {
        let mut client = client_connection();
        let frame_len = client.frame_len(size);
        let payload = vec![FILL; size];
        let mut pattern = vec![FILL; frame_len * in_flight];
        if websocket {
            for frame in pattern.chunks_mut(frame_len) {
                let n = client
                    .send_binary(&payload, frame)
                    .map_err(|e| format!("encoding a frame: {e}"))?;
                if n != frame_len {
                    return Err("frame length differs from Connection::frame_len".into());
                }
            }
        }
        Ok(Self {
            pattern,
            frame_len,
            payload_len: size,
            websocket,
            verify,
            limit: None,
        })
    }

    /// Each connection sends at most `messages` in all.
    pub(crate) fn limited(mut self, messages: u64) -> Self {
        self.limit = Some(messages);
        self
    }
}

/// Counters one client thread publishes.
#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    pings: AtomicU64,
    dropped: AtomicU64,
    /// Why the first dropped connection failed.
    first_drop: OnceLock<String>,
}

/// Client threads running a [`Workload`] until [`Load::stop`].
pub(crate) struct Load {
    counters: Vec<Arc<Counters>>,
    stop: Arc<AtomicBool>,
    /// Whether messages go out (pongs always do).
    go: Arc<AtomicBool>,
    /// Where [`Load::add`] hands connections, one sender per thread.
    adders: Vec<mpsc::Sender<Link>>,
    next: usize,
    done: mpsc::Receiver<Result<Vec<mio::net::TcpStream>, String>>,
    /// A thread that ended before [`Load::stop`]: its result.
    early: Vec<Result<Vec<mio::net::TcpStream>, String>>,
}

impl Load {
    /// Starts up to `threads` client threads sharing `streams` round-robin,
    /// sending at once. With `tolerate_drops`, a connection that fails is
    /// counted ([`Load::dropped`]) and left out; otherwise it ends the run
    /// with an error. Every thread stops by itself after `limit`.
    pub(crate) fn start(
        streams: Vec<Link>,
        workload: Workload,
        threads: usize,
        tolerate_drops: bool,
        limit: Duration,
    ) -> Result<Self, String> {
        let threads = threads.clamp(1, streams.len().max(1));
        let mut load = Self::spawn(workload, threads, tolerate_drops, limit, true)?;
        for stream in streams {
            load.add(stream)?;
        }
        Ok(load)
    }

    /// Starts `threads` client threads with no connection yet: they are
    /// added one by one with [`Load::add`] and answer pings at once, but
    /// send no message until [`Load::resume`].
    pub(crate) fn paused(
        workload: Workload,
        threads: usize,
        tolerate_drops: bool,
        limit: Duration,
    ) -> Result<Self, String> {
        Self::spawn(workload, threads.max(1), tolerate_drops, limit, false)
    }

    fn spawn(
        workload: Workload,
        threads: usize,
        tolerate_drops: bool,
        limit: Duration,
        go: bool,
    ) -> Result<Self, String> {
        let workload = Arc::new(workload);
        let stop = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(go));
        let deadline = StdInstant::now() + limit;
        let (done_tx, done) = mpsc::channel();
        let mut counters = Vec::new();
        let mut adders = Vec::new();
        for i in 0..threads {
            let mine = Arc::new(Counters::default());
            counters.push(Arc::clone(&mine));
            let (add_tx, added) = mpsc::channel();
            adders.push(add_tx);
            let thread = ClientThread {
                workload: Arc::clone(&workload),
                counters: mine,
                stop: Arc::clone(&stop),
                go: Arc::clone(&go),
                added,
                tolerate_drops,
                deadline,
            };
            let done = done_tx.clone();
            thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || {
                    let _ = done.send(thread.run());
                })
                .map_err(|e| format!("starting a client thread: {e}"))?;
        }
        Ok(Self {
            counters,
            stop,
            go,
            adders,
            next: 0,
            done,
            early: Vec::new(),
        })
    }

    /// Hands one more connection to the next thread.
    pub(crate) fn add(&mut self, link: impl Into<Link>) -> Result<(), String> {
        let i = self.next % self.adders.len();
        self.next += 1;
        self.adders[i]
            .send(link.into())
            .map_err(|_| "a client thread has ended".to_string())
    }

    /// Lets the messages go (after [`Load::paused`]).
    pub(crate) fn resume(&self) {
        self.go.store(true, Ordering::Release);
    }

    /// Echoes completed so far.
    pub(crate) fn completed(&self) -> u64 {
        self.sum(|c| &c.completed)
    }

    /// Pings received (and answered) so far.
    pub(crate) fn pings(&self) -> u64 {
        self.sum(|c| &c.pings)
    }

    /// Connections that failed so far (with `tolerate_drops`).
    pub(crate) fn dropped(&self) -> u64 {
        self.sum(|c| &c.dropped)
    }

    fn sum(&self, field: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.counters
            .iter()
            .map(|c| field(c).load(Ordering::Relaxed))
            .sum()
    }

    /// Why the first dropped connection failed, if one did.
    pub(crate) fn first_drop(&self) -> Option<String> {
        self.counters
            .iter()
            .find_map(|c| c.first_drop.get().cloned())
    }

    /// Waits up to `time`; returns early with the error if a thread failed
    /// (a thread only ends early by failing).
    pub(crate) fn wait(&mut self, time: Duration) -> Result<(), String> {
        if let Some(Err(e)) = self.early.first() {
            return Err(e.clone());
        }
        match self.done.recv_timeout(time) {
            Ok(result) => {
                let error = result.as_ref().err().cloned();
                self.early.push(result);
                Err(error.unwrap_or_else(|| "a client thread ended early".into()))
            }
            Err(_) => Ok(()),
        }
    }

    /// Stops every thread; returns their connections (to be closed after
    /// the server, so that TIME_WAIT stays on the server's side) or the
    /// first error.
    pub(crate) fn stop(self) -> Result<Vec<mio::net::TcpStream>, String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut results = self.early;
        // A thread stops after the events it is handling: quick in a
        // release build, seconds in a debug build on a busy machine.
        while results.len() < self.adders.len() {
            match self.done.recv_timeout(Duration::from_secs(30)) {
                Ok(result) => results.push(result),
                Err(_) => return Err("a client thread did not stop within 30 s".into()),
            }
        }
        let mut all = Vec::new();
        for result in results {
            all.extend(result?);
        }
        Ok(all)
    }
}

/// What one client thread owns.
struct ClientThread {
    workload: Arc<Workload>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    go: Arc<AtomicBool>,
    added: mpsc::Receiver<Link>,
    tolerate_drops: bool,
    deadline: StdInstant,
}

impl ClientThread {
    /// Keeps the connections loaded until `stop` or the deadline.
    fn run(self) -> Result<Vec<mio::net::TcpStream>, String> {
        let w = &*self.workload;
        let mut poll = Poll::new().map_err(|e| e.to_string())?;
        let mut conns: Vec<Option<ClientConn>> = Vec::new();
        let mut rng = XorShift::seeded();
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 256 * 1024];
        let (mut completed, mut pings) = (0, 0);
        let mut going = false;
        while !self.stop.load(Ordering::Relaxed) {
            if StdInstant::now() > self.deadline {
                return Err("a client thread ran past its time limit".into());
            }
            let was_going = going;
            going = self.go.load(Ordering::Acquire);
            let first_new = if was_going || !going { conns.len() } else { 0 };
            while let Ok(link) = self.added.try_recv() {
                let mut conn = ClientConn::new(link, w)?;
                let interest = Interest::READABLE | Interest::WRITABLE;
                poll.registry()
                    .register(&mut conn.stream, Token(conns.len()), interest)
                    .map_err(|e| e.to_string())?;
                conns.push(Some(conn));
            }
            // Connections just added, or all of them when messages may
            // go from now on: nothing else would make them write.
            for (i, slot) in conns.iter_mut().enumerate().skip(first_new) {
                if let Some(Err(e)) = slot.as_mut().map(|c| c.flush(w, going)) {
                    self.drop_or_fail(slot, i, e)?;
                }
            }
            match poll.poll(&mut events, Some(Duration::from_millis(20))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            for event in &events {
                let i = event.token().0;
                let Some(slot) = conns.get_mut(i) else {
                    continue;
                };
                let Some(conn) = slot.as_mut() else {
                    continue;
                };
                let result = conn
                    .receive(&mut buf, w, &mut rng)
                    .and_then(|done| conn.flush(w, going).map(|()| done));
                match result {
                    Ok((done, pinged)) => {
                        completed += done;
                        pings += pinged;
                    }
                    Err(e) => self.drop_or_fail(slot, i, e)?,
                }
            }
            self.counters.completed.store(completed, Ordering::Relaxed);
            self.counters.pings.store(pings, Ordering::Relaxed);
        }
        Ok(conns.into_iter().flatten().map(|c| c.stream).collect())
    }

    /// A connection failed: drop it and count it, or end the thread.
    fn drop_or_fail(
        &self,
        slot: &mut Option<ClientConn>,
        index: usize,
        error: String,
    ) -> Result<(), String> {
        if !self.tolerate_drops {
            return Err(format!("connection {index}: {error}"));
        }
        *slot = None;
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .counters
            .first_drop
            .set(format!("connection {index}: {error}"));
        Ok(())
    }
}
