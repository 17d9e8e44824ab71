//! The load benchmark (issue 9, "Speed and memory"): echo servers side by
//! side under one load generator, everything on 127.0.0.1.
//!
//! ```text
//! cargo run --profile bench-release -p snowsocket-bench              # full run
//! cargo run -p snowsocket-bench -- --quick                           # smoke run
//! cargo run --profile bench-release -p snowsocket-bench -- --help    # flags
//! ```
//!
//! Every server runs in a process of its own (this binary with `--serve
//! KIND`, see [`servers`]), pinned to a core of its own; the load generator
//! ([`loadgen`]) runs in this process, pinned to another. Figures:
//!
//! - throughput ([`throughput`]): pipelined (64 connections × 16 messages
//!   in flight at 16 B, 1 KiB, 64 KiB) and one message in flight per
//!   connection (100 × 20 B, 10 × 1 KiB, 10 × 16 KiB, 200 × 16 KiB,
//!   500 × 16 KiB); rates, ratios to the event-loop raw TCP echo taken round
//!   by round, the server's CPU per echo and its threads;
//! - idle memory per connection ([`idle`]), `ws://` for every server and
//!   `wss://` for ours;
//! - 10,000 idle connections with a 5 s ping interval ([`heartbeat`]): our
//!   server's CPU and threads;
//! - 50,000 connections held and echoing ([`hold`]).

mod child;
mod client;
mod heartbeat;
mod hold;
mod idle;
mod loadgen;
mod proc;
mod report;
mod servers;
mod throughput;

use core::net::SocketAddr;
use core::time::Duration;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use client::{tls_client_config, unhex};
use servers::{Kind, ServeOptions};
use snowsocket_server::rustls;
use throughput::Shape;

const USAGE: &str = "\
usage: snowsocket-bench [--quick] [--rounds N] [--seconds S] [--warmup S]
         [--servers LIST] [--modes LIST] [--sizes LIST] [--connections N]
         [--in-flight N] [--one-in-flight LIST] [--client-threads N]
         [--idle N] [--idle-settle S] [--heartbeat N] [--heartbeat-seconds S]
         [--ping-interval S] [--hold N] [--hold-seconds S] [--hold-servers LIST]
         [--verify] [--no-pin] [--attach ADDR [--attach-cert HEX]]
       snowsocket-bench --serve KIND [--core N] [--nofile N] [--ping-interval S]
         [--pong-timeout S] [--max-connections N] [--read-buffer BYTES]

  --quick             the test suite's smoke run: every server answers a small
                      pipelined and a one-in-flight run (every byte checked),
                      short idle, heartbeat and hold steps; exits 1 if any
                      server misbehaves
  --rounds N          rounds of the throughput cells, servers taking turns
                      (default 3); ratios are min / median / max over rounds
  --seconds S         timed window per cell (default 1.5)
  --warmup S          warm-up before each window (default 0.3)
  --servers LIST      default ours,core,tokio-ours,tokio-websockets,fastwebsockets,
                      tokio-tungstenite,tungstenite,raw,raw-mio (raw-mio is the
                      reference of the ratios); the idle figure adds ours-tls.
                      wss:// on request: ours-tls,raw-mio-tls (the reference
                      of ours-tls; both also run in --quick)
  --modes LIST        pipelined,one,idle,heartbeat,hold (default all)
  --sizes LIST        pipelined payload sizes (default 16,1024,65536)
  --connections N     pipelined connections (default 64)
  --in-flight N       pipelined messages in flight per connection (default 16)
  --one-in-flight L   connections x size (default 100x20,10x1024,10x16384,
                      200x16384,500x16384)
  --client-threads N  load-generator threads (default 1: it has one core)
  --idle N            connections of the idle-memory figure (default 1000)
  --idle-settle S     idle time before its third figure (default 2)
  --heartbeat N       idle connections under pings, our server (default 10000)
  --heartbeat-seconds S  the CPU window (default 20)
  --ping-interval S   our server's ping interval there (default 5)
  --hold N            connections held and echoing (default 50000)
  --hold-seconds S    the echo window (default 3)
  --hold-servers LIST default ours,raw-mio,tokio-websockets,fastwebsockets,
                      tokio-tungstenite (thread-per-connection servers would
                      need more threads than this machine's pid_max)
  --verify            check every echoed payload byte (on with --quick)
  --no-pin            do not pin server and load generator to cores
  --attach ADDR       load a server already running at ADDR (one kind in
                      --servers, throughput modes only; for scripts/)
  --attach-cert HEX   the certificate a wss:// server at ADDR printed
  --serve KIND        run one server, print its address, serve until standard
                      input ends (the benchmark starts each server this way)";

/// Everything the command line sets.
pub(crate) struct Options {
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    pub(crate) rounds: usize,
    pub(crate) servers: Vec<Kind>,
    modes: Vec<Mode>,
    sizes: Vec<usize>,
    connections: usize,
    in_flight: usize,
    one_in_flight: Vec<(usize, usize)>,
    pub(crate) client_threads: usize,
    pub(crate) idle: usize,
    pub(crate) idle_settle: Duration,
    pub(crate) heartbeat: usize,
    pub(crate) heartbeat_seconds: Duration,
    pub(crate) heartbeat_settle: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Option<Duration>,
    pub(crate) hold: usize,
    pub(crate) hold_seconds: Duration,
    pub(crate) hold_servers: Vec<Kind>,
    pub(crate) hold_per_address: usize,
    /// The count asked for, when the open-files limit forced a smaller
    /// `hold`, and that limit.
    pub(crate) hold_asked: Option<(usize, u64)>,
    pub(crate) verify: bool,
    pin: bool,
    /// The core the servers are pinned to, once chosen.
    server_core: Option<usize>,
    pub(crate) attach: Option<SocketAddr>,
    /// Under TLS, a client configuration trusting the attached server.
    pub(crate) attach_tls: Option<Arc<rustls::ClientConfig>>,
}

/// The parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pipelined,
    OneInFlight,
    Idle,
    Heartbeat,
    Hold,
}

