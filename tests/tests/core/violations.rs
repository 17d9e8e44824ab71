//! Every `ProtocolError` a peer can provoke through `handle_read`, with the
//! close code that goes out on the wire (decoded from `poll_transmit`),
//! each fed whole, at every split point and byte by byte.

use snowsocket_core::{CloseCode, Config, Error, Instant, ProtocolError, Role};
use snowsocket_tests::{
    close_payload, connection, feed_every_way, feed_split, frame, header, parse_frames, QUIET,
};

const KEY: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

/// The mask a frame to `role` must carry.
fn mask_to(role: Role) -> Option<[u8; 4]> {
    match role {
        Role::Server => KEY,
        Role::Client => None,
    }
}

/// Feeds `wire` to a `role` connection every way and checks the error, the
/// Close sent (its code and the error's reason) and that nothing follows.
fn refused(role: Role, config: Config, wire: &[u8], expected: ProtocolError) {
    let o = feed_every_way(role, config, wire);
    assert_eq!(o.error, Some(Error::Protocol(expected)), "{wire:02x?}");
    let code = expected.close_code();
    assert_eq!(Error::Protocol(expected).close_code(), Some(code));
    let sent = parse_frames(&o.sent);
    let close = sent.last().expect("a Close was sent");
    assert_eq!(close.close_code(), Some(code.0), "{expected:?}");
    assert_eq!(&close.payload[2..], expected.reason().as_bytes());
    assert_eq!(close.masked, role == Role::Client);
}

#[test]
fn reserved_bits() {
    for role in [Role::Server, Role::Client] {
        for rsv in 1..=7 {
            let wire = frame(true, rsv, 1, mask_to(role), b"x");
            refused(role, QUIET, &wire, ProtocolError::ReservedBits(rsv));
        }
    }
}

#[test]
fn reserved_opcodes() {
    for role in [Role::Server, Role::Client] {
        for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let wire = frame(true, 0, op, mask_to(role), b"x");
            refused(role, QUIET, &wire, ProtocolError::ReservedOpCode(op));
        }
    }
}

#[test]
fn control_frames_over_125_bytes() {
    for role in [Role::Server, Role::Client] {
        for op in [8, 9, 0xA] {
            for len in [126usize, 127, 65_536] {
                let wire = frame(true, 0, op, mask_to(role), &vec![b'a'; len]);
                // Whole, and cut before the extended length is complete.
                for cut in [20, 2, 3] {
                    let o = feed_split(role, QUIET, &wire[..20], &[cut]);
                    assert!(
                        matches!(
                            o.error,
                            Some(Error::Protocol(ProtocolError::ControlFrameTooLong(_)))
                        ),
                        "{:?}",
                        o.error
                    );
                    assert_eq!(o.close_code(), Some(1002));
                    assert_eq!(o.events, vec![]);
                }
                let o = feed_split(role, QUIET, &wire[..20], &[]);
                assert_eq!(
                    o.error,
                    Some(Error::Protocol(ProtocolError::ControlFrameTooLong(len)))
                );
            }
        }
    }
}

/// The length carried by `ControlFrameTooLong` does not depend on how the
/// bytes arrive: the decoder waits for the extended length before refusing.
#[test]
fn control_frame_too_long_error_is_the_same_however_it_arrives() {
    let wire = frame(true, 0, 9, KEY, &[b'a'; 127]);
    let outcome = feed_every_way(Role::Server, QUIET, &wire);
    assert_eq!(
        outcome.error,
        Some(Error::Protocol(ProtocolError::ControlFrameTooLong(127)))
    );
}

#[test]
fn fragmented_control_frames() {
    for role in [Role::Server, Role::Client] {
        for op in [8, 9, 0xA] {
            let wire = frame(false, 0, op, mask_to(role), b"");
            refused(role, QUIET, &wire, ProtocolError::FragmentedControlFrame);
        }
    }
}

#[test]
fn masking_direction() {
    refused(
        Role::Server,
        QUIET,
        &frame(true, 0, 1, None, b"hi"),
        ProtocolError::UnmaskedClientFrame,
    );
    refused(
        Role::Server,
        QUIET,
        &frame(true, 0, 9, None, b""),
        ProtocolError::UnmaskedClientFrame,
    );
    refused(
        Role::Client,
        QUIET,
        &frame(true, 0, 1, KEY, b"hi"),
        ProtocolError::MaskedServerFrame,
    );
    refused(
        Role::Client,
        QUIET,
        &frame(true, 0, 0xA, KEY, b""),
        ProtocolError::MaskedServerFrame,
    );
}

