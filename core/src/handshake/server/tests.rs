//! Tests of `handshake::server`.

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::handshake::EMPTY_HEADER;

/// RFC 6455 §1.2's request, with a query added.
const VALID: &[u8] = b"GET /chat?room=1&x HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

const BASE_HEADERS: [&str; 7] = [
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Origin: http://example.com",
    "Sec-WebSocket-Protocol: chat, superchat",
    "Sec-WebSocket-Version: 13",
];

/// A request line followed by header lines.
fn build(request_line: &str, lines: &[&str]) -> Vec<u8> {
    let mut s = String::from(request_line);
    s.push_str("\r\n");
    for line in lines {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The base headers with those starting with `drop` (a name and colon)
/// removed and `add` appended.
fn variant(drop: &[&str], add: &[&str]) -> Vec<u8> {
    let mut lines: Vec<&str> = BASE_HEADERS
        .iter()
        .copied()
        .filter(|l| !drop.iter().any(|d| l.starts_with(d)))
        .collect();
    lines.extend_from_slice(add);
    build("GET /chat HTTP/1.1", &lines)
}

#[test]
fn an_answer_written_with_its_key_held_is_the_same_once_filled_in() {
    // What a driver does (`session::server_handshake_with`): write the
    // answer with a placeholder, then put the key at ACCEPT_KEY_AT.
    with_request(VALID, |request, _| {
        for subprotocol in [None, Some("chat")] {
            let extra: &[(&str, &[u8])] = &[("Set-Cookie", b"id=1")];
            let mut whole = [0u8; 512];
            let n = write_accept(&mut whole, &request, subprotocol, extra).unwrap();
            let mut held = [0u8; 512];
            let m =
                write_accept_keyed(&mut held, &request, subprotocol, None, extra, None).unwrap();
            assert_eq!(m, n);
            assert_ne!(held[..n], whole[..n]);
            held[ACCEPT_KEY_AT..ACCEPT_KEY_AT + 28].copy_from_slice(&request.accept_key());
            assert_eq!(held[..n], whole[..n]);
        }
    });
}

fn parse_err(buf: &[u8]) -> HandshakeError {
    let mut headers = [EMPTY_HEADER; 64];
    match parse_request(buf, &mut headers, &HandshakeLimits::default()) {
        Err(e) => e,
        Ok(other) => panic!(
            "expected an error for {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

fn with_request<R>(buf: &[u8], f: impl FnOnce(Request<'_, '_>, usize) -> R) -> R {
    let mut headers = [EMPTY_HEADER; 64];
    match parse_request(buf, &mut headers, &HandshakeLimits::default()) {
        Ok(Parsed::Complete { value, consumed }) => f(value, consumed),
        other => panic!(
            "expected a request from {:?}, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

#[test]
fn parses_rfc_request() {
    with_request(VALID, |request, consumed| {
        assert_eq!(consumed, VALID.len());
        assert_eq!(request.method(), "GET");
        assert_eq!(request.target(), "/chat?room=1&x");
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.query(), Some("room=1&x"));
        assert_eq!(request.host(), "server.example.com");
        assert_eq!(request.origin(), Some("http://example.com"));
        assert_eq!(request.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(&request.accept_key(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(request.headers().len(), 7);
        assert_eq!(request.header("sec-websocket-version"), Some(&b"13"[..]));
        assert_eq!(request.header("ORIGIN"), Some(&b"http://example.com"[..]));
        assert_eq!(request.header("Cookie"), None);
        let offered: Vec<&str> = request.subprotocols().collect();
        assert_eq!(offered, ["chat", "superchat"]);
        assert!(request.offers_subprotocol("superchat"));
        assert!(!request.offers_subprotocol("Chat"));
        assert!(!request.offers_subprotocol("chat, superchat"));
    });
    // No query, no origin, no subprotocol.
    let buf = variant(&["Origin:", "Sec-WebSocket-Protocol:"], &[]);
    with_request(&buf, |request, _| {
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.query(), None);
        assert_eq!(request.origin(), None);
        assert_eq!(request.subprotocols().next(), None);
    });
}

#[test]
fn every_split_point_is_incomplete_then_complete() {
    // A masked text frame "Hello" (RFC 6455 §5.7) right after the request.
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut input = VALID.to_vec();
    input.extend_from_slice(&frame);
    let mut headers = [EMPTY_HEADER; 16];
    for end in 0..VALID.len() {
        let parsed = parse_request(&input[..end], &mut headers, &HandshakeLimits::default());
        assert_eq!(
            parsed.unwrap().into_complete().map(|(_, n)| n),
            None,
            "at {end}"
        );
    }
    for end in VALID.len()..=input.len() {
        let parsed = parse_request(&input[..end], &mut headers, &HandshakeLimits::default());
        let (request, consumed) = parsed.unwrap().into_complete().unwrap();
        assert_eq!(consumed, VALID.len());
        assert_eq!(request.path(), "/chat");
        assert_eq!(&input[consumed..end], &frame[..end - VALID.len()]);
    }
}

#[test]
fn token_lists_in_request() {
    let accepted: [&[&str]; 6] = [
        &["Connection: keep-alive, Upgrade"],
        &["connection: KEEP-ALIVE ,\tupgrade"],
        &["Connection: keep-alive", "Connection: Upgrade"],
        &["Connection: Upgrade", "Connection: close"],
        &["Connection:upgrade,"],
        &["Connection: ,, Upgrade ,"],
    ];
    for lines in accepted {
        let buf = variant(&["Connection:"], lines);
        with_request(&buf, |_, _| ());
    }
    for upgrade in [
        "Upgrade: WebSocket",
        "Upgrade: h2c, websocket",
        "upgrade:websocket ",
    ] {
        let buf = variant(&["Upgrade:"], &[upgrade]);
        with_request(&buf, |_, _| ());
    }
    // Several Sec-WebSocket-Protocol headers combine, in order.
    let buf = variant(
        &["Sec-WebSocket-Protocol:"],
        &[
            "Sec-WebSocket-Protocol: chat, , superchat",
            "sec-websocket-protocol:  v2.json ",
            "SEC-WEBSOCKET-PROTOCOL:",
        ],
    );
    with_request(&buf, |request, _| {
        let offered: Vec<&str> = request.subprotocols().collect();
        assert_eq!(offered, ["chat", "superchat", "v2.json"]);
    });
}

#[test]
fn rejections_with_status() {
    use HandshakeError as E;
    let plain_get = build(
        "GET / HTTP/1.1",
        &["Host: example.com", "Accept: text/html"],
    );
    let cases: Vec<(Vec<u8>, HandshakeError)> = std::vec![
        (build("POST /chat HTTP/1.1", &BASE_HEADERS), E::NotGet),
        (build("get /chat HTTP/1.1", &BASE_HEADERS), E::NotGet),
        (build("GET /chat HTTP/1.0", &BASE_HEADERS), E::NotHttp11),
        (plain_get, E::NotUpgrade),
        (variant(&["Upgrade:"], &[]), E::NotUpgrade),
        (variant(&["Upgrade:"], &["Upgrade: h2c"]), E::InvalidUpgrade),
        (
            variant(&["Upgrade:"], &["Upgrade: websocket2"]),
            E::InvalidUpgrade
        ),
        (variant(&["Connection:"], &[]), E::MissingConnectionUpgrade),
        (
            variant(&["Connection:"], &["Connection: keep-alive"]),
            E::MissingConnectionUpgrade
        ),
        (
            variant(&["Connection:"], &["Connection: Upgrader"]),
            E::MissingConnectionUpgrade
        ),
        (variant(&["Host:"], &[]), E::MissingHost),
        (variant(&["Host:"], &["Host: "]), E::MissingHost),
        (variant(&[], &["Host: other.example.com"]), E::InvalidHost),
        (variant(&["Sec-WebSocket-Version:"], &[]), E::MissingVersion),
        (
            variant(&["Sec-WebSocket-Version:"], &["Sec-WebSocket-Version: 8"]),
            E::UnsupportedVersion
        ),
        (
            variant(
                &["Sec-WebSocket-Version:"],
                &["Sec-WebSocket-Version: 13, 8"]
            ),
            E::UnsupportedVersion
        ),
        (
            variant(&[], &["Sec-WebSocket-Version: 13"]),
            E::UnsupportedVersion
        ),
        (variant(&["Sec-WebSocket-Key:"], &[]), E::MissingKey),
        (
            variant(
                &["Sec-WebSocket-Key:"],
                &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"]
            ),
            E::InvalidKey
        ),
        (
            // 15 bytes.
            variant(
                &["Sec-WebSocket-Key:"],
                &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j"]
            ),
            E::InvalidKey
        ),
        (
            // 17 bytes.
            variant(
                &["Sec-WebSocket-Key:"],
                &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE="]
            ),
            E::InvalidKey
        ),
        (
            variant(
                &["Sec-WebSocket-Key:"],
                &["Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="]
            ),
            E::InvalidKey
        ),
        (
            variant(&[], &["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
            E::InvalidKey
        ),
        (
            variant(&[], &["Origin: http://evil.example"]),
            E::InvalidOrigin
        ),
        (
            variant(
                &["Sec-WebSocket-Protocol:"],
                &["Sec-WebSocket-Protocol: chat, sup er"]
            ),
            E::InvalidSubprotocol
        ),
        (
            variant(
                &["Sec-WebSocket-Protocol:"],
                &["Sec-WebSocket-Protocol: chat;q=1"]
            ),
            E::InvalidSubprotocol
        ),
        (variant(&[], &["Content-Length: 5"]), E::UnexpectedBody),
        (
            variant(&[], &["Transfer-Encoding: chunked"]),
            E::UnexpectedBody
        ),
    ];
    for (buf, expected) in cases {
        let error = parse_err(&buf);
        assert_eq!(error, expected, "{}", String::from_utf8_lossy(&buf));
    }
    // Non-UTF-8 Host and Origin (obs-text is valid HTTP).
    let mut buf = variant(&["Host:"], &[]);
    buf.splice(buf.len() - 2..buf.len() - 2, *b"Host: \xff\r\n");
    assert_eq!(parse_err(&buf), E::InvalidHost);
    let mut buf = variant(&["Origin:"], &[]);
    buf.splice(buf.len() - 2..buf.len() - 2, *b"Origin: \xfe\r\n");
    assert_eq!(parse_err(&buf), E::InvalidOrigin);
    // `Content-Length: 0` is no body.
    with_request(&variant(&[], &["Content-Length: 0"]), |_, _| ());
    // Malformed HTTP.
    for bad in [
        &b"GET /chat HTTP/1.1\r\nBad Header: x\r\n\r\n"[..],
        b"GET /chat HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET /chat HTTX/1.1\r\n\r\n",
        b"GET /ch at HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
    ] {
        let error = parse_err(bad);
        assert!(matches!(error, E::Http(_)), "{error:?}");
        assert_eq!(error.status(), 400);
    }
    assert_eq!(E::NotGet.status(), 405);
    assert_eq!(E::NotUpgrade.status(), 426);
    assert_eq!(E::UnsupportedVersion.status(), 426);
    assert_eq!(E::MissingVersion.status(), 426);
    assert_eq!(E::InvalidKey.status(), 400);
}

/// `VALID` without its final empty line, padded with an `X-Pad` header
/// (`pad` value bytes) and completed when `complete`.
fn padded(pad: usize, complete: bool) -> Vec<u8> {
    let mut buf = VALID[..VALID.len() - 2].to_vec();
    buf.extend_from_slice(b"X-Pad: ");
    buf.resize(buf.len() + pad, b'a');
    if complete {
        buf.extend_from_slice(b"\r\n\r\n");
    }
    buf
}

#[test]
fn size_limit() {
    let limits = HandshakeLimits::default();
    let mut headers = [EMPTY_HEADER; 16];
    // Growing past 8192 bytes without completing.
    let growing = padded(9000, false);
    let parsed = parse_request(&growing[..8191], &mut headers, &limits);
    assert_eq!(parsed.unwrap().into_complete().map(|(_, n)| n), None);
    for end in [8192, 8193, growing.len()] {
        let parsed = parse_request(&growing[..end], &mut headers, &limits);
        assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
    }
    assert_eq!(HandshakeError::TooLarge.status(), 431);
    // A complete header block of exactly the limit passes, one byte more
    // does not, whatever follows it.
    let base = padded(0, true).len();
    let mut exact = padded(8192 - base, true);
    assert_eq!(exact.len(), 8192);
    exact.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0]);
    let parsed = parse_request(&exact, &mut headers, &limits);
    assert_eq!(parsed.unwrap().into_complete().unwrap().1, 8192);
    let over = padded(8193 - base, true);
    let parsed = parse_request(&over, &mut headers, &limits);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
    // A custom limit.
    let small = HandshakeLimits {
        max_request_size: 64,
        ..limits
    };
    let parsed = parse_request(VALID, &mut headers, &small);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooLarge);
    let parsed = parse_request(&VALID[..63], &mut headers, &small);
    assert!(!parsed.unwrap().is_complete());
}

#[test]
fn header_count_limit() {
    let limits = HandshakeLimits::default();
    let filler: Vec<String> = (0..64).map(|i| std::format!("X-Filler-{i}: {i}")).collect();
    let lines = |extra: usize| -> Vec<u8> {
        let mut lines: Vec<&str> = BASE_HEADERS.to_vec();
        lines.extend(filler[..extra].iter().map(String::as_str));
        build("GET /chat HTTP/1.1", &lines)
    };
    let mut headers = [EMPTY_HEADER; 100];
    // Exactly 64 headers pass; 65 do not.
    let buf = lines(64 - BASE_HEADERS.len());
    let parsed = parse_request(&buf, &mut headers, &limits);
    assert_eq!(
        parsed.unwrap().into_complete().unwrap().0.headers().len(),
        64
    );
    let buf = lines(65 - BASE_HEADERS.len());
    let parsed = parse_request(&buf, &mut headers, &limits);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
    // Even before the block is complete.
    let parsed = parse_request(&buf[..buf.len() - 2], &mut headers, &limits);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
    // The slice length also limits.
    let mut few = [EMPTY_HEADER; 6];
    let parsed = parse_request(VALID, &mut few, &limits);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
    // And a smaller configured limit.
    let three = HandshakeLimits {
        max_headers: 3,
        ..limits
    };
    let parsed = parse_request(VALID, &mut headers, &three);
    assert_eq!(parsed.unwrap_err(), HandshakeError::TooManyHeaders);
    assert_eq!(HandshakeError::TooManyHeaders.status(), 431);
}

#[test]
fn write_accept_rfc_example() {
    let mut out = [0u8; 256];
    let expected: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\
        Set-Cookie: id=1\r\n\r\n";
    let n = with_request(VALID, |request, _| {
        write_accept(&mut out, &request, Some("chat"), &[("Set-Cookie", b"id=1")]).unwrap()
    });
    assert_eq!(&out[..n], expected);
    // Without a subprotocol.
    let n = with_request(VALID, |request, _| {
        write_accept(&mut out, &request, None, &[]).unwrap()
    });
    assert_eq!(
        &out[..n],
        &b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..]
    );
}

#[test]
fn write_accept_refusals() {
    with_request(VALID, |request, _| {
        let mut out = [0u8; 512];
        let mut accept =
            |sub, extra: &[(&str, &[u8])]| write_accept(&mut out, &request, sub, extra);
        assert_eq!(
            accept(Some("mqtt"), &[]),
            Err(WriteError::UnofferedSubprotocol)
        );
        assert_eq!(
            accept(Some("Chat"), &[]),
            Err(WriteError::UnofferedSubprotocol)
        );
        assert_eq!(accept(Some(""), &[]), Err(WriteError::UnofferedSubprotocol));
        for value in [&b"a\r\nX-Injected: 1"[..], b"a\nb", b"a\rb", b"\0"] {
            assert_eq!(
                accept(None, &[("Set-Cookie", value)]),
                Err(WriteError::InvalidHeaderValue)
            );
        }
        for name in ["X Bad", "X:Y", "", "X\r\nY", "Ünicode"] {
            assert_eq!(
                accept(None, &[(name, b"v")]),
                Err(WriteError::InvalidHeaderName)
            );
        }
        for name in [
            "connection",
            "Sec-WebSocket-Accept",
            "CONTENT-LENGTH",
            "Upgrade",
        ] {
            assert_eq!(
                accept(None, &[(name, b"v")]),
                Err(WriteError::ReservedHeader)
            );
        }
    });
}

#[test]
fn write_accept_too_small() {
    with_request(VALID, |request, _| {
        let mut out = [0u8; 256];
        let extra: &[(&str, &[u8])] = &[("Set-Cookie", b"id=1")];
        let n = write_accept(&mut out, &request, Some("superchat"), extra).unwrap();
        for size in 0..n {
            assert_eq!(
                write_accept(&mut out[..size], &request, Some("superchat"), extra),
                Err(WriteError::InsufficientSize(InsufficientSizeError {
                    required: n
                }))
            );
        }
        assert_eq!(
            write_accept(&mut out[..n], &request, Some("superchat"), extra),
            Ok(n)
        );
    });
}

#[test]
fn write_reject_format() {
    let mut out = [0u8; 512];
    let n = write_reject(
        &mut out,
        403,
        "origin not allowed",
        &[("X-Reason", b"origin")],
    );
    assert_eq!(
        &out[..n.unwrap()],
        &b"HTTP/1.1 403 Forbidden\r\n\
        Connection: close\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 18\r\n\
        X-Reason: origin\r\n\r\n\
        origin not allowed"[..]
    );
    let n = write_reject(&mut out, 426, "", &[]).unwrap();
    assert_eq!(
        &out[..n],
        &b"HTTP/1.1 426 Upgrade Required\r\n\
        Connection: Upgrade, close\r\n\
        Upgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 0\r\n\r\n"[..]
    );
    // The body may hold anything: it is counted, not parsed.
    let body = "line one\r\n\r\nHTTP/1.1 200 OK\r\n";
    let n = write_reject(&mut out, 499, body, &[]).unwrap();
    assert!(out[..n].starts_with(b"HTTP/1.1 499 Client Error\r\n"));
    assert!(out[..n].ends_with(b"Content-Length: 29\r\n\r\nline one\r\n\r\nHTTP/1.1 200 OK\r\n"));
    let n = write_reject(&mut out, 302, "", &[("Location", b"/login")]).unwrap();
    assert!(out[..n].starts_with(b"HTTP/1.1 302 Found\r\n"));
    for (status, phrase) in [
        (431, "Request Header Fields Too Large"),
        (503, "Service Unavailable"),
        (599, "Server Error"),
        (399, "Redirection"),
    ] {
        let n = write_reject(&mut out, status, "", &[]).unwrap();
        let line = std::format!("HTTP/1.1 {status} {phrase}\r\n");
        assert!(out[..n].starts_with(line.as_bytes()), "{status}");
    }
}

#[test]
fn write_reject_refusals() {
    let mut out = [0u8; 512];
    for status in [0, 101, 200, 204, 299, 304, 600, 1000] {
        assert_eq!(
            write_reject(&mut out, status, "", &[]),
            Err(WriteError::InvalidStatus(status))
        );
    }
    assert_eq!(
        write_reject(&mut out, 400, "", &[("X-A", b"1\r\n\r\ninjected")]),
        Err(WriteError::InvalidHeaderValue)
    );
    assert_eq!(
        write_reject(&mut out, 400, "", &[("X-A: 1\r\nX-B", b"1")]),
        Err(WriteError::InvalidHeaderName)
    );
    for name in [
        "Content-Length",
        "content-type",
        "Connection",
        "Transfer-Encoding",
        "Sec-WebSocket-Version",
    ] {
        assert_eq!(
            write_reject(&mut out, 400, "", &[(name, b"1")]),
            Err(WriteError::ReservedHeader)
        );
    }
}

#[test]
fn write_reject_too_small() {
    let mut out = [0u8; 256];
    let n = write_reject(&mut out, 426, "upgrade to WebSocket", &[("X-A", b"b")]).unwrap();
    for size in 0..n {
        assert_eq!(
            write_reject(
                &mut out[..size],
                426,
                "upgrade to WebSocket",
                &[("X-A", b"b")]
            ),
            Err(WriteError::InsufficientSize(InsufficientSizeError {
                required: n
            }))
        );
    }
}