impl Mode {
    const ALL: [Self; 5] = [
        Self::Pipelined,
        Self::OneInFlight,
        Self::Idle,
        Self::Heartbeat,
        Self::Hold,
    ];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pipelined" => Self::Pipelined,
            "one" => Self::OneInFlight,
            "idle" => Self::Idle,
            "heartbeat" => Self::Heartbeat,
            "hold" => Self::Hold,
            _ => return None,
        })
    }
}

impl Options {
    fn defaults() -> Self {
        Self {
            warmup: Duration::from_millis(300),
            measure: Duration::from_millis(1500),
            rounds: 3,
            servers: Kind::ALL.to_vec(),
            modes: Mode::ALL.to_vec(),
            sizes: vec![16, 1024, 64 * 1024],
            connections: 64,
            in_flight: 16,
            one_in_flight: vec![
                (100, 20),
                (10, 1024),
                (10, 16384),
                (200, 16384),
                (500, 16384),
            ],
            client_threads: 1,
            idle: 1000,
            idle_settle: Duration::from_secs(2),
            heartbeat: 10_000,
            heartbeat_seconds: Duration::from_secs(20),
            heartbeat_settle: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
            pong_timeout: None,
            hold: 50_000,
            hold_seconds: Duration::from_secs(3),
            hold_servers: vec![
                Kind::Ours,
                Kind::RawMio,
                Kind::TokioWebsockets,
                Kind::FastWebsockets,
                Kind::TokioTungstenite,
            ],
            hold_per_address: 20_000,
            hold_asked: None,
            verify: false,
            pin: true,
            server_core: None,
            attach: None,
            attach_tls: None,
        }
    }

    /// The smoke run: small, short, every byte checked. Pings every 0.5 s
    /// with a 1 s pong timeout, so a load generator that failed to answer
    /// them would lose its connections within the window.
    fn quick(&mut self) {
        self.warmup = Duration::from_millis(100);
        self.measure = Duration::from_millis(300);
        self.rounds = 1;
        self.sizes = vec![16, 64 * 1024];
        self.connections = 16;
        self.in_flight = 8;
        self.one_in_flight = vec![(10, 1024)];
        self.idle = 50;
        self.idle_settle = Duration::from_millis(200);
        self.heartbeat = 50;
        self.heartbeat_seconds = Duration::from_secs(2);
        self.heartbeat_settle = Duration::ZERO;
        self.ping_interval = Duration::from_millis(500);
        self.pong_timeout = Some(Duration::from_secs(1));
        self.hold = 300;
        self.hold_seconds = Duration::from_millis(300);
        self.hold_per_address = 200;
        self.verify = true;
        // wss:// through the load generator's TLS path too.
        self.servers.extend(Kind::TLS);
    }

