//! snowsocket-core's async driver on tokio, as `examples/tokio_echo_server`
//! runs it, on the same runtime as the other tokio servers here (a
//! current-thread runtime, a task per connection): read and write buffers
//! of 64 KiB and a frame header, a growable message buffer, limits lifted, every message
//! answered in place with `respond(echo)`.

use std::io;

use embedded_io_adapters::tokio_1::FromTokio;
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::{echo, Config, FrameHeader, Parts};

use super::{tokio_rt, Running};

/// The read and write buffers of a connection, as the example's: 64 KiB
/// and the longest frame header, so that a 64 KiB message can arrive
/// whole.
const BUFFER: usize = 64 * 1024 + FrameHeader::MAX_LEN;

pub(super) fn start() -> Result<Running, String> {
    tokio_rt::current_thread("tokio-ours", run)
}

async fn run(listener: std::net::TcpListener) -> io::Result<()> {
    let mut seed = 0;
    tokio_rt::accept_each(listener, |conn| {
        seed += 1;
        tokio::spawn(tokio::task::unconstrained(serve(conn, seed)));
    })
    .await
}

async fn serve(conn: tokio::net::TcpStream, seed: u64) {
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let config = Config::default()
        .max_message_size(usize::MAX)
        .max_frame_size(usize::MAX)
        .ping_interval(None);
    let parts =
        Parts::server(&mut read, &mut write, Vec::new(), TokioClock::new(), seed).config(config);
    let Ok(mut ws) = WebSocket::accept(FromTokio::new(conn), parts).await else {
        return;
    };
    while let Ok(true) = ws.respond(echo).await {}
}
