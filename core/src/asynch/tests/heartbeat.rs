//! The heartbeat on virtual time: the Ping when due, the pong timeout for
//! a silent peer, and a Pong that waited in the transport (the
//! application busy between reads, or working through a backlog) read
//! before the deadline is judged; and the close timeout, which a peer
//! that keeps sending cannot hold open.

use super::*;

/// The one-value driver with the defaults (a Ping after 30 s of silence,
/// 10 s for its Pong) over pipes holding `their_cap` and 8 KiB, a 1 KiB
/// read buffer.
macro_rules! one_value_server {
    ($ws:ident, $theirs:ident, $ours:ident, $clock:ident, $their_cap:expr) => {
        one_value_server!($ws, $theirs, $ours, $clock, $their_cap, Duplex)
    };
    // Over the transport `$io` makes of our read and write halves.
    ($ws:ident, $theirs:ident, $ours:ident, $clock:ident, $their_cap:expr, $io:expr) => {
        let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
        let $theirs = pipe($their_cap);
        let $ours = pipe(8192);
        let $clock = ManualClock(Rc::new(Cell::new(Instant::from_millis(0))));
        let buffer = SliceBuffer::new(&mut message[..]);
        let conn = Connection::new(
            Role::Server,
            Config::default(),
            buffer,
            CounterRng::new(1),
            $clock.now(),
        );
        let io = $io(Rx($theirs.clone()), Tx($ours.clone()));
        let mut $ws = WebSocket::new(io, conn, $clock.clone(), &mut read, 0, &mut write).unwrap();
    };
}

/// A Ping after 100 ms of silence, 200 ms for its Pong.
fn fast_heartbeat() -> Config {
    Config::default()
        .ping_interval(Some(core::time::Duration::from_millis(100)))
        .pong_timeout(core::time::Duration::from_millis(200))
}

/// The heartbeat Ping that goes out at `ms` while a read waits (and not
/// before): its payload.
fn ping_goes_out_at(
    waiting: core::pin::Pin<&mut impl Future>,
    ours: &Shared,
    clock: &ManualClock,
    ms: u64,
) -> Vec<u8> {
    let mut waiting = waiting;
    assert!(poll(waiting.as_mut()).is_pending());
    assert!(ours.borrow().bytes.is_empty());
    clock.0.set(Instant::from_millis(ms));
    assert!(poll(waiting.as_mut()).is_pending());
    let out = frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, OpCode::Ping);
    out[0].1.clone()
}

#[test]
fn the_heartbeat_runs_in_the_reader_alone_on_virtual_time() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    let config = fast_heartbeat();
    split_server!(read, write, message, ours, theirs, reader, writer, shared, clock, config);
    // The peer says nothing and the writer stays idle.
    let _ = (&theirs, &mut writer);

    let mut read_on = pin!(reader.read(described));
    ping_goes_out_at(read_on.as_mut(), &ours, &clock, 100);
    // No Pong: the reader fails the connection with 1001.
    clock.0.set(Instant::from_millis(300));
    let Poll::Ready(Err(e)) = poll(read_on.as_mut()) else {
        panic!("the pong timeout did not end the read");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
    let out: Vec<u8> = ours.borrow_mut().bytes.drain(..).collect();
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, OpCode::Close);
    assert_eq!(sent[0].1[..2], 1001u16.to_be_bytes());
}

#[test]
fn the_split_reader_reads_a_pong_that_came_while_it_was_not_reading_before_judging_it() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    let config = fast_heartbeat();
    split_server!(read, write, message, ours, theirs, reader, writer, shared, clock, config);
    let _ = &mut writer;
    let ping = {
        let mut read_on = pin!(reader.read(described));
        let ping = ping_goes_out_at(read_on.as_mut(), &ours, &clock, 100);
        let mut wire = Vec::new();
        client_frame(OpCode::Binary, b"work", &mut wire);
        theirs.borrow_mut().bytes.extend(wire);
        let Poll::Ready(Ok(event)) = poll(read_on.as_mut()) else {
            panic!("the message was not handed out");
        };
        assert_eq!(event, (b"binary".to_vec(), Some(b"work".to_vec())));
        ping
    };
    // The application works on it past the deadline; the Pong came.
    let mut wire = Vec::new();
    client_frame(OpCode::Pong, &ping, &mut wire);
    theirs.borrow_mut().bytes.extend(wire);
    clock.0.set(Instant::from_millis(1_000));
    match poll(pin!(reader.read(described))) {
        Poll::Ready(Ok(event)) => assert_eq!(event, (b"pong".to_vec(), Some(ping))),
        Poll::Ready(Err(e)) => panic!("{e:?}"),
        Poll::Pending => panic!("the Pong waiting in the transport was not read"),
    }
    assert!(ours.borrow().bytes.is_empty(), "no Close");
}