    /// `Ok(None)` for `--help`.
    fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut o = Self::defaults();
        // --quick first, so that other flags can override what it sets.
        if args.iter().any(|a| a == "--quick") {
            o.quick();
        }
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .map(String::as_str)
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => {}
                "--rounds" | "--repeat" => o.rounds = count(value()?)?,
                "--seconds" => o.measure = seconds(value()?)?,
                "--warmup" => o.warmup = seconds(value()?)?,
                "--servers" => o.servers = kinds(value()?)?,
                "--modes" => {
                    o.modes = value()?
                        .split(',')
                        .map(|s| Mode::parse(s).ok_or_else(|| format!("unknown mode {s:?}")))
                        .collect::<Result<_, _>>()?;
                }
                "--sizes" => o.sizes = value()?.split(',').map(count).collect::<Result<_, _>>()?,
                "--connections" => o.connections = count(value()?)?,
                "--in-flight" => o.in_flight = count(value()?)?,
                "--one-in-flight" => {
                    o.one_in_flight = value()?
                        .split(',')
                        .map(|pair| {
                            let (c, s) = pair
                                .split_once('x')
                                .ok_or_else(|| format!("{pair:?} is not CONNECTIONSxSIZE"))?;
                            Ok((count(c)?, count(s)?))
                        })
                        .collect::<Result<_, String>>()?;
                }
                "--client-threads" => o.client_threads = count(value()?)?,
                "--idle" => o.idle = count(value()?)?,
                "--idle-settle" => o.idle_settle = seconds(value()?)?,
                "--heartbeat" => o.heartbeat = count(value()?)?,
                "--heartbeat-seconds" => o.heartbeat_seconds = seconds(value()?)?,
                "--ping-interval" => o.ping_interval = seconds(value()?)?,
                "--hold" => o.hold = count(value()?)?,
                "--hold-seconds" => o.hold_seconds = seconds(value()?)?,
                "--hold-servers" => o.hold_servers = kinds(value()?)?,
                "--verify" => o.verify = true,
                "--no-pin" => o.pin = false,
                "--attach" => {
                    let addr = value()?;
                    o.attach = Some(addr.parse().map_err(|_| format!("bad address {addr:?}"))?);
                }
                "--attach-cert" => {
                    let cert = unhex(value()?).ok_or("--attach-cert needs hex")?;
                    o.attach_tls = Some(tls_client_config(cert)?);
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if o.sizes
            .iter()
            .chain(o.one_in_flight.iter().map(|(_, s)| s))
            .any(|&s| s > 16 << 20)
        {
            return Err("sizes must be at most 16 MiB (the default message limit)".into());
        }
        if o.warmup + o.measure + Duration::from_secs(10) > Duration::from_secs(25) {
            // Servers send a heartbeat Ping after 30 s; answered, but keep
            // the throughput cells clear of it.
            return Err("--warmup plus --seconds must be at most 15 s".into());
        }
        if o.attach.is_some() {
            if o.servers.len() != 1 {
                return Err("--attach needs exactly one server in --servers".into());
            }
            o.modes
                .retain(|m| matches!(m, Mode::Pipelined | Mode::OneInFlight));
        }
        Ok(Some(o))
    }

    fn has(&self, mode: Mode) -> bool {
        self.modes.contains(&mode)
    }

    /// How to start a server process: pinned to the server core, with
    /// room for `connections` file descriptors.
    pub(crate) fn serve_options(&self, connections: Option<usize>) -> ServeOptions {
        ServeOptions {
            core: self.server_core,
            nofile: connections.map(|n| n as u64 + 1024),
            ..ServeOptions::default()
        }
    }

