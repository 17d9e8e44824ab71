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

use mio::net::TcpStream;
use snowsocket_server::rustls::ServerConnection;

use super::raw_mio::{self, Echo};
use super::{ours, Running};

pub(super) fn start() -> Result<Running, String> {
    let (config, cert) = ours::self_signed()?;
    let addr = raw_mio::spawn("raw-mio-tls", move |stream| {
        let mut tls = ServerConnection::new(Arc::clone(&config)).ok()?;
        // Whatever one read brings is echoed whole; the socket paces it.
        tls.set_buffer_limit(None);
        Some(Conn {
            stream,
            tls: Box::new(tls),
        })
    })?;
    Ok(Running {
        addr,
        cert: Some(cert),
        stop: None,
    })
}

/// One echo connection: its socket and its TLS session.
struct Conn {
    stream: TcpStream,
    tls: Box<ServerConnection>,
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
}

impl Conn {
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
