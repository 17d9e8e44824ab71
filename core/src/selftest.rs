//! Self-tests of the core that run on any target, with no allocator and no
//! `std`: the same bodies run as a host unit test
//! (`all_selftests_pass_on_the_host`) and in the firmware under
//! `examples/firmware`, which runs them on an emulated Cortex-M4F
//! (`scripts/qemu-selftest.sh`).
//!
//! Each test is a plain function returning `Err` with the source line and
//! the condition that failed. Storage is fixed-size arrays on the stack; the
//! largest is a 64 KiB buffer, in which the RFC 6455 §5.7 64 KiB message is
//! reassembled, so give the tests at least 80 KiB of stack.
//!
//! ```
//! for (name, test) in snowsocket_core::selftest::TESTS {
//!     assert_eq!(test(), Ok(()), "{name}");
//! }
//! ```
//!
//! Enabled by the `selftest` feature (and in the crate's own tests).

use core::cell::Cell;
use core::time::Duration;

use embedded_io::ErrorKind;
use rand_core::RngCore;

use crate::buffer::{MessageBuffer, SliceBuffer};
use crate::close::{parse_close_payload, CloseCode};
use crate::connection::{Config, Connection, Error, Event, MessageKind, Role, SendError};
use crate::driver::{DriverError, Message, Parts, WebSocket};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_FRAME};
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Parsed};
use crate::mask::{apply_mask, apply_mask_bytewise};
use crate::seq_rng::SeqRng;
use crate::time::Instant;
use crate::utf8::Utf8Validator;

/// A self-test: `Ok(())`, or the source line and condition that failed.
pub type TestFn = fn() -> Result<(), &'static str>;

/// Every self-test, by name, in the order they run.
pub const TESTS: &[(&str, TestFn)] = &[
    ("rfc6455_5_7_vectors_decode", rfc_vectors_decode),
    ("rfc6455_5_7_vectors_encode", rfc_vectors_encode),
    ("rfc6455_5_7_binary_64k", rfc_binary_64k),
    ("rfc6455_1_3_accept_key", accept_key_rfc),
    ("header_encode_decode_round_trip", header_round_trip),
    ("header_decode_rejects", header_decode_rejects),
    ("connection_rejects_with_close_code", connection_rejects),
    ("mask_fast_equals_bytewise", mask_fast_equals_bytewise),
    ("utf8_strict", utf8_strict),
    ("close_codes", close_codes),
    ("handshake_request_accept_response", handshake_round_trip),
    ("conversation_messages", conversation_messages),
    ("conversation_fragmentation", conversation_fragmentation),
    ("conversation_heartbeat", conversation_heartbeat),
    ("conversation_pong_timeout", conversation_pong_timeout),
    ("conversation_close", conversation_close),
    ("driver_echo", driver_echo),
    ("driver_heartbeat_and_pong_timeout", driver_heartbeat),
];

/// Fails the test with the line and the condition unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr) => {
        if !$cond {
            return Err(concat!("line ", line!(), ": ", stringify!($cond)));
        }
    };
}

/// The `Ok` value of `$e`, or fails the test with the line and expression.
macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(_) => return Err(concat!("line ", line!(), ": failed: ", stringify!($e))),
        }
    };
}

/// The RFC 6455 §5.7 masking key.
const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// §5.7: a single-frame unmasked text message "Hello".
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: a single-frame masked text message "Hello".
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// §5.7: a fragmented unmasked text message, "Hel" then "lo".
const FRAGMENTED_HELLO: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
/// §5.7: an unmasked Ping "Hello".
const UNMASKED_PING: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: a masked Pong "Hello" (the answer to the Ping above).
const MASKED_PONG: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// §5.7: the header of a 256-byte unmasked binary message.
const BINARY_256_HEADER: &[u8] = &[0x82, 0x7E, 0x01, 0x00];
/// §5.7: the header of a 64 KiB unmasked binary message.
const BINARY_64K_HEADER: &[u8] = &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];

/// The connections most tests use: a 256-byte reassembly buffer.
type Conn = Connection<heapless::Vec<u8, 256>, SeqRng>;

fn conn(role: Role, config: Config) -> Conn {
    Connection::new(
        role,
        config,
        heapless::Vec::new(),
        SeqRng::new(&RFC_KEY),
        Instant::ZERO,
    )
}

/// No heartbeat: for tests about framing only.
const QUIET: Config = Config::DEFAULT.ping_interval(None);

/// The bytes fed to a connection per call at most.
const PIECE: usize = 1024;

/// How a feed ended.
#[derive(Debug, PartialEq, Eq)]
enum Fed {
    /// All input consumed; this many events.
    Events(usize),
    /// The connection failed after this many events.
    Failed(Error, usize),
}

/// Feeds what `source` produces (it writes the next piece into the room it
/// is given and returns its length, `None` when done) to `conn`, keeping
/// unconsumed bytes as a driver does, and checks each event with `check`
/// (its index and the event).
fn feed<B: MessageBuffer, R: RngCore>(
    conn: &mut Connection<B, R>,
    now: Instant,
    source: &mut dyn FnMut(&mut [u8]) -> Option<usize>,
    check: &mut dyn FnMut(usize, &Event<'_>) -> bool,
) -> Result<Fed, &'static str> {
    let mut pending = [0u8; PIECE + MAX_CONTROL_FRAME];
    let mut held = 0;
    let mut events = 0;
    while let Some(n) = source(&mut pending[held..]) {
        held += n;
        let mut start = 0;
        loop {
            match conn.handle_read(&mut pending[start..held], now) {
                Ok((consumed, event)) => {
                    start += consumed;
                    let Some(event) = event else { break };
                    ensure!(check(events, &event));
                    events += 1;
                    if conn.is_closed() {
                        // The close handshake is over: further reads would
                        // return `Error::Closed`.
                        return Ok(Fed::Events(events));
                    }
                }
                Err(e) => return Ok(Fed::Failed(e, events)),
            }
        }
        ensure!(held - start < MAX_CONTROL_FRAME);
        pending.copy_within(start..held, 0);
        held -= start;
    }
    ensure!(held == 0);
    Ok(Fed::Events(events))
}

