//! fastwebsockets shaped like its own `echo_server` example: hyper's HTTP/1
//! server performs the upgrade (`fastwebsockets::upgrade`), then a task per
//! connection (unconstrained) reads frames through a `FragmentCollector`
//! and writes every text or binary frame back; a current-thread tokio
//! runtime on a thread of its own. The only change from the example is
//! Nagle turned off, as in every server here.

use std::io;

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use super::{tokio_rt, Running};

pub(super) fn start() -> Result<Running, String> {
    tokio_rt::current_thread("fastwebsockets", run)
}

async fn run(listener: std::net::TcpListener) -> io::Result<()> {
    tokio_rt::accept_each(listener, |stream| {
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = http1::Builder::new()
                .serve_connection(io, service_fn(server_upgrade))
                .with_upgrades()
                .await;
        });
    })
    .await
}

async fn server_upgrade(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(echo(fut)).await;
    });
    Ok(response)
}

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
