//! Frames in: the RFC examples, sequencing, UTF-8, size and fragment limits.

use super::*;

#[test]
fn rfc_vectors_decode() {
    let hello = || Ev::Text("Hello".into());
    assert_eq!(
        feed_every_way(Role::Client, quiet(), UNMASKED_HELLO),
        (vec![hello()], None)
    );
    assert_eq!(
        feed_every_way(Role::Server, quiet(), MASKED_HELLO),
        (vec![hello()], None)
    );
    assert_eq!(
        feed_every_way(Role::Client, quiet(), FRAGMENTED_HEL_LO),
        (vec![hello()], None)
    );
    assert_eq!(
        feed_every_way(Role::Client, quiet(), UNMASKED_PING_HELLO),
        (vec![Ev::Ping(b"Hello".to_vec())], None)
    );
    assert_eq!(
        feed_every_way(Role::Server, quiet(), MASKED_PONG_HELLO),
        (vec![Ev::Pong(b"Hello".to_vec())], None)
    );
    let mut binary256 = vec![0x82, 0x7E, 0x01, 0x00];
    binary256.extend((0..=255u8).collect::<Vec<_>>());
    assert_eq!(
        feed(&mut conn(Role::Client, quiet()), &[&binary256]),
        (vec![Ev::Binary((0..=255u8).collect())], None)
    );
}

#[test]
fn rfc_vectors_encode() {
    let mut out = [0u8; 64];
    let mut server = conn(Role::Server, quiet());
    let n = server.send_text("Hello", &mut out).unwrap();
    assert_eq!(&out[..n], UNMASKED_HELLO);
    let mut client = conn(Role::Client, quiet());
    let n = client.send_text("Hello", &mut out).unwrap();
    assert_eq!(
        &out[..n],
        MASKED_HELLO,
        "the fixed RNG yields the RFC's key"
    );
    let mut server = conn(Role::Server, quiet());
    let a = server
        .send_fragment(MessageKind::Text, b"Hel", false, &mut out)
        .unwrap();
    let b = server
        .send_fragment(MessageKind::Text, b"lo", true, &mut out[a..])
        .unwrap();
    assert_eq!(&out[..a + b], FRAGMENTED_HEL_LO);
    let n = server.ping(b"Hello", &mut out).unwrap();
    assert_eq!(&out[..n], UNMASKED_PING_HELLO);
    // A 64 KiB binary frame uses the 64-bit length (RFC example 0x7F ... 0x01 0x00 0x00).
    let mut big = std::vec![0u8; 65_536 + 10];
    let n = server.send_binary(&[7u8; 65_536], &mut big).unwrap();
    assert_eq!(&big[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(n, 65_546);
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let mut client = conn(Role::Client, quiet());
    let (events, err) = feed(&mut client, &[UNMASKED_PING_HELLO]);
    assert_eq!((events, err), (vec![Ev::Ping(b"Hello".to_vec())], None));
    // The client's Pong is masked with the RFC key: exactly the RFC's masked pong.
    assert_eq!(transmit(&mut client), MASKED_PONG_HELLO);
    assert!(transmit(&mut client).is_empty());
}

#[test]
fn control_frames_between_fragments_keep_the_message() {
    let bytes = [
        &[0x01, 0x03, 0x48, 0x65, 0x6c][..],
        UNMASKED_PING_HELLO,
        &[0x80, 0x02, 0x6c, 0x6f],
    ]
    .concat();
    let (events, err) = feed_every_way(Role::Client, quiet(), &bytes);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Ev::Ping(b"Hello".to_vec()), Ev::Text("Hello".into())]
    );
}

