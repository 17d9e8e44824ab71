//! The opening handshake (RFC 6455 §1.3, §4): the RFC's example in both
//! directions, parsing at every split point, and the HTTP answers to bad
//! requests.

use snowsocket_core::handshake::{
    self, accept_key, generate_key, ClientRequest, HandshakeError, HandshakeLimits, EMPTY_HEADER,
};
use snowsocket_tests::FixedRng;

const RFC_KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT: &[u8; 28] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// RFC 6455 §1.3's client handshake.
const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
/// RFC 6455 §1.3's server handshake.
const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

#[test]
fn rfc_accept_key_both_ways() {
    // Key → accept.
    assert_eq!(&accept_key(RFC_KEY), RFC_ACCEPT);
    // The key is the base64 of the RFC's nonce, "the sample nonce".
    let key = generate_key(&mut FixedRng::new(b"the sample nonce"));
    assert_eq!(&key, RFC_KEY);
    // Server side: the RFC request is answered with the RFC accept value.
    let mut headers = [EMPTY_HEADER; 16];
    let (request, consumed) =
        handshake::parse_request(RFC_REQUEST, &mut headers, &HandshakeLimits::DEFAULT)
            .unwrap()
            .into_complete()
            .unwrap();
    assert_eq!(consumed, RFC_REQUEST.len());
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.host(), "server.example.com");
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(
        request.subprotocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    assert_eq!(&request.accept_key(), RFC_ACCEPT);
    let mut out = [0u8; 512];
    let n = handshake::write_accept(&mut out, &request, Some("chat"), &[]).unwrap();
    // The same header lines as the RFC's answer (in our order).
    let answer = core::str::from_utf8(&out[..n]).unwrap();
    for line in core::str::from_utf8(RFC_RESPONSE)
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
    {
        assert!(answer.contains(line), "{line:?} missing from {answer:?}");
    }
    // Client side: the RFC answer is accepted for the RFC key.
    let mut headers = [EMPTY_HEADER; 16];
    let offered = ["chat", "superchat"];
    let (response, consumed) = handshake::parse_response(
        RFC_RESPONSE,
        &mut headers,
        RFC_KEY,
        &offered,
        &HandshakeLimits::DEFAULT,
    )
    .unwrap()
    .into_complete()
    .unwrap();
    assert_eq!(consumed, RFC_RESPONSE.len());
    assert_eq!(response.subprotocol(), Some("chat"));
    // And our request for the RFC key parses back as the RFC's.
    let req = ClientRequest {
        origin: Some("http://example.com"),
        subprotocols: &offered,
        ..ClientRequest::new("server.example.com", "/chat")
    };
    let n = handshake::write_request(&mut out, &req, RFC_KEY).unwrap();
    let mut headers = [EMPTY_HEADER; 16];
    let (parsed, _) = handshake::parse_request(&out[..n], &mut headers, &HandshakeLimits::DEFAULT)
        .unwrap()
        .into_complete()
        .unwrap();
    assert_eq!(parsed.key().as_bytes(), RFC_KEY);
    assert_eq!(&parsed.accept_key(), RFC_ACCEPT);
    // A wrong accept value is refused.
    let wrong = [b'A'; 24];
    let mut headers = [EMPTY_HEADER; 16];
    assert_eq!(
        handshake::parse_response(
            RFC_RESPONSE,
            &mut headers,
            &wrong,
            &offered,
            &HandshakeLimits::DEFAULT
        )
        .err(),
        Some(HandshakeError::InvalidAccept)
    );
}

