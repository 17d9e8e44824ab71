//! Unit tests of permessage-deflate in the connection: both directions,
//! fragmented and split at every byte, and every violation's close code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::deflate::DeflateParams;
use crate::seq_rng::SeqRng;

type Conn = Connection<Vec<u8>, SeqRng>;

fn params(s: bool, c: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        server_max_window_bits: None,
        client_max_window_bits: None,
    }
}

fn conn(role: Role, config: Config, deflate: Option<DeflateParams>) -> Conn {
    let mut c = Connection::new(
        role,
        config.ping_interval(None),
        Vec::new(),
        SeqRng::new(&[0x37, 0xfa, 0x21, 0x3d]),
        Instant::ZERO,
    );
    if let Some(p) = deflate {
        c.enable_deflate(&p, 6);
    }
    c
}

/// Feeds `wire` to `c`, `step` bytes at a time, collecting the messages
/// (text as `Ok`, binary as `Err`) until an error.
fn feed(c: &mut Conn, wire: &[u8], step: usize) -> (Vec<Result<String, Vec<u8>>>, Option<Error>) {
    let mut got = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in wire.chunks(step.max(1)) {
        pending.extend_from_slice(piece);
        let mut at = 0;
        loop {
            match c.handle_read(&mut pending[at..], Instant::ZERO) {
                Ok((n, ev)) => {
                    at += n;
                    match ev {
                        Some(Event::Text(t)) => got.push(Ok(t.into())),
                        Some(Event::Binary(b)) => got.push(Err(b.to_vec())),
                        Some(_) => {}
                        None => break,
                    }
                }
                Err(e) => return (got, Some(e)),
            }
        }
        pending.drain(..at);
    }
    (got, None)
}

/// The close code `c` queued.
fn close_code(c: &mut Conn) -> u16 {
    let mut out = [0u8; 256];
    let n = c.poll_transmit(&mut out).unwrap();
    assert!(n >= 4, "a Close is queued");
    u16::from_be_bytes([out[2], out[3]])
}

fn json(len: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < len {
        s.push_str(&std::format!(
            "{{\"id\":{i},\"name\":\"user{}\",\"ok\":true}},",
            i % 7
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

#[test]
fn messages_round_trip_both_ways_in_every_mode() {
    for p in [
        params(false, false),
        params(true, true),
        params(true, false),
    ] {
        for (from, to) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut tx = conn(from, Config::DEFAULT, Some(p));
            let mut rx = conn(to, Config::DEFAULT, Some(p));
            let mut wire = Vec::new();
            let msgs = [json(0), json(1), json(300), json(70_000), json(300)];
            for m in &msgs {
                tx.send_compressed(MessageKind::Text, m.as_bytes(), &mut wire)
                    .unwrap();
            }
            tx.send_compressed(MessageKind::Binary, &[0, 1, 2, 255], &mut wire)
                .unwrap();
            assert!(wire.len() < 20_000, "compressed: {}", wire.len());
            // Every frame has RSV1.
            assert_eq!(wire[0] & 0x40, 0x40);
            let (got, err) = feed(&mut rx, &wire, wire.len());
            assert_eq!(err, None);
            let mut want: Vec<_> = msgs.iter().cloned().map(Ok).collect();
            want.push(Err(vec![0, 1, 2, 255]));
            assert_eq!(got, want, "{p:?} {from:?}");
        }
    }
}

#[test]
fn split_at_every_byte_gives_the_same_messages() {
    let p = params(false, false);
    let mut tx = conn(Role::Client, Config::DEFAULT, Some(p));
    let mut wire = Vec::new();
    let msgs = [json(40), json(2000), json(40)];
    for m in &msgs {
        tx.send_compressed(MessageKind::Text, m.as_bytes(), &mut wire)
            .unwrap();
    }
    for step in [1, 2, 3, 7, 100] {
        let mut rx = conn(Role::Server, Config::DEFAULT, Some(p));
        let (got, err) = feed(&mut rx, &wire, step);
        assert_eq!(err, None);
        assert_eq!(
            got,
            msgs.iter().cloned().map(Ok).collect::<Vec<_>>(),
            "{step}"
        );
    }
}

/// A compressed message split into frames by hand: RSV1 on the first only.
fn fragmented(payload: &[u8], pieces: usize, rsv1_on_continuation: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let size = payload.len().div_ceil(pieces).max(1);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let header = FrameHeader {
            fin: i + 1 == chunks.len(),
            opcode: if i == 0 {
                OpCode::Text
            } else {
                OpCode::Continuation
            },
            mask: Some([1, 2, 3, 4]),
            payload_len: chunk.len() as u64,
        };
        let at = out.len();
        out.resize(at + header.encoded_len() + chunk.len(), 0);
        encode_frame(header, chunk, &mut out[at..]).unwrap();
        if i == 0 || rsv1_on_continuation {
            out[at] |= 0x40;
        }
    }
    out
}

/// `text` compressed as one message's payload (by a client).
fn compressed(text: &[u8]) -> Vec<u8> {
    let mut tx = conn(Role::Client, Config::DEFAULT, Some(params(false, false)));
    let mut frame = Vec::new();
    tx.send_compressed(MessageKind::Text, text, &mut frame)
        .unwrap();
    let (header, used) = {
        let mut copy = frame.clone();
        copy[0] &= !0x40;
        FrameHeader::decode(&copy).unwrap().unwrap()
    };
    let mut payload = frame[used..].to_vec();
    apply_mask(&mut payload, header.mask.unwrap(), 0);
    payload
}

#[test]
fn fragmented_compressed_messages_and_rsv1_rules() {
    let text = json(5000);
    let payload = compressed(text.as_bytes());
    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let (got, err) = feed(&mut rx, &fragmented(&payload, 4, false), 5);
    assert_eq!((got, err), (vec![Ok(text.clone())], None));

    // RSV1 on a continuation frame: 1002.
    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let (_, err) = feed(&mut rx, &fragmented(&payload, 4, true), 1000);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::ReservedBits(4))));
    assert_eq!(close_code(&mut rx), 1002);

    // RSV1 on a control frame: 1002.
    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let (_, err) = feed(&mut rx, &[0x89 | 0x40, 0x80, 1, 2, 3, 4], 1);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::ReservedBits(4))));
    assert_eq!(close_code(&mut rx), 1002);

    // RSV1 without the extension: 1002, as before.
    let mut rx = conn(Role::Server, Config::DEFAULT, None);
    let (_, err) = feed(&mut rx, &fragmented(&payload, 1, false), 1000);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::ReservedBits(4))));
    assert_eq!(close_code(&mut rx), 1002);
}

