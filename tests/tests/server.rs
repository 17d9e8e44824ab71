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

// ---------------------------------------------------------------------------
// Echo against tungstenite
// ---------------------------------------------------------------------------

const SIZES: &[usize] = &[0, 1, 125, 126, 65_535, 65_536, 1 << 20];

#[test]
fn tungstenite_client_echo_ws_up_to_16_mib() {
    bounded(90, || {
        // No heartbeat: a peer busy writing 16 MiB in a debug build answers
        // pings late (heartbeats have their own tests).
        let (server, events) = start(ServerConfig::default().connection(SLOW_HEARTBEAT), None);
        let mut ws = tung_ws(&server);
        echo_round_trips(&mut ws, SIZES);
        echo_round_trips(&mut ws, &[16 << 20]);
        close_tungstenite(&mut ws);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, Some(CloseCode::NORMAL));
        server.shutdown();
    });
}

#[test]
fn tungstenite_client_echo_wss_up_to_16_mib() {
    bounded(90, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .connection(SLOW_HEARTBEAT)
            .tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut ws = tung_wss(&server, &identity);
        echo_round_trips(&mut ws, SIZES);
        echo_round_trips(&mut ws, &[16 << 20]);
        close_tungstenite(&mut ws);
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

/// A tungstenite echo server on a thread; returns its address and the
/// thread (which ends when the client closes).
fn tungstenite_server(
    identity: Option<Arc<Identity>>,
) -> (SocketAddr, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
        let mut seen = Vec::new();
        let config = Some(big_tungstenite_config());
        let mut run = |ws: &mut dyn FnMut() -> Result<tungstenite::Message, tungstenite::Error>,
                       send: &mut dyn FnMut(tungstenite::Message)| {
            loop {
                match ws() {
                    Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        seen.push(format!("{} bytes", m.len()));
                        send(m);
                    }
                    Ok(tungstenite::Message::Close(frame)) => {
                        seen.push(format!("close {:?}", frame.map(|f| u16::from(f.code))));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        };
        match identity {
            None => {
                let ws = Arc::new(Mutex::new(
                    tungstenite::accept_with_config(stream, config).unwrap(),
                ));
                let reader = Arc::clone(&ws);
                run(&mut || reader.lock().unwrap().read(), &mut |m| {
                    ws.lock().unwrap().send(m).unwrap();
                });
            }
            Some(identity) => {
                let stream = tls::server_stream(&identity, stream);
                let ws = Arc::new(Mutex::new(
                    tungstenite::accept_with_config(stream, config).unwrap(),
                ));
                let reader = Arc::clone(&ws);
                run(&mut || reader.lock().unwrap().read(), &mut |m| {
                    ws.lock().unwrap().send(m).unwrap();
                });
            }
        }
        seen
    });
    (addr, thread)
}

fn client_round_trips(client: &mut client::Client, sizes: &[usize]) {
    for &len in sizes {
        let data = payload(len);
        client.send_binary(&data).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Binary(got)) => assert!(got == &data[..], "binary {len}"),
            other => panic!("expected binary {len}, got {other:?}"),
        }
        let t = text(len);
        client.send_text(&t).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Text(got)) => assert!(got == t, "text {len}"),
            other => panic!("expected text {len}, got {other:?}"),
        }
    }
}

#[test]
fn our_client_against_tungstenite_server_ws() {
    bounded(90, || {
        let (addr, server) = tungstenite_server(None);
        let url = format!("ws://{addr}/echo?x=1");
        let config = ClientConfig::default().connection(SLOW_HEARTBEAT);
        let mut client = client::connect(&url, config).unwrap();
        client_round_trips(&mut client, SIZES);
        client_round_trips(&mut client, &[16 << 20]);
        client.close(CloseCode::NORMAL, "done").unwrap();
        assert!(
            client.read_message().unwrap().is_none(),
            "closed stays closed"
        );
        assert_eq!(client.send_text("late"), Err(SendError::Closed));
        let seen = server.join().unwrap();
        assert_eq!(seen.last().unwrap(), "close Some(1000)");
        assert_eq!(seen.len(), SIZES.len() * 2 + 3);
    });
}

#[test]
fn our_client_against_tungstenite_server_wss() {
    bounded(60, || {
        let identity = Arc::new(tls::identity());
        let (addr, server) = tungstenite_server(Some(Arc::clone(&identity)));
        let url = format!("wss://localhost:{}/", addr.port());
        let config = ClientConfig::default().add_root_der(identity.cert_der.to_vec());
        let mut client = client::connect(&url, config).unwrap();
        client_round_trips(&mut client, SIZES);
        client.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(server.join().unwrap().last().unwrap(), "close Some(1000)");
    });
}

