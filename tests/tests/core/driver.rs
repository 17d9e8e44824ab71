//! The blocking driver (`WebSocket`) over the in-memory pipe: handshakes,
//! messages both ways (including ones larger than the write buffer), ping,
//! the clean close, the heartbeat driven by `TimedOut` ticks on a manual
//! clock, rejected and bad handshakes, `respond` (batched replies, invalid
//! text).

use core::time::Duration;
use std::sync::mpsc;
use std::thread;

use snowsocket_core::driver::MIN_WRITE_BUFFER;
use snowsocket_core::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits};
use snowsocket_core::OpCode;
use snowsocket_core::{
    CloseCode, Config, Decision, DriverError, Error, Event, Instant, Message, Parts, Side,
    WebSocket,
};
use snowsocket_tests::{
    frame, parse_frames, pipe, Ev, ManualClock, PipeEnd, PipeError, XorShiftRng, QUIET,
};

const KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";
/// How long a blocking pipe read may wait, and how long a test waits for
/// the other thread: generous, only ever reached when something is broken.
const LIMIT: Duration = Duration::from_secs(20);

/// Either end (accepted: `ServerSide`, connected: `ClientSide`).
type Ws<'b, S> = WebSocket<'b, PipeEnd, Vec<u8>, XorShiftRng, ManualClock, S>;

fn parts<'b>(
    read: &'b mut [u8],
    write: &'b mut [u8],
    clock: &ManualClock,
    config: Config,
    seed: u64,
) -> Parts<'b, Vec<u8>, XorShiftRng, ManualClock> {
    Parts {
        read_buf: read,
        write_buf: write,
        message_buf: Vec::new(),
        rng: XorShiftRng::new(seed),
        clock: clock.clone(),
        config,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: None,
    }
}

/// Runs `f` on a thread; its result comes back over a channel with a
/// deadline, so a hang fails the test instead of blocking it.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> impl FnOnce() -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    move || {
        let result = rx
            .recv_timeout(LIMIT)
            .expect("the other thread finished in time");
        handle.join().unwrap();
        result
    }
}

/// The echo server: accepts offering "superchat", echoes every message,
/// returns what it received once the client closes.
fn echo_server(io: PipeEnd) -> Result<Vec<Ev>, String> {
    let mut read = vec![0u8; 1024];
    let mut write = vec![0u8; 512];
    let clock = ManualClock::new(Instant::ZERO);
    let mut ws =
        WebSocket::accept_with(io, parts(&mut read, &mut write, &clock, QUIET, 2), |req| {
            assert_eq!(req.path(), "/echo");
            assert_eq!(req.query(), Some("x=1"));
            assert!(req.offers_subprotocol("superchat"));
            Decision::Accept {
                subprotocol: Some("superchat"),
            }
        })
        .map_err(|e| format!("accept: {e:?}"))?;
    let mut got = Vec::new();
    loop {
        match ws.read_message().map_err(|e| format!("read: {e:?}"))? {
            Some(Message::Text(t)) => {
                let t = t.to_owned();
                ws.send_text(&t).map_err(|e| format!("send: {e:?}"))?;
                got.push(Ev::Text(t));
            }
            Some(Message::Binary(b)) => {
                let b = b.to_vec();
                ws.send_binary(&b).map_err(|e| format!("send: {e:?}"))?;
                got.push(Ev::Binary(b));
            }
            None => break,
        }
    }
    assert!(ws.connection().is_closed());
    Ok(got)
}

fn expect_message<S: Side>(ws: &mut Ws<'_, S>) -> Ev {
    match ws.read_message().unwrap() {
        Some(Message::Text(t)) => Ev::Text(t.to_owned()),
        Some(Message::Binary(b)) => Ev::Binary(b.to_vec()),
        None => panic!("closed"),
    }
}