#[test]
fn length_with_the_top_bit_set() {
    for role in [Role::Server, Role::Client] {
        for len in [1u64 << 63, u64::MAX] {
            let wire = header(true, 0, 2, mask_to(role), len);
            refused(role, QUIET, &wire, ProtocolError::InvalidPayloadLength);
        }
    }
}

#[test]
fn fragmentation_sequencing() {
    for role in [Role::Server, Role::Client] {
        let m = mask_to(role);
        // A continuation with no message in progress, first or after a
        // complete message.
        refused(
            role,
            QUIET,
            &frame(true, 0, 0, m, b"x"),
            ProtocolError::UnexpectedContinuation,
        );
        let mut wire = frame(true, 0, 1, m, b"done");
        wire.extend(frame(false, 0, 0, m, b"x"));
        refused(role, QUIET, &wire, ProtocolError::UnexpectedContinuation);
        // A new data frame while a fragmented message is in progress (a
        // control frame in between is fine).
        for op in [1, 2] {
            let mut wire = frame(false, 0, 1, m, b"part");
            wire.extend(frame(true, 0, 9, m, b""));
            wire.extend(frame(true, 0, op, m, b"new"));
            refused(role, QUIET, &wire, ProtocolError::ExpectedContinuation);
        }
    }
}

#[test]
fn close_payload_violations() {
    for role in [Role::Server, Role::Client] {
        let m = mask_to(role);
        refused(
            role,
            QUIET,
            &frame(true, 0, 8, m, &[0x03]),
            ProtocolError::InvalidCloseCode(None),
        );
        refused(
            role,
            QUIET,
            &frame(true, 0, 8, m, &close_payload(1000, &[0xFF, 0xFE])),
            ProtocolError::InvalidUtf8,
        );
    }
}

#[test]
fn invalid_utf8_in_a_whole_text_frame() {
    for role in [Role::Server, Role::Client] {
        let wire = frame(true, 0, 1, mask_to(role), &[b'a', 0xC3, 0x28, b'b']);
        refused(role, QUIET, &wire, ProtocolError::InvalidUtf8);
    }
}

#[test]
fn limits_are_violations_too() {
    let config = QUIET
        .max_frame_size(100)
        .max_message_size(150)
        .max_fragments(3);
    for role in [Role::Server, Role::Client] {
        let m = mask_to(role);
        refused(
            role,
            config,
            &header(true, 0, 2, m, 101),
            ProtocolError::FrameTooLarge { len: 101, max: 100 },
        );
        let mut wire = frame(false, 0, 2, m, &[0; 100]);
        wire.extend(header(true, 0, 0, m, 51));
        refused(
            role,
            config,
            &wire,
            ProtocolError::MessageTooLarge { max: 150 },
        );
        let mut wire = frame(false, 0, 2, m, b"");
        wire.extend(frame(false, 0, 0, m, b""));
        wire.extend(frame(false, 0, 0, m, b""));
        wire.extend(frame(true, 0, 0, m, b""));
        refused(
            role,
            config,
            &wire,
            ProtocolError::TooManyFragments { max: 3 },
        );
    }
}

/// After a violation the connection is failed for good: reads return
/// `Error::Closed` until its Close is handed out, then discard input; sends
/// are refused; nothing more is transmitted.
#[test]
fn a_failed_connection_stays_failed() {
    let mut c = connection(Role::Server, QUIET);
    let mut wire = frame(true, 0, 1, None, b"unmasked");
    let err = c.handle_read(&mut wire, Instant::ZERO).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::UnmaskedClientFrame));
    assert_eq!(c.failure(), Some(err));
    assert!(!c.is_open() && !c.is_closed() && c.wants_transmit());
    let mut more = frame(true, 0, 1, KEY, b"ok");
    assert_eq!(c.handle_read(&mut more, Instant::ZERO), Err(Error::Closed));
    let mut out = [0u8; 139];
    let n = c.poll_transmit(&mut out).unwrap();
    assert_eq!(parse_frames(&out[..n])[0].close_code(), Some(1002));
    assert!(c.is_closed() && !c.wants_transmit());
    assert_eq!(c.poll_transmit(&mut out), Ok(0));
    let mut more = frame(true, 0, 1, KEY, b"ok");
    let len = more.len();
    assert_eq!(c.handle_read(&mut more, Instant::ZERO), Ok((len, None)));
    assert!(c.send_text("x", &mut out).is_err());
    assert!(c.close(CloseCode::NORMAL, "", Instant::ZERO).is_err());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.poll_transmit(&mut out), Ok(0));
}