#[test]
fn sequencing_violations_are_protocol_errors() {
    let cont = feed_every_way(Role::Client, quiet(), &[0x80, 0x00]);
    assert_eq!(
        cont.1,
        Some(Error::Protocol(ProtocolError::UnexpectedContinuation))
    );
    let restart = feed_every_way(Role::Client, quiet(), &[0x01, 0x01, b'a', 0x81, 0x01, b'b']);
    assert_eq!(
        restart.1,
        Some(Error::Protocol(ProtocolError::ExpectedContinuation))
    );
    let mut server = conn(Role::Server, quiet());
    let (_, err) = feed(&mut server, &[UNMASKED_HELLO]);
    assert_eq!(
        err,
        Some(Error::Protocol(ProtocolError::UnmaskedClientFrame))
    );
    // The failure queued Close 1002 with a reason, and the connection is done after it.
    let close = transmit(&mut server);
    let reason = wire_reason(ProtocolError::UnmaskedClientFrame.reason());
    assert_eq!(&close[..4], &[0x88, 2 + reason.len() as u8, 0x03, 0xea]);
    assert_eq!(&close[4..], reason.as_bytes());
    assert!(server.is_closed());
    let mut client = conn(Role::Client, quiet());
    assert_eq!(
        feed(&mut client, &[MASKED_HELLO]).1,
        Some(Error::Protocol(ProtocolError::MaskedServerFrame))
    );
    let mut more = [0x81u8, 0];
    assert_eq!(
        client.handle_read(&mut more, Instant::ZERO).err(),
        Some(Error::Closed),
        "failure not yet sent"
    );
    let _ = transmit(&mut client);
    assert!(client.is_closed());
    assert_eq!(
        client.handle_read(&mut more, Instant::ZERO),
        Ok((2, None)),
        "discarded once closed"
    );
}

