//! snowsocket-core, client role: send the upgrade request and check the
//! answer, send messages (masked) and read their echoes (reassembly, strict
//! UTF-8), answer pings, send heartbeat pings, then close.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::time::Duration;

use cortex_m_rt::entry;
use snowsocket_core::handshake::{ClientRequest, HandshakeLimits};
use snowsocket_core::{
    ClientSide, CloseCode, Config, Instant, Message, Parts, SliceBuffer, WebSocket,
};
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
        ClientSide,
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
    let request = ClientRequest::new("echo.example", "/echo");
    if let Ok((mut ws, _)) = WebSocket::connect(Opaque::new(), parts, &request) {
        for _ in 0..black_box(3) {
            let text = black_box("hello, echo");
            if ws.send_text(text).is_err() {
                break;
            }
            match ws.read_message() {
                Ok(Some(Message::Text(t))) if t == text => {}
                _ => break,
            }
        }
        let _ = ws.close(CloseCode::NORMAL, "");
    }
    halt()
}
