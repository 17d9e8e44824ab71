//! permessage-deflate figures over sockets (issue 11): the `echo_server`
//! example (built by the caller, `--deflate` or not) pinned to core 0 with
//! `taskset`, this load generator pinned to core 1, everything on
//! 127.0.0.1. scripts/deflate-figures.sh builds both and runs this.
//!
//! ```text
//! deflate_sockets --echo-server target/bench-release/examples/echo_server [--rounds 3]
//!   [--seconds 2] [--warmup 0.5] [--connections 64] [--sizes 256,4096,65536] [--idle 256]
//! ```
//!
//! - **Echo rate and wire bytes**: `--connections` connections, a thread
//!   each, every one echoing JSON-like text (deterministic, distinct
//!   messages) one message in flight, through the core's client
//!   `Connection` (compressing at level 3 with context takeover when
//!   deflate is on, the server's default); messages/s over a timed window
//!   after a warm-up, and the bytes read from and written to the sockets
//!   per message (frame headers and payloads, counted at the socket),
//!   plain and deflate alternating round by round: min / median / max.
//! - **Idle memory**: `--idle` connections to a fresh server, each after one
//!   4 KiB compressed message each way, then idle; the server's resident
//!   memory added per connection (VmRSS), with context takeover and with
//!   `server_no_context_takeover; client_no_context_takeover`, beside a
//!   plain server's.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Instant as StdInstant;

#[path = "../deflate_common.rs"]
mod deflate_common;
use deflate_common::{json, Rng};
use snowsocket_core::deflate::DeflateConfig;
use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_core::{Config, Connection, Event, Instant, MessageKind, Role};

/// The compression level of the load generator: the server's default.
const LEVEL: u8 = 3;
/// The RFC 6455 §1.3 key (every connection may use it).
const KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";
/// A read or write that takes this long fails the run.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

const USAGE: &str = "\
usage: deflate_sockets --echo-server PATH [--rounds N] [--seconds S] [--warmup S]
         [--connections N] [--sizes LIST] [--idle N]";

