//! The writing half's sends: messages, fragments, pings, the Close (and,
//! with permessage-deflate, compression, in order); how it takes the
//! transport, notes the peer's progress and hears that the reader gave
//! the connection up.

use super::*;

impl<'buf, C, P, L, W, B, R, S> Writer<C, P>
where
    W: Write,
    C: Clock,
    P: Deref<Target = L>,
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
{
    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), DriverError<W::Error>> {
        self.send(MessageKind::Text, text.as_bytes()).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), DriverError<W::Error>> {
        self.send(MessageKind::Binary, data).await
    }

    /// Sends a whole message as one frame, streamed through the writer's
    /// buffer. It waits only for a control frame the reader is writing.
    /// With permessage-deflate, a message of at least `min_size` bytes is
    /// compressed here, while this half holds the transport (see the
    /// [module](crate::asynch) docs for the order).
    pub async fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), DriverError<W::Error>> {
        let len = payload.len();
        #[cfg(feature = "deflate")]
        if self.deflate.as_ref().is_some_and(|tx| tx.compresses(len)) {
            return self.send_compressed(kind, payload).await;
        }
        self.write(payload, |conn| conn.message_header(kind, len))
            .await
    }

    /// Sends one fragment of a message; see
    /// [`Connection::send_fragment`](crate::Connection::send_fragment)
    /// (uncompressed, also with permessage-deflate).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), DriverError<W::Error>> {
        let len = payload.len();
        self.write(payload, |conn| conn.fragment_header(kind, len, fin))
            .await
    }

    /// Sends a Ping (payload at most 125 bytes).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), DriverError<W::Error>> {
        let (lock, clock) = (&*self.shared, &self.clock);
        let mut taken = take_writer(lock, clock).await?;
        let Some((io, output)) = taken.taken.as_mut() else {
            return Ok(());
        };
        let n = lock.with(|shared| shared.session.conn.ping(payload, output.buffer()))?;
        output.queue(n);
        let io = &mut noting(lock, clock, io);
        let write = async {
            transmit(io, output).await?;
            // What the reader queued meanwhile (a Pong), as after any frame.
            write_controls(lock, clock, io, output).await
        };
        watched(lock, write).await
    }

    /// Starts the close handshake: sends Close with `code` and `reason`.
    /// The reader then sees the peer's Close (or the close timeout) and
    /// ends; this half cannot send data any more.
    pub async fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), DriverError<W::Error>> {
        let now = self.clock.now();
        self.shared
            .with(|shared| shared.session.conn.close(code, reason, now))?;
        self.flush().await
    }

    /// Writes the connection's queued control frames (a Close, a pong) now,
    /// without waiting for the reader to.
    pub async fn flush(&mut self) -> Result<(), DriverError<W::Error>> {
        let (lock, clock) = (&*self.shared, &self.clock);
        let mut taken = take_writer(lock, clock).await?;
        match taken.taken.as_mut() {
            Some((io, output)) => {
                let io = &mut noting(lock, clock, io);
                watched(lock, write_controls(lock, clock, io, output)).await
            }
            None => Ok(()),
        }
    }

    /// Writes a data frame with the header `header` gives.
    async fn write(
        &mut self,
        payload: &[u8],
        header: impl FnOnce(&mut crate::Connection<B, R, S>) -> Result<FrameHeader, crate::SendError>,
    ) -> Result<(), DriverError<W::Error>> {
        let (lock, clock) = (&*self.shared, &self.clock);
        let mut taken = take_writer(lock, clock).await?;
        let (header, side) = lock.with(|shared| {
            let conn = &mut shared.session.conn;
            (header(conn), conn.side())
        });
        let header = header?;
        let Some((io, output)) = taken.taken.as_mut() else {
            return Ok(());
        };
        let io = &mut noting(lock, clock, io);
        taken.torn = true;
        let frame = FrameWrite::new(side, header, payload);
        watched(lock, write_frame(io, output, frame)).await?;
        taken.torn = false;
        // What the reader queued meanwhile, before another frame can
        // take the transport.
        watched(lock, write_controls(lock, clock, io, output)).await
    }

    /// Sends a whole message compressed: the connection gives the header
    /// (its checks, the masking key) once this half holds the transport,
    /// then the message is compressed and its frame written, in that
    /// order, before another can be compressed.
    #[cfg(feature = "deflate")]
    async fn send_compressed(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), DriverError<W::Error>> {
        let (lock, clock) = (&*self.shared, &self.clock);
        let mut taken = take_writer(lock, clock).await?;
        let header = lock.with(|shared| shared.session.conn.message_header(kind, payload.len()))?;
        let (Some(tx), Some((io, output))) = (self.deflate.as_mut(), taken.taken.as_mut()) else {
            return Ok(());
        };
        let frame = tx.encode(kind, payload, header.mask);
        let io = &mut noting(lock, clock, io);
        taken.torn = true;
        watched(
            lock,
            crate::asynch::deflate::write_encoded(io, output, frame, false),
        )
        .await?;
        taken.torn = false;
        tx.sent();
        watched(lock, write_controls(lock, clock, io, output)).await
    }
}

