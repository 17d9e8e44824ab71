//! The close handshake (RFC 6455 §5.5.1, §7): close codes accepted and
//! refused on the wire, reasons, both initiators, the close timeout, and
//! what happens to frames after a Close.

use core::time::Duration;

use snowsocket_core::OpCode;
use snowsocket_core::{CloseCode, Error, Instant, ProtocolError, Role, SendError};
use snowsocket_tests::{
    close_payload, connection, feed_every_way, frame, frame_from, parse_frames, Ev, Pair, Side,
    QUIET,
};

const REFUSED: &[u16] = &[
    0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];
const ACCEPTED: &[u16] = &[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];

#[test]
fn invalid_close_codes_fail_with_1002() {
    for role in [Role::Server, Role::Client] {
        for &code in REFUSED {
            let wire = frame_from(
                role_peer(role),
                true,
                OpCode::Close,
                &close_payload(code, b"x"),
            );
            let o = feed_every_way(role, QUIET, &wire);
            assert_eq!(
                o.error,
                Some(Error::Protocol(ProtocolError::InvalidCloseCode(Some(
                    CloseCode(code)
                )))),
                "code {code}"
            );
            assert_eq!(o.close_code(), Some(1002), "code {code}");
            assert!(o.events.is_empty());
        }
    }
}

#[test]
fn valid_close_codes_are_reported_and_echoed() {
    for role in [Role::Server, Role::Client] {
        for &code in ACCEPTED {
            let wire = frame_from(
                role_peer(role),
                true,
                OpCode::Close,
                &close_payload(code, b"why"),
            );
            let o = feed_every_way(role, QUIET, &wire);
            assert_eq!(o.error, None, "code {code}");
            assert_eq!(o.events, vec![Ev::Close(Some((code, "why".into())))]);
            let sent = parse_frames(&o.sent);
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].close_code(), Some(code), "the code is echoed");
        }
    }
}

