//! The echo servers, one file each, and `--serve`: one of them running in a
//! process of its own, so that it can be pinned to a core, measured from
//! `/proc` and killed.
//!
//! A serving process prints its address (and, under TLS, its certificate
//! in hex) on one line, then serves until its standard input ends. Its
//! main thread does nothing but wait for that end: every thread count the
//! benchmark reports includes it.

mod core_loop;
mod fastwebsockets;
mod ours;
mod raw_mio;
mod raw_mio_tls;
mod raw_threads;
mod tokio_ours;
mod tokio_rt;
mod tokio_tungstenite;
mod tokio_websockets;
mod tungstenite;

use core::net::SocketAddr;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;

use crate::client::hex;
use crate::proc;

/// The servers the benchmark knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `snowsocket-server`, the std shell.
    Ours,
    /// `Ours` over `wss://`: in the idle-memory figure beside `Ours`, and
    /// in the throughput cells when asked for (`--servers`), against
    /// `RawMioTls`.
    OursTls,
    /// `snowsocket-core` driven by a minimal thread per connection.
    Core,
    /// `snowsocket-core`'s async driver on tokio.
    TokioOurs,
    TokioWebsockets,
    FastWebsockets,
    TokioTungstenite,
    Tungstenite,
    /// Plain TCP echo, a thread per connection.
    Raw,
    /// Plain TCP echo on one `mio` event loop: the reference.
    RawMio,
    /// TLS echo (rustls) on one `mio` event loop: the reference of the
    /// `wss://` servers.
    RawMioTls,
}

impl Kind {
    /// Every server of the throughput comparison, in table order.
    pub(crate) const ALL: [Self; 9] = [
        Self::Ours,
        Self::Core,
        Self::TokioOurs,
        Self::TokioWebsockets,
        Self::FastWebsockets,
        Self::TokioTungstenite,
        Self::Tungstenite,
        Self::Raw,
        Self::RawMio,
    ];

    /// The `wss://` servers, measured when asked for (`--servers`).
    pub(crate) const TLS: [Self; 2] = [Self::OursTls, Self::RawMioTls];

    /// The other tokio servers, which the async driver (`TokioOurs`) is
    /// compared with round by round.
    pub(crate) const TOKIO_PEERS: [Self; 3] = [
        Self::TokioWebsockets,
        Self::FastWebsockets,
        Self::TokioTungstenite,
    ];

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain(Self::TLS)
            .find(|k| k.name() == s)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::OursTls => "ours-tls",
            Self::Core => "core",
            Self::TokioOurs => "tokio-ours",
            Self::TokioWebsockets => "tokio-websockets",
            Self::FastWebsockets => "fastwebsockets",
            Self::TokioTungstenite => "tokio-tungstenite",
            Self::Tungstenite => "tungstenite",
            Self::Raw => "raw",
            Self::RawMio => "raw-mio",
            Self::RawMioTls => "raw-mio-tls",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ours => "snowsocket-server",
            Self::OursTls => "snowsocket-server, wss://",
            Self::Core => "snowsocket-core, hand loop, thread/conn",
            Self::TokioOurs => "snowsocket-core async driver, tokio current-thread",
            Self::TokioWebsockets => "tokio-websockets 0.13, tokio current-thread",
            Self::FastWebsockets => "fastwebsockets 0.10 + hyper, tokio current-thread",
            Self::TokioTungstenite => "tokio-tungstenite 0.28, tokio multi-thread",
            Self::Tungstenite => "tungstenite 0.28, thread/conn",
            Self::Raw => "raw TCP echo, thread/conn",
            Self::RawMio => "raw TCP echo, mio event loop (reference)",
            Self::RawMioTls => "raw TLS echo, rustls + mio event loop (wss:// reference)",
        }
    }

    pub(crate) fn is_websocket(self) -> bool {
        !matches!(self, Self::Raw | Self::RawMio | Self::RawMioTls)
    }

    pub(crate) fn is_tls(self) -> bool {
        Self::TLS.contains(&self)
    }

    /// The server this one's ratios are taken against.
    pub(crate) fn reference(self) -> Self {
        if self.is_tls() {
            Self::RawMioTls
        } else {
            Self::RawMio
        }
    }

    /// Starts the server in this process.
    fn start(self, opts: &ServeOptions) -> Result<Running, String> {
        let started = match self {
            Self::Ours => ours::start(opts, false),
            Self::OursTls => ours::start(opts, true),
            Self::Core => thread_per_connection(core_loop::serve),
            Self::TokioOurs => tokio_ours::start(),
            Self::TokioWebsockets => tokio_websockets::start(),
            Self::FastWebsockets => fastwebsockets::start(),
            Self::TokioTungstenite => tokio_tungstenite::start(),
            Self::Tungstenite => thread_per_connection(tungstenite::serve),
            Self::Raw => thread_per_connection(raw_threads::serve),
            Self::RawMio => raw_mio::start(),
            Self::RawMioTls => raw_mio_tls::start(),
        };
        started.map_err(|e| format!("{} server: {e}", self.name()))
    }
}

