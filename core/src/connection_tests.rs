//! Unit tests of the connection state machine, on virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::string::String;
use std::vec;
use std::vec::Vec;

use core::time::Duration;

use super::*;

/// The RNG repeating a fixed sequence, shared with the self-tests.
use crate::seq_rng::SeqRng as FixedRng;

const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

type Conn = Connection<heapless::Vec<u8, 1024>, FixedRng>;

fn conn(role: Role, config: Config) -> Conn {
    Connection::new(
        role,
        config,
        heapless::Vec::new(),
        FixedRng::new(&RFC_KEY),
        Instant::ZERO,
    )
}

/// The reason a failing connection writes for `reason`: itself with the
/// `reasons` feature, else nothing.
fn wire_reason(reason: &str) -> &str {
    if cfg!(feature = "reasons") {
        reason
    } else {
        ""
    }
}

fn quiet() -> Config {
    Config::DEFAULT.ping_interval(None)
}

/// An owned copy of an event, for comparing runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Text(t) => Ev::Text(t.into()),
        Event::Binary(b) => Ev::Binary(b.to_vec()),
        Event::Ping(b) => Ev::Ping(b.to_vec()),
        Event::Pong(b) => Ev::Pong(b.to_vec()),
        Event::Close(c) => Ev::Close(c.map(|c| (c.code.0, c.reason.into()))),
    }
}

/// Feeds `chunks` in order, keeping unconsumed bytes as a driver would, and
/// returns the events and the first error.
fn feed(c: &mut Conn, chunks: &[&[u8]]) -> (Vec<Ev>, Option<Error>) {
    let mut events = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        let mut start = 0;
        loop {
            match c.handle_read(&mut pending[start..], Instant::ZERO) {
                Ok((n, ev)) => {
                    start += n;
                    match ev {
                        Some(ev) => events.push(own(ev)),
                        None => break,
                    }
                }
                Err(e) => return (events, Some(e)),
            }
        }
        pending.drain(..start);
        assert!(
            pending.len() < crate::frame::MAX_CONTROL_FRAME,
            "only a partial header or control frame may stay unconsumed"
        );
    }
    (events, None)
}

/// Feeds `bytes` whole, at every split point, and byte by byte: the same
/// events and error every way.
fn feed_every_way(role: Role, config: Config, bytes: &[u8]) -> (Vec<Ev>, Option<Error>) {
    let whole = feed(&mut conn(role, config), &[bytes]);
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        assert_eq!(
            feed(&mut conn(role, config), &[a, b]),
            whole,
            "split at {split}"
        );
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        feed(&mut conn(role, config), &bytewise),
        whole,
        "byte by byte"
    );
    whole
}

/// The close code of the (possibly masked) Close frame in `bytes`.
fn sent_close_code(bytes: &[u8]) -> u16 {
    let (header, at) = FrameHeader::decode(bytes).unwrap().unwrap();
    assert_eq!(header.opcode, OpCode::Close);
    let mut payload = bytes[at..].to_vec();
    if let Some(key) = header.mask {
        apply_mask(&mut payload, key, 0);
    }
    u16::from_be_bytes([payload[0], payload[1]])
}

fn transmit(c: &mut Conn) -> Vec<u8> {
    let mut out = [0u8; 512];
    let n = c.poll_transmit(&mut out).unwrap();
    out[..n].to_vec()
}

// RFC 6455 §5.7 examples.
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const FRAGMENTED_HEL_LO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
const UNMASKED_PING_HELLO: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const MASKED_PONG_HELLO: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

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

#[test]
fn sending_rules() {
    let mut c = conn(Role::Server, quiet());
    assert_eq!(
        c.ping(&[0; 126], &mut [0u8; 256]),
        Err(SendError::ControlPayloadTooLong)
    );
    assert_eq!(
        c.send_text("hello", &mut [0u8; 4]),
        Err(SendError::InsufficientSize(InsufficientSizeError {
            required: 7
        }))
    );
    let mut out = [0u8; 16];
    c.send_fragment(MessageKind::Binary, b"a", false, &mut out)
        .unwrap();
    assert_eq!(
        c.send_binary(b"b", &mut out),
        Err(SendError::FragmentInProgress)
    );
    let n = c
        .send_fragment(MessageKind::Text, b"b", true, &mut out)
        .unwrap();
    assert_eq!(
        &out[..n],
        &[0x80, 1, b'b'],
        "continuation keeps the first kind"
    );
    assert!(c.send_binary(b"c", &mut out).is_ok());
}

