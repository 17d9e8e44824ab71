//! Idle connections without a thread.
//!
//! A connection thread whose peer has sent nothing for
//! [`ServerConfig::release_idle_after`](crate::ServerConfig::release_idle_after)
//! parks its [`Reader`] here and ends. One poller thread (mio: epoll,
//! kqueue) watches every parked socket for input and keeps the parked
//! connections' next timers; when input arrives, a timer is due, or a Close
//! is queued from another thread ([`Kick`]), it takes the connection out
//! and hands it to the server, which starts a thread for it again.
//!
//! Everything here happens under one mutex, [`Parking::state`]: a park
//! (register, read the timer, insert), a kick, and the poller's take-outs
//! are atomic with respect to each other, so no wake-up is lost between a
//! reader deciding to park and the poller seeing it.

use core::time::Duration;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant as StdInstant;

use mio::unix::SourceFd;
pub(crate) use mio::Poll;
use mio::{Events, Interest, Registry, Token, Waker};

use crate::engine::{ConnectionHandle, Kick, Reader};

/// The waker's token; connection tokens are their ids (never this).
const WAKER: Token = Token(usize::MAX);

/// A connection waiting for input with no thread.
pub(crate) struct Parked {
    pub(crate) reader: Reader,
    pub(crate) handle: ConnectionHandle,
}

/// The parked connections and the poller's registry.
pub(crate) struct Parking {
    registry: Registry,
    waker: Waker,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By connection id: the connection and its next timer.
    parked: HashMap<u64, (Parked, Option<StdInstant>)>,
    /// The parked connections' timers, earliest first.
    deadlines: BTreeSet<(StdInstant, u64)>,
    /// Parked connections to take out at the next turn.
    kicked: Vec<u64>,
    /// No more parking; everything parked is taken out.
    stopping: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Parking {
    /// The parking and the `Poll` its thread runs ([`Parking::run`]).
    pub(crate) fn new() -> io::Result<(Self, Poll)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let parking = Self {
            registry,
            waker,
            state: Mutex::new(State::default()),
        };
        Ok((parking, poll))
    }

    /// Parks a connection. `Err` gives it back when it cannot be parked (the
    /// server is stopping, or its socket cannot be watched): its thread
    /// carries on.
    pub(crate) fn park(&self, parked: Parked) -> Result<(), Box<Parked>> {
        let id = parked.handle.id();
        let token = match usize::try_from(id) {
            Ok(token) if token != WAKER.0 => Token(token),
            _ => return Err(Box::new(parked)),
        };
        let mut state = lock(&self.state);
        if state.stopping {
            return Err(Box::new(parked));
        }
        let fd = parked.reader.socket().as_raw_fd();
        if let Err(e) = self
            .registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
        {
            log::warn!("connection {id}: cannot watch the socket, keeping its thread: {e}");
            return Err(Box::new(parked));
        }
        // Read under the lock: a Close queued before this line is in it, one
        // queued after finds the connection parked and kicks it.
        let deadline = parked.reader.next_deadline();
        if let Some(deadline) = deadline {
            state.deadlines.insert((deadline, id));
        }
        state.parked.insert(id, (parked, deadline));
        drop(state);
        // The poller may be sleeping past this connection's timer.
        self.wake();
        Ok(())
    }

    /// Wakes the poller (to reap finished threads, or see a new timer).
    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            log::warn!("cannot wake the idle-connection poller: {e}");
        }
    }

    /// Refuses further parking and takes every parked connection out (for
    /// the server's shutdown). [`Parking::run`] returns once all are out.
    pub(crate) fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopping = true;
        let ids: Vec<u64> = state.parked.keys().copied().collect();
        state.kicked.extend(ids);
        drop(state);
        self.wake();
    }

    /// The number of parked connections.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).parked.len()
    }

    /// The poller thread: waits for input on parked sockets and for their
    /// timers, hands each connection that has work to `resume`, and calls
    /// `reap` on every wake-up. Returns after [`Parking::stop`], once
    /// nothing is parked.
    pub(crate) fn run(
        &self,
        mut poll: Poll,
        mut resume: impl FnMut(Parked),
        mut reap: impl FnMut(),
    ) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = {
                let state = lock(&self.state);
                if state.stopping && state.parked.is_empty() {
                    return;
                }
                state
                    .deadlines
                    .first()
                    .map(|(deadline, _)| deadline.saturating_duration_since(StdInstant::now()))
            };
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("idle-connection poller: {e}");
                    // Do not spin on a persistent failure.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            reap();
            let ready: Vec<Parked> = {
                let mut state = lock(&self.state);
                let mut ids: Vec<u64> = events
                    .iter()
                    .filter(|event| event.token() != WAKER)
                    .filter_map(|event| u64::try_from(event.token().0).ok())
                    .collect();
                ids.append(&mut state.kicked);
                let now = StdInstant::now();
                ids.extend(
                    state
                        .deadlines
                        .iter()
                        .take_while(|(deadline, _)| *deadline <= now)
                        .map(|(_, id)| *id),
                );
                ids.into_iter()
                    .filter_map(|id| self.take(&mut state, id))
                    .collect()
            };
            for parked in ready {
                resume(parked);
            }
        }
    }

    /// Takes connection `id` out (`None`: not parked, e.g. taken already).
    fn take(&self, state: &mut State, id: u64) -> Option<Parked> {
        let (parked, deadline) = state.parked.remove(&id)?;
        if let Some(deadline) = deadline {
            state.deadlines.remove(&(deadline, id));
        }
        let fd = parked.reader.socket().as_raw_fd();
        if let Err(e) = self.registry.deregister(&mut SourceFd(&fd)) {
            log::debug!("connection {id}: deregistering the socket: {e}");
        }
        Some(parked)
    }
}

impl Kick for Parking {
    fn kick(&self, id: u64) {
        let mut state = lock(&self.state);
        if state.parked.contains_key(&id) {
            state.kicked.push(id);
            drop(state);
            self.wake();
        }
    }
}
