//! Attribution: snowsocket-core's sans-I/O connection alone (server role,
//! heartbeat on), echoing, with no handshake and no driver.

#![no_std]
#![no_main]

use cortex_m_rt::entry;
use snowsocket_core::{Config, Connection, Event, Instant, MessageKind, ServerSide, SliceBuffer};
use snowsocket_footprint::{halt, millis, Opaque, XorShift, MESSAGE_BUF, READ_BUF, WRITE_BUF};

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut message_buf = [0u8; MESSAGE_BUF];
    let now = || Instant::from_millis(u64::from(millis()));
    let mut conn = Connection::new(
        ServerSide,
        Config::DEFAULT,
        SliceBuffer::new(&mut message_buf[..]),
        XorShift::new(),
        now(),
    );
    let mut read_buf = [0u8; READ_BUF];
    let mut write_buf = [0u8; WRITE_BUF];
    let mut held = 0;
    loop {
        if conn.handle_timeout(now()).is_err() {
            break;
        }
        match io.receive(&mut read_buf[held..]) {
            Ok(n) if n > 0 => held += n,
            _ => break,
        }
        let mut start = 0;
        loop {
            let (consumed, event) = match conn.handle_read(&mut read_buf[start..held], now()) {
                Ok(r) => r,
                Err(_) => halt(),
            };
            start += consumed;
            let (kind, payload) = match event {
                Some(Event::Text(t)) => (MessageKind::Text, t.as_bytes()),
                Some(Event::Binary(b)) => (MessageKind::Binary, b),
                Some(_) => continue,
                None => break,
            };
            // The event borrows the connection: send after copying.
            let mut echo = [0u8; MESSAGE_BUF];
            let len = payload.len().min(MESSAGE_BUF);
            echo[..len].copy_from_slice(&payload[..len]);
            if let Ok(n) = conn.send(kind, &echo[..len], &mut write_buf) {
                let _ = io.transmit(&write_buf[..n]);
            }
        }
        read_buf.copy_within(start..held, 0);
        held -= start;
        if let Ok(n) = conn.poll_transmit(&mut write_buf) {
            let _ = io.transmit(&write_buf[..n]);
        }
        if conn.is_closed() {
            break;
        }
    }
    halt()
}
