//! snowsocket-server against hostile and broken peers (issue 9, sections 2
//! and 2b), over real sockets on 127.0.0.1 (port 0): peers that keep
//! sending past a limit, handshakes trickled a byte at a time, a flood of
//! handshakes, peers that stop reading, frames stalled half way, many
//! connections at once, and a shutdown with peers that do not read.
//!
//! Every test runs under [`bounded`]; the only sleeps make a slow peer slow
//! (a trickle), and waiting for the server's own state is a bounded poll.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rustls::pki_types::ServerName;
use snowsocket_core::{FrameHeader, OpCode};
use snowsocket_server::{
    CloseCause, CloseCode, Config, ConnectionHandle, Message, SendError, ServerConfig, ServerHandle,
};
use snowsocket_tests::server::{
    bounded, client_frame, close_tungstenite, echo_round_trips, payload, server_threads,
    server_threads_after_join, start, tung_ws, tung_wss, url, Raw, UPGRADE, WAIT,
};
use snowsocket_tests::tls::{self, Identity};
use socket2::{Domain, Protocol, Socket, Type};

#[path = "hostile/closes.rs"]
mod closes;
#[path = "hostile/crowding.rs"]
mod crowding;
#[path = "hostile/handshake_deadline.rs"]
mod handshake_deadline;
#[path = "hostile/shutdown.rs"]
mod shutdown;
#[path = "hostile/slow_peer.rs"]
mod slow_peer;
#[path = "hostile/threads.rs"]
mod threads;
#[path = "hostile/write_timeout.rs"]
mod write_timeout;
#[allow(unused_imports)]
use closes::*;
#[allow(unused_imports)]
use crowding::*;
#[allow(unused_imports)]
use handshake_deadline::*;
#[allow(unused_imports)]
use shutdown::*;
#[allow(unused_imports)]
use slow_peer::*;
#[allow(unused_imports)]
use threads::*;
#[allow(unused_imports)]
use write_timeout::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// No heartbeat in the way.
const NO_PINGS: Config = Config::DEFAULT.ping_interval(None);

/// A TCP connection to `server` from `source` (any 127.x.y.z: all of
/// 127/8 is this machine), with a receive buffer of `rcvbuf` bytes if
/// given, set before connecting so that the window it offers is small from
/// the first segment.
fn connect_from(server: SocketAddr, source: Ipv4Addr, rcvbuf: Option<usize>) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

/// How the stream ended after the last frame read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// EOF (under TLS: after the server's close_notify).
    Eof,
    /// The connection was reset.
    Reset,
    /// TLS: the TCP stream ended without a close_notify.
    Truncated,
    /// Nothing came within the read timeout.
    TimedOut,
}

/// Reads frames (skipping data, pings and pongs) from a server until its
/// Close, then to the end of the stream. Returns the Close's code (`None`
/// if the stream ended first) and how the stream ended.
fn read_close(stream: &mut impl Read, mut buf: Vec<u8>) -> (Option<u16>, End) {
    let mut code = None;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        while code.is_none() {
            let Some((header, used)) = FrameHeader::decode(&buf).unwrap() else {
                break;
            };
            let len = usize::try_from(header.payload_len).unwrap();
            if buf.len() < used + len {
                break;
            }
            if header.opcode == OpCode::Close {
                let payload = &buf[used..used + len];
                code = Some(
                    payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]])),
                );
            }
            buf.drain(..used + len);
        }
        let end = match stream.read(&mut chunk) {
            Ok(0) => End::Eof,
            Ok(n) => {
                if code.is_none() {
                    buf.extend_from_slice(&chunk[..n]);
                }
                continue;
            }
            Err(e) => match e.kind() {
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => End::Reset,
                ErrorKind::UnexpectedEof => End::Truncated,
                ErrorKind::WouldBlock | ErrorKind::TimedOut => End::TimedOut,
                _ => panic!("reading after the upgrade: {e}"),
            },
        };
        return (code, end);
    }
}

/// The plaintext side of a rustls client session whose socket is written
/// by someone else (records sealed in advance): reads only.
struct TlsReader {
    conn: rustls::ClientConnection,
    sock: TcpStream,
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => return other,
            }
            if self.conn.read_tls(&mut self.sock)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            self.conn
                .process_new_packets()
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        }
    }
}

/// Seals `plaintext` into TLS records with `conn`, to be written later.
fn seal(conn: &mut rustls::ClientConnection, plaintext: &[u8]) -> Vec<u8> {
    let mut records = Vec::new();
    let mut rest = plaintext;
    while !rest.is_empty() {
        let n = conn.writer().write(rest).unwrap();
        rest = &rest[n..];
        while conn.wants_write() {
            conn.write_tls(&mut records).unwrap();
        }
    }
    records
}

/// A rustls session over a new connection to `server`, handshake done.
fn tls_connect(server: SocketAddr, identity: &Identity) -> (rustls::ClientConnection, TcpStream) {
    let mut sock = TcpStream::connect(server).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(identity.client_config(), name).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    (conn, sock)
}

/// [`tls_connect`], then the upgrade (the 101 read byte by byte, so that
/// nothing after it is consumed).
fn tls_upgraded(server: SocketAddr, identity: &Identity) -> TlsReader {
    let (conn, sock) = tls_connect(server, identity);
    let mut stream = rustls::StreamOwned::new(conn, sock);
    stream.write_all(UPGRADE.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    TlsReader {
        conn: stream.conn,
        sock: stream.sock,
    }
}

/// The records a TLS client starts with (its ClientHello).
fn client_hello(identity: &Identity) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut hello = Vec::new();
    rustls::ClientConnection::new(identity.client_config(), name)
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    hello
}