#[test]
fn our_client_and_server_over_wss_from_pem_files() {
    bounded(60, || {
        let identity = tls::identity();
        let dir = std::env::temp_dir().join(format!("snowsocket-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = identity.write_pem(&dir);
        let tls_config = snowsocket_server::tls::server_config_from_pem(&cert, &key).unwrap();
        let (server, events) = start(ServerConfig::default().tls(tls_config), None);
        let config = ClientConfig::default().add_root_pem(&cert).unwrap();
        let mut client = client::connect(&url(&server, true), config).unwrap();
        client_round_trips(&mut client, &[0, 5, 70_000]);
        client.close(CloseCode::NORMAL, "bye").unwrap();
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.reason, "bye");
        // Errors name the file and the reason.
        let missing = dir.join("missing.pem");
        let err = snowsocket_server::tls::server_config_from_pem(&missing, &key).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = snowsocket_server::tls::server_config_from_pem(&key, &key).unwrap_err();
        assert!(
            err.to_string().contains("key.pem") && err.to_string().contains("CERTIFICATE"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// Protocol rules through the server
// ---------------------------------------------------------------------------

#[test]
fn fragmented_message_with_interleaved_pings() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        let word = "Hello, wörld".as_bytes();
        // "ö" is split across the second and third fragments.
        let mut bytes = client_frame(false, OpCode::Text, &word[..3]);
        bytes.extend(client_frame(true, OpCode::Ping, b"p1"));
        bytes.extend(client_frame(false, OpCode::Continuation, &word[3..9]));
        bytes.extend(client_frame(true, OpCode::Ping, b"p2"));
        bytes.extend(client_frame(true, OpCode::Continuation, &word[9..]));
        raw.send(&bytes);
        assert_eq!(raw.frame(), Some((OpCode::Pong, b"p1".to_vec())));
        assert_eq!(raw.frame(), Some((OpCode::Pong, b"p2".to_vec())));
        assert_eq!(raw.frame(), Some((OpCode::Text, word.to_vec())));
        raw.send(&client_frame(
            true,
            OpCode::Close,
            &close_payload(1000, b""),
        ));
        assert_eq!(raw.close_code(), Some(1000));
        assert!(raw.at_eof());
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

#[test]
fn message_over_16_mib_is_closed_with_1009_and_others_keep_working() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut other = tung_ws(&server);
        let mut raw = Raw::connect(server.local_addr());
        // A header declaring 16 MiB + 1: refused before any byte of it.
        let mut head = snowsocket_tests::header(true, 0, 2, Some([1, 2, 3, 4]), (16 << 20) + 1);
        head.extend_from_slice(&[0; 16]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1009));
        let (_, info) = events.close();
        assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG));
        assert!(
            matches!(info.cause, CloseCause::ProtocolError(_)),
            "{info:?}"
        );
        // Fragments adding up to more than 16 MiB: 1009 too.
        let mut raw = Raw::connect(server.local_addr());
        let half = vec![0u8; 8 << 20];
        raw.send(&client_frame(false, OpCode::Binary, &half));
        raw.send(&client_frame(false, OpCode::Continuation, &half));
        raw.send(&client_frame(true, OpCode::Continuation, b"x"));
        assert_eq!(raw.close_code(), Some(1009));
        assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        echo_round_trips(&mut other, &[10]);
        close_tungstenite(&mut other);
        server.shutdown();
    });
}

#[test]
fn messages_arriving_in_pieces_are_echoed_whole() {
    bounded(30, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        raw.stream.set_nodelay(true).unwrap();
        // Binary messages the reader waits for whole (up to 128 KiB), one
        // it streams (larger), text (always streamed), tiny ones between.
        let messages = [
            (OpCode::Binary, payload(100_000)),
            (OpCode::Binary, payload(3)),
            (OpCode::Binary, payload(65_536)),
            (OpCode::Text, text(70_000).into_bytes()),
            (OpCode::Binary, payload(200_000)),
            (OpCode::Binary, payload(0)),
            (OpCode::Binary, payload(131_072)),
        ];
        let mut bytes = Vec::new();
        for (op, data) in &messages {
            bytes.extend(client_frame(true, *op, data));
        }
        // Odd-sized pieces, so that headers and payloads are cut anywhere.
        for piece in bytes.chunks(7_001) {
            raw.send(piece);
        }
        for (op, data) in &messages {
            let (got_op, got) = raw.frame().unwrap();
            assert_eq!((got_op, got.len()), (*op, data.len()));
            assert!(got == *data, "payload of {} bytes differs", data.len());
        }
        raw.send(&client_frame(
            true,
            OpCode::Close,
            &close_payload(1000, b""),
        ));
        assert_eq!(raw.close_code(), Some(1000));
        events.close();
        server.shutdown();
    });
}

#[test]
fn a_bad_binary_frame_fails_before_its_payload_arrives() {
    bounded(20, || {
        let config = ServerConfig::default().connection(Config::DEFAULT.max_message_size(1000));
        let (server, events) = start(config, None);
        // Unmasked: 1002 on the header, without waiting for the payload.
        let mut raw = Raw::connect(server.local_addr());
        let mut head = snowsocket_tests::header(true, 0, 2, None, 500);
        head.extend_from_slice(&[0; 10]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1002));
        assert_eq!(events.close().1.code, Some(CloseCode::PROTOCOL_ERROR));
        // Over the message size limit: 1009, likewise.
        let mut raw = Raw::connect(server.local_addr());
        let mut head = snowsocket_tests::header(true, 0, 2, Some([1, 2, 3, 4]), 2000);
        head.extend_from_slice(&[0; 10]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1009));
        assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        server.shutdown();
    });
}

#[test]
fn invalid_utf8_split_across_fragments_is_1007() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        // E2 82 starts a 3-byte sequence; 28 cannot continue it.
        raw.send(&client_frame(false, OpCode::Text, b"ok \xE2\x82"));
        raw.send(&client_frame(true, OpCode::Continuation, b"\x28 rest"));
        assert_eq!(raw.close_code(), Some(1007));
        assert!(raw.at_eof());
        assert_eq!(events.close().1.code, Some(CloseCode::INVALID_PAYLOAD));
        server.shutdown();
    });
}

#[test]
fn invalid_close_codes_are_1002() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        for code in [1005u16, 999, 1016, 2999] {
            let mut raw = Raw::connect(server.local_addr());
            raw.send(&client_frame(
                true,
                OpCode::Close,
                &close_payload(code, b""),
            ));
            assert_eq!(raw.close_code(), Some(1002), "close code {code}");
            // The server shut its side after its Close; it lingers until
            // we hang up (on_close runs when the socket is gone).
            assert!(raw.at_eof());
            drop(raw);
            assert_eq!(events.close().1.code, Some(CloseCode::PROTOCOL_ERROR));
        }
        // A one-byte close payload too.
        let mut raw = Raw::connect(server.local_addr());
        raw.send(&client_frame(true, OpCode::Close, &[3]));
        assert_eq!(raw.close_code(), Some(1002));
        events.close();
        server.shutdown();
    });
}