#[test]
fn nothing_follows_our_close() {
    let mut s = conn(Role::Server, quiet());
    s.close(CloseCode::NORMAL, "", Instant::ZERO).unwrap();
    let _ = transmit(&mut s);
    let (events, _) = feed(&mut s, &[&[0x89, 0x81, 0, 0, 0, 0, 1]]);
    assert_eq!(events, vec![Ev::Ping(vec![1])]);
    assert!(transmit(&mut s).is_empty(), "no pong after our close");
    assert_eq!(s.ping(b"", &mut [0u8; 16]), Err(SendError::Closed));
}

#[test]
fn message_buffer_is_handed_out_only_between_messages() {
    let mut c = conn(Role::Client, quiet());
    assert!(c.idle_message_buffer().is_some(), "nothing received yet");
    // A first fragment: the buffer holds it.
    assert!(matches!(
        c.handle_read(&mut [0x01, 0x03, 0x48, 0x65, 0x6c], Instant::ZERO),
        Ok((5, None))
    ));
    assert!(c.idle_message_buffer().is_none(), "fragment stored");
    // Half of the last fragment's payload: still receiving.
    assert!(matches!(
        c.handle_read(&mut [0x80, 0x02, 0x6c], Instant::ZERO),
        Ok((3, None))
    ));
    assert!(c.idle_message_buffer().is_none(), "frame in progress");
    // The rest completes the message, which came from the buffer.
    match c.handle_read(&mut [0x6f], Instant::ZERO) {
        Ok((1, Some(Event::Text("Hello")))) => {}
        other => panic!("expected the message, got {other:?}"),
    }
    // Handed out: the buffer may now be taken or emptied.
    let buf = c.idle_message_buffer().expect("between messages");
    assert_eq!(buf.as_slice(), b"Hello");
    buf.clear();
    // A whole frame afterwards is unaffected.
    let (events, err) = feed(&mut c, &[&[0x81, 0x02, 0x48, 0x69]]);
    assert_eq!(err, None);
    assert_eq!(events, vec![Ev::Text("Hi".into())]);
}

#[test]
fn unborrowed_events_name_their_payload_and_become_the_same_events() {
    // A masked "Hello" that arrives whole: named by its range in the input.
    let mut whole = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut c = conn(Role::Server, quiet());
    let (n, event) = c.handle_read_unborrowed(&mut whole, Instant::ZERO).unwrap();
    assert_eq!(
        (n, &event),
        (11, &Some(UnborrowedEvent::Text(Payload::Input(6..11))))
    );
    assert_eq!(c.payload(&Payload::Input(6..11), &whole), b"Hello");
    assert_eq!(c.event(event.unwrap(), &whole), Ok(Event::Text("Hello")));

    // The same message in two fragments: named as the message buffer.
    let mut parts = [
        0x01, 0x83, 0, 0, 0, 0, b'H', b'e', b'l', 0x80, 0x82, 0, 0, 0, 0, b'l', b'o',
    ];
    let mut c = conn(Role::Server, quiet());
    let (n, event) = c.handle_read_unborrowed(&mut parts, Instant::ZERO).unwrap();
    assert_eq!(
        (n, &event),
        (17, &Some(UnborrowedEvent::Text(Payload::Message)))
    );
    assert_eq!(c.payload(&Payload::Message, &[]), b"Hello");
    assert_eq!(c.event(event.unwrap(), &parts), Ok(Event::Text("Hello")));
}

