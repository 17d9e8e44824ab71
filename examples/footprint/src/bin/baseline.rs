//! The runtime and the transport alone: what every footprint firmware has
//! besides its WebSocket library.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use rand_core::RngCore;
use snowsocket_footprint::{halt, millis, Opaque, XorShift, READ_BUF};

#[entry]
fn main() -> ! {
    let mut io = Opaque::new();
    let mut rng = XorShift::new();
    let mut buf = [0u8; READ_BUF];
    while let Ok(n) = io.receive(&mut buf) {
        if n == 0 {
            break;
        }
        buf[0] ^= rng.next_u32() as u8 ^ millis() as u8;
        let _ = io.transmit(black_box(&buf[..n]));
    }
    halt()
}