#[test]
fn silent_client_is_dropped_after_ping_interval_plus_pong_timeout() {
    bounded(20, || {
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(200)))
            .pong_timeout(Duration::from_millis(300));
        let (server, events) = start(ServerConfig::default().connection(connection), None);
        let started = Instant::now();
        let mut raw = Raw::connect(server.local_addr());
        // Never answer: the server pings, waits, then fails with 1001.
        assert_eq!(raw.frame().map(|f| f.0), Some(OpCode::Ping));
        assert_eq!(raw.close_code(), Some(1001));
        let elapsed = started.elapsed();
        assert!(raw.at_eof());
        drop(raw);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PongTimeout);
        assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        server.shutdown();
    });
}

#[test]
fn answering_client_stays_connected_through_heartbeats() {
    bounded(20, || {
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_secs(1));
        let (server, events) = start(ServerConfig::default().connection(connection), None);
        let mut client = client::connect(&url(&server, false), ClientConfig::default()).unwrap();
        let sender = client.sender();
        let conn = events.connection();
        // Our client answers pings while it blocks in read_message; the
        // server sends a message after 2.5 s, many heartbeats later (a
        // client that did not answer would be gone after 1.1 s).
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let got = client.read_message().unwrap().map(|m| format!("{m:?}"));
            tx.send(()).unwrap();
            (got, client)
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(2500)).is_err(),
            "nothing arrives by itself"
        );
        conn.send_text("still here").unwrap();
        let (got, _client) = reader.join().unwrap();
        assert_eq!(got.as_deref(), Some("Text(\"still here\")"));
        assert!(conn.is_open());
        sender.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

