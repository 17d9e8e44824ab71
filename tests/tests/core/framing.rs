//! Framing (RFC 6455 §5.2, §5.7): the RFC's example frames in both
//! directions, multi-frame conversations fed at every split point and byte
//! by byte, and encode → decode round trips of random frames.

use rand_core::RngCore;
use snowsocket_core::{Config, Connection, FrameHeader, Instant, MessageKind, OpCode, Role};
use snowsocket_tests::{
    close_payload, connection, feed_chunks, feed_every_way, frame, frame_from, parse_frames, Ev,
    FixedRng, Pair, Side, XorShiftRng, QUIET,
};

const HELLO: &[u8] = b"Hello";
/// §5.7: a single-frame unmasked text message.
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: a single-frame masked text message.
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// §5.7: a fragmented unmasked text message.
const FRAGMENTED_HELLO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
/// §5.7: an unmasked Ping.
const UNMASKED_PING: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: a masked Pong answering it.
const MASKED_PONG: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// §5.7: 256 bytes of binary in one unmasked frame (16-bit length).
fn binary_256() -> Vec<u8> {
    let mut v = vec![0x82, 0x7E, 0x01, 0x00];
    v.extend((0..256u32).map(|i| i as u8));
    v
}

/// §5.7: 64 KiB of binary in one unmasked frame (64-bit length).
fn binary_64k() -> Vec<u8> {
    let mut v = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    v.extend((0..65_536u32).map(|i| (i * 7) as u8));
    v
}

fn client() -> Connection<Vec<u8>, FixedRng> {
    connection(Role::Client, QUIET)
}

fn server() -> Connection<Vec<u8>, FixedRng> {
    connection(Role::Server, QUIET)
}

#[test]
fn rfc_vectors_decode_at_every_split() {
    let text = |s: &str| vec![Ev::Text(s.into())];
    assert_eq!(
        feed_every_way(Role::Client, QUIET, UNMASKED_HELLO).events,
        text("Hello")
    );
    assert_eq!(
        feed_every_way(Role::Server, QUIET, MASKED_HELLO).events,
        text("Hello")
    );
    assert_eq!(
        feed_every_way(Role::Client, QUIET, FRAGMENTED_HELLO).events,
        text("Hello")
    );

    // The client answers the unmasked Ping with exactly the masked Pong of
    // §5.7 (the RFC's key comes from the fixed RNG).
    let ping = feed_every_way(Role::Client, QUIET, UNMASKED_PING);
    assert_eq!(ping.events, vec![Ev::Ping(HELLO.to_vec())]);
    assert_eq!(ping.sent, MASKED_PONG);
    assert_eq!(
        feed_every_way(Role::Server, QUIET, MASKED_PONG).events,
        vec![Ev::Pong(HELLO.to_vec())]
    );

    let v = binary_256();
    let o = feed_every_way(Role::Client, QUIET, &v);
    assert_eq!(o.events, vec![Ev::Binary(v[4..].to_vec())]);
}

/// The §5.7 64 KiB vector at each of its 65,545 split points and byte by
/// byte (its own test so that it runs in parallel with the others).
#[test]
fn rfc_64k_vector_at_every_split() {
    let v = binary_64k();
    let o = feed_every_way(Role::Client, QUIET, &v);
    assert_eq!(o.events, vec![Ev::Binary(v[10..].to_vec())]);
    assert!(o.error.is_none() && o.sent.is_empty());
}

#[test]
fn rfc_vectors_encode() {
    let mut out = [0u8; 70_000];
    let n = server().send_text("Hello", &mut out).unwrap();
    assert_eq!(&out[..n], UNMASKED_HELLO);
    let n = client().send_text("Hello", &mut out).unwrap();
    assert_eq!(&out[..n], MASKED_HELLO);

    let mut s = server();
    let a = s
        .send_fragment(MessageKind::Text, b"Hel", false, &mut out)
        .unwrap();
    let b = s
        .send_fragment(MessageKind::Text, b"lo", true, &mut out[a..])
        .unwrap();
    assert_eq!(&out[..a + b], FRAGMENTED_HELLO);

    let n = server().ping(HELLO, &mut out).unwrap();
    assert_eq!(&out[..n], UNMASKED_PING);

    let v = binary_256();
    let n = server().send_binary(&v[4..], &mut out).unwrap();
    assert_eq!(&out[..n], &v[..]);
    let v = binary_64k();
    let n = server().send_binary(&v[10..], &mut out).unwrap();
    assert_eq!(n, v.len());
    assert_eq!(&out[..n], &v[..]);

    // frame_len agrees with what send writes, across the length classes.
    for len in [0, 125, 126, 65_535, 65_536] {
        for mut c in [client(), server()] {
            let n = c.send_binary(&vec![0; len], &mut out).unwrap();
            assert_eq!(n, c.frame_len(len), "len {len} {:?}", c.role());
        }
    }
}

