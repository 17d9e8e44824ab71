//! tokio-tungstenite shaped like its own `echo-server` example: the
//! multi-thread tokio runtime `#[tokio::main]` builds (one worker per
//! core this process may use: one when pinned), a task per connection,
//! `accept_async`, then the read half forwarded into the write half with
//! everything but text and binary filtered out. The only change from the
//! example is Nagle turned off, as in every server here.

use std::io;

use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::TcpStream;

use super::{listen, tokio_rt, Running};

pub(super) fn start() -> Result<Running, String> {
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    // The accept loop runs on a worker: the main thread only waits for
    // the end of standard input, as in every serving process.
    rt.spawn(async move {
        if let Err(e) = run(listener).await {
            eprintln!("tokio-tungstenite: {e}");
        }
    });
    Ok(Running {
        addr,
        cert: None,
        stop: Some(Box::new(move || rt.shutdown_background())),
    })
}

async fn run(listener: std::net::TcpListener) -> io::Result<()> {
    tokio_rt::accept_each(listener, |stream| {
        tokio::spawn(accept_connection(stream));
    })
    .await
}

async fn accept_connection(stream: TcpStream) {
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws_stream.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
