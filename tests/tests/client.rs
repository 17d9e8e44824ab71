//! The blocking client over real sockets on 127.0.0.1 (port 0): how a
//! connection ended (code, reason, cause), a refused upgrade's status,
//! headers and body, the upgrade response's headers, TLS set-up mistakes
//! and what their errors say, configurations that cannot work, and sends
//! that wait for room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use snowsocket_core::handshake::{ClientRequest, HandshakeLimits};
use snowsocket_core::{DriverError, Instant as CoreInstant, OpCode, Parts, SliceBuffer, WebSocket};
use snowsocket_server::client::{self, ClientConfig, ClientError, MAX_REJECTION_BODY};
use snowsocket_server::{
    Accept, CloseCause, CloseCode, Config, Message, Server, ServerConfig, ServerHandle,
};
use snowsocket_tests::server::{
    answer_once, bounded, client_frame, start, url, AcceptHook, Raw, WAIT,
};
use snowsocket_tests::{close_payload, pipe, FixedRng};

/// A client connected to a fresh echo server, with the server's handle for
/// that connection.
fn connected(
    accept: Option<AcceptHook>,
) -> (
    ServerHandle,
    client::Client,
    snowsocket_server::ConnectionHandle,
) {
    let (server, events) = start(ServerConfig::default(), accept);
    let client = client::connect(&url(&server, false), ClientConfig::default()).unwrap();
    let conn = events.connection();
    (server, client, conn)
}

#[test]
fn the_close_code_reason_and_cause_are_kept() {
    bounded(30, || {
        // The server closes with 1001 and then with 1000: both are clean
        // ends (`Ok(None)`), told apart by `close_info`.
        for (code, reason) in [(CloseCode::GOING_AWAY, "moving"), (CloseCode::NORMAL, "")] {
            let (server, mut client, conn) = connected(None);
            assert!(client.close_info().is_none());
            client.send_text("before").unwrap();
            assert!(matches!(
                client.read_message().unwrap(),
                Some(Message::Text("before"))
            ));
            conn.close(code, reason).unwrap();
            assert!(client.read_message().unwrap().is_none());
            let info = client.close_info().unwrap();
            assert_eq!(info.cause, CloseCause::PeerClosed);
            assert_eq!((info.code, info.reason.as_str()), (Some(code), reason));
            // Later calls repeat the outcome.
            assert!(client.read_message().unwrap().is_none());
            server.shutdown();
        }
        // We close: `close` returns how it ended.
        let (server, mut client, _conn) = connected(None);
        let info = client.close(CloseCode(4000), "done").unwrap();
        assert_eq!(info.cause, CloseCause::ClosedByUs);
        assert_eq!(
            (info.code, info.reason.as_str()),
            (Some(CloseCode(4000)), "done")
        );
        assert_eq!(client.close_info(), Some(&info));
        // A server shutting down: 1001 with the server's reason.
        let (server2, mut client2, _conn2) = connected(None);
        server2.shutdown();
        assert!(client2.read_message().unwrap().is_none());
        let info = client2.close_info().unwrap();
        assert_eq!(
            (info.cause.clone(), info.code),
            (CloseCause::PeerClosed, Some(CloseCode::GOING_AWAY))
        );
        assert_eq!(info.reason, "server shutdown");
        server.shutdown();
    });
}

#[test]
fn an_abnormal_end_is_an_error_with_its_cause() {
    bounded(30, || {
        // A server that sends a masked frame (forbidden to servers).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut ws = tungstenite::accept(stream).unwrap();
            let raw = ws.get_mut();
            std::io::Write::write_all(raw, &client_frame(true, OpCode::Text, b"masked")).unwrap();
            // Until the client's Close and EOF.
            let mut rest = Vec::new();
            let _ = raw.read_to_end(&mut rest);
        });
        let mut client =
            client::connect(&format!("ws://{addr}/"), ClientConfig::default()).unwrap();
        match client.read_message() {
            Err(ClientError::Closed(info)) => {
                assert!(
                    matches!(info.cause, CloseCause::ProtocolError(_)),
                    "{info:?}"
                );
                assert_eq!(info.code, Some(CloseCode::PROTOCOL_ERROR));
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        let info = client.close_info().unwrap();
        assert!(!info.is_clean());
        drop(client);
        server.join().unwrap();
    });
}

