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
// 1. Closes that peers receive
// ---------------------------------------------------------------------------

/// The server's message and frame limit in these tests.
const LIMIT: usize = 64 << 10;
/// What the peers send: 16 times the limit.
const OVERSIZED: usize = 1 << 20;

fn limited() -> ServerConfig {
    ServerConfig::default().connection(NO_PINGS.max_message_size(LIMIT).max_frame_size(LIMIT))
}

/// One message of [`OVERSIZED`] bytes as client frames: one frame (refused
/// on its header), or 16 KiB fragments (refused once they pass the limit,
/// in the middle of the stream).
fn oversized(fragmented: bool) -> Vec<u8> {
    if !fragmented {
        return client_frame(true, OpCode::Binary, &payload(OVERSIZED));
    }
    let piece = payload(16 << 10);
    let count = OVERSIZED / piece.len();
    let mut bytes = Vec::new();
    for i in 0..count {
        let opcode = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        bytes.extend(client_frame(i + 1 == count, opcode, &piece));
    }
    bytes
}

/// Writes `bytes` on a thread, in pieces, as a client that keeps sending
/// regardless of what the server said; returns how far it got.
fn keep_sending(
    mut sock: TcpStream,
    bytes: Arc<Vec<u8>>,
) -> thread::JoinHandle<std::io::Result<()>> {
    thread::spawn(move || {
        for piece in bytes.chunks(16 << 10) {
            sock.write_all(piece)?;
        }
        Ok(())
    })
}

/// Reads the server's frames (after `buf`) while `writer` sends: the
/// Close must be 1009 and the stream must then end cleanly, and every
/// write must have gone through.
fn read_1009_while_sending(
    reader: &mut impl Read,
    buf: Vec<u8>,
    writer: thread::JoinHandle<std::io::Result<()>>,
    round: usize,
) {
    let (code, end) = read_close(reader, buf);
    assert_eq!((code, end), (Some(1009), End::Eof), "round {round}");
    let written = writer.join().unwrap();
    assert!(
        written.is_ok(),
        "round {round}: the peer's writes: {written:?}"
    );
}

/// A client streaming a message past the size limit reads the server's
/// 1009 every time, then a clean end (EOF; under TLS close_notify first),
/// never a reset; its writes all go through (the server reads and drops
/// them after its Close); `on_close` reports the 1009.
///
/// Against an engine that closes the socket both ways right after its
/// Close, the kernel resets the connection (unread input), destroying the
/// Close in flight: the peer reads a reset (or EOF) without the Close, and
/// its writes fail.
#[test]
fn a_peer_that_keeps_sending_past_the_limit_reads_1009_every_time() {
    bounded(60, || {
        let started = Instant::now();
        let (server, events) = start(limited(), None);
        let addr = server.local_addr();
        let single = Arc::new(oversized(false));
        let fragments = Arc::new(oversized(true));
        for round in 0..50 {
            let bytes = if round % 2 == 0 { &single } else { &fragments };
            let mut raw = Raw::connect(addr);
            let writer = keep_sending(raw.stream.try_clone().unwrap(), Arc::clone(bytes));
            let buf = core::mem::take(&mut raw.buf);
            read_1009_while_sending(&mut raw.stream, buf, writer, round);
            drop(raw);
            let (_, info) = events.close();
            assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG), "round {round}");
            assert!(
                matches!(info.cause, CloseCause::ProtocolError(_)),
                "round {round}: {info:?}"
            );
        }
        // tungstenite, as an independent client: its send of the whole
        // message goes through, then it reads the 1009 and a clean end.
        for round in 0..5 {
            let mut ws = tung_ws(&server);
            ws.send(tungstenite::Message::binary(payload(OVERSIZED)))
                .unwrap();
            match ws.read() {
                Ok(tungstenite::Message::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 1009, "tungstenite round {round}");
                }
                other => panic!("tungstenite round {round}: expected Close 1009, got {other:?}"),
            }
            match ws.read() {
                Err(tungstenite::Error::ConnectionClosed) => {}
                other => panic!("tungstenite round {round}: expected a clean end, got {other:?}"),
            }
            drop(ws);
            assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        }
        server.shutdown();
        eprintln!(
            "ws:// 50 raw + 5 tungstenite rounds: {:?}",
            started.elapsed()
        );
    });
}

