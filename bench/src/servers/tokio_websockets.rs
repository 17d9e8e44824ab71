//! tokio-websockets shaped like its own `echo_server` example: a
//! current-thread tokio runtime, one task per connection (unconstrained),
//! frame size and limits lifted, every text or binary message sent back
//! with `SinkExt::send`. The runtime runs on a thread of its own; the only
//! change from the example is Nagle turned off, as in every server here.

use std::io;

use futures_util::{SinkExt, StreamExt};
use tokio_websockets::{Config, Limits, ServerBuilder};

use super::{tokio_rt, Running};

pub(super) fn start() -> Result<Running, String> {
    tokio_rt::current_thread("tokio-websockets", run)
}

async fn run(listener: std::net::TcpListener) -> io::Result<()> {
    tokio_rt::accept_each(listener, |conn| {
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
    })
    .await
}
