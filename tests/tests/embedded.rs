//! Embedded and WASI targets, through the public API:
//!
//! - `wss://` from a `no_std` stack: `snowsocket_embedded_tls`
//!   (snowsocket-core's blocking driver over embedded-tls over
//!   `snowsocket_core::std_io::StdIo<TcpStream>`) against
//!   snowsocket-server over wss://, with a CA and an ECDSA P-256 server
//!   certificate made here (rcgen); a wrong CA or host name must fail. The
//!   client's messages, ping and close are checked on both sides.
//! - The WASI echo server (`examples/wasi-echo`, wasm32-wasip2) under the
//!   wasmtime CLI, answered by a native client. It needs the `.wasm` and
//!   wasmtime, so it is `#[ignore]`d here and run by `scripts/wasi.sh`.
// A test binary: its helper functions (not only the #[test] ones) panic on
// purpose when an expectation fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::SystemTime;

use embedded_io_adapters::std::FromStd;
use rand_core::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256,
};
use snowsocket_core::handshake::{ClientRequest, HandshakeLimits};
use snowsocket_core::std_io::StdIo;
use snowsocket_core::{
    ClientSide, CloseCode, Config, Event, Instant, Message, MessageKind, Parts, SliceBuffer,
    WebSocket,
};
use snowsocket_embedded_tls::{
    self as embedded_tls, ConnectError, TlsBuffers, TlsClock, TlsError, Verify, TLS_READ_BUFFER,
    TLS_WRITE_BUFFER,
};
use snowsocket_server::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};
use snowsocket_server::{
    CloseCause, CloseInfo, ConnectionHandle, Handler, Message as ServerMessage, Server,
    ServerConfig, ServerHandle,
};

/// How long any one step may take before the test gives up.
const LIMIT: Duration = Duration::from_secs(20);
/// The client's thread stack: the TLS handshake with certificate
/// verification is stack-hungry in unoptimised builds, and the client keeps
/// its buffers on its stack (no allocator in its code path).
const CLIENT_STACK: usize = 4 << 20;

/// A CA and a server certificate for `names`, ECDSA P-256.
struct Pki {
    ca_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "snowsocket test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let server = snowsocket_server::tls::server_config_from_der(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        server,
    }
}

/// The wall clock for certificate validity, as embedded-tls asks for it.
struct WallClock;

impl TlsClock for WallClock {
    fn now() -> Option<u64> {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// The driver's monotonic clock.
fn clock() -> impl FnMut() -> Instant {
    let start = std::time::Instant::now();
    move || Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// A message the server echoed.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Text(String),
    Binary(Vec<u8>),
}

/// What the server's handler reports.
#[derive(Debug)]
enum Record {
    Connected,
    Echoed(Seen),
    Closed(CloseInfo),
}

/// An echo handler that reports what happens.
struct Recorder(mpsc::Sender<Record>);

impl Handler for Recorder {
    fn on_connect(&self, _: &ConnectionHandle) {
        let _ = self.0.send(Record::Connected);
    }

    fn on_message(&self, conn: &ConnectionHandle, message: ServerMessage<'_>) {
        let (sent, seen) = match message {
            ServerMessage::Text(t) => (conn.send_text(t), Seen::Text(t.to_owned())),
            ServerMessage::Binary(b) => (conn.send_binary(b), Seen::Binary(b.to_vec())),
        };
        assert!(sent.is_ok(), "{sent:?}");
        let _ = self.0.send(Record::Echoed(seen));
    }

    fn on_close(&self, _: &ConnectionHandle, info: CloseInfo) {
        let _ = self.0.send(Record::Closed(info));
    }
}

/// snowsocket-server over wss:// with `tls`, echoing.
fn serve(tls: Arc<rustls::ServerConfig>) -> (SocketAddr, ServerHandle, mpsc::Receiver<Record>) {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(tls)).unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    (addr, server.spawn(Recorder(tx)).unwrap(), rx)
}

/// The server's records for one connection, up to its close.
fn records_until_closed(rx: &mpsc::Receiver<Record>) -> (Vec<Seen>, CloseInfo) {
    assert!(matches!(rx.recv_timeout(LIMIT).unwrap(), Record::Connected));
    let mut echoed = Vec::new();
    loop {
        match rx.recv_timeout(LIMIT).unwrap() {
            Record::Echoed(seen) => echoed.push(seen),
            Record::Closed(info) => return (echoed, info),
            Record::Connected => panic!("a second connection"),
        }
    }
}

/// Checks how the server saw the client's session end.
fn assert_clean_close(rx: &mpsc::Receiver<Record>) {
    let (echoed, info) = records_until_closed(rx);
    assert_eq!(echoed, expected_echoes());
    assert_eq!(info.cause, CloseCause::PeerClosed);
    assert_eq!(info.code, Some(CloseCode::NORMAL));
    assert_eq!(info.reason, "done");
}

/// What the client did, for the test to check.
#[derive(Debug, Default)]
struct ClientRun {
    echoes: Vec<Seen>,
    pong: Option<Vec<u8>>,
    heartbeat_pongs: usize,
    closed_cleanly: bool,
}

/// Runs `f` on a thread with a big stack and waits for it (bounded).
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .stack_size(CLIENT_STACK)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(LIMIT * 2).expect("client thread timed out")
}

