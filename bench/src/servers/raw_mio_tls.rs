//! TLS echo on one `mio` event loop: the reference of the `wss://` ratios.
//! Shaped like rustls's own `tlsserver-mio` example (its buffered
//! `ServerConnection` over a non-blocking socket), with a 256 KiB read
//! buffer for plaintext and the same self-signed certificate as our
//! `wss://` server: what one core can echo through rustls and the kernel,
//! with no WebSocket work.
//!
//! Each readable connection reads TLS records until the socket would
//! block; the plaintext they bring is written back at once, and while the
//! socket does not take all of the answer the connection is not read.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::thread;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use snowsocket_server::rustls::{ServerConfig, ServerConnection};

use super::{listen, ours, Running};

pub(super) fn start() -> Result<Running, String> {
    let (config, cert) = ours::self_signed()?;
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    thread::Builder::new()
        .name("raw-mio-tls".into())
        .spawn(move || {
            if let Err(e) = run(poll, TcpListener::from_std(listener), &config) {
                eprintln!("raw-mio-tls: {e}");
            }
        })
        .map_err(|e| format!("event-loop thread: {e}"))?;
    Ok(Running {
        addr,
        cert: Some(cert),
        stop: None,
    })
}

const LISTENER: Token = Token(usize::MAX);

/// One echo connection: its socket and its TLS session.
struct Conn {
    stream: TcpStream,
    tls: Box<ServerConnection>,
}

/// The event loop; runs until the process ends.
fn run(mut poll: Poll, mut listener: TcpListener, config: &Arc<ServerConfig>) -> io::Result<()> {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
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
                accept(&poll, &listener, config, &mut conns, &mut free);
                continue;
            }
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if !matches!(conn.ready(&mut buf), Ok(true)) {
                if let Some(mut gone) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut gone.stream);
                }
                free.push(i);
            }
        }
    }
}

/// Accepts until the listener would block.
fn accept(
    poll: &Poll,
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // WouldBlock, or out of file descriptors: the next readiness
            // event tries again.
            Err(_) => return,
        };
        let Ok(mut tls) = ServerConnection::new(Arc::clone(config)) else {
            continue;
        };
        // Whatever one read brings is echoed whole; the socket paces it.
        tls.set_buffer_limit(None);
        let _ = stream.set_nodelay(true);
        let i = free.pop().unwrap_or(conns.len());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if poll
            .registry()
            .register(&mut stream, Token(i), interest)
            .is_err()
        {
            free.push(i);
            continue;
        }
        let conn = Some(Conn {
            stream,
            tls: Box::new(tls),
        });
        if i == conns.len() {
            conns.push(conn);
        } else {
            conns[i] = conn;
        }
    }
}

impl Conn {
    /// Handles readiness; `Ok(false)` when the connection is over.
    fn ready(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if !self.flush()? {
            return Ok(true);
        }
        loop {
            match self.tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let state = self.tls.process_new_packets().map_err(io::Error::other)?;
            if state.peer_has_closed() {
                return Ok(false);
            }
            loop {
                match self.tls.reader().read(buf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => self.tls.writer().write_all(&buf[..n])?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if !self.flush()? {
                // Read no more until the peer takes these.
                return Ok(true);
            }
        }
    }

    /// Writes pending TLS records; `Ok(true)` once nothing is pending.
    fn flush(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
