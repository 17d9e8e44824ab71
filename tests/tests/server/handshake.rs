//! The opening handshake: slowloris, plain HTTP, the accept hook, garbage over TLS, max_connections.

use super::*;

pub(crate) fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
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
pub(crate) struct Room(pub(crate) String);

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
