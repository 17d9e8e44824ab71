//! Self-tests of the pieces: RFC 6455's example frames both ways, frame
//! headers, masking, UTF-8, close codes, and a connection refusing bad
//! frames with the right close code.

use super::*;

pub(super) fn rfc_vectors_decode() -> Result<(), &'static str> {
    let client = || conn(Role::Client, QUIET);
    let server = || conn(Role::Server, QUIET);
    expect_events(&client, UNMASKED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&server, MASKED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&client, FRAGMENTED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&client, UNMASKED_PING, &[Event::Ping(b"Hello")])?;
    expect_events(&server, MASKED_PONG, &[Event::Pong(b"Hello")])?;
    // All of them back to back, on one connection.
    let mut wire = [0u8; 64];
    let mut n = 0;
    for v in [UNMASKED_HELLO, FRAGMENTED_HELLO, UNMASKED_PING] {
        wire[n..n + v.len()].copy_from_slice(v);
        n += v.len();
    }
    let hello = Event::Text("Hello");
    expect_events(&client, &wire[..n], &[hello, hello, Event::Ping(b"Hello")])?;
    // 256 bytes of binary.
    let mut wire = [0u8; 260];
    wire[..4].copy_from_slice(BINARY_256_HEADER);
    for (i, b) in wire[4..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let payload = &wire[4..];
    let mut copy = [0u8; 256];
    copy.copy_from_slice(payload);
    expect_events(&client, &wire, &[Event::Binary(&copy)])?;
    Ok(())
}

pub(super) fn rfc_vectors_encode() -> Result<(), &'static str> {
    let mut out = [0u8; 300];
    // Unmasked from a server, masked (with the RFC key) from a client.
    let mut server = conn(Role::Server, QUIET);
    let n = ok!(server.send_text("Hello", &mut out));
    ensure!(&out[..n] == UNMASKED_HELLO);
    let mut client = conn(Role::Client, QUIET);
    let n = ok!(client.send_text("Hello", &mut out));
    ensure!(&out[..n] == MASKED_HELLO);
    // Fragmented.
    let n = ok!(server.send_fragment(MessageKind::Text, b"Hel", false, &mut out));
    let m = ok!(server.send_fragment(MessageKind::Text, b"lo", true, &mut out[n..]));
    ensure!(&out[..n + m] == FRAGMENTED_HELLO);
    // A Ping, and a client's automatic Pong to it.
    let n = ok!(server.ping(b"Hello", &mut out));
    ensure!(&out[..n] == UNMASKED_PING);
    let (_, event) = ok!(client.handle_read(&mut out[..n], Instant::ZERO));
    ensure!(event == Some(Event::Ping(b"Hello")));
    ensure!(client.wants_transmit());
    let n = ok!(client.poll_transmit(&mut out));
    ensure!(&out[..n] == MASKED_PONG);
    // 256 bytes of binary.
    let mut payload = [0u8; 256];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = i as u8;
    }
    let n = ok!(server.send_binary(&payload, &mut out));
    ensure!(n == 260 && &out[..4] == BINARY_256_HEADER && out[4..n] == payload);
    ensure!(server.frame_len(256) == 260 && client.frame_len(256) == 264);
    // The 64 KiB header, through message_header.
    let header = ok!(server.message_header(MessageKind::Binary, 65_536));
    let n = ok!(header.encode(&mut out));
    ensure!(&out[..n] == BINARY_64K_HEADER);
    // Too small an output buffer is refused with the size needed.
    ensure!(
        server.send_text("Hello", &mut out[..6])
            == Err(SendError::InsufficientSize(crate::InsufficientSizeError {
                required: 7
            }))
    );
    Ok(())
}

