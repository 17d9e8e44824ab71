//! `handle_linger`: after a failure, the peer's frames are followed to its
//! Close however the bytes are cut, from wherever the failure struck.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::vec::Vec;

use super::*;
use crate::seq_rng::SeqRng;

type Conn = Connection<heapless::Vec<u8, 64>, SeqRng>;

fn server(config: Config) -> Conn {
    Connection::new(
        Role::Server,
        config,
        heapless::Vec::new(),
        SeqRng::new(&[1, 2, 3, 4]),
        Instant::ZERO,
    )
}

/// A masked frame from a client.
fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        opcode,
        mask: Some([9, 8, 7, 6]),
        payload_len: payload.len() as u64,
    };
    let mut out = std::vec![0u8; header.encoded_len() + payload.len()];
    let n = encode_frame(header, payload, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Feeds `input` as a driver does until the connection fails; returns the
/// bytes the failing call was given (which it consumed nothing of).
fn fail_on(c: &mut Conn, input: &mut [u8]) -> (Error, Vec<u8>) {
    let mut start = 0;
    loop {
        match c.handle_read_unborrowed(&mut input[start..], Instant::ZERO) {
            Ok((n, _)) => {
                assert!(n > 0 || start < input.len(), "no failure in the input");
                start += n;
            }
            Err(e) => return (e, input[start..].to_vec()),
        }
    }
}

/// Lingers over `rest` cut at `cut`, then byte by byte: whether the peer's
/// Close was found, the same every way.
fn lingers_to_close(make: impl Fn() -> (Conn, Vec<u8>)) -> bool {
    let (mut c, rest) = make();
    let _ = c.handle_linger(&rest, Instant::ZERO);
    let whole = c.peer_closed();
    for cut in 0..=rest.len() {
        let (mut c, rest) = make();
        let (a, b) = rest.split_at(cut);
        let _ = c.handle_linger(a, Instant::ZERO);
        let _ = c.handle_linger(b, Instant::ZERO);
        assert_eq!(c.peer_closed(), whole, "cut at {cut}");
    }
    let (mut c, rest) = make();
    for byte in rest.chunks(1) {
        let _ = c.handle_linger(byte, Instant::ZERO);
    }
    assert_eq!(c.peer_closed(), whole, "byte by byte");
    whole
}

#[test]
fn a_frame_over_the_limit_is_skipped_to_the_peers_close() {
    let make = || {
        let mut c = server(Config::DEFAULT.ping_interval(None).max_frame_size(50));
        // A message, then one over the limit, then more, then the Close.
        let mut input = frame(OpCode::Text, true, b"fine");
        input.extend(frame(OpCode::Binary, true, &[0x88; 60]));
        input.extend(frame(OpCode::Binary, true, &[7; 30]));
        input.extend(frame(OpCode::Ping, true, b"p"));
        input.extend(frame(OpCode::Close, true, &[0x03, 0xe8]));
        let (e, rest) = fail_on(&mut c, &mut input);
        assert_eq!(e.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
        assert!(!c.peer_closed());
        (c, rest)
    };
    assert!(lingers_to_close(make));
}

#[test]
fn a_failure_inside_a_payload_skips_the_rest_of_its_frame() {
    let make = || {
        let mut c = server(Config::DEFAULT.ping_interval(None));
        // Invalid UTF-8 early in a fragmented text message's first frame,
        // whose payload (0x88 bytes: Close opcodes) goes on.
        let mut payload = std::vec![b'a'; 10];
        payload.push(0xff);
        payload.extend([0x88; 20]);
        let mut input = frame(OpCode::Text, false, &payload);
        input.extend(frame(OpCode::Close, true, &[0x03, 0xe8]));
        let (e, rest) = fail_on(&mut c, &mut input);
        assert_eq!(e.close_code(), Some(CloseCode::INVALID_PAYLOAD));
        (c, rest)
    };
    assert!(lingers_to_close(make));
}

#[test]
fn a_timeout_between_reads_skips_the_rest_of_the_frame_under_way() {
    let config = Config::DEFAULT
        .ping_interval(None)
        .fragment_timeout(Some(core::time::Duration::from_secs(1)));
    let mut c = server(config);
    let first = frame(OpCode::Binary, false, &[1; 10]);
    let mut second = frame(OpCode::Continuation, false, &[0x88; 20]);
    // The first fragment whole, the second's header and part of its payload.
    let mut input = first.clone();
    input.extend_from_slice(&second[..10]);
    let (n, _) = c.handle_read_unborrowed(&mut input, Instant::ZERO).unwrap();
    assert_eq!(n, input.len());
    let e = c.handle_timeout(Instant::from_secs(2)).unwrap_err();
    assert_eq!(e, Error::FragmentTimeout);
    let mut rest = second.split_off(10);
    rest.extend(frame(OpCode::Close, true, &[0x03, 0xe8]));
    let _ = c.handle_linger(&rest, Instant::ZERO);
    assert!(c.peer_closed());
}

#[test]
fn a_header_that_broke_the_protocol_is_skipped_by_its_length() {
    let make = || {
        let mut c = server(Config::DEFAULT.ping_interval(None));
        // A reserved opcode (1002), with a payload of Close opcodes, then
        // a Ping too long for a control frame, then the peer's Close.
        let mut input = std::vec![0x83, 0x84, 0, 0, 0, 0, 0x88, 0x88, 0x88, 0x88];
        input.extend(frame(OpCode::Ping, true, &[0x88; 126]));
        input.extend(frame(OpCode::Close, true, &[0x03, 0xe8]));
        let (e, rest) = fail_on(&mut c, &mut input);
        assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
        (c, rest)
    };
    assert!(lingers_to_close(make));
}

#[test]
fn a_bad_close_from_the_peer_ends_the_linger_at_once() {
    let mut c = server(Config::DEFAULT.ping_interval(None));
    // A Close with a one-byte payload: 1002, but it was the peer's Close.
    let mut input = frame(OpCode::Close, true, &[3]);
    let (e, _) = fail_on(&mut c, &mut input);
    assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert!(c.peer_closed());
}

#[test]
fn lingering_ends_with_the_peers_close_or_the_close_timeout() {
    let timeout = core::time::Duration::from_secs(3);
    let config = Config::DEFAULT
        .ping_interval(None)
        .max_frame_size(50)
        .close_timeout(timeout);
    let mut c = server(config);
    let mut input = frame(OpCode::Binary, true, &[0; 60]);
    let (_, rest) = fail_on(&mut c, &mut input);
    let start = Instant::from_secs(10);
    assert!(c.handle_linger(&rest, start), "the peer may still send");
    assert_eq!(c.poll_timeout(), Some(start + timeout));
    let later = Instant::from_secs(12);
    assert!(c.handle_linger(&frame(OpCode::Ping, true, b"x"), later));
    assert!(
        !c.handle_linger(&[], start + timeout),
        "the close timeout passed"
    );
    // The peer's Close ends it before the timeout.
    let mut c = server(config);
    let mut input = frame(OpCode::Binary, true, &[0; 60]);
    let (_, rest) = fail_on(&mut c, &mut input);
    assert!(c.handle_linger(&rest, start));
    assert!(!c.handle_linger(&frame(OpCode::Close, true, &[0x03, 0xe8]), later));
    assert!(c.peer_closed());
}

#[test]
fn only_a_failed_connection_lingers() {
    let mut c = server(Config::DEFAULT.ping_interval(None));
    assert!(!c.handle_linger(&frame(OpCode::Text, true, b"hi"), Instant::ZERO));
    assert_eq!(c.poll_timeout(), None, "no close timer is set");
    let mut input = frame(OpCode::Text, true, b"hi");
    let (_, event) = c.handle_read_unborrowed(&mut input, Instant::ZERO).unwrap();
    assert!(event.is_some(), "the connection reads on");
}