/// A source giving `wire[..first]`, then the rest in pieces of `step` bytes.
fn pieces(wire: &[u8], first: usize, step: usize) -> impl FnMut(&mut [u8]) -> Option<usize> + '_ {
    let mut at = 0;
    let mut started = false;
    move |room| {
        if started && at >= wire.len() {
            return None;
        }
        let want = if started { step } else { first };
        started = true;
        let n = want.min(room.len()).min(wire.len() - at);
        room[..n].copy_from_slice(&wire[at..at + n]);
        at += n;
        Some(n)
    }
}

/// Feeds `wire` to fresh connections from `make`, split at every point and
/// byte by byte, and checks that each run gives exactly `expected`.
fn expect_events(
    make: &dyn Fn() -> Conn,
    wire: &[u8],
    expected: &[Event<'_>],
) -> Result<(), &'static str> {
    let runs = (0..=wire.len())
        .map(|split| (split, wire.len().max(1)))
        .chain([(1, 1)]);
    for (first, step) in runs {
        let mut c = make();
        let fed = feed(
            &mut c,
            Instant::ZERO,
            &mut pieces(wire, first, step),
            &mut |i, e| expected.get(i) == Some(e),
        )?;
        ensure!(fed == Fed::Events(expected.len()));
    }
    Ok(())
}

/// Feeds `wire` to a fresh connection from `make` (split at every point and
/// byte by byte) and checks that it fails with `expected` and queues a Close
/// carrying that error's close code.
fn expect_failure(
    make: &dyn Fn() -> Conn,
    wire: &[u8],
    expected: ProtocolError,
) -> Result<(), &'static str> {
    let runs = (0..=wire.len())
        .map(|split| (split, wire.len().max(1)))
        .chain([(1, 1)]);
    for (first, step) in runs {
        let mut c = make();
        let fed = feed(
            &mut c,
            Instant::ZERO,
            &mut pieces(wire, first, step),
            &mut |_, _| true,
        )?;
        ensure!(matches!(fed, Fed::Failed(Error::Protocol(e), _) if e == expected));
        ensure!(c.failure() == Some(Error::Protocol(expected)));
        ensure!(sent_close_code(&mut c)? == Some(expected.close_code()));
        ensure!(c.is_closed());
    }
    Ok(())
}

/// The code of the Close frame `c` has queued, read by a peer.
fn sent_close_code(c: &mut Conn) -> Result<Option<CloseCode>, &'static str> {
    let mut out = [0u8; 139];
    let n = ok!(c.poll_transmit(&mut out));
    let peer_role = match c.role() {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut peer = conn(peer_role, QUIET);
    match ok!(peer.handle_read(&mut out[..n], Instant::ZERO)) {
        (_, Some(Event::Close(Some(frame)))) => Ok(Some(frame.code)),
        (_, Some(Event::Close(None))) => Ok(None),
        _ => Err("no Close frame was queued"),
    }
}

fn rfc_vectors_decode() -> Result<(), &'static str> {
    let client = || conn(Role::Client, QUIET);
    let server = || conn(Role::Server, QUIET);
    expect_events(&client, UNMASKED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&server, MASKED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&client, FRAGMENTED_HELLO, &[Event::Text("Hello")])?;
    expect_events(&client, UNMASKED_PING, &[Event::Ping(b"Hello")])?;
    expect_events(&server, MASKED_PONG, &[Event::Pong(b"Hello")])?;
    // All of them back to back, on one connection.
    let mut wire = [0u8; 64];
    let mut n = 0;
    for v in [UNMASKED_HELLO, FRAGMENTED_HELLO, UNMASKED_PING] {
        wire[n..n + v.len()].copy_from_slice(v);
        n += v.len();
    }
    let hello = Event::Text("Hello");
    expect_events(&client, &wire[..n], &[hello, hello, Event::Ping(b"Hello")])?;
    // 256 bytes of binary.
    let mut wire = [0u8; 260];
    wire[..4].copy_from_slice(BINARY_256_HEADER);
    for (i, b) in wire[4..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let payload = &wire[4..];
    let mut copy = [0u8; 256];
    copy.copy_from_slice(payload);
    expect_events(&client, &wire, &[Event::Binary(&copy)])?;
    Ok(())
}

fn rfc_vectors_encode() -> Result<(), &'static str> {
    let mut out = [0u8; 300];
    // Unmasked from a server, masked (with the RFC key) from a client.
    let mut server = conn(Role::Server, QUIET);
    let n = ok!(server.send_text("Hello", &mut out));
    ensure!(&out[..n] == UNMASKED_HELLO);
    let mut client = conn(Role::Client, QUIET);
    let n = ok!(client.send_text("Hello", &mut out));
    ensure!(&out[..n] == MASKED_HELLO);
    // Fragmented.
    let n = ok!(server.send_fragment(MessageKind::Text, b"Hel", false, &mut out));
    let m = ok!(server.send_fragment(MessageKind::Text, b"lo", true, &mut out[n..]));
    ensure!(&out[..n + m] == FRAGMENTED_HELLO);
    // A Ping, and a client's automatic Pong to it.
    let n = ok!(server.ping(b"Hello", &mut out));
    ensure!(&out[..n] == UNMASKED_PING);
    let (_, event) = ok!(client.handle_read(&mut out[..n], Instant::ZERO));
    ensure!(event == Some(Event::Ping(b"Hello")));
    ensure!(client.wants_transmit());
    let n = ok!(client.poll_transmit(&mut out));
    ensure!(&out[..n] == MASKED_PONG);
    // 256 bytes of binary.
    let mut payload = [0u8; 256];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = i as u8;
    }
    let n = ok!(server.send_binary(&payload, &mut out));
    ensure!(n == 260 && &out[..4] == BINARY_256_HEADER && out[4..n] == payload);
    ensure!(server.frame_len(256) == 260 && client.frame_len(256) == 264);
    // The 64 KiB header, through message_header.
    let header = ok!(server.message_header(MessageKind::Binary, 65_536));
    let n = ok!(header.encode(&mut out));
    ensure!(&out[..n] == BINARY_64K_HEADER);
    // Too small an output buffer is refused with the size needed.
    ensure!(
        server.send_text("Hello", &mut out[..6])
            == Err(SendError::InsufficientSize(crate::InsufficientSizeError {
                required: 7
            }))
    );
    Ok(())
}

