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
    ("rfc6455_5_7_vectors_decode", frames::rfc_vectors_decode),
    ("rfc6455_5_7_vectors_encode", frames::rfc_vectors_encode),
    ("rfc6455_5_7_binary_64k", frames::rfc_binary_64k),
    ("rfc6455_1_3_accept_key", frames::accept_key_rfc),
    ("header_encode_decode_round_trip", frames::header_round_trip),
    ("header_decode_rejects", frames::header_decode_rejects),
    (
        "connection_rejects_with_close_code",
        frames::connection_rejects,
    ),
    (
        "mask_fast_equals_bytewise",
        frames::mask_fast_equals_bytewise,
    ),
    ("utf8_strict", frames::utf8_strict),
    ("close_codes", frames::close_codes),
    (
        "handshake_request_accept_response",
        conversation::handshake_round_trip,
    ),
    ("conversation_messages", conversation::conversation_messages),
    (
        "conversation_fragmentation",
        conversation::conversation_fragmentation,
    ),
    (
        "conversation_heartbeat",
        conversation::conversation_heartbeat,
    ),
    (
        "conversation_pong_timeout",
        conversation::conversation_pong_timeout,
    ),
    ("conversation_close", conversation::conversation_close),
    ("driver_echo", driver::driver_echo),
    (
        "driver_heartbeat_and_pong_timeout",
        driver::driver_heartbeat,
    ),
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

mod conversation;
mod driver;
mod frames;

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
