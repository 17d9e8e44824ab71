//! The heartbeat on virtual time, both roles: a Ping every interval, the
//! matching Pong clears it, others are ignored, a missing Pong fails the
//! connection with 1001 "pong timeout"; disabled timers send nothing; the
//! fragment timeout.

use core::time::Duration;

use snowsocket_core::{Error, Instant, MessageKind, OpCode};
use snowsocket_tests::{frame, Ev, Pair, Side, QUIET};

const INTERVAL: Duration = Duration::from_secs(30);
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// A pair in which only `side` runs a heartbeat.
fn heartbeat_on(side: Side) -> Pair {
    let on = QUIET
        .ping_interval(Some(INTERVAL))
        .pong_timeout(PONG_TIMEOUT);
    match side {
        Side::Client => Pair::with(on, QUIET, Vec::new(), Vec::new()),
        Side::Server => Pair::with(QUIET, on, Vec::new(), Vec::new()),
    }
}

fn pings(pair: &mut Pair, side: Side) -> Vec<Vec<u8>> {
    pair.peer(side)
        .sent
        .iter()
        .filter(|f| f.opcode == OpCode::Ping)
        .map(|f| f.payload.clone())
        .collect()
}

#[test]
fn pings_every_interval_and_pongs_clear_them() {
    for side in [Side::Client, Side::Server] {
        let mut pair = heartbeat_on(side);
        let peer = side.peer();
        assert_eq!(
            pair.peer(side).conn.poll_timeout(),
            Some(Instant::ZERO + INTERVAL)
        );
        assert_eq!(pair.peer(peer).conn.poll_timeout(), None);
        pair.advance(INTERVAL - Duration::from_micros(1));
        assert!(pings(&mut pair, side).is_empty(), "not due yet");
        for round in 1..=5 {
            pair.advance(Duration::from_micros(1));
            let sent = pings(&mut pair, side);
            assert_eq!(sent.len(), round, "{side:?} round {round}");
            let payload = sent.last().unwrap().clone();
            // The peer answered with the same payload; the application sees
            // the Ping on the peer and the Pong on this side.
            assert_eq!(pair.take_events(peer), vec![Ev::Ping(payload.clone())]);
            assert_eq!(pair.take_events(side), vec![Ev::Pong(payload)]);
            // Cleared: the next deadline is the next ping, not a timeout.
            assert_eq!(
                pair.peer(side).conn.poll_timeout(),
                Some(pair.now + INTERVAL)
            );
            pair.advance(INTERVAL - Duration::from_micros(1));
            assert!(pair.peer(side).error.is_none());
        }
        // Payloads differ from ping to ping (they come from the RNG).
        let sent = pings(&mut pair, side);
        assert!(sent.windows(2).all(|w| w[0] != w[1]));
        // Client pings are masked, server pings are not.
        let masked = pair.peer(side).sent.iter().all(|f| f.masked);
        assert_eq!(masked, side == Side::Client);
    }
}

#[test]
fn a_silent_peer_is_detected() {
    for side in [Side::Client, Side::Server] {
        let mut pair = heartbeat_on(side);
        pair.peer(side.peer()).deaf = true;
        pair.advance(INTERVAL);
        assert_eq!(pings(&mut pair, side).len(), 1);
        assert_eq!(
            pair.peer(side).conn.poll_timeout(),
            Some(Instant::ZERO + INTERVAL + PONG_TIMEOUT)
        );
        pair.advance(PONG_TIMEOUT - Duration::from_micros(1));
        assert!(pair.peer(side).error.is_none());
        pair.advance(Duration::from_micros(1));
        assert_eq!(pair.peer(side).error, Some(Error::PongTimeout));
        let last = pair.peer(side).sent.last().unwrap().clone();
        assert_eq!(last.opcode, OpCode::Close);
        assert_eq!(last.close_code(), Some(1001));
        assert_eq!(&last.payload[2..], b"pong timeout");
        assert!(pair.peer(side).conn.is_closed());
    }
}

