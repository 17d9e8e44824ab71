//! The close handshake, the heartbeat and the fragmented-message timeout.

use super::*;

#[test]
fn close_handshake_initiated_by_peer() {
    let mut c = conn(Role::Client, quiet());
    let (events, _) = feed(&mut c, &[&[0x88, 0x04, 0x0f, 0xa0, b'b', b'y']]);
    assert_eq!(events, vec![Ev::Close(Some((4000, "by".into())))]);
    assert!(!c.is_open());
    assert_eq!(c.send_text("late", &mut [0u8; 64]), Err(SendError::Closed));
    let reply = transmit(&mut c);
    assert_eq!(reply.len(), 2 + 4 + 2, "masked close echoing the code");
    assert_eq!(reply[0], 0x88);
    assert!(c.is_closed());
    // An empty close is answered with 1000.
    let mut s = conn(Role::Server, quiet());
    let (events, _) = feed(&mut s, &[&[0x88, 0x80, 1, 2, 3, 4]]);
    assert_eq!(events, vec![Ev::Close(None)]);
    assert_eq!(transmit(&mut s), vec![0x88, 0x02, 0x03, 0xe8]);
}

#[test]
fn close_handshake_initiated_by_us_and_its_timeout() {
    let mut s = conn(Role::Server, quiet());
    s.close(CloseCode::NORMAL, "bye", Instant::from_secs(1))
        .unwrap();
    assert_eq!(
        transmit(&mut s),
        vec![0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']
    );
    assert_eq!(s.send_binary(b"x", &mut [0u8; 16]), Err(SendError::Closed));
    assert_eq!(s.poll_timeout(), Some(Instant::from_secs(6)));
    // Data still arrives until the peer's Close.
    let (events, _) = feed(
        &mut s,
        &[
            &[0x82, 0x81, 0, 0, 0, 0, 7],
            &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8],
        ],
    );
    assert_eq!(
        events,
        vec![Ev::Binary(vec![7]), Ev::Close(Some((1000, String::new())))]
    );
    assert!(s.is_closed());
    assert!(transmit(&mut s).is_empty(), "no reply to a reply");
    let mut t = conn(Role::Server, quiet());
    t.close(CloseCode::GOING_AWAY, "", Instant::ZERO).unwrap();
    let _ = transmit(&mut t);
    assert_eq!(t.handle_timeout(Instant::from_millis(4_999)), Ok(()));
    assert_eq!(
        t.handle_timeout(Instant::from_secs(5)),
        Err(Error::CloseTimeout)
    );
    assert!(t.is_closed());
}

#[test]
fn invalid_close_payloads() {
    let one = feed_every_way(Role::Client, quiet(), &[0x88, 0x01, 0x03]);
    assert_eq!(
        one.1,
        Some(Error::Protocol(ProtocolError::InvalidCloseCode(None)))
    );
    let reserved = feed_every_way(Role::Client, quiet(), &[0x88, 0x02, 0x03, 0xed]);
    assert_eq!(
        reserved.1,
        Some(Error::Protocol(ProtocolError::InvalidCloseCode(Some(
            CloseCode(1005)
        ))))
    );
    let bad_reason = feed_every_way(Role::Client, quiet(), &[0x88, 0x03, 0x03, 0xe8, 0xff]);
    assert_eq!(
        bad_reason.1,
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    let mut c = conn(Role::Client, quiet());
    assert_eq!(
        c.close(CloseCode(1005), "", Instant::ZERO),
        Err(SendError::InvalidCloseCode(CloseCode(1005)))
    );
}

#[test]
fn heartbeat_pings_and_detects_a_dead_peer() {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut c = conn(Role::Server, config);
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(30)));
    c.handle_timeout(Instant::from_secs(29)).unwrap();
    assert!(transmit(&mut c).is_empty());
    c.handle_timeout(Instant::from_secs(30)).unwrap();
    let ping = transmit(&mut c);
    assert_eq!(&ping[..2], &[0x89, 4]);
    let payload: [u8; 4] = ping[2..6].try_into().unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
    // A pong with another payload does not count; the matching one does.
    let mut wrong = [0x8a, 0x84, 0, 0, 0, 0, 1, 2, 3, 4];
    let _ = c.handle_read(&mut wrong, Instant::from_secs(31)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
    let mut right = [
        0x8a, 0x84, 0, 0, 0, 0, payload[0], payload[1], payload[2], payload[3],
    ];
    let _ = c.handle_read(&mut right, Instant::from_secs(32)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    // Next round: no answer → failed with 1001 "pong timeout" at 70 s.
    c.handle_timeout(Instant::from_secs(60)).unwrap();
    let _ = transmit(&mut c);
    assert_eq!(c.handle_timeout(Instant::from_millis(69_999)), Ok(()));
    assert_eq!(
        c.handle_timeout(Instant::from_secs(70)),
        Err(Error::PongTimeout)
    );
    let close = transmit(&mut c);
    let reason = wire_reason("pong timeout");
    assert_eq!(&close[..4], &[0x88, 2 + reason.len() as u8, 0x03, 0xe9]);
    assert_eq!(&close[4..], reason.as_bytes());
    assert!(c.is_closed());
}

#[test]
fn the_pong_deadline_runs_from_the_ping_hand_out() {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut c = conn(Role::Server, config);
    // Due at 30 s; still queued at 45 s (the caller's writes were busy):
    // its Pong is not overdue.
    c.handle_timeout(Instant::from_secs(30)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    assert_eq!(c.handle_timeout(Instant::from_secs(45)), Ok(()));
    // Handed out at 50 s and said so: its Pong has until 60 s.
    let ping = transmit(&mut c);
    assert_eq!(&ping[..2], &[0x89, 4]);
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
    c.heartbeat_sent(Instant::from_secs(50));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    // Never brought forward.
    c.heartbeat_sent(Instant::from_secs(35));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    assert_eq!(c.handle_timeout(Instant::from_millis(59_999)), Ok(()));
    assert!(!c.wants_transmit(), "one Ping only");
    // The Pong came: nothing more to re-base.
    let payload: [u8; 4] = ping[2..6].try_into().unwrap();
    let mut pong = [
        0x8a, 0x84, 0, 0, 0, 0, payload[0], payload[1], payload[2], payload[3],
    ];
    let _ = c.handle_read(&mut pong, Instant::from_secs(55)).unwrap();
    c.heartbeat_sent(Instant::from_secs(58));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    assert_eq!(c.handle_timeout(Instant::from_secs(60)), Ok(()));
    assert!(c.is_open());
}

#[test]
fn fragmented_message_timeout() {
    let config = quiet().fragment_timeout(Some(Duration::from_secs(5)));
    let mut c = conn(Role::Client, config);
    let mut first = [0x01, 0x01, b'a'];
    let _ = c.handle_read(&mut first, Instant::from_secs(1)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(6)));
    assert_eq!(
        c.handle_timeout(Instant::from_secs(6)),
        Err(Error::FragmentTimeout)
    );
    assert_eq!(sent_close_code(&transmit(&mut c)), 1008);
}
