//! The in-memory pipe.

use super::*;

/// What a [`PipeEnd`] does when it reads and no byte is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyRead {
    /// Return an error of kind `TimedOut` at once: the driver treats it as a
    /// clock tick. If a [`ManualClock`] is attached with
    /// [`PipeEnd::tick_clock`], it is advanced first.
    TimedOut,
    /// Block until bytes arrive or the peer end is dropped (then `Ok(0)`),
    /// for at most this long (then `TimedOut`), like a socket with a read
    /// timeout. For tests with a thread on each end.
    Block(Duration),
}

/// The error of a [`PipeEnd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeError {
    /// Nothing to read (see [`EmptyRead`]).
    TimedOut,
    /// The peer end was dropped: nothing can be written to it.
    BrokenPipe,
}

impl fmt::Display for PipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TimedOut => "read timed out",
            Self::BrokenPipe => "peer end dropped",
        })
    }
}

impl core::error::Error for PipeError {}

impl embedded_io::Error for PipeError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::TimedOut => embedded_io::ErrorKind::TimedOut,
            Self::BrokenPipe => embedded_io::ErrorKind::BrokenPipe,
        }
    }
}

#[derive(Debug, Default)]
struct Direction {
    bytes: VecDeque<u8>,
    /// The writing end is gone (or shut its writing down).
    writer_closed: bool,
    /// The reading end is gone.
    reader_closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    /// Index 0 carries bytes from end A to end B, index 1 from B to A.
    dirs: Mutex<[Direction; 2]>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, [Direction; 2]> {
        self.dirs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One end of an in-memory duplex byte stream (see [`pipe`]).
///
/// Dropping an end is like closing a socket: the peer reads what was
/// buffered, then end-of-stream (`Ok(0)`), and its writes fail with
/// [`PipeError::BrokenPipe`].
#[derive(Debug)]
pub struct PipeEnd {
    shared: Arc<Shared>,
    /// The direction this end writes into (it reads from the other one).
    tx: usize,
    empty_read: EmptyRead,
    read_chunk: usize,
    write_chunk: usize,
    tick: Option<(ManualClock, Duration)>,
    reads: u64,
    timeouts: u64,
}

/// A connected pair of pipe ends. Both start in [`EmptyRead::TimedOut`]
/// mode with unlimited chunk sizes.
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let shared = Arc::new(Shared::default());
    let end = |tx| PipeEnd {
        shared: Arc::clone(&shared),
        tx,
        empty_read: EmptyRead::TimedOut,
        read_chunk: usize::MAX,
        write_chunk: usize::MAX,
        tick: None,
        reads: 0,
        timeouts: 0,
    };
    (end(0), end(1))
}

impl PipeEnd {
    fn rx(&self) -> usize {
        1 - self.tx
    }

    /// Sets what an empty read does.
    #[must_use]
    pub fn empty_read(mut self, mode: EmptyRead) -> Self {
        self.empty_read = mode;
        self
    }

    /// Blocking reads that give up after `limit` (see [`EmptyRead::Block`]).
    #[must_use]
    pub fn blocking(self, limit: Duration) -> Self {
        self.empty_read(EmptyRead::Block(limit))
    }

    /// Each read returns at most `n` bytes (at least 1).
    #[must_use]
    pub fn read_chunk(mut self, n: usize) -> Self {
        self.read_chunk = n.max(1);
        self
    }

    /// Each write accepts at most `n` bytes (at least 1).
    #[must_use]
    pub fn write_chunk(mut self, n: usize) -> Self {
        self.write_chunk = n.max(1);
        self
    }

    /// Every read that finds nothing (and times out) first advances `clock`
    /// by `step`: a silent peer then makes virtual time pass, one tick per
    /// read, without any real waiting.
    #[must_use]
    pub fn tick_clock(mut self, clock: &ManualClock, step: Duration) -> Self {
        self.tick = Some((clock.clone(), step));
        self
    }

    /// Reads that returned bytes or end-of-stream so far.
    pub const fn reads(&self) -> u64 {
        self.reads
    }

    /// Reads that timed out so far.
    pub const fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Bytes waiting to be read by this end.
    pub fn available(&self) -> usize {
        self.shared.lock()[self.rx()].bytes.len()
    }

    /// Takes every byte waiting to be read by this end, without blocking.
    pub fn take_available(&mut self) -> Vec<u8> {
        self.shared.lock()[self.rx()].bytes.drain(..).collect()
    }

    /// Waits until at least `n` bytes are waiting (or the peer is gone, or
    /// `limit` passes) and takes them all.
    pub fn take_at_least(&mut self, n: usize, limit: Duration) -> Vec<u8> {
        let deadline = std::time::Instant::now() + limit;
        let rx = self.rx();
        let mut dirs = self.shared.lock();
        while dirs[rx].bytes.len() < n && !dirs[rx].writer_closed {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            dirs = self
                .shared
                .changed
                .wait_timeout(dirs, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        dirs[rx].bytes.drain(..).collect()
    }

    /// Writes all of `bytes` to the peer at once (ignoring the write chunk
    /// size), for scripted peers.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut dirs = self.shared.lock();
        dirs[self.tx].bytes.extend(bytes);
        drop(dirs);
        self.shared.changed.notify_all();
    }

    /// Ends this end's writing: the peer reads end-of-stream once it has
    /// read what is buffered.
    pub fn shutdown_write(&mut self) {
        self.shared.lock()[self.tx].writer_closed = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut dirs = self.shared.lock();
        dirs[self.tx].writer_closed = true;
        let rx = self.rx();
        dirs[rx].reader_closed = true;
        drop(dirs);
        self.shared.changed.notify_all();
    }
}

impl embedded_io::ErrorType for PipeEnd {
    type Error = PipeError;
}

impl embedded_io::Read for PipeEnd {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let rx = self.rx();
        let shared = Arc::clone(&self.shared);
        let mut dirs = shared.lock();
        if dirs[rx].bytes.is_empty() && !dirs[rx].writer_closed {
            match self.empty_read {
                EmptyRead::TimedOut => {}
                EmptyRead::Block(limit) => {
                    let deadline = std::time::Instant::now() + limit;
                    while dirs[rx].bytes.is_empty() && !dirs[rx].writer_closed {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        dirs = shared
                            .changed
                            .wait_timeout(dirs, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        }
        let dir = &mut dirs[rx];
        if dir.bytes.is_empty() {
            if dir.writer_closed {
                self.reads += 1;
                return Ok(0);
            }
            drop(dirs);
            self.timeouts += 1;
            if let Some((clock, step)) = &self.tick {
                clock.advance(*step);
            }
            return Err(PipeError::TimedOut);
        }
        let n = buf.len().min(self.read_chunk).min(dir.bytes.len());
        for (dst, src) in buf.iter_mut().zip(dir.bytes.drain(..n)) {
            *dst = src;
        }
        self.reads += 1;
        Ok(n)
    }
}

impl embedded_io::Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        let mut dirs = self.shared.lock();
        let dir = &mut dirs[self.tx];
        if dir.reader_closed {
            return Err(PipeError::BrokenPipe);
        }
        let n = buf.len().min(self.write_chunk);
        dir.bytes.extend(&buf[..n]);
        drop(dirs);
        self.shared.changed.notify_all();
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}