/// How a serving process is set up (`--serve KIND [flags]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ServeOptions {
    /// Pin the process to this core.
    pub(crate) core: Option<usize>,
    /// Raise the open-files limit to this.
    pub(crate) nofile: Option<u64>,
    /// Our server: the heartbeat ping interval (default 30 s).
    pub(crate) ping_interval: Option<Duration>,
    /// Our server: the pong timeout (default 10 s).
    pub(crate) pong_timeout: Option<Duration>,
    /// Our server: the connection limit (default 10,000).
    pub(crate) max_connections: Option<usize>,
    /// Our server: `ServerConfig::read_buffer_size` (default 256 KiB).
    pub(crate) read_buffer: Option<usize>,
}

impl ServeOptions {
    /// The flags that recreate these options after `--serve KIND`.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: String| {
            args.push(flag.to_string());
            args.push(value);
        };
        if let Some(core) = self.core {
            push("--core", core.to_string());
        }
        if let Some(n) = self.nofile {
            push("--nofile", n.to_string());
        }
        if let Some(d) = self.ping_interval {
            push("--ping-interval", d.as_secs_f64().to_string());
        }
        if let Some(d) = self.pong_timeout {
            push("--pong-timeout", d.as_secs_f64().to_string());
        }
        if let Some(n) = self.max_connections {
            push("--max-connections", n.to_string());
        }
        if let Some(n) = self.read_buffer {
            push("--read-buffer", n.to_string());
        }
        args
    }

    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{flag}: {value:?} is not a number"))
            };
            match flag.as_str() {
                "--core" => o.core = Some(number()? as usize),
                "--nofile" => o.nofile = Some(number()? as u64),
                "--ping-interval" => o.ping_interval = Some(Duration::from_secs_f64(number()?)),
                "--pong-timeout" => o.pong_timeout = Some(Duration::from_secs_f64(number()?)),
                "--max-connections" => o.max_connections = Some(number()? as usize),
                "--read-buffer" => o.read_buffer = Some(number()? as usize),
                other => return Err(format!("unknown --serve flag {other:?}")),
            }
        }
        Ok(o)
    }
}

/// A server running in this process.
struct Running {
    addr: SocketAddr,
    /// Under TLS: the server's self-signed certificate (DER).
    cert: Option<Vec<u8>>,
    /// What stopping takes beyond the end of the process.
    stop: Option<Box<dyn FnOnce()>>,
}

/// `--serve KIND [flags]`: runs one server until standard input ends.
pub(crate) fn serve(args: &[String]) -> ExitCode {
    let Some((name, flags)) = args.split_first() else {
        eprintln!("--serve needs a server kind");
        return ExitCode::from(2);
    };
    let Some(kind) = Kind::parse(name) else {
        eprintln!("--serve: unknown server {name:?}");
        return ExitCode::from(2);
    };
    let opts = match ServeOptions::parse(flags) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("--serve: {e}");
            return ExitCode::from(2);
        }
    };
    // Before any thread starts, so that every thread inherits it.
    if let Some(core) = opts.core {
        if let Err(e) = proc::pin_to(core) {
            eprintln!("--serve: warning: {e}");
        }
    }
    if let Some(n) = opts.nofile {
        let got = proc::raise_nofile(n);
        if got < n {
            eprintln!("--serve: warning: open-files limit is {got}, {n} wanted");
        }
    }
    let server = match kind.start(&opts) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("--serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &server.cert {
        None => println!("{}", server.addr),
        Some(cert) => println!("{} {}", server.addr, hex(cert)),
    }
    let _ = io::stdout().flush();
    // Returns at end of input: the parent is done (or gone).
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    if let Some(stop) = server.stop {
        stop();
    }
    ExitCode::SUCCESS
}

/// A listener on `127.0.0.1:0` with a long accept queue (4,096, what
/// `somaxconn` allows by default): the load generator opens thousands of
/// connections back to back, and a raw TCP server is not paced by a
/// handshake, so a short queue (std's 128) would overflow whenever the
/// server's core is busy, and every dropped SYN costs the client 1 s.
fn listen() -> io::Result<(TcpListener, SocketAddr)> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A listener thread that hands every accepted connection to a new thread
/// running `serve`. The process's end stops it.
fn thread_per_connection(serve: fn(TcpStream) -> io::Result<()>) -> Result<Running, String> {
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            static ERRORS: AtomicUsize = AtomicUsize::new(0);
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    // Out of file descriptors, say: bounded retries.
                    Err(_) if ERRORS.fetch_add(1, Ordering::Relaxed) < 1000 => continue,
                    Err(_) => break,
                };
                // Nagle would hold back small replies behind unacknowledged
                // ones; every server here turns it off, as the client does.
                let _ = stream.set_nodelay(true);
                let _ = thread::Builder::new().name("conn".into()).spawn(move || {
                    let _ = serve(stream);
                });
            }
        })
        .map_err(|e| format!("accept thread: {e}"))?;
    Ok(Running {
        addr,
        cert: None,
        stop: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL.into_iter().chain(Kind::TLS) {
            assert_eq!(Kind::parse(kind.name()), Some(kind));
        }
    }

    #[test]
    fn serve_options_round_trip() {
        let opts = ServeOptions {
            core: Some(1),
            nofile: Some(60_000),
            ping_interval: Some(Duration::from_secs(5)),
            pong_timeout: Some(Duration::from_millis(1500)),
            max_connections: Some(55_000),
            read_buffer: Some(512 * 1024),
        };
        assert_eq!(ServeOptions::parse(&opts.to_args()), Ok(opts));
    }
}