#[test]
fn echo_over_two_threads() {
    let (client_io, server_io) = pipe();
    // Small reads and writes on both sides, to exercise partial I/O.
    let server_io = server_io.blocking(LIMIT).read_chunk(3).write_chunk(50);
    let client_io = client_io.blocking(LIMIT).read_chunk(1).write_chunk(7);
    let server = spawn(move || echo_server(server_io));

    let mut read = vec![0u8; 256];
    // A small write buffer (it must hold the request): larger messages
    // stream through it.
    let mut write = vec![0u8; 256];
    assert!(write.len() >= MIN_WRITE_BUFFER);
    let clock = ManualClock::new(Instant::ZERO);
    let offered = ["chat", "superchat"];
    let request = ClientRequest {
        subprotocols: &offered,
        ..ClientRequest::new("localhost", "/echo?x=1")
    };
    let (mut ws, chosen) = WebSocket::connect(
        client_io,
        parts(&mut read, &mut write, &clock, QUIET, 1),
        &request,
    )
    .unwrap();
    assert_eq!(chosen, Some(1));

    let mut sent = Vec::new();
    ws.send_text("hello").unwrap();
    sent.push(Ev::Text("hello".into()));
    assert_eq!(expect_message(&mut ws), Ev::Text("hello".into()));

    let bytes: Vec<u8> = (0..=255).collect();
    ws.send_binary(&bytes).unwrap();
    sent.push(Ev::Binary(bytes.clone()));
    assert_eq!(expect_message(&mut ws), Ev::Binary(bytes));

    ws.send_fragment(snowsocket_core::MessageKind::Text, "frag".as_bytes(), false)
        .unwrap();
    ws.ping(b"between").unwrap();
    ws.send_fragment(snowsocket_core::MessageKind::Text, "mént".as_bytes(), true)
        .unwrap();
    sent.push(Ev::Text("fragmént".into()));
    // The Pong to the ping comes first, then the echo.
    match ws.read().unwrap() {
        Event::Pong(p) => assert_eq!(p, b"between"),
        other => panic!("{other:?}"),
    }
    assert_eq!(expect_message(&mut ws), Ev::Text("fragmént".into()));

    // 20 KB from the client, masked through a 256-byte write buffer, and
    // back unmasked through the server's 512-byte one.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 256) as u8).collect();
    ws.send_binary(&big).unwrap();
    sent.push(Ev::Binary(big.clone()));
    assert_eq!(expect_message(&mut ws), Ev::Binary(big));
    let text = "ü".repeat(5000);
    ws.send_text(&text).unwrap();
    sent.push(Ev::Text(text.clone()));
    assert_eq!(expect_message(&mut ws), Ev::Text(text));

    // The clean close: returns once the server's reply arrived; the server's
    // read_message returned None.
    ws.close(CloseCode::NORMAL, "done").unwrap();
    assert!(ws.connection().is_closed());
    assert_eq!(server().unwrap(), sent);
    assert!(matches!(
        ws.read(),
        Err(DriverError::Connection(Error::Closed))
    ));
}

/// What a scripted peer received after the handshake answer: the frames.
fn frames_after_http(bytes: &[u8]) -> (String, Vec<snowsocket_tests::WireFrame>) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer")
        + 4;
    (
        String::from_utf8(bytes[..end].to_vec()).unwrap(),
        parse_frames(&bytes[end..]),
    )
}

fn client_request(path: &str) -> Vec<u8> {
    let mut out = [0u8; 512];
    let n =
        handshake::write_request(&mut out, &ClientRequest::new("localhost", path), KEY).unwrap();
    out[..n].to_vec()
}

/// A silent peer is noticed purely through `TimedOut` reads, each of which
/// moves the manual clock one second: a Ping at 30 s, Close 1001 at 40 s.
#[test]
fn heartbeat_and_dead_peer_on_timed_out_ticks() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let io = io.tick_clock(&clock, Duration::from_secs(1));
    peer.push(&client_request("/"));
    let config = QUIET
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, config, 3)).unwrap();
    let err = ws.read().unwrap_err();
    assert!(
        matches!(err, DriverError::Connection(Error::PongTimeout)),
        "{err:?}"
    );
    assert_eq!(clock.now(), Instant::from_secs(40));
    assert_eq!(ws.transport().timeouts(), 40);
    let (http, frames) = frames_after_http(&peer.take_available());
    assert!(http.starts_with("HTTP/1.1 101 "));
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].opcode, OpCode::Ping);
    assert_eq!(frames[0].payload.len(), 4);
    assert_eq!(frames[1].close_code(), Some(1001));
    assert_eq!(&frames[1].payload[2..], b"pong timeout");
}