/// The same over `wss://`: the client's records are sealed in advance and
/// written by another thread while it reads: it gets the 1009, then the
/// server's close_notify, never a reset.
#[test]
fn a_tls_peer_that_keeps_sending_past_the_limit_reads_1009_then_close_notify() {
    bounded(60, || {
        let started = Instant::now();
        let identity = tls::identity();
        let (server, events) = start(limited().tls(identity.server_config()), None);
        let addr = server.local_addr();
        for round in 0..6 {
            let mut reader = tls_upgraded(addr, &identity);
            let records = seal(&mut reader.conn, &oversized(round % 2 == 1));
            let writer = keep_sending(reader.sock.try_clone().unwrap(), Arc::new(records));
            read_1009_while_sending(&mut reader, Vec::new(), writer, round);
            drop(reader);
            assert_eq!(
                events.close().1.code,
                Some(CloseCode::MESSAGE_TOO_BIG),
                "round {round}"
            );
        }
        server.shutdown();
        eprintln!("wss:// 6 rounds: {:?}", started.elapsed());
    });
}

// ---------------------------------------------------------------------------
// 2. The handshake deadline, however the bytes arrive
// ---------------------------------------------------------------------------

/// The handshake timeout in these tests.
const HANDSHAKE: Duration = Duration::from_millis(500);
/// How often a trickler sends its next piece.
const TRICKLE: Duration = Duration::from_millis(100);

/// Sends `pieces` on `sock` one every [`TRICKLE`] (a slow peer, not a
/// synchronisation), from `connected` on, until the server drops the
/// connection. Returns when that was, after `connected`, and how many
/// pieces had gone out; fails if all went out first.
fn trickle(
    sock: TcpStream,
    connected: Instant,
    pieces: Vec<Vec<u8>>,
) -> thread::JoinHandle<(Duration, usize)> {
    let (dropped_tx, dropped) = mpsc::channel();
    let mut reader = sock.try_clone().unwrap();
    reader.set_read_timeout(Some(WAIT)).unwrap();
    // Whatever the server sends (TLS handshake records) is read and
    // dropped; its EOF (or a reset) is the drop.
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(1..) = reader.read(&mut buf) {}
        let _ = dropped_tx.send(connected.elapsed());
    });
    thread::spawn(move || {
        let mut sock = sock;
        let total = pieces.len();
        for (sent, piece) in pieces.into_iter().enumerate() {
            match dropped.recv_timeout(TRICKLE) {
                Ok(at) => return (at, sent),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!("trickle reader gone"),
            }
            if sock.write_all(&piece).is_err() {
                break;
            }
        }
        let at = dropped.recv_timeout(WAIT).expect("dropped by the server");
        panic!("all {total} pieces went out before the drop at {at:?}");
    })
}

fn bytes_one_by_one(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.iter().map(|b| vec![*b]).collect()
}