fn rfc_binary_64k() -> Result<(), &'static str> {
    const LEN: usize = 65_536;
    let pattern = |i: usize| (i % 251) as u8;
    // Fed in 1000-byte pieces, so the frame is reassembled in the buffer.
    let mut storage = [0u8; LEN];
    let mut client = Connection::new(
        Role::Client,
        QUIET,
        SliceBuffer::new(&mut storage[..]),
        SeqRng::new(&RFC_KEY),
        Instant::ZERO,
    );
    let total = BINARY_64K_HEADER.len() + LEN;
    let mut at = 0;
    let mut source = |room: &mut [u8]| {
        if at >= total {
            return None;
        }
        let n = 1000.min(total - at).min(room.len());
        for (k, b) in room[..n].iter_mut().enumerate() {
            let i = at + k;
            *b = match BINARY_64K_HEADER.get(i) {
                Some(h) => *h,
                None => pattern(i - BINARY_64K_HEADER.len()),
            };
        }
        at += n;
        Some(n)
    };
    let fed = feed(&mut client, Instant::ZERO, &mut source, &mut |_, e| {
        matches!(e, Event::Binary(b) if b.len() == LEN
            && b.iter().enumerate().all(|(i, x)| *x == pattern(i)))
    })?;
    ensure!(fed == Fed::Events(1));
    // One byte more than the buffer holds is refused with 1009.
    let mut small = [0u8; 1024];
    let mut client = Connection::new(
        Role::Client,
        QUIET,
        SliceBuffer::new(&mut small[..]),
        SeqRng::new(&RFC_KEY),
        Instant::ZERO,
    );
    let mut wire = [0u8; 4];
    let n = ok!(FrameHeader {
        fin: true,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: 1025,
    }
    .encode(&mut wire));
    let r = client.handle_read(&mut wire[..n], Instant::ZERO);
    ensure!(matches!(
        r,
        Err(Error::Protocol(ProtocolError::MessageTooLarge {
            max: 1024
        }))
    ));
    let mut out = [0u8; 139];
    let n = ok!(client.poll_transmit(&mut out));
    let mut server = conn(Role::Server, QUIET);
    let (_, event) = ok!(server.handle_read(&mut out[..n], Instant::ZERO));
    ensure!(matches!(event, Some(Event::Close(Some(f))) if f.code == CloseCode::MESSAGE_TOO_BIG));
    Ok(())
}

fn accept_key_rfc() -> Result<(), &'static str> {
    // RFC 6455 §1.3: the key for the nonce "the sample nonce", and its accept key.
    ensure!(&handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let key = handshake::generate_key(&mut SeqRng::new(b"the sample nonce"));
    ensure!(&key == b"dGhlIHNhbXBsZSBub25jZQ==");
    ensure!(&handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZR==") != b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    Ok(())
}

fn header_round_trip() -> Result<(), &'static str> {
    let opcodes = [OpCode::Continuation, OpCode::Text, OpCode::Binary];
    let lens = [0u64, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1];
    for opcode in opcodes {
        for payload_len in lens {
            for mask in [None, Some(RFC_KEY)] {
                for fin in [false, true] {
                    let header = FrameHeader {
                        fin,
                        opcode,
                        mask,
                        payload_len,
                    };
                    let mut out = [0u8; FrameHeader::MAX_LEN];
                    let n = ok!(header.encode(&mut out));
                    ensure!(n == header.encoded_len());
                    ensure!(ok!(FrameHeader::decode(&out[..n])) == Some((header, n)));
                    // Every prefix is incomplete, not an error.
                    for cut in 0..n {
                        ensure!(ok!(FrameHeader::decode(&out[..cut])).is_none());
                    }
                    ensure!(header.encode(&mut out[..n - 1]).is_err());
                }
            }
        }
    }
    Ok(())
}

fn header_decode_rejects() -> Result<(), &'static str> {
    use ProtocolError as P;
    for (rsv, bits) in [(0x40, 4), (0x20, 2), (0x10, 1), (0x70, 7)] {
        ensure!(FrameHeader::decode(&[0x81 | rsv, 0]) == Err(P::ReservedBits(bits)));
    }
    for op in (3..=7).chain(0xB..=0xF) {
        ensure!(FrameHeader::decode(&[0x80 | op, 0]) == Err(P::ReservedOpCode(op)));
    }
    // Control frames: fragmented, or longer than 125 bytes.
    for op in [0x8, 0x9, 0xA] {
        ensure!(FrameHeader::decode(&[op, 0]) == Err(P::FragmentedControlFrame));
        ensure!(FrameHeader::decode(&[0x80 | op, 126, 0, 126]) == Err(P::ControlFrameTooLong(126)));
        ensure!(FrameHeader::decode(&[0x80 | op, 0x7D]).is_ok());
    }
    // A 64-bit length with its top bit set.
    let wire = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    ensure!(FrameHeader::decode(&wire) == Err(P::InvalidPayloadLength));
    Ok(())
}

fn connection_rejects() -> Result<(), &'static str> {
    use ProtocolError as P;
    let client = || conn(Role::Client, QUIET);
    let server = || conn(Role::Server, QUIET);
    expect_failure(&client, &[0xC1, 0x00], P::ReservedBits(4))?;
    expect_failure(&client, &[0x83, 0x00], P::ReservedOpCode(3))?;
    expect_failure(&server, UNMASKED_HELLO, P::UnmaskedClientFrame)?;
    expect_failure(&client, MASKED_HELLO, P::MaskedServerFrame)?;
    expect_failure(&client, &[0x80, 0x01, b'x'], P::UnexpectedContinuation)?;
    expect_failure(
        &client,
        &[0x01, 0x01, b'x', 0x81, 0x00],
        P::ExpectedContinuation,
    )?;
    expect_failure(&client, &[0x81, 0x02, 0xC3, 0x28], P::InvalidUtf8)?;
    // Fails fast: the surrogate is refused before the frame is complete.
    let mut c = client();
    let mut partial = [0x81, 0x05, b'a', 0xED, 0xA0];
    let r = c.handle_read(&mut partial, Instant::ZERO);
    ensure!(r.err() == Some(Error::Protocol(P::InvalidUtf8)));
    expect_failure(&client, &[0x88, 0x01, 0x03], P::InvalidCloseCode(None))?;
    let no_status = Some(CloseCode::NO_STATUS);
    expect_failure(
        &client,
        &[0x88, 0x02, 0x03, 0xED],
        P::InvalidCloseCode(no_status),
    )?;
    expect_failure(&client, &[0x88, 0x03, 0x03, 0xE8, 0xFF], P::InvalidUtf8)?;
    let limited = || conn(Role::Client, QUIET.max_frame_size(4));
    expect_failure(&limited, &[0x82, 0x05], P::FrameTooLarge { len: 5, max: 4 })?;
    let few = || conn(Role::Client, QUIET.max_fragments(2));
    let wire = [0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00];
    expect_failure(&few, &wire, P::TooManyFragments { max: 2 })?;
    Ok(())
}