#[test]
fn a_ping_queued_behind_the_writers_frame_to_a_slow_peer_gets_its_pong_timeout_from_when_it_goes_out(
) {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    // A Ping after 100 ms, 200 ms for its Pong.
    let config = fast_heartbeat();
    split_server!(read, write, message, ours, theirs, reader, writer, shared, clock, config);
    let _ = &theirs;
    let at = |ms| clock.0.set(Instant::from_millis(ms));
    // The writer sends 20 KiB to a peer that takes 1 KiB every 150 ms (our
    // pipe holds 8 KiB): the Ping due at 100 ms waits behind the frame
    // for about 2 s, and the peer cannot answer a Ping it has not been
    // sent; taking bytes within each pong timeout, it is not failed.
    let big = vec![7; 20 * 1024];
    let mut sending = pin!(writer.send_binary(&big));
    let mut reading = pin!(reader.read(described));
    let mut wire = Vec::new();
    let mut ms = 0;
    loop {
        at(ms);
        let sent = poll(sending.as_mut()).is_ready();
        assert!(
            poll(reading.as_mut()).is_pending(),
            "failed at {ms} ms, the peer taking bytes"
        );
        if sent {
            break;
        }
        assert!(ms < 5_000, "the frame never ended");
        ms += 150;
        let mut pipe = ours.borrow_mut();
        let n = pipe.bytes.len().min(1024);
        wire.extend(pipe.bytes.drain(..n));
    }
    assert!(ms >= 1_500, "the frame ended at {ms} ms");
    wire.extend(ours.borrow_mut().bytes.drain(..));
    let sent = frames(&wire);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!((sent[0].0, sent[0].1.len()), (OpCode::Binary, big.len()));
    assert_eq!(sent[1].0, OpCode::Ping);
    // Its Pong has 200 ms from when it went out; a silent peer is failed
    // after that.
    at(ms + 150);
    assert!(poll(reading.as_mut()).is_pending(), "failed too early");
    at(ms + 250);
    let Poll::Ready(Err(e)) = poll(reading.as_mut()) else {
        panic!("the pong timeout did not end the read");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
}

#[test]
fn a_peer_that_takes_nothing_while_a_ping_waits_behind_the_writers_frame_is_given_up() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    // A Ping after 100 ms, 200 ms for its Pong, 5 s to close.
    let config = fast_heartbeat();
    split_server!(read, write, message, ours, theirs, reader, writer, shared, clock, config);
    let _ = &theirs;
    let at = |ms| clock.0.set(Instant::from_millis(ms));
    // The writer sends 20 KiB to a peer that takes none of it (our pipe
    // holds 8 KiB): the Ping due at 100 ms cannot go out, and the peer
    // took nothing for 200 ms after it was due.
    let big = vec![7; 20 * 1024];
    {
        let mut sending = pin!(writer.send_binary(&big));
        let mut reading = pin!(reader.read(described));
        for ms in [0, 100, 250, 300, 5_299] {
            at(ms);
            assert!(poll(sending.as_mut()).is_pending());
            assert!(poll(reading.as_mut()).is_pending(), "ended at {ms} ms");
        }
        // Failed at 300 ms; its Close cannot follow the frame in the 5 s close
        // timeout: the connection is given up, both halves told why.
        at(5_300);
        let Poll::Ready(Err(e)) = poll(reading.as_mut()) else {
            panic!("the reader still waits for a transport the peer never frees");
        };
        assert!(
            matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
            "{e:?}"
        );
        let Poll::Ready(Err(e)) = poll(sending.as_mut()) else {
            panic!("the writer still waits for a peer that takes nothing");
        };
        assert!(
            matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
            "{e:?}"
        );
    }
    // Nothing more goes out; later sends say why.
    let before = ours.borrow().bytes.len();
    let mut again = pin!(writer.send_text("later"));
    let Poll::Ready(Err(e)) = poll(again.as_mut()) else {
        panic!("a send after the connection was given up did not fail");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
    assert_eq!(ours.borrow().bytes.len(), before);
    let Poll::Ready(Err(e)) = poll(pin!(reader.read(described))) else {
        panic!("a read after the connection was given up did not fail");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
}

#[test]
fn a_close_the_peer_never_takes_does_not_hold_the_reader_past_the_close_timeout() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    let config = fast_heartbeat();
    split_server!(read, write, message, ours, theirs, reader, writer, shared, clock, config);
    let _ = &theirs;
    let at = |ms| clock.0.set(Instant::from_millis(ms));
    // The writer fills our 8 KiB pipe with a message and goes idle; the
    // peer reads nothing more. The reader's Ping at 100 ms and, after the
    // pong timeout, its Close cannot be written.
    let fill = vec![7; 8192 - 4];
    let Poll::Ready(Ok(())) = poll(pin!(writer.send_binary(&fill))) else {
        panic!("the message did not fit the pipe");
    };
    assert_eq!(ours.borrow().bytes.len(), 8192);
    let mut reading = pin!(reader.read(described));
    for ms in [0, 100, 300, 5_299] {
        at(ms);
        assert!(poll(reading.as_mut()).is_pending(), "ended at {ms} ms");
    }
    at(5_300);
    let Poll::Ready(Err(e)) = poll(reading.as_mut()) else {
        panic!("the reader still waits to write its Close");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
    let Poll::Ready(Err(e)) = poll(pin!(writer.send_text("later"))) else {
        panic!("a send after the connection was given up did not fail");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
}

#[test]
fn the_one_value_drivers_heartbeat_ping_goes_out_when_due_not_at_the_pong_timeout() {
    // The defaults: a Ping after 30 s of silence, 10 s for its Pong.
    one_value_server!(ws, theirs, ours, clock, 4096);
    let sent = || frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());

    let ping = {
        let mut waiting = pin!(ws.read());
        assert!(poll(waiting.as_mut()).is_pending());
        assert_eq!(sent(), []);
        clock.0.set(Instant::from_millis(30_000));
        assert!(poll(waiting.as_mut()).is_pending());
        let out = sent();
        assert_eq!(out.len(), 1, "the Ping did not go out when due: {out:?}");
        assert_eq!(out[0].0, OpCode::Ping);
        // The peer answers 5 s later.
        clock.0.set(Instant::from_millis(35_000));
        let mut wire = Vec::new();
        client_frame(OpCode::Pong, &out[0].1, &mut wire);
        theirs.borrow_mut().bytes.extend(wire);
        let Poll::Ready(Ok(Event::Pong(pong))) = poll(waiting.as_mut()) else {
            panic!("the Pong was not handed out");
        };
        assert_eq!(pong, &out[0].1[..]);
        out[0].1.clone()
    };
    // Answered: no pong timeout at 40 s; the next Ping at 65 s (30 s
    // after the Pong, the last input).
    let mut waiting = pin!(ws.read());
    clock.0.set(Instant::from_millis(40_000));
    assert!(poll(waiting.as_mut()).is_pending());
    assert_eq!(sent(), []);
    clock.0.set(Instant::from_millis(65_000));
    assert!(poll(waiting.as_mut()).is_pending());
    let out = sent();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, OpCode::Ping);
    assert_ne!(out[0].1, ping);
}

#[test]
fn a_pong_that_came_while_the_application_was_not_reading_is_read_before_the_deadline_is_judged() {
    one_value_server!(ws, theirs, ours, clock, 4096);
    let ping = {
        let mut waiting = pin!(ws.read());
        let ping = ping_goes_out_at(waiting.as_mut(), &ours, &clock, 30_000);
        // A message arrives: the application takes it ...
        let mut wire = Vec::new();
        client_frame(OpCode::Binary, b"work", &mut wire);
        theirs.borrow_mut().bytes.extend(wire);
        let Poll::Ready(Ok(Event::Binary(b"work"))) = poll(waiting.as_mut()) else {
            panic!("the message was not handed out");
        };
        ping
    };
    // ... and works on it for a minute; the peer's Pong came meanwhile.
    let mut wire = Vec::new();
    client_frame(OpCode::Pong, &ping, &mut wire);
    theirs.borrow_mut().bytes.extend(wire);
    clock.0.set(Instant::from_millis(90_000));
    let mut waiting = pin!(ws.read());
    match poll(waiting.as_mut()) {
        Poll::Ready(Ok(Event::Pong(p))) => assert_eq!(p, &ping[..]),
        Poll::Ready(other) => panic!("{other:?}"),
        Poll::Pending => panic!("the Pong waiting in the transport was not read"),
    }
    assert!(ours.borrow().bytes.is_empty(), "nothing sent: no Close");
}

/// The Ping goes out at 30 s; 3 KiB of messages wait in the transport
/// ahead of its Pong, and the application reads one message per 5 s, past
/// the 40 s deadline: every message comes, then the Pong, and no Close.
fn the_backlog_is_read_up_to_the_pong<T>(
    ws: &mut WebSocket<'_, T, SliceBuffer<&mut [u8]>, CounterRng, ManualClock>,
    theirs: &Shared,
    ours: &Shared,
    clock: &ManualClock,
) where
    T: embedded_io_async::Read + embedded_io_async::Write,
{
    let ping = ping_goes_out_at(pin!(ws.read()), ours, clock, 30_000);
    let mut wire = Vec::new();
    for i in 0..12u8 {
        client_frame(OpCode::Binary, &[i; 250], &mut wire);
    }
    client_frame(OpCode::Pong, &ping, &mut wire);
    theirs.borrow_mut().bytes.extend(wire);
    for i in 0..12u8 {
        clock
            .0
            .set(Instant::from_millis(31_000 + 5_000 * u64::from(i)));
        match poll(pin!(ws.read())) {
            Poll::Ready(Ok(Event::Binary(b))) => assert_eq!(b, &[i; 250][..]),
            Poll::Ready(other) => panic!("message {i}: {other:?}"),
            Poll::Pending => panic!("message {i} was not handed out"),
        }
    }
    match poll(pin!(ws.read())) {
        Poll::Ready(Ok(Event::Pong(p))) => assert_eq!(p, &ping[..]),
        other => panic!("{other:?}"),
    }
    let sent = frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());
    assert_eq!(sent, vec![], "nothing sent: no Close");
}

