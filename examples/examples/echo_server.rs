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
//! Prints one line with the URL it listens on. Ctrl-C shuts down gracefully
//! (Close 1001 to every client, then every thread is joined).

use core::time::Duration;
use std::process::ExitCode;
use std::sync::mpsc;

use snowsocket_server::{on_message, Config, Message, PerMessageDeflate, Server, ServerConfig};

const USAGE: &str = "usage: echo_server [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM]
                   [--ping-interval SECS (0: off)] [--pong-timeout SECS]
                   [--max-message-size BYTES] [--deflate]";

struct Options {
    addr: String,
    cert: Option<String>,
    key: Option<String>,
    config: Config,
    deflate: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:9001".into(),
        cert: None,
        key: None,
        config: Config::DEFAULT,
        deflate: false,
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
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
            "--deflate" => options.deflate = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.cert.is_some() != options.key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("echo_server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = ServerConfig::default().connection(options.config);
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
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let server = match Server::bind(options.addr.as_str(), config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo_server: cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    let handle = server.spawn(on_message(|conn, message| {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }));
    let handle = match handle {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {scheme}://{}/", handle.local_addr());
    let (stop_tx, stop_rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        eprintln!("echo_server: cannot catch Ctrl-C: {e}");
    }
    let _ = stop_rx.recv();
    eprintln!("shutting down ({} connections)", handle.connections());
    handle.shutdown();
    ExitCode::SUCCESS
}
