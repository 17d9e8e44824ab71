//! Attribution: snowsocket-core's server handshake alone (parse the request,
//! write the 101 answer or the HTTP error).

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_footprint::{halt, Opaque, READ_BUF, WRITE_BUF};

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut read_buf = [0u8; READ_BUF];
    let mut write_buf = [0u8; WRITE_BUF];
    let mut filled = 0;
    loop {
        let mut headers = [handshake::EMPTY_HEADER; 16];
        match handshake::parse_request(&read_buf[..filled], &mut headers, &HandshakeLimits::DEFAULT)
        {
            Ok(Parsed::Complete { value, .. }) => {
                if let Ok(n) = handshake::write_accept(&mut write_buf, &value, None, &[]) {
                    let _ = io.transmit(&write_buf[..n]);
                }
                halt()
            }
            Ok(Parsed::Incomplete) => {}
            Err(e) => {
                if let Ok(n) = e.write_response(&mut write_buf) {
                    let _ = io.transmit(&write_buf[..n]);
                }
                halt()
            }
        }
        match io.receive(&mut read_buf[filled..]) {
            Ok(n) if n > 0 => filled += n,
            _ => halt(),
        }
    }
}