/// Every handshake ends at `handshake_timeout` counted from the TCP accept,
/// however slowly its bytes come: a ClientHello trickled a byte at a time;
/// over a finished TLS handshake, an upgrade request trickled byte by byte
/// in one record or one record per byte; a plain TCP upgrade request
/// trickled byte by byte. Each trickle alone would take 15 s or more.
///
/// An engine that times only the silence between reads (a socket read
/// timeout) never drops the TLS ones: a byte comes every 100 ms.
#[test]
fn trickled_handshakes_are_dropped_at_the_deadline_over_tls_and_tcp() {
    bounded(30, || {
        let identity = tls::identity();
        let (wss, _wss_events) = start(
            ServerConfig::default()
                .handshake_timeout(HANDSHAKE)
                .tls(identity.server_config()),
            None,
        );
        let (ws, _ws_events) = start(ServerConfig::default().handshake_timeout(HANDSHAKE), None);
        let mut tricklers = Vec::new();

        // A ClientHello, a byte at a time.
        let connected = Instant::now();
        let sock = TcpStream::connect(wss.local_addr()).unwrap();
        let hello = client_hello(&identity);
        tricklers.push((
            "ClientHello",
            trickle(sock, connected, bytes_one_by_one(&hello)),
        ));

        // TLS done, then the request in one record, a byte at a time.
        let connected = Instant::now();
        let (mut conn, sock) = tls_connect(wss.local_addr(), &identity);
        let record = seal(&mut conn, UPGRADE.as_bytes());
        tricklers.push((
            "one record",
            trickle(sock, connected, bytes_one_by_one(&record)),
        ));

        // TLS done, then one record per byte of the request.
        let connected = Instant::now();
        let (mut conn, sock) = tls_connect(wss.local_addr(), &identity);
        let records = UPGRADE.bytes().map(|b| seal(&mut conn, &[b])).collect();
        tricklers.push(("a record per byte", trickle(sock, connected, records)));

        // Plain TCP: the request a byte at a time.
        let connected = Instant::now();
        let sock = TcpStream::connect(ws.local_addr()).unwrap();
        tricklers.push((
            "plain",
            trickle(sock, connected, bytes_one_by_one(UPGRADE.as_bytes())),
        ));

        for (what, trickler) in tricklers {
            let (at, sent) = trickler.join().unwrap();
            eprintln!("{what}: dropped after {at:?}, {sent} pieces sent");
            assert!(
                at >= HANDSHAKE - Duration::from_millis(50) && at < HANDSHAKE + Duration::from_secs(1),
                "{what}: dropped after {at:?} ({sent} pieces sent), not at the {HANDSHAKE:?} deadline"
            );
        }
        wait_for("no handshake left", WAIT, || {
            wss.handshaking() == 0 && ws.handshaking() == 0
        });
        // Both still serve.
        echo_round_trips(&mut tung_wss(&wss, &identity), &[10]);
        echo_round_trips(&mut tung_ws(&ws), &[10]);
        wss.shutdown();
        ws.shutdown();
    });
}

// ---------------------------------------------------------------------------
// 3. Handshakes do not crowd out established users
// ---------------------------------------------------------------------------