/// The peer of the heartbeat tests: reads the 101 answer and the Ping (6
/// bytes, unmasked), sends `before` and then the Pong in one write, and
/// answers the server's Close. Returns the Ping's payload and the Close's
/// code.
fn answers_the_ping(mut peer: PipeEnd, before: Vec<u8>) -> (Vec<u8>, Option<u16>) {
    let mut got = Vec::new();
    let ping = loop {
        got.extend(peer.take_at_least(1, LIMIT));
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= end + 4 + 6 {
                break parse_frames(&got[end + 4..end + 10]).remove(0);
            }
        }
    };
    assert_eq!(ping.opcode, OpCode::Ping);
    let mut answer = before;
    answer.extend(frame(true, 0, 0xA, Some([7, 7, 7, 7]), &ping.payload));
    peer.push(&answer);
    let close = parse_frames(&peer.take_at_least(2, LIMIT)).remove(0);
    peer.push(&frame(true, 0, 8, Some([7, 7, 7, 7]), &close.payload));
    (ping.payload, close.close_code())
}

/// A peer that answers the heartbeat keeps the connection alive. The peer
/// is a thread; the driver's reads wait up to 100 ms of real time before a
/// tick moves the manual clock 10 s, so the Ping goes out at 30 s virtual
/// and the peer has 5 ticks (the 50 s pong timeout) to answer.
#[test]
fn heartbeat_answered_through_the_driver() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let io = io
        .blocking(Duration::from_millis(100))
        .tick_clock(&clock, Duration::from_secs(10));
    peer.push(&client_request("/"));
    let peer = spawn(move || answers_the_ping(peer, Vec::new()));
    let config = QUIET
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(50));
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, config, 3)).unwrap();
    let pong = match ws.read().unwrap() {
        Event::Pong(p) => p.to_vec(),
        other => panic!("{other:?}"),
    };
    let now = clock.now();
    assert!(now >= Instant::from_secs(30) && now < Instant::from_secs(80));
    // Cleared: the next deadline is the next Ping, not the pong timeout.
    assert_eq!(
        ws.connection().poll_timeout(),
        Some(Instant::from_secs(30) + Duration::from_secs(30))
    );
    ws.close(CloseCode::GOING_AWAY, "").unwrap();
    let (ping, close) = peer();
    assert_eq!(pong, ping);
    assert_eq!(close, Some(1001));
    // The ping payload is what the seeded RNG made (one `next_u32`).
    let expected = rand_core::RngCore::next_u32(&mut XorShiftRng::new(3)).to_le_bytes();
    assert_eq!(ping, expected);
}

/// The application takes a message that came right after the heartbeat
/// Ping and works on it for a minute; the peer's Pong, sent behind that
/// message, waits in the transport meanwhile. The next read reads it
/// before judging the pong timeout (the transport hands out one frame per
/// read here, so the Pong is still in it when the application comes back).
#[test]
fn a_pong_waiting_in_the_transport_is_read_before_the_pong_timeout_is_judged() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let work = frame(true, 0, 2, Some([7, 7, 7, 7]), b"work");
    let io = io
        .blocking(Duration::from_millis(100))
        .tick_clock(&clock, Duration::from_secs(10))
        .read_chunk(work.len());
    peer.push(&client_request("/"));
    let peer = spawn(move || answers_the_ping(peer, work));
    let config = QUIET
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, config, 3)).unwrap();
    assert_eq!(expect_message(&mut ws), Ev::Binary(b"work".to_vec()));
    clock.advance(Duration::from_secs(60));
    let pong = match ws.read() {
        Ok(Event::Pong(p)) => p.to_vec(),
        other => panic!("{other:?}"),
    };
    ws.close(CloseCode::NORMAL, "").unwrap();
    let (ping, close) = peer();
    assert_eq!(pong, ping);
    assert_eq!(
        close,
        Some(1000),
        "the peer got our Close, not a pong timeout's 1001"
    );
}

