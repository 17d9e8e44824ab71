//! An echo server on tokio with the async driver: a task per connection,
//! every message sent back without a copy.
//!
//! ```text
//! cargo run --release --example tokio_echo_server -- --addr 127.0.0.1:9002 \
//!     --max-message-size 16777216 --threads 2 --deflate
//! ```
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) when a client offers
//! it (snowsocket-core's default `PerMessageDeflate`).
//!
//! Prints one line with the URL it listens on; runs until killed.

use std::process::ExitCode;

use snowsocket_core::deflate::PerMessageDeflate;
use snowsocket_core::Config;

const USAGE: &str = "usage: tokio_echo_server [--addr HOST:PORT] [--max-message-size BYTES] \
                     [--threads N] [--deflate]";

fn main() -> ExitCode {
    let mut addr = String::from("127.0.0.1:9002");
    let mut config = Config::default();
    let mut threads = None;
    let mut deflate = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--deflate" {
            deflate = Some(PerMessageDeflate::default());
            continue;
        }
        let value = args.next();
        let parsed = match (flag.as_str(), value) {
            ("--addr", Some(v)) => {
                addr = v;
                Ok(())
            }
            ("--max-message-size", Some(v)) => v
                .parse()
                .map(|n| config = config.max_message_size(n).max_frame_size(n))
                .map_err(|_| format!("not a size: {v}")),
            ("--threads", Some(v)) => v
                .parse()
                .map(|n: usize| threads = Some(n.max(1)))
                .map_err(|_| format!("not a number: {v}")),
            (other, _) => Err(format!("unknown or incomplete argument {other}")),
        };
        if let Err(e) = parsed {
            eprintln!("tokio_echo_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio_echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("tokio_echo_server: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(local) => println!("listening on ws://{local}/"),
            Err(e) => eprintln!("tokio_echo_server: {e}"),
        }
        let mut seed = 0u64;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("tokio_echo_server: accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            seed += 1;
            tokio::spawn(snowsocket_examples::tokio_ws::echo_with(
                stream, config, deflate, seed,
            ));
        }
    })
}
