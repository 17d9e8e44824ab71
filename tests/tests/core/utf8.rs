//! Strict UTF-8 (RFC 6455 §8.1, Autobahn section 6): invalid text fails
//! the connection with 1007 exactly when the offending byte arrives, not at
//! the end of the frame or message; valid text split anywhere passes.

use snowsocket_core::{Error, FrameHeader, Instant, ProtocolError, Role};
use snowsocket_tests::{connection, feed_chunks, feed_every_way, frame, Ev, QUIET};

const KEY: Option<[u8; 4]> = Some([0x9A, 0x01, 0x7C, 0xE2]);

/// Autobahn 6.x style invalid texts.
fn invalid_texts() -> Vec<(&'static str, Vec<u8>)> {
    let kosme = "κόσμε".as_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();
    vec![
        (
            "6.3.1 surrogate inside",
            cat(&[kosme, &[0xED, 0xA0, 0x80], b"edited"]),
        ),
        ("6.3.2 the same, alone", vec![0xED, 0xA0, 0x80]),
        (
            "6.4.1 > U+10FFFF",
            cat(&[kosme, &[0xF4, 0x90, 0x80, 0x80], b"edited"]),
        ),
        ("6.4.2 lone F4 then invalid", cat(&[kosme, &[0xF4], b"x"])),
        ("6.4.3 bad continuation", cat(&[kosme, &[0xC3, 0x28]])),
        ("6.4.4 stray continuation", cat(&[kosme, &[0x80], b"x"])),
        ("6.6 overlong 2-byte", vec![b'a', 0xC0, 0x80]),
        ("6.6 overlong C1", vec![0xC1, 0xBF]),
        ("6.6 overlong 3-byte", vec![0xE0, 0x80, 0xAF]),
        ("6.6 overlong 4-byte", vec![0xF0, 0x80, 0x80, 0xAF]),
        ("6.8 F5 lead", vec![b'z', 0xF5, 0x80, 0x80, 0x80]),
        ("6.8 FE/FF", vec![0xFE]),
        ("6.8 FF", vec![b'a', b'b', 0xFF]),
        ("6.17 high surrogate", vec![0xED, 0xAF, 0xBF]),
        ("6.17 low surrogate", vec![0xED, 0xBF, 0xBF]),
        ("6.12 incomplete at end", cat(&[kosme, &[0xCE]])),
        (
            "6.12 incomplete 4-byte at end",
            vec![b'a', 0xF0, 0x9F, 0x98],
        ),
    ]
}

/// The index of the first byte at which `text` can no longer be the start
/// of valid UTF-8, or `None` if only its end is wrong (cut short).
fn first_bad_byte(text: &[u8]) -> Option<usize> {
    (1..=text.len()).find_map(|k| match core::str::from_utf8(&text[..k]) {
        Err(e) if e.error_len().is_some() => Some(k - 1),
        _ => None,
    })
}

