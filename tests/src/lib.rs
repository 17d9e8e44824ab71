//! Shared helpers for snowsocket's behaviour tests (and for anyone testing
//! code built on it).
//!
//! - [`pipe`]: an in-memory duplex byte stream implementing
//!   `embedded_io::{Read, Write}`, with chosen chunk sizes and either
//!   "empty read = `TimedOut` tick" or blocking reads with a bounded wait.
//! - [`ManualClock`]: virtual time, shared and cloneable, usable as the
//!   driver's [`snowsocket_core::Clock`].
//! - [`FixedRng`] (a fixed byte sequence, e.g. the RFC 6455 masking key
//!   `37 fa 21 3d`) and [`XorShiftRng`] (seeded, for property loops).
//! - [`Pair`]: a client and a server [`Connection`] talking in memory on
//!   virtual time, bytes pumped both ways.
//! - [`frame`] / [`header`]: hand-made (possibly invalid) frames, and
//!   [`parse_frames`] / [`close_code`] to read what a connection sent.
//! - [`feed_chunks`] / [`feed_split`] / [`feed_every_way`]: feed bytes to a connection in a
//!   chosen chunking (or every split point and byte by byte) and collect the
//!   owned events, the error and what it transmitted.
//! - [`server`]: real-socket helpers for the server tests; [`tap`]: a
//!   forwarding tap that reads frame headers on the wire; [`tls`]: rcgen
//!   certificates and rustls configurations; [`interop`]: Python
//!   `websockets` and Node `ws` peers as child processes.
//!
//! These are test helpers: they panic (with a message) when a test's
//! expectation cannot hold, which is why the panic lints are allowed here.
//!
//! # Examples
//!
//! Two connections on virtual time:
//!
//! ```
//! use core::time::Duration;
//! use snowsocket_core::MessageKind;
//! use snowsocket_tests::{Ev, Pair, Side, QUIET};
//!
//! let mut pair = Pair::new(QUIET.ping_interval(Some(Duration::from_secs(30))));
//! pair.send(Side::Client, MessageKind::Text, b"hi");
//! pair.ping(Side::Server, b"?");
//! pair.run();
//! assert_eq!(pair.take_events(Side::Server), [Ev::Text("hi".into()), Ev::Pong(b"?".to_vec())]);
//! assert_eq!(pair.take_events(Side::Client), [Ev::Ping(b"?".to_vec())]);
//! pair.advance(Duration::from_secs(30)); // heartbeat pings, answered
//! assert!(pair.server.error.is_none() && pair.client.error.is_none());
//! ```
//!
//! The pipe, in its default mode (an empty read is a `TimedOut` tick):
//!
//! ```
//! use embedded_io::{ErrorKind, Error as _, Read, Write};
//!
//! let (mut a, b) = snowsocket_tests::pipe();
//! let mut b = b.read_chunk(2);
//! a.write(b"abc").unwrap();
//! let mut buf = [0u8; 8];
//! assert_eq!(b.read(&mut buf).unwrap(), 2);
//! assert_eq!(b.read(&mut buf).unwrap(), 1);
//! assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
//! drop(a);
//! assert_eq!(b.read(&mut buf).unwrap(), 0, "end of stream");
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod asynch;
pub mod deflate;
pub mod interop;
pub mod linger;
pub mod server;
pub mod tap;
pub mod tls;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rand_core::RngCore;
use snowsocket_core::{
    Config, Connection, Error, Event, FrameHeader, Instant, MessageBuffer, MessageKind, OpCode,
    Role,
};

// ---------------------------------------------------------------------------
// The in-memory pipe
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Virtual time
// ---------------------------------------------------------------------------

/// A clock that moves only when told to: a shared handle (clones see the
/// same time), usable from several threads. Implements
/// [`snowsocket_core::Clock`].
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(start.as_micros())),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.micros.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Instant) {
        self.micros.store(to.as_micros(), Ordering::SeqCst);
    }
}

