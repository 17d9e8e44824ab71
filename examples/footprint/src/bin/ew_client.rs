//! embedded-websocket (crates.io, no default features), client role: send
//! the upgrade request and check the answer, send messages (masked) and
//! read their echoes, then close. It has no heartbeat.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use embedded_websocket::framer::{Framer, ReadResult};
use embedded_websocket::{
    WebSocketClient, WebSocketCloseStatusCode, WebSocketOptions, WebSocketSendMessageType,
};
use snowsocket_footprint::{halt, Opaque, XorShift, MESSAGE_BUF, READ_BUF, WRITE_BUF};

/// The connection state the caller holds besides its buffers (read from the
/// ELF by scripts/footprint.sh; 4 bytes of .rodata).
#[used]
#[no_mangle]
static FOOTPRINT_STATE_BYTES: usize = core::mem::size_of::<WebSocketClient<XorShift>>()
    + core::mem::size_of::<Framer<'static, XorShift, embedded_websocket::Client>>()
    + core::mem::size_of::<usize>();

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut read_buf = [0u8; READ_BUF];
    let mut read_cursor = 0;
    let mut write_buf = [0u8; WRITE_BUF];
    let mut frame_buf = [0u8; MESSAGE_BUF];
    let mut websocket = WebSocketClient::new_client(XorShift::new());
    let mut framer = Framer::new(
        &mut read_buf,
        &mut read_cursor,
        &mut write_buf,
        &mut websocket,
    );
    let options = WebSocketOptions {
        path: "/echo",
        host: "echo.example",
        origin: "",
        sub_protocols: None,
        additional_headers: None,
    };
    if framer.connect(&mut io, &options).is_ok() {
        for _ in 0..black_box(3) {
            let text = black_box("hello, echo");
            let sent = framer.write(
                &mut io,
                WebSocketSendMessageType::Text,
                true,
                text.as_bytes(),
            );
            if sent.is_err() {
                break;
            }
            match framer.read(&mut io, &mut frame_buf) {
                Ok(ReadResult::Text(t)) if t == text => {}
                _ => break,
            }
        }
        let _ = framer.close(&mut io, WebSocketCloseStatusCode::NormalClosure, None);
    }
    halt()
}