#[test]
fn a_refused_upgrade_keeps_its_status_headers_and_body() {
    bounded(30, || {
        // Our server's refusal (the body is the reason given).
        let hook: AcceptHook = Box::new(|_| Accept::reject(403, "members only"));
        let (server, _events) = start(ServerConfig::default(), Some(hook));
        match client::connect(&url(&server, false), ClientConfig::default()) {
            Err(ClientError::Rejected(response)) => {
                assert_eq!(
                    (response.status, response.reason.as_str()),
                    (403, "Forbidden")
                );
                assert_eq!(response.body, b"members only");
                assert!(response.header("content-length").is_some());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        server.shutdown();
        // A length-delimited body, with a header the application needs.
        let addr = answer_once(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\
              Content-Length: 12\r\n\r\nlog in firstAND NOT THIS"
                .to_vec(),
        );
        let error = client::connect(&format!("ws://{addr}/"), ClientConfig::default()).unwrap_err();
        let ClientError::Rejected(response) = &error else {
            panic!("expected a refusal, got {error:?}");
        };
        assert_eq!(response.status, 401);
        assert_eq!(
            response.header("www-authenticate"),
            Some(&b"Bearer realm=\"x\""[..])
        );
        assert_eq!(response.body_text(), "log in first");
        assert_eq!(
            error.to_string(),
            "upgrade refused: HTTP 401 Unauthorized: log in first"
        );
        // A chunked body.
        let addr = answer_once(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_vec(),
        );
        match client::connect(&format!("ws://{addr}/"), ClientConfig::default()) {
            Err(ClientError::Rejected(response)) => {
                assert_eq!(response.header("Location"), Some(&b"/elsewhere"[..]));
                assert_eq!(response.body, b"hello world");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A body until EOF, longer than what is kept.
        let mut answer = b"HTTP/1.1 500 Internal Server Error\r\n\r\n".to_vec();
        answer.extend(core::iter::repeat_n(b'x', MAX_REJECTION_BODY + 1000));
        let addr = answer_once(answer);
        match client::connect(&format!("ws://{addr}/"), ClientConfig::default()) {
            Err(ClientError::Rejected(response)) => {
                assert_eq!(response.status, 500);
                assert_eq!(response.body.len(), MAX_REJECTION_BODY);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
}

#[test]
fn the_upgrade_response_headers_are_readable() {
    bounded(30, || {
        let hook: AcceptHook = Box::new(|_| {
            Accept::upgrade()
                .with_header("Set-Cookie", "session=42")
                .with_header("X-Served-By", "snowsocket")
        });
        let (server, mut client, _conn) = connected(Some(hook));
        let response = client.response();
        assert_eq!(response.status, 101);
        assert_eq!(response.header("set-cookie"), Some(&b"session=42"[..]));
        assert_eq!(response.header("x-served-by"), Some(&b"snowsocket"[..]));
        assert_eq!(response.header("upgrade"), Some(&b"websocket"[..]));
        assert!(response.body.is_empty());
        client.close(CloseCode::NORMAL, "").unwrap();
        server.shutdown();
    });
}

#[test]
fn tls_mismatches_say_what_to_do() {
    bounded(30, || {
        // wss:// to a plain server.
        let (plain, _events) = start(ServerConfig::default(), None);
        let wss = format!("wss://localhost:{}/", plain.local_addr().port());
        let error = client::connect(&wss, ClientConfig::default()).unwrap_err();
        assert!(
            matches!(
                &error,
                ClientError::TlsHandshake(snowsocket_server::rustls::Error::InvalidMessage(
                    snowsocket_server::rustls::InvalidMessage::InvalidContentType
                ))
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("use ws://"), "{error}");
        plain.shutdown();
        // ws:// to a TLS server.
        let identity = snowsocket_tests::tls::identity();
        let (tls, _events) = start(ServerConfig::default().tls(identity.server_config()), None);
        let error = client::connect(&url(&tls, false), ClientConfig::default()).unwrap_err();
        assert!(matches!(error, ClientError::ServerSpeaksTls), "{error:?}");
        assert!(error.to_string().contains("use wss://"), "{error}");
        tls.shutdown();
    });
}

#[test]
fn a_ca_certificate_as_the_servers_own_says_how_to_make_a_leaf() {
    bounded(30, || {
        let ca = snowsocket_tests::tls::ca_identity();
        let config = ServerConfig::default().tls(
            snowsocket_server::tls::server_config_from_der(
                vec![ca.cert_der.clone()],
                ca.private_key(),
            )
            .unwrap(),
        );
        let (server, _events) = start(config, None);
        let trusting = ClientConfig::default().add_root_der(ca.cert_der.to_vec());
        let error = client::connect(&url(&server, true), trusting).unwrap_err();
        assert!(matches!(error, ClientError::TlsHandshake(_)), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("CaUsedAsEndEntity"), "{message}");
        assert!(
            message.contains("basicConstraints=critical,CA:FALSE"),
            "{message}"
        );
        assert!(message.contains("openssl req -x509"), "{message}");
        server.shutdown();
        // The certificate the hint's advice makes (an end-entity one) works.
        let leaf = snowsocket_tests::tls::identity();
        let (server, _events) = start(ServerConfig::default().tls(leaf.server_config()), None);
        let trusting = ClientConfig::default().add_root_der(leaf.cert_der.to_vec());
        let mut client = client::connect(&url(&server, true), trusting).unwrap();
        client.close(CloseCode::NORMAL, "").unwrap();
        server.shutdown();
    });
}

#[test]
fn zero_limits_and_timeouts_are_refused_naming_the_field() {
    let zero = Duration::ZERO;
    let connection_cases = [
        (Config::DEFAULT.pong_timeout(zero), "pong_timeout"),
        (Config::DEFAULT.max_message_size(0), "max_message_size"),
        (Config::DEFAULT.max_frame_size(0), "max_frame_size"),
        (Config::DEFAULT.max_fragments(0), "max_fragments"),
        (Config::DEFAULT.close_timeout(zero), "close_timeout"),
        (Config::DEFAULT.ping_interval(Some(zero)), "ping_interval"),
        (
            Config::DEFAULT.fragment_timeout(Some(zero)),
            "fragment_timeout",
        ),
    ];
    for (config, field) in connection_cases {
        assert_eq!(config.validate().unwrap_err().field(), field);
        // The server refuses it when binding.
        let server = ServerConfig::default().connection(config);
        assert_eq!(
            server.validate().unwrap_err().field(),
            format!("connection.{field}")
        );
        let error = Server::bind("127.0.0.1:0", server).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(
            error
                .to_string()
                .contains(&format!("connection.{field} is 0")),
            "{error}"
        );
        // The client before connecting (nothing listens on port 9: the
        // check comes first).
        let client = ClientConfig::default().connection(config);
        match client::connect("ws://127.0.0.1:9/", client) {
            Err(ClientError::Config(e)) => assert_eq!(e.field(), format!("connection.{field}")),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
    // Turning the optional timers off is fine.
    let off = Config::DEFAULT.ping_interval(None).fragment_timeout(None);
    assert!(off.validate().is_ok());
    assert!(ServerConfig::default().connection(off).validate().is_ok());
    // The server's and the client's own fields.
    let server_cases = [
        (
            ServerConfig::default().max_connections(0),
            "max_connections",
        ),
        (
            ServerConfig::default().write_timeout(Duration::ZERO),
            "write_timeout",
        ),
        (
            ServerConfig::default().read_buffer_size(0),
            "read_buffer_size",
        ),
        (ServerConfig::default().memory_budget(0), "memory_budget"),
    ];
    for (config, field) in server_cases {
        assert_eq!(config.validate().unwrap_err().field(), field);
    }
    let client = ClientConfig::default().handshake_timeout(Duration::ZERO);
    match client::connect("ws://127.0.0.1:9/", client) {
        Err(ClientError::Config(e)) => assert_eq!(e.field(), "handshake_timeout"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // The core's blocking driver checks before its handshake.
    let (io, _peer) = pipe();
    let (mut read, mut write, mut message) = ([0u8; 512], [0u8; 512], [0u8; 512]);
    let parts = Parts {
        read_buf: &mut read,
        write_buf: &mut write,
        message_buf: SliceBuffer::new(&mut message[..]),
        rng: FixedRng::new(&[7]),
        clock: || CoreInstant::from_micros(0),
        config: Config::DEFAULT.max_message_size(0),
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: None,
    };
    match WebSocket::connect(io, parts, &ClientRequest::new("localhost", "/")) {
        Err(DriverError::InvalidConfig(e)) => assert_eq!(e.field(), "max_message_size"),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("connected with a zero message limit"),
    }
}

#[test]
fn a_reply_is_never_sent_after_the_close_that_followed_its_message() {
    bounded(30, || {
        // A message and a Close in one write: the echo goes out before the
        // server's Close reply (what `echo hi | snowsocket URL` needs).
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        let mut bytes = client_frame(true, OpCode::Text, b"hi");
        bytes.extend(client_frame(true, OpCode::Close, &close_payload(1000, b"")));
        raw.send(&bytes);
        assert_eq!(raw.frame(), Some((OpCode::Text, b"hi".to_vec())));
        assert_eq!(raw.close_code(), Some(1000));
        assert!(raw.at_eof());
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

#[test]
fn a_blocking_sender_waits_for_room_and_loses_nothing() {
    bounded(60, || {
        // A server that reads nothing until told to.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (go, wait) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let config = tungstenite::protocol::WebSocketConfig::default()
                .max_message_size(None)
                .max_frame_size(None);
            let mut ws = tungstenite::accept_with_config(stream, Some(config)).unwrap();
            wait.recv().unwrap();
            let mut received = Vec::new();
            loop {
                match ws.read() {
                    Ok(tungstenite::Message::Binary(data)) => received.push(data.len()),
                    Ok(tungstenite::Message::Text(text)) => {
                        received.push(0);
                        assert_eq!(text.as_str(), "last");
                    }
                    Ok(_) => {}
                    Err(_) => return received,
                }
            }
        });
        let mut config = ClientConfig::default();
        config.max_buffered_bytes = 64 * 1024;
        let mut client = client::connect(&format!("ws://{addr}/"), config).unwrap();
        // Fill the outbox (and the kernel's buffers) until a send is
        // refused as full.
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        loop {
            match client.send_binary(&chunk) {
                Ok(()) => sent += 1,
                Err(snowsocket_server::SendError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(sent < 4096, "never full");
        }
        // What a plain send refuses, a blocking sender waits for.
        let blocking = client.blocking_sender();
        let sending = thread::spawn(move || blocking.send_text("last"));
        go.send(()).unwrap();
        sending.join().unwrap().unwrap();
        client.close(CloseCode::NORMAL, "").unwrap();
        let received = server.join().unwrap();
        assert_eq!(received.len(), sent + 1);
        assert_eq!(received.last(), Some(&0));
        assert!(received[..sent].iter().all(|len| *len == chunk.len()));
    });
}
