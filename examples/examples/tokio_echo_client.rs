//! The async driver's client on tokio: connects to a `ws://` URL, sends
//! every message it receives back (without a copy), and exits 0 once the
//! server closes the connection cleanly (the Autobahn client role runs it).
//!
//! ```text
//! cargo run --release --example tokio_echo_client -- [--deflate] ws://127.0.0.1:9002/
//! ```
//!
//! `--deflate` offers permessage-deflate (RFC 7692) as the command-line
//! client does: `client_no_context_takeover` and `client_max_window_bits`.

use std::process::ExitCode;

use embedded_io_adapters::tokio_1::FromTokio;
use rand_core::OsRng;
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::deflate::PerMessageDeflate;
use snowsocket_core::handshake::ClientRequest;
use snowsocket_core::{echo, Parts};

const USAGE: &str = "usage: tokio_echo_client [--deflate] ws://HOST:PORT/PATH";

/// `ws://host:port/path?query` as (host:port, /path?query).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("ws://")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    (!authority.is_empty()).then_some((authority, path))
}

async fn run(authority: &str, path: &str, deflate: bool) -> Result<u64, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    let parts = Parts::new(&mut read, &mut write, Vec::new(), OsRng, TokioClock::new());
    let request = ClientRequest::new(authority, path);
    let io = FromTokio::new(stream);
    let connected = if deflate {
        // As the command-line client offers it, what any server can
        // accept: we reset our compressor after every message
        // (client_no_context_takeover), and the server may limit our
        // window (client_max_window_bits offered).
        let offer = PerMessageDeflate::default()
            .client_no_context_takeover(true)
            .client_max_window_bits(Some(15));
        WebSocket::connect_deflate(io, parts, &request, &offer).await
    } else {
        WebSocket::connect(io, parts, &request).await
    };
    let (mut ws, _) = connected.map_err(|e| format!("handshake: {e}"))?;
    let mut echoed = 0;
    while ws.respond(echo).await.map_err(|e| e.to_string())? {
        echoed += 1;
    }
    Ok(echoed)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "--deflate");
    let deflate = args.len() < before;
    let (Some((authority, path)), 1) = (args.first().and_then(|url| split_url(url)), args.len())
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio_echo_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(authority, path, deflate)) {
        Ok(n) => {
            println!("echoed {n} messages; closed cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokio_echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}
