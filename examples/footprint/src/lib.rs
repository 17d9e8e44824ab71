//! What the footprint firmwares share, so that only the WebSocket library
//! differs between them: an opaque transport (the optimiser cannot see the
//! bytes read, nor drop the bytes written, so every code path stays live),
//! a tiny RNG, a clock, and the panic handler.
//!
//! The `baseline` binary uses only this: subtract it to get what a library
//! adds.

#![no_std]

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

/// Buffer sizes, the same for both libraries.
pub const READ_BUF: usize = 1024;
/// See [`READ_BUF`].
pub const WRITE_BUF: usize = 1024;
/// Reassembly (snowsocket) or frame (embedded-websocket) buffer.
pub const MESSAGE_BUF: usize = 1024;

/// Stands in for a network peripheral's receive FIFO.
static RX: [u8; 64] = [0; 64];
/// A millisecond counter, as a SysTick handler would keep.
static MILLIS: AtomicU32 = AtomicU32::new(0);

/// A byte stream whose input the compiler cannot predict.
pub struct Opaque {
    at: usize,
}

/// The transport's error (never produced by a real read here, but typed as
/// a driver would be).
#[derive(Debug, Clone, Copy)]
pub struct IoError;

impl Opaque {
    /// A fresh transport.
    pub const fn new() -> Self {
        Self { at: 0 }
    }

    /// Copies up to `buf.len()` opaque bytes; 0 is end of stream.
    pub fn receive(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        let src: &[u8] = black_box(&RX[..]);
        let n = black_box(buf.len().min(src.len()));
        if n == usize::MAX {
            return Err(IoError);
        }
        let from = self.at % src.len().max(1);
        let n = n.min(src.len() - from);
        buf[..n].copy_from_slice(&src[from..from + n]);
        self.at = self.at.wrapping_add(n);
        Ok(n)
    }

    /// Hands `buf` to the (opaque) hardware.
    pub fn transmit(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        black_box(buf);
        Ok(buf.len())
    }
}

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("transport error")
    }
}

impl core::error::Error for IoError {}

// What snowsocket's blocking driver takes.
impl embedded_io::Error for IoError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Opaque {
    type Error = IoError;
}

impl embedded_io::Read for Opaque {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.receive(buf)
    }
}

impl embedded_io::Write for Opaque {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.transmit(buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

// What embedded-websocket's framer takes.
impl embedded_websocket::framer::Stream<IoError> for Opaque {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.receive(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), IoError> {
        let mut rest = buf;
        while !rest.is_empty() {
            let n = self.transmit(rest)?;
            rest = &rest[n..];
        }
        Ok(())
    }
}

impl Default for Opaque {
    fn default() -> Self {
        Self::new()
    }
}

/// A xorshift RNG: stands in for a hardware RNG.
pub struct XorShift(u32);

impl XorShift {
    /// Seeded from an opaque value.
    pub fn new() -> Self {
        Self(black_box(0x2545_F491) | 1)
    }
}

impl Default for XorShift {
    fn default() -> Self {
        Self::new()
    }
}

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(4) {
            let v = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Milliseconds since boot.
pub fn millis() -> u32 {
    MILLIS.fetch_add(black_box(1), Ordering::Relaxed)
}

/// Where a firmware ends up when its connection is over.
pub fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    halt()
}

// What snowsocket's async driver takes: the same transport, always ready.
impl embedded_io_async::Read for Opaque {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.receive(buf)
    }
}

impl embedded_io_async::Write for Opaque {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.transmit(buf)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// Runs `future` to completion by polling it in a loop (what an executor
/// does, without one: the async firmwares measure the driver, not an
/// executor).
pub fn block_on<F: core::future::Future>(future: F) -> F::Output {
    let mut future = core::pin::pin!(future);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
