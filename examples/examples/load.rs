//! The load benchmark (issue 3, "Speed and memory"): echo servers side by
//! side, in one run, on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p snowsocket-examples --example load            # full run
//! cargo run --release -p snowsocket-examples --example load -- --quick # smoke run
//! cargo run --release -p snowsocket-examples --example load -- --help  # flags
//! ```
//!
//! Servers, each started in this process on `127.0.0.1:0`:
//!
//! - `ours`: `snowsocket-server`, an echo handler.
//! - `core`: `snowsocket-core` driven by hand, one thread per connection,
//!   every reply of one read written with one `write` (what the core alone
//!   can do with the simplest shell; it tells the shell's cost apart).
//! - `tungstenite`: tungstenite 0.28, one thread per connection, `read` then
//!   `send` (which flushes), as its documentation shows.
//! - `raw`: a plain TCP echo, one thread per connection, `read` then
//!   `write_all`: the ceiling.
//!
//! Throughput: 64 connections, each with 16 messages in flight, at 16 B,
//! 1 KiB and 64 KiB. The load generator is the same for every server: a few
//! client threads on a `mio` event loop, each owning a share of the
//! connections. Messages are pre-encoded once (masked client frames made by
//! `Connection::send_binary` in the client role); each completed echo (a
//! binary frame of the right length, unmasked, as RFC 6455 asks of servers)
//! lets one more message go. For raw TCP a "message" has the byte count of
//! the WebSocket client frame (header and mask included), and echoed bytes
//! are counted in whole messages. Warm-up, then a timed window; the result is
//! messages per second and its ratio to the raw-TCP ceiling, plus the CPU
//! time (user + system, this whole process) per message. With `--repeat N`
//! the servers take turns N times; the table shows the median of the rates
//! and the median of the round-by-round ratios, which hold steadier when
//! other work shares the machine.
//!
//! Idle memory: a fresh process (this binary with `--serve KIND`) runs
//! one server; 1,000 connections complete their handshake, and the growth of
//! that process's resident memory (`VmRSS`), divided by the number of
//! connections, is the cost of one idle connection. A second figure is taken
//! after one 16 B echo on every connection (buffers that are allocated on
//! first use), and a third after the connections then stayed idle for 2 s
//! (our server gives an idle connection's thread back after 1 s, see
//! `ServerConfig::release_idle_after`); one more echo on each connection
//! then checks that they all still work. The client sockets live in this
//! process, so they do not count. Our server is measured twice: over
//! `ws://` and over `wss://` (`ours-tls`: rustls, a self-signed ECDSA P-256
//! certificate made at start-up, TLS 1.3; the client side is rustls too).

use core::fmt::Write as _;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::Instant as StdInstant;

use mio::{Events, Interest, Poll, Token};
use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_core::{Config, Connection, Event, FrameHeader, Instant, MessageKind, OpCode, Role};
use snowsocket_server::rustls;

