//! Tests of `handshake::client`.

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::error::InsufficientSizeError;
use crate::handshake::{parse_request, write_accept, EMPTY_HEADER};

/// An RNG that repeats a fixed byte sequence.
struct FixedRng {
    bytes: &'static [u8],
    next: usize,
}

impl FixedRng {
    fn new(bytes: &'static [u8]) -> Self {
        Self { bytes, next: 0 }
    }
}

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.bytes[self.next % self.bytes.len()];
            self.next += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

const RFC_KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// RFC 6455 §1.2's answer.
const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
    Sec-WebSocket-Protocol: chat\r\n\r\n";

const OFFERED: &[&str] = &["chat", "superchat"];

#[test]
fn generate_key_from_fixed_rng() {
    // RFC 6455 §1.3's nonce gives its key.
    let mut rng = FixedRng::new(b"the sample nonce");
    assert_eq!(&generate_key(&mut rng), RFC_KEY);
    let mut rng = FixedRng::new(&[0]);
    assert_eq!(&generate_key(&mut rng), b"AAAAAAAAAAAAAAAAAAAAAA==");
    // Through a trait object too.
    let rng: &mut dyn RngCore = &mut FixedRng::new(&[0xff]);
    let key = generate_key(rng);
    assert_eq!(&key, b"/////////////////////w==");
    assert!(is_valid_key(&key));
}

#[test]
fn write_request_rfc_example() {
    let request = ClientRequest {
        host: "server.example.com",
        path: "/chat",
        origin: Some("http://example.com"),
        subprotocols: &["chat", "superchat"],
        extra_headers: &[("Authorization", b"Bearer x")],
    };
    let mut out = [0u8; 512];
    let n = write_request(&mut out, &request, RFC_KEY).unwrap();
    assert_eq!(
        &out[..n],
        &b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Authorization: Bearer x\r\n\r\n"[..]
    );
    let minimal = ClientRequest::new("127.0.0.1:9001", "/");
    let n = write_request(&mut out, &minimal, RFC_KEY).unwrap();
    assert_eq!(
        &out[..n],
        &b"GET / HTTP/1.1\r\n\
        Host: 127.0.0.1:9001\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n"[..]
    );
}

#[test]
fn write_request_refusals() {
    let mut out = [0u8; 512];
    let base = ClientRequest::new("example.com", "/chat");
    let write = |out: &mut [u8], request: ClientRequest<'_>| write_request(out, &request, RFC_KEY);
    for host in [
        "",
        "example.com\r\nX-Injected: 1",
        "exa mple.com",
        "a\tb",
        "h\u{e9}",
    ] {
        let request = ClientRequest { host, ..base };
        assert_eq!(
            write(&mut out, request),
            Err(WriteError::InvalidHost),
            "{host:?}"
        );
    }
    for path in [
        "",
        "chat",
        "/ch at",
        "/chat HTTP/1.1\r\nX: y",
        "/\n",
        "/caf\u{e9}",
    ] {
        let request = ClientRequest { path, ..base };
        assert_eq!(
            write(&mut out, request),
            Err(WriteError::InvalidTarget),
            "{path:?}"
        );
    }
    for origin in ["", "http://a\r\nX: y", "http://a\nb"] {
        let request = ClientRequest {
            origin: Some(origin),
            ..base
        };
        assert_eq!(
            write(&mut out, request),
            Err(WriteError::InvalidHeaderValue)
        );
    }
    for protocol in ["", "a b", "a,b", "chat\r\nX: y", "a;b"] {
        let subprotocols = [protocol];
        let request = ClientRequest {
            subprotocols: &subprotocols,
            ..base
        };
        assert_eq!(
            write(&mut out, request),
            Err(WriteError::InvalidSubprotocol)
        );
    }
    let extra: [&[(&str, &[u8])]; 4] = [
        &[("Cookie", b"a=b\r\nX-Injected: 1")],
        &[("Cookie: a=b\r\nX", b"1")],
        &[("sec-websocket-key", b"AAAAAAAAAAAAAAAAAAAAAA==")],
        &[("Sec-WebSocket-Extensions", b"permessage-deflate")],
    ];
    let expected = [
        WriteError::InvalidHeaderValue,
        WriteError::InvalidHeaderName,
        WriteError::ReservedHeader,
        WriteError::ReservedHeader,
    ];
    for (extra_headers, expected) in extra.into_iter().zip(expected) {
        let request = ClientRequest {
            extra_headers,
            ..base
        };
        assert_eq!(write(&mut out, request), Err(expected));
    }
    for key in [
        b"dGhlIHNhbXBsZSBub25jZQ\r\n",
        b"!!!!!!!!!!!!!!!!!!!!!!==",
        b"dGhlIHNhbXBsZSBub25jZSE=",
    ] {
        assert_eq!(
            write_request(&mut out, &base, key),
            Err(WriteError::InvalidKey)
        );
    }
}

