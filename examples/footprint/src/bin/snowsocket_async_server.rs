//! snowsocket-core, server role, the async driver: the same echo as
//! `snowsocket_server` (handshake, reassembly, strict UTF-8, heartbeat,
//! close), over `embedded_io_async`, polled by a minimal `block_on`.

#![no_std]
#![no_main]

use core::future::poll_fn;
use core::task::Poll;

use cortex_m_rt::entry;
use snowsocket_core::asynch::{Clock, WebSocket};
use snowsocket_core::{echo, CounterRng, Instant, Parts, ServerSide, SliceBuffer};
use snowsocket_footprint::{block_on, halt, millis, Opaque, MESSAGE_BUF, READ_BUF, WRITE_BUF};

/// The millisecond counter as the async driver's clock.
struct Millis;

impl Clock for Millis {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::from(millis()))
    }

    async fn wait_until(&self, deadline: Instant) {
        poll_fn(|_| {
            if self.now() >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// The connection state the caller holds besides its buffers (read from the
/// ELF by scripts/footprint.sh; 4 bytes of .rodata).
#[used]
#[no_mangle]
static FOOTPRINT_STATE_BYTES: usize = core::mem::size_of::<
    WebSocket<'static, Opaque, SliceBuffer<&'static mut [u8]>, CounterRng, Millis, ServerSide>,
>();

#[entry]
fn main() -> ! {
    let mut read_buf = [0u8; READ_BUF];
    let mut write_buf = [0u8; WRITE_BUF];
    let mut message_buf = [0u8; MESSAGE_BUF];
    let buffer = SliceBuffer::new(&mut message_buf[..]);
    let parts = Parts::server(&mut read_buf, &mut write_buf, buffer, Millis, 1);
    block_on(async {
        if let Ok(mut ws) = WebSocket::accept(Opaque::new(), parts).await {
            while let Ok(true) = ws.respond(echo).await {}
        }
    });
    halt()
}
