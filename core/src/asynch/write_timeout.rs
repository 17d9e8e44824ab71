//! [`WriteTimeout`]: a transport whose writes give up on a peer that takes
//! none of our bytes.

use core::fmt;
use core::time::Duration;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};

use super::{until, Clock};

/// A transport whose writes (and flushes) fail with
/// [`WriteTimeoutError::TimedOut`] when the peer takes none of our bytes
/// for `timeout`; reads are the transport's own. Each write call has the
/// whole `timeout`, so a peer that takes bytes, however slowly, is not
/// failed; one that takes nothing for that long (TCP's window closed, a
/// peer that reads nothing) is, where the transport would wait for ever.
///
/// For [`WebSocket`](super::WebSocket): its sends, and the replies its
/// reads write, then end with
/// [`DriverError::Io`](crate::DriverError::Io)`(`[`WriteTimeoutError::TimedOut`]`)`
/// instead of holding the task; drop the transport then (a frame may be
/// part written). Reads still wait as long as the connection is alive,
/// with the heartbeat judging a silent peer. The split halves need none:
/// they judge a peer by its progress themselves (see
/// [`Reader`](super::Reader)).
///
/// ```ignore
/// let io = WriteTimeout::new(FromTokio::new(tcp_stream), TokioClock::new(), Duration::from_secs(10));
/// let mut ws = WebSocket::accept(io, parts).await?;
/// ```
#[derive(Debug)]
pub struct WriteTimeout<T, C> {
    io: T,
    clock: C,
    timeout: Duration,
}

impl<T, C> WriteTimeout<T, C> {
    /// `io` with writes bounded by `timeout` on `clock`.
    pub const fn new(io: T, clock: C, timeout: Duration) -> Self {
        Self { io, clock, timeout }
    }

    /// The transport.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// The transport, borrowed.
    pub const fn get_ref(&self) -> &T {
        &self.io
    }

    /// The transport, borrowed mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }
}

/// A [`WriteTimeout`] transport's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteTimeoutError<E> {
    /// The transport's own.
    Io(E),
    /// The peer took none of our bytes for the timeout.
    TimedOut,
}

impl<E: fmt::Display> fmt::Display for WriteTimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::TimedOut => f.write_str("the peer took none of our bytes in time"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for WriteTimeoutError<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for WriteTimeoutError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Io(e) => e.kind(),
            Self::TimedOut => ErrorKind::TimedOut,
        }
    }
}

impl<T: ErrorType, C> ErrorType for WriteTimeout<T, C> {
    type Error = WriteTimeoutError<T::Error>;
}

impl<T: Read, C> Read for WriteTimeout<T, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.io.read(buf).await.map_err(WriteTimeoutError::Io)
    }
}

impl<T: Write, C: Clock> Write for WriteTimeout<T, C> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let deadline = self.clock.now() + self.timeout;
        match until(&self.clock, Some(deadline), self.io.write(buf)).await {
            Some(written) => written.map_err(WriteTimeoutError::Io),
            None => Err(WriteTimeoutError::TimedOut),
        }
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        let deadline = self.clock.now() + self.timeout;
        match until(&self.clock, Some(deadline), self.io.flush()).await {
            Some(flushed) => flushed.map_err(WriteTimeoutError::Io),
            None => Err(WriteTimeoutError::TimedOut),
        }
    }
}