fn mask_fast_equals_bytewise() -> Result<(), &'static str> {
    let keys = [RFC_KEY, [0, 0, 0, 0], [0xFF, 0x01, 0x80, 0x7F]];
    let mut data = [0u8; 64 + 7];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
    }
    for key in keys {
        for len in 0..=64 {
            for start in 0..4 {
                for offset in [0, 1, 2, 3, 5, 1000] {
                    let mut fast = [0u8; 64];
                    let mut slow = [0u8; 64];
                    fast[..len].copy_from_slice(&data[start..start + len]);
                    slow[..len].copy_from_slice(&data[start..start + len]);
                    apply_mask(&mut fast[..len], key, offset);
                    apply_mask_bytewise(&mut slow[..len], key, offset);
                    ensure!(fast == slow);
                    // Masking twice gives the input back.
                    apply_mask(&mut fast[..len], key, offset);
                    ensure!(fast[..len] == data[start..start + len]);
                }
            }
            // In two pieces at every split, with the running offset.
            for split in 0..=len {
                let mut whole = [0u8; 64];
                let mut parts = [0u8; 64];
                whole[..len].copy_from_slice(&data[..len]);
                parts[..len].copy_from_slice(&data[..len]);
                apply_mask(&mut whole[..len], key, 0);
                let (a, b) = parts[..len].split_at_mut(split);
                apply_mask(a, key, 0);
                apply_mask(b, key, split);
                ensure!(whole == parts);
            }
        }
    }
    Ok(())
}

/// Feeds `text` to a fresh validator split at every point; `true` when every
/// split is accepted.
fn utf8_every_split(text: &[u8]) -> bool {
    (0..=text.len()).all(|split| {
        let mut v = Utf8Validator::new();
        let (a, b) = text.split_at(split);
        v.feed(a).is_ok() && v.feed(b).is_ok() && v.finish().is_ok()
    })
}

fn utf8_strict() -> Result<(), &'static str> {
    let valid: [&[u8]; 6] = [
        b"",
        b"plain ascii",
        "κόσμε".as_bytes(),
        "\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}".as_bytes(),
        "\u{D7FF}\u{E000}\u{FFFD}".as_bytes(),
        "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
    ];
    for text in valid {
        ensure!(utf8_every_split(text));
    }
    // Invalid, and the byte count at which it must be refused (fail fast).
    let invalid: [(&[u8], usize); 12] = [
        (b"\xC0\x80", 1),         // C0 can never appear
        (b"\xC1\xBF", 1),         // nor C1
        (b"\xE0\x80\x80", 2),     // overlong 3-byte
        (b"\xF0\x80\x80\x80", 2), // overlong 4-byte
        (b"\xED\xA0\x80", 2),     // surrogate U+D800
        (b"\xED\xBF\xBF", 2),     // surrogate U+DFFF
        (b"\xF4\x90\x80\x80", 2), // above U+10FFFF
        (b"\xF5\x80\x80\x80", 1), // F5 can never appear
        (b"\xFF", 1),             // nor FF
        (b"\x80", 1),             // continuation without a start
        (b"a\xC3\x28", 3),        // start without its continuation
        (
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80",
            13,
        ),
    ];
    for (text, fails_at) in invalid {
        ensure!(!utf8_every_split(text));
        let mut v = Utf8Validator::new();
        ensure!(v.feed(&text[..fails_at - 1]).is_ok());
        ensure!(v.feed(&text[fails_at - 1..fails_at]).is_err());
        // Stays failed until reset.
        ensure!(v.feed(b"a").is_err() && v.finish().is_err());
        v.reset();
        ensure!(v.feed(b"a").is_ok() && v.finish().is_ok());
    }
    // Truncated at the end of the message: only `finish` can tell.
    let mut v = Utf8Validator::new();
    ensure!(v.feed(b"\xE2\x82").is_ok() && !v.is_char_boundary());
    ensure!(v.finish().is_err());
    Ok(())
}

fn close_codes() -> Result<(), &'static str> {
    let valid = |c: u16| CloseCode(c).is_valid_on_wire();
    for c in 0..=5000u16 {
        let expected = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
        ensure!(valid(c) == expected);
    }
    ensure!(parse_close_payload(&[]) == Ok(None));
    ensure!(parse_close_payload(&[0x03]).is_err());
    ensure!(parse_close_payload(&[0x03, 0xE8, b'o', b'k']) == Ok(Some((CloseCode::NORMAL, "ok"))));
    ensure!(parse_close_payload(&[0x0F, 0xA0]) == Ok(Some((CloseCode(4000), ""))));
    ensure!(parse_close_payload(&[0x03, 0xEE]).is_err()); // 1006
    ensure!(parse_close_payload(&[0x03, 0xE8, 0xC0]).is_err());
    // Sending: codes not allowed on the wire are refused.
    let mut c = conn(Role::Server, QUIET);
    for code in [
        CloseCode::NO_STATUS,
        CloseCode::ABNORMAL,
        CloseCode::TLS_HANDSHAKE,
        CloseCode(999),
    ] {
        ensure!(c.close(code, "", Instant::ZERO) == Err(SendError::InvalidCloseCode(code)));
    }
    ensure!(c.is_open());
    // A long reason is cut to 123 bytes on a character boundary.
    let long =
        "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé";
    ok!(c.close(CloseCode(4001), long, Instant::ZERO));
    let mut out = [0u8; 139];
    let n = ok!(c.poll_transmit(&mut out));
    ensure!(n == 2 + 2 + 122 && out[1] == 124 && out[2..4] == [0x0F, 0xA1]);
    ensure!(core::str::from_utf8(&out[4..n]).is_ok());
    Ok(())
}