/// Why `StdIo` exists: a std socket read timeout (`WouldBlock` on Unix)
/// reaches embedded-io through `FromStd` as `ErrorKind::Other`, which the
/// driver treats as a transport failure; through `StdIo` it is a clock tick.
#[test]
#[cfg(unix)]
fn std_io_reports_a_socket_read_timeout_as_a_tick_where_from_std_says_other() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _peer = listener.accept().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut adapted = FromStd::new(socket.try_clone().unwrap());
    let e = embedded_io::Read::read(&mut adapted, &mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(embedded_io::Error::kind(&e), embedded_io::ErrorKind::Other);
    let mut ticking = StdIo::new(socket);
    let e = embedded_io::Read::read(&mut ticking, &mut [0u8; 8]).unwrap_err();
    assert_eq!(
        embedded_io::Error::kind(&e),
        embedded_io::ErrorKind::TimedOut
    );
    assert_eq!(e.0.kind(), std::io::ErrorKind::WouldBlock);
}

/// The client session: TLS + WebSocket handshakes, then text, binary, a
/// fragmented message, a ping, optionally a wait for a heartbeat pong, and a
/// clean close. Fixed buffers on this thread's stack only.
fn run_client<T: embedded_io::Read + embedded_io::Write>(
    transport: T,
    ca_der: &[u8],
    server_name: &str,
    config: Config,
    wait_for_heartbeat: bool,
) -> Result<ClientRun, ConnectError> {
    let mut tls_read = [0u8; TLS_READ_BUFFER];
    let mut tls_write = [0u8; TLS_WRITE_BUFFER];
    let mut ws_read = [0u8; 4096];
    let mut ws_write = [0u8; 4096];
    let mut message = [0u8; 32 << 10];
    let verify = Verify {
        ca_der,
        server_name,
        clock: WallClock,
    };
    let parts = Parts {
        read_buf: &mut ws_read,
        write_buf: &mut ws_write,
        message_buf: SliceBuffer::new(&mut message[..]),
        rng: OsRng,
        clock: clock(),
        config,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(LIMIT),
    };
    let request = ClientRequest::new("localhost", "/echo");
    let (mut ws, _) = embedded_tls::connect(
        transport,
        TlsBuffers {
            read: &mut tls_read,
            write: &mut tls_write,
        },
        &verify,
        parts,
        &request,
    )?;
    let mut run = ClientRun::default();
    let ws_err = ConnectError::WebSocket;

    ws.send_text("hello over embedded-tls").map_err(ws_err)?;
    if let Some(Message::Text(t)) = ws.read_message().map_err(ws_err)? {
        run.echoes.push(Seen::Text(t.to_owned()));
    }
    // Larger than one TLS record: the driver streams it through its buffer,
    // embedded-tls splits it into records, the server gets it whole.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    ws.send_binary(&big).map_err(ws_err)?;
    if let Some(Message::Binary(b)) = ws.read_message().map_err(ws_err)? {
        run.echoes.push(Seen::Binary(b.to_vec()));
    }
    ws.send_fragment(MessageKind::Text, b"frag", false)
        .map_err(ws_err)?;
    ws.send_fragment(MessageKind::Text, b"mented ", false)
        .map_err(ws_err)?;
    ws.send_fragment(MessageKind::Text, b"message", true)
        .map_err(ws_err)?;
    if let Some(Message::Text(t)) = ws.read_message().map_err(ws_err)? {
        run.echoes.push(Seen::Text(t.to_owned()));
    }
    ws.ping(b"are you there").map_err(ws_err)?;
    match ws.read().map_err(ws_err)? {
        Event::Pong(p) => run.pong = Some(p.to_vec()),
        other => panic!("unexpected event {other:?}"),
    }
    if wait_for_heartbeat {
        // Nothing is sent now: only the driver's heartbeat (serviced on the
        // transport's read timeouts, which RecordTicks lets through at TLS
        // record boundaries) makes the server answer.
        match ws.read().map_err(ws_err)? {
            Event::Pong(_) => run.heartbeat_pongs += 1,
            other => panic!("unexpected event {other:?}"),
        }
    }
    ws.close(CloseCode::NORMAL, "done").map_err(ws_err)?;
    run.closed_cleanly = ws.connection().is_closed();
    embedded_tls::finish(ws).map_err(ConnectError::Tls)?;
    Ok(run)
}