/// Parsing restarts on the whole buffer: every prefix is incomplete, the
/// whole is complete, and bytes after the header block (the first frame)
/// are not consumed.
#[test]
fn request_and_response_at_every_split_point() {
    let mut with_frame = RFC_REQUEST.to_vec();
    with_frame.extend([0x81, 0x80, 1, 2, 3, 4]);
    for cut in 0..RFC_REQUEST.len() {
        let mut headers = [EMPTY_HEADER; 16];
        assert_eq!(
            handshake::parse_request(&with_frame[..cut], &mut headers, &HandshakeLimits::DEFAULT)
                .map(|p| p.is_complete()),
            Ok(false),
            "cut {cut}"
        );
    }
    let mut headers = [EMPTY_HEADER; 16];
    let (_, consumed) =
        handshake::parse_request(&with_frame, &mut headers, &HandshakeLimits::DEFAULT)
            .unwrap()
            .into_complete()
            .unwrap();
    assert_eq!(consumed, RFC_REQUEST.len());
    for cut in 0..RFC_RESPONSE.len() {
        let mut headers = [EMPTY_HEADER; 16];
        let parsed = handshake::parse_response(
            &RFC_RESPONSE[..cut],
            &mut headers,
            RFC_KEY,
            &["chat"],
            &HandshakeLimits::DEFAULT,
        );
        assert_eq!(parsed.map(|p| p.is_complete()), Ok(false), "cut {cut}");
    }
}

/// Parses `request`, expecting an error with `status`, and checks the HTTP
/// answer written for it.
fn refused(request: &[u8], limits: &HandshakeLimits, status: u16) -> HandshakeError {
    let mut headers = [EMPTY_HEADER; 64];
    let e = handshake::parse_request(request, &mut headers, limits).unwrap_err();
    assert_eq!(e.status(), status, "{e:?}");
    let mut out = [0u8; 1024];
    let n = e.write_response(&mut out).unwrap();
    let text = core::str::from_utf8(&out[..n]).unwrap();
    assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    assert!(text.ends_with(e.reason()), "the body is the reason: {text}");
    e
}

fn replace(from: &str, to: &str) -> Vec<u8> {
    let s = core::str::from_utf8(RFC_REQUEST).unwrap();
    assert!(s.contains(from));
    s.replacen(from, to, 1).into_bytes()
}

#[test]
fn bad_requests_get_the_right_status() {
    let l = HandshakeLimits::DEFAULT;
    assert_eq!(
        refused(
            &replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            &l,
            400
        ),
        HandshakeError::MissingKey
    );
    assert_eq!(
        refused(
            &replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
            &l,
            400
        ),
        HandshakeError::InvalidKey
    );
    assert_eq!(
        refused(&replace("Host: server.example.com\r\n", ""), &l, 400),
        HandshakeError::MissingHost
    );
    assert_eq!(
        refused(
            &replace("Connection: Upgrade", "Connection: keep-alive"),
            &l,
            400
        ),
        HandshakeError::MissingConnectionUpgrade
    );
    assert_eq!(
        refused(&replace("HTTP/1.1", "HTTP/1.0"), &l, 400),
        HandshakeError::NotHttp11
    );
    assert!(matches!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", &l, 400),
        HandshakeError::Http(_)
    ));
    // 426: a plain HTTP request, or a version other than 13 (answered with
    // the version we speak).
    let e = refused(&replace("Upgrade: websocket\r\n", ""), &l, 426);
    assert_eq!(e, HandshakeError::NotUpgrade);
    let e = refused(
        &replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        &l,
        426,
    );
    let mut out = [0u8; 1024];
    let n = e.write_response(&mut out).unwrap();
    assert!(core::str::from_utf8(&out[..n])
        .unwrap()
        .contains("Sec-WebSocket-Version: 13\r\n"));
    refused(&replace("Sec-WebSocket-Version: 13\r\n", ""), &l, 426);
    // 405 with Allow: GET.
    let e = refused(&replace("GET /chat", "POST /chat"), &l, 405);
    let n = e.write_response(&mut out).unwrap();
    assert!(core::str::from_utf8(&out[..n])
        .unwrap()
        .contains("Allow: GET\r\n"));
    // 431: over the size limit, or too many headers.
    let mut big = RFC_REQUEST.to_vec();
    big.splice(
        20..20,
        b"X-Big: "
            .iter()
            .copied()
            .chain([b'a'; 9000])
            .chain(*b"\r\n"),
    );
    assert_eq!(refused(&big, &l, 431), HandshakeError::TooLarge);
    let small = HandshakeLimits {
        max_request_size: 100,
        ..l
    };
    assert_eq!(refused(RFC_REQUEST, &small, 431), HandshakeError::TooLarge);
    let few = HandshakeLimits {
        max_headers: 3,
        ..l
    };
    assert_eq!(
        refused(RFC_REQUEST, &few, 431),
        HandshakeError::TooManyHeaders
    );
}