pub(super) fn rfc_binary_64k() -> Result<(), &'static str> {
    const LEN: usize = 65_536;
    let pattern = |i: usize| (i % 251) as u8;
    // Fed in 1000-byte pieces, so the frame is reassembled in the buffer.
    let mut storage = [0u8; LEN];
    let mut client = Connection::new(
        Role::Client,
        QUIET,
        SliceBuffer::new(&mut storage[..]),
        SeqRng::new(&RFC_KEY),
        Instant::ZERO,
    );
    let total = BINARY_64K_HEADER.len() + LEN;
    let mut at = 0;
    let mut source = |room: &mut [u8]| {
        if at >= total {
            return None;
        }
        let n = 1000.min(total - at).min(room.len());
        for (k, b) in room[..n].iter_mut().enumerate() {
            let i = at + k;
            *b = match BINARY_64K_HEADER.get(i) {
                Some(h) => *h,
                None => pattern(i - BINARY_64K_HEADER.len()),
            };
        }
        at += n;
        Some(n)
    };
    let fed = feed(&mut client, Instant::ZERO, &mut source, &mut |_, e| {
        matches!(e, Event::Binary(b) if b.len() == LEN
            && b.iter().enumerate().all(|(i, x)| *x == pattern(i)))
    })?;
    ensure!(fed == Fed::Events(1));
    // One byte more than the buffer holds is refused with 1009.
    let mut small = [0u8; 1024];
    let mut client = Connection::new(
        Role::Client,
        QUIET,
        SliceBuffer::new(&mut small[..]),
        SeqRng::new(&RFC_KEY),
        Instant::ZERO,
    );
    let mut wire = [0u8; 4];
    let n = ok!(FrameHeader {
        fin: true,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: 1025,
    }
    .encode(&mut wire));
    let r = client.handle_read(&mut wire[..n], Instant::ZERO);
    ensure!(matches!(
        r,
        Err(Error::Protocol(ProtocolError::MessageTooLarge {
            max: 1024
        }))
    ));
    let mut out = [0u8; 139];
    let n = ok!(client.poll_transmit(&mut out));
    let mut server = conn(Role::Server, QUIET);
    let (_, event) = ok!(server.handle_read(&mut out[..n], Instant::ZERO));
    ensure!(matches!(event, Some(Event::Close(Some(f))) if f.code == CloseCode::MESSAGE_TOO_BIG));
    Ok(())
}

pub(super) fn accept_key_rfc() -> Result<(), &'static str> {
    // RFC 6455 §1.3: the key for the nonce "the sample nonce", and its accept key.
    ensure!(&handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let key = handshake::generate_key(&mut SeqRng::new(b"the sample nonce"));
    ensure!(&key == b"dGhlIHNhbXBsZSBub25jZQ==");
    ensure!(&handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZR==") != b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    Ok(())
}

pub(super) fn header_round_trip() -> Result<(), &'static str> {
    let opcodes = [OpCode::Continuation, OpCode::Text, OpCode::Binary];
    let lens = [0u64, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1];
    for opcode in opcodes {
        for payload_len in lens {
            for mask in [None, Some(RFC_KEY)] {
                for fin in [false, true] {
                    let header = FrameHeader {
                        fin,
                        opcode,
                        mask,
                        payload_len,
                    };
                    let mut out = [0u8; FrameHeader::MAX_LEN];
                    let n = ok!(header.encode(&mut out));
                    ensure!(n == header.encoded_len());
                    ensure!(ok!(FrameHeader::decode(&out[..n])) == Some((header, n)));
                    // Every prefix is incomplete, not an error.
                    for cut in 0..n {
                        ensure!(ok!(FrameHeader::decode(&out[..cut])).is_none());
                    }
                    ensure!(header.encode(&mut out[..n - 1]).is_err());
                }
            }
        }
    }
    Ok(())
}

pub(super) fn header_decode_rejects() -> Result<(), &'static str> {
    use ProtocolError as P;
    for (rsv, bits) in [(0x40, 4), (0x20, 2), (0x10, 1), (0x70, 7)] {
        ensure!(FrameHeader::decode(&[0x81 | rsv, 0]) == Err(P::ReservedBits(bits)));
    }
    for op in (3..=7).chain(0xB..=0xF) {
        ensure!(FrameHeader::decode(&[0x80 | op, 0]) == Err(P::ReservedOpCode(op)));
    }
    // Control frames: fragmented, or longer than 125 bytes.
    for op in [0x8, 0x9, 0xA] {
        ensure!(FrameHeader::decode(&[op, 0]) == Err(P::FragmentedControlFrame));
        ensure!(FrameHeader::decode(&[0x80 | op, 126, 0, 126]) == Err(P::ControlFrameTooLong(126)));
        ensure!(FrameHeader::decode(&[0x80 | op, 0x7D]).is_ok());
    }
    // A 64-bit length with its top bit set.
    let wire = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    ensure!(FrameHeader::decode(&wire) == Err(P::InvalidPayloadLength));
    Ok(())
}