#[test]
fn close_payloads_one_byte_and_bad_reasons() {
    for role in [Role::Server, Role::Client] {
        let peer = role_peer(role);
        let o = feed_every_way(role, QUIET, &frame_from(peer, true, OpCode::Close, &[0x03]));
        assert_eq!(
            o.error,
            Some(Error::Protocol(ProtocolError::InvalidCloseCode(None)))
        );
        assert_eq!(o.close_code(), Some(1002));
        // Invalid UTF-8 in the reason: 1007, whether cut short, overlong or
        // a surrogate.
        for reason in [
            &[0xCE][..],
            &[0xC0, 0x80],
            &[0xED, 0xA0, 0x80],
            &[b'o', b'k', 0xFF],
        ] {
            let wire = frame_from(peer, true, OpCode::Close, &close_payload(1000, reason));
            let o = feed_every_way(role, QUIET, &wire);
            assert_eq!(o.error, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
            assert_eq!(o.close_code(), Some(1007));
        }
        // The longest reason (123 bytes, multi-byte characters) is fine.
        let reason = "é".repeat(61) + "x";
        assert_eq!(reason.len(), 123);
        let wire = frame_from(
            peer,
            true,
            OpCode::Close,
            &close_payload(1000, reason.as_bytes()),
        );
        let o = feed_every_way(role, QUIET, &wire);
        assert_eq!(o.events, vec![Ev::Close(Some((1000, reason)))]);
    }
}

fn role_peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

#[test]
fn close_handshake_from_either_side() {
    for initiator in [Side::Client, Side::Server] {
        let mut pair = Pair::new(QUIET);
        pair.send(initiator, snowsocket_core::MessageKind::Text, b"last words");
        pair.close(initiator, 4000, "see you");
        let peer = initiator.peer();
        assert!(!pair.peer(initiator).conn.is_open());
        assert!(
            !pair.peer(initiator).conn.is_closed(),
            "waiting for the reply"
        );
        assert!(pair.peer(initiator).conn.poll_timeout().is_some());
        pair.run();
        assert_eq!(
            pair.take_events(peer),
            vec![
                Ev::Text("last words".into()),
                Ev::Close(Some((4000, "see you".into())))
            ]
        );
        assert_eq!(
            pair.take_events(initiator),
            vec![Ev::Close(Some((4000, String::new())))]
        );
        for side in [Side::Client, Side::Server] {
            let p = pair.peer(side);
            assert!(p.conn.is_closed() && p.error.is_none(), "{side:?}");
            assert_eq!(p.conn.poll_timeout(), None);
            let closes = p.sent.iter().filter(|f| f.opcode == OpCode::Close).count();
            assert_eq!(closes, 1, "{side:?} sent exactly one Close");
            assert_eq!(
                p.conn.send_text("late", &mut [0u8; 64]),
                Err(SendError::Closed)
            );
        }
    }
}

/// Both ends close at the same time: each sees the other's Close, neither
/// sends a second one, both end closed.
#[test]
fn simultaneous_close() {
    let mut pair = Pair::new(QUIET);
    pair.close(Side::Client, 1000, "a");
    pair.close(Side::Server, 1001, "b");
    pair.run();
    assert_eq!(
        pair.take_events(Side::Server),
        vec![Ev::Close(Some((1000, "a".into())))]
    );
    assert_eq!(
        pair.take_events(Side::Client),
        vec![Ev::Close(Some((1001, "b".into())))]
    );
    for side in [Side::Client, Side::Server] {
        let p = pair.peer(side);
        assert!(p.conn.is_closed());
        assert_eq!(p.sent.len(), 1);
    }
}

#[test]
fn close_command_rules() {
    let mut c = connection(Role::Server, QUIET);
    for code in [1005, 1006, 1015, 999, 5000] {
        assert_eq!(
            c.close(CloseCode(code), "", Instant::ZERO),
            Err(SendError::InvalidCloseCode(CloseCode(code)))
        );
    }
    assert!(c.is_open(), "a refused close changes nothing");
    // A reason over 123 bytes is cut on a character boundary.
    let long = "ü".repeat(100);
    c.close(CloseCode::NORMAL, &long, Instant::ZERO).unwrap();
    let mut out = [0u8; 139];
    let n = c.poll_transmit(&mut out).unwrap();
    let sent = parse_frames(&out[..n]);
    assert_eq!(sent[0].payload.len(), 2 + 122);
    assert!(core::str::from_utf8(&sent[0].payload[2..]).is_ok());
    assert_eq!(
        c.close(CloseCode::NORMAL, "", Instant::ZERO),
        Err(SendError::Closed)
    );
    assert_eq!(c.ping(b"", &mut out), Err(SendError::Closed));
}

/// While waiting for the peer's Close, its data frames and pings still
/// arrive (and pings are answered); its Close completes the handshake.
#[test]
fn data_after_our_close_is_still_read() {
    let mut c = connection(Role::Client, QUIET);
    c.close(CloseCode::NORMAL, "bye", Instant::ZERO).unwrap();
    let mut out = [0u8; 139];
    let _ = c.poll_transmit(&mut out).unwrap();
    let mut wire = frame(true, 0, 1, None, b"in flight");
    wire.extend(frame(true, 0, 9, None, b"p"));
    wire.extend(frame(true, 0, 8, None, &close_payload(1000, b"")));
    let o = snowsocket_tests::feed_chunks(&mut c, &wire, &mut || 3, Instant::ZERO);
    assert_eq!(
        o.events,
        vec![
            Ev::Text("in flight".into()),
            Ev::Ping(b"p".to_vec()),
            Ev::Close(Some((1000, String::new())))
        ]
    );
    assert!(c.is_closed());
    assert_eq!(o.error, None);
    // The Pong went out; no second Close.
    assert!(parse_frames(&o.sent)
        .iter()
        .all(|f| f.opcode == OpCode::Pong));
}

/// What follows the peer's Close is discarded, whatever it is (even a
/// frame that would be a violation): our reply is already on its way, and
/// nothing may follow it.
#[test]
fn bytes_after_the_peers_close_are_discarded() {
    let mut wire = frame(true, 0, 8, None, &close_payload(1001, b"gone"));
    wire.extend(frame(true, 7, 0xF, None, b"garbage"));
    wire.extend([0xFF; 20]);
    let o = feed_every_way(Role::Client, QUIET, &wire);
    assert_eq!(o.events, vec![Ev::Close(Some((1001, "gone".into())))]);
    assert_eq!(o.error, None);
    assert_eq!(o.close_code(), Some(1001));
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    let config = QUIET.close_timeout(Duration::from_secs(5));
    let mut pair = Pair::new(config);
    pair.client.deaf = true;
    pair.close(Side::Server, 1000, "");
    pair.run();
    assert_eq!(pair.server.conn.poll_timeout(), Some(Instant::from_secs(5)));
    pair.advance(Duration::from_millis(4999));
    assert!(pair.server.error.is_none() && !pair.server.conn.is_closed());
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.server.error, Some(Error::CloseTimeout));
    assert_eq!(Error::CloseTimeout.close_code(), None);
    assert!(pair.server.conn.is_closed());
    assert_eq!(pair.server.sent.len(), 1, "no second Close");
    assert_eq!(pair.server.conn.poll_timeout(), None);
}

/// The crate docs' read loop,
/// `while let (n, Some(event)) = conn.handle_read(input, now)? { … }`,
/// ends without an error on the end that started the close handshake: the
/// call after the peer's Close event discards the rest. (Before core commit
/// bb6c96f it returned `Err(Error::Closed)`; this test pinned that down.)
#[test]
fn read_loop_ends_cleanly_after_the_close_handshake() {
    let mut c = connection(Role::Client, QUIET);
    c.close(CloseCode::NORMAL, "", Instant::ZERO).unwrap();
    let _ = c.poll_transmit(&mut [0u8; 139]).unwrap();
    let mut wire = frame(true, 0, 8, None, &close_payload(1000, b""));
    assert_eq!(read_loop(&mut c, &mut wire), Ok(1));
}

/// The read loop of the crate docs; returns the number of events.
fn read_loop<B, R>(
    c: &mut snowsocket_core::Connection<B, R>,
    wire: &mut [u8],
) -> Result<usize, Error>
where
    B: snowsocket_core::MessageBuffer,
    R: rand_core::RngCore,
{
    let mut input = wire;
    let mut events = 0;
    while let (consumed, Some(_event)) = c.handle_read(input, Instant::ZERO)? {
        events += 1;
        input = &mut input[consumed..];
    }
    Ok(events)
}