const USAGE: &str = "\
usage: load [--quick] [--seconds S] [--warmup S] [--repeat N]
            [--connections N] [--in-flight N] [--sizes 16,1024,65536]
            [--client-threads N] [--idle N] [--servers ours,core,tungstenite,raw]
            [--no-load] [--no-idle] [--verify] [--attach ADDR]
       load --serve KIND

  --quick           0.3 s per cell, 0.1 s warm-up, 100 idle connections,
                    echoed payloads verified (a smoke run for the test suite)
  --seconds S       measured window per cell (default 2; warm-up plus window
                    at most 25 s: the generator does not answer heartbeat pings)
  --warmup S        warm-up before each window (default 0.5)
  --repeat N        rounds (servers interleaved); the table shows medians (default 1)
  --connections N   connections per cell (default 64)
  --in-flight N     messages in flight per connection (default 16)
  --sizes LIST      payload sizes in bytes (default 16,1024,65536)
  --client-threads N  load-generator threads (default 2)
  --idle N          connections for the idle-memory figure (default 1000)
  --servers LIST    which servers (default all: ours,core,tungstenite,raw);
                    the idle figure adds ours-tls (wss://) after ours
  --verify          check every echoed payload byte (default off, on with --quick)
  --no-load / --no-idle  skip a part
  --attach ADDR     load a server already running at ADDR (one of --servers)
                    instead of starting one here
  --serve KIND      run one server, print its address, serve until standard
                    input ends (for --attach, strace or perf on it alone)";

/// The byte every payload is made of, so echoes can be verified cheaply.
const FILL: u8 = 0xA5;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(args.get(1).map(String::as_str).unwrap_or_default());
    }
    let opts = match Options::parse(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Each idle-memory run holds `idle` sockets here and as many in the
    // child; each throughput cell twice `connections` here.
    let wanted = 2 * (opts.idle.max(opts.connections) as u64) + 256;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => {
            eprintln!("load: warning: open-files limit is {got}, {wanted} wanted");
        }
        Ok(_) => {}
        Err(e) => eprintln!("load: warning: cannot raise the open-files limit: {e}"),
    }
    let mut ok = true;
    println!("{}", machine_line());
    if !opts.no_load {
        ok &= throughput(&opts);
    }
    if !opts.no_idle {
        ok &= idle_table(&opts);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------
// Options

struct Options {
    warmup: Duration,
    measure: Duration,
    repeat: usize,
    connections: usize,
    in_flight: usize,
    sizes: Vec<usize>,
    client_threads: usize,
    idle: usize,
    servers: Vec<Kind>,
    verify: bool,
    no_load: bool,
    no_idle: bool,
    attach: Option<SocketAddr>,
}

impl Options {
    /// `Ok(None)` for `--help`.
    fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut o = Self {
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs(2),
            repeat: 1,
            connections: 64,
            in_flight: 16,
            sizes: vec![16, 1024, 64 * 1024],
            client_threads: 2,
            idle: 1000,
            servers: Kind::ALL.to_vec(),
            verify: false,
            no_load: false,
            no_idle: false,
            attach: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .map(String::as_str)
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => {
                    o.warmup = Duration::from_millis(100);
                    o.measure = Duration::from_millis(300);
                    o.idle = 100;
                    o.verify = true;
                }
                "--seconds" => o.measure = seconds(value()?)?,
                "--warmup" => o.warmup = seconds(value()?)?,
                "--repeat" => o.repeat = count(value()?)?,
                "--connections" => o.connections = count(value()?)?,
                "--in-flight" => o.in_flight = count(value()?)?,
                "--client-threads" => o.client_threads = count(value()?)?,
                "--idle" => o.idle = count(value()?)?,
                "--sizes" => {
                    o.sizes = value()?.split(',').map(count).collect::<Result<_, _>>()?;
                }
                "--servers" => {
                    o.servers = value()?
                        .split(',')
                        .map(|s| Kind::parse(s).ok_or_else(|| format!("unknown server {s:?}")))
                        .collect::<Result<_, _>>()?;
                }
                "--verify" => o.verify = true,
                "--no-load" => o.no_load = true,
                "--no-idle" => o.no_idle = true,
                "--attach" => {
                    let addr = value()?;
                    o.attach = Some(addr.parse().map_err(|_| format!("bad address {addr:?}"))?);
                    o.no_idle = true;
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if o.sizes.iter().any(|&s| s > 16 << 20) {
            return Err("sizes must be at most 16 MiB (the default message limit)".into());
        }
        if o.warmup + o.measure > Duration::from_secs(25) {
            // Servers send a heartbeat Ping after 30 s, which the load
            // generator does not answer: keep every connection younger.
            return Err("--warmup plus --seconds must be at most 25 s".into());
        }
        if o.servers.contains(&Kind::OursTls) && !o.no_load {
            return Err("ours-tls is for the idle-memory figure only: add --no-load".into());
        }
        if o.attach.is_some() && o.servers.len() != 1 {
            return Err("--attach needs exactly one server in --servers".into());
        }
        Ok(Some(o))
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 25.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds in (0, 25]"))
}

fn count(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|v| (1..=1_000_000).contains(v))
        .ok_or_else(|| format!("{s:?} is not a count in 1..=1000000"))
}

// ---------------------------------------------------------------------------
// The servers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ours,
    /// `Ours` over `wss://`: for the idle-memory figure only.
    OursTls,
    Core,
    Tungstenite,
    Raw,
}

impl Kind {
    /// The servers of the throughput tables (and of the idle table, where
    /// `OursTls` follows `Ours`).
    const ALL: [Self; 4] = [Self::Ours, Self::Core, Self::Tungstenite, Self::Raw];

    fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Self::OursTls])
            .find(|k| k.name() == s)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::OursTls => "ours-tls",
            Self::Core => "core",
            Self::Tungstenite => "tungstenite",
            Self::Raw => "raw",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Ours => "snowsocket-server",
            Self::OursTls => "snowsocket-server, wss://",
            Self::Core => "snowsocket-core, hand loop, thread/conn",
            Self::Tungstenite => "tungstenite 0.28, thread/conn",
            Self::Raw => "raw TCP echo, thread/conn (ceiling)",
        }
    }

    fn is_websocket(self) -> bool {
        self != Self::Raw
    }

    fn start(self) -> Result<RunningServer, String> {
        let started = match self {
            Self::Ours => return start_ours(None),
            Self::OursTls => return start_ours_tls(),
            Self::Core => thread_server(core_echo),
            Self::Tungstenite => thread_server(tungstenite_echo),
            Self::Raw => thread_server(raw_echo),
        };
        started.map_err(|e| format!("{} server: {e}", self.name()))
    }
}

/// A server running in this process, and how to stop it.
struct RunningServer {
    addr: SocketAddr,
    /// Under TLS: the server's self-signed certificate (DER), for clients
    /// to trust.
    cert: Option<Vec<u8>>,
    stop: Box<dyn FnOnce() -> Result<(), String>>,
}