#[test]
fn write_request_too_small() {
    let request = ClientRequest {
        origin: Some("https://example.com"),
        subprotocols: &["a", "b"],
        ..ClientRequest::new("example.com", "/x?y=z")
    };
    let mut out = [0u8; 512];
    let n = write_request(&mut out, &request, RFC_KEY).unwrap();
    for size in 0..n {
        assert_eq!(
            write_request(&mut out[..size], &request, RFC_KEY),
            Err(WriteError::InsufficientSize(InsufficientSizeError {
                required: n
            }))
        );
    }
}

fn response_err(buf: &[u8], offered: &[&str]) -> HandshakeError {
    let mut headers = [EMPTY_HEADER; 16];
    match parse_response(
        buf,
        &mut headers,
        RFC_KEY,
        offered,
        &HandshakeLimits::default(),
    ) {
        Err(e) => e,
        Ok(other) => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

#[test]
fn parses_rfc_response() {
    let mut headers = [EMPTY_HEADER; 16];
    let limits = HandshakeLimits::default();
    let parsed = parse_response(RFC_RESPONSE, &mut headers, RFC_KEY, OFFERED, &limits);
    let (response, consumed) = parsed.unwrap().into_complete().unwrap();
    assert_eq!(consumed, RFC_RESPONSE.len());
    assert_eq!(response.subprotocol(), Some("chat"));
    assert_eq!(response.headers().len(), 4);
    assert_eq!(response.header("upgrade"), Some(&b"websocket"[..]));
    assert_eq!(response.header("X-Missing"), None);
    // Case and token lists in Upgrade and Connection; no subprotocol.
    let lenient = b"HTTP/1.1 101 Web Socket Protocol Handshake\r\n\
        upgrade: WebSocket\r\n\
        CONNECTION: keep-alive\r\n\
        Connection:  upgrade \r\n\
        sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\r\n";
    let parsed = parse_response(lenient, &mut headers, RFC_KEY, OFFERED, &limits);
    let (response, _) = parsed.unwrap().into_complete().unwrap();
    assert_eq!(response.subprotocol(), None);
}

#[test]
fn response_every_split_point() {
    let frame = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    let mut input = RFC_RESPONSE.to_vec();
    input.extend_from_slice(&frame);
    let mut headers = [EMPTY_HEADER; 16];
    let limits = HandshakeLimits::default();
    for end in 0..RFC_RESPONSE.len() {
        let parsed = parse_response(&input[..end], &mut headers, RFC_KEY, OFFERED, &limits);
        assert!(!parsed.unwrap().is_complete(), "at {end}");
    }
    for end in RFC_RESPONSE.len()..=input.len() {
        let parsed = parse_response(&input[..end], &mut headers, RFC_KEY, OFFERED, &limits);
        let (response, consumed) = parsed.unwrap().into_complete().unwrap();
        assert_eq!(consumed, RFC_RESPONSE.len());
        assert_eq!(response.subprotocol(), Some("chat"));
    }
}

#[test]
fn response_rejections() {
    use HandshakeError as E;
    const UPGRADE: &str = "Upgrade: websocket\r\n";
    const CONNECTION: &str = "Connection: Upgrade\r\n";
    const ACCEPT: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    let response = |status_line: &str, lines: &[&str]| -> Vec<u8> {
        let mut s = String::from(status_line);
        s.push_str("\r\n");
        for line in lines {
            s.push_str(line);
        }
        s.push_str("\r\n");
        s.into_bytes()
    };
    let ok = "HTTP/1.1 101 Switching Protocols";
    let cases: Vec<(Vec<u8>, &[&str], HandshakeError)> = std::vec![
        (
            response("HTTP/1.1 400 Bad Request", &["Content-Length: 0\r\n"]),
            OFFERED,
            E::BadStatus(400)
        ),
        (
            response("HTTP/1.1 200 OK", &[UPGRADE, CONNECTION, ACCEPT]),
            OFFERED,
            E::BadStatus(200)
        ),
        (
            response(
                "HTTP/1.0 101 Switching Protocols",
                &[UPGRADE, CONNECTION, ACCEPT]
            ),
            OFFERED,
            E::NotHttp11
        ),
        (
            response(ok, &[CONNECTION, ACCEPT]),
            OFFERED,
            E::InvalidUpgrade
        ),
        (
            response(ok, &["Upgrade: h2c\r\n", CONNECTION, ACCEPT]),
            OFFERED,
            E::InvalidUpgrade
        ),
        (
            response(ok, &[UPGRADE, ACCEPT]),
            OFFERED,
            E::MissingConnectionUpgrade
        ),
        (
            response(ok, &[UPGRADE, "Connection: close\r\n", ACCEPT]),
            OFFERED,
            E::MissingConnectionUpgrade
        ),
        (
            response(ok, &[UPGRADE, CONNECTION]),
            OFFERED,
            E::MissingAccept
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
                ]
            ),
            OFFERED,
            E::InvalidAccept
        ),
        (
            // The key itself, not its accept value.
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                ]
            ),
            OFFERED,
            E::InvalidAccept
        ),
        (
            response(ok, &[UPGRADE, CONNECTION, ACCEPT, ACCEPT]),
            OFFERED,
            E::InvalidAccept
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                ]
            ),
            OFFERED,
            E::UnexpectedExtensions
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Protocol: mqtt\r\n"
                ]
            ),
            OFFERED,
            E::UnexpectedSubprotocol
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Protocol: chat\r\n"
                ]
            ),
            &[],
            E::UnexpectedSubprotocol
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Protocol: chat, superchat\r\n"
                ]
            ),
            OFFERED,
            E::UnexpectedSubprotocol
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Protocol: Chat\r\n"
                ]
            ),
            OFFERED,
            E::UnexpectedSubprotocol
        ),
        (
            response(
                ok,
                &[
                    UPGRADE,
                    CONNECTION,
                    ACCEPT,
                    "Sec-WebSocket-Protocol: chat\r\n",
                    "Sec-WebSocket-Protocol: chat\r\n"
                ]
            ),
            OFFERED,
            E::UnexpectedSubprotocol
        ),
    ];
    for (buf, offered, expected) in cases {
        assert_eq!(
            response_err(&buf, offered),
            expected,
            "{}",
            String::from_utf8_lossy(&buf)
        );
    }
    assert!(matches!(
        response_err(b"HTTP/1.1 1o1 X\r\n\r\n", OFFERED),
        E::Http(_)
    ));
    // Limits apply to responses too.
    let mut headers = [EMPTY_HEADER; 2];
    let limits = HandshakeLimits::default();
    let parsed = parse_response(RFC_RESPONSE, &mut headers, RFC_KEY, OFFERED, &limits);
    assert_eq!(parsed.unwrap_err(), E::TooManyHeaders);
    let mut headers = [EMPTY_HEADER; 16];
    let small = HandshakeLimits {
        max_request_size: 40,
        ..limits
    };
    let parsed = parse_response(RFC_RESPONSE, &mut headers, RFC_KEY, OFFERED, &small);
    assert_eq!(parsed.unwrap_err(), E::TooLarge);
}

