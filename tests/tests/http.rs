//! Plain HTTP beside the WebSocket on the same port: `Handler::on_request`
//! (pages, health checks, redirects, HEAD, request bodies and their
//! bounds), headers on `Accept::reject`, header injection refused, and
//! `Server::from_listener`. Real sockets on 127.0.0.1, port 0; every test
//! is bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use snowsocket_core::handshake::HandshakeLimits;
use snowsocket_server::client::{self, ClientConfig, ClientError};
use snowsocket_server::{
    Accept, ConnectionHandle, Handler, HttpRequest, HttpResponse, Message, Server, ServerConfig,
    ServerHandle, UpgradeRequest,
};
use snowsocket_tests::server::{
    bounded, close_tungstenite, echo_round_trips, tung_ws, tung_wss, TlsClientStream, UPGRADE, WAIT,
};
use snowsocket_tests::tls;

/// A small site beside an echo WebSocket.
struct Site;

impl Handler for Site {
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        match (request.method(), request.path()) {
            (_, "/") => HttpResponse::html("<h1>chat</h1>"),
            ("GET" | "HEAD", "/health") => HttpResponse::text(200, "ok"),
            ("GET", "/old") => HttpResponse::redirect(308, "/"),
            ("GET", "/whoami") => HttpResponse::text(
                200,
                format!(
                    "{} {:?} 1.{} tls={} host={}",
                    request.target(),
                    request.query(),
                    request.version(),
                    request.is_tls(),
                    String::from_utf8_lossy(request.header("host").unwrap_or_default()),
                ),
            ),
            ("POST", "/echo") => HttpResponse::new(200)
                .with_header("Content-Type", "application/octet-stream")
                .with_body(request.body()),
            ("GET", "/inject") => {
                HttpResponse::text(200, "x").with_header("X-Note", "a\r\nSet-Cookie: stolen=1")
            }
            ("GET", "/bad-name") => HttpResponse::text(200, "x").with_header("X Note", "a"),
            ("GET", "/big") => HttpResponse::text(200, "a".repeat(2000)),
            ("GET", "/panic") => panic!("a handler bug"),
            _ => HttpResponse::not_found(),
        }
    }

    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        match request.path() {
            "/private" => {
                Accept::reject(401, "token needed").with_header("WWW-Authenticate", "Bearer")
            }
            "/moved" => Accept::reject(302, "").with_header("Location", "/"),
            "/inject" => Accept::reject(403, "no").with_header("X-Why", "a\r\n\r\nHTTP/1.1 200 OK"),
            "/inject-upgrade" => Accept::upgrade().with_header("X-Why", "a\nb"),
            _ => Accept::upgrade(),
        }
    }

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }
}

/// A handler that only echoes: no `on_request`.
struct EchoOnly;

impl Handler for EchoOnly {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }
}

fn spawn(config: ServerConfig, handler: impl Handler) -> ServerHandle {
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn(handler)
        .unwrap()
}

/// Sends `request` and reads the whole answer, up to the server's EOF
/// (which must come: the server closes after answering).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    read_to_eof(&mut stream)
}

