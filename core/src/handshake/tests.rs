//! Tests of `handshake`.

use super::*;

#[test]
fn accept_key_rfc_example() {
    // RFC 6455 §1.3.
    assert_eq!(
        &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn eq_ignore_case_is_std_eq_ignore_ascii_case() {
    let words: [&[u8]; 9] = [
        b"",
        b"a",
        b"A",
        b"Upgrade",
        b"uPGRADE",
        b"upgrade!",
        b"\xc3\xa9",
        b"\xc3\x89",
        b"@[`{",
    ];
    for a in words {
        for b in words {
            assert_eq!(
                eq_ignore_case(a, b),
                a.eq_ignore_ascii_case(b),
                "{a:?} {b:?}"
            );
        }
    }
    for x in 0..=255u8 {
        for y in 0..=255u8 {
            assert_eq!(eq_ignore_case(&[x], &[y]), [x].eq_ignore_ascii_case(&[y]));
        }
    }
}

#[test]
fn encode_padded_equals_base64ct_padded() {
    // Every length up to the largest input (21 bytes), with bytes that
    // exercise every bit of the partial group.
    for len in 0..=21 {
        for fill in [0x00u8, 0xff, 0x5a, 0xa5] {
            let src: std::vec::Vec<u8> = (0..len)
                .map(|i| fill ^ (i as u8).wrapping_mul(37))
                .collect();
            let mut expected = [0u8; 28];
            let expected = Base64::encode(&src, &mut expected).unwrap().as_bytes();
            let mut out = [0u8; 28];
            let out = &mut out[..expected.len()];
            encode_padded(&src, out);
            assert_eq!(out, expected, "{len} bytes of {fill:#x}");
        }
    }
}

#[test]
fn accept_key_rfc_example_decodes_to_sha1() {
    // The other direction: the RFC's accept value is the SHA-1 of the
    // key followed by the GUID.
    let mut digest = [0u8; 20];
    let decoded = Base64::decode(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &mut digest).unwrap();
    assert_eq!(decoded.len(), 20);
    let mut concatenated = std::vec::Vec::new();
    concatenated.extend_from_slice(b"dGhlIHNhbXBsZSBub25jZQ==");
    concatenated.extend_from_slice(GUID.as_bytes());
    assert_eq!(
        concatenated,
        b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    );
    assert_eq!(
        digest,
        sha1_smol::Sha1::from(&concatenated).digest().bytes()
    );
    // And the nonce behind the RFC key.
    let mut nonce = [0u8; 16];
    Base64::decode(b"dGhlIHNhbXBsZSBub25jZQ==", &mut nonce).unwrap();
    assert_eq!(&nonce, b"the sample nonce");
}

#[test]
fn accept_key_agrees_with_sha1_smol() {
    // hmac-sha1-compact against another SHA-1, through the accept key
    // for many keys (24 characters, as sent) and a few odd lengths.
    let mut seed = 0x2545_f491_u32;
    for len in [0usize, 1, 3, 4, 24, 24, 24, 55, 56, 64, 100] {
        for _ in 0..20 {
            let key: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                        [(seed % 64) as usize]
                })
                .collect();
            let mut input = key.clone();
            input.extend_from_slice(GUID.as_bytes());
            let mut expected = [0u8; 28];
            encode_padded(
                &sha1_smol::Sha1::from(&input).digest().bytes(),
                &mut expected,
            );
            assert_eq!(accept_key(&key), expected, "{len}");
        }
    }
}

#[test]
fn limits_defaults() {
    let limits = HandshakeLimits::default();
    assert_eq!(limits.max_request_size, 8192);
    assert_eq!(limits.max_headers, 64);
    assert_eq!(limits, HandshakeLimits::DEFAULT);
}

#[test]
fn parsed_accessors() {
    let done = Parsed::Complete {
        value: 7,
        consumed: 3,
    };
    assert!(done.is_complete());
    assert_eq!(done.into_complete(), Some((7, 3)));
    assert!(!Parsed::<u8>::Incomplete.is_complete());
    assert_eq!(Parsed::<u8>::Incomplete.into_complete(), None);
}

#[test]
fn token_lists() {
    let headers = [
        Header {
            name: "connection",
            value: b"keep-alive ,\tUPGRADE",
        },
        Header {
            name: "Upgrade",
            value: b" h2c , WebSocket ",
        },
        Header {
            name: "X-List",
            value: b"a,, b ,c,",
        },
        Header {
            name: "x-list",
            value: b"",
        },
        Header {
            name: "X-LIST",
            value: b" d",
        },
    ];
    assert!(has_token(&headers, "Connection", "upgrade"));
    assert!(has_token(&headers, "Connection", "Keep-Alive"));
    assert!(has_token(&headers, "upgrade", "websocket"));
    assert!(!has_token(&headers, "Upgrade", "web"));
    assert!(!has_token(&headers, "Missing", "x"));
    let all: std::vec::Vec<&[u8]> = Tokens::new(&headers, "x-list").collect();
    assert_eq!(all, [&b"a"[..], b"b", b"c", b"d"]);
    // Tokens are whole elements, not substrings.
    let headers = [Header {
        name: "Connection",
        value: b"Upgrader, xupgrade",
    }];
    assert!(!has_token(&headers, "Connection", "upgrade"));
}

#[test]
fn field_value_and_token_checks() {
    assert!(is_field_value(b"text/plain; charset=utf-8\t\x80"));
    for bad in [&b"a\rb"[..], b"a\nb", b"a\0b", b"\x7f", b"\x1b"] {
        assert!(!is_field_value(bad));
    }
    assert!(is_token(b"Sec-WebSocket-Protocol"));
    for bad in [&b""[..], b"a b", b"a:b", b"a,b", b"a\r\n", b"(x)"] {
        assert!(!is_token(bad));
    }
    assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ"));
    assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZSE=")); // 17 bytes
}