#[test]
fn accept_with_can_reject() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    peer.push(&client_request("/private"));
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let result =
        WebSocket::accept_with(io, parts(&mut read, &mut write, &clock, QUIET, 4), |req| {
            assert_eq!(req.path(), "/private");
            Decision::Reject {
                status: 403,
                body: "go away",
            }
        });
    assert!(matches!(result, Err(DriverError::Rejected { status: 403 })));
    let answer = String::from_utf8(peer.take_available()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ngo away"), "{answer}");

    // The client side of a rejection.
    let (io, mut server) = pipe();
    server.push(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\ngo away");
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let result = WebSocket::connect(
        io,
        parts(&mut read, &mut write, &clock, QUIET, 5),
        &ClientRequest::new("localhost", "/private"),
    );
    assert!(matches!(
        result,
        Err(DriverError::Handshake(HandshakeError::BadStatus(403)))
    ));
    assert!(server
        .take_available()
        .starts_with(b"GET /private HTTP/1.1\r\n"));
}

/// Sends `request` to a server driver and returns its error and the status
/// line it answered with.
fn bad_request(request: &[u8], read_len: usize) -> (DriverError<PipeError>, String) {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    peer.push(request);
    peer.shutdown_write();
    let mut read = vec![0u8; read_len];
    let mut write = [0u8; 512];
    let err = WebSocket::accept(io, parts(&mut read, &mut write, &clock, QUIET, 6)).unwrap_err();
    let answer = String::from_utf8(peer.take_available()).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (err, status)
}

#[test]
fn bad_requests_get_http_errors() {
    let good = String::from_utf8(client_request("/")).unwrap();
    let (e, status) = bad_request(good.replace("Sec-WebSocket-Key", "X-Key").as_bytes(), 1024);
    assert!(matches!(
        e,
        DriverError::Handshake(HandshakeError::MissingKey)
    ));
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (e, status) = bad_request(good.replace("Version: 13", "Version: 7").as_bytes(), 1024);
    assert!(matches!(
        e,
        DriverError::Handshake(HandshakeError::UnsupportedVersion)
    ));
    assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
    let (_, status) = bad_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1024);
    assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
    // Larger than the read buffer: 431 without waiting for the end.
    let mut big = good.clone();
    big.insert_str(16, &format!("X-Big: {}\r\n", "a".repeat(2000)));
    let (e, status) = bad_request(big.as_bytes(), 1024);
    assert!(
        matches!(e, DriverError::Handshake(HandshakeError::TooLarge)),
        "{e:?}"
    );
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    // The peer leaves mid-request.
    let (e, status) = bad_request(&good.as_bytes()[..30], 1024);
    assert!(matches!(e, DriverError::UnexpectedEof), "{e:?}");
    assert_eq!(status, "");
}

#[test]
fn handshake_timeout_on_ticks() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let io = io.tick_clock(&clock, Duration::from_secs(1));
    peer.push(b"GET / HTTP/1.1\r\n");
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut p = parts(&mut read, &mut write, &clock, QUIET, 7);
    p.handshake_timeout = Some(Duration::from_secs(5));
    let err = WebSocket::accept(io, p).unwrap_err();
    assert!(matches!(err, DriverError::HandshakeTimeout), "{err:?}");
    assert_eq!(clock.now(), Instant::from_secs(5));
}

/// Frames the client sent right behind its request (in the same read) are
/// not lost; the transport ending without a Close is reported.
#[test]
fn frames_right_after_the_request_and_eof() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let mut bytes = client_request("/");
    bytes.extend(frame(true, 0, 1, Some([1, 2, 3, 4]), b"early"));
    bytes.extend(frame(false, 0, 2, Some([1, 2, 3, 4]), b"par"));
    peer.push(&bytes);
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, QUIET, 8)).unwrap();
    assert_eq!(expect_message(&mut ws), Ev::Text("early".into()));
    peer.push(&frame(true, 0, 0, Some([1, 2, 3, 4]), b"tial"));
    assert_eq!(expect_message(&mut ws), Ev::Binary(b"partial".to_vec()));
    drop(peer);
    assert!(matches!(ws.read(), Err(DriverError::UnexpectedEof)));
    assert!(ws.connection().is_closed());
}

