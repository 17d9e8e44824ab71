//! A chat server that is one instance of a cluster: rooms from the path
//! (`ws://HOST:PORT/room/NAME`), fanned out to the other instances through
//! Redis. Without `--redis` it is the same chat on this instance alone.
//!
//! ```text
//! cargo run --release -p snowsocket-pubsub --bin chat-cluster -- \
//!     --addr 127.0.0.1:25001 --redis redis://127.0.0.1:6379/ --instance a
//! ```
//!
//! It prints `listening on ws://ADDR/` on stdout once bound, and logs to
//! stderr (`--log LEVEL`, default info). Ctrl-C or SIGTERM closes every
//! connection with 1001 (going away) and exits.

use core::time::Duration;
use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use snowsocket_pubsub::{Chat, Rooms, RoomsConfig};
use snowsocket_server::{Config, Server, ServerConfig};

const USAGE: &str = "\
usage: chat-cluster [--addr HOST:PORT] [--redis URL] [--instance NAME]
                    [--ping-interval SECS] [--pong-timeout SECS]
                    [--event-loops N] [--log LEVEL]

  --addr HOST:PORT      where to listen (default 127.0.0.1:9003; port 0: any)
  --redis URL           Redis to fan out through (redis://HOST:PORT/);
                        without it every room is served here alone
  --instance NAME       this instance's name (default: the process id)
  --ping-interval SECS  heartbeat ping interval (default 30)
  --pong-timeout SECS   how long a pong may take (default 10)
  --event-loops N       event-loop threads (default: one per core)
  --log LEVEL           error, warn, info, debug or trace (default info)
  -h, --help            this text

Clients join room NAME at ws://HOST:PORT/room/NAME.";

struct Args {
    addr: String,
    redis: Option<String>,
    instance: String,
    ping: Duration,
    pong: Duration,
    event_loops: Option<usize>,
    level: log::LevelFilter,
}

fn parse() -> Result<Option<Args>, String> {
    let mut a = Args {
        addr: "127.0.0.1:9003".to_owned(),
        redis: None,
        instance: std::process::id().to_string(),
        ping: Duration::from_secs(30),
        pong: Duration::from_secs(10),
        event_loops: None,
        level: log::LevelFilter::Info,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let secs = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(format!("{flag}: not a positive number of seconds: {v}"))
        };
        match flag.as_str() {
            "--addr" => a.addr = value,
            "--redis" => a.redis = Some(value),
            "--instance" => a.instance = value,
            "--ping-interval" => a.ping = secs(&value)?,
            "--pong-timeout" => a.pong = secs(&value)?,
            "--event-loops" => {
                a.event_loops = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("--event-loops: not a positive number: {value}"))?,
                );
            }
            "--log" => {
                a.level = value
                    .parse()
                    .map_err(|_| format!("--log: no level {value}"))?
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat-cluster: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    log::set_max_level(args.level);
    let _ = log::set_logger(&STDERR);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn core::error::Error>> {
    // Ctrl-C or SIGTERM: every client gets Close 1001, then we exit.
    let (stop_tx, stop) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    let mut rooms = RoomsConfig::new(args.instance);
    rooms.redis_url = args.redis;
    let rooms = Rooms::start(rooms)?;
    let mut config = ServerConfig::default().connection(
        Config::DEFAULT
            .ping_interval(Some(args.ping))
            .pong_timeout(args.pong),
    );
    if let Some(n) = args.event_loops {
        config.event_loops = n;
    }
    let server = Server::bind(args.addr.as_str(), config)?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on ws://{}/", server.local_addr()?)?;
    out.flush()?;
    log::info!("instance {}: serving", rooms.instance());
    let handle = server.spawn(Chat::new(rooms))?;
    let _ = stop.recv();
    log::info!("shutting down");
    handle.shutdown();
    Ok(())
}

/// Log lines on stderr: `SECONDS.MILLIS LEVEL message`.
struct Stderr;
static STDERR: Stderr = Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            eprintln!(
                "{}.{:03} {} {}",
                t.as_secs(),
                t.subsec_millis(),
                record.level(),
                record.args()
            );
        }
    }
    fn flush(&self) {}
}