#[test]
fn round_trip() {
    let mut rng = FixedRng::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    let key = generate_key(&mut rng);
    let client = ClientRequest {
        host: "localhost:9001",
        path: "/ws?token=abc",
        origin: Some("https://app.example"),
        subprotocols: &["v2.json", "v1.json"],
        extra_headers: &[("Cookie", b"session=1")],
    };
    let mut wire = [0u8; 1024];
    let request_len = write_request(&mut wire, &client, &key).unwrap();
    // The client's first frame follows right away (masked "Hi").
    let first_frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
    wire[request_len..request_len + first_frame.len()].copy_from_slice(&first_frame);
    let sent = &wire[..request_len + first_frame.len()];

    // Server.
    let mut request_headers = [EMPTY_HEADER; 32];
    let limits = HandshakeLimits::default();
    let parsed = parse_request(sent, &mut request_headers, &limits).unwrap();
    let (request, consumed) = parsed.into_complete().unwrap();
    assert_eq!(consumed, request_len);
    assert_eq!(&sent[consumed..], &first_frame);
    assert_eq!(request.host(), "localhost:9001");
    assert_eq!(request.path(), "/ws");
    assert_eq!(request.query(), Some("token=abc"));
    assert_eq!(request.origin(), Some("https://app.example"));
    assert_eq!(request.key().as_bytes(), &key);
    assert_eq!(request.header("cookie"), Some(&b"session=1"[..]));
    let chosen = request.subprotocols().find(|p| *p == "v1.json");
    assert_eq!(chosen, Some("v1.json"));
    let mut answer = [0u8; 512];
    let extra: &[(&str, &[u8])] = &[("Server", b"snowsocket")];
    let answer_len = write_accept(&mut answer, &request, chosen, extra).unwrap();
    // The server's first frame follows its answer (unmasked "Hi").
    answer[answer_len..answer_len + 4].copy_from_slice(&[0x81, 0x02, b'H', b'i']);
    let received = &answer[..answer_len + 4];

    // Client.
    let mut response_headers = [EMPTY_HEADER; 16];
    let parsed = parse_response(
        received,
        &mut response_headers,
        &key,
        client.subprotocols,
        &limits,
    );
    let (response, consumed) = parsed.unwrap().into_complete().unwrap();
    assert_eq!(consumed, answer_len);
    assert_eq!(&received[consumed..], &[0x81, 0x02, b'H', b'i']);
    assert_eq!(response.subprotocol(), Some("v1.json"));
    assert_eq!(response.header("server"), Some(&b"snowsocket"[..]));

    // A different key does not verify.
    let other_key = generate_key(&mut FixedRng::new(&[9]));
    assert_ne!(other_key, key);
    let parsed = parse_response(
        received,
        &mut response_headers,
        &other_key,
        client.subprotocols,
        &limits,
    );
    assert_eq!(parsed.unwrap_err(), HandshakeError::InvalidAccept);
}