/// A Pong with another payload, or one nobody asked for, is reported but
/// does not clear the heartbeat: the timeout still fires.
#[test]
fn mismatched_and_unsolicited_pongs_are_ignored() {
    let mut pair = heartbeat_on(Side::Server);
    pair.client.deaf = true;
    // Unsolicited, before any ping.
    pair.server
        .inbox
        .extend(frame(true, 0, 0xA, Some([1, 2, 3, 4]), b"early"));
    pair.run();
    assert_eq!(
        pair.take_events(Side::Server),
        vec![Ev::Pong(b"early".to_vec())]
    );
    pair.advance(INTERVAL);
    let payload = pings(&mut pair, Side::Server)[0].clone();
    let mut wrong = payload.clone();
    wrong[0] ^= 0xFF;
    pair.server
        .inbox
        .extend(frame(true, 0, 0xA, Some([9, 9, 9, 9]), &wrong));
    pair.server
        .inbox
        .extend(frame(true, 0, 0xA, Some([9, 9, 9, 9]), b""));
    pair.advance(Duration::from_secs(1));
    assert_eq!(
        pair.take_events(Side::Server),
        vec![Ev::Pong(wrong), Ev::Pong(vec![])]
    );
    pair.advance(PONG_TIMEOUT);
    assert_eq!(pair.server.error, Some(Error::PongTimeout));
    assert_eq!(pair.server.sent.last().unwrap().close_code(), Some(1001));
}

/// A late but matching Pong still clears the heartbeat if it arrives before
/// the deadline, even after other traffic.
#[test]
fn a_pong_just_before_the_deadline_counts() {
    let mut pair = heartbeat_on(Side::Server);
    pair.client.deaf = true;
    pair.advance(INTERVAL);
    let payload = pings(&mut pair, Side::Server)[0].clone();
    pair.advance(PONG_TIMEOUT - Duration::from_millis(1));
    pair.server
        .inbox
        .extend(frame(true, 0, 2, Some([5, 6, 7, 8]), b"data"));
    pair.server
        .inbox
        .extend(frame(true, 0, 0xA, Some([5, 6, 7, 8]), &payload));
    pair.run();
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.server.error, None);
    assert_eq!(
        pair.server.conn.poll_timeout(),
        Some(Instant::ZERO + INTERVAL + INTERVAL)
    );
}

#[test]
fn disabled_timers_send_nothing() {
    let mut pair = Pair::new(QUIET);
    assert_eq!(pair.client.conn.poll_timeout(), None);
    assert_eq!(pair.server.conn.poll_timeout(), None);
    // Even a fragmented message in progress has no deadline.
    pair.send_fragment(Side::Client, MessageKind::Text, b"never ends", false);
    for _ in 0..48 {
        pair.advance(Duration::from_secs(3600));
    }
    assert_eq!(pair.server.sent.len(), 0);
    assert_eq!(pair.client.sent.len(), 1);
    assert!(pair.client.error.is_none() && pair.server.error.is_none());
    assert!(pair.server.conn.is_open());
}

#[test]
fn fragment_timeout() {
    let config = QUIET.fragment_timeout(Some(Duration::from_secs(60)));
    let mut pair = Pair::new(config);
    pair.advance(Duration::from_secs(5));
    pair.send_fragment(Side::Client, MessageKind::Binary, b"first", false);
    pair.run();
    assert_eq!(
        pair.server.conn.poll_timeout(),
        Some(Instant::from_secs(65))
    );
    // More fragments do not extend the deadline: it bounds the whole message.
    pair.advance(Duration::from_secs(30));
    pair.send_fragment(Side::Client, MessageKind::Binary, b"second", false);
    pair.advance(Duration::from_secs(29));
    assert!(pair.server.error.is_none());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.server.error, Some(Error::FragmentTimeout));
    assert_eq!(pair.server.sent.last().unwrap().close_code(), Some(1008));
    assert!(pair.server.conn.is_closed());
    // A message completed in time clears the deadline.
    let mut pair = Pair::new(config);
    pair.send_fragment(Side::Client, MessageKind::Binary, b"a", false);
    pair.send_fragment(Side::Client, MessageKind::Binary, b"b", true);
    pair.advance(Duration::from_secs(59));
    assert_eq!(
        pair.take_events(Side::Server),
        vec![Ev::Binary(b"ab".to_vec())]
    );
    assert_eq!(pair.server.conn.poll_timeout(), None);
    pair.advance(Duration::from_secs(3600));
    assert!(pair.server.error.is_none());
}