/// Takes the writer for the writing half, finishing what a cancelled call
/// left; fails when a data frame was left part written.
async fn take_writer<'l, 'buf, L, W, B, R, S>(
    lock: &'l L,
    clock: &impl Clock,
) -> Result<Taken<'l, 'buf, L, W, B, R, S>, DriverError<W::Error>>
where
    W: Write,
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    B: MessageBuffer,
    R: RngCore,
    S: Side,
{
    let mut taken = Taken::take(lock, WRITER).await;
    let torn = lock.with(|shared| {
        if let Some(error) = shared.abandoned {
            return Some(error);
        }
        if shared.session.torn {
            shared.session.conn.abort();
            return Some(Error::Closed);
        }
        None
    });
    if let Some(error) = torn {
        return Err(DriverError::Connection(error));
    }
    if let Some((io, output)) = taken.taken.as_mut() {
        watched(lock, transmit(&mut noting(lock, clock, io), output)).await?;
    }
    Ok(taken)
}

/// `write` (the writer half's, holding the transport) unless the reader
/// gives the connection up first (see `Reader::with_writer`): then `write`
/// is dropped, a frame it was writing left part written, and the reader's
/// error returned.
async fn watched<'buf, L, W, B, R, S, T, E>(
    lock: &L,
    write: impl Future<Output = Result<T, DriverError<E>>>,
) -> Result<T, DriverError<E>>
where
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
{
    let given_up = poll_fn(|cx| {
        lock.with(|shared| match shared.abandoned {
            Some(error) => Poll::Ready(error),
            None => {
                shared.watching = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    });
    match race(write, given_up).await {
        Either::First(result) => result,
        Either::Second(error) => Err(DriverError::Connection(error)),
    }
}

/// The writer half's transport `io`, noting when the peer takes our bytes
/// (`Shared::progress`).
fn noting<'a, 'buf: 'a, L, W, B, R, S, C>(
    lock: &'a L,
    clock: &'a C,
    io: &'a mut W,
) -> Noting<'a, W, impl FnMut() + 'a>
where
    L: Lock<Target = Shared<'buf, W, B, R, S>>,
    C: Clock,
{
    let note = move || {
        let now = clock.now();
        lock.with(|shared| shared.progress = now);
    };
    Noting { io, note }
}

/// The writer half's transport, noting when the peer takes our bytes
/// (`Shared::progress`).
struct Noting<'a, W, F> {
    io: &'a mut W,
    note: F,
}

impl<W: Write, F> embedded_io_async::ErrorType for Noting<'_, W, F> {
    type Error = W::Error;
}

impl<W: Write, F: FnMut()> Write for Noting<'_, W, F> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, W::Error> {
        let n = self.io.write(buf).await?;
        if n > 0 {
            (self.note)();
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), W::Error> {
        self.io.flush().await
    }
}
