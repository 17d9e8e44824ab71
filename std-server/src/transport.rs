//! The client's opening handshake: blocking `Read + Write` over either a
//! bare `TcpStream` or a TLS session (`crate::session`) on one ([`Transport`]), with
//! deadlines. Once upgraded it is split ([`Transport::into_parts`]) into
//! the socket and the optional TLS session, which the client's event
//! loop then drives. (The server runs its handshakes on its loops.)

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use crate::session::{TlsFailure, TlsRead, TlsSession};

/// A byte stream: plain TCP or TLS over TCP.
///
/// The socket is shared (`Arc`): after the upgrade the reader, the writer
/// and shutdown all use this one descriptor (`&TcpStream` reads and
/// writes), so a connection costs one file descriptor.
#[derive(Debug)]
pub(crate) enum Transport {
    /// `ws://`.
    Plain(Arc<TcpStream>),
    /// `wss://`: a rustls client or server session over the socket.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(Arc<TcpStream>, Box<TlsSession>),
}

impl Transport {
    /// The socket.
    pub(crate) fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) | Self::Tls(s, _) => s,
        }
    }

    /// Runs the TLS handshake (nothing for plain TCP), giving up at
    /// `deadline`.
    pub(crate) fn complete_handshake(&mut self, deadline: StdInstant) -> io::Result<()> {
        let Self::Tls(socket, tls) = self else {
            return Ok(());
        };
        let mut io: &TcpStream = socket;
        while tls.is_handshaking() {
            set_deadline(io, deadline)?;
            match tls.handshake_step(&mut io) {
                Ok(TlsRead::Eof) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(TlsRead::WouldBlock) => return Err(io::ErrorKind::TimedOut.into()),
                Ok(TlsRead::Bytes(_)) => {}
                Err(e) => return Err(failure(tls, &mut io, e)),
            }
        }
        flush_tls(tls, &mut io)
    }

    /// Splits the transport into its socket and its TLS session.
    pub(crate) fn into_parts(self) -> (Arc<TcpStream>, Option<TlsSession>) {
        match self {
            Self::Plain(s) => (s, None),
            Self::Tls(s, tls) => (s, Some(*tls)),
        }
    }
}

/// The instant `timeout` from now; a timeout too long for the clock
/// (`Duration::MAX` as "no limit") is a deadline a century away instead of
/// a panic.
pub(crate) fn deadline_in(timeout: core::time::Duration) -> StdInstant {
    const CENTURY: core::time::Duration = core::time::Duration::from_secs(100 * 365 * 86_400);
    let now = StdInstant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Sets the socket's read and write timeouts to the time left until
/// `deadline` (at least 1 ms), or fails with `TimedOut` when it has passed.
pub(crate) fn set_deadline(socket: &TcpStream, deadline: StdInstant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(StdInstant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let left = left.max(core::time::Duration::from_millis(1));
    socket.set_read_timeout(Some(left))?;
    socket.set_write_timeout(Some(left))
}

/// Writes all of the session's unsent TLS bytes (blocking, within the
/// socket's timeouts).
fn flush_tls(tls: &mut TlsSession, io: &mut &TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        tls.send(io)?;
    }
    Ok(())
}

/// The error a TLS failure is reported as; the alert goes out first.
fn failure(tls: &mut TlsSession, io: &mut &TcpStream, e: TlsFailure) -> io::Error {
    match e {
        TlsFailure::Io(e) => e,
        #[cfg_attr(not(feature = "tls"), allow(unreachable_code))]
        TlsFailure::Tls(e) => {
            let _ = flush_tls(tls, io);
            io::Error::new(io::ErrorKind::InvalidData, e)
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (mut socket, tls) = match self {
            Self::Plain(s) => return (&**s).read(buf),
            Self::Tls(s, tls) => (&**s, tls),
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match tls.read(&mut socket, buf) {
                Ok(TlsRead::Bytes(0)) => {}
                Ok(TlsRead::Bytes(n)) => return Ok(n),
                Ok(TlsRead::Eof) => return Ok(0),
                Ok(TlsRead::WouldBlock) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => return Err(failure(tls, &mut socket, e)),
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => (&**s).write(buf),
            Self::Tls(socket, tls) => {
                let mut io: &TcpStream = socket;
                let n = loop {
                    match tls.encrypt(buf) {
                        Ok(0) if !buf.is_empty() && tls.wants_write() => flush_tls(tls, &mut io)?,
                        Ok(0) if !buf.is_empty() => {
                            return Err(io::Error::other("TLS session cannot send"))
                        }
                        Ok(n) => break n,
                        #[cfg_attr(not(feature = "tls"), allow(unreachable_code))]
                        Err(e) => {
                            let _ = flush_tls(tls, &mut io);
                            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                        }
                    }
                };
                flush_tls(tls, &mut io)?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => (&**s).flush(),
            Self::Tls(socket, tls) => {
                let mut io: &TcpStream = socket;
                flush_tls(tls, &mut io)?;
                io.flush()
            }
        }
    }
}
