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
//! At most `--max-connections` (default 10,000) are served at once: the
//! next is accepted when one ends, the others wait in the kernel's accept
//! queue. A peer that takes none of our bytes for `--write-timeout`
//! seconds (default 10) is given up. When accepting fails (no file
//! descriptors left, say), it waits 100 ms before trying again rather
//! than spinning.
//!
//! Prints one line with the URL it listens on; runs until killed.

use core::time::Duration;
use std::process::ExitCode;
use std::sync::Arc;

use snowsocket_core::deflate::PerMessageDeflate;
use snowsocket_core::Config;
use snowsocket_examples::tokio_ws;
use tokio::sync::Semaphore;

const USAGE: &str = "usage: tokio_echo_server [--addr HOST:PORT] [--max-message-size BYTES] \
                     [--max-connections N] [--write-timeout SECONDS] [--threads N] [--deflate]";

const HELP: &str = "\
tokio_echo_server: snowsocket-core's async driver on tokio, a task per
connection, every message echoed.

  --addr HOST:PORT          where to listen (default 127.0.0.1:9002; port 0
                            picks one); the first line printed is the URL
  --max-message-size BYTES  the longest message and frame (default 16 MiB)
  --max-connections N       served at once (default 10000); the next waits
                            in the kernel's accept queue
  --write-timeout SECONDS   how long a peer may take none of our bytes
                            (default 10)
  --threads N               tokio worker threads (default: one per core)
  --deflate                 agree to permessage-deflate when offered
  --help                    this text";

fn main() -> ExitCode {
    let mut addr = String::from("127.0.0.1:9002");
    let mut config = Config::default();
    let mut threads = None;
    let mut deflate = None;
    let mut max_connections = 10_000;
    let mut write_timeout = tokio_ws::WRITE_TIMEOUT;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--deflate" => {
                deflate = Some(PerMessageDeflate::default());
                continue;
            }
            "--help" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            _ => {}
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
            ("--max-connections", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => {
                    max_connections = n;
                    Ok(())
                }
                _ => Err(format!("--max-connections: not a positive number: {v}")),
            },
            ("--write-timeout", Some(v)) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => {
                    write_timeout = Duration::from_secs_f64(s);
                    Ok(())
                }
                _ => Err(format!(
                    "--write-timeout: not a positive number of seconds: {v}"
                )),
            },
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
        let slots = Arc::new(Semaphore::new(max_connections));
        let mut seed = 0u64;
        loop {
            // A free slot first: at the limit, new peers wait in the
            // kernel's accept queue, not in our memory.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return ExitCode::FAILURE;
            };
            let stream = tokio_ws::accept(&listener, "tokio_echo_server").await;
            seed += 1;
            tokio::spawn(async move {
                let _ = tokio_ws::echo_with(stream, config, deflate, write_timeout, seed).await;
                drop(slot);
            });
        }
    })
}
