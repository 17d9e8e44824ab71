//! The I/O helpers under the methods, for both drivers (see
//! [`super::driver_body!`]): writing the output, writing a frame through
//! it, failing at once, and a read during the opening handshake.

/// Free functions of the driver's module: `transmit`, `write_frame`,
/// `write_all`, `fail_now`, `read_handshake`.
macro_rules! io_helpers {
    ($m:tt $($async:tt)?) => {
/// One read during the opening handshake (in the async driver racing its
/// deadline): the bytes read (0 on a tick), or an error when the buffer is
/// full, the peer left, or time is up.
$($async)? fn read_handshake<T: Read, C: Clock>(
    io: &mut T,
    room: &mut [u8],
    clock: &mut C,
    deadline: Option<Instant>,
) -> Result<usize, DriverError<T::Error>> {
    session::handshake_room(room.len(), clock.now(), deadline)?;
    // `move`: a closure borrowing `deadline` would keep a reference to it
    // in the async handshake's future (16 bytes more).
    match io!($m, read_some(io, room, clock, move || deadline)) {
        None => Err(DriverError::HandshakeTimeout),
        Some(Ok(0)) => Err(DriverError::UnexpectedEof),
        Some(Ok(n)) => Ok(n),
        Some(Err(e)) if is_tick(e.kind()) => Ok(0),
        Some(Err(e)) => Err(DriverError::Io(e)),
    }
}

/// The connection failed (its Close is queued): writes the Close, lingers
/// (see `linger!`) and returns the failure.
pub(crate) $($async)? fn fail_now<T, B, R, S, C>(
    session: &mut Session<B, R, S>,
    input: &Input<'_>,
    output: &mut Output<'_>,
    io: &mut T,
    clock: &mut C,
) -> DriverError<T::Error>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
    C: Clock,
{
    loop {
        match session.pending(output, false) {
            Some(Step::Transmit) => {
                if let Err(e) = io!($m, transmit(io, output)) {
                    return session.write_failed(e);
                }
            }
            Some(Step::Failed(e)) => {
                linger!($m, io, session.conn, input.unconsumed(), output.buffer(), clock, e);
                return DriverError::Connection(e);
            }
            _ => return DriverError::Connection(Error::Closed),
        }
    }
}

/// Writes the bytes waiting in `output`, then flushes the transport if
/// there were any. Each write that completes is recorded before the next
/// (in the async driver: before the next `.await`), so a call that stops
/// half way leaves the rest for the next one.
pub(crate) $($async)? fn transmit<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
) -> Result<(), DriverError<T::Error>> {
    if output.is_empty() {
        return Ok(());
    }
    while !output.is_empty() {
        match io!($m, io.write(output.unsent())) {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => output.sent(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    io!($m, io.flush()).map_err(DriverError::Io)
}

/// Writes `frame` piece by piece through `output` (which is empty); on
/// hosts an unmasked frame larger than the output goes as its header
/// through the output and its payload straight from where it lies, not
/// copied.
pub(crate) $($async)? fn write_frame<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
    mut frame: FrameWrite<'_>,
) -> Result<(), DriverError<T::Error>> {
    #[cfg(not(target_os = "none"))]
    if let Some(payload) = frame.header_only(output) {
        io!($m, transmit(io, output))?;
        io!($m, write_all(io, payload))?;
        return io!($m, io.flush()).map_err(DriverError::Io);
    }
    while frame
        .next_piece(output)
        .map_err(DriverError::BufferTooSmall)?
    {
        io!($m, transmit(io, output))?;
    }
    Ok(())
}

/// Writes all of `bytes` (not through the output: a call that stops half
/// way leaves the rest unwritten, so callers mark the connection torn
/// meanwhile). Hosts only (see `session`, "Zero-copy paths"), and the
/// async driver's compressed frames.
#[cfg(any(not(target_os = "none"), all(feature = "async", feature = "deflate")))]
#[cfg_attr(target_os = "none", allow(dead_code))]
pub(crate) $($async)? fn write_all<T: Write>(io: &mut T, mut bytes: &[u8]) -> Result<(), DriverError<T::Error>> {
    while !bytes.is_empty() {
        match io!($m, io.write(bytes)) {
            Ok(0) => return Err(DriverError::UnexpectedEof),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DriverError::Io(e)),
        }
    }
    Ok(())
}
    };
}
pub(crate) use io_helpers;