    fn shapes(&self) -> (Vec<Shape>, Vec<Shape>) {
        let pipelined = self
            .sizes
            .iter()
            .map(|&size| Shape {
                connections: self.connections,
                in_flight: self.in_flight,
                size,
            })
            .collect();
        let one = self
            .one_in_flight
            .iter()
            .map(|&(connections, size)| Shape {
                connections,
                in_flight: 1,
                size,
            })
            .collect();
        (pipelined, one)
    }
}

fn kinds(list: &str) -> Result<Vec<Kind>, String> {
    list.split(',')
        .map(|s| Kind::parse(s).ok_or_else(|| format!("unknown server {s:?}")))
        .collect()
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds in (0, 600]"))
}

fn count(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|v| (1..=1_000_000).contains(v))
        .ok_or_else(|| format!("{s:?} is not a count in 1..=1000000"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return servers::serve(&args[1..]);
    }
    let mut opts = match Options::parse(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Pinned before any thread starts, so that all of them inherit it.
    let cores = proc::cores();
    let placement = match (opts.pin, cores.as_slice()) {
        (true, [client, server, ..]) => match proc::pin_to(*client) {
            Ok(()) => {
                opts.server_core = Some(*server);
                format!("load generator on core {client}, servers on core {server}")
            }
            Err(e) => format!("not pinned ({e})"),
        },
        (true, _) => "not pinned (fewer than 2 cores available)".into(),
        (false, _) => "not pinned (--no-pin)".into(),
    };
    let mut wanted = 2 * opts.connections.max(opts.idle) + 1024;
    if opts.has(Mode::Heartbeat) {
        wanted = wanted.max(opts.heartbeat + 1024);
    }
    if opts.has(Mode::Hold) {
        wanted = wanted.max(opts.hold + 1024);
    }
    let got = proc::raise_nofile(wanted as u64);
    if got < wanted as u64 {
        eprintln!("bench: warning: open-files limit is {got}, {wanted} wanted");
        // Both processes hold one socket per connection and inherit the
        // same limit: hold what fits, and say so.
        let fits = (got.saturating_sub(1024) / 1000 * 1000) as usize;
        if opts.has(Mode::Hold) && opts.hold > fits && fits > 0 {
            opts.hold_asked = Some((opts.hold, got));
            opts.hold = fits;
        }
    }
    let started = StdInstant::now();
    println!(
        "snowsocket-bench on 127.0.0.1: {} ({placement}); load average {} at the start",
        machine(cores.len()),
        proc::load_average()
    );
    let (pipelined, one) = opts.shapes();
    let mut ok = true;
    if opts.has(Mode::Pipelined) {
        println!("\n### Throughput, pipelined");
        ok &= throughput::run(&pipelined, &opts);
    }
    if opts.has(Mode::OneInFlight) {
        println!("\n### Throughput, one message in flight per connection");
        ok &= throughput::run(&one, &opts);
    }
    if opts.has(Mode::Idle) {
        ok &= idle::run(&opts);
    }
    if opts.has(Mode::Heartbeat) {
        ok &= heartbeat::run(&opts);
    }
    if opts.has(Mode::Hold) {
        ok &= hold::run(&opts);
    }
    println!(
        "\nTook {:.0} s; load average {} at the end.",
        started.elapsed().as_secs_f64(),
        proc::load_average()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("bench: some servers failed (see above)");
        ExitCode::FAILURE
    }
}

/// `cpus` and their model.
fn machine(cpus: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags() {
        let o = parse(&["--quick", "--rounds", "2", "--one-in-flight", "5x20,7x1024"])
            .unwrap()
            .unwrap();
        assert_eq!(o.rounds, 2);
        assert!(o.verify);
        assert_eq!(o.one_in_flight, vec![(5, 20), (7, 1024)]);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--servers", "nope"]).is_err());
        let tls = parse(&["--servers", "ours-tls,raw-mio-tls"])
            .unwrap()
            .unwrap();
        assert_eq!(tls.servers, Kind::TLS);
        assert!(parse(&["--attach", "127.0.0.1:1"]).is_err());
        let attached = parse(&["--attach", "127.0.0.1:1", "--servers", "raw"])
            .unwrap()
            .unwrap();
        assert_eq!(attached.modes, vec![Mode::Pipelined, Mode::OneInFlight]);
    }
}