fn handshake_round_trip() -> Result<(), &'static str> {
    let limits = HandshakeLimits::DEFAULT;
    let mut rng = SeqRng::new(b"the sample nonce");
    let key = handshake::generate_key(&mut rng);
    let offered = ["chat.v2", "chat"];
    let request = ClientRequest {
        origin: Some("http://example.com"),
        subprotocols: &offered,
        ..ClientRequest::new("server.example.com", "/chat?room=1")
    };
    let mut req = [0u8; 512];
    let n = ok!(handshake::write_request(&mut req, &request, &key));
    // Every prefix of the request is incomplete.
    for cut in 0..n {
        let mut headers = [handshake::EMPTY_HEADER; 16];
        let parsed = handshake::parse_request(&req[..cut], &mut headers, &limits);
        ensure!(matches!(parsed, Ok(Parsed::Incomplete)));
    }
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let parsed = ok!(handshake::parse_request(&req[..n], &mut headers, &limits));
    let Some((req_parsed, consumed)) = parsed.into_complete() else {
        return Err("request incomplete");
    };
    ensure!(consumed == n);
    ensure!(req_parsed.path() == "/chat" && req_parsed.query() == Some("room=1"));
    ensure!(req_parsed.host() == "server.example.com");
    ensure!(req_parsed.origin() == Some("http://example.com"));
    ensure!(req_parsed.key().as_bytes() == b"dGhlIHNhbXBsZSBub25jZQ==");
    ensure!(req_parsed.offers_subprotocol("chat") && !req_parsed.offers_subprotocol("x"));
    let mut resp = [0u8; 256];
    ensure!(handshake::write_accept(&mut resp, &req_parsed, Some("x"), &[]).is_err());
    let m = ok!(handshake::write_accept(
        &mut resp,
        &req_parsed,
        Some("chat"),
        &[]
    ));
    let accept = b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    ensure!(resp[..m].windows(accept.len()).any(|w| w == accept));
    // The client checks the answer; frames sent right after it are left over.
    resp[m..m + UNMASKED_HELLO.len()].copy_from_slice(UNMASKED_HELLO);
    let total = m + UNMASKED_HELLO.len();
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let parsed = handshake::parse_response(&resp[..total], &mut headers, &key, &offered, &limits);
    let Some((response, consumed)) = ok!(parsed).into_complete() else {
        return Err("response incomplete");
    };
    ensure!(consumed == m && response.subprotocol() == Some("chat"));
    // A wrong key, or an unoffered subprotocol, is refused.
    let other = handshake::generate_key(&mut SeqRng::new(b"another nonce!!!"));
    let mut headers = [handshake::EMPTY_HEADER; 16];
    ensure!(
        handshake::parse_response(&resp[..m], &mut headers, &other, &offered, &limits).is_err()
    );
    let mut headers = [handshake::EMPTY_HEADER; 16];
    ensure!(handshake::parse_response(&resp[..m], &mut headers, &key, &["x"], &limits).is_err());
    // A request without the key is answered 400; a plain GET, 426.
    let bad = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let err = handshake::parse_request(bad, &mut headers, &limits).err();
    ensure!(err.map(HandshakeError::status) == Some(400));
    let plain = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let err = handshake::parse_request(plain, &mut headers, &limits).err();
    ensure!(err.map(HandshakeError::status) == Some(426));
    let n = ok!(err.map_or(Ok(0), |e| e.write_response(&mut resp)));
    ensure!(resp[..n].starts_with(b"HTTP/1.1 426 "));
    Ok(())
}

/// Moves what `from` has queued (pongs, pings, closes) to `to`, checking
/// the events `to` reports; returns how many there were.
fn pump(
    from: &mut Conn,
    to: &mut Conn,
    now: Instant,
    check: &mut dyn FnMut(usize, &Event<'_>) -> bool,
) -> Result<usize, &'static str> {
    let mut wire = [0u8; 139];
    let n = ok!(from.poll_transmit(&mut wire));
    let fed = feed(to, now, &mut pieces(&wire[..n], n, n), check)?;
    match fed {
        Fed::Events(k) => Ok(k),
        Fed::Failed(..) => Err("pump: the receiver failed"),
    }
}

/// Sends `wire` (frames one end wrote) to `to`, byte by byte, expecting `expected`.
fn deliver(
    to: &mut Conn,
    now: Instant,
    wire: &[u8],
    expected: &[Event<'_>],
) -> Result<(), &'static str> {
    let fed = feed(to, now, &mut pieces(wire, 1, 1), &mut |i, e| {
        expected.get(i) == Some(e)
    })?;
    ensure!(fed == Fed::Events(expected.len()));
    Ok(())
}

fn conversation_messages() -> Result<(), &'static str> {
    let now = Instant::ZERO;
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    let mut wire = [0u8; 300];
    let n = ok!(client.send_text("héllo, server", &mut wire));
    deliver(
        &mut server,
        now,
        &wire[..n],
        &[Event::Text("héllo, server")],
    )?;
    let n = ok!(server.send_text("héllo, client", &mut wire));
    deliver(
        &mut client,
        now,
        &wire[..n],
        &[Event::Text("héllo, client")],
    )?;
    let payload = [0xA5u8; 200];
    let n = ok!(client.send_binary(&payload, &mut wire));
    ensure!(n == client.frame_len(200));
    deliver(&mut server, now, &wire[..n], &[Event::Binary(&payload)])?;
    let n = ok!(server.send_binary(&[], &mut wire));
    deliver(&mut client, now, &wire[..n], &[Event::Binary(&[])])?;
    // Several frames in one read.
    let a = ok!(client.send_text("one", &mut wire));
    let b = ok!(client.send_binary(b"two", &mut wire[a..]));
    let c = ok!(client.ping(b"three", &mut wire[a + b..]));
    let expected = [
        Event::Text("one"),
        Event::Binary(b"two"),
        Event::Ping(b"three"),
    ];
    let fed = feed(
        &mut server,
        now,
        &mut pieces(&wire[..a + b + c], a + b + c, 1),
        &mut |i, e| expected.get(i) == Some(e),
    )?;
    ensure!(fed == Fed::Events(3));
    ensure!(
        pump(&mut server, &mut client, now, &mut |_, e| *e
            == Event::Pong(b"three"))?
            == 1
    );
    // The server's fixed buffer (256 bytes) bounds a message in pieces.
    ensure!(server.max_message_size() == 256);
    ensure!(server.is_open() && client.is_open());
    Ok(())
}

