//! One port for plain HTTP and WebSocket: hyper serves `/health` and a
//! small page, and upgrades `/ws` through `hyper::upgrade`; the upgraded
//! stream then runs snowsocket's async driver (an echo). See
//! `src/hyper_ws.rs`.
//!
//! ```text
//! cargo run --release --example hyper_upgrade -- --addr 127.0.0.1:9003
//! curl http://127.0.0.1:9003/health
//! ```

use std::process::ExitCode;

const HELP: &str = "\
hyper_upgrade: one port for plain HTTP (/health, a small page) and
WebSocket (/ws, upgraded through hyper, then snowsocket-core's async
driver echoes every message).

  --addr HOST:PORT  where to listen (default 127.0.0.1:9003; port 0 picks
                    one); the first line printed is the URL
  --help            this text";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => String::from("127.0.0.1:9003"),
        (Some("--addr"), Some(addr), None) => addr,
        (Some("--help" | "-h"), None, None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("usage: hyper_upgrade [--addr HOST:PORT]");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hyper_upgrade: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("hyper_upgrade: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(local) => println!("listening on http://{local}/ (WebSocket: ws://{local}/ws)"),
            Err(e) => eprintln!("hyper_upgrade: {e}"),
        }
        snowsocket_examples::hyper_ws::serve(listener).await;
        ExitCode::FAILURE
    })
}
