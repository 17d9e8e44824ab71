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

mod api;
mod closing;
mod receive;
