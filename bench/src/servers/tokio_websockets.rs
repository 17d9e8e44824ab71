//! tokio-websockets shaped like its own `echo_server` example: a
//! current-thread tokio runtime, one task per connection (unconstrained),
//! frame size and limits lifted, every text or binary message sent back
//! with `SinkExt::send`. The runtime runs on a thread of its own; the only
//! change from the example is Nagle turned off, as in every server here.

use std::io;
use std::thread;

use futures_util::{SinkExt, StreamExt};
use tokio_websockets::{Config, Limits, ServerBuilder};

use super::{listen, Running};

pub(super) fn start() -> Result<Running, String> {
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    thread::Builder::new()
        .name("tokio-rt".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(run(listener)) {
                eprintln!("tokio-websockets: {e}");
            }
        })
        .map_err(|e| format!("runtime thread: {e}"))?;
    Ok(Running {
        addr,
        cert: None,
        stop: None,
    })
}

async fn run(listener: std::net::TcpListener) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut errors = 0;
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            // Out of file descriptors, say: bounded retries.
            Err(_) if errors < 1000 => {
                errors += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = conn.set_nodelay(true);
        tokio::spawn(tokio::task::unconstrained(async move {
            let accepted = ServerBuilder::new()
                .config(Config::default().frame_size(usize::MAX))
                .limits(Limits::unlimited())
                .accept(conn)
                .await;
            let Ok((_request, mut server)) = accepted else {
                return;
            };
            while let Some(Ok(item)) = server.next().await {
                if (item.is_text() || item.is_binary()) && server.send(item).await.is_err() {
                    return;
                }
            }
        }));
    }
}