/// Conversations of several frames, each fed whole, at every split point
/// and byte by byte (feed_every_way asserts the outcomes are identical).
#[test]
fn conversations_at_every_split_point() {
    for sender in [Role::Client, Role::Server] {
        let receiver = match sender {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let f = |fin, op, p: &[u8]| frame_from(sender, fin, op, p);

        // Fragmented text with control frames between the fragments.
        let mut wire = f(false, OpCode::Text, "Hél".as_bytes());
        wire.extend(f(true, OpCode::Ping, b"p1"));
        wire.extend(f(false, OpCode::Continuation, "lo ".as_bytes()));
        wire.extend(f(true, OpCode::Pong, b"unsolicited"));
        wire.extend(f(false, OpCode::Continuation, b""));
        wire.extend(f(true, OpCode::Continuation, "wörld".as_bytes()));
        wire.extend(f(true, OpCode::Binary, &[1, 2, 3]));
        let o = feed_every_way(receiver, QUIET, &wire);
        assert_eq!(
            o.events,
            vec![
                Ev::Ping(b"p1".to_vec()),
                Ev::Pong(b"unsolicited".to_vec()),
                Ev::Text("Héllo wörld".into()),
                Ev::Binary(vec![1, 2, 3]),
            ]
        );
        let sent = parse_frames(&o.sent);
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].opcode, &sent[0].payload[..]),
            (OpCode::Pong, &b"p1"[..])
        );
        assert_eq!(sent[0].masked, receiver == Role::Client);

        // A close handshake started by the sender; what follows its Close
        // is ignored.
        let mut wire = f(true, OpCode::Text, b"bye");
        wire.extend(f(true, OpCode::Close, &close_payload(1000, b"done")));
        wire.extend(f(true, OpCode::Text, b"ignored after close"));
        let o = feed_every_way(receiver, QUIET, &wire);
        assert_eq!(
            o.events,
            vec![
                Ev::Text("bye".into()),
                Ev::Close(Some((1000, "done".into())))
            ]
        );
        assert_eq!(o.close_code(), Some(1000), "the Close is echoed");
        assert!(o.error.is_none());

        // 300 bytes of text (16-bit length, multi-byte characters).
        let text = "ab€".repeat(60);
        assert_eq!(text.len(), 300);
        let o = feed_every_way(receiver, QUIET, &f(true, OpCode::Text, text.as_bytes()));
        assert_eq!(o.events, vec![Ev::Text(text)]);
    }
}

/// The 64 KiB binary from a client (masked), cut everywhere in the header
/// and around the 16/64-bit boundaries, and byte by byte. (Every one of the
/// 65,545 cut points is done for the unmasked RFC vector above; here a
/// stride keeps the debug build fast while unmasking 64 KiB per cut.)
#[test]
fn masked_64k_binary_at_many_split_points() {
    let payload: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let wire = frame_from(Role::Client, true, OpCode::Binary, &payload);
    let expected = vec![Ev::Binary(payload)];
    let mut cuts: Vec<usize> = (1..40).collect();
    cuts.extend((40..wire.len()).step_by(997));
    cuts.extend(wire.len() - 20..wire.len());
    for cut in cuts {
        let o = snowsocket_tests::feed_split(Role::Server, QUIET, &wire, &[cut]);
        assert_eq!(o.events, expected, "cut at {cut}");
    }
    let o = feed_chunks(
        &mut connection(Role::Server, QUIET),
        &wire,
        &mut || 1,
        Instant::ZERO,
    );
    assert_eq!(o.events, expected);
}

/// A length in one of the classes, weighted to the 7/16/64-bit boundaries.
fn random_len(rng: &mut XorShiftRng) -> usize {
    match rng.below(6) {
        0 => rng.range(0..=125),
        1 => rng.range(120..=130),
        2 => rng.range(65_530..=65_540),
        3 => rng.range(126..=2000),
        4 => rng.range(0..=3),
        _ => rng.range(65_536..=70_000),
    }
}

#[test]
fn random_headers_round_trip() {
    let mut rng = XorShiftRng::new(0x5EED);
    let mut buf = [0u8; FrameHeader::MAX_LEN];
    for _ in 0..5000 {
        let opcode = [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ][rng.below(6) as usize];
        let (fin, len) = if opcode.is_control() {
            (true, rng.below(126))
        } else {
            let len = match rng.below(3) {
                0 => random_len(&mut rng) as u64,
                1 => rng.below(1 << 40),
                _ => rng.next_u64() >> 1,
            };
            (rng.coin(), len)
        };
        let mask = rng.coin().then(|| rng.next_u32().to_le_bytes());
        let h = FrameHeader {
            fin,
            opcode,
            mask,
            payload_len: len,
        };
        let n = h.encode(&mut buf).unwrap();
        let expected_len =
            2 + match len {
                0..=125 => 0,
                126..=65_535 => 2,
                _ => 8,
            } + if mask.is_some() { 4 } else { 0 };
        assert_eq!(n, expected_len, "{h:?}");
        // Byte-identical to the hand-made encoding.
        let by_hand = snowsocket_tests::header(fin, 0, opcode.as_u8(), mask, len);
        assert_eq!(&buf[..n], &by_hand[..]);
        assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((h, n))));
        assert_eq!(FrameHeader::decode(&buf[..n - 1]), Ok(None));
    }
}

