//! One port for plain HTTP and WebSocket with hyper (what
//! `examples/hyper_upgrade.rs` runs, and the tests use): `/health`, a small
//! page, and `/ws` upgraded through `hyper::upgrade`, then snowsocket's
//! async driver on the upgraded stream (an echo).
//!
//! The upgrade request is checked by snowsocket's own parser (the same
//! checks and HTTP statuses as its servers: 400, 426, …), rebuilt from
//! what hyper parsed. A permessage-deflate offer is answered as
//! snowsocket's servers answer it (`deflate::negotiate` with the default
//! options) and the connection then compresses.

use core::convert::Infallible;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use snowsocket_core::deflate::{self, PerMessageDeflate};
use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_core::Config;

use crate::tokio_ws;

/// How long a request's head may take to arrive: a peer that trickles
/// it, or opens a connection and sends nothing, does not hold a task for
/// ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 on `listener`: a task per connection, upgrades
/// included (accepting rests a moment when it fails, see
/// [`tokio_ws::accept`]); a request's head must arrive within
/// [`HEADER_READ_TIMEOUT`].
pub async fn serve(listener: tokio::net::TcpListener) {
    serve_with(listener, HEADER_READ_TIMEOUT).await;
}

/// [`serve`], a request's head given `header_read_timeout` to arrive.
pub async fn serve_with(listener: tokio::net::TcpListener, header_read_timeout: Duration) {
    loop {
        let stream = tokio_ws::accept(&listener, "hyper_upgrade").await;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(route);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                eprintln!("hyper_upgrade: {e}");
            }
        });
    }
}

const PAGE: &str = "<!doctype html><title>snowsocket</title>
<p>Echo: <input id=m value=hello> <button onclick=ws.send(m.value)>send</button></p><pre id=log></pre>
<script>const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = e => log.textContent += e.data + '\\n';</script>\n";

static SEED: AtomicU64 = AtomicU64::new(0);

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// The request head as bytes, for snowsocket's handshake parser.
fn head(req: &Request<Incoming>) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method()).into_bytes();
    for (name, value) in req.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `/ws`: checks the upgrade request, answers 101 and runs the echo on the
/// upgraded stream once hyper hands it over.
fn upgrade(mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let bytes = head(&req);
    let mut headers = [handshake::EMPTY_HEADER; 64];
    let options = PerMessageDeflate::DEFAULT;
    let parsed = handshake::parse_request(&bytes, &mut headers, &HandshakeLimits::DEFAULT);
    let (accept, agreed) = match parsed {
        Ok(Parsed::Complete { value, .. }) => (
            value.accept_key(),
            deflate::negotiate(value.headers(), &options.params),
        ),
        Ok(Parsed::Incomplete) => return text(StatusCode::BAD_REQUEST, "incomplete request\n"),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return text(status, "not a valid WebSocket upgrade\n");
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let seed = SEED.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let deflate = agreed.map(|params| (params, options));
                let echo = tokio_ws::echo_upgraded(io, Config::default(), deflate, seed);
                if let Err(e) = echo.await {
                    eprintln!("hyper_upgrade: connection {seed}: {e}");
                }
            }
            Err(e) => eprintln!("hyper_upgrade: upgrade failed: {e}"),
        }
    });
    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_bytes(&accept) {
        headers.insert("sec-websocket-accept", accept);
    }
    if let Some(params) = &agreed {
        if let Ok(answer) = HeaderValue::from_bytes(params.answer().as_bytes()) {
            headers.insert("sec-websocket-extensions", answer);
        }
    }
    response
}

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/health" => text(StatusCode::OK, "ok\n"),
        "/" => text(StatusCode::OK, PAGE),
        "/ws" => upgrade(req),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}