impl RunningServer {
    fn stop(self) -> Result<(), String> {
        (self.stop)()
    }
}

/// `snowsocket-server` with its default configuration and an echo handler.
/// Stopping is its graceful shutdown (Close 1001 to every peer, every
/// thread joined).
fn start_ours(tls: Option<Arc<rustls::ServerConfig>>) -> Result<RunningServer, String> {
    use snowsocket_server::{on_message, Message, Server, ServerConfig};
    let mut config = ServerConfig::default();
    if let Some(tls) = tls {
        config = config.tls(tls);
    }
    let server = Server::bind("127.0.0.1:0", config).map_err(|e| format!("ours: bind: {e}"))?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    let handle = server
        .spawn(on_message(|conn, message| {
            let _ = match message {
                Message::Text(text) => conn.send_text(text),
                Message::Binary(data) => conn.send_binary(data),
            };
        }))
        .map_err(|e| format!("ours: spawn: {e}"))?;
    Ok(RunningServer {
        addr,
        cert: None,
        stop: Box::new(move || {
            handle.shutdown();
            Ok(())
        }),
    })
}

/// `start_ours` over `wss://`, with a self-signed certificate for
/// `localhost` made now (rcgen, ECDSA P-256).
fn start_ours_tls() -> Result<RunningServer, String> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_string()])
        .map_err(|e| format!("ours-tls: certificate: {e}"))?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls = snowsocket_server::tls::server_config_from_der(vec![cert.clone()], key)
        .map_err(|e| format!("ours-tls: {e}"))?;
    let mut server = start_ours(Some(tls))?;
    server.cert = Some(cert.to_vec());
    Ok(server)
}

/// The name in the `wss://` server's certificate.
const TLS_NAME: &str = "localhost";

/// A listener thread that hands every accepted connection to a new thread
/// running `serve`. Stopping wakes the listener with a connection of its own
/// and waits (bounded) until every connection thread has ended; those end
/// when their client disconnects, which the load generator always does.
fn thread_server(serve: fn(TcpStream) -> io::Result<()>) -> io::Result<RunningServer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    // Every thread holds a sender; the channel disconnects when all are gone.
    let (alive, all_gone) = mpsc::channel::<()>();
    let flag = Arc::clone(&stopping);
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            let mut errors = 0;
            for stream in listener.incoming() {
                if flag.load(Ordering::Acquire) {
                    break;
                }
                let stream = match stream {
                    Ok(s) => s,
                    Err(_) if errors < 100 => {
                        errors += 1;
                        continue;
                    }
                    Err(_) => break,
                };
                // Nagle would hold back small replies behind unacknowledged
                // ones; every server here turns it off, as the client does.
                let _ = stream.set_nodelay(true);
                let alive = alive.clone();
                let _ = thread::Builder::new().name("conn".into()).spawn(move || {
                    let _ = serve(stream);
                    drop(alive);
                });
            }
            drop(alive);
        })?;
    let stop = move || {
        stopping.store(true, Ordering::Release);
        let _ = TcpStream::connect(addr);
        match all_gone.recv_timeout(Duration::from_secs(5)) {
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(()),
            _ => Err("server threads still running 5 s after stop".into()),
        }
    };
    Ok(RunningServer {
        addr,
        cert: None,
        stop: Box::new(stop),
    })
}

/// The ceiling: read what came, write it back.
fn raw_echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// tungstenite as its documentation shows it: `accept`, then `read` and
/// `send` (write and flush) per message, default configuration.
fn tungstenite_echo(stream: TcpStream) -> io::Result<()> {
    let mut ws = tungstenite::accept(stream).map_err(io::Error::other)?;
    loop {
        match ws.read() {
            Ok(msg @ (tungstenite::Message::Binary(_) | tungstenite::Message::Text(_))) => {
                ws.send(msg).map_err(io::Error::other)?;
            }
            Ok(_) => {}
            // Closed, reset or a protocol error: the connection is over.
            Err(_) => return Ok(()),
        }
    }
}

