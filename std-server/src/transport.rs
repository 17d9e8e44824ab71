//! The client's opening handshake: blocking `Read + Write` over either a
//! bare `TcpStream` or a rustls session on one ([`Transport`]), with
//! deadlines. Once upgraded it is split ([`Transport::into_parts`]) into
//! the socket and the optional rustls session, which the client's event
//! loop then drives. (The server runs its handshakes on its loops.)

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use crate::session::TlsSession;

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
            let (read, written) = tls.complete_io(&mut io)?;
            if read == 0 && written == 0 && tls.is_handshaking() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        while tls.wants_write() {
            tls.write_tls(&mut io)?;
        }
        Ok(())
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

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (mut socket, tls) = match self {
            Self::Plain(s) => return (&**s).read(buf),
            Self::Tls(s, tls) => (&**s, tls),
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            while tls.wants_write() {
                tls.write_tls(&mut socket)?;
            }
            if tls.read_tls(&mut socket)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                // Send the alert rustls queued, then report.
                let _ = tls.write_tls(&mut socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => (&**s).write(buf),
            Self::Tls(socket, tls) => {
                let n = tls.writer().write(buf)?;
                while tls.wants_write() {
                    tls.write_tls(&mut &**socket)?;
                }
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => (&**s).flush(),
            Self::Tls(socket, tls) => {
                while tls.wants_write() {
                    tls.write_tls(&mut &**socket)?;
                }
                (&**socket).flush()
            }
        }
    }
}
