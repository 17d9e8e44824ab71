//! Self-tests of the blocking driver over an in-memory transport on a
//! virtual clock: an echo, and the heartbeat with its pong timeout.

use super::*;

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

pub(super) fn driver_echo() -> Result<(), &'static str> {
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

pub(super) fn driver_heartbeat() -> Result<(), &'static str> {
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
    // Request at once; the Pong at 31.5 s; a message at 45 s; then silence.
    let script = [
        (0, &request[..req_len]),
        (31_500, &pong[..]),
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
    // The Ping goes out 30 s after the handshake (which the clock's looks
    // took to 1.25 s), the Pong at 31.5 s answers it, so there is no pong
    // timeout at 41.25 s: the message at 45 s arrives. (A Pong read before
    // its Ping went out would answer nothing.)
    ensure!(ok!(ws.read_message()) == Some(Message::Text("still here")));
    ensure!((45_000..46_000).contains(&clock_ms.get()));
    // Then the peer is silent: the next Ping (61.25 s) is not answered by
    // 71.25 s.
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