fn conversation_fragmentation() -> Result<(), &'static str> {
    let now = Instant::ZERO;
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    let mut wire = [0u8; 300];
    // "κόσμε" in three fragments, a character split across two, and a Ping
    // in the middle: the Ping is reported (and answered) first.
    let text = "κόσμε".as_bytes();
    let mut n = ok!(client.send_fragment(MessageKind::Text, &text[..3], false, &mut wire));
    n += ok!(client.ping(b"mid", &mut wire[n..]));
    n += ok!(client.send_fragment(MessageKind::Text, &text[3..7], false, &mut wire[n..]));
    // A whole message may not start while a fragmented one is being sent.
    ensure!(client.send_text("x", &mut wire[n..]) == Err(SendError::FragmentInProgress));
    n += ok!(client.send_fragment(MessageKind::Text, &text[7..], true, &mut wire[n..]));
    deliver(
        &mut server,
        now,
        &wire[..n],
        &[Event::Ping(b"mid"), Event::Text("κόσμε")],
    )?;
    ensure!(
        pump(&mut server, &mut client, now, &mut |_, e| *e
            == Event::Pong(b"mid"))?
            == 1
    );
    // Binary from the server, with empty fragments.
    let mut n = ok!(server.send_fragment(MessageKind::Binary, b"", false, &mut wire));
    n += ok!(server.send_fragment(MessageKind::Binary, b"ab", false, &mut wire[n..]));
    n += ok!(server.send_fragment(MessageKind::Binary, b"", false, &mut wire[n..]));
    n += ok!(server.send_fragment(MessageKind::Binary, b"cd", true, &mut wire[n..]));
    deliver(&mut client, now, &wire[..n], &[Event::Binary(b"abcd")])?;
    // A fragmented message larger than the 256-byte buffer: 1009.
    let chunk = [b'x'; 100];
    let mut n = 0;
    for fin in [false, false, true] {
        n += ok!(server.send_fragment(MessageKind::Binary, &chunk, fin, &mut wire[n..]));
        if !fin {
            // Deliver as we go (the wire buffer holds 300 bytes).
            deliver(&mut client, now, &wire[..n], &[])?;
            n = 0;
        }
    }
    let fed = feed(
        &mut client,
        now,
        &mut pieces(&wire[..n], n, n),
        &mut |_, _| true,
    )?;
    ensure!(
        fed == Fed::Failed(
            Error::Protocol(ProtocolError::MessageTooLarge { max: 256 }),
            0
        )
    );
    // A fragmented message that is not completed in time: 1008.
    let config = QUIET.fragment_timeout(Some(Duration::from_secs(2)));
    let mut client = conn(Role::Client, config);
    let mut server = conn(Role::Server, config);
    let n = ok!(server.send_fragment(MessageKind::Text, b"part", false, &mut wire));
    deliver(&mut client, Instant::from_secs(1), &wire[..n], &[])?;
    ensure!(client.poll_timeout() == Some(Instant::from_secs(3)));
    ensure!(client.handle_timeout(Instant::from_millis(2999)).is_ok());
    ensure!(client.handle_timeout(Instant::from_secs(3)) == Err(Error::FragmentTimeout));
    let got = pump(
        &mut client,
        &mut server,
        Instant::from_secs(3),
        &mut |_, e| matches!(e, Event::Close(Some(f)) if f.code == CloseCode::POLICY_VIOLATION),
    )?;
    ensure!(got == 1 && client.is_closed());
    Ok(())
}

fn conversation_heartbeat() -> Result<(), &'static str> {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut server = conn(Role::Server, config);
    let mut client = conn(Role::Client, QUIET);
    ensure!(server.poll_timeout() == Some(Instant::from_secs(30)));
    // Nothing is due early.
    ok!(server.handle_timeout(Instant::from_secs(29)));
    ensure!(!server.wants_transmit());
    for round in 1..=3u64 {
        let due = Instant::from_secs(30 * round);
        ensure!(server.poll_timeout() == Some(due));
        ok!(server.handle_timeout(due));
        ensure!(server.wants_transmit());
        // The Ping carries 4 random bytes; the client answers it by itself.
        ensure!(
            pump(
                &mut server,
                &mut client,
                due,
                &mut |_, e| matches!(e, Event::Ping(p) if p.len() == 4)
            )? == 1
        );
        // Waiting for the Pong: the next deadline is the pong timeout.
        ensure!(server.poll_timeout() == Some(due + Duration::from_secs(10)));
        let back = due + Duration::from_secs(1);
        ensure!(
            pump(
                &mut client,
                &mut server,
                back,
                &mut |_, e| matches!(e, Event::Pong(p) if p.len() == 4)
            )? == 1
        );
        // Answered: the pong timer is off, the next Ping is one interval later.
        ensure!(server.poll_timeout() == Some(due + Duration::from_secs(30)));
        ok!(server.handle_timeout(due + Duration::from_secs(10)));
        ensure!(server.is_open());
    }
    // An unsolicited Pong (wrong payload) does not count as the answer.
    let due = Instant::from_secs(120);
    ok!(server.handle_timeout(due));
    let mut wire = [0u8; 139];
    let _ = ok!(server.poll_transmit(&mut wire));
    let header = FrameHeader {
        fin: true,
        opcode: OpCode::Pong,
        mask: Some([1, 2, 3, 4]),
        payload_len: 4,
    };
    let at = ok!(header.encode(&mut wire));
    wire[at..at + 4].copy_from_slice(b"nope");
    apply_mask(&mut wire[at..at + 4], [1, 2, 3, 4], 0);
    deliver(&mut server, due, &wire[..at + 4], &[Event::Pong(b"nope")])?;
    ensure!(server.poll_timeout() == Some(due + Duration::from_secs(10)));
    Ok(())
}

