//! `std` byte streams for the blocking driver (feature `std`).
//!
//! [`StdIo`] makes any `std::io::Read + Write` (a `TcpStream`, a WASI
//! socket, a pipe) an `embedded_io` stream for [`WebSocket`](crate::WebSocket).
//! A read timeout (`WouldBlock` on Unix, `TimedOut` on Windows) reaches the
//! driver as `embedded_io::ErrorKind::TimedOut`: a clock tick, so heartbeats
//! and dead-peer detection run without a thread of their own.
//! (`embedded_io_adapters::std::FromStd` reports that timeout as
//! `ErrorKind::Other`, which the driver takes for a broken transport.)
//!
//! ```
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//!
//! use embedded_io::{Error as _, ErrorKind, Read as _};
//! use snowsocket_core::std_io::StdIo;
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let socket = TcpStream::connect(listener.local_addr()?)?;
//! let _peer = listener.accept()?; // connected, silent
//! socket.set_read_timeout(Some(Duration::from_millis(10)))?;
//! let mut io = StdIo::new(socket);
//! let tick = io.read(&mut [0u8; 16]).unwrap_err();
//! assert_eq!(tick.kind(), ErrorKind::TimedOut);
//! # Ok::<(), std::io::Error>(())
//! ```

extern crate std;

use core::fmt;
use std::io;

/// A `std::io` stream as an `embedded_io` one, with read timeouts as
/// [`embedded_io::ErrorKind::TimedOut`] (see the [module](self) docs).
#[derive(Debug, Default)]
pub struct StdIo<T>(pub T);

impl<T> StdIo<T> {
    /// Wraps `inner`.
    pub const fn new(inner: T) -> Self {
        Self(inner)
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// The wrapped stream.
    pub const fn get_ref(&self) -> &T {
        &self.0
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The `std::io::Error` of a [`StdIo`] call, whose
/// [`kind`](embedded_io::Error::kind) reports a timeout as
/// [`embedded_io::ErrorKind::TimedOut`].
#[derive(Debug)]
pub struct StdIoError(pub io::Error);

impl fmt::Display for StdIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl core::error::Error for StdIoError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl embedded_io::Error for StdIoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self.0.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => embedded_io::ErrorKind::TimedOut,
            kind => kind.into(),
        }
    }
}

impl<T> embedded_io::ErrorType for StdIo<T> {
    type Error = StdIoError;
}

impl<T: io::Read> embedded_io::Read for StdIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, StdIoError> {
        self.0.read(buf).map_err(StdIoError)
    }
}

impl<T: io::Write> embedded_io::Write for StdIo<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, StdIoError> {
        self.0.write(buf).map_err(StdIoError)
    }

    fn flush(&mut self) -> Result<(), StdIoError> {
        self.0.flush().map_err(StdIoError)
    }
}
