//! snowsocket-server over real sockets on 127.0.0.1 (port 0), against
//! tungstenite as an independent peer and against hand-written frames.
//!
//! Every test runs its body under [`bounded`], which fails it after a
//! deadline instead of hanging; nothing sleeps to synchronise (channels say
//! "ready").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use snowsocket_core::{OpCode, Role};
use snowsocket_server::client::{self, ClientConfig, ClientError};
use snowsocket_server::{
    Accept, CloseCause, CloseCode, CloseInfo, Config, ConnectionHandle, Handler, Message,
    SendError, Server, ServerConfig, ServerHandle,
};
use snowsocket_tests::server::{
    big_tungstenite_config, bounded, client_frame, close_tungstenite, echo_round_trips, payload,
    server_threads, server_threads_after_join, start, text, tung_ws, tung_wss, url, AcceptHook,
    Raw, TlsClientStream, SLOW_WAIT, UPGRADE, WAIT,
};
use snowsocket_tests::tls::{self, Identity};
use snowsocket_tests::{close_payload, frame_from};

#[path = "server/handles.rs"]
mod handles;
#[path = "server/handshake.rs"]
mod handshake;
#[path = "server/idle.rs"]
mod idle;
#[path = "server/protocol.rs"]
mod protocol;
#[path = "server/senders.rs"]
mod senders;
#[path = "server/shutdown.rs"]
mod shutdown;
#[path = "server/with_tungstenite.rs"]
mod with_tungstenite;
#[allow(unused_imports)]
use handles::*;
#[allow(unused_imports)]
use handshake::*;
#[allow(unused_imports)]
use idle::*;
#[allow(unused_imports)]
use protocol::*;
#[allow(unused_imports)]
use senders::*;
#[allow(unused_imports)]
use shutdown::*;
#[allow(unused_imports)]
use with_tungstenite::*;

// ---------------------------------------------------------------------------
// A client that reads on its own thread
// ---------------------------------------------------------------------------

#[test]
fn spawned_client_keeps_the_heartbeat_while_the_application_only_sends() {
    bounded(20, || {
        // The server pings every 100 ms and gives up 300 ms later: a client
        // nobody reads from would be gone within half a second.
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(300));
        let (server, events) = start(ServerConfig::default().connection(connection), None);
        let client = client::connect(&url(&server, false), ClientConfig::default()).unwrap();
        let (tx, received) = mpsc::channel();
        let tx = Mutex::new(tx);
        let mut running = client
            .spawn(snowsocket_server::on_message(move |_conn, message| {
                let _ = tx.lock().unwrap().send(format!("{message:?}"));
            }))
            .unwrap();
        let conn = events.connection();
        let sender = running.sender();
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_millis(1200) {
            sender.send_text(&format!("m{sent}")).unwrap();
            sent += 1;
            thread::sleep(Duration::from_millis(50));
        }
        for i in 0..sent {
            let got = received.recv_timeout(WAIT).unwrap();
            assert_eq!(got, format!("Text(\"m{i}\")"));
        }
        assert!(conn.is_open(), "the server kept the connection");
        assert!(events.closed.try_recv().is_err());
        assert!(!running.is_finished());
        let info = running.close(CloseCode::NORMAL, "bye");
        assert_eq!(info.cause, CloseCause::ClosedByUs, "{info}");
        assert!(info.is_clean());
        let (_, server_side) = events.close();
        assert_eq!(server_side.cause, CloseCause::PeerClosed);
        assert_eq!(server_side.code, Some(CloseCode::NORMAL));
        server.shutdown();
    });
}

#[test]
fn spawned_client_reports_the_servers_close() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let client = client::connect(&url(&server, false), ClientConfig::default()).unwrap();
        let (tx, closed) = mpsc::channel();
        struct Report(Mutex<Sender<CloseInfo>>);
        impl Handler for Report {
            fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
                let _ = self.0.lock().unwrap().send(info);
            }
        }
        let running = client.spawn(Report(Mutex::new(tx))).unwrap();
        events
            .connection()
            .close(CloseCode::POLICY_VIOLATION, "go away")
            .unwrap();
        let info = closed.recv_timeout(WAIT).unwrap();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, Some(CloseCode::POLICY_VIOLATION));
        assert_eq!(info.reason, "go away");
        assert_eq!(running.join(), info);
        assert_eq!(events.close().1.cause, CloseCause::ClosedByUs);
        server.shutdown();
    });
}