struct Options {
    echo_server: String,
    rounds: usize,
    seconds: f64,
    warmup: f64,
    connections: usize,
    sizes: Vec<usize>,
    idle: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        echo_server: String::new(),
        rounds: 3,
        seconds: 2.0,
        warmup: 0.5,
        connections: 64,
        sizes: vec![256, 4096, 65536],
        idle: 256,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let bad = || format!("{flag}: bad value {value}");
        match flag.as_str() {
            "--echo-server" => o.echo_server = value.clone(),
            "--rounds" => o.rounds = value.parse().map_err(|_| bad())?,
            "--seconds" => o.seconds = value.parse().map_err(|_| bad())?,
            "--warmup" => o.warmup = value.parse().map_err(|_| bad())?,
            "--connections" => o.connections = value.parse().map_err(|_| bad())?,
            "--idle" => o.idle = value.parse().map_err(|_| bad())?,
            "--sizes" => {
                o.sizes = value
                    .split(',')
                    .map(|s| s.parse().map_err(|_| format!("--sizes: bad value {s}")))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if o.echo_server.is_empty() || o.rounds == 0 || o.connections == 0 {
        return Err(USAGE.into());
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// The echo_server example, pinned to core 0, stopped on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(path: &str, deflate: bool) -> Result<Self, String> {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0", path, "--addr", "127.0.0.1:0"]);
        if deflate {
            cmd.arg("--deflate");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {path}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading {path}'s address: {e}"))?;
        // "listening on ws://127.0.0.1:PORT/"
        let addr = line
            .trim()
            .strip_prefix("listening on ws://")
            .and_then(|a| a.strip_suffix('/'))
            .and_then(|a| a.parse().ok())
            .ok_or(format!("{path} said {line:?}"))?;
        Ok(Self { child, addr })
    }

    fn status(&self, field: &str) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or(format!("no {field} in /proc/PID/status"))
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|e| e.to_string())?;
        let rest = stat.rfind(')').map(|at| &stat[at + 1..]).ok_or("stat")?;
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        Ok(ticks as f64 / 100.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// One client connection: the core's Connection over a counted TcpStream
// ---------------------------------------------------------------------------

struct Client {
    stream: TcpStream,
    conn: Connection<Vec<u8>, Rng>,
    deflate: bool,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Bytes written to and read from the socket after the handshake.
    written: u64,
    read: u64,
}

impl Client {
    /// Connects; `offer` is the permessage-deflate offer (none: plain).
    fn connect(addr: SocketAddr, offer: Option<&DeflateConfig>, seed: u64) -> Result<Self, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            core::str::from_utf8(KEY).unwrap_or_default()
        );
        if let Some(offer) = offer {
            let value = offer.offer();
            request.push_str(&format!(
                "Sec-WebSocket-Extensions: {}\r\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (params, consumed) = loop {
            let n = stream
                .read(&mut chunk)
                .map_err(|e| format!("handshake: {e}"))?;
            if n == 0 {
                return Err("EOF before the handshake's answer".into());
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [handshake::EMPTY_HEADER; 32];
            match handshake::parse_response_with_deflate(
                &buf,
                &mut headers,
                KEY,
                &[],
                offer,
                &HandshakeLimits::default(),
            )
            .map_err(|e| format!("handshake: {e:?}"))?
            {
                Parsed::Incomplete => continue,
                Parsed::Complete {
                    value: (_, params),
                    consumed,
                } => break (params, consumed),
            }
        };
        buf.drain(..consumed);
        let config = Config::DEFAULT.ping_interval(None);
        let mut conn = Connection::new(
            Role::Client,
            config,
            Vec::new(),
            Rng(seed | 1),
            Instant::ZERO,
        );
        let deflate = match (&params, offer) {
            (Some(p), Some(_)) => {
                conn.enable_deflate(p, LEVEL);
                true
            }
            (None, Some(_)) => return Err("the server declined permessage-deflate".into()),
            _ => false,
        };
        Ok(Self {
            read: buf.len() as u64,
            stream,
            conn,
            deflate,
            buf,
            out: Vec::new(),
            written: 0,
        })
    }

    /// Sends `text` and reads its echo back (checked byte for byte).
    fn echo(&mut self, text: &str) -> Result<(), String> {
        self.out.clear();
        if self.deflate {
            self.conn
                .send_compressed(MessageKind::Text, text.as_bytes(), &mut self.out)
        } else {
            self.out.resize(self.conn.frame_len(text.len()), 0);
            self.conn
                .send(MessageKind::Text, text.as_bytes(), &mut self.out)
        }
        .map_err(|e| format!("send: {e}"))?;
        self.stream
            .write_all(&self.out)
            .map_err(|e| format!("write: {e}"))?;
        self.written += self.out.len() as u64;
        let mut chunk = vec![0u8; 64 << 10];
        let mut start = 0;
        loop {
            let (consumed, got) = match self.conn.handle_read(&mut self.buf[start..], Instant::ZERO)
            {
                Ok((c, Some(Event::Text(t)))) => (c, Some(t == text)),
                Ok((c, Some(Event::Close(_)))) => {
                    return Err(format!("closed by the server ({c})"))
                }
                Ok((c, _)) => (c, None),
                Err(e) => return Err(format!("read: {e}")),
            };
            start += consumed;
            match got {
                Some(true) => {
                    self.buf.drain(..start);
                    return Ok(());
                }
                Some(false) => return Err("the echo differs".into()),
                None if consumed > 0 => continue,
                None => {}
            }
            self.buf.drain(..start);
            start = 0;
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("EOF from the server".into());
            }
            self.read += n as u64;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

/// One timed window: messages/s, bytes written and read per message, the
/// server's CPU µs per message, its threads.
struct Round {
    rate: f64,
    up: f64,
    down: f64,
    cpu_us: f64,
    server_threads: u64,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    written: AtomicU64,
    read: AtomicU64,
}

fn round(o: &Options, deflate: bool, size: usize) -> Result<Round, String> {
    let server = Server::start(&o.echo_server, deflate)?;
    let offer = deflate.then_some(DeflateConfig::DEFAULT);
    // Distinct messages, 256 KiB of them at least, shared by every thread.
    let count = ((256 << 10) / size).max(64);
    let messages: Arc<Vec<String>> = Arc::new((0..count).map(|i| json(size, i * 1000)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let mut threads = Vec::new();
    for i in 0..o.connections {
        let mut client = Client::connect(server.addr, offer.as_ref(), i as u64 + 1)?;
        let (messages, stop, counters) = (messages.clone(), stop.clone(), counters.clone());
        threads.push(thread::spawn(move || -> Result<(), String> {
            let mut n = i * 7;
            while !stop.load(Ordering::Relaxed) {
                let (w, r) = (client.written, client.read);
                client.echo(&messages[n % messages.len()])?;
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters
                    .written
                    .fetch_add(client.written - w, Ordering::Relaxed);
                counters.read.fetch_add(client.read - r, Ordering::Relaxed);
                n += 1;
            }
            Ok(())
        }));
    }
    let snapshot = |c: &Counters| {
        (
            c.messages.load(Ordering::Relaxed),
            c.written.load(Ordering::Relaxed),
            c.read.load(Ordering::Relaxed),
        )
    };
    thread::sleep(Duration::from_secs_f64(o.warmup));
    let (m0, w0, r0) = snapshot(&counters);
    let cpu0 = server.cpu_seconds()?;
    let start = StdInstant::now();
    thread::sleep(Duration::from_secs_f64(o.seconds));
    let (m1, w1, r1) = snapshot(&counters);
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = server.cpu_seconds()?;
    let server_threads = server.status("Threads")?;
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "a load thread panicked")??;
    }
    let n = (m1 - m0).max(1) as f64;
    Ok(Round {
        rate: n / elapsed,
        up: (w1 - w0) as f64 / n,
        down: (r1 - r0) as f64 / n,
        cpu_us: (cpu1 - cpu0) * 1e6 / n,
        server_threads,
    })
}

/// min / median / max.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn throughput(o: &Options) -> Result<(), String> {
    println!(
        "| size | mode | messages/s min / median / max | bytes written per message (client→server) | bytes read per message (server→client) | server CPU µs per message (median) | server threads | load generator threads |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for &size in &o.sizes {
        let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..o.rounds {
            for (i, deflate) in [false, true].into_iter().enumerate() {
                rounds[i].push(round(o, deflate, size)?);
            }
        }
        for (i, mode) in ["plain", "deflate"].into_iter().enumerate() {
            let r = &rounds[i];
            let (lo, mid, hi) = spread(r.iter().map(|r| r.rate).collect());
            let (_, cpu, _) = spread(r.iter().map(|r| r.cpu_us).collect());
            let (_, up, _) = spread(r.iter().map(|r| r.up).collect());
            let (_, down, _) = spread(r.iter().map(|r| r.down).collect());
            println!(
                "| {size} B | {mode} | {lo:.0} / {mid:.0} / {hi:.0} | {up:.0} | {down:.0} | {cpu:.1} | {} | {} |",
                r[0].server_threads,
                o.connections + 1
            );
        }
    }
    Ok(())
}

/// The server's memory per idle connection, in KiB.
fn idle_memory(o: &Options, offer: Option<DeflateConfig>) -> Result<(f64, u64), String> {
    let server = Server::start(&o.echo_server, offer.is_some())?;
    // One connection first, so that the server's threads and buffers that
    // do not grow with connections are counted out.
    let mut first = Client::connect(server.addr, offer.as_ref(), 1)?;
    first.echo(&json(4096, 0))?;
    let before = server.status("VmRSS")?;
    let mut held = Vec::with_capacity(o.idle);
    for i in 0..o.idle {
        let mut c = Client::connect(server.addr, offer.as_ref(), i as u64 + 2)?;
        // A compressed 4 KiB message each way (plain without deflate).
        c.echo(&json(4096, i * 100))?;
        held.push(c);
    }
    // Idle: every echo has been read back, the server has nothing to do.
    thread::sleep(Duration::from_millis(500));
    let after = server.status("VmRSS")?;
    drop(held);
    Ok((
        after.saturating_sub(before) as f64 / o.idle as f64,
        after.saturating_sub(before),
    ))
}

fn memory(o: &Options) -> Result<(), String> {
    println!(
        "\n| {} idle connections, each after one 4 KiB message each way | server RSS added | per connection |",
        o.idle
    );
    println!("|---|---:|---:|");
    let nct = DeflateConfig::DEFAULT
        .server_no_context_takeover(true)
        .client_no_context_takeover(true);
    for (name, offer) in [
        ("plain (no deflate)", None),
        ("deflate, context takeover", Some(DeflateConfig::DEFAULT)),
        ("deflate, no context takeover (both)", Some(nct)),
    ] {
        let (per, total) = idle_memory(o, offer)?;
        println!("| {name} | {total} KiB | {per:.1} KiB |");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let run = || -> Result<(), String> {
        let o = parse()?;
        if !core_affinity::set_for_current(core_affinity::CoreId { id: 1 }) {
            return Err("cannot pin the load generator to core 1".into());
        }
        println!(
            "load average before: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        throughput(&o)?;
        memory(&o)?;
        println!(
            "\nload average after: {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deflate_sockets: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
