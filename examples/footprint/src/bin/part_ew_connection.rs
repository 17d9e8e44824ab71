//! Attribution: embedded-websocket's framing alone (server role, its framer
//! reading and echoing), with no handshake.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_websocket::framer::{Framer, ReadResult};
use embedded_websocket::{WebSocketSendMessageType, WebSocketServer, WebSocketState};
use snowsocket_footprint::{halt, Opaque, MESSAGE_BUF, READ_BUF, WRITE_BUF};

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut read_buf = [0u8; READ_BUF];
    let mut read_cursor = 0;
    let mut write_buf = [0u8; WRITE_BUF];
    let mut frame_buf = [0u8; MESSAGE_BUF];
    let mut websocket = WebSocketServer::new_server();
    // The state a completed handshake leaves.
    websocket.state = WebSocketState::Open;
    let mut framer = Framer::new(
        &mut read_buf,
        &mut read_cursor,
        &mut write_buf,
        &mut websocket,
    );
    loop {
        let (kind, message) = match framer.read(&mut io, &mut frame_buf) {
            Ok(ReadResult::Text(t)) => (WebSocketSendMessageType::Text, t.as_bytes()),
            Ok(ReadResult::Binary(b)) => (WebSocketSendMessageType::Binary, b),
            Ok(ReadResult::Pong(_)) => continue,
            Ok(ReadResult::Closed) | Err(_) => break,
        };
        if framer.write(&mut io, kind, true, message).is_err() {
            break;
        }
    }
    halt()
}