#[test]
fn invalid_utf8_is_detected_inside_a_frame_before_it_ends() {
    // A 10-byte text frame whose third byte makes it invalid: the error comes
    // as soon as that byte arrives, before the frame is complete.
    let mut c = conn(Role::Client, quiet());
    let mut head = [0x81, 10, b'a', b'b', 0xff];
    let err = c.handle_read(&mut head, Instant::ZERO).err();
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(sent_close_code(&transmit(&mut c)), 1007);
    // Across fragments: "κ" split between two frames is fine, a bad lead byte is not.
    let ok = feed_every_way(Role::Client, quiet(), &[0x01, 0x01, 0xce, 0x80, 0x01, 0xba]);
    assert_eq!(ok, (vec![Ev::Text("κ".into())], None));
    let bad = feed_every_way(Role::Client, quiet(), &[0x01, 0x01, 0xce, 0x80, 0x01, 0x41]);
    assert_eq!(bad.1, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    // A message ending inside a character.
    let cut = feed_every_way(Role::Client, quiet(), &[0x81, 0x01, 0xce]);
    assert_eq!(cut.1, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
}

#[test]
fn size_limits_refuse_before_storing() {
    let config = quiet().max_message_size(8);
    // Exactly at the limit is accepted, fragmented or not.
    let at = feed_every_way(Role::Client, config, &[0x82, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(at, (vec![Ev::Binary(vec![1, 2, 3, 4, 5, 6, 7, 8])], None));
    let frag = feed_every_way(
        Role::Client,
        config,
        &[0x02, 4, 1, 2, 3, 4, 0x80, 4, 5, 6, 7, 8],
    );
    assert_eq!(frag.0, vec![Ev::Binary(vec![1, 2, 3, 4, 5, 6, 7, 8])]);
    // One more byte is refused from the header alone.
    let mut c = conn(Role::Client, config);
    let mut header = [0x82, 9];
    assert_eq!(
        c.handle_read(&mut header, Instant::ZERO).err(),
        Some(Error::Protocol(ProtocolError::MessageTooLarge { max: 8 }))
    );
    assert_eq!(sent_close_code(&transmit(&mut c)), 1009);
    let over = feed_every_way(Role::Client, config, &[0x02, 4, 1, 2, 3, 4, 0x80, 5]);
    assert_eq!(
        over.1,
        Some(Error::Protocol(ProtocolError::MessageTooLarge { max: 8 }))
    );
    // A huge declared frame length is refused by the frame limit.
    let mut c = conn(Role::Client, quiet().max_frame_size(100));
    let mut header = [0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(
        c.handle_read(&mut header, Instant::ZERO).err(),
        Some(Error::Protocol(ProtocolError::FrameTooLarge {
            // Saturated where `usize` is 32 bits (wasm32, thumbv7em).
            len: usize::try_from(1u64 << 32).unwrap_or(usize::MAX),
            max: 100
        }))
    );
    // A fixed buffer smaller than the configured limit lowers it.
    let small: Connection<heapless::Vec<u8, 4>, _> = Connection::new(
        Role::Client,
        quiet(),
        heapless::Vec::new(),
        FixedRng::new(&[0]),
        Instant::ZERO,
    );
    assert_eq!(small.max_message_size(), 4);
}

#[test]
fn fragment_count_is_limited() {
    let config = quiet().max_fragments(3);
    let three = feed_every_way(Role::Client, config, &[0x02, 0, 0x00, 0, 0x80, 1, 9]);
    assert_eq!(three, (vec![Ev::Binary(vec![9])], None));
    let four = feed_every_way(Role::Client, config, &[0x02, 0, 0x00, 0, 0x00, 0, 0x80, 0]);
    assert_eq!(
        four.1,
        Some(Error::Protocol(ProtocolError::TooManyFragments { max: 3 }))
    );
    assert_eq!(
        four.1.unwrap().close_code(),
        Some(CloseCode::POLICY_VIOLATION)
    );
}

/// A client's frame to a server: `first` (FIN, RSV, opcode) and `payload`
/// masked with the RFC's key.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match u16::try_from(payload.len()) {
        Ok(len @ 0..=125) => frame.push(0x80 | len as u8),
        Ok(len) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => unreachable!("short test payloads"),
    }
    frame.extend_from_slice(&RFC_KEY);
    let at = frame.len();
    frame.extend_from_slice(payload);
    apply_mask(&mut frame[at..], RFC_KEY, 0);
    frame
}

/// A server takes a whole message under 64 KiB in one step
/// (`whole_message`); fed whole, each case here takes that step, fed in
/// pieces and byte by byte the general path: the same events and errors
/// every way.
#[test]
fn a_servers_whole_messages_read_the_same_whole_and_in_pieces() {
    let stream = [
        masked(0x81, "hé".as_bytes()),
        masked(0x82, b""),
        masked(0x82, &[7; 125]),
        // 16-bit lengths.
        masked(0x82, &[8; 126]),
        masked(0x81, &[b'a'; 1000]),
        masked(0x89, b"ping"),
        masked(0x01, b"frag"),
        masked(0x80, b"ment"),
        masked(0x81, b"after"),
    ]
    .concat();
    let (events, err) = feed_every_way(Role::Server, quiet(), &stream);
    assert_eq!(err, None);
    assert_eq!(
        events,
        [
            Ev::Text("hé".into()),
            Ev::Binary(vec![]),
            Ev::Binary(vec![7; 125]),
            Ev::Binary(vec![8; 126]),
            Ev::Text("a".repeat(1000)),
            Ev::Ping(b"ping".to_vec()),
            Ev::Text("fragment".into()),
            Ev::Text("after".into()),
        ]
    );
    let refused = [
        (
            masked(0x81, &[0xce, 0x41]),
            quiet(),
            ProtocolError::InvalidUtf8,
        ),
        (masked(0xc2, b"x"), quiet(), ProtocolError::ReservedBits(4)),
        (
            vec![0x82, 1, 9],
            quiet(),
            ProtocolError::UnmaskedClientFrame,
        ),
        (
            [masked(0x02, b"a"), masked(0x82, b"b")].concat(),
            quiet(),
            ProtocolError::ExpectedContinuation,
        ),
        (
            masked(0x82, &[1; 5]),
            quiet().max_frame_size(4),
            ProtocolError::FrameTooLarge { len: 5, max: 4 },
        ),
        (
            masked(0x82, &[1; 5]),
            quiet().max_message_size(4),
            ProtocolError::MessageTooLarge { max: 4 },
        ),
        // Over the connection's 1 KiB message buffer.
        (
            masked(0x82, &[1; 1025]),
            quiet(),
            ProtocolError::MessageTooLarge { max: 1024 },
        ),
    ];
    for (bytes, config, error) in refused {
        let (events, err) = feed_every_way(Role::Server, config, &bytes);
        assert_eq!((events, err), (vec![], Some(Error::Protocol(error))));
    }
}
