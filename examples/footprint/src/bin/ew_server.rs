//! embedded-websocket (crates.io, no default features), server role: parse
//! the upgrade request (httparse, as its examples do), accept, echo every
//! message (its framer reassembles fragments and answers pings and the
//! close handshake). It has no heartbeat.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_websocket::framer::{Framer, ReadResult};
use embedded_websocket::{read_http_header, WebSocketSendMessageType, WebSocketServer};
use snowsocket_footprint::{halt, Opaque, MESSAGE_BUF, READ_BUF, WRITE_BUF};

/// The connection state the caller holds besides its buffers (read from the
/// ELF by scripts/footprint.sh; 4 bytes of .rodata).
#[used]
#[no_mangle]
static FOOTPRINT_STATE_BYTES: usize = core::mem::size_of::<WebSocketServer>()
    + core::mem::size_of::<Framer<'static, embedded_websocket::EmptyRng, embedded_websocket::Server>>(
    )
    + core::mem::size_of::<usize>();

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut read_buf = [0u8; READ_BUF];
    let mut read_cursor = 0;
    let mut write_buf = [0u8; WRITE_BUF];
    let mut frame_buf = [0u8; MESSAGE_BUF];
    // The opening handshake: read until the header block is complete.
    let context = loop {
        let Ok(n) = io.receive(&mut read_buf[read_cursor..]) else {
            halt()
        };
        if n == 0 {
            halt()
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&read_buf[..read_cursor + n]) {
            Ok(httparse::Status::Complete(len)) => {
                read_cursor += n - len;
                let headers = request.headers.iter().map(|h| (h.name, h.value));
                match read_http_header(headers) {
                    Ok(Some(context)) => break context,
                    _ => halt(),
                }
            }
            Ok(httparse::Status::Partial) => read_cursor += n,
            Err(_) => halt(),
        }
    };
    let mut websocket = WebSocketServer::new_server();
    let mut framer = Framer::new(
        &mut read_buf,
        &mut read_cursor,
        &mut write_buf,
        &mut websocket,
    );
    if framer.accept(&mut io, &context).is_ok() {
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
    }
    halt()
}
