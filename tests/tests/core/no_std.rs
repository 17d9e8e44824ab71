//! The core as a microcontroller uses it: fixed storage only (arrays,
//! `SliceBuffer`, `heapless::Vec`), no allocation in the connection or the
//! driver, end to end.

use core::time::Duration;

use snowsocket_core::handshake::{self, ClientRequest, HandshakeLimits};
use snowsocket_core::{
    CloseCode, Config, Connection, Event, Instant, Message, MessageKind, Parts, Role, SliceBuffer,
    WebSocket,
};
use snowsocket_tests::{frame, pipe, FixedRng, ManualClock, XorShiftRng};

/// Moves every frame `from` has queued, plus `extra[..n]`, into `to`,
/// returning how many events `to` produced and checking each with `check`.
fn deliver<A, B, R1, R2>(
    extra: &[u8],
    from: &mut Connection<A, R1>,
    to: &mut Connection<B, R2>,
    now: Instant,
    check: &mut dyn FnMut(Event<'_>),
) -> usize
where
    A: snowsocket_core::MessageBuffer,
    B: snowsocket_core::MessageBuffer,
    R1: rand_core::RngCore,
    R2: rand_core::RngCore,
{
    let mut wire = [0u8; 512];
    let mut len = extra.len();
    wire[..len].copy_from_slice(extra);
    loop {
        let n = from.poll_transmit(&mut wire[len..]).unwrap();
        if n == 0 {
            break;
        }
        len += n;
    }
    let mut events = 0;
    let mut input = &mut wire[..len];
    while let (consumed, Some(event)) = to.handle_read(input, now).unwrap() {
        check(event);
        events += 1;
        if to.is_closed() {
            break;
        }
        input = &mut input[consumed..];
    }
    events
}

#[test]
fn two_connections_on_fixed_storage() {
    let now = Instant::ZERO;
    let config = Config::DEFAULT.ping_interval(Some(Duration::from_secs(1)));
    let mut client_store = [0u8; 64];
    let mut client = Connection::new(
        Role::Client,
        config,
        SliceBuffer::new(&mut client_store[..]),
        FixedRng::rfc_mask(),
        now,
    );
    let mut server = Connection::new(
        Role::Server,
        config,
        heapless::Vec::<u8, 64>::new(),
        XorShiftRng::new(1),
        now,
    );
    assert_eq!(server.max_message_size(), 64, "the buffer bounds messages");

    // A fragmented message from the client, a whole one from the server.
    let mut wire = [0u8; 128];
    let a = client
        .send_fragment(MessageKind::Text, "snow".as_bytes(), false, &mut wire)
        .unwrap();
    let b = client
        .send_fragment(MessageKind::Text, "sócket".as_bytes(), true, &mut wire[a..])
        .unwrap();
    let mut seen = 0;
    let n = deliver(&wire[..a + b], &mut client, &mut server, now, &mut |e| {
        assert_eq!(e, Event::Text("snowsócket"));
        seen += 1;
    });
    assert_eq!((n, seen), (1, 1));
    let n = server.send_binary(&[1, 2, 3], &mut wire).unwrap();
    let got = deliver(&wire[..n], &mut server, &mut client, now, &mut |e| {
        assert_eq!(e, Event::Binary(&[1, 2, 3]));
    });
    assert_eq!(got, 1);

    // The heartbeat, answered.
    let later = now + Duration::from_secs(1);
    server.handle_timeout(later).unwrap();
    assert_eq!(
        deliver(&[], &mut server, &mut client, later, &mut |e| assert!(
            matches!(e, Event::Ping(p) if p.len() == 4)
        )),
        1
    );
    assert_eq!(
        deliver(&[], &mut client, &mut server, later, &mut |e| assert!(
            matches!(e, Event::Pong(_))
        )),
        1
    );
    client.handle_timeout(later).unwrap();
    assert_eq!(
        deliver(&[], &mut client, &mut server, later, &mut |_| {}),
        1
    );
    assert_eq!(
        deliver(&[], &mut server, &mut client, later, &mut |_| {}),
        1
    );
    assert!(server.poll_timeout() > Some(later));

    // Over the fixed buffer: 1009, from the header.
    let n = {
        let mut c = Connection::new(
            Role::Client,
            config,
            SliceBuffer::new([0u8; 8]),
            FixedRng::rfc_mask(),
            now,
        );
        c.send_binary(&[0; 65], &mut wire).unwrap()
    };
    // The 6-byte header (with its mask key) is enough.
    let err = server.handle_read(&mut wire[..6], now).unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
    assert!(n > 6);
    let mut out = [0u8; 139];
    let n = server.poll_transmit(&mut out).unwrap();
    assert_eq!(&out[..4], &[0x88, (n - 2) as u8, 0x03, 0xF1]);
    assert!(server.is_closed());
}

/// The blocking driver with array buffers and a `SliceBuffer`, over the
/// pipe (the pipe itself is a test fixture): a scripted client sends its
/// request and fragmented frames, the server reads a message assembled in
/// 32 bytes of storage and closes.
#[test]
fn driver_on_fixed_storage() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let mut req = [0u8; 256];
    let n = handshake::write_request(
        &mut req,
        &ClientRequest::new("mcu", "/"),
        b"dGhlIHNhbXBsZSBub25jZQ==",
    )
    .unwrap();
    peer.push(&req[..n]);
    let key = Some([3, 1, 4, 1]);
    peer.push(&frame(false, 0, 1, key, b"tiny "));
    peer.push(&frame(true, 0, 0, key, b"device"));
    peer.push(&frame(true, 0, 8, key, &[0x03, 0xE8]));
    let mut read = [0u8; 256];
    let mut write = [0u8; 256];
    let mut store = [0u8; 32];
    let parts = Parts {
        read_buf: &mut read,
        write_buf: &mut write,
        message_buf: SliceBuffer::new(&mut store[..]),
        rng: XorShiftRng::new(1),
        clock: clock.clone(),
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(5)),
    };
    let mut ws = WebSocket::accept(io, parts).unwrap();
    assert_eq!(
        ws.read_message().unwrap(),
        Some(Message::Text("tiny device"))
    );
    assert_eq!(ws.read_message().unwrap(), None);
    assert!(ws.connection().is_closed());
    let answer = peer.take_available();
    // 101, then the Close reply echoing 1000.
    assert!(answer.starts_with(b"HTTP/1.1 101 "));
    assert!(answer.ends_with(&[0x88, 0x02, 0x03, 0xE8]));
}