pub(super) fn connection_rejects() -> Result<(), &'static str> {
    use ProtocolError as P;
    let client = || conn(Role::Client, QUIET);
    let server = || conn(Role::Server, QUIET);
    expect_failure(&client, &[0xC1, 0x00], P::ReservedBits(4))?;
    expect_failure(&client, &[0x83, 0x00], P::ReservedOpCode(3))?;
    expect_failure(&server, UNMASKED_HELLO, P::UnmaskedClientFrame)?;
    expect_failure(&client, MASKED_HELLO, P::MaskedServerFrame)?;
    expect_failure(&client, &[0x80, 0x01, b'x'], P::UnexpectedContinuation)?;
    expect_failure(
        &client,
        &[0x01, 0x01, b'x', 0x81, 0x00],
        P::ExpectedContinuation,
    )?;
    expect_failure(&client, &[0x81, 0x02, 0xC3, 0x28], P::InvalidUtf8)?;
    // Fails fast: the surrogate is refused before the frame is complete.
    let mut c = client();
    let mut partial = [0x81, 0x05, b'a', 0xED, 0xA0];
    let r = c.handle_read(&mut partial, Instant::ZERO);
    ensure!(r.err() == Some(Error::Protocol(P::InvalidUtf8)));
    expect_failure(&client, &[0x88, 0x01, 0x03], P::InvalidCloseCode(None))?;
    let no_status = Some(CloseCode::NO_STATUS);
    expect_failure(
        &client,
        &[0x88, 0x02, 0x03, 0xED],
        P::InvalidCloseCode(no_status),
    )?;
    expect_failure(&client, &[0x88, 0x03, 0x03, 0xE8, 0xFF], P::InvalidUtf8)?;
    let limited = || conn(Role::Client, QUIET.max_frame_size(4));
    expect_failure(&limited, &[0x82, 0x05], P::FrameTooLarge { len: 5, max: 4 })?;
    let few = || conn(Role::Client, QUIET.max_fragments(2));
    let wire = [0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00];
    expect_failure(&few, &wire, P::TooManyFragments { max: 2 })?;
    Ok(())
}

pub(super) fn mask_fast_equals_bytewise() -> Result<(), &'static str> {
    let keys = [RFC_KEY, [0, 0, 0, 0], [0xFF, 0x01, 0x80, 0x7F]];
    let mut data = [0u8; 64 + 7];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    for key in keys {
        for len in 0..=64 {
            for start in 0..4 {
                for offset in [0, 1, 2, 3, 5, 1000] {
                    let mut fast = [0u8; 64];
                    let mut slow = [0u8; 64];
                    fast[..len].copy_from_slice(&data[start..start + len]);
                    slow[..len].copy_from_slice(&data[start..start + len]);
                    apply_mask(&mut fast[..len], key, offset);
                    apply_mask_bytewise(&mut slow[..len], key, offset);
                    ensure!(fast == slow);
                    // Masking twice gives the input back.
                    apply_mask(&mut fast[..len], key, offset);
                    ensure!(fast[..len] == data[start..start + len]);
                }
            }
            // In two pieces at every split, with the running offset.
            for split in 0..=len {
                let mut whole = [0u8; 64];
                let mut parts = [0u8; 64];
                whole[..len].copy_from_slice(&data[..len]);
                parts[..len].copy_from_slice(&data[..len]);
                apply_mask(&mut whole[..len], key, 0);
                let (a, b) = parts[..len].split_at_mut(split);
                apply_mask(a, key, 0);
                apply_mask(b, key, split);
                ensure!(whole == parts);
            }
        }
    }
    Ok(())
}