fn expected_echoes() -> Vec<Seen> {
    vec![
        Seen::Text("hello over embedded-tls".into()),
        Seen::Binary((0..20_000u32).map(|i| (i % 251) as u8).collect()),
        Seen::Text("fragmented message".into()),
    ]
}

#[test]
fn wss_client_from_no_std_parts_exchanges_messages_and_closes() {
    let pki = pki(&["localhost"]);
    let (addr, server, records) = serve(pki.server);
    let ca = pki.ca_der;
    let run = on_big_stack(move || {
        let socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        run_client(StdIo::new(socket), &ca, "localhost", Config::DEFAULT, false)
    })
    .unwrap();
    assert_eq!(run.echoes, expected_echoes());
    assert_eq!(run.pong.as_deref(), Some(&b"are you there"[..]));
    assert!(run.closed_cleanly);
    assert_clean_close(&records);
    server.shutdown();
}

#[test]
fn heartbeat_ticks_pass_through_tls_at_record_boundaries() {
    let pki = pki(&["localhost"]);
    let (addr, server, records) = serve(pki.server);
    let ca = pki.ca_der;
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_millis(150)))
        .pong_timeout(Duration::from_secs(5));
    let run = on_big_stack(move || {
        let socket = TcpStream::connect(addr).unwrap();
        // Short read timeouts: many of them land while the client waits,
        // each a clock tick for the driver.
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        run_client(StdIo::new(socket), &ca, "localhost", config, true)
    })
    .unwrap();
    assert_eq!(run.echoes, expected_echoes());
    assert_eq!(run.heartbeat_pongs, 1);
    assert!(run.closed_cleanly);
    assert_clean_close(&records);
    server.shutdown();
}