impl snowsocket_core::Clock for ManualClock {
    fn now(&mut self) -> Instant {
        Self::now(self)
    }
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// An "RNG" that hands out a fixed byte sequence, over and over: with
/// `[0x37, 0xfa, 0x21, 0x3d]` a client masks with the RFC 6455 §5.7 key.
#[derive(Clone, Debug)]
pub struct FixedRng {
    bytes: Vec<u8>,
    at: usize,
}

impl FixedRng {
    /// Repeats `bytes` (which must not be empty).
    pub fn new(bytes: &[u8]) -> Self {
        assert!(!bytes.is_empty(), "FixedRng needs at least one byte");
        Self {
            bytes: bytes.to_vec(),
            at: 0,
        }
    }

    /// The RFC 6455 §5.7 masking key, `37 fa 21 3d`.
    pub fn rfc_mask() -> Self {
        Self::new(&[0x37, 0xfa, 0x21, 0x3d])
    }
}

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.bytes[self.at];
            self.at = (self.at + 1) % self.bytes.len();
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// A seeded xorshift64* generator: reproducible randomness for property
/// loops (not for anything secret).
#[derive(Clone, Debug)]
pub struct XorShiftRng(u64);

impl XorShiftRng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A value in `range`.
    pub fn range(&mut self, range: core::ops::RangeInclusive<usize>) -> usize {
        let span = (range.end() - range.start()) as u64 + 1;
        range.start() + self.below(span) as usize
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.fill_bytes(&mut v);
        v
    }
}

impl RngCore for XorShiftRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Frames by hand
// ---------------------------------------------------------------------------

/// The bytes of a frame header as given, valid or not: `rsv` is the three
/// RSV bits (0–7), `opcode` any 4-bit value, `len` the declared payload
/// length in its shortest encoding.
pub fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame as given, valid or not: [`header`] then `payload`, masked
/// with `mask` when there is one.
pub fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, rsv, opcode, mask, payload.len() as u64);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    out
}

/// A well-formed frame from a client (masked with a fixed key) or a server
/// (unmasked).
pub fn frame_from(role: Role, fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mask = match role {
        Role::Client => Some([0xA1, 0x5B, 0x07, 0xE3]),
        Role::Server => None,
    };
    frame(fin, 0, opcode.as_u8(), mask, payload)
}

/// A Close payload: the code, then the reason.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// A frame read back from the wire, unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// Whether the frame was masked.
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The close code, if this is a Close frame with one.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, self.payload.as_slice()) {
            (OpCode::Close, [a, b, ..]) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

/// Splits `bytes` into whole frames (panics on anything else: what a
/// connection sends must be well-formed).
pub fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (h, used) = FrameHeader::decode(bytes)
            .expect("a connection sent an invalid header")
            .expect("a connection sent an incomplete header");
        let len = usize::try_from(h.payload_len).unwrap();
        let mut payload = bytes[used..used + len].to_vec();
        if let Some(key) = h.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        frames.push(WireFrame {
            fin: h.fin,
            opcode: h.opcode,
            masked: h.mask.is_some(),
            payload,
        });
        bytes = &bytes[used + len..];
    }
    frames
}

/// The code of the last Close frame in `bytes` (what a connection sent).
pub fn close_code(bytes: &[u8]) -> Option<u16> {
    parse_frames(bytes)
        .iter()
        .rev()
        .find(|f| f.opcode == OpCode::Close)
        .and_then(WireFrame::close_code)
}

// ---------------------------------------------------------------------------
// Owned events and feeding
// ---------------------------------------------------------------------------

/// An [`Event`] that owns its payload, for collecting and comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// [`Event::Text`].
    Text(String),
    /// [`Event::Binary`].
    Binary(Vec<u8>),
    /// [`Event::Ping`].
    Ping(Vec<u8>),
    /// [`Event::Pong`].
    Pong(Vec<u8>),
    /// [`Event::Close`]: code and reason.
    Close(Option<(u16, String)>),
}

impl From<Event<'_>> for Ev {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Text(t) => Self::Text(t.to_owned()),
            Event::Binary(b) => Self::Binary(b.to_vec()),
            Event::Ping(p) => Self::Ping(p.to_vec()),
            Event::Pong(p) => Self::Pong(p.to_vec()),
            Event::Close(c) => Self::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
            other => panic!("unknown event {other:?}"),
        }
    }
}