/// Feeds `text` to a fresh validator split at every point; `true` when every
/// split is accepted.
fn utf8_every_split(text: &[u8]) -> bool {
    (0..=text.len()).all(|split| {
        let mut v = Utf8Validator::new();
        let (a, b) = text.split_at(split);
        v.feed(a).is_ok() && v.feed(b).is_ok() && v.finish().is_ok()
    })
}

pub(super) fn utf8_strict() -> Result<(), &'static str> {
    let valid: [&[u8]; 6] = [
        b"",
        b"plain ascii",
        "κόσμε".as_bytes(),
        "\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}".as_bytes(),
        "\u{D7FF}\u{E000}\u{FFFD}".as_bytes(),
        "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
    ];
    for text in valid {
        ensure!(utf8_every_split(text));
    }
    // Invalid, and the byte count at which it must be refused (fail fast).
    let invalid: [(&[u8], usize); 12] = [
        (b"\xC0\x80", 1),         // C0 can never appear
        (b"\xC1\xBF", 1),         // nor C1
        (b"\xE0\x80\x80", 2),     // overlong 3-byte
        (b"\xF0\x80\x80\x80", 2), // overlong 4-byte
        (b"\xED\xA0\x80", 2),     // surrogate U+D800
        (b"\xED\xBF\xBF", 2),     // surrogate U+DFFF
        (b"\xF4\x90\x80\x80", 2), // above U+10FFFF
        (b"\xF5\x80\x80\x80", 1), // F5 can never appear
        (b"\xFF", 1),             // nor FF
        (b"\x80", 1),             // continuation without a start
        (b"a\xC3\x28", 3),        // start without its continuation
        (
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80",
            13,
        ),
    ];
    for (text, fails_at) in invalid {
        ensure!(!utf8_every_split(text));
        let mut v = Utf8Validator::new();
        ensure!(v.feed(&text[..fails_at - 1]).is_ok());
        ensure!(v.feed(&text[fails_at - 1..fails_at]).is_err());
        // Stays failed until reset.
        ensure!(v.feed(b"a").is_err() && v.finish().is_err());
        v.reset();
        ensure!(v.feed(b"a").is_ok() && v.finish().is_ok());
    }
    // Truncated at the end of the message: only `finish` can tell.
    let mut v = Utf8Validator::new();
    ensure!(v.feed(b"\xE2\x82").is_ok() && !v.is_char_boundary());
    ensure!(v.finish().is_err());
    Ok(())
}

pub(super) fn close_codes() -> Result<(), &'static str> {
    let valid = |c: u16| CloseCode(c).is_valid_on_wire();
    for c in 0..=5000u16 {
        let expected = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
        ensure!(valid(c) == expected);
    }
    ensure!(parse_close_payload(&[]) == Ok(None));
    ensure!(parse_close_payload(&[0x03]).is_err());
    ensure!(parse_close_payload(&[0x03, 0xE8, b'o', b'k']) == Ok(Some((CloseCode::NORMAL, "ok"))));
    ensure!(parse_close_payload(&[0x0F, 0xA0]) == Ok(Some((CloseCode(4000), ""))));
    ensure!(parse_close_payload(&[0x03, 0xEE]).is_err()); // 1006
    ensure!(parse_close_payload(&[0x03, 0xE8, 0xC0]).is_err());
    // Sending: codes not allowed on the wire are refused.
    let mut c = conn(Role::Server, QUIET);
    for code in [
        CloseCode::NO_STATUS,
        CloseCode::ABNORMAL,
        CloseCode::TLS_HANDSHAKE,
        CloseCode(999),
    ] {
        ensure!(c.close(code, "", Instant::ZERO) == Err(SendError::InvalidCloseCode(code)));
    }
    ensure!(c.is_open());
    // A long reason is cut to 123 bytes on a character boundary.
    let long =
        "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé";
    ok!(c.close(CloseCode(4001), long, Instant::ZERO));
    let mut out = [0u8; 139];
    let n = ok!(c.poll_transmit(&mut out));
    ensure!(n == 2 + 2 + 122 && out[1] == 124 && out[2..4] == [0x0F, 0xA1]);
    ensure!(core::str::from_utf8(&out[4..n]).is_ok());
    Ok(())
}