#[test]
fn event_validates_text_from_the_input_once_and_fails_with_1007() {
    let mut frame = [0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28];
    let mut c = conn(Role::Server, quiet());
    let (_, event) = c.handle_read_unborrowed(&mut frame, Instant::ZERO).unwrap();
    let event = event.unwrap();
    assert_eq!(event, UnborrowedEvent::Text(Payload::Input(6..8)));
    assert_eq!(
        c.event(event, &frame),
        Err(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    assert_eq!(sent_close_code(&transmit(&mut c)), 1007);
    // The failure is kept once the Close went out.
    assert!(c.is_closed());
    assert_eq!(
        c.failure(),
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    );
}

#[test]
fn a_violation_found_by_the_caller_fails_the_connection_once() {
    let mut c = conn(Role::Server, quiet());
    assert_eq!(
        c.fail(ProtocolError::InvalidUtf8),
        Error::Protocol(ProtocolError::InvalidUtf8)
    );
    assert_eq!(
        c.failure(),
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    );
    // Failing again changes nothing: one Close, with the first code.
    assert_eq!(
        c.fail(ProtocolError::MessageTooLarge { max: 1 }),
        Error::Closed
    );
    assert_eq!(sent_close_code(&transmit(&mut c)), 1007);
    assert!(transmit(&mut c).is_empty());
    assert!(c.is_closed());
    assert_eq!(c.fail(ProtocolError::InvalidUtf8), Error::Closed);
    assert_eq!(
        c.failure(),
        Some(Error::Protocol(ProtocolError::InvalidUtf8))
    );
}

#[test]
fn queued_control_frames_are_handed_to_a_writer_in_order() {
    let mut c = conn(Role::Client, Config::DEFAULT);
    // A Ping to answer, a heartbeat Ping due, then our Close.
    let _ = feed(&mut c, &[UNMASKED_PING_HELLO]);
    c.handle_timeout(Instant::from_secs(30)).unwrap();
    c.close(CloseCode::NORMAL, "bye", Instant::from_secs(30))
        .unwrap();
    // The heartbeat Ping was dropped by the close: Pong, then Close.
    // A writer that fails leaves the frame queued.
    assert_eq!(c.poll_transmit_with(|_, _| Err("full")), Err("full"));
    assert!(c.wants_transmit());
    let mut seen = Vec::new();
    let frames = c.poll_transmit_with(|header, payload| {
        assert!(header.mask.is_some(), "a client masks");
        seen.push((header.opcode, payload.to_vec()));
        Ok::<(), ()>(())
    });
    assert_eq!(frames, Ok(2));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    assert_eq!(
        seen,
        vec![(OpCode::Pong, b"Hello".to_vec()), (OpCode::Close, close)]
    );
    assert!(!c.wants_transmit());
    assert_eq!(c.poll_transmit_with(|_, _| Err(())), Ok(0));
}

#[test]
fn time_going_backwards_is_taken_as_given_and_nothing_panics() {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10))
        .fragment_timeout(Some(Duration::from_secs(5)));
    let mut c = conn(Role::Client, config);
    // The heartbeat goes out at 30 s.
    c.handle_timeout(Instant::from_secs(30)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
    let _ = transmit(&mut c);
    // An earlier `now`: deadlines already set do not fire before they are
    // reached again.
    c.handle_timeout(Instant::from_secs(1)).unwrap();
    c.handle_timeout(Instant::ZERO).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
    assert!(!c.wants_transmit());
    // A deadline set at the earlier `now` counts from it: a fragmented
    // message started "at 2 s" is due at 7 s.
    assert!(matches!(
        c.handle_read(&mut [0x01, 0x01, b'a'], Instant::from_secs(2)),
        Ok((3, None))
    ));
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(7)));
    assert_eq!(
        c.handle_timeout(Instant::from_secs(7)),
        Err(Error::FragmentTimeout)
    );
    // The clock's very end and its origin, in any order.
    let mut c = conn(Role::Server, config);
    let end = Instant::from_micros(u64::MAX);
    c.handle_timeout(end).unwrap();
    assert_eq!(c.poll_timeout(), Some(end), "saturated, not wrapped");
    c.handle_timeout(Instant::ZERO).unwrap();
    assert_eq!(c.handle_timeout(end), Err(Error::PongTimeout));
    c.close(CloseCode::NORMAL, "", Instant::ZERO).ok();
    assert_eq!(c.poll_timeout(), None);
}