#[test]
fn client_that_stops_reading_fails_with_write_timeout_only_itself() {
    bounded(30, || {
        let config = ServerConfig::default().write_timeout(Duration::from_millis(300));
        let (server, events) = start(config, None);
        let _silent = Raw::connect(server.local_addr());
        let slow = events.connection();
        let mut other = tung_ws(&server);
        events.connection();
        // Sends never wait: the outbox fills up and says so.
        let chunk = vec![7u8; 1 << 20];
        let mut result = Ok(());
        let mut slowest = Duration::ZERO;
        for _ in 0..256 {
            let t = Instant::now();
            result = slow.send_binary(&chunk);
            slowest = slowest.max(t.elapsed());
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err(SendError::Full { .. } | SendError::Closed)),
            "{result:?}"
        );
        assert!(
            slowest < Duration::from_millis(500),
            "a send waited {slowest:?}"
        );
        let started = Instant::now();
        let (id, info) = events.close();
        // Failed within the write timeout (+ 1 s) of the stall.
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(id, slow.id());
        assert_eq!(info.cause, CloseCause::WriteTimeout);
        assert_eq!(slow.send_text("after"), Err(SendError::Closed));
        echo_round_trips(&mut other, &[100, 70_000]);
        close_tungstenite(&mut other);
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn slowloris_and_oversized_handshakes_cost_one_connection() {
    bounded(20, || {
        let config = ServerConfig::default().handshake_timeout(Duration::from_millis(300));
        let (server, _events) = start(config, None);
        // Slow: half a request, then nothing. Closed after the timeout.
        let started = Instant::now();
        let mut slow = TcpStream::connect(server.local_addr()).unwrap();
        slow.set_read_timeout(Some(WAIT)).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // Meanwhile others are served.
        let mut other = tung_ws(&server);
        echo_round_trips(&mut other, &[3]);
        let mut buf = [0u8; 64];
        assert_eq!(
            slow.read(&mut buf).unwrap_or(0),
            0,
            "closed without an answer"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        // Oversized: 431.
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        big.extend(core::iter::repeat_n(b'a', 10_000));
        big.extend_from_slice(b"\r\n\r\n");
        let response = http_exchange(server.local_addr(), &big);
        assert!(response.starts_with("HTTP/1.1 431"), "{response}");
        echo_round_trips(&mut other, &[3]);
        close_tungstenite(&mut other);
        server.shutdown();
    });
}

#[test]
fn plain_http_request_gets_426() {
    bounded(20, || {
        let (server, _events) = start(ServerConfig::default(), None);
        let response = http_exchange(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(response.starts_with("HTTP/1.1 426"), "{response}");
        assert!(response.contains("Upgrade: websocket"), "{response}");
        server.shutdown();
    });
}

/// What `accept_hook_rejects_and_chooses_subprotocols` attaches.
#[derive(Debug, PartialEq)]
struct Room(String);

#[test]
fn accept_hook_rejects_and_chooses_subprotocols() {
    bounded(20, || {
        let hook: AcceptHook = Box::new(|request| {
            if request.path() == "/deny" {
                return Accept::reject(403, "not here");
            }
            if request.query() != Some("room=1")
                || request.origin() != Some("https://example.test")
                || request.header("x-token") != Some(&b"abc"[..])
            {
                return Accept::reject(400, "wrong query, origin or token");
            }
            let chosen = request.subprotocols().find(|p| *p == "chat");
            let room = Room(request.query().unwrap_or_default().replace("room=", ""));
            let accept = Accept::upgrade()
                .with_header("X-Served-By", "snowsocket")
                .with_context(room);
            match chosen {
                Some(p) => accept.with_subprotocol(p),
                None => accept,
            }
        });
        let (server, events) = start(ServerConfig::default(), Some(hook));
        let base = format!("ws://127.0.0.1:{}", server.local_addr().port());
        let denied = client::connect(&format!("{base}/deny"), ClientConfig::default());
        match denied {
            Err(ClientError::Rejected(response)) => {
                assert_eq!(response.status, 403);
                assert_eq!(response.body_text(), "not here");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let response = http_exchange(
            server.local_addr(),
            UPGRADE.replace("GET / ", "GET /deny ").as_bytes(),
        );
        assert!(response.starts_with("HTTP/1.1 403"), "{response}");
        assert!(response.ends_with("not here"), "{response}");
        let config = ClientConfig::default()
            .subprotocol("superchat")
            .subprotocol("chat")
            .origin("https://example.test")
            .header("X-Token", "abc");
        let mut client = client::connect(&format!("{base}/room?room=1"), config.clone()).unwrap();
        assert_eq!(client.subprotocol(), Some("chat"));
        // What the hook decided stays with the connection.
        let conn = events.connection();
        assert_eq!((conn.path(), conn.query()), ("/room", Some("room=1")));
        assert_eq!(conn.subprotocol(), Some("chat"));
        assert_eq!(conn.context::<Room>(), Some(&Room("1".into())));
        assert_eq!(conn.context::<String>(), None);
        // The hook saw the query, the Origin and the header: without them
        // it refuses.
        let refused = client::connect(&format!("{base}/room"), config);
        assert!(
            matches!(&refused, Err(ClientError::Rejected(r)) if r.status == 400),
            "{refused:?}"
        );
        // The extra response header and the chosen subprotocol on the wire.
        let request = UPGRADE
            .replace("GET / ", "GET /room?room=1 ")
            .replace("\r\n\r\n", "\r\nOrigin: https://example.test\r\nX-Token: abc\r\nSec-WebSocket-Protocol: chat\r\n\r\n");
        let mut raw = TcpStream::connect(server.local_addr()).unwrap();
        raw.set_read_timeout(Some(WAIT)).unwrap();
        raw.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && raw.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("\r\nX-Served-By: snowsocket\r\n"), "{head}");
        assert!(
            head.contains("\r\nSec-WebSocket-Protocol: chat\r\n"),
            "{head}"
        );
        drop(raw);
        events.close();
        client_round_trips(&mut client, &[4]);
        client.close(CloseCode::NORMAL, "").unwrap();
        events.close();
        server.shutdown();
    });
}

#[test]
fn tls_client_sending_garbage_costs_only_its_connection() {
    bounded(20, || {
        let identity = tls::identity();
        let config = ServerConfig::default().tls(identity.server_config());
        let (server, _events) = start(config, None);
        let mut garbage = TcpStream::connect(server.local_addr()).unwrap();
        garbage.set_read_timeout(Some(WAIT)).unwrap();
        garbage.write_all(UPGRADE.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = garbage.read_to_end(&mut response);
        assert!(
            !response.starts_with(b"HTTP"),
            "no HTTP answer over a TLS port"
        );
        let mut ws = tung_wss(&server, &identity);
        echo_round_trips(&mut ws, &[10, 20_000]);
        close_tungstenite(&mut ws);
        server.shutdown();
    });
}

#[test]
fn max_connections_answers_503() {
    bounded(20, || {
        // The two raw clients never answer the shutdown's Close.
        let config = ServerConfig::default()
            .max_connections(2)
            .shutdown_timeout(Duration::from_millis(200));
        let (server, events) = start(config, None);
        let _a = Raw::connect(server.local_addr());
        let _b = Raw::connect(server.local_addr());
        events.connection();
        events.connection();
        let response = http_exchange(server.local_addr(), UPGRADE.as_bytes());
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        assert_eq!(server.connections(), 2);
        server.shutdown();
    });
}

#[test]
fn max_connections_answers_503_over_tls() {
    bounded(20, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .max_connections(1)
            .tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut first = tung_wss(&server, &identity);
        events.connection();
        // The second completes the TLS handshake and gets the 503 over it.
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
        let stream = tls::client_stream(&identity, stream);
        match tungstenite::client::client(url(&server, true), stream) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 503);
                assert_eq!(response.headers()["retry-after"], "1");
            }
            Err(e) => panic!("expected a 503, got {e}"),
            Ok(_) => panic!("expected a 503, got a WebSocket"),
        }
        assert_eq!(server.connections(), 1);
        // The first is still served.
        echo_round_trips(&mut first, &[5]);
        close_tungstenite(&mut first);
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// Sends never wait behind reads
// ---------------------------------------------------------------------------

/// Heartbeat and timeouts of minutes: nothing wakes the reader thread, yet a
/// send from another thread must reach the silent peer at once.
const SLOW_HEARTBEAT: Config = Config::DEFAULT
    .ping_interval(Some(Duration::from_secs(600)))
    .pong_timeout(Duration::from_secs(600));

fn send_to_silent_peer(tls_identity: Option<&Identity>) {
    let mut config = ServerConfig::default().connection(SLOW_HEARTBEAT);
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    let (tx, rx) = mpsc::channel();
    let reader = match tls_identity {
        None => {
            let mut ws = tung_ws(&server);
            thread::spawn(move || {
                let m = ws.read().unwrap();
                tx.send(m.into_text().unwrap().to_string()).unwrap();
                close_tungstenite(&mut ws);
            })
        }
        Some(identity) => {
            let mut ws = tung_wss(&server, identity);
            thread::spawn(move || {
                let m = ws.read().unwrap();
                tx.send(m.into_text().unwrap().to_string()).unwrap();
                close_tungstenite(&mut ws);
            })
        }
    };
    let conn = events.connection();
    let sent = Instant::now();
    let from_other_thread = thread::spawn(move || conn.send_text("pushed"));
    from_other_thread.join().unwrap().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(1))
        .expect("the push arrived within 1 s");
    assert_eq!(got, "pushed");
    assert!(sent.elapsed() < Duration::from_secs(1));
    reader.join().unwrap();
    events.close();
    server.shutdown();
}

#[test]
fn send_from_another_thread_reaches_silent_peer_ws() {
    bounded(20, || send_to_silent_peer(None));
}

#[test]
fn send_from_another_thread_reaches_silent_peer_wss() {
    bounded(20, || send_to_silent_peer(Some(&tls::identity())));
}

#[test]
fn client_sender_works_while_another_thread_blocks_in_read() {
    bounded(20, || {
        for tls_on in [false, true] {
            let identity = Arc::new(tls::identity());
            let (addr, server) = tungstenite_server(tls_on.then(|| Arc::clone(&identity)));
            let (url, config) = if tls_on {
                let config = ClientConfig::default().add_root_der(identity.cert_der.to_vec());
                (format!("wss://localhost:{}/", addr.port()), config)
            } else {
                (format!("ws://{addr}/"), ClientConfig::default())
            };
            let mut client = client::connect(&url, config.connection(SLOW_HEARTBEAT)).unwrap();
            let sender = client.sender();
            let (tx, rx) = mpsc::channel();
            let reader = thread::spawn(move || {
                // Blocks (no lock held) until the echo of the send below.
                let got = client.read_message().unwrap().map(|m| format!("{m:?}"));
                tx.send(got).unwrap();
                client.close(CloseCode::NORMAL, "").unwrap();
            });
            let sent = Instant::now();
            sender.send_text("from another thread").unwrap();
            let got = rx
                .recv_timeout(Duration::from_secs(1))
                .expect("echo within 1 s");
            assert_eq!(got.as_deref(), Some("Text(\"from another thread\")"));
            assert!(sent.elapsed() < Duration::from_secs(1));
            reader.join().unwrap();
            server.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[test]
fn graceful_shutdown_closes_everyone_with_1001_and_joins_every_thread() {
    bounded(30, || {
        let identity = tls::identity();
        for tls_on in [false, true] {
            let mut config = ServerConfig::default().shutdown_timeout(Duration::from_millis(500));
            if tls_on {
                config = config.tls(identity.server_config());
            }
            let (server, events) = start(config, None);
            let port = server.local_addr().port();
            let mut readers = Vec::new();
            for _ in 0..3 {
                let (tx, rx) = mpsc::channel();
                let mut client = match tls_on {
                    false => client::connect(&url(&server, false), ClientConfig::default()),
                    true => client::connect(
                        &url(&server, true),
                        ClientConfig::default().add_root_der(identity.cert_der.to_vec()),
                    ),
                }
                .unwrap();
                readers.push(thread::spawn(move || {
                    tx.send(()).unwrap();
                    client.read_message().map(|m| m.is_none())
                }));
                rx.recv().unwrap();
                events.connection();
            }
            // One that never reads nor answers: its socket is closed after
            // the shutdown timeout.
            let _deaf = (!tls_on).then(|| Raw::connect(server.local_addr()));
            if !tls_on {
                events.connection();
            }
            assert_eq!(
                server_threads(port),
                server.event_loops(),
                "the loops' threads, however many connections"
            );
            let started = Instant::now();
            server.shutdown();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(
                server_threads_after_join(port),
                0,
                "every server thread joined"
            );
            let mut causes = Vec::new();
            while let Ok((_, info)) = events.closed.try_recv() {
                assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
                causes.push(info.cause);
            }
            let expected = if tls_on { 3 } else { 4 };
            assert_eq!(
                causes.len(),
                expected,
                "on_close ran for everyone before shutdown returned"
            );
            assert!(
                causes.iter().all(|c| *c == CloseCause::ServerShutdown),
                "{causes:?}"
            );
            for reader in readers {
                // Our client sees the server's 1001 as a clean close.
                assert!(matches!(reader.join().unwrap(), Ok(true)));
            }
        }
    });
}

#[test]
fn dropping_the_handle_also_shuts_down() {
    bounded(20, || {
        // The client reads only after the drop, so its answer to the Close
        // comes late: a short shutdown timeout keeps the test quick.
        let config = ServerConfig::default().shutdown_timeout(Duration::from_millis(300));
        let (server, _events) = start(config, None);
        let port = server.local_addr().port();
        let mut ws = tung_ws(&server);
        drop(server);
        assert_eq!(server_threads_after_join(port), 0);
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------
// Handles and handlers
// ---------------------------------------------------------------------------

#[test]
fn handle_sends_fragments_pings_and_closes_from_another_thread() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut ws = tung_ws(&server);
        let conn = events.connection();
        assert_eq!(conn.peer_addr(), ws.get_ref().local_addr().unwrap());
        let sender = thread::spawn(move || {
            use snowsocket_server::MessageKind;
            conn.send_fragment(MessageKind::Text, "frag".as_bytes(), false)?;
            conn.ping(b"hey")?;
            conn.send_fragment(MessageKind::Text, "ment".as_bytes(), true)?;
            assert!(matches!(conn.ping(&[0; 126]), Err(SendError::Refused(_))));
            conn.close(CloseCode(4000), "app says bye")?;
            Ok::<_, SendError>(conn)
        });
        let mut got = Vec::new();
        loop {
            match ws.read() {
                Ok(m) => got.push(format!("{m:?}")),
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let conn = sender.join().unwrap().unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("Ping"), "{got:?}");
        assert!(got[1].contains("fragment"), "{got:?}");
        assert!(
            got[2].contains("4000") && got[2].contains("app says bye"),
            "{got:?}"
        );
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::ClosedByUs);
        assert_eq!(info.code, Some(CloseCode(4000)));
        assert!(!conn.is_open());
        assert_eq!(conn.send_text("late"), Err(SendError::Closed));
        server.shutdown();
    });
}

/// Panics on the message "panic"; reports every connection's end.
struct Panicky(Mutex<Sender<CloseInfo>>);

impl Handler for Panicky {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        if message == Message::Text("panic") {
            panic!("handler bug (expected by the test)");
        }
        let _ = conn.send_text("fine");
    }

    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        let _ = self.0.lock().unwrap().send(info);
    }
}

#[test]
fn a_panicking_handler_costs_only_its_connection() {
    bounded(20, || {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
        let (closes, closed) = mpsc::channel();
        let server = server.spawn(Panicky(Mutex::new(closes))).unwrap();
        let mut bad = tung_ws(&server);
        let mut good = tung_ws(&server);
        bad.send(tungstenite::Message::text("panic")).unwrap();
        // Its connection is closed (no close handshake: the handler is
        // broken); reading ends with an error.
        while bad.read().is_ok() {}
        let info = closed.recv_timeout(WAIT).unwrap();
        assert_eq!(info.cause, CloseCause::HandlerPanicked);
        good.send(tungstenite::Message::text("hi")).unwrap();
        assert_eq!(good.read().unwrap(), tungstenite::Message::text("fine"));
        close_tungstenite(&mut good);
        assert!(closed.recv_timeout(WAIT).unwrap().is_clean());
        server.shutdown();
        // Exactly one on_close per connection.
        assert!(closed.try_recv().is_err());
    });
}

#[test]
fn tls13_secp256r1_ecdsa_p256_client_like_embedded_tls_is_served() {
    bounded(20, || {
        // What an embedded-tls client offers: TLS 1.3 only, secp256r1 only,
        // and it verifies an ECDSA P-256 certificate (rcgen's default).
        let identity = tls::identity();
        let (server, _events) = start(ServerConfig::default().tls(identity.server_config()), None);
        let provider = rustls::crypto::CryptoProvider {
            kx_groups: vec![rustls::crypto::ring::kx_group::SECP256R1],
            ..rustls::crypto::ring::default_provider()
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(identity.cert_der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let stream = rustls::StreamOwned::new(conn, stream);
        let (mut ws, _) = tungstenite::client(url(&server, true), stream).unwrap();
        let tls = &ws.get_ref().conn;
        assert_eq!(
            tls.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(
            tls.negotiated_key_exchange_group().map(|g| g.name()),
            Some(rustls::NamedGroup::secp256r1)
        );
        echo_round_trips(&mut ws, &[1, 300]);
        close_tungstenite(&mut ws);
        server.shutdown();
    });
}

#[test]
fn client_refuses_untrusted_certificates_and_times_out_silent_servers() {
    bounded(20, || {
        let identity = tls::identity();
        let (server, _events) = start(ServerConfig::default().tls(identity.server_config()), None);
        // The Mozilla roots do not include a fresh self-signed certificate.
        match client::connect(&url(&server, true), ClientConfig::default()) {
            Err(e @ ClientError::TlsHandshake(_)) => {
                let message = e.to_string();
                assert!(message.contains("UnknownIssuer"), "{message}");
                assert!(message.contains("--ca cert.pem"), "{message}");
            }
            other => panic!("expected a certificate error, got {other:?}"),
        }
        server.shutdown();
        // A server that accepts the connection and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let config = ClientConfig::default().handshake_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let result = client::connect(&url, config);
        assert!(
            matches!(result, Err(ClientError::HandshakeTimeout)),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
        assert!(matches!(
            client::connect("http://example.test/", ClientConfig::default()),
            Err(ClientError::InvalidUrl(_))
        ));
    });
}

/// A Close queued from another thread to a peer that never answers: the
/// server gives up after the close timeout (300 ms) and closes the socket.
/// The Close is queued from another thread; nothing else wakes the loop.
fn close_times_out(at_most: Duration) {
    // No heartbeat: nothing else would wake the reader.
    let connection = Config::DEFAULT
        .ping_interval(None)
        .close_timeout(Duration::from_millis(300));
    let config = ServerConfig::default().connection(connection);
    let (server, events) = start(config, None);
    let mut raw = Raw::connect(server.local_addr());
    let conn = events.connection();
    let started = Instant::now();
    thread::spawn(move || conn.close(CloseCode::NORMAL, "bye"))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(raw.close_code(), Some(1000));
    // We never answer; the server gives up and closes the socket.
    assert!(raw.at_eof());
    let (_, info) = events.close();
    assert_eq!(info.cause, CloseCause::CloseTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < at_most,
        "{elapsed:?}"
    );
    server.shutdown();
}

#[test]
fn close_from_another_thread_times_out_when_the_peer_never_answers() {
    bounded(20, || close_times_out(Duration::from_secs(3)));
}

/// Several threads send on one connection at once (and the connection's own
/// thread echoes): every message arrives whole, in each sender's order, and
/// under TLS every record decrypts (frames and records are never
/// interleaved).
fn concurrent_senders(tls_identity: Option<&Identity>) {
    let mut config = ServerConfig::default();
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    const THREADS: usize = 4;
    const EACH: usize = 200;
    const ECHOES: usize = 50;
    let check = move |ws: &mut dyn FnMut() -> tungstenite::Message| {
        let mut next = [0usize; THREADS];
        let mut next_echo = 0;
        for _ in 0..THREADS * EACH + ECHOES {
            let m = ws();
            let text = m.to_text().unwrap();
            if let Some(i) = text.strip_prefix("echo:") {
                assert_eq!(i.parse::<usize>().unwrap(), next_echo);
                next_echo += 1;
                continue;
            }
            let (t, rest) = text.split_once(':').unwrap();
            let (i, pad) = rest.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(pad.len(), 100 + (i * 37) % 3000);
            next[t] += 1;
        }
    };
    let send_all = |conn: ConnectionHandle| {
        (0..THREADS)
            .map(|t| {
                let conn = conn.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        let pad = "x".repeat(100 + (i * 37) % 3000);
                        conn.send_text(&format!("{t}:{i}:{pad}")).unwrap();
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    match tls_identity {
        None => {
            let mut ws = tung_ws(&server);
            let senders = send_all(events.connection());
            for i in 0..ECHOES {
                ws.send(tungstenite::Message::text(format!("echo:{i}")))
                    .unwrap();
            }
            check(&mut || ws.read().unwrap());
            senders.into_iter().for_each(|s| s.join().unwrap());
            close_tungstenite(&mut ws);
        }
        Some(identity) => {
            let mut ws = tung_wss(&server, identity);
            let senders = send_all(events.connection());
            for i in 0..ECHOES {
                ws.send(tungstenite::Message::text(format!("echo:{i}")))
                    .unwrap();
            }
            check(&mut || ws.read().unwrap());
            senders.into_iter().for_each(|s| s.join().unwrap());
            close_tungstenite(&mut ws);
        }
    }
    assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
    server.shutdown();
}

#[test]
fn concurrent_senders_keep_frames_and_records_whole_ws() {
    bounded(30, || concurrent_senders(None));
}

#[test]
fn concurrent_senders_keep_frames_and_records_whole_wss() {
    bounded(30, || concurrent_senders(Some(&tls::identity())));
}

#[test]
fn shutdown_is_bounded_by_its_deadline_even_with_peers_that_do_not_read() {
    bounded(30, || {
        // The deaf peer's output can wait 20 s, but shutdown must not.
        let config = ServerConfig::default()
            .write_timeout(Duration::from_secs(20))
            .shutdown_timeout(Duration::from_millis(500));
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        let _deaf = Raw::connect(server.local_addr());
        let stuck = events.connection();
        let mut polite = tung_ws(&server);
        events.connection();
        // Fill the deaf peer's buffers until its outbox is full.
        let chunk = vec![1u8; 256 << 10];
        let full = (0..4096).find_map(|_| stuck.send_binary(&chunk).err());
        assert!(matches!(full, Some(SendError::Full { .. })), "{full:?}");
        let started = Instant::now();
        server.shutdown();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(4),
            "shutdown took {elapsed:?}"
        );
        assert_eq!(server_threads_after_join(port), 0);
        assert_eq!(stuck.send_text("after"), Err(SendError::Closed));
        match polite.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001)
            }
            other => panic!("expected close 1001, got {other:?}"),
        }
        let causes: Vec<CloseCause> = events.closed.try_iter().map(|(_, i)| i.cause).collect();
        assert_eq!(
            causes,
            [CloseCause::ServerShutdown, CloseCause::ServerShutdown]
        );
    });
}

// ---------------------------------------------------------------------------
// Idle connections: no thread, no buffers; input, pushes, heartbeats and
// closes reach them
// ---------------------------------------------------------------------------

/// Waits (bounded, polling) until `done` holds; fails the test after 5 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// No heartbeat in the way.
fn quick_idle() -> ServerConfig {
    ServerConfig::default().connection(SLOW_HEARTBEAT)
}

/// A tungstenite client over ws:// or wss://.
enum Tung {
    Ws(Box<tungstenite::WebSocket<TcpStream>>),
    Wss(Box<tungstenite::WebSocket<TlsClientStream>>),
}

impl Tung {
    fn connect(server: &ServerHandle, tls_identity: Option<&Identity>) -> Self {
        match tls_identity {
            None => Self::Ws(Box::new(tung_ws(server))),
            Some(identity) => Self::Wss(Box::new(tung_wss(server, identity))),
        }
    }
    fn round_trips(&mut self, sizes: &[usize]) {
        match self {
            Self::Ws(ws) => echo_round_trips(&mut **ws, sizes),
            Self::Wss(ws) => echo_round_trips(&mut **ws, sizes),
        }
    }
    fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Ws(ws) => ws.get_ref().local_addr().unwrap(),
            Self::Wss(ws) => ws.get_ref().sock.local_addr().unwrap(),
        }
    }
    fn read(&mut self) -> Option<tungstenite::Message> {
        match self {
            Self::Ws(ws) => ws.read().ok(),
            Self::Wss(ws) => ws.read().ok(),
        }
    }
}

fn idle_connections_resume(tls_identity: Option<&Identity>) {
    let mut config = quick_idle();
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    let port = server.local_addr().port();
    let mut clients: Vec<Tung> = (0..3)
        .map(|_| Tung::connect(&server, tls_identity))
        .collect();
    // The handles in the clients' order (`on_connect` may run in another).
    let mut conns: Vec<ConnectionHandle> = (0..3).map(|_| events.connection()).collect();
    conns.sort_by_key(|conn| {
        let peer = conn.peer_addr();
        clients.iter().position(|c| c.local_addr() == peer).unwrap()
    });
    // The loops' threads and no other, however many connections.
    assert_eq!(server_threads(port), server.event_loops());
    assert_eq!(server.connections(), 3);
    // Input wakes them (several times: each round trip ends idle again),
    // with messages that need the read buffers back (over 64 KiB).
    for _ in 0..2 {
        for client in &mut clients {
            client.round_trips(&[0, 125, 70_000]);
        }
    }
    assert_eq!(server_threads(port), server.event_loops());
    // A send from another thread reaches an idle connection's peer.
    for (conn, client) in conns.iter().zip(&mut clients) {
        let conn = conn.clone();
        thread::spawn(move || conn.send_text("pushed while idle"))
            .join()
            .unwrap()
            .unwrap();
        match client.read() {
            Some(tungstenite::Message::Text(t)) => assert_eq!(t.as_str(), "pushed while idle"),
            other => panic!("expected the push, got {other:?}"),
        }
    }
    // A close from another thread wakes the connection to run the close
    // handshake; tungstenite answers it.
    for (conn, client) in conns.iter().zip(&mut clients) {
        conn.close(CloseCode::NORMAL, "bye").unwrap();
        match client.read() {
            Some(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1000)
            }
            other => panic!("expected close 1000, got {other:?}"),
        }
        // tungstenite writes its answer on the next call, which then ends.
        assert!(client.read().is_none());
        let (id, info) = events.close();
        assert_eq!(id, conn.id());
        assert_eq!(info.cause, CloseCause::ClosedByUs, "{info}");
    }
    // `on_close` runs just before the connection leaves the count.
    wait_for("no connections", || server.connections() == 0);
    server.shutdown();
    assert_eq!(server_threads_after_join(port), 0);
}

#[test]
fn idle_connections_resume_on_input_pushes_and_closes_ws() {
    bounded(30, || idle_connections_resume(None));
}

#[test]
fn idle_connections_resume_on_input_pushes_and_closes_wss() {
    bounded(30, || idle_connections_resume(Some(&tls::identity())));
}

#[test]
fn idle_connection_keeps_its_heartbeat() {
    bounded(20, || {
        // A silent peer: pinged while idle, then failed after the pong
        // timeout, all without a thread in between.
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(400)))
            .pong_timeout(Duration::from_millis(400));
        let config = ServerConfig::default().connection(connection);
        let (server, events) = start(config, None);
        let started = Instant::now();
        let mut raw = Raw::connect(server.local_addr());
        events.connection();
        assert_eq!(raw.frame().map(|f| f.0), Some(OpCode::Ping));
        assert_eq!(raw.close_code(), Some(1001));
        let elapsed = started.elapsed();
        assert!(raw.at_eof());
        drop(raw);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PongTimeout);
        assert!(elapsed >= Duration::from_millis(750), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");

        // A peer that answers stays connected across several pings, idle
        // in between.
        let mut raw = Raw::connect(server.local_addr());
        let conn = events.connection();
        for _ in 0..3 {
            let (op, payload) = raw.frame().unwrap();
            assert_eq!(op, OpCode::Ping);
            raw.send(&client_frame(true, OpCode::Pong, &payload));
        }
        assert!(conn.is_open());
        raw.send(&client_frame(true, OpCode::Text, b"still here"));
        assert_eq!(raw.frame(), Some((OpCode::Text, b"still here".to_vec())));
        server.shutdown();
        assert_eq!(events.close().1.cause, CloseCause::ServerShutdown);
    });
}

#[test]
fn shutdown_closes_idle_connections_and_joins_every_thread() {
    bounded(20, || {
        let config = quick_idle().shutdown_timeout(Duration::from_millis(500));
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        let mut readers = Vec::new();
        for _ in 0..3 {
            let mut client =
                client::connect(&url(&server, false), ClientConfig::default()).unwrap();
            readers.push(thread::spawn(move || {
                client.read_message().map(|m| m.is_none())
            }));
            events.connection();
        }
        // One that never answers: its socket is closed at the deadline.
        let _deaf = Raw::connect(server.local_addr());
        events.connection();
        wait_for("4 connections", || server.connections() == 4);
        server.shutdown();
        assert_eq!(server_threads_after_join(port), 0);
        let causes: Vec<CloseCause> = events.closed.try_iter().map(|(_, i)| i.cause).collect();
        assert_eq!(causes, vec![CloseCause::ServerShutdown; 4]);
        for reader in readers {
            assert!(matches!(reader.join().unwrap(), Ok(true)));
        }
    });
}

#[test]
fn connections_that_pause_and_resume_all_the_time_lose_nothing() {
    bounded(60, || {
        // Idle after 5 ms: with pauses around that, connections park and
        // resume many times while messages, pushes from other threads and
        // heartbeats cross. Every echo and every push must arrive, in order.
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(30)))
            .pong_timeout(Duration::from_secs(5));
        let config = ServerConfig::default().connection(connection);
        let (server, events) = start(config, None);
        let clients: Vec<_> = (0..24u64)
            .map(|n| {
                let mut ws = tung_ws(&server);
                thread::spawn(move || {
                    let mut seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut last_push = None;
                    for i in 0..40u32 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let pause = Duration::from_micros(seed % 12_000);
                        thread::sleep(pause);
                        let text = format!("{n}:{i}");
                        ws.send(tungstenite::Message::text(text.clone())).unwrap();
                        // Pings are answered by tungstenite inside read.
                        loop {
                            match ws.read().unwrap() {
                                tungstenite::Message::Text(t) if t.as_str() == text => break,
                                tungstenite::Message::Text(t) => {
                                    let round: u32 = t
                                        .strip_prefix("push ")
                                        .and_then(|r| r.parse().ok())
                                        .unwrap_or_else(|| panic!("unexpected {t}"));
                                    assert!(last_push < Some(round), "push out of order");
                                    last_push = Some(round);
                                }
                                tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                    close_tungstenite(&mut ws);
                })
            })
            .collect();
        let conns: Vec<ConnectionHandle> = (0..24).map(|_| events.connection()).collect();
        // Pushes from another thread meanwhile, to connections that may be
        // parked or running.
        let pusher = thread::spawn(move || {
            let mut pushed = 0;
            for round in 0..20 {
                for conn in &conns {
                    if conn.send_text(&format!("push {round}")).is_ok() {
                        pushed += 1;
                    }
                }
                thread::sleep(Duration::from_millis(7));
            }
            pushed
        });
        for client in clients {
            client.join().unwrap();
        }
        assert!(pusher.join().unwrap() > 0);
        for _ in 0..24 {
            let (_, info) = events.close();
            assert_eq!(info.cause, CloseCause::PeerClosed, "{info}");
        }
        server.shutdown();
    });
}

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
        assert!(
            output.status.success(),
            "child: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
}
