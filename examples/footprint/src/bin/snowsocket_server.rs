//! snowsocket-core, server role: accept the upgrade, echo every message
//! (fragmented ones reassembled, text checked as strict UTF-8), answer
//! pings, send heartbeat pings (default 30 s / 10 s pong timeout), answer
//! the close handshake. The blocking driver over an `embedded_io` stream.

#![no_std]
#![no_main]

use core::time::Duration;

use cortex_m_rt::entry;
use snowsocket_core::handshake::HandshakeLimits;
use snowsocket_core::{echo, Config, Instant, Parts, ServerSide, SliceBuffer, WebSocket};
use snowsocket_footprint::{halt, millis, Opaque, XorShift, MESSAGE_BUF, READ_BUF, WRITE_BUF};

fn now() -> Instant {
    Instant::from_millis(u64::from(millis()))
}

/// The connection state the caller holds besides its buffers (read from the
/// ELF by scripts/footprint.sh; 4 bytes of .rodata).
#[used]
#[no_mangle]
static FOOTPRINT_STATE_BYTES: usize = core::mem::size_of::<
    WebSocket<
        'static,
        Opaque,
        SliceBuffer<&'static mut [u8]>,
        XorShift,
        fn() -> Instant,
        ServerSide,
    >,
>();

#[entry]
fn main() -> ! {
    let mut read_buf = [0u8; READ_BUF];
    let mut write_buf = [0u8; WRITE_BUF];
    let mut message_buf = [0u8; MESSAGE_BUF];
    let parts = Parts {
        read_buf: &mut read_buf,
        write_buf: &mut write_buf,
        message_buf: SliceBuffer::new(&mut message_buf[..]),
        rng: XorShift::new(),
        clock: now as fn() -> Instant,
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
    };
    if let Ok(mut ws) = WebSocket::accept(Opaque::new(), parts) {
        // Each message is answered while it is still borrowed from the
        // read (or message) buffer: no copy, no buffer of its own.
        while let Ok(true) = ws.respond(echo) {}
    }
    halt()
}