#[test]
fn a_slow_reader_reads_the_backlog_up_to_the_pong_before_judging_it() {
    one_value_server!(ws, theirs, ours, clock, 1 << 16);
    the_backlog_is_read_up_to_the_pong(&mut ws, &theirs, &ours, &clock);
}

/// Our transport, handing out at most one 256-byte record per read (as
/// an embedded-tls session does), pending while its pipe is empty.
struct Records(Rx, Tx);

impl embedded_io_async::ErrorType for Records {
    type Error = Infallible;
}

impl embedded_io_async::Read for Records {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(256);
        self.0.read(&mut buf[..n]).await
    }
}

impl embedded_io_async::Write for Records {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.1.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

#[test]
fn a_transport_handing_out_a_record_per_read_is_read_through_before_the_pong_is_judged() {
    // The slow reader's backlog again, but every read comes back short
    // (one 256-byte frame of the 1 KiB asked for) while more waits.
    one_value_server!(ws, theirs, ours, clock, 1 << 16, Records);
    the_backlog_is_read_up_to_the_pong(&mut ws, &theirs, &ours, &clock);
    // The transport read through, a silent peer is still failed once the
    // next Pong is overdue: the next Ping goes out when due (it is), its
    // Pong never comes.
    let mut reading = pin!(ws.read());
    assert!(poll(reading.as_mut()).is_pending());
    let sent = frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, OpCode::Ping);
    clock.0.set(Instant::from_millis(200_000));
    let Poll::Ready(Err(e)) = poll(reading.as_mut()) else {
        panic!("the overdue Pong was not noticed");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
}

#[test]
fn a_peer_that_never_answers_is_still_failed_once_the_transport_is_read_through() {
    one_value_server!(ws, theirs, ours, clock, 4096);
    let _ping = ping_goes_out_at(pin!(ws.read()), &ours, &clock, 30_000);
    // The application was away past the deadline; the peer sent nothing.
    clock.0.set(Instant::from_millis(90_000));
    let _ = &theirs;
    let Poll::Ready(Err(e)) = poll(pin!(ws.read())) else {
        panic!("the overdue Pong was not noticed at once");
    };
    assert!(
        matches!(e, crate::DriverError::Connection(crate::Error::PongTimeout)),
        "{e:?}"
    );
    let out = frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1[..2], 1001u16.to_be_bytes());
}