#[test]
fn inflation_is_bounded_by_the_message_limit() {
    // 4 MiB of one byte compress to a few KiB; the limit is 64 KiB.
    let bomb = compressed(&vec![b'a'; 4 << 20]);
    assert!(bomb.len() < 16 << 10, "{}", bomb.len());
    let config = Config::DEFAULT.max_message_size(64 << 10);
    let mut rx = conn(Role::Server, config, Some(params(false, false)));
    let (got, err) = feed(&mut rx, &fragmented(&bomb, 1, false), bomb.len() + 14);
    assert!(got.is_empty());
    assert_eq!(
        err,
        Some(Error::Protocol(ProtocolError::MessageTooLarge {
            max: 64 << 10
        }))
    );
    assert_eq!(close_code(&mut rx), 1009);
    // Nothing past the limit was stored.
    assert!(rx.message_buf.len() <= 64 << 10);
    // Exactly at the limit is accepted.
    let exact = compressed(&vec![b'a'; 64 << 10]);
    let mut rx = conn(Role::Server, config, Some(params(false, false)));
    let (got, err) = feed(&mut rx, &fragmented(&exact, 3, false), 999);
    assert_eq!((got.len(), err), (1, None));
}

#[test]
fn inflated_text_is_validated_and_corrupt_data_refused() {
    let mut bad = json(3000).into_bytes();
    bad[2500] = 0xff;
    let payload = compressed(&bad);
    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let (_, err) = feed(&mut rx, &fragmented(&payload, 2, false), 64);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(close_code(&mut rx), 1007);

    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let (_, err) = feed(
        &mut rx,
        &fragmented(&[0xff, 0xff, 0xff, 0xff], 1, false),
        64,
    );
    assert_eq!(
        err,
        Some(Error::Protocol(ProtocolError::InvalidCompressedData))
    );
    assert_eq!(close_code(&mut rx), 1007);
}

#[test]
fn uncompressed_messages_still_pass_and_sends_check_the_state() {
    let mut rx = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    let mut tx = conn(Role::Client, Config::DEFAULT, None);
    let mut wire = vec![0u8; 64];
    let n = tx.send_text("plain", &mut wire).unwrap();
    let mut out = Vec::new();
    // Without the extension, send_compressed sends it plain.
    tx.send_compressed(MessageKind::Text, b"plain too", &mut out)
        .unwrap();
    assert_eq!(out[0] & 0x40, 0);
    wire.truncate(n);
    wire.extend_from_slice(&out);
    let (got, err) = feed(&mut rx, &wire, 3);
    assert_eq!(err, None);
    assert_eq!(got, vec![Ok("plain".into()), Ok("plain too".into())]);

    let mut c = conn(Role::Server, Config::DEFAULT, Some(params(false, false)));
    c.send_fragment(MessageKind::Text, b"a", false, &mut [0u8; 16])
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        c.send_compressed(MessageKind::Text, b"b", &mut out),
        Err(SendError::FragmentInProgress)
    );
    assert!(out.is_empty());
}
