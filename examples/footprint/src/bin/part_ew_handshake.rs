//! Attribution: embedded-websocket's server handshake alone (httparse,
//! read_http_header, server_accept).

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_websocket::{read_http_header, WebSocketServer};
use snowsocket_footprint::{halt, Opaque, READ_BUF, WRITE_BUF};

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut read_buf = [0u8; READ_BUF];
    let mut write_buf = [0u8; WRITE_BUF];
    let mut filled = 0;
    loop {
        match io.receive(&mut read_buf[filled..]) {
            Ok(n) if n > 0 => filled += n,
            _ => halt(),
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&read_buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let headers = request.headers.iter().map(|h| (h.name, h.value));
                if let Ok(Some(context)) = read_http_header(headers) {
                    let mut ws = WebSocketServer::new_server();
                    if let Ok(n) =
                        ws.server_accept(&context.sec_websocket_key, None, &mut write_buf)
                    {
                        let _ = io.transmit(&write_buf[..n]);
                    }
                }
                halt()
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => halt(),
        }
    }
}