fn read_to_eof(stream: &mut impl Read) -> String {
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("the server closes after its answer");
    String::from_utf8(response).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// The answer's head and body.
fn split(response: &str) -> (&str, &str) {
    response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header block end in {response:?}"))
}

#[test]
fn without_a_hook_every_plain_request_gets_426_and_the_connection_closes() {
    bounded(20, || {
        let server = spawn(ServerConfig::default(), EchoOnly);
        let addr = server.local_addr();
        for method in ["GET", "POST", "DELETE"] {
            let response = exchange(
                addr,
                format!("{method} /x HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
            );
            let (head, body) = split(&response);
            assert!(
                head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
                "{head}"
            );
            assert!(head.contains("\r\nUpgrade: websocket\r\n"), "{head}");
            assert!(head.contains("\r\nSec-WebSocket-Version: 13"), "{head}");
            assert!(
                head.contains("\r\nConnection: Upgrade, close\r\n"),
                "{head}"
            );
            assert_eq!(body, "WebSocket upgrade required");
        }
        // HEAD: the same head, no body.
        let response = exchange(addr, b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let (head, body) = split(&response);
        assert!(head.starts_with("HTTP/1.1 426"), "{head}");
        assert!(head.contains("Content-Length: 26"), "{head}");
        assert_eq!(body, "");
        // HTTP/1.0 too.
        let response = exchange(addr, b"GET / HTTP/1.0\r\n\r\n");
        assert!(response.starts_with("HTTP/1.1 426"), "{response}");
        // A bad upgrade is still answered as before (not by the hook).
        let bad = UPGRADE.replace("GET", "POST");
        let response = exchange(addr, bad.as_bytes());
        assert!(response.starts_with("HTTP/1.1 405"), "{response}");
        assert!(response.contains("Allow: GET"), "{response}");
        // And the WebSocket works on the same port.
        let mut ws = tung_ws(&server);
        echo_round_trips(&mut ws, &[0, 5, 70_000]);
        close_tungstenite(&mut ws);
        server.shutdown();
    });
}

#[test]
fn the_hook_serves_pages_health_checks_and_redirects_beside_the_websocket() {
    bounded(20, || {
        let server = spawn(ServerConfig::default(), Site);
        let addr = server.local_addr();
        let page = get(addr, "/");
        let (head, body) = split(&page);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        assert!(
            head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nContent-Length: 13"), "{head}");
        assert_eq!(body, "<h1>chat</h1>");
        assert_eq!(split(&get(addr, "/health")).1, "ok");
        // HEAD: the head of the GET, Content-Length included, no body.
        let head_only = exchange(addr, b"HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let full = get(addr, "/health");
        assert_eq!(head_only, full.strip_suffix("ok").unwrap());
        assert!(head_only.contains("Content-Length: 2\r\n"), "{head_only}");
        // A redirect.
        let moved = get(addr, "/old");
        let (head, body) = split(&moved);
        assert!(
            head.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nLocation: /\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Length: 0"), "{head}");
        assert_eq!(body, "");
        let missing = get(addr, "/nowhere");
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        // What the hook sees, over HTTP/1.0 as well.
        let whoami = exchange(addr, b"GET /whoami?a=1 HTTP/1.0\r\nHost: h.test\r\n\r\n");
        assert_eq!(
            split(&whoami).1,
            "/whoami?a=1 Some(\"a=1\") 1.0 tls=false host=h.test"
        );
        // Another upgrade (curl --http2 asks for h2c) is ignored: plain HTTP.
        let h2c = exchange(
            addr,
            b"GET /health HTTP/1.1\r\nHost: l\r\nConnection: Upgrade, HTTP2-Settings\r\n\
              Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        );
        assert_eq!(split(&h2c).1, "ok");
        // A bad WebSocket upgrade is not plain HTTP: the hook never sees it.
        let bad = UPGRADE.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
        let response = exchange(addr, bad.as_bytes());
        assert!(response.starts_with("HTTP/1.1 426"), "{response}");
        assert!(response.ends_with("version 13 only"), "{response}");
        let bad = UPGRADE
            .replace("Upgrade: websocket", "Upgrade: h2c, WebSocket")
            .replace("HTTP/1.1", "HTTP/1.0");
        let response = exchange(addr, bad.as_bytes());
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        // A panic in the hook is a 500 for that request only.
        let panicked = get(addr, "/panic");
        assert!(panicked.starts_with("HTTP/1.1 500"), "{panicked}");
        // The WebSocket, on the same port, at a path the hook also serves.
        let mut ws = tung_ws(&server);
        echo_round_trips(&mut ws, &[3, 126]);
        close_tungstenite(&mut ws);
        assert_eq!(split(&get(addr, "/health")).1, "ok");
        server.shutdown();
    });
}

#[test]
fn the_hook_answers_over_tls_too() {
    bounded(20, || {
        let identity = tls::identity();
        let config = ServerConfig::default().tls(identity.server_config());
        let server = spawn(config, Site);
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut tls_stream: TlsClientStream = tls::client_stream(&identity, stream);
        tls_stream
            .write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let response = read_to_eof(&mut tls_stream);
        assert_eq!(
            split(&response).1,
            "/whoami None 1.1 tls=true host=localhost"
        );
        let mut ws = tung_wss(&server, &identity);
        echo_round_trips(&mut ws, &[7]);
        close_tungstenite(&mut ws);
        server.shutdown();
    });
}

#[test]
fn rejections_carry_headers_401_with_www_authenticate_and_a_redirect() {
    bounded(20, || {
        let server = spawn(ServerConfig::default(), Site);
        let addr = server.local_addr();
        let response = exchange(addr, UPGRADE.replace("GET /", "GET /private").as_bytes());
        let (head, body) = split(&response);
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
        assert!(head.contains("\r\nWWW-Authenticate: Bearer"), "{head}");
        assert_eq!(body, "token needed");
        let response = exchange(addr, UPGRADE.replace("GET /", "GET /moved").as_bytes());
        let (head, _) = split(&response);
        assert!(head.starts_with("HTTP/1.1 302 Found\r\n"), "{head}");
        assert!(head.contains("\r\nLocation: /"), "{head}");
        // Our client sees the status, the header and the body.
        let url = format!("ws://127.0.0.1:{}/private", addr.port());
        match client::connect(&url, ClientConfig::default()) {
            Err(ClientError::Rejected(response)) => {
                assert_eq!(response.status, 401);
                assert_eq!(response.header("www-authenticate"), Some(&b"Bearer"[..]));
                assert_eq!(response.body_text(), "token needed");
            }
            other => panic!("expected a 401, got {other:?}"),
        }
        server.shutdown();
    });
}

#[test]
fn header_injection_is_refused_with_a_500_never_a_split_answer() {
    bounded(20, || {
        let server = spawn(ServerConfig::default(), Site);
        let addr = server.local_addr();
        let check = |response: &str| {
            let (head, body) = split(response);
            assert!(head.starts_with("HTTP/1.1 500"), "{head}");
            assert_eq!(body, "internal error");
            for injected in ["Set-Cookie", "X-Note", "X-Why", "X Note", "200 OK"] {
                assert!(!response.contains(injected), "{response}");
            }
        };
        check(&get(addr, "/inject"));
        check(&get(addr, "/bad-name"));
        check(&exchange(
            addr,
            UPGRADE.replace("GET /", "GET /inject").as_bytes(),
        ));
        check(&exchange(
            addr,
            UPGRADE.replace("GET /", "GET /inject-upgrade").as_bytes(),
        ));
        server.shutdown();
    });
}

#[test]
fn request_bodies_are_read_within_the_handshake_limits() {
    bounded(20, || {
        let limits = HandshakeLimits {
            max_request_size: 1024,
            ..HandshakeLimits::DEFAULT
        };
        let config = ServerConfig::default()
            .handshake_limits(limits)
            .handshake_timeout(Duration::from_millis(400));
        let server = spawn(config, Site);
        let addr = server.local_addr();
        let post = |len: usize, extra: &str| {
            format!(
                "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n{extra}\r\n"
            )
        };
        // A body, in the same write.
        let response = exchange(addr, format!("{}hello", post(5, "")).as_bytes());
        assert_eq!(split(&response).1, "hello");
        // A body that comes after the head, in pieces.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(post(6, "").as_bytes()).unwrap();
        stream.flush().unwrap();
        for piece in [&b"ab"[..], b"cd", b"ef"] {
            thread_yield();
            stream.write_all(piece).unwrap();
        }
        assert_eq!(split(&read_to_eof(&mut stream)).1, "abcdef");
        // Head and body over the limit: 413 at once, before the body.
        let response = exchange(addr, post(2000, "").as_bytes());
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        // No length: 411; a bad length: 400.
        let chunked = "POST /echo HTTP/1.1\r\nHost: l\r\nTransfer-Encoding: chunked\r\n\r\n";
        let response = exchange(addr, chunked.as_bytes());
        assert!(response.starts_with("HTTP/1.1 411"), "{response}");
        for bad in [
            "Content-Length: -1\r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
        ] {
            let request = format!("POST /echo HTTP/1.1\r\nHost: l\r\n{bad}\r\nxx");
            let response = exchange(addr, request.as_bytes());
            assert!(response.starts_with("HTTP/1.1 400"), "{bad}: {response}");
        }
        // A body that never completes: closed at the handshake timeout,
        // unanswered.
        let started = Instant::now();
        let response = exchange(addr, format!("{}abc", post(10, "")).as_bytes());
        assert_eq!(response, "");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // A header block over the limit: 431, hook or not.
        let big = format!(
            "GET / HTTP/1.1\r\nHost: l\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2000)
        );
        let response = exchange(addr, big.as_bytes());
        assert!(response.starts_with("HTTP/1.1 431"), "{response}");
        // Slowloris on a plain request: closed at the timeout, unanswered.
        let started = Instant::now();
        let response = exchange(addr, b"GET /health HTTP/1.1\r\nHost: l\r\n");
        assert_eq!(response, "");
        assert!(started.elapsed() < Duration::from_secs(5));
        server.shutdown();
    });
}

#[test]
fn a_response_body_over_max_buffered_bytes_is_a_500() {
    bounded(20, || {
        let config = ServerConfig::default().max_buffered_bytes(1000);
        let server = spawn(config, Site);
        let response = get(server.local_addr(), "/big");
        assert!(response.starts_with("HTTP/1.1 500"), "{response}");
        let response = get(server.local_addr(), "/health");
        assert_eq!(split(&response).1, "ok");
        server.shutdown();
    });
}

#[test]
fn from_listener_serves_a_listener_bound_elsewhere() {
    bounded(20, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::from_listener(listener, ServerConfig::default()).unwrap();
        assert_eq!(server.local_addr().unwrap(), addr);
        let server = server.spawn(Site).unwrap();
        assert_eq!(server.local_addr(), addr);
        assert_eq!(split(&get(addr, "/health")).1, "ok");
        let mut ws = tung_ws(&server);
        echo_round_trips(&mut ws, &[1, 300]);
        close_tungstenite(&mut ws);
        server.shutdown();
        // A bad configuration is refused before the listener is used.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = Server::from_listener(listener, ServerConfig::default().event_loops(0));
        assert!(refused.is_err());
    });
}

/// Lets the server see each write on its own (no timing is asserted).
fn thread_yield() {
    std::thread::sleep(Duration::from_millis(20));
}