const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Connections that send the start of an upgrade request and then trickle
/// its last header, a byte each every [`TRICKLE`] (one thread for all of
/// them), until dropped.
struct Tricklers {
    socks: Arc<Vec<TcpStream>>,
    stop: mpsc::Sender<()>,
    rounds: mpsc::Receiver<()>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The start of an upgrade request whose last header never ends (the
/// tricklers add a byte to it every [`TRICKLE`]).
const SLOW_REQUEST: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nX-Slow: ";

impl Tricklers {
    fn start(server: SocketAddr, from: &[(Ipv4Addr, usize)]) -> Self {
        let socks: Vec<TcpStream> = from
            .iter()
            .flat_map(|&(ip, n)| (0..n).map(move |_| connect_from(server, ip, None)))
            .collect();
        for mut sock in &socks {
            sock.write_all(SLOW_REQUEST.as_bytes()).unwrap();
            sock.set_nonblocking(true).unwrap();
        }
        let socks = Arc::new(socks);
        let (stop, stopped) = mpsc::channel::<()>();
        let (round_done, rounds) = mpsc::channel::<()>();
        let shared = Arc::clone(&socks);
        let thread = thread::spawn(move || {
            for _ in 0..1000 {
                if stopped.recv_timeout(TRICKLE) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                for mut sock in shared.iter() {
                    let _ = sock.write(b"a");
                }
                let _ = round_done.send(());
            }
        });
        Self {
            socks,
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Waits until each has trickled `n` more bytes.
    fn trickled(&self, n: usize) {
        for _ in 0..n {
            self.rounds.recv_timeout(WAIT).expect("a trickle round");
        }
    }

    /// How many the server has closed (EOF or reset).
    fn closed(&self) -> usize {
        let mut buf = [0u8; 64];
        self.socks
            .iter()
            .filter(|sock| match (&**sock).read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            })
            .count()
    }
}

impl Drop for Tricklers {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// 45 connections trickling their upgrade requests, from three addresses,
/// against `max_pending_handshakes(20)`, `max_handshakes_per_ip(10)` and
/// `max_connections(4)`: at most 10 per address and 20 in all are held
/// (the rest closed at once), a client from a fourth address upgrades and
/// echoes promptly while one address's tricklers hold their slots, and the
/// established clients keep echoing however many are pending.
///
/// An engine that counts handshaking connections toward
/// `max_connections` answers the newcomer 503 (or makes it wait).
#[test]
fn trickling_handshakes_do_not_crowd_out_established_users() {
    bounded(30, || {
        let config = ServerConfig::default()
            .max_pending_handshakes(20)
            .max_handshakes_per_ip(10)
            .max_connections(4)
            .handshake_timeout(Duration::from_secs(20));
        let (server, events) = start(config, None);
        let addr = server.local_addr();
        let mut before = tung_ws(&server);
        events.connection();

        // 15 from 127.0.0.1: 10 held, 5 closed at once.
        let first = Tricklers::start(addr, &[(LOCALHOST, 15)]);
        wait_for("10 tricklers held, 5 closed", WAIT, || {
            server.handshaking() == 10 && first.closed() == 5
        });
        first.trickled(3);
        // A newcomer from elsewhere upgrades and echoes at once.
        let started = Instant::now();
        let stream = connect_from(addr, Ipv4Addr::new(127, 0, 0, 2), None);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut newcomer, _) = tungstenite::client(url(&server, false), stream).unwrap();
        echo_round_trips(&mut newcomer, &[100]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "the newcomer took {took:?}");
        events.connection();

        // 30 more from two other addresses: 10 held from each of them,
        // but 20 in all.
        let more = Tricklers::start(
            addr,
            &[
                (Ipv4Addr::new(127, 0, 0, 3), 15),
                (Ipv4Addr::new(127, 0, 0, 4), 15),
            ],
        );
        wait_for("20 held in all, 20 of the 30 closed", WAIT, || {
            server.handshaking() == 20 && more.closed() == 20
        });
        more.trickled(3);
        assert_eq!(first.closed(), 5, "the first ones keep their slots");
        // The established ones are served as before, promptly.
        let started = Instant::now();
        echo_round_trips(&mut before, &[100, 10_000]);
        echo_round_trips(&mut newcomer, &[100, 10_000]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "echoes took {took:?}");
        assert_eq!(server.connections(), 2);
        // A newcomer now finds the handshake slots full: it is closed at
        // once, not kept waiting.
        let started = Instant::now();
        let mut late = connect_from(addr, Ipv4Addr::new(127, 0, 0, 5), None);
        late.set_read_timeout(Some(WAIT)).unwrap();
        late.write_all(UPGRADE.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(late.read(&mut buf), Ok(0) | Err(_)), "refused");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop((first, more));
        wait_for("the slots given back", WAIT, || server.handshaking() == 0);
        close_tungstenite(&mut before);
        close_tungstenite(&mut newcomer);
        server.shutdown();
    });
}

/// With `max_connections(2)` reached over `wss://` and a TLS client stuck
/// in its handshake (a ClientHello trickled a byte at a time), a third
/// client gets its 503 within a second.
///
/// An engine with one thread for refusals, blocked by the stuck
/// handshake, answers it only at the handshake timeout.
#[test]
fn over_the_limit_tls_clients_get_503_promptly_while_a_handshake_is_stuck() {
    bounded(30, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .max_connections(2)
            .handshake_timeout(Duration::from_secs(20))
            .tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut a = tung_wss(&server, &identity);
        let mut b = tung_wss(&server, &identity);
        events.connection();
        events.connection();
        // Stuck: half a ClientHello, trickled; and one done with TLS that
        // never sends its request.
        let mut hello = client_hello(&identity);
        hello.truncate(hello.len() / 2);
        let mut hello_sock = TcpStream::connect(server.local_addr()).unwrap();
        hello_sock.write_all(&hello[..20]).unwrap();
        let trickler = trickle(hello_sock, Instant::now(), bytes_one_by_one(&hello[20..]));
        let _silent = tls_connect(server.local_addr(), &identity);
        wait_for("two stuck handshakes", WAIT, || server.handshaking() == 2);
        for round in 0..3 {
            let started = Instant::now();
            let stream = TcpStream::connect(server.local_addr()).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let stream = tls::client_stream(&identity, stream);
            match tungstenite::client::client(url(&server, true), stream) {
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                    assert_eq!(response.status(), 503, "round {round}");
                }
                Err(e) => panic!("round {round}: expected a 503, got {e}"),
                Ok(_) => panic!("round {round}: expected a 503, got a WebSocket"),
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "round {round}: the 503 took {took:?}"
            );
        }
        assert_eq!(server.handshaking(), 2, "the stuck ones are still stuck");
        echo_round_trips(&mut a, &[10]);
        echo_round_trips(&mut b, &[10]);
        close_tungstenite(&mut a);
        close_tungstenite(&mut b);
        server.shutdown();
        // The shutdown dropped the ClientHello trickler.
        let (at, sent) = trickler.join().unwrap();
        assert!(sent < hello.len() - 20, "dropped after {at:?}");
    });
}

/// How long a send or a broadcast may take at most: it never waits for a
/// peer (a blocking one would wait up to the write timeout, seconds), but
/// the machine may be busy.
const SENDS_RETURN_WITHIN: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------
// 4. write_timeout: the peer's progress, not the kernel's
// ---------------------------------------------------------------------------

/// Keeps output waiting for `conn` from this thread, as an application
/// pushing data would: sends a 16 KiB message whenever one is accepted,
/// and while the outbox is full, a small one every 10 ms (each accepted
/// send makes the loop try to write again). Returns how `conn` ended, and
/// the slowest send.
fn keep_queueing(
    conn: &ConnectionHandle,
    events: &snowsocket_tests::server::Events,
    limit: Duration,
) -> (snowsocket_server::CloseInfo, Duration) {
    let big = vec![0x5a; 16 << 10];
    let small = [0x5a; 64];
    let deadline = Instant::now() + limit;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let t = Instant::now();
        let result = conn.send_binary(&big);
        slowest = slowest.max(t.elapsed());
        match result {
            Ok(()) => continue,
            Err(SendError::Full { .. }) => {}
            Err(SendError::Closed) => break,
            Err(e) => panic!("send: {e}"),
        }
        let t = Instant::now();
        let result = conn.send_binary(&small);
        slowest = slowest.max(t.elapsed());
        if result == Err(SendError::Closed) {
            break;
        }
        match events.closed.recv_timeout(Duration::from_millis(10)) {
            Ok((id, info)) => {
                assert_eq!(id, conn.id());
                return (info, slowest);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("handler gone"),
        }
    }
    let (id, info) = events.close();
    assert_eq!(id, conn.id());
    (info, slowest)
}

/// A peer with a 4 KiB receive buffer completes the upgrade and then reads
/// nothing, while the server keeps output queued for it: it is failed with
/// `WriteTimeout` within `write_timeout` (1 s) + 1 s of the first send
/// (when it stopped taking data), however often the kernel takes a few
/// more bytes into the socket's send buffer. Sends never wait meanwhile.
/// Over `ws://` and `wss://`.
///
/// An engine that counts every byte the kernel takes as progress keeps
/// such a peer for 17–31 s with a 10 s write timeout; one whose sends
/// write before they return blocks the sender.
#[test]
fn a_peer_with_a_small_window_that_reads_nothing_fails_with_write_timeout() {
    bounded(30, || {
        let identity = tls::identity();
        for tls_on in [false, true] {
            let write_timeout = Duration::from_secs(1);
            let mut config = ServerConfig::default()
                .connection(NO_PINGS)
                .write_timeout(write_timeout)
                .max_buffered_bytes(256 << 10);
            if tls_on {
                config = config.tls(identity.server_config());
            }
            let (server, events) = start(config, None);
            let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
            let _deaf: Box<dyn Send> = if tls_on {
                let name = ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(identity.client_config(), name).unwrap();
                let mut stream = rustls::StreamOwned::new(conn, sock);
                stream.write_all(UPGRADE.as_bytes()).unwrap();
                let mut head = [0u8; 12];
                stream.read_exact(&mut head).unwrap();
                assert_eq!(&head, b"HTTP/1.1 101");
                Box::new(stream)
            } else {
                Box::new(Raw::upgrade(sock))
            };
            let conn = events.connection();
            let mut other = tung_ws_or_wss(&server, tls_on.then_some(&identity));
            events.connection();
            let started = Instant::now();
            let (info, slowest) = keep_queueing(&conn, &events, Duration::from_secs(20));
            let took = started.elapsed();
            eprintln!("tls {tls_on}: failed after {took:?} ({info:?}); slowest send {slowest:?}");
            assert_eq!(info.cause, CloseCause::WriteTimeout, "tls {tls_on}");
            assert!(
                took < write_timeout + Duration::from_secs(1),
                "tls {tls_on}: failed after {took:?}"
            );
            assert!(
                slowest < SENDS_RETURN_WITHIN,
                "tls {tls_on}: a send waited {slowest:?}"
            );
            // Only that one.
            other.round_trip(100);
            other.close();
            server.shutdown();
        }
    });
}

/// A tungstenite client over `ws://` or `wss://`.
enum Tung {
    Ws(Box<tungstenite::WebSocket<TcpStream>>),
    Wss(Box<tungstenite::WebSocket<snowsocket_tests::server::TlsClientStream>>),
}

fn tung_ws_or_wss(server: &ServerHandle, identity: Option<&Identity>) -> Tung {
    match identity {
        None => Tung::Ws(Box::new(tung_ws(server))),
        Some(identity) => Tung::Wss(Box::new(tung_wss(server, identity))),
    }
}

impl Tung {
    fn round_trip(&mut self, len: usize) {
        match self {
            Self::Ws(ws) => echo_round_trips(&mut **ws, &[len]),
            Self::Wss(ws) => echo_round_trips(&mut **ws, &[len]),
        }
    }