/// Feeds `wire` byte by byte to a server and returns how many bytes had
/// been fed when the connection failed (asserting it failed with 1007).
fn fails_at(wire: &[u8]) -> usize {
    let o = feed_chunks(
        &mut connection(Role::Server, QUIET),
        wire,
        &mut || 1,
        Instant::ZERO,
    );
    assert_eq!(o.error, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(o.close_code(), Some(1007));
    assert!(o.events.is_empty());
    o.fed_at_error
}

#[test]
fn invalid_text_in_one_frame_fails_at_the_offending_byte() {
    for (name, text) in invalid_texts() {
        let wire = frame(true, 0, 1, KEY, &text);
        let header = wire.len() - text.len();
        let at = fails_at(&wire);
        match first_bad_byte(&text) {
            Some(bad) => assert_eq!(at, header + bad + 1, "{name}: failed after byte {at}"),
            None => assert_eq!(at, wire.len(), "{name}: cut short, fails at the end"),
        }
        // Whole, split anywhere: the same error.
        let o = feed_every_way(Role::Server, QUIET, &wire);
        assert_eq!(
            o.error,
            Some(Error::Protocol(ProtocolError::InvalidUtf8)),
            "{name}"
        );
    }
}

/// Each invalid text cut into fragments of one byte each (Autobahn 6.4.x
/// style): the connection fails in the fragment holding the offending
/// byte, before the message's last fragment arrives.
#[test]
fn invalid_text_in_fragments_fails_at_the_offending_byte() {
    for (name, text) in invalid_texts() {
        let mut wire = Vec::new();
        let mut ends = Vec::new();
        for (i, b) in text.iter().enumerate() {
            let fin = i + 1 == text.len();
            let op = if i == 0 { 1 } else { 0 };
            wire.extend(frame(fin, 0, op, KEY, &[*b]));
            ends.push(wire.len());
        }
        let at = fails_at(&wire);
        match first_bad_byte(&text) {
            Some(bad) => {
                assert_eq!(
                    at,
                    ends[bad],
                    "{name}: failed at byte {at} of {}",
                    wire.len()
                );
                assert!(at < wire.len() || bad + 1 == text.len());
            }
            None => assert_eq!(at, wire.len(), "{name}"),
        }
        let o = feed_every_way(Role::Server, QUIET, &wire);
        assert_eq!(
            o.error,
            Some(Error::Protocol(ProtocolError::InvalidUtf8)),
            "{name}"
        );
    }
}

/// An invalid byte early in a long frame is caught long before the frame
/// ends: when fed in 64-byte pieces, the connection fails in the piece
/// holding that byte.
#[test]
fn invalid_text_is_caught_before_a_long_frame_ends() {
    let mut text = "ok ".repeat(20).into_bytes();
    text.push(0xFF);
    text.extend("more".repeat(10_000).as_bytes());
    let wire = frame(true, 0, 1, KEY, &text);
    let o = feed_chunks(
        &mut connection(Role::Server, QUIET),
        &wire,
        &mut || 64,
        Instant::ZERO,
    );
    assert_eq!(o.error, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert!(
        o.fed_at_error <= 128,
        "failed after {} bytes",
        o.fed_at_error
    );
}

const VALID: &[&str] = &[
    "κόσμε",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}",
    "𝄞 music and 😀 faces",
    "\u{D7FF}\u{E000}\u{FFFD}",
];

/// Valid text split at every byte into two fragments, and into one-byte
/// fragments, arrives whole.
#[test]
fn valid_text_split_at_every_byte_across_fragments() {
    for text in VALID {
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut wire = frame(false, 0, 1, KEY, &bytes[..cut]);
            wire.extend(frame(true, 0, 0, KEY, &bytes[cut..]));
            let o = snowsocket_tests::feed_split(Role::Server, QUIET, &wire, &[]);
            assert_eq!(o.events, vec![Ev::Text((*text).into())], "cut {cut}");
            let o = feed_chunks(
                &mut connection(Role::Server, QUIET),
                &wire,
                &mut || 1,
                Instant::ZERO,
            );
            assert_eq!(
                o.events,
                vec![Ev::Text((*text).into())],
                "cut {cut}, bytewise"
            );
        }
        let mut wire = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            wire.extend(frame(i + 1 == bytes.len(), 0, u8::from(i == 0), KEY, &[*b]));
        }
        let o = feed_every_way(Role::Server, QUIET, &wire);
        assert_eq!(o.events, vec![Ev::Text((*text).into())]);
        assert!(wire.len() > FrameHeader::MAX_LEN);
    }
}

/// Binary messages are never validated.
#[test]
fn binary_is_not_utf8_checked() {
    let wire = frame(true, 0, 2, KEY, &[0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80]);
    let o = feed_every_way(Role::Server, QUIET, &wire);
    assert_eq!(
        o.events,
        vec![Ev::Binary(vec![0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80])]
    );
}