fn conversation_pong_timeout() -> Result<(), &'static str> {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut client = conn(Role::Client, config);
    let mut server = conn(Role::Server, QUIET);
    let ping_at = Instant::from_secs(30);
    ok!(client.handle_timeout(ping_at));
    let mut wire = [0u8; 139];
    let n = ok!(client.poll_transmit(&mut wire));
    // The client's Ping is masked with the next key from its RNG.
    ensure!(n == 2 + 4 + 4 && wire[0] == 0x89 && wire[1] == 0x84);
    // The server never answers (the Pong is lost).
    ensure!(client.poll_timeout() == Some(Instant::from_secs(40)));
    ensure!(client.handle_timeout(Instant::from_millis(39_999)).is_ok());
    let r = client.handle_timeout(Instant::from_secs(40));
    ensure!(r == Err(Error::PongTimeout));
    ensure!(Error::PongTimeout.close_code() == Some(CloseCode::GOING_AWAY));
    ensure!(client.failure() == Some(Error::PongTimeout));
    ensure!(!client.is_open() && !client.is_closed());
    // The failure's Close (1001) goes out, then the client is closed.
    let got = pump(
        &mut client,
        &mut server,
        Instant::from_secs(40),
        &mut |_, e| matches!(e, Event::Close(Some(f)) if f.code == CloseCode::GOING_AWAY),
    )?;
    ensure!(got == 1 && client.is_closed());
    ensure!(client.send_text("late", &mut wire) == Err(SendError::Closed));
    // Once closed, whatever the peer still sends is discarded.
    ensure!(client.handle_read(&mut [0x81, 0], Instant::from_secs(41)) == Ok((2, None)));
    // The server replies 1001 and is closed once the reply is out.
    ensure!(server.wants_transmit());
    let n = ok!(server.poll_transmit(&mut wire));
    ensure!(wire[..n] == [0x88, 0x02, 0x03, 0xE9]);
    ensure!(server.is_closed() && server.poll_timeout().is_none());
    Ok(())
}

fn conversation_close() -> Result<(), &'static str> {
    let now = Instant::from_secs(5);
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    ok!(client.close(CloseCode::NORMAL, "bye", now));
    ensure!(!client.is_open() && !client.is_closed());
    let mut wire = [0u8; 139];
    ensure!(client.send_text("after close", &mut wire) == Err(SendError::Closed));
    ensure!(client.close(CloseCode::NORMAL, "", now) == Err(SendError::Closed));
    ensure!(client.poll_timeout() == Some(now + Config::DEFAULT.close_timeout));
    // Data the server sent before it saw our Close is still delivered.
    let n = ok!(server.send_text("in flight", &mut wire));
    deliver(&mut client, now, &wire[..n], &[Event::Text("in flight")])?;
    let close_bye = Event::Close(Some(crate::CloseFrame {
        code: CloseCode::NORMAL,
        reason: "bye",
    }));
    ensure!(pump(&mut client, &mut server, now, &mut |_, e| *e == close_bye)? == 1);
    ensure!(!server.is_open() && server.wants_transmit());
    let echo = Event::Close(Some(crate::CloseFrame {
        code: CloseCode::NORMAL,
        reason: "",
    }));
    ensure!(pump(&mut server, &mut client, now, &mut |_, e| *e == echo)? == 1);
    ensure!(server.is_closed() && client.is_closed());
    ensure!(client.poll_timeout().is_none() && server.poll_timeout().is_none());
    // A Close with no status is answered with 1000.
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    deliver(&mut client, now, &[0x88, 0x00], &[Event::Close(None)])?;
    let n = ok!(client.poll_transmit(&mut wire));
    ensure!(n == 8 && wire[1] == 0x82);
    deliver(&mut server, now, &wire[..n], &[echo])?;
    // A peer that never answers our Close: the close timeout ends it.
    let mut client = conn(Role::Client, QUIET);
    ok!(client.close(CloseCode::GOING_AWAY, "", now));
    let _ = ok!(client.poll_transmit(&mut wire));
    let deadline = now + Config::DEFAULT.close_timeout;
    ensure!(client
        .handle_timeout(deadline - Duration::from_millis(1))
        .is_ok());
    ensure!(client.handle_timeout(deadline) == Err(Error::CloseTimeout));
    ensure!(Error::CloseTimeout.close_code().is_none());
    Ok(())
}

/// An in-memory transport for the blocking driver, on a shared virtual
/// clock: the peer's bytes become readable at given times (`script`), reads
/// return at most `max_read` bytes, and a read with nothing available
/// times out (a clock tick for the driver). What the driver writes is kept.
struct Wire<'a> {
    script: &'a [(u64, &'a [u8])],
    step: usize,
    at: usize,
    max_read: usize,
    clock_ms: &'a Cell<u64>,
    written: heapless::Vec<u8, 1024>,
}

#[derive(Debug)]
struct WireError(ErrorKind);

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.0, f)
    }
}

impl core::error::Error for WireError {}

impl embedded_io::Error for WireError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl embedded_io::ErrorType for Wire<'_> {
    type Error = WireError;
}

impl embedded_io::Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, WireError> {
        loop {
            let Some((from_ms, bytes)) = self.script.get(self.step) else {
                return Err(WireError(ErrorKind::TimedOut));
            };
            if self.clock_ms.get() < *from_ms {
                return Err(WireError(ErrorKind::TimedOut));
            }
            let rest = bytes.get(self.at..).unwrap_or_default();
            if rest.is_empty() {
                self.step += 1;
                self.at = 0;
                continue;
            }
            let n = rest.len().min(buf.len()).min(self.max_read);
            buf[..n].copy_from_slice(&rest[..n]);
            self.at += n;
            return Ok(n);
        }
    }
}

impl embedded_io::Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        self.written
            .extend_from_slice(buf)
            .map_err(|_| WireError(ErrorKind::OutOfMemory))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), WireError> {
        Ok(())
    }
}

/// The client's request into `out`, with the key; returns its length.
fn client_request(out: &mut [u8], key: &[u8; 24]) -> Result<usize, &'static str> {
    let request = ClientRequest::new("device.local", "/echo");
    Ok(ok!(handshake::write_request(out, &request, key)))
}

/// Checks the server's 101 answer at the start of `written` and returns the
/// length of its header block.
fn check_accept(written: &[u8], key: &[u8; 24]) -> Result<usize, &'static str> {
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let parsed =
        handshake::parse_response(written, &mut headers, key, &[], &HandshakeLimits::DEFAULT);
    match ok!(parsed).into_complete() {
        Some((_, consumed)) => Ok(consumed),
        None => Err("incomplete 101 response"),
    }
}