/// `Duration::MAX` as "no limit" for every timer the configurations take
/// (no heartbeat, no close, handshake or shutdown deadline): the server and
/// the client work and shut down instead of panicking on time arithmetic.
#[test]
fn durations_meaning_never_are_accepted_everywhere() {
    bounded(30, || {
        let never = Config::DEFAULT
            .ping_interval(None)
            .fragment_timeout(None)
            .close_timeout(Duration::MAX);
        let config = ServerConfig::default()
            .connection(never)
            .handshake_timeout(Duration::MAX)
            .shutdown_timeout(Duration::MAX);
        let (server, events) = start(config, None);
        let client_config = ClientConfig::default()
            .connection(never)
            .handshake_timeout(Duration::MAX);
        let mut client = client::connect(&url(&server, false), client_config).unwrap();
        events.connection();
        client_round_trips(&mut client, &[1, 200, 70_000]);
        client.close(CloseCode::NORMAL, "bye").unwrap();
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

/// The number of connections waiting in the accept queue of the listener on
/// 127.0.0.1:`port` (Linux: `rx_queue` of the listening socket).
fn accept_backlog(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
        .and_then(|f| f.get(4)?.split(':').nth(1).map(str::to_owned))
        .map_or(0, |rx| usize::from_str_radix(&rx, 16).unwrap())
}

/// Connections over the limit that never send their request wait for their
/// 503 one at a time, a second each; a shutdown meanwhile does not wait for
/// all of them.
#[test]
fn shutdown_does_not_wait_for_refusals_of_silent_connections() {
    bounded(60, || {
        let config = ServerConfig::default()
            .max_connections(1)
            .shutdown_timeout(Duration::from_millis(200));
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        let _a = Raw::connect(server.local_addr());
        events.connection();
        let silent: Vec<TcpStream> = (0..8)
            .map(|_| TcpStream::connect(server.local_addr()).unwrap())
            .collect();
        wait_for("over-limit connections accepted", || {
            accept_backlog(port) == 0
        });
        let started = Instant::now();
        server.shutdown();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(3),
            "shutdown took {elapsed:?}"
        );
        assert_eq!(server_threads_after_join(port), 0);
        drop(silent);
    });
}

/// A rustls client stream to `server`, upgraded by hand (`UPGRADE`, the
/// 101 read byte by byte so that nothing after it is consumed).
fn tls_upgrade(server: &ServerHandle, identity: &Identity) -> TlsClientStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls_stream = tls::client_stream(identity, stream);
    tls_stream.write_all(UPGRADE.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls_stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tls_stream
}

/// A TLS peer that sends more bytes after its close_notify, arriving in the
/// same read: they are ignored (RFC 8446 §6.1) and the connection ends,
/// instead of the reader spinning on them with the session locked (rustls
/// takes no more bytes once it has seen close_notify).
#[test]
fn tls_bytes_after_close_notify_end_the_connection() {
    bounded(30, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .tls(identity.server_config())
            .read_buffer_size(16 << 10);
        let (server, events) = start(config, None);
        let mut tls_stream = tls_upgrade(&server, &identity);
        let conn = events.connection();
        // close_notify and 8 KiB more, in one write: more than rustls takes
        // in one `read_tls` call.
        tls_stream.conn.send_close_notify();
        let mut bytes = Vec::new();
        while tls_stream.conn.wants_write() {
            tls_stream.conn.write_tls(&mut bytes).unwrap();
        }
        bytes.extend(core::iter::repeat_n(0x17u8, 8 << 10));
        tls_stream.sock.write_all(&bytes).unwrap();
        let (id, info) = events.close();
        assert_eq!(id, conn.id());
        assert_eq!(info.cause, CloseCause::UnexpectedEof);
        assert_eq!(conn.send_text("after"), Err(SendError::Closed));
        server.shutdown();
    });
}

/// After our Close, a failure sends no Close of its own: `on_close` reports
/// the code that went on the wire (ours), not the one the failure would
/// have sent.
#[test]
fn a_failure_after_our_close_reports_the_code_we_sent() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        let conn = events.connection();
        thread::spawn(move || conn.close(CloseCode::NORMAL, "bye"))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(raw.close_code(), Some(1000));
        // Instead of answering, the peer breaks the protocol (unmasked).
        raw.send(&frame_from(Role::Server, true, OpCode::Text, b"no"));
        assert!(raw.at_eof(), "no second Close");
        let (_, info) = events.close();
        assert!(
            matches!(info.cause, CloseCause::ProtocolError(_)),
            "{info:?}"
        );
        assert_eq!(info.code, Some(CloseCode::NORMAL), "{info:?}");
        assert_eq!(info.reason, "bye");
        server.shutdown();
    });
}