/// Random messages sent with `send` / `send_fragment` / `ping` by one end
/// arrive intact at the other, delivered in random chunk sizes.
#[test]
fn random_messages_round_trip_between_two_connections() {
    let mut rng = XorShiftRng::new(42);
    for case in 0..200 {
        let mut pair = Pair::new(QUIET);
        pair.chunk = [1, 2, 3, 7, 64, 1000, usize::MAX][rng.below(7) as usize];
        let from = if rng.coin() {
            Side::Client
        } else {
            Side::Server
        };
        let mut expected = Vec::new();
        for _ in 0..rng.range(1..=4) {
            let len = random_len(&mut rng);
            let binary = rng.coin();
            let payload = if binary {
                rng.bytes(len)
            } else {
                // ASCII and two-byte characters, so fragments can split one.
                (0..len)
                    .map(|i| if i % 3 == 0 { 'é' } else { 'x' })
                    .collect::<String>()
                    .into_bytes()
            };
            let kind = if binary {
                MessageKind::Binary
            } else {
                MessageKind::Text
            };
            match rng.below(3) {
                0 => pair.send(from, kind, &payload),
                1 => {
                    // In random fragments, possibly empty ones.
                    let mut at = 0;
                    loop {
                        let take = rng.range(0..=payload.len() - at);
                        let fin = at + take == payload.len() && rng.coin();
                        pair.send_fragment(from, kind, &payload[at..at + take], fin);
                        at += take;
                        if fin {
                            break;
                        }
                    }
                }
                _ => {
                    let len = rng.range(0..=125);
                    let p = rng.bytes(len);
                    pair.ping(from, &p);
                    expected.push(Ev::Ping(p));
                    pair.send(from, kind, &payload);
                }
            }
            expected.push(if binary {
                Ev::Binary(payload)
            } else {
                Ev::Text(String::from_utf8(payload).unwrap())
            });
        }
        pair.run();
        let to = from.peer();
        assert!(pair.peer(to).error.is_none(), "case {case}");
        assert_eq!(pair.take_events(to), expected, "case {case}");
        // Pings were answered with Pongs carrying the same payload; when
        // several Pings arrive before the Pongs go out, only the latest may
        // be answered (RFC 6455 §5.5.3), so the Pongs are an ordered
        // subsequence of the Pings that includes the last one.
        let pings: Vec<Vec<u8>> = expected
            .iter()
            .filter_map(|e| match e {
                Ev::Ping(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let pongs: Vec<Vec<u8>> = pair
            .take_events(from)
            .into_iter()
            .map(|e| match e {
                Ev::Pong(p) => p,
                other => panic!("case {case}: {other:?}"),
            })
            .collect();
        let mut rest = pings.iter();
        assert!(
            pongs.iter().all(|p| rest.any(|q| q == p)),
            "case {case}: pongs out of order"
        );
        assert_eq!(pongs.last(), pings.last(), "case {case}");
        // Client frames are masked, server frames never.
        assert!(pair.client.sent.iter().all(|f| f.masked));
        assert!(pair.server.sent.iter().all(|f| !f.masked));
    }
}

/// Frames whose header uses a longer length encoding than needed are
/// accepted (RFC 6455 §5.2 asks senders for the minimal one; being lenient
/// as a receiver is common practice) and decode to the same message.
#[test]
fn non_minimal_length_encodings_are_accepted() {
    let mut wire = vec![0x82, 126, 0, 3, 1, 2, 3];
    wire.extend([0x82, 127, 0, 0, 0, 0, 0, 0, 0, 2, 4, 5]);
    let o = feed_every_way(Role::Client, QUIET, &wire);
    assert_eq!(
        o.events,
        vec![Ev::Binary(vec![1, 2, 3]), Ev::Binary(vec![4, 5])]
    );
}

/// A frame with a zero-length payload of each data and control kind.
#[test]
fn empty_frames() {
    let mut wire = frame(true, 0, 1, None, b"");
    wire.extend(frame(true, 0, 2, None, b""));
    wire.extend(frame(true, 0, 9, None, b""));
    wire.extend(frame(true, 0, 0xA, None, b""));
    wire.extend(frame(true, 0, 8, None, b""));
    let o = feed_every_way(Role::Client, Config::DEFAULT.ping_interval(None), &wire);
    assert_eq!(
        o.events,
        vec![
            Ev::Text(String::new()),
            Ev::Binary(vec![]),
            Ev::Ping(vec![]),
            Ev::Pong(vec![]),
            Ev::Close(None),
        ]
    );
    let sent = parse_frames(&o.sent);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].opcode, OpCode::Pong);
    // An empty Close is answered with 1000.
    assert_eq!(sent[1].close_code(), Some(1000));
}