/// A protocol violation through the driver: the Close goes out before the
/// error is returned, which waits for the peer's Close (the driver lingers:
/// what the peer sent after the violation is read past to its Close).
#[test]
fn violations_are_answered_with_a_close() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let mut bytes = client_request("/");
    bytes.extend(frame(true, 0, 1, None, b"unmasked"));
    bytes.extend(frame(true, 0, 2, Some([1, 2, 3, 4]), b"more"));
    bytes.extend(frame(
        true,
        0,
        8,
        Some([1, 2, 3, 4]),
        &1002u16.to_be_bytes(),
    ));
    peer.push(&bytes);
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, QUIET, 9)).unwrap();
    let err = ws.read_message().unwrap_err();
    assert!(matches!(
        err,
        DriverError::Connection(Error::Protocol(
            snowsocket_core::ProtocolError::UnmaskedClientFrame
        ))
    ));
    let (_, frames) = frames_after_http(&peer.take_available());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1002));
}

/// `respond(echo)` on a server: replies to messages that arrived together
/// wait in the write buffer and go out with the ones after them, a Pong
/// queued meanwhile goes out after them, a reply larger than the write
/// buffer goes out in pieces, and the peer's Close ends it with `false`.
#[test]
fn respond_batches_replies_and_streams_large_ones() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let big: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    let mask = Some([9, 8, 7, 6]);
    let mut bytes = client_request("/");
    bytes.extend(frame(true, 0, 1, mask, b"one"));
    bytes.extend(frame(true, 0, 2, mask, b"two"));
    bytes.extend(frame(true, 0, 9, mask, b"p"));
    bytes.extend(frame(true, 0, 2, mask, &big));
    peer.push(&bytes);
    let (mut read, mut write) = ([0u8; 2048], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, QUIET, 10)).unwrap();
    for _ in 0..3 {
        assert!(matches!(ws.respond(snowsocket_core::echo), Ok(true)));
    }
    let (_, frames) = frames_after_http(&peer.take_available());
    let seen: Vec<(OpCode, &[u8])> = frames
        .iter()
        .map(|f| (f.opcode, f.payload.as_slice()))
        .collect();
    assert_eq!(
        seen,
        [
            (OpCode::Text, &b"one"[..]),
            (OpCode::Binary, &b"two"[..]),
            (OpCode::Pong, &b"p"[..]),
            (OpCode::Binary, &big[..]),
        ]
    );
    assert!(frames.iter().all(|f| f.fin && !f.masked));
    peer.push(&frame(true, 0, 8, mask, &1000u16.to_be_bytes()));
    assert!(matches!(ws.respond(snowsocket_core::echo), Ok(false)));
    let frames = parse_frames(&peer.take_available());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1000));
}

/// Text that is not UTF-8 fails `respond` with 1007: the reply still
/// waiting in the write buffer goes out first, then the Close, before the
/// error is returned.
#[test]
fn respond_fails_invalid_text_after_its_waiting_replies() {
    let clock = ManualClock::new(Instant::ZERO);
    let (mut peer, io) = pipe();
    let mask = Some([1, 2, 3, 4]);
    let mut bytes = client_request("/");
    bytes.extend(frame(true, 0, 1, mask, b"fine"));
    bytes.extend(frame(true, 0, 1, mask, &[b'a', 0xFF, 0xFE]));
    // The peer's answer to the 1007, which ends the driver's linger.
    bytes.extend(frame(true, 0, 8, mask, &1007u16.to_be_bytes()));
    peer.push(&bytes);
    let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
    let mut ws = WebSocket::accept(io, parts(&mut read, &mut write, &clock, QUIET, 11)).unwrap();
    assert!(matches!(ws.respond(snowsocket_core::echo), Ok(true)));
    let err = ws.respond(snowsocket_core::echo).unwrap_err();
    assert!(
        matches!(
            err,
            DriverError::Connection(Error::Protocol(snowsocket_core::ProtocolError::InvalidUtf8))
        ),
        "{err:?}"
    );
    let (_, frames) = frames_after_http(&peer.take_available());
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].opcode, OpCode::Text);
    assert_eq!(frames[0].payload, b"fine");
    assert_eq!(frames[1].close_code(), Some(1007));
}
