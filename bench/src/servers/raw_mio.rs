//! Plain TCP echo on one `mio` event loop with a 256 KiB read buffer: the
//! reference every ratio is taken against. No thread per connection, no
//! WebSocket work: what one core can echo through the kernel.
//!
//! Each readable connection is read until the socket would block; what was
//! read is written back at once, and whatever the socket does not take is
//! kept until it is writable again (the connection is not read meanwhile).

use std::io::{self, Read, Write};
use std::thread;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::{listen, Running};

pub(super) fn start() -> Result<Running, String> {
    let addr = spawn("raw-mio", |stream| {
        Some(Conn {
            stream,
            pending: Vec::new(),
        })
    })?;
    Ok(Running {
        addr,
        cert: None,
        stop: None,
    })
}

/// A connection of an echo loop (this file's, and the TLS one's).
pub(super) trait Echo {
    fn stream(&mut self) -> &mut TcpStream;
    /// Handles readiness; `Ok(false)` when the connection is over.
    fn ready(&mut self, buf: &mut [u8]) -> io::Result<bool>;
}

/// Binds, and runs an echo loop on a thread of its own named `name`,
/// making each accepted connection with `open` (`None`: refused); returns
/// the address.
pub(super) fn spawn<C: Echo + 'static>(
    name: &'static str,
    open: impl Fn(TcpStream) -> Option<C> + Send + 'static,
) -> Result<core::net::SocketAddr, String> {
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(e) = run(poll, TcpListener::from_std(listener), &open) {
                eprintln!("{name}: {e}");
            }
        })
        .map_err(|e| format!("event-loop thread: {e}"))?;
    Ok(addr)
}

const LISTENER: Token = Token(usize::MAX);

/// One echo connection: its socket and the echo bytes it has not taken yet.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

/// The event loop; runs until the process ends.
fn run<C: Echo>(
    mut poll: Poll,
    mut listener: TcpListener,
    open: &impl Fn(TcpStream) -> Option<C>,
) -> io::Result<()> {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<C>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            if event.token() == LISTENER {
                accept(&poll, &listener, open, &mut conns, &mut free);
                continue;
            }
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if !matches!(conn.ready(&mut buf), Ok(true)) {
                if let Some(mut gone) = conns[i].take() {
                    let _ = poll.registry().deregister(gone.stream());
                }
                free.push(i);
            }
        }
    }
}

/// Accepts until the listener would block.
fn accept<C: Echo>(
    poll: &Poll,
    listener: &TcpListener,
    open: &impl Fn(TcpStream) -> Option<C>,
    conns: &mut Vec<Option<C>>,
    free: &mut Vec<usize>,
) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // WouldBlock, or out of file descriptors: the next readiness
            // event tries again.
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        let Some(mut conn) = open(stream) else {
            continue;
        };
        let i = free.pop().unwrap_or(conns.len());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(conn.stream(), Token(i), interest)
            .is_err()
        {
            free.push(i);
            continue;
        }
        if i == conns.len() {
            conns.push(Some(conn));
        } else {
            conns[i] = Some(conn);
        }
    }
}

impl Echo for Conn {
    fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn ready(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if !self.flush()? {
            return Ok(true);
        }
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    let written = write_some(&mut self.stream, &buf[..n])?;
                    if written < n {
                        // Read no more until the peer takes these.
                        self.pending.extend_from_slice(&buf[written..n]);
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Conn {
    /// Writes what is pending; `Ok(true)` once nothing is.
    fn flush(&mut self) -> io::Result<bool> {
        if self.pending.is_empty() {
            return Ok(true);
        }
        let written = write_some(&mut self.stream, &self.pending)?;
        self.pending.drain(..written);
        Ok(self.pending.is_empty())
    }
}

/// Writes until done or the socket would block; returns the bytes written.
fn write_some(stream: &mut TcpStream, mut data: &[u8]) -> io::Result<usize> {
    let total = data.len();
    while !data.is_empty() {
        match stream.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total - data.len())
}