/// `snowsocket-core` driven by hand: one read, every event of it handled,
/// every reply (and any control frame) gathered, one `write_all`.
fn core_echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = 0;
    let mut out: Vec<u8> = Vec::new();
    let start = loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut headers = [handshake::EMPTY_HEADER; 32];
        match handshake::parse_request(&buf[..filled], &mut headers, &HandshakeLimits::DEFAULT) {
            Ok(Parsed::Complete { value, consumed }) => {
                let mut accept = [0u8; 256];
                let n = handshake::write_accept(&mut accept, &value, None, &[])
                    .map_err(io::Error::other)?;
                stream.write_all(&accept[..n])?;
                break consumed;
            }
            Ok(Parsed::Incomplete) => {}
            Err(e) => {
                let mut answer = [0u8; 512];
                if let Ok(n) = e.write_response(&mut answer) {
                    stream.write_all(&answer[..n])?;
                }
                return Ok(());
            }
        }
    };
    buf.copy_within(start..filled, 0);
    filled -= start;
    let mut conn = Connection::new(
        Role::Server,
        Config::DEFAULT,
        Vec::new(),
        XorShift::seeded(),
        now(),
    );
    loop {
        let mut at = 0;
        let mut failed = false;
        loop {
            let mut echo = None;
            match conn.handle_read(&mut buf[at..filled], now()) {
                Ok((consumed, event)) => {
                    at += consumed;
                    match event {
                        None => break,
                        Some(Event::Binary(data)) => {
                            echo = Some(stage_echo(&mut out, MessageKind::Binary, data));
                        }
                        Some(Event::Text(text)) => {
                            echo = Some(stage_echo(&mut out, MessageKind::Text, text.as_bytes()));
                        }
                        Some(_) => {}
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            // The event's borrow of `conn` has ended: write the header.
            if let Some((kind, header_at, len)) = echo {
                let header = conn.message_header(kind, len).map_err(io::Error::other)?;
                header
                    .encode(&mut out[header_at..])
                    .map_err(io::Error::other)?;
            }
        }
        if let Some(deadline) = conn.poll_timeout() {
            if now() >= deadline && conn.handle_timeout(now()).is_err() {
                failed = true;
            }
        }
        let mut control = [0u8; 139];
        loop {
            let n = conn.poll_transmit(&mut control).map_err(io::Error::other)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&control[..n]);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if failed || conn.is_closed() {
            return Ok(());
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if filled == buf.len() {
            return Err(io::Error::other("read buffer full"));
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

/// Appends room for a server frame header and then `payload` to `out`;
/// returns where the header goes and the payload length.
fn stage_echo(out: &mut Vec<u8>, kind: MessageKind, payload: &[u8]) -> (MessageKind, usize, usize) {
    let header = FrameHeader {
        fin: true,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let at = out.len();
    out.resize(at + header.encoded_len(), 0);
    out.extend_from_slice(payload);
    (kind, at, payload.len())
}

/// The clock handed to the core: microseconds since the first call.
fn now() -> Instant {
    static START: OnceLock<StdInstant> = OnceLock::new();
    let micros = START.get_or_init(StdInstant::now).elapsed().as_micros();
    Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// Masking keys and handshake nonces. A benchmark needs them varied, not
/// secret.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = NEXT.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) ^ now().as_micros();
        Self(seed | 1)
    }
}

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The load generator

/// Opens one connection and, for a WebSocket server, completes the opening
/// handshake with `snowsocket_core::handshake`.
fn connect(addr: SocketAddr, websocket: bool, rng: &mut XorShift) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    if !websocket {
        return Ok(stream);
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    ws_handshake(&mut stream, &addr.to_string(), rng)?;
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// The client side of the opening handshake, over any stream.
fn ws_handshake(
    stream: &mut (impl Read + Write),
    host: &str,
    rng: &mut XorShift,
) -> Result<(), String> {
    let key = handshake::generate_key(rng);
    let mut request = [0u8; 512];
    let n = handshake::write_request(
        &mut request,
        &handshake::ClientRequest::new(host, "/"),
        &key,
    )
    .map_err(|e| format!("handshake request: {e}"))?;
    stream
        .write_all(&request[..n])
        .map_err(|e| format!("handshake write: {e}"))?;
    let mut response = [0u8; 2048];
    let mut filled = 0;
    loop {
        let n = stream
            .read(&mut response[filled..])
            .map_err(|e| format!("handshake read: {e}"))?;
        if n == 0 {
            return Err("server closed during the handshake".into());
        }
        filled += n;
        let mut headers = [handshake::EMPTY_HEADER; 16];
        match handshake::parse_response(
            &response[..filled],
            &mut headers,
            &key,
            &[],
            &HandshakeLimits::DEFAULT,
        ) {
            Ok(Parsed::Complete { consumed, .. }) if consumed == filled => return Ok(()),
            Ok(Parsed::Complete { .. }) => return Err("server spoke before the client".into()),
            Ok(Parsed::Incomplete) if filled < response.len() => {}
            Ok(Parsed::Incomplete) => return Err("handshake response too long".into()),
            Err(e) => return Err(format!("handshake refused: {e}")),
        }
    }
}

/// What one client thread needs to know about the messages.
struct Workload {
    /// `in_flight` whole frames back to back, sent cyclically.
    pattern: Vec<u8>,
    /// Bytes one message takes on the wire from the client.
    frame_len: usize,
    payload_len: usize,
    websocket: bool,
    verify: bool,
}

impl Workload {
    fn new(size: usize, in_flight: usize, websocket: bool, verify: bool) -> Result<Self, String> {
        let mut client = Connection::new(
            Role::Client,
            Config::DEFAULT,
            Vec::new(),
            XorShift::seeded(),
            now(),
        );
        let frame_len = client.frame_len(size);
        let payload = vec![FILL; size];
        let mut pattern = vec![FILL; frame_len * in_flight];
        if websocket {
            for frame in pattern.chunks_mut(frame_len) {
                let n = client
                    .send_binary(&payload, frame)
                    .map_err(|e| format!("encoding a frame: {e}"))?;
                if n != frame_len {
                    return Err("frame length differs from Connection::frame_len".into());
                }
            }
        }
        Ok(Self {
            pattern,
            frame_len,
            payload_len: size,
            websocket,
            verify,
        })
    }
}

/// One client connection on the event loop.
struct ClientConn {
    stream: mio::net::TcpStream,
    /// Bytes owed to the server (whole frames granted by completed echoes).
    to_send: usize,
    /// Where the next byte comes from in the cyclic pattern.
    send_at: usize,
    /// Raw TCP: bytes of the current message received so far.
    partial: usize,
    /// WebSocket: an incomplete frame header.
    header: [u8; FrameHeader::MAX_LEN],
    header_len: usize,
    /// WebSocket: payload bytes still to come in the current frame, and
    /// whether that frame is an echo to count.
    remaining: u64,
    counting: bool,
}

impl ClientConn {
    fn new(stream: TcpStream, w: &Workload) -> Result<Self, String> {
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream: mio::net::TcpStream::from_std(stream),
            to_send: w.pattern.len(),
            send_at: 0,
            partial: 0,
            header: [0; FrameHeader::MAX_LEN],
            header_len: 0,
            remaining: 0,
            counting: false,
        })
    }

    /// Writes what is owed until the socket would block.
    fn flush(&mut self, w: &Workload) -> Result<(), String> {
        while self.to_send > 0 {
            let end = w.pattern.len().min(self.send_at + self.to_send);
            match self.stream.write(&w.pattern[self.send_at..end]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => {
                    self.to_send -= n;
                    self.send_at = (self.send_at + n) % w.pattern.len();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(())
    }

    /// Reads until the socket would block; returns the echoes completed.
    fn receive(&mut self, buf: &mut [u8], w: &Workload) -> Result<u64, String> {
        let mut done = 0;
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    let data = &buf[..n];
                    done += if w.websocket {
                        self.parse_frames(data, w)?
                    } else {
                        self.count_bytes(data, w)?
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        self.to_send += done as usize * w.frame_len;
        Ok(done)
    }

    fn count_bytes(&mut self, data: &[u8], w: &Workload) -> Result<u64, String> {
        if w.verify && !data.iter().all(|&b| b == FILL) {
            return Err("echoed bytes differ from those sent".into());
        }
        self.partial += data.len();
        let done = self.partial / w.frame_len;
        self.partial %= w.frame_len;
        Ok(done as u64)
    }

    fn parse_frames(&mut self, mut data: &[u8], w: &Workload) -> Result<u64, String> {
        let mut done = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                let (payload, rest) = data.split_at(take);
                if w.verify && self.counting && !payload.iter().all(|&b| b == FILL) {
                    return Err("echoed payload differs from the one sent".into());
                }
                data = rest;
                self.remaining -= take as u64;
                if self.remaining == 0 && self.counting {
                    done += 1;
                }
                continue;
            }
            let header = if self.header_len == 0 {
                match FrameHeader::decode(data) {
                    Ok(Some((header, used))) => {
                        data = &data[used..];
                        header
                    }
                    Ok(None) => {
                        self.header[..data.len()].copy_from_slice(data);
                        self.header_len = data.len();
                        break;
                    }
                    Err(e) => return Err(format!("bad frame from the server: {e}")),
                }
            } else {
                // A header split across reads: add a byte at a time.
                let mut found = None;
                while let Some((&byte, rest)) = data.split_first() {
                    data = rest;
                    self.header[self.header_len] = byte;
                    self.header_len += 1;
                    match FrameHeader::decode(&self.header[..self.header_len]) {
                        Ok(Some((header, _))) => {
                            found = Some(header);
                            break;
                        }
                        Ok(None) => {}
                        Err(e) => return Err(format!("bad frame from the server: {e}")),
                    }
                }
                match found {
                    Some(header) => {
                        self.header_len = 0;
                        header
                    }
                    None => break,
                }
            };
            if header.mask.is_some() {
                return Err("the server masked a frame".into());
            }
            self.counting = match header.opcode {
                OpCode::Binary if header.fin && header.payload_len == w.payload_len as u64 => true,
                OpCode::Ping | OpCode::Pong => false,
                other => {
                    return Err(format!(
                        "unexpected {other} frame (fin {}, {} bytes) from the server",
                        header.fin, header.payload_len
                    ))
                }
            };
            self.remaining = header.payload_len;
            if self.remaining == 0 && self.counting {
                done += 1;
            }
        }
        Ok(done)
    }
}

/// One client thread: keeps its connections loaded until `stop` (or the
/// deadline, a safety net) and publishes its count of completed echoes.
fn client_thread(
    streams: Vec<TcpStream>,
    w: &Workload,
    completed: &AtomicU64,
    stop: &AtomicBool,
    deadline: StdInstant,
) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(streams.len());
    for (i, stream) in streams.into_iter().enumerate() {
        let mut conn = ClientConn::new(stream, w)?;
        poll.registry()
            .register(
                &mut conn.stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conn.flush(w)?;
        conns.push(conn);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    while !stop.load(Ordering::Relaxed) {
        if StdInstant::now() > deadline {
            return Err("client thread ran past its deadline".into());
        }
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
        for event in &events {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                total += conn.receive(&mut buf, w)?;
                completed.store(total, Ordering::Relaxed);
            }
            conn.flush(w)?;
        }
    }
    Ok(())
}

/// One measured cell: echoed messages per second, and the CPU time this
/// process (server and load generator together) spent per message.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rate: f64,
    cpu_micros: f64,
}

/// Loads a running server with one payload size.
fn measure(kind: Kind, addr: SocketAddr, size: usize, opts: &Options) -> Result<Sample, String> {
    let workload = Arc::new(Workload::new(
        size,
        opts.in_flight,
        kind.is_websocket(),
        opts.verify,
    )?);
    let mut rng = XorShift::seeded();
    let threads = opts.client_threads.min(opts.connections);
    let mut shares: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..opts.connections {
        shares[i % threads].push(connect(addr, kind.is_websocket(), &mut rng)?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = StdInstant::now() + opts.warmup + opts.measure + Duration::from_secs(30);
    let (done_tx, done_rx) = mpsc::channel();
    let mut counters = Vec::new();
    for (i, share) in shares.into_iter().enumerate() {
        let completed = Arc::new(AtomicU64::new(0));
        counters.push(Arc::clone(&completed));
        let (w, stop, done) = (Arc::clone(&workload), Arc::clone(&stop), done_tx.clone());
        thread::Builder::new()
            .name(format!("client-{i}"))
            .spawn(move || {
                let result = client_thread(share, &w, &completed, &stop, deadline);
                let _ = done.send(result);
            })
            .map_err(|e| e.to_string())?;
    }
    drop(done_tx);
    let sum = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    // An early failure ends the cell at once instead of after the window.
    let early = done_rx.recv_timeout(opts.warmup);
    let (c0, t0, cpu0) = (sum(), StdInstant::now(), cpu_ticks());
    let mut early = early.or_else(|_| done_rx.recv_timeout(opts.measure));
    // A very slow run (a debug build, a busy machine) may complete nothing
    // in a short window: extend it, up to 10 s, until something completes.
    let extended = StdInstant::now() + Duration::from_secs(10);
    while early.is_err() && sum() == c0 && StdInstant::now() < extended {
        early = done_rx.recv_timeout(Duration::from_millis(50));
    }
    let (c1, t1, cpu1) = (sum(), StdInstant::now(), cpu_ticks());
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    if let Ok(result) = early {
        results.push(result);
    }
    // A client thread stops after the events it is handling: quick in a
    // release build, seconds in a debug build on a busy machine.
    while results.len() < threads {
        match done_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(result) => results.push(result),
            Err(_) => return Err("a client thread did not stop within 30 s".into()),
        }
    }
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    if c1 == c0 {
        return Err("no message completed in the measured window".into());
    }
    let messages = (c1 - c0) as f64;
    let cpu_micros = match (cpu0, cpu1) {
        // Clock ticks are 10 ms (USER_HZ = 100 on Linux).
        (Some(a), Some(b)) => (b.saturating_sub(a) as f64 * 10_000.0) / messages,
        _ => f64::NAN,
    };
    Ok(Sample {
        rate: messages / (t1 - t0).as_secs_f64(),
        cpu_micros,
    })
}

/// User plus system CPU time of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which ends with the last ')':
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Starts `kind`, measures one size, stops it.
fn cell(kind: Kind, size: usize, opts: &Options) -> Result<Sample, String> {
    if let Some(addr) = opts.attach {
        return measure(kind, addr, size, opts);
    }
    let server = kind.start()?;
    let result = measure(kind, server.addr, size, opts);
    let stopped = server.stop();
    let sample = result?;
    stopped?;
    Ok(sample)
}

fn throughput(opts: &Options) -> bool {
    // samples[server][size]: one sample per round, or the first failure.
    let mut samples: Vec<Vec<Result<Vec<Sample>, String>>> = opts
        .servers
        .iter()
        .map(|_| opts.sizes.iter().map(|_| Ok(Vec::new())).collect())
        .collect();
    // Rounds interleave the servers, so that a disturbance hits all alike
    // and each round's ratios compare runs a few seconds apart.
    for round in 1..=opts.repeat {
        for (j, &size) in opts.sizes.iter().enumerate() {
            for (i, &kind) in opts.servers.iter().enumerate() {
                let result = cell(kind, size, opts);
                let label = format!("round {round} {:<12} {:>7}", kind.name(), size_label(size));
                match &result {
                    Ok(s) => eprintln!(
                        "load: {label}: {:>12.0} msg/s, {:.2} µs CPU/msg",
                        s.rate, s.cpu_micros
                    ),
                    Err(e) => eprintln!("load: {label}: FAILED: {e}"),
                }
                let slot = &mut samples[i][j];
                match (slot.as_mut(), result) {
                    (Ok(list), Ok(sample)) => list.push(sample),
                    (Ok(_), Err(e)) => *slot = Err(e),
                    (Err(_), _) => {}
                }
            }
        }
    }
    let raw = opts.servers.iter().position(|&k| k == Kind::Raw);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n### Throughput: echoed messages/s ({} connections × {} in flight, \
         {:.1} s after {:.1} s warm-up, median of {} round(s), {} client threads)\n",
        opts.connections,
        opts.in_flight,
        opts.measure.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.repeat,
        opts.client_threads.min(opts.connections),
    );
    table.push_str("| server |");
    let mut cpu = String::from(
        "\nCPU time per message, µs (server and load generator together, \
         user + system), and the raw-TCP figure divided by it:\n\n| server |",
    );
    for &size in &opts.sizes {
        let _ = write!(table, " {} | × raw |", size_label(size));
        let _ = write!(cpu, " {} | raw ÷ this |", size_label(size));
    }
    table.push_str("\n|---|");
    table.push_str(&"---:|---:|".repeat(opts.sizes.len()));
    table.push('\n');
    cpu.push_str("\n|---|");
    cpu.push_str(&"---:|---:|".repeat(opts.sizes.len()));
    cpu.push('\n');
    let mut ok = true;
    for (i, kind) in opts.servers.iter().enumerate() {
        let _ = write!(table, "| {} |", kind.label());
        let _ = write!(cpu, "| {} |", kind.label());
        for (j, cell) in samples[i].iter().enumerate() {
            let Ok(mine) = cell else {
                ok = false;
                table.push_str(" failed | – |");
                cpu.push_str(" – | – |");
                continue;
            };
            let rate = median(mine.iter().map(|s| s.rate));
            let micros = median(mine.iter().map(|s| s.cpu_micros));
            // Ratios are taken round by round, then their median.
            let ceiling = raw.and_then(|r| samples[r][j].as_ref().ok());
            let (rate_ratio, cpu_ratio) = match ceiling {
                Some(ceiling) => (
                    fmt_ratio(median(
                        mine.iter().zip(ceiling).map(|(m, c)| m.rate / c.rate),
                    )),
                    fmt_ratio(median(
                        mine.iter()
                            .zip(ceiling)
                            .map(|(m, c)| c.cpu_micros / m.cpu_micros),
                    )),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = write!(table, " {} | {rate_ratio} |", thousands(rate));
            let _ = write!(cpu, " {micros:.2} | {cpu_ratio} |");
        }
        table.push('\n');
        cpu.push('\n');
    }
    println!("{table}{cpu}");
    ok
}

/// The median (the mean of the middle two for an even count); NaN if empty.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        "–".into()
    }
}

// ---------------------------------------------------------------------------
// Idle memory

/// `--serve`: run one server until standard input ends (the child side of
/// the idle-memory figure).
fn serve(name: &str) -> ExitCode {
    let Some(kind) = Kind::parse(name) else {
        eprintln!("load --serve: unknown server {name:?}");
        return ExitCode::from(2);
    };
    let server = match kind.start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("load --serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The address, then (under TLS) the certificate to trust, in hex.
    match &server.cert {
        None => println!("{}", server.addr),
        Some(cert) => println!("{} {}", server.addr, hex(cert)),
    }
    let _ = io::stdout().flush();
    // Returns at end of input: the parent is done (or gone).
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    ExitCode::SUCCESS
}

/// Kills and reaps the child on every path.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/PID/status".into())
}

/// Bytes of server RSS per connection: after the handshakes, after one
/// 16 B echo on each connection, and after [`IDLE_SETTLE`] with nothing
/// sent (then one more echo on each checks they all still work).
fn idle_memory(kind: Kind, n: usize) -> Result<[f64; 3], String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .args(["--serve", kind.name()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the server process: {e}"))?;
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    // The child prints its address, or exits (end of file); a reader
    // thread lets the wait be bounded (the guard kills the child on error).
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the server process did not print its address in 10 s")?;
    let mut words = line.split_whitespace();
    let addr: SocketAddr = words
        .next()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("the server process printed {line:?}, not an address"))?;
    let tls = match words.next() {
        None => None,
        Some(cert) => {
            let cert = unhex(cert).ok_or("the server process printed a bad certificate")?;
            let roots = [rustls::pki_types::CertificateDer::from(cert)];
            Some(snowsocket_server::tls::client_config(&roots, false).map_err(|e| e.to_string())?)
        }
    };
    let pid = child.0.id();
    let before = rss_kib(pid)?;
    let mut rng = XorShift::seeded();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = match &tls {
            None => Stream::Plain(connect(addr, kind.is_websocket(), &mut rng)?),
            Some(config) => connect_tls(addr, config, &mut rng)?,
        };
        if !kind.is_websocket() {
            // Make sure the server has accepted it and started its thread.
            echo_once(&mut stream, &[FILL], 1)?;
        }
        conns.push(stream);
    }
    let after_handshake = rss_kib(pid)?;
    let mut client = Connection::new(
        Role::Client,
        Config::DEFAULT,
        Vec::new(),
        XorShift::seeded(),
        now(),
    );
    echo_each(&mut conns, kind, &mut client)?;
    let after_message = rss_kib(pid)?;
    // Then idle: a server may give resources back from idle connections
    // (ours gives back the thread after `release_idle_after`, 1 s).
    thread::sleep(IDLE_SETTLE);
    let after_idle = rss_kib(pid)?;
    // Every connection still works.
    echo_each(&mut conns, kind, &mut client)?;
    drop(conns);
    drop(child);
    let per = |kib: u64| kib.saturating_sub(before) as f64 * 1024.0 / n as f64;
    Ok([per(after_handshake), per(after_message), per(after_idle)])
}

/// A client connection of the idle-memory figure.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// A `wss://` connection: TLS (trusting `config`'s roots, for
/// [`TLS_NAME`]), then the WebSocket handshake.
fn connect_tls(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    rng: &mut XorShift,
) -> Result<Stream, String> {
    let socket = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(TLS_NAME).map_err(|e| e.to_string())?;
    let session =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut stream = Stream::Tls(Box::new(rustls::StreamOwned::new(session, socket)));
    ws_handshake(&mut stream, TLS_NAME, rng)?;
    Ok(stream)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How long the connections stay idle before the third memory figure.
const IDLE_SETTLE: Duration = Duration::from_secs(2);

/// One 16 B echo on each connection (a WebSocket frame from `client` for
/// the WebSocket servers).
fn echo_each(
    conns: &mut [Stream],
    kind: Kind,
    client: &mut Connection<Vec<u8>, XorShift>,
) -> Result<(), String> {
    let payload = [FILL; 16];
    let mut frame = [0u8; 32];
    for stream in conns {
        if kind.is_websocket() {
            let len = client
                .send_binary(&payload, &mut frame)
                .map_err(|e| e.to_string())?;
            echo_once(stream, &frame[..len], 18)?;
        } else {
            echo_once(stream, &payload, 16)?;
        }
    }
    Ok(())
}

/// Sends `data` and reads `expect` bytes back (5 s timeout).
fn echo_once(stream: &mut Stream, data: &[u8], expect: usize) -> Result<(), String> {
    if let Stream::Plain(socket) = stream {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
    }
    stream.write_all(data).map_err(|e| format!("write: {e}"))?;
    let mut back = [0u8; 64];
    let back = back.get_mut(..expect).ok_or("echo too long")?;
    stream
        .read_exact(back)
        .map_err(|e| format!("reading the echo: {e}"))?;
    if back.last() != Some(&FILL) {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}

fn idle_table(opts: &Options) -> bool {
    let mut table = format!(
        "\n### Idle memory: server RSS growth per connection ({} connections)\n\n\
         | server | after handshake | after one 16 B echo | then idle for {} s |\n\
         |---|---:|---:|---:|\n",
        opts.idle,
        IDLE_SETTLE.as_secs()
    );
    let mut ok = true;
    // Our server over wss:// too, right after it over ws://.
    let kinds = opts.servers.iter().flat_map(|&kind| match kind {
        Kind::Ours if !opts.servers.contains(&Kind::OursTls) => vec![Kind::Ours, Kind::OursTls],
        kind => vec![kind],
    });
    for kind in kinds {
        match idle_memory(kind, opts.idle) {
            Ok([handshake, message, idle]) => {
                eprintln!(
                    "load: {:<12} idle: {handshake:.0} B / {message:.0} B / {idle:.0} B per connection",
                    kind.name()
                );
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | {} |",
                    kind.label(),
                    bytes_label(handshake),
                    bytes_label(message),
                    bytes_label(idle)
                );
            }
            Err(e) => {
                eprintln!("load: {:<12} idle: FAILED: {e}", kind.name());
                ok = false;
                let _ = writeln!(table, "| {} | failed | failed | failed |", kind.label());
            }
        }
    }
    println!("{table}");
    ok
}

// ---------------------------------------------------------------------------
// Formatting

fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn bytes_label(bytes: f64) -> String {
    if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn machine_line() -> String {
    let cpus = thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "load benchmark on 127.0.0.1: {cpus} CPUs ({model}); server and load generator share them"
    )
}