/// A peer that does not stop sending: every read fills the buffer with
/// masked 100-byte binary frames (whole frames, back to back), until
/// `limit` reads (then reads wait forever); writes go to `Tx`.
struct Flood {
    frame: Vec<u8>,
    at: usize,
    reads: Rc<Cell<usize>>,
    limit: usize,
    tx: Tx,
}

impl embedded_io_async::ErrorType for Flood {
    type Error = Infallible;
}

impl embedded_io_async::Read for Flood {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if self.reads.get() >= self.limit {
            return poll_fn(|_| Poll::Pending).await;
        }
        self.reads.set(self.reads.get() + 1);
        for byte in buf.iter_mut() {
            *byte = self.frame[self.at];
            self.at = (self.at + 1) % self.frame.len();
        }
        Ok(buf.len())
    }
}

impl embedded_io_async::Write for Flood {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.tx.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A clock that moves 10 ms each time it is read.
#[derive(Clone)]
struct TickingClock(ManualClock);

impl Clock for TickingClock {
    fn now(&self) -> Instant {
        let now = self.0.now() + core::time::Duration::from_millis(10);
        self.0 .0.set(now);
        now
    }

    async fn wait_until(&self, deadline: Instant) {
        self.0.wait_until(deadline).await;
    }
}

#[test]
fn a_peer_that_floods_after_our_close_does_not_hold_it_past_the_close_timeout() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
    let ours = pipe(1 << 20);
    let clock = TickingClock(ManualClock(Rc::new(Cell::new(Instant::from_millis(0)))));
    let conn = Connection::new(
        Role::Server,
        Config::default().ping_interval(None),
        SliceBuffer::new(&mut message[..]),
        CounterRng::new(1),
        clock.0.now(),
    );
    let mut frame = Vec::new();
    client_frame(OpCode::Binary, &[9; 100], &mut frame);
    let reads = Rc::new(Cell::new(0));
    let io = Flood {
        frame,
        at: 0,
        reads: Rc::clone(&reads),
        limit: 100_000,
        tx: Tx(ours.clone()),
    };
    let mut ws = WebSocket::new(io, conn, clock.clone(), &mut read, 0, &mut write).unwrap();
    // Every read is full; the clock moves as the driver reads it.
    let result = poll(pin!(ws.close(crate::CloseCode::NORMAL, "bye")));
    let Poll::Ready(result) = result else {
        panic!("the close waits, after {} reads", reads.get());
    };
    assert!(
        matches!(
            result,
            Err(crate::DriverError::Connection(crate::Error::CloseTimeout))
        ),
        "{result:?}"
    );
    // The default close timeout is 5 s: ended by the clock, not by the
    // flood's end.
    assert!(reads.get() < 100_000, "{} reads", reads.get());
    let at = clock.0.now().as_millis();
    assert!((5_000..6_000).contains(&at), "ended at {at} ms");
    let out = frames(&ours.borrow_mut().bytes.drain(..).collect::<Vec<_>>());
    assert_eq!(out.len(), 1, "our Close only");
    assert_eq!(out[0].0, OpCode::Close);
}