/// The process's resident memory now (`VmRSS`) or at its peak (`VmHWM`),
/// in bytes (Linux).
fn memory(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Waits (bounded, polling the server's own state) until `done` holds.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// 5. The memory budget
// ---------------------------------------------------------------------------

/// Set in the child process of the memory budget test (it measures the
/// process's memory, so it runs alone).
const MEMORY_CHILD: &str = "SNOWSOCKET_TEST_MEMORY_CHILD";

const BUDGET: usize = 8 << 20;
/// How much of its 16 MiB frame each stalled peer sends.
const STALLED_AT: usize = 2 << 20;

/// What a stalled peer saw.
#[derive(Debug)]
enum Stalled {
    /// Refused: the server's Close with this code, then how the stream
    /// ended; the peer keeps its socket open.
    Refused {
        code: Option<u16>,
        end: End,
        _socket: TcpStream,
    },
    /// Still open: nothing came.
    Open { _socket: TcpStream },
}

/// A peer that sends the header of a 16 MiB binary frame and
/// [`STALLED_AT`] bytes of its payload in 64 KiB pieces, then stalls.
fn stall_inside_a_big_frame(addr: SocketAddr, piece: Arc<Vec<u8>>) -> Stalled {
    let mut raw = Raw::connect(addr);
    let head = snowsocket_tests::header(true, 0, 2, Some([1, 2, 3, 4]), 16 << 20);
    raw.send(&head);
    for _ in 0..STALLED_AT / piece.len() {
        raw.send(&piece);
    }
    raw.stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    match read_close(&mut raw.stream, core::mem::take(&mut raw.buf)) {
        (None, End::TimedOut) => Stalled::Open {
            _socket: raw.stream,
        },
        (code, end) => Stalled::Refused {
            code,
            end,
            _socket: raw.stream,
        },
    }
}

/// 20 peers each stall inside a 16 MiB frame after 2 MiB of it, against
/// `memory_budget(8 MiB)`: the server keeps those that fit (at least one,
/// at most 4) and refuses the rest with 1009 (each reads it, then EOF);
/// the process's peak resident memory grows by less than the budget plus
/// 16 MiB (without a budget, 20 × 2 MiB = 40 MiB); the kept ones stay
/// open. Once they hang up, the budget is free again for a 5 MiB message,
/// although the refused peers never hang up (the server waits for their
/// EOF up to the close timeout): a connection that failed holds no
/// reassembly memory.
fn memory_budget_child() {
    let connection = NO_PINGS
        .max_message_size(16 << 20)
        .max_frame_size(16 << 20)
        .close_timeout(Duration::from_secs(30));
    let config = ServerConfig::default()
        .connection(connection)
        .memory_budget(BUDGET);
    let (server, events) = start(config, None);
    let addr = server.local_addr();
    let piece = Arc::new(vec![0xa5u8; 64 << 10]);
    let baseline = memory("VmRSS:");
    let peers: Vec<_> = (0..20)
        .map(|_| {
            let piece = Arc::clone(&piece);
            thread::spawn(move || stall_inside_a_big_frame(addr, piece))
        })
        .collect();
    let outcomes: Vec<Stalled> = peers.into_iter().map(|p| p.join().unwrap()).collect();
    let peak = memory("VmHWM:").saturating_sub(baseline);
    let kept = outcomes
        .iter()
        .filter(|o| matches!(o, Stalled::Open { .. }))
        .count();
    eprintln!(
        "kept {kept} of 20; peak growth {} KiB (budget {} KiB)",
        peak >> 10,
        BUDGET >> 10
    );
    for outcome in &outcomes {
        if let Stalled::Refused { code, end, .. } = outcome {
            assert_eq!((*code, *end), (Some(1009), End::Eof), "a refused peer");
        }
    }
    assert!(
        (1..=BUDGET / STALLED_AT).contains(&kept),
        "{kept} kept within an {BUDGET}-byte budget"
    );
    assert!(
        peak < BUDGET + (16 << 20),
        "peak resident memory grew by {} KiB",
        peak >> 10
    );
    let (open, refused): (Vec<Stalled>, Vec<Stalled>) = outcomes
        .into_iter()
        .partition(|o| matches!(o, Stalled::Open { .. }));
    drop(open);
    for _ in 0..kept {
        assert_eq!(events.close().1.cause, CloseCause::UnexpectedEof);
    }
    // The budget is free, with the refused peers still connected.
    let mut ws = tung_ws(&server);
    ws.send(tungstenite::Message::binary(vec![7u8; 5 << 20]))
        .unwrap();
    match ws.read() {
        Ok(tungstenite::Message::Binary(echoed)) => assert_eq!(echoed.len(), 5 << 20),
        other => panic!("expected the 5 MiB echo, got {other:?}"),
    }
    close_tungstenite(&mut ws);
    assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
    drop(refused);
    for _ in 0..20 - kept {
        let (_, info) = events.close();
        assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG), "{info:?}");
    }
    server.shutdown();
}

#[test]
fn stalled_big_frames_are_held_to_the_memory_budget() {
    if std::env::var_os(MEMORY_CHILD).is_some() {
        bounded(40, memory_budget_child);
        return;
    }
    bounded(60, || {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "stalled_big_frames_are_held_to_the_memory_budget",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(MEMORY_CHILD, "1")
            .output()
            .unwrap();
        // The child must have run this very test (an exact name that no
        // longer matches would run nothing and pass).
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child ran no test:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprint!(
            "{}",
            stderr
                .lines()
                .filter(|l| l.starts_with("kept"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            output.status.success(),
            "child: {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout),
        );
    });
}
