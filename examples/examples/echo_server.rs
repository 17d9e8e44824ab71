//! An echo server: every text or binary message is sent back.
//!
//! ```text
//! cargo run --release --example echo_server
//! cargo run --release --example echo_server -- --addr 0.0.0.0:9001 \
//!     --tls-cert cert.pem --tls-key key.pem --ping-interval 30 --pong-timeout 10 \
//!     --max-message-size 16777216 --deflate
//! ```
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) when a client offers it.
//!
//! Prints one line with the URL it listens on. SIGINT (Ctrl-C), SIGTERM
//! (systemd, Docker, Kubernetes) and SIGHUP shut down gracefully (Close 1001
//! to every client, then every thread is joined). Logs go to stderr
//! (`RUST_LOG`, default `info`). `--help` lists the flags.

use core::time::Duration;
use std::process::ExitCode;
use std::sync::mpsc;

use snowsocket_examples::cli;
use snowsocket_server::{
    Accept, Config, ConnectionHandle, Handler, Message, MessageKind, PerMessageDeflate, Server,
    ServerConfig, UpgradeRequest,
};

/// `--help`: one line per flag.
const HELP: &str = "\
echo_server: a WebSocket echo server (every text or binary message is sent back)

usage: echo_server [OPTIONS]

options:
  --addr HOST:PORT          where to listen (default 127.0.0.1:9001; port 0: any)
  --tls-cert PEM            serve wss:// with this certificate chain (leaf first)...
  --tls-key PEM             ...and this private key (PKCS#8, PKCS#1 or SEC1)
  --ping-interval SECS      heartbeat ping interval (default 30; 0 turns it off)
  --pong-timeout SECS       how long a pong may take before the client is
                            dropped with 1001 (default 10; more than 0)
  --max-message-size BYTES  the largest message (and frame) accepted; larger
                            ones are refused with 1009 (default 16777216)
  --output-budget BYTES     the unsent echoes all clients together may hold
                            (default: a quarter of physical memory); past
                            it, a client with echoes waiting is not read
                            until they are written
  --deflate                 accept permessage-deflate (RFC 7692) when offered
  -h, --help                print this help and exit

SIGINT (Ctrl-C), SIGTERM and SIGHUP close every connection with 1001, wait
for the answers (at most 5 s) and exit 0.";

struct Options {
    addr: String,
    cert: Option<String>,
    key: Option<String>,
    config: Config,
    output_budget: Option<usize>,
    deflate: bool,
}

/// The options; `None` for `--help`.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: "127.0.0.1:9001".into(),
        cert: None,
        key: None,
        config: Config::DEFAULT,
        output_budget: None,
        deflate: false,
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("{flag}: not a number of seconds: {v}"))
        };
        match flag.as_str() {
            "--addr" => options.addr = value()?,
            "--tls-cert" => options.cert = Some(value()?),
            "--tls-key" => options.key = Some(value()?),
            "--ping-interval" => {
                let d = secs(value()?)?;
                options.config = options.config.ping_interval((!d.is_zero()).then_some(d));
            }
            "--pong-timeout" => options.config = options.config.pong_timeout(secs(value()?)?),
            "--max-message-size" => {
                let v = value()?;
                let bytes = v.parse().map_err(|_| format!("{flag}: not a size: {v}"))?;
                options.config = options.config.max_message_size(bytes).max_frame_size(bytes);
            }
            "--output-budget" => {
                let v = value()?;
                let bytes = v.parse().map_err(|_| format!("{flag}: not a size: {v}"))?;
                options.output_budget = Some(bytes);
            }
            "--deflate" => options.deflate = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.cert.is_some() != options.key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{HELP}\n\n{}", cli::LOGGING_HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("echo_server: {e} (--help lists the flags)");
            return ExitCode::from(2);
        }
    };
    cli::init_logging();
    let mut config = ServerConfig::default().connection(options.config);
    if let Some(bytes) = options.output_budget {
        config = config.output_budget(bytes);
    }
    if options.deflate {
        config = config.permessage_deflate(PerMessageDeflate::default());
    }
    if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
        match snowsocket_server::tls::server_config_from_pem(cert, key) {
            Ok(tls) => config = config.tls(tls),
            Err(e) => {
                eprintln!("echo_server: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // A zero timeout or limit, named (Server::bind checks it too).
    if let Err(e) = config.validate() {
        eprintln!("echo_server: {e} (--help lists the flags)");
        return ExitCode::from(2);
    }
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let server = match Server::bind(options.addr.as_str(), config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo_server: cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    let handle = server.spawn(Echo);
    let handle = match handle {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SIGINT, SIGTERM and SIGHUP (ctrlc's `termination` feature), caught
    // before the URL is printed: a signal sent as soon as the URL is known
    // must not find the default action (the process killed, no Close sent).
    let (stop_tx, stop_rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        eprintln!("echo_server: cannot catch SIGINT/SIGTERM: {e}");
    }
    println!("listening on {scheme}://{}/", handle.local_addr());
    let _ = stop_rx.recv();
    eprintln!("shutting down ({} connections)", handle.connections());
    handle.shutdown();
    ExitCode::SUCCESS
}

/// Sends every message back. A client that sends faster than it reads its
/// echoes is slowed down, and loses none: when an echo does not fit the
/// connection's output (`SendError::Full`, past
/// `ServerConfig::max_buffered_bytes`; or `SendError::OverBudget`, all
/// connections' output past `ServerConfig::output_budget`), reading pauses
/// (TCP tells the client to wait) and that echo waits until the output has
/// been written (`on_drain`).
struct Echo;

/// The echo that did not fit, while reading is paused.
#[derive(Default)]
struct Waiting(std::sync::Mutex<Option<(MessageKind, Vec<u8>)>>);

impl Handler for Echo {
    fn on_accept(&self, _request: &UpgradeRequest<'_, '_>) -> Accept {
        Accept::upgrade().with_context(Waiting::default())
    }

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let (kind, payload) = match message {
            Message::Text(text) => (MessageKind::Text, text.as_bytes()),
            Message::Binary(data) => (MessageKind::Binary, data),
        };
        let sent = conn.send(kind, payload);
        if let (Some(waiting), true) = (
            conn.context::<Waiting>(),
            sent.is_err_and(|e| e.waits_for_drain()),
        ) {
            // No callback runs until `resume_reading`: one echo waits.
            conn.pause_reading();
            *waiting.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, payload.to_vec()));
        }
    }

    fn on_drain(&self, conn: &ConnectionHandle) {
        let Some(waiting) = conn.context::<Waiting>() else {
            return;
        };
        let echo = waiting.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((kind, payload)) = echo {
            // The output is empty now: anything fits.
            let _ = conn.send(kind, &payload);
            conn.resume_reading();
        }
    }
}