/// What a connection made of some input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The events, in order.
    pub events: Vec<Ev>,
    /// The error that failed the connection, if any.
    pub error: Option<Error>,
    /// Everything `poll_transmit` handed out (after each read and at the end).
    pub sent: Vec<u8>,
    /// How many input bytes had been fed when the error came (all of them
    /// when there was none).
    pub fed_at_error: usize,
}

impl Outcome {
    /// The code of the Close the connection sent, if any.
    pub fn close_code(&self) -> Option<u16> {
        close_code(&self.sent)
    }
}

/// Feeds `bytes` to `conn` in chunks of the sizes `chunks` yields (cycled;
/// the last size repeats), keeping unconsumed bytes and feeding them again
/// with the next chunk, as the contract asks. Stops at the first error.
pub fn feed_chunks<B: MessageBuffer, R: RngCore>(
    conn: &mut Connection<B, R>,
    bytes: &[u8],
    chunks: &mut dyn FnMut() -> usize,
    now: Instant,
) -> Outcome {
    let mut out = Outcome {
        events: Vec::new(),
        error: None,
        sent: Vec::new(),
        fed_at_error: bytes.len(),
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut tx = [0u8; 256];
    // A closed connection is done with its input (its transport would be
    // closed now): what is left is not fed.
    while at < bytes.len() && !conn.is_closed() {
        let n = chunks().clamp(1, bytes.len() - at);
        pending.extend_from_slice(&bytes[at..at + n]);
        at += n;
        let mut start = 0;
        loop {
            let len = pending.len() - start;
            match conn.handle_read(&mut pending[start..], now) {
                Ok((consumed, event)) => {
                    assert!(consumed <= len, "consumed {consumed} of {len}");
                    let got = event.map(Ev::from);
                    start += consumed;
                    match got {
                        // Once closed (the peer answered our Close), the
                        // connection reads no more (later input is
                        // discarded): stop, as the call order says.
                        Some(ev) if !conn.is_closed() => out.events.push(ev),
                        Some(ev) => {
                            out.events.push(ev);
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    out.fed_at_error = at;
                    break;
                }
            }
        }
        pending.drain(..start);
        assert!(
            out.error.is_some() || pending.len() < FrameHeader::MAX_LEN,
            "{} bytes left unconsumed",
            pending.len()
        );
        loop {
            let n = conn.poll_transmit(&mut tx).expect("139 bytes always fit");
            if n == 0 {
                break;
            }
            out.sent.extend_from_slice(&tx[..n]);
        }
        if out.error.is_some() {
            break;
        }
    }
    out
}

/// A connection in `role` with a growable buffer and a fixed-key RNG,
/// opened at [`Instant::ZERO`].
pub fn connection(role: Role, config: Config) -> Connection<Vec<u8>, FixedRng> {
    Connection::new(
        role,
        config,
        Vec::new(),
        FixedRng::rfc_mask(),
        Instant::ZERO,
    )
}

/// Feeds `bytes` to a fresh connection, cut at each of `cuts` (sorted
/// offsets).
pub fn feed_split(role: Role, config: Config, bytes: &[u8], cuts: &[usize]) -> Outcome {
    let mut sizes = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(core::iter::once(&bytes.len())) {
        sizes.push(c.saturating_sub(last).max(1));
        last = c.max(last);
    }
    let mut i = 0;
    let mut next = move || {
        let s = sizes.get(i).copied().unwrap_or(usize::MAX);
        i += 1;
        s
    };
    feed_chunks(
        &mut connection(role, config),
        bytes,
        &mut next,
        Instant::ZERO,
    )
}

/// The frames in `bytes` other than Pongs. Which Pongs go out depends on
/// when `poll_transmit` runs: several Pings read before it may get one
/// Pong (RFC 6455 §5.5.3), and a failure drops a Pong not yet sent.
pub fn without_pongs(bytes: &[u8]) -> Vec<WireFrame> {
    parse_frames(bytes)
        .into_iter()
        .filter(|f| f.opcode != OpCode::Pong)
        .collect()
}

/// Feeds `bytes` whole, then cut at every split point, then byte by byte,
/// asserting that the events, the error and the frames sent (Pongs aside,
/// see [`without_pongs`]) are the same every time; returns the outcome of
/// the whole input. (The point at which an error is found may differ with
/// the chunking, so `fed_at_error` is the whole-input one.)
pub fn feed_every_way(role: Role, config: Config, bytes: &[u8]) -> Outcome {
    let whole = feed_split(role, config, bytes, &[]);
    let whole_sent = without_pongs(&whole.sent);
    let same = |o: &Outcome, how: &str| {
        assert_eq!(o.events, whole.events, "events differ when fed {how}");
        assert_eq!(o.error, whole.error, "error differs when fed {how}");
        assert_eq!(
            without_pongs(&o.sent),
            whole_sent,
            "frames sent differ when fed {how}"
        );
    };
    for cut in 1..bytes.len() {
        same(
            &feed_split(role, config, bytes, &[cut]),
            &format!("split at {cut}"),
        );
    }
    let bytewise = feed_chunks(
        &mut connection(role, config),
        bytes,
        &mut || 1,
        Instant::ZERO,
    );
    same(&bytewise, "byte by byte");
    whole
}

/// A config with the heartbeat and the fragment timeout off, so that
/// nothing happens unless a test makes it.
pub const QUIET: Config = Config::DEFAULT.ping_interval(None).fragment_timeout(None);

// ---------------------------------------------------------------------------
// Two connections in memory
// ---------------------------------------------------------------------------

/// Which end of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

impl Side {
    /// The other side.
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// One end of a [`Pair`]: its connection, the bytes in flight towards it,
/// and what it received.
#[derive(Debug)]
pub struct Peer<B> {
    /// The connection.
    pub conn: Connection<B, XorShiftRng>,
    /// Bytes sent to this end (those before an internal read position have
    /// been consumed).
    pub inbox: Vec<u8>,
    /// Events this end received, in order.
    pub events: Vec<Ev>,
    /// The error that failed this end (from a read or a timeout), if any.
    pub error: Option<Error>,
    /// Every frame this end sent, as parsed from the wire.
    pub sent: Vec<WireFrame>,
    /// A dead peer: bytes sent to this end are dropped, never read.
    pub deaf: bool,
    /// Bytes of `inbox` already consumed by the connection.
    read: usize,
    /// Bytes after those already given to the connection and left
    /// unconsumed (a partial header).
    held: usize,
}

/// A client and a server [`Connection`] talking through memory on virtual
/// time: what one sends lands in the other's inbox, and [`Pair::run`]
/// delivers it (in chunks of [`Pair::chunk`] bytes) until both are quiet.
#[derive(Debug)]
pub struct Pair<B = Vec<u8>> {
    /// The client end.
    pub client: Peer<B>,
    /// The server end.
    pub server: Peer<B>,
    /// The virtual time.
    pub now: Instant,
    /// How many bytes are delivered per `handle_read` call at most.
    pub chunk: usize,
}

impl Pair<Vec<u8>> {
    /// Both ends with `config` and growable buffers, at [`Instant::ZERO`].
    pub fn new(config: Config) -> Self {
        Self::with(config, config, Vec::new(), Vec::new())
    }
}

impl<B: MessageBuffer> Pair<B> {
    /// Each end with its own config and message buffer.
    pub fn with(client: Config, server: Config, client_buf: B, server_buf: B) -> Self {
        let peer = |role, config, buf, seed| Peer {
            conn: Connection::new(role, config, buf, XorShiftRng::new(seed), Instant::ZERO),
            inbox: Vec::new(),
            events: Vec::new(),
            error: None,
            sent: Vec::new(),
            deaf: false,
            read: 0,
            held: 0,
        };
        Self {
            client: peer(Role::Client, client, client_buf, 1),
            server: peer(Role::Server, server, server_buf, 2),
            now: Instant::ZERO,
            chunk: usize::MAX,
        }
    }

    /// The end on `side`.
    pub fn peer(&mut self, side: Side) -> &mut Peer<B> {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn ends(&mut self, from: Side) -> (&mut Peer<B>, &mut Peer<B>) {
        match from {
            Side::Client => (&mut self.client, &mut self.server),
            Side::Server => (&mut self.server, &mut self.client),
        }
    }

    /// Puts frame bytes `from` one side on the wire towards the other.
    pub fn wire(&mut self, from: Side, bytes: &[u8]) {
        let (me, other) = self.ends(from);
        me.sent.extend(parse_frames(bytes));
        if !other.deaf {
            other.inbox.extend_from_slice(bytes);
        }
    }

    /// Sends a whole message from `side` (on the wire; call [`Pair::run`]).
    pub fn send(&mut self, side: Side, kind: MessageKind, payload: &[u8]) {
        let mut out = vec![0; payload.len() + FrameHeader::MAX_LEN];
        let n = self
            .peer(side)
            .conn
            .send(kind, payload, &mut out)
            .expect("send");
        self.wire(side, &out[..n]);
    }

    /// Sends one fragment from `side`.
    pub fn send_fragment(&mut self, side: Side, kind: MessageKind, payload: &[u8], fin: bool) {
        let mut out = vec![0; payload.len() + FrameHeader::MAX_LEN];
        let n = self
            .peer(side)
            .conn
            .send_fragment(kind, payload, fin, &mut out)
            .expect("send_fragment");
        self.wire(side, &out[..n]);
    }

    /// Sends a Ping from `side`.
    pub fn ping(&mut self, side: Side, payload: &[u8]) {
        let mut out = [0u8; 139];
        let n = self.peer(side).conn.ping(payload, &mut out).expect("ping");
        self.wire(side, &out[..n]);
    }

    /// Starts the close handshake from `side`.
    pub fn close(&mut self, side: Side, code: u16, reason: &str) {
        let now = self.now;
        self.peer(side)
            .conn
            .close(snowsocket_core::CloseCode(code), reason, now)
            .expect("close");
    }

    /// Moves virtual time forward and runs both ends' timers, then
    /// [`Pair::run`].
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            let p = self.peer(side);
            if p.error.is_none() && !p.conn.is_closed() {
                if let Err(e) = p.conn.handle_timeout(now) {
                    p.error = Some(e);
                }
            }
        }
        self.run();
    }

    /// Pumps bytes both ways (poll_transmit → the other's inbox →
    /// handle_read) until neither end has anything to send or read.
    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            let mut progress = false;
            for side in [Side::Client, Side::Server] {
                progress |= self.transmit(side);
                progress |= self.deliver(side);
            }
            if !progress {
                return;
            }
        }
        panic!("the pair did not settle");
    }

    fn transmit(&mut self, from: Side) -> bool {
        let mut tx = [0u8; 139];
        let mut any = false;
        loop {
            let n = self
                .peer(from)
                .conn
                .poll_transmit(&mut tx)
                .expect("139 bytes always fit");
            if n == 0 {
                return any;
            }
            self.wire(from, &tx[..n]);
            any = true;
        }
    }

    fn deliver(&mut self, to: Side) -> bool {
        let now = self.now;
        let chunk = self.chunk.max(1);
        let p = self.peer(to);
        if p.inbox.len() == p.read || p.error.is_some() || p.conn.is_closed() {
            return false;
        }
        let base = p.read;
        let end = p.inbox.len().min(base + p.held.saturating_add(chunk));
        if end == base + p.held {
            return false;
        }
        let mut input: Vec<u8> = p.inbox[base..end].to_vec();
        let mut start = 0;
        loop {
            match p.conn.handle_read(&mut input[start..], now) {
                Ok((consumed, event)) => {
                    let ev = event.map(Ev::from);
                    start += consumed;
                    match ev {
                        Some(ev) if !p.conn.is_closed() => p.events.push(ev),
                        Some(ev) => {
                            p.events.push(ev);
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    p.error = Some(e);
                    p.inbox.clear();
                    p.read = 0;
                    p.held = 0;
                    return true;
                }
            }
        }
        p.read += start;
        p.held = end - p.read;
        if p.read == p.inbox.len() || p.read > 1 << 16 {
            p.inbox.drain(..p.read);
            p.read = 0;
        }
        true
    }

    /// The events `side` received so far, taken.
    pub fn take_events(&mut self, side: Side) -> Vec<Ev> {
        core::mem::take(&mut self.peer(side).events)
    }
}