/// A TLS peer that sends a message and its close_notify together, then
/// leaves the TCP connection open: the message is delivered, and the
/// connection ends then (nothing can follow a close_notify), not at the
/// next failed heartbeat.
#[test]
fn tls_message_then_close_notify_delivers_and_ends() {
    bounded(30, || {
        let identity = tls::identity();
        let config = ServerConfig::default().tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut tls_stream = tls_upgrade(&server, &identity);
        let conn = events.connection();
        // The message and close_notify in one write.
        let frame = client_frame(true, OpCode::Text, b"last words");
        tls_stream.conn.writer().write_all(&frame).unwrap();
        tls_stream.conn.send_close_notify();
        let mut bytes = Vec::new();
        while tls_stream.conn.wants_write() {
            tls_stream.conn.write_tls(&mut bytes).unwrap();
        }
        tls_stream.sock.write_all(&bytes).unwrap();
        // The echo comes back (the server may still write).
        let mut reply = Vec::new();
        while !reply.ends_with(b"last words") {
            let mut chunk = [0u8; 64];
            let n = tls_stream.read(&mut chunk).unwrap();
            assert!(n > 0, "EOF before the echo");
            reply.extend_from_slice(&chunk[..n]);
        }
        let (id, info) = events.close();
        assert_eq!(id, conn.id());
        assert_eq!(info.cause, CloseCause::UnexpectedEof);
        server.shutdown();
    });
}

/// Set in the child process of
/// `accepting_outlives_running_out_of_file_descriptors`.
const FD_CHILD: &str = "SNOWSOCKET_TEST_FD_CHILD";

/// Runs in a process with at most 64 file descriptors: the server runs out
/// of them for longer than the accept loop used to retry (1,000 times,
/// 10 ms apart); once descriptors are free again, new connections are
/// served.
fn out_of_fds_child() {
    let config = ServerConfig::default().handshake_timeout(Duration::from_secs(60));
    let (server, events) = start(config, None);
    let mut hog = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hog.push(file);
    }
    // The last free descriptor, for a client. Whether the server accepts it
    // (with the descriptor a waiting `accept` holds) or not, from then on it
    // has none.
    drop(hog.pop());
    let pending = TcpStream::connect(server.local_addr()).unwrap();
    // Out of descriptors for a while (the condition under test, not a
    // synchronisation).
    thread::sleep(Duration::from_secs(13));
    drop(hog);
    let mut other = tung_ws(&server);
    events.connection();
    echo_round_trips(&mut other, &[10]);
    close_tungstenite(&mut other);
    events.close();
    drop(pending);
    server.shutdown();
}

#[test]
fn accepting_outlives_running_out_of_file_descriptors() {
    if std::env::var_os(FD_CHILD).is_some() {
        bounded(60, out_of_fds_child);
        return;
    }
    bounded(90, || {
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                "accepting_outlives_running_out_of_file_descriptors",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FD_CHILD, "1")
            .output()
            .unwrap();
        // The child must have run this very test (an exact name that no
        // longer matches would run nothing and pass).
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child ran no test:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            output.status.success(),
            "child: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