    fn close(&mut self) {
        match self {
            Self::Ws(ws) => close_tungstenite(&mut **ws),
            Self::Wss(ws) => close_tungstenite(&mut **ws),
        }
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

// ---------------------------------------------------------------------------
// 6. A slow peer never stalls senders or others
// ---------------------------------------------------------------------------

/// A peer that reads nothing, and 5 healthy tungstenite readers: sends to
/// the slow one from another thread return at once (`Ok` or `Full`, never
/// blocking); each of 20 broadcasts reaches every healthy reader within a
/// second and reports the slow one in `full`; once the slow peer reads
/// again, `on_drain` runs for it and its `buffered_amount` is back to 0.
///
/// An engine whose sends write before they return blocks the sender (and
/// a broadcast behind it) for up to the write timeout.
#[test]
fn a_slow_peer_never_stalls_senders_or_other_connections() {
    bounded(30, || {
        let config = ServerConfig::default()
            .connection(NO_PINGS)
            .write_timeout(Duration::from_secs(60))
            .max_buffered_bytes(256 << 10);
        let (server, events) = start(config, None);
        let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
        let mut slow = Raw::upgrade(sock);
        let slow_conn = events.connection();
        let (got_tx, got) = mpsc::channel();
        let readers: Vec<_> = (0..5)
            .map(|i| {
                let mut ws = tung_ws(&server);
                events.connection();
                let got_tx = got_tx.clone();
                thread::spawn(move || {
                    for _ in 0..20 {
                        let message = ws.read().unwrap().into_data();
                        got_tx.send((i, message[0], Instant::now())).unwrap();
                    }
                    close_tungstenite(&mut ws);
                })
            })
            .collect();

        // Fill the slow peer's outbox from another thread: one message far
        // larger than the kernel's send buffer can take (4 MiB at most; a
        // message larger than the bound goes into an empty outbox), then
        // sends that find it full. Each returns at once.
        let filler_conn = slow_conn.clone();
        let filler = thread::spawn(move || {
            let t = Instant::now();
            filler_conn.send_binary(&vec![1u8; 16 << 20]).unwrap();
            let mut slowest = t.elapsed();
            for _ in 0..100 {
                let t = Instant::now();
                let result = filler_conn.send_binary(&[1u8; 100]);
                slowest = slowest.max(t.elapsed());
                assert!(matches!(result, Err(SendError::Full { .. })), "{result:?}");
            }
            slowest
        });
        let slowest = filler.join().unwrap();
        assert!(slowest < SENDS_RETURN_WITHIN, "a send waited {slowest:?}");

        let mut message = vec![0u8; 32 << 10];
        for n in 0..20u8 {
            message[0] = n;
            let sent = Instant::now();
            let report = server.broadcast(Message::Binary(&message));
            let took = sent.elapsed();
            assert!(took < SENDS_RETURN_WITHIN, "broadcast {n} took {took:?}");
            assert_eq!(report.full, [slow_conn.id()], "broadcast {n}: {report:?}");
            assert_eq!(report.sent, 5, "broadcast {n}: {report:?}");
            for _ in 0..5 {
                let (i, first, at) = got
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_else(|e| panic!("broadcast {n} not delivered to all: {e}"));
                assert_eq!(first, n, "reader {i}: in order");
                assert!(
                    at - sent < Duration::from_secs(1),
                    "reader {i} got {n} late"
                );
            }
        }
        for reader in readers {
            reader.join().unwrap();
        }
        assert!(slow_conn.buffered_amount() > 0);

        // The slow peer reads again: on_drain, and nothing buffered.
        assert!(
            events.drained.try_recv().is_err(),
            "on_drain before the peer read"
        );
        slow.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let drainer = thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(1..) = slow.stream.read(&mut buf) {}
            slow
        });
        let drained = events.drained.recv_timeout(WAIT).expect("on_drain");
        assert_eq!(drained, slow_conn.id());
        assert_eq!(slow_conn.buffered_amount(), 0);
        let slow = drainer.join().unwrap();
        assert!(slow_conn.is_open());
        slow_conn.send_text("after").unwrap();
        drop(slow);
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// 7. The thread count is constant
// ---------------------------------------------------------------------------

/// 200 connections that each send one message (echoed) and stay open: the
/// server's threads are its event loops before, during and after, and
/// none once it has shut down.
///
/// An engine with a thread per active connection has 200 more.
#[test]
fn the_thread_count_is_the_event_loops_whatever_the_connections_do() {
    bounded(60, || {
        let (server, events) = start(ServerConfig::default().connection(NO_PINGS), None);
        let port = server.local_addr().port();
        let loops = server.event_loops();
        // The loops name their threads as they start.
        wait_for("the loops running", WAIT, || server_threads(port) >= loops);
        assert_eq!(server_threads(port), loops, "before");
        let mut clients = Vec::new();
        for i in 0..200 {
            let mut raw = Raw::connect(server.local_addr());
            let text = format!("hello {i}");
            raw.send(&client_frame(true, OpCode::Text, text.as_bytes()));
            assert_eq!(raw.frame(), Some((OpCode::Text, text.into_bytes())));
            clients.push(raw);
            if i % 50 == 49 {
                assert_eq!(server_threads(port), loops, "with {} connections", i + 1);
            }
        }
        for _ in 0..200 {
            events.connection();
        }
        assert_eq!(server.connections(), 200);
        assert_eq!(server_threads(port), loops, "with 200 open");
        drop(clients);
        for _ in 0..200 {
            events.close();
        }
        assert_eq!(server.connections(), 0);
        assert_eq!(server_threads(port), loops, "after");
        server.shutdown();
        assert_eq!(server_threads_after_join(port), 0);
    });
}

// ---------------------------------------------------------------------------
// 8. Graceful shutdown with peers that stopped reading
// ---------------------------------------------------------------------------

/// A shutdown with three peers: one that stopped reading with room left in
/// its buffers (it still gets its 1001), one that stopped reading with
/// everything full (it cannot), one that answers (tungstenite). The
/// shutdown returns within `shutdown_timeout` + 1.5 s, `on_close` ran
/// exactly once per connection (ServerShutdown, 1001), and every thread is
/// joined.
#[test]
fn graceful_shutdown_with_peers_that_stopped_reading() {
    bounded(30, || {
        let shutdown_timeout = Duration::from_millis(500);
        let config = ServerConfig::default()
            .connection(NO_PINGS)
            .write_timeout(Duration::from_secs(60))
            .shutdown_timeout(shutdown_timeout)
            .max_buffered_bytes(256 << 10);
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        // Stopped reading after one message: room for the Close.
        let mut roomy = Raw::connect(server.local_addr());
        roomy.send(&client_frame(true, OpCode::Text, b"hi"));
        assert_eq!(roomy.frame(), Some((OpCode::Text, b"hi".to_vec())));
        let roomy_id = events.connection().id();
        // Stopped reading with its outbox full.
        let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
        let full = Raw::upgrade(sock);
        let full_conn = events.connection();
        let chunk = vec![2u8; 32 << 10];
        let filled = (0..1000).find_map(|_| full_conn.send_binary(&chunk).err());
        assert!(matches!(filled, Some(SendError::Full { .. })), "{filled:?}");
        // Answers.
        let mut polite = tung_ws(&server);
        let polite_id = events.connection().id();
        let polite = thread::spawn(move || match polite.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                let code = u16::from(frame.code);
                // tungstenite answers on its next call.
                assert!(matches!(
                    polite.read(),
                    Err(tungstenite::Error::ConnectionClosed)
                ));
                code
            }
            other => panic!("expected Close 1001, got {other:?}"),
        });

        let started = Instant::now();
        server.shutdown();
        let took = started.elapsed();
        assert!(
            took < shutdown_timeout + Duration::from_millis(1500),
            "shutdown took {took:?}"
        );
        assert_eq!(server_threads_after_join(port), 0);

        let mut closes: Vec<(u64, snowsocket_server::CloseInfo)> =
            events.closed.try_iter().collect();
        assert!(
            events
                .closed
                .recv_timeout(Duration::from_millis(100))
                .is_err(),
            "no on_close after shutdown returned"
        );
        closes.sort_by_key(|(id, _)| *id);
        let mut ids: Vec<u64> = closes.iter().map(|(id, _)| *id).collect();
        let mut expected = vec![roomy_id, full_conn.id(), polite_id];
        expected.sort_unstable();
        ids.dedup();
        assert_eq!(ids, expected, "on_close once per connection: {closes:?}");
        assert_eq!(closes.len(), 3, "{closes:?}");
        for (_, info) in &closes {
            assert_eq!(info.cause, CloseCause::ServerShutdown, "{info:?}");
            assert_eq!(info.code, Some(CloseCode::GOING_AWAY), "{info:?}");
        }
        assert_eq!(polite.join().unwrap(), 1001);
        // The roomy one reads its Close now.
        assert_eq!(roomy.close_code(), Some(1001));
        assert_eq!(full_conn.send_text("after"), Err(SendError::Closed));
        drop(full);
    });
}