/// Connects with `ca_der` and `server_name`; returns the client's error.
fn handshake_error(pki: Pki, ca_der: Vec<u8>, server_name: &'static str) -> ConnectError {
    let (addr, server, records) = serve(pki.server);
    let result = on_big_stack(move || {
        let socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        run_client(
            StdIo::new(socket),
            &ca_der,
            server_name,
            Config::DEFAULT,
            false,
        )
    });
    // The server never got as far as a WebSocket (shutdown joins its
    // threads, so every record is in by then).
    server.shutdown();
    assert!(records.try_iter().next().is_none());
    match result {
        Ok(run) => panic!("handshake succeeded: {run:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let pki_used = pki(&["localhost"]);
    let other_ca = pki(&["localhost"]).ca_der;
    let e = handshake_error(pki_used, other_ca, "localhost");
    assert!(
        matches!(
            e,
            ConnectError::Tls(TlsError::InvalidCertificate | TlsError::InvalidSignature)
        ),
        "{e:?}"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = pki(&["localhost"]);
    let ca = pki.ca_der.clone();
    let e = handshake_error(pki, ca, "example.com");
    assert!(
        matches!(e, ConnectError::Tls(TlsError::InvalidCertificate)),
        "{e:?}"
    );
}

#[test]
fn an_oversized_tls_write_buffer_is_refused_up_front() {
    let mut read = vec![0u8; TLS_READ_BUFFER];
    let mut write = vec![0u8; TLS_WRITE_BUFFER + 1];
    let (mut ws_read, mut ws_write) = ([0u8; 512], [0u8; 512]);
    let parts = Parts {
        read_buf: &mut ws_read,
        write_buf: &mut ws_write,
        message_buf: SliceBuffer::new([0u8; 64]),
        rng: OsRng,
        clock: clock(),
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: None,
    };
    // Never touched: the check comes before any I/O.
    let transport = StdIo::new(
        TcpStream::connect(
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap(),
        )
        .unwrap(),
    );
    let verify = Verify {
        ca_der: &[],
        server_name: "localhost",
        clock: WallClock,
    };
    let result = embedded_tls::connect(
        transport,
        TlsBuffers {
            read: &mut read,
            write: &mut write,
        },
        &verify,
        parts,
        &ClientRequest::new("localhost", "/"),
    );
    assert!(matches!(result, Err(ConnectError::WriteBufferTooLarge)));
}

/// The WASI echo server under wasmtime: `SNOWSOCKET_WASI_ECHO` names the
/// `.wasm` (wasm32-wasip2) and `WASMTIME` the CLI (default `wasmtime`).
/// Run by scripts/wasi.sh.
#[test]
#[ignore = "needs the wasm32-wasip2 build and wasmtime: run scripts/wasi.sh"]
fn wasi_echo_server_answers_a_native_client() {
    let wasm = std::env::var("SNOWSOCKET_WASI_ECHO").expect("SNOWSOCKET_WASI_ECHO");
    let wasmtime = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    let child = Command::new(wasmtime)
        .args(["run", "-S", "inherit-network=y", &wasm, "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wasmtime");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = loop {
        let line = rx
            .recv_timeout(LIMIT)
            .expect("the server printed no address");
        if let Some(url) = line.strip_prefix("listening on ws://") {
            break url.trim_end_matches('/').parse().unwrap();
        }
    };
    // The server is single-threaded and serves one connection at a time:
    // three clients one after the other, each echoed and closed cleanly.
    for i in 0..3 {
        let mut ws = native_client(addr);
        echo_round(&mut ws, &format!("client {i}"));
        ws.close(CloseCode::NORMAL, "bye").unwrap();
        assert!(ws.connection().is_closed());
    }
}

type NativeWs = WebSocket<
    'static,
    StdIo<TcpStream>,
    Vec<u8>,
    OsRng,
    Box<dyn FnMut() -> Instant + Send>,
    ClientSide,
>;

fn native_client(addr: SocketAddr) -> NativeWs {
    let socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let parts = Parts {
        read_buf: Vec::leak(vec![0u8; 8192]),
        write_buf: Vec::leak(vec![0u8; 8192]),
        message_buf: Vec::new(),
        rng: OsRng,
        clock: Box::new(clock()) as Box<dyn FnMut() -> Instant + Send>,
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(LIMIT),
    };
    let host = addr.to_string();
    let request = ClientRequest::new(&host, "/");
    WebSocket::connect(StdIo::new(socket), parts, &request)
        .unwrap()
        .0
}

fn echo_round(ws: &mut NativeWs, text: &str) {
    ws.send_text(text).unwrap();
    assert_eq!(ws.read_message().unwrap(), Some(Message::Text(text)));
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    ws.send_binary(&data).unwrap();
    assert_eq!(ws.read_message().unwrap(), Some(Message::Binary(&data[..])));
    ws.ping(b"p").unwrap();
    assert_eq!(ws.read().unwrap(), Event::Pong(b"p"));
}

/// Kills the wasmtime process when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
