//! The server: a listener, event loops, a handler, limits and graceful
//! shutdown.

use core::net::SocketAddr;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread;

use snowsocket_core::{encode_frame_vec, FrameHeader, MessageKind, OpCode};

use crate::config::ServerConfig;
use crate::event_loop::{Loop, LoopThread, Service};
use crate::handle::{ConnectionHandle, Message};
use crate::handler::Handler;

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds to `addr` (port 0 picks a free port; see
    /// [`Server::local_addr`]). The configuration is checked first
    /// ([`ServerConfig::validate`]).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        config.validate()?;
        let listener = TcpListener::bind(addr)?;
        Ok(Self { listener, config })
    }

    /// Serves on a listener bound elsewhere (socket activation, a listener
    /// shared with other code, `SO_REUSEPORT`).
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> io::Result<Self> {
        config.validate()?;
        Ok(Self { listener, config })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves on the current thread (one of the event loops) until the
    /// listener fails for good; running out of file descriptors is waited
    /// out.
    pub fn serve(self, handler: impl Handler) -> io::Result<()> {
        let (mut first, mut others) = self.start(Arc::new(handler), true)?;
        if let Some(lp) = first.take() {
            lp.run();
        }
        for lp in &mut others {
            lp.stop();
        }
        Ok(())
    }

    /// Serves on [`ServerConfig::event_loops`] new threads; the
    /// [`ServerHandle`] shuts them down.
    pub fn spawn(self, handler: impl Handler) -> io::Result<ServerHandle> {
        let local_addr = self.listener.local_addr()?;
        let service_config = self.config.clone();
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let service = Arc::new(Service::new(service_config, Arc::clone(&handler)));
        let loops = start_loops(&self.listener, &service, self.config.event_loops, 0)?;
        Ok(ServerHandle {
            service,
            loops,
            local_addr,
        })
    }

    /// Starts the loops; with `keep_first`, the first is returned to run on
    /// the calling thread.
    fn start(
        self,
        handler: Arc<dyn Handler>,
        keep_first: bool,
    ) -> io::Result<(Option<Loop>, Vec<LoopThread>)> {
        let service = Arc::new(Service::new(self.config.clone(), handler));
        let skip = usize::from(keep_first);
        let first = if keep_first {
            Some(Loop::new(
                Some((self.listener.try_clone()?, Arc::clone(&service))),
                self.config.read_buffer_size,
            )?)
        } else {
            None
        };
        let others = start_loops(&self.listener, &service, self.config.event_loops, skip)?;
        Ok((first, others))
    }
}

/// Starts `count - skip` loop threads accepting on `listener`.
fn start_loops(
    listener: &TcpListener,
    service: &Arc<Service>,
    count: usize,
    skip: usize,
) -> io::Result<Vec<LoopThread>> {
    let local_addr = listener.local_addr()?;
    let mut loops = Vec::new();
    for _ in skip..count.max(1) {
        let lp = Loop::new(
            Some((listener.try_clone()?, Arc::clone(service))),
            service.config.read_buffer_size,
        )?;
        let shared = lp.shared();
        let (running, started) = std::sync::mpsc::sync_channel(1);
        let thread = thread::Builder::new()
            .name(thread_name(local_addr))
            .stack_size(service.config.thread_stack_size)
            .spawn(move || {
                let _ = running.send(());
                lp.run();
            });
        match thread {
            Ok(thread) => {
                // Running (and named) before `spawn` returns.
                let _ = started.recv();
                loops.push(LoopThread {
                    shared,
                    thread: Some(thread),
                });
            }
            Err(e) => {
                for lp in &mut loops {
                    lp.stop();
                }
                return Err(e);
            }
        }
    }
    Ok(loops)
}

/// The name of every thread a server starts (at most 15 bytes, as Linux
/// keeps them): `ssk-<port>`.
pub fn thread_name(local_addr: SocketAddr) -> String {
    format!("ssk-{}", local_addr.port())
}

/// A running server. Dropping it shuts the server down, as
/// [`ServerHandle::shutdown`] does.
pub struct ServerHandle {
    service: Arc<Service>,
    loops: Vec<LoopThread>,
    local_addr: SocketAddr,
}

impl core::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("loops", &self.loops.len())
            .finish_non_exhaustive()
    }
}

/// What [`ServerHandle::broadcast`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Broadcast {
    /// Connections the message was queued for.
    pub sent: usize,
    /// Connections skipped because their outbox was full (slow readers;
    /// or the server's output budget was spent, see
    /// [`SendError::OverBudget`](crate::SendError::OverBudget)), by id;
    /// each gets [`Handler::on_drain`] once it has caught up.
    pub full: Vec<u64>,
    /// Connections skipped because they were closing (or sending a
    /// fragmented message).
    pub closed: usize,
}

impl ServerHandle {
    /// The address the server listens on.
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Open connections (upgraded, not yet closed).
    pub fn connections(&self) -> usize {
        self.service.counts().0
    }

    /// Connections still in their opening handshake.
    pub fn handshaking(&self) -> usize {
        self.service.counts().1
    }

    /// The number of event-loop threads.
    pub fn event_loops(&self) -> usize {
        self.loops.len()
    }

    /// Sends `message` to every open connection: framed once, then handed
    /// to each connection's outbox. Never waits: a connection whose outbox
    /// is full is skipped and reported ([`Broadcast::full`]).
    pub fn broadcast(&self, message: Message<'_>) -> Broadcast {
        broadcast(&self.service.handles(), message)
    }

    /// Closes every connection with 1001 and waits for their answers (at
    /// most [`ServerConfig::shutdown_timeout`], then the rest are dropped);
    /// every `on_close` has run and every thread is joined when it returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for lp in &self.loops {
            lp.shared
                .send(crate::event_loop::command::Command::Shutdown);
        }
        for lp in &mut self.loops {
            if let Some(thread) = lp.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `message` to each of `targets`, framed once; see
/// [`ServerHandle::broadcast`]. Usable with any set of handles (a room).
pub fn broadcast<'a>(
    targets: impl IntoIterator<Item = &'a ConnectionHandle>,
    message: Message<'_>,
) -> Broadcast {
    let (opcode, payload) = match message {
        Message::Text(text) => (OpCode::Text, text.as_bytes()),
        Message::Binary(data) => (OpCode::Binary, data),
    };
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut frame = Vec::with_capacity(header.encoded_len() + payload.len());
    encode_frame_vec(header, payload, &mut frame);
    let mut report = Broadcast::default();
    for conn in targets {
        // A client's frames must be masked, each with its own key; with
        // permessage-deflate each connection compresses with its own
        // window (context takeover): those are framed one by one.
        let result = if conn.shared.deflate.is_some() || conn.shared.outbox().mask.is_some() {
            conn.send(
                match opcode {
                    OpCode::Text => MessageKind::Text,
                    _ => MessageKind::Binary,
                },
                payload,
            )
        } else {
            conn.shared.push_encoded(&frame)
        };
        match result {
            Ok(()) => report.sent += 1,
            Err(e) if e.waits_for_drain() => report.full.push(conn.id()),
            Err(_) => report.closed += 1,
        }
    }
    report
}
