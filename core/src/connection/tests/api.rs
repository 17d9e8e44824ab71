//! Sending rules, the message buffer, unborrowed events, caller failures, control-frame order and time.

use super::*;

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
    // The heartbeat goes out at 30 s (its Pong's deadline runs once the
    // Ping is handed out).
    c.handle_timeout(Instant::from_secs(30)).unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(60)));
    let _ = transmit(&mut c);
    assert_eq!(c.poll_timeout(), Some(Instant::from_secs(40)));
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
    let _ = transmit(&mut c);
    assert_eq!(c.poll_timeout(), Some(end), "saturated, not wrapped");
    c.handle_timeout(Instant::ZERO).unwrap();
    assert_eq!(c.handle_timeout(end), Err(Error::PongTimeout));
    c.close(CloseCode::NORMAL, "", Instant::ZERO).ok();
    assert_eq!(c.poll_timeout(), None);
}

/// With an allocator, a queued Pong or Close lives on the heap while it is
/// queued: an idle connection carries a pointer for each, not 126 bytes.
#[cfg(feature = "alloc")]
#[test]
fn queued_control_payloads_are_pointers_with_an_allocator() {
    assert_eq!(
        core::mem::size_of::<Option<QueuedPayload>>(),
        core::mem::size_of::<std::boxed::Box<[u8]>>()
    );
    // And a queued Pong still carries the Ping's payload.
    let mut ping = MASKED_PONG_HELLO.to_vec();
    ping[0] = 0x89;
    let mut c = conn(Role::Server, quiet());
    let (events, err) = feed(&mut c, &[&ping]);
    assert_eq!((events, err), (vec![Ev::Ping(b"Hello".to_vec())], None));
    assert_eq!(transmit(&mut c), [&[0x8a, 0x05][..], b"Hello"].concat());
}