fn driver_echo() -> Result<(), &'static str> {
    // The client, sans-I/O: its request and frames, written ahead of time.
    let key = handshake::generate_key(&mut SeqRng::new(b"0123456789abcdef"));
    let mut script_bytes = [0u8; 512];
    let mut n = client_request(&mut script_bytes, &key)?;
    let mut client = conn(Role::Client, QUIET);
    n += ok!(client.send_text("hello, device", &mut script_bytes[n..]));
    n += ok!(client.send_fragment(
        MessageKind::Binary,
        &[1, 2, 3],
        false,
        &mut script_bytes[n..]
    ));
    n += ok!(client.ping(b"hb", &mut script_bytes[n..]));
    n += ok!(client.send_fragment(MessageKind::Binary, &[4, 5], true, &mut script_bytes[n..]));
    ok!(client.close(CloseCode::NORMAL, "done", Instant::ZERO));
    n += ok!(client.poll_transmit(&mut script_bytes[n..]));
    let script = [(0, &script_bytes[..n])];
    let clock_ms = Cell::new(0);
    let mut wire = Wire {
        script: &script,
        step: 0,
        at: 0,
        max_read: 7,
        clock_ms: &clock_ms,
        written: heapless::Vec::new(),
    };
    // The server: the blocking driver, echoing.
    let mut read_buf = [0u8; 256];
    let mut write_buf = [0u8; 256];
    let mut message_store = [0u8; 128];
    let parts = Parts {
        read_buf: &mut read_buf,
        write_buf: &mut write_buf,
        message_buf: SliceBuffer::new(&mut message_store[..]),
        rng: SeqRng::new(&RFC_KEY),
        clock: || {
            clock_ms.set(clock_ms.get() + 1);
            Instant::from_millis(clock_ms.get())
        },
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(5)),
    };
    let mut ws = ok!(WebSocket::accept(&mut wire, parts));
    let mut echoed = 0;
    let mut closed = false;
    for _ in 0..10 {
        // The message borrows the driver's buffers: copy it to echo it.
        let (kind, data): (MessageKind, heapless::Vec<u8, 64>) = match ok!(ws.read_message()) {
            Some(Message::Text(t)) => (
                MessageKind::Text,
                ok!(heapless::Vec::from_slice(t.as_bytes())),
            ),
            Some(Message::Binary(b)) => (MessageKind::Binary, ok!(heapless::Vec::from_slice(b))),
            None => {
                closed = true;
                break;
            }
        };
        ok!(ws.send(kind, &data));
        echoed += 1;
    }
    ensure!(closed && echoed == 2 && ws.connection().is_closed());
    drop(ws);
    // The client reads the answer: 101, the echoes, the Pong, the Close reply.
    let written = &wire.written[..];
    let at = check_accept(written, &key)?;
    let expected = [
        Event::Text("hello, device"),
        Event::Pong(b"hb"),
        Event::Binary(&[1, 2, 3, 4, 5]),
        Event::Close(Some(crate::CloseFrame {
            code: CloseCode::NORMAL,
            reason: "",
        })),
    ];
    deliver(&mut client, Instant::ZERO, &written[at..], &expected)?;
    ensure!(client.is_closed());
    Ok(())
}

fn driver_heartbeat() -> Result<(), &'static str> {
    // The server's heartbeat payload is the next 4 bytes of its RNG: the
    // client's Pong (masked, hand-made) can be written ahead of time.
    const PING_PAYLOAD: [u8; 4] = *b"beat";
    let key = handshake::generate_key(&mut SeqRng::new(b"fedcba9876543210"));
    let mut request = [0u8; 256];
    let req_len = client_request(&mut request, &key)?;
    let mut pong = [0u8; 10];
    let at = ok!(FrameHeader {
        fin: true,
        opcode: OpCode::Pong,
        mask: Some(RFC_KEY),
        payload_len: 4,
    }
    .encode(&mut pong));
    pong[at..].copy_from_slice(&PING_PAYLOAD);
    apply_mask(&mut pong[at..], RFC_KEY, 0);
    let mut client = conn(Role::Client, QUIET);
    let mut later = [0u8; 32];
    let later_len = ok!(client.send_text("still here", &mut later));
    // Request at once; the Pong at 31 s; a message at 45 s; then silence.
    let script = [
        (0, &request[..req_len]),
        (31_000, &pong[..]),
        (45_000, &later[..later_len]),
    ];
    let clock_ms = Cell::new(0);
    let mut wire = Wire {
        script: &script,
        step: 0,
        at: 0,
        max_read: 64,
        clock_ms: &clock_ms,
        written: heapless::Vec::new(),
    };
    let mut read_buf = [0u8; 256];
    let mut write_buf = [0u8; 256];
    let parts = Parts {
        read_buf: &mut read_buf,
        write_buf: &mut write_buf,
        message_buf: heapless::Vec::<u8, 64>::new(),
        rng: SeqRng::new(&PING_PAYLOAD),
        // Each look at the clock is 250 ms later.
        clock: || {
            clock_ms.set(clock_ms.get() + 250);
            Instant::from_millis(clock_ms.get())
        },
        config: Config::DEFAULT
            .ping_interval(Some(Duration::from_secs(30)))
            .pong_timeout(Duration::from_secs(10)),
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(5)),
    };
    let mut ws = ok!(WebSocket::accept(&mut wire, parts));
    // The Ping goes out at 30 s, the Pong at 31 s answers it, so there is
    // no pong timeout at 40 s: the message at 45 s arrives.
    ensure!(ok!(ws.read_message()) == Some(Message::Text("still here")));
    ensure!((45_000..46_000).contains(&clock_ms.get()));
    // Then the peer is silent: the next Ping (60 s) is not answered by 70 s.
    let r = ws.read_message();
    ensure!(matches!(
        r,
        Err(DriverError::Connection(Error::PongTimeout))
    ));
    ensure!((70_000..72_000).contains(&clock_ms.get()));
    drop(ws);
    let written = &wire.written[..];
    let at = check_accept(written, &key)?;
    let expected = [
        Event::Ping(&PING_PAYLOAD),
        Event::Ping(&PING_PAYLOAD),
        Event::Close(Some(crate::CloseFrame {
            code: CloseCode::GOING_AWAY,
            reason: if cfg!(feature = "reasons") {
                "pong timeout"
            } else {
                ""
            },
        })),
    ];
    deliver(&mut client, Instant::ZERO, &written[at..], &expected)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_selftests_pass_on_the_host() {
        let mut failed = 0;
        for (name, test) in super::TESTS {
            match test() {
                Ok(()) => std::println!("{name} ... ok"),
                Err(e) => {
                    std::println!("{name} ... FAILED: {e}");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 0, "{failed} self-tests failed (see above)");
    }
}
