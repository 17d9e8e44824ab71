//! Reassembly of fragmented messages (RFC 6455 §5.4): any number of
//! fragments, empty ones, control frames in between, and the sending side's
//! `send_fragment` rules.

use snowsocket_core::{Instant, MessageKind, OpCode, Role, SendError};
use snowsocket_tests::{
    connection, feed_chunks, feed_every_way, frame_from, parse_frames, Ev, Pair, Side, XorShiftRng,
    QUIET,
};

#[test]
fn many_fragments_with_control_frames_between() {
    for sender in [Role::Client, Role::Server] {
        let receiver = if sender == Role::Client {
            Role::Server
        } else {
            Role::Client
        };
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut events = Vec::new();
        for i in 0..50u8 {
            let part: Vec<u8> = (0..i).collect();
            expected.extend_from_slice(&part);
            let op = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            wire.extend(frame_from(sender, i == 49, op, &part));
            if i % 10 == 5 {
                wire.extend(frame_from(sender, true, OpCode::Ping, &[i]));
                events.push(Ev::Ping(vec![i]));
            }
        }
        events.push(Ev::Binary(expected));
        let o = feed_every_way(receiver, QUIET, &wire);
        assert_eq!(o.events, events);
        // The next message starts afresh (nothing left over).
        let mut wire2 = frame_from(sender, false, OpCode::Text, b"a");
        wire2.extend(frame_from(sender, true, OpCode::Continuation, b"b"));
        wire.extend(&wire2);
        let o = feed_chunks(
            &mut connection(receiver, QUIET),
            &wire,
            &mut || 5,
            Instant::ZERO,
        );
        assert_eq!(o.events.last(), Some(&Ev::Text("ab".into())));
    }
}

#[test]
fn send_fragment_round_trips_and_enforces_the_order() {
    let mut pair = Pair::new(QUIET);
    pair.send_fragment(Side::Client, MessageKind::Text, "fra".as_bytes(), false);
    // A whole message may not start while one is being sent in fragments;
    // control frames may.
    let mut out = [0u8; 64];
    assert_eq!(
        pair.client.conn.send_text("no", &mut out),
        Err(SendError::FragmentInProgress)
    );
    pair.ping(Side::Client, b"mid");
    // Later fragments are continuations, whatever kind is passed.
    pair.send_fragment(Side::Client, MessageKind::Binary, "g€".as_bytes(), false);
    pair.send_fragment(Side::Client, MessageKind::Binary, b"", false);
    pair.send_fragment(Side::Client, MessageKind::Text, "ment".as_bytes(), true);
    pair.run();
    assert_eq!(
        pair.take_events(Side::Server),
        vec![Ev::Ping(b"mid".to_vec()), Ev::Text("frag€ment".into())]
    );
    let ops: Vec<(OpCode, bool)> = pair.client.sent.iter().map(|f| (f.opcode, f.fin)).collect();
    assert_eq!(
        ops,
        vec![
            (OpCode::Text, false),
            (OpCode::Ping, true),
            (OpCode::Continuation, false),
            (OpCode::Continuation, false),
            (OpCode::Continuation, true),
        ]
    );
    // After fin, whole messages may be sent again.
    pair.send(Side::Client, MessageKind::Binary, &[1, 2]);
    pair.run();
    assert_eq!(pair.take_events(Side::Server), vec![Ev::Binary(vec![1, 2])]);
    // A fragment that does not fit the output buffer is refused without
    // starting a message.
    let mut tiny = [0u8; 4];
    assert!(matches!(
        pair.client.conn.send_fragment(MessageKind::Text, b"abcdef", false, &mut tiny),
        Err(SendError::InsufficientSize(e)) if e.required == pair.client.conn.frame_len(6)
    ));
    assert!(pair.client.conn.send_text("ok", &mut out).is_ok());
}

/// Random fragmentations of random messages, delivered in random chunks,
/// reassemble to the original, also with a fixed-size buffer.
#[test]
fn random_fragmentations() {
    let mut rng = XorShiftRng::new(7);
    for case in 0..300 {
        let len = rng.range(0..=3000);
        let payload = rng.bytes(len);
        let sender = if rng.coin() {
            Role::Client
        } else {
            Role::Server
        };
        let receiver = if sender == Role::Client {
            Role::Server
        } else {
            Role::Client
        };
        let mut wire = Vec::new();
        let mut at = 0;
        let mut first = true;
        loop {
            let take = rng.range(0..=(len - at).min(700));
            let fin = at + take == len && rng.below(4) != 0;
            let op = if first {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            wire.extend(frame_from(sender, fin, op, &payload[at..at + take]));
            first = false;
            at += take;
            if fin {
                break;
            }
        }
        let chunk = rng.range(1..=200);
        let o = feed_chunks(
            &mut connection(receiver, QUIET),
            &wire,
            &mut || chunk,
            Instant::ZERO,
        );
        assert_eq!(o.events, vec![Ev::Binary(payload.clone())], "case {case}");
        assert!(parse_frames(&o.sent).is_empty());
    }
}