#[test]
fn key_shape_check_agrees_with_a_strict_decoder() {
    // Every character at every position of a valid key, plus padding
    // and length variants: accepted exactly when base64ct decodes the
    // key to 16 bytes.
    let base = *b"dGhlIHNhbXBsZSBub25jZQ==";
    let decodes = |key: &[u8]| {
        let mut nonce = [0u8; 16];
        key.len() == 24 && matches!(Base64::decode(key, &mut nonce), Ok(d) if d.len() == 16)
    };
    for at in 0..base.len() {
        for b in 0..=255u8 {
            let mut key = base;
            key[at] = b;
            assert_eq!(is_valid_key(&key), decodes(&key), "{:?}", key);
        }
    }
    for key in [
        &b""[..],
        b"==",
        b"dGhlIHNhbXBsZSBub25jZQ=",
        b"dGhlIHNhbXBsZSBub25jZQ===",
        b"AdGhlIHNhbXBsZSBub25jZQ==",
        b"dGhlIHNhbXBsZSBub25jZSE=",
        b"dGhlIHNhbXBsZSBub25jZQ\x00\x00",
    ] {
        assert_eq!(is_valid_key(key), decodes(key), "{key:?}");
    }
}

#[test]
fn writer_reports_exact_size() {
    let mut out = [0u8; 4];
    let mut w = Writer::new(&mut out);
    w.put(b"abc");
    w.put_decimal(12345);
    w.put(b"z");
    assert_eq!(w.finish(), Err(InsufficientSizeError { required: 9 }));
    let mut out = [0u8; 30];
    let mut w = Writer::new(&mut out);
    w.put_decimal(0);
    w.put(b" ");
    w.put_decimal(usize::MAX);
    let n = w.finish().unwrap();
    assert_eq!(&out[..n], std::format!("0 {}", usize::MAX).as_bytes());
}

#[test]
fn errors_statuses_and_display() {
    use HandshakeError as E;
    let all = [
        (E::Http(httparse::Error::Token), 400),
        (E::TooLarge, 431),
        (E::TooManyHeaders, 431),
        (E::NotGet, 405),
        (E::NotHttp11, 400),
        (E::NotUpgrade, 426),
        (E::InvalidUpgrade, 400),
        (E::MissingConnectionUpgrade, 400),
        (E::MissingHost, 400),
        (E::InvalidHost, 400),
        (E::InvalidOrigin, 400),
        (E::MissingVersion, 426),
        (E::UnsupportedVersion, 426),
        (E::MissingKey, 400),
        (E::InvalidKey, 400),
        (E::InvalidSubprotocol, 400),
        (E::UnexpectedBody, 400),
        (E::BadStatus(403), 400),
        (E::MissingAccept, 400),
        (E::InvalidAccept, 400),
        (E::UnexpectedSubprotocol, 400),
        (E::UnexpectedExtensions, 400),
    ];
    for (error, status) in all {
        assert_eq!(error.status(), status, "{error:?}");
        assert!(!std::format!("{error}").is_empty());
        // The answer parses back with that status, the reason as body,
        // and the headers the status calls for.
        let mut out = [0u8; 512];
        let n = error.write_response(&mut out).unwrap();
        let mut headers = [EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(body_start) = response.parse(&out[..n]).unwrap() else {
            panic!("incomplete answer for {error:?}");
        };
        assert_eq!(response.code, Some(status));
        let body = if cfg!(feature = "reasons") {
            error.reason()
        } else {
            ""
        };
        assert_eq!(&out[body_start..n], body.as_bytes());
        let headers = &*response.headers;
        let length = find_header(headers, "Content-Length").unwrap();
        assert_eq!(length, std::format!("{}", body.len()).as_bytes());
        assert_eq!(
            find_header(headers, "Sec-WebSocket-Version").is_some(),
            status == 426
        );
        assert_eq!(find_header(headers, "Upgrade").is_some(), status == 426);
        assert_eq!(find_header(headers, "Allow").is_some(), status == 405);
        assert!(has_token(headers, "Connection", "close"));
        // Too small a buffer: the exact size is reported.
        assert_eq!(
            error.write_response(&mut out[..n - 1]),
            Err(InsufficientSizeError { required: n })
        );
    }
    for (error, _) in all {
        // The same bytes as the general writer with the same arguments.
        let extra: &[(&str, &[u8])] = match error {
            E::NotGet => &[("Allow", b"GET")],
            _ => &[],
        };
        let body = if cfg!(feature = "reasons") {
            error.reason()
        } else {
            ""
        };
        let mut general = [0u8; 512];
        let n = server::write_reject_unchecked(&mut general, error.status(), body, extra).unwrap();
        let mut out = [0u8; 512];
        let m = error.write_response(&mut out).unwrap();
        assert_eq!(&out[..m], &general[..n], "{error:?}");
    }
    assert_eq!(
        std::format!("{}", E::Http(httparse::Error::HeaderName)),
        "malformed HTTP: invalid header name"
    );
    assert_eq!(
        std::format!("{}", E::BadStatus(404)),
        "server answered with status 404, not 101"
    );
}

#[test]
fn write_error_display() {
    let e: WriteError = InsufficientSizeError { required: 10 }.into();
    assert_eq!(
        e,
        WriteError::InsufficientSize(InsufficientSizeError { required: 10 })
    );
    assert_eq!(
        std::format!("{e}"),
        "output buffer too small: 10 bytes required"
    );
    assert_eq!(
        std::format!("{}", WriteError::InvalidStatus(200)),
        "status 200 cannot reject a handshake"
    );
}
