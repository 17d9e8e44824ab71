//! fastwebsockets shaped like its own `echo_server` example: hyper's HTTP/1
//! server performs the upgrade (`fastwebsockets::upgrade`), then a task per
//! connection (unconstrained) reads frames through a `FragmentCollector`
//! and writes every text or binary frame back; a current-thread tokio
//! runtime on a thread of its own. The only change from the example is
//! Nagle turned off, as in every server here.

use std::io;
use std::thread;

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

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
                eprintln!("fastwebsockets: {e}");
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
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: bounded retries.
            Err(_) if errors < 1000 => {
                errors += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = http1::Builder::new()
                .serve_connection(io, service_fn(server_upgrade))
                .with_upgrades()
                .await;
        });
    }
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
