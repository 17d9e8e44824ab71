//! The async driver on a virtual transport, polled by hand: two pipes of
//! bounded capacity (a write to a full one, a read from an empty one, is
//! pending) and a clock that moves only when told. The test plays the
//! peer: it fills our input as room allows and reads our output only
//! when it says so. Mostly the split halves; the heartbeat, of both, in
//! `heartbeat`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

use super::{Clock, WebSocket};
use crate::counter_rng::CounterRng;
use crate::frame::{encode_frame_vec, FrameHeader, OpCode};
use crate::time::Instant;
use crate::{Config, Connection, Event, Role, SliceBuffer};

/// One direction: bytes in flight, at most `cap` of them.
struct Pipe {
    bytes: VecDeque<u8>,
    cap: usize,
}

type Shared = Rc<RefCell<Pipe>>;

fn pipe(cap: usize) -> Shared {
    Rc::new(RefCell::new(Pipe {
        bytes: VecDeque::new(),
        cap,
    }))
}

/// Our read half: pending while its pipe is empty.
struct Rx(Shared);
/// Our write half: pending while its pipe is full.
struct Tx(Shared);
/// Both, before the split.
struct Duplex(Rx, Tx);

impl embedded_io_async::ErrorType for Rx {
    type Error = Infallible;
}
impl embedded_io_async::ErrorType for Tx {
    type Error = Infallible;
}
impl embedded_io_async::ErrorType for Duplex {
    type Error = Infallible;
}

impl embedded_io_async::Read for Rx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        poll_fn(|_| {
            let mut pipe = self.0.borrow_mut();
            if pipe.bytes.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(pipe.bytes.len());
            for (to, from) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
                *to = from;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for Tx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        poll_fn(|_| {
            let mut pipe = self.0.borrow_mut();
            let n = buf.len().min(pipe.cap - pipe.bytes.len());
            if n == 0 {
                return Poll::Pending;
            }
            pipe.bytes.extend(&buf[..n]);
            Poll::Ready(Ok(n))
        })
        .await
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl embedded_io_async::Read for Duplex {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        self.0.read(buf).await
    }
}

impl embedded_io_async::Write for Duplex {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.1.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A clock that moves only when the test moves it.
#[derive(Clone)]
struct ManualClock(Rc<Cell<Instant>>);

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.get()
    }

    async fn wait_until(&self, deadline: Instant) {
        poll_fn(|_| {
            if self.0.get() >= deadline {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Polls `fut` once.
fn poll<F: Future>(fut: core::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A frame from the peer (a client: masked).
fn client_frame(opcode: OpCode, payload: &[u8], wire: &mut Vec<u8>) {
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: Some([1, 2, 3, 4]),
        payload_len: payload.len() as u64,
    };
    encode_frame_vec(header, payload, wire);
}

/// Our frames (a server's: unmasked) in `wire`, as (opcode, payload).
fn frames(mut wire: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (header, n) = FrameHeader::decode(wire).unwrap().expect("a whole header");
        assert!(header.fin && header.mask.is_none(), "{header:?}");
        let end = n + header.payload_len as usize;
        frames.push((header.opcode, wire[n..end].to_vec()));
        wire = &wire[end..];
    }
    frames
}

/// How many polls a step may take before the test calls it stuck (each
/// poll moves at least a pipe's worth of bytes when it can move any).
const POLLS: usize = 1000;

/// The peer sends `input` as room allows (it reads nothing meanwhile),
/// while our reader reads: the events the reader hands out, once the
/// whole input is in and the reader waits for more.
#[allow(clippy::type_complexity)]
fn serve(
    peer_in: &Shared,
    input: &mut VecDeque<u8>,
    mut read_one: impl FnMut() -> Poll<(Vec<u8>, Option<Vec<u8>>)>,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut events = Vec::new();
    for _ in 0..POLLS {
        {
            let mut pipe = peer_in.borrow_mut();
            let room = pipe.cap - pipe.bytes.len();
            let n = room.min(input.len());
            let bytes: Vec<u8> = input.drain(..n).collect();
            pipe.bytes.extend(bytes);
        }
        match read_one() {
            Poll::Ready(event) => events.push(event),
            Poll::Pending if input.is_empty() && peer_in.borrow().bytes.is_empty() => {
                return events;
            }
            Poll::Pending => {}
        }
    }
    panic!(
        "the reader stopped reading: {} bytes still to send, {} events read",
        input.len(),
        events.len()
    );
}

/// A server over the virtual transport, split: our output's pipe holds
/// `out_cap` bytes, our input's 4 KiB.
macro_rules! split_server {
    ($read:ident, $write:ident, $message:ident, $ours:ident, $theirs:ident, $reader:ident, $writer:ident, $shared:ident) => {
        split_server!(
            $read,
            $write,
            $message,
            $ours,
            $theirs,
            $reader,
            $writer,
            $shared,
            clock,
            Config::default().ping_interval(None)
        )
    };
    ($read:ident, $write:ident, $message:ident, $ours:ident, $theirs:ident, $reader:ident, $writer:ident, $shared:ident, $clock:ident, $config:expr) => {
        let $theirs = pipe(4096);
        let $ours = pipe(8192);
        let $clock = ManualClock(Rc::new(Cell::new(Instant::from_millis(0))));
        let clock = $clock.clone();
        let config = $config;
        let buffer = SliceBuffer::new(&mut $message[..]);
        let conn = Connection::new(
            Role::Server,
            config,
            buffer,
            CounterRng::new(1),
            clock.now(),
        );
        let io = Duplex(Rx($theirs.clone()), Tx($ours.clone()));
        let ws = WebSocket::new(io, conn, clock, &mut $read, 0, &mut $write).unwrap();
        let split = pin!(ws.split(|Duplex(rx, tx)| (rx, tx)));
        let Poll::Ready(Ok((half, shared))) = poll(split) else {
            panic!("the split did not complete");
        };
        let $shared = RefCell::new(shared);
        let (mut $reader, mut $writer) = half.with(&$shared);
    };
}

/// The peer sends a Ping with `$payload`; the reader hands it out (its
/// Pong now queued in the connection).
macro_rules! peer_pings {
    ($theirs:ident, $reader:ident, $payload:expr) => {
        let mut wire = Vec::new();
        client_frame(OpCode::Ping, $payload, &mut wire);
        $theirs.borrow_mut().bytes.extend(wire);
        let Poll::Ready(Ok(event)) = poll(pin!($reader.read(described))) else {
            panic!("the Ping was not handed out");
        };
        assert_eq!(event, (b"ping".to_vec(), Some($payload.to_vec())));
    };
}

/// What the reader hands out: the event's kind and its payload.
fn described(event: Event<'_>) -> (Vec<u8>, Option<Vec<u8>>) {
    match event {
        Event::Ping(p) => (b"ping".to_vec(), Some(p.to_vec())),
        Event::Pong(p) => (b"pong".to_vec(), Some(p.to_vec())),
        Event::Binary(b) => (b"binary".to_vec(), Some(b.to_vec())),
        Event::Close(_) => (b"close".to_vec(), None),
        _ => (b"other".to_vec(), None),
    }
}

#[test]
fn the_reader_reads_on_while_the_writer_is_in_a_frame_and_the_pong_follows_it() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 64 * 1024]);
    split_server!(read, write, message, ours, theirs, reader, writer, shared);

    // Our writer sends 64 KiB; the peer reads nothing, so it stops in the
    // middle of its frame with the transport taken.
    let big = vec![7u8; 64 * 1024];
    let mut send = pin!(writer.send_binary(&big));
    for _ in 0..4 {
        assert!(poll(send.as_mut()).is_pending());
    }
    assert_eq!(ours.borrow().bytes.len(), 8192);

    // The peer's two Pings, then a message larger than our input (and its
    // pipe): it only reads once all of it is sent.
    let mut wire = Vec::new();
    client_frame(OpCode::Ping, b"p1", &mut wire);
    client_frame(OpCode::Ping, b"p2", &mut wire);
    let theirs_big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    client_frame(OpCode::Binary, &theirs_big, &mut wire);
    let mut input: VecDeque<u8> = wire.into();
    let events = serve(&theirs, &mut input, || {
        let mut read = pin!(reader.read(described));
        poll(read.as_mut()).map(Result::unwrap)
    });
    let kinds: Vec<&[u8]> = events.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(kinds, [&b"ping"[..], b"ping", b"binary"]);
    assert_eq!(events[2].1.as_deref(), Some(&theirs_big[..]));
    assert_eq!(ours.borrow().bytes.len(), 8192, "nothing written meanwhile");

    // The peer reads now: our frame completes, the Pong to the latest
    // Ping right behind it.
    let mut out = Vec::new();
    let mut done = false;
    for _ in 0..POLLS {
        out.extend(ours.borrow_mut().bytes.drain(..));
        if let Poll::Ready(result) = poll(send.as_mut()) {
            result.unwrap();
            done = true;
            break;
        }
    }
    assert!(done, "the send did not complete");
    out.extend(ours.borrow_mut().bytes.drain(..));
    let sent = frames(&out);
    assert_eq!(
        sent.len(),
        2,
        "{:?}",
        sent.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert_eq!(sent[0], (OpCode::Binary, big.clone()));
    assert_eq!(sent[1], (OpCode::Pong, b"p2".to_vec()));
}

#[test]
fn the_reply_to_a_close_waits_for_the_writers_frame_and_goes_before_the_close_event() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    split_server!(read, write, message, ours, theirs, reader, writer, shared);

    let big = vec![9u8; 32 * 1024];
    let mut send = pin!(writer.send_binary(&big));
    assert!(poll(send.as_mut()).is_pending());

    let mut wire = Vec::new();
    client_frame(OpCode::Close, &1000u16.to_be_bytes(), &mut wire);
    theirs.borrow_mut().bytes.extend(wire);
    let mut read_close = pin!(reader.read(described));
    // The reply cannot go out inside our frame: the Close waits.
    for _ in 0..4 {
        assert!(poll(read_close.as_mut()).is_pending());
    }

    let mut out = Vec::new();
    let mut event = None;
    let mut sent = false;
    for _ in 0..POLLS {
        out.extend(ours.borrow_mut().bytes.drain(..));
        if !sent {
            if let Poll::Ready(result) = poll(send.as_mut()) {
                result.unwrap();
                sent = true;
            }
        }
        if let Poll::Ready(result) = poll(read_close.as_mut()) {
            event = Some(result.unwrap());
            break;
        }
    }
    assert_eq!(event.map(|(kind, _)| kind).as_deref(), Some(&b"close"[..]));
    out.extend(ours.borrow_mut().bytes.drain(..));
    let sent = frames(&out);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], (OpCode::Binary, big.clone()));
    assert_eq!(sent[1], (OpCode::Close, 1000u16.to_be_bytes().to_vec()));
}

#[test]
fn the_reader_writes_the_pong_itself_when_the_writer_is_idle() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    split_server!(read, write, message, ours, theirs, reader, writer, shared);

    peer_pings!(theirs, reader, b"hi");
    // The next read, while it waits for input, writes the Pong.
    let mut read_on = pin!(reader.read(described));
    assert!(poll(read_on.as_mut()).is_pending());
    let out: Vec<u8> = ours.borrow_mut().bytes.drain(..).collect();
    assert_eq!(frames(&out), [(OpCode::Pong, b"hi".to_vec())]);
    // And the transport is free again for the writer.
    let mut send = pin!(writer.send_binary(b"after"));
    assert!(matches!(poll(send.as_mut()), Poll::Ready(Ok(()))));
    let out: Vec<u8> = ours.borrow_mut().bytes.drain(..).collect();
    assert_eq!(frames(&out), [(OpCode::Binary, b"after".to_vec())]);
}

#[test]
fn the_writers_ping_also_writes_a_pong_the_reader_queued() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    split_server!(read, write, message, ours, theirs, reader, writer, shared);

    peer_pings!(theirs, reader, b"hi");
    // The reader is not polled again; the writer pings: the Pong the
    // reader queued goes out right after, not at the reader's next read.
    assert!(ours.borrow().bytes.is_empty());
    assert!(matches!(poll(pin!(writer.ping(b"p"))), Poll::Ready(Ok(()))));
    let out: Vec<u8> = ours.borrow_mut().bytes.drain(..).collect();
    assert_eq!(
        frames(&out),
        [
            (OpCode::Ping, b"p".to_vec()),
            (OpCode::Pong, b"hi".to_vec())
        ]
    );
}

#[test]
fn the_rest_of_a_pong_cut_short_by_input_goes_before_the_writers_next_frame() {
    let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
    split_server!(read, write, message, ours, theirs, reader, writer, shared);

    // Our frame leaves 2 bytes of room in the pipe.
    let first = vec![1u8; 8192 - 4 - 2];
    assert!(matches!(
        poll(pin!(writer.send_binary(&first))),
        Poll::Ready(Ok(()))
    ));
    let mut wire = Vec::new();
    client_frame(OpCode::Ping, b"hi", &mut wire);
    theirs.borrow_mut().bytes.extend(&wire);
    let Poll::Ready(Ok(event)) = poll(pin!(reader.read(described))) else {
        panic!("the Ping was not handed out");
    };
    assert_eq!(event.0, b"ping");
    {
        // The read waits for input and writes the Pong meanwhile: half
        // of it fits.
        let mut read_on = pin!(reader.read(described));
        assert!(poll(read_on.as_mut()).is_pending());
        assert_eq!(ours.borrow().bytes.len(), 8192);
        // Input comes first: the write is dropped half done.
        let mut wire = Vec::new();
        client_frame(OpCode::Binary, b"x", &mut wire);
        theirs.borrow_mut().bytes.extend(&wire);
        let Poll::Ready(Ok(event)) = poll(read_on.as_mut()) else {
            panic!("the message was not handed out");
        };
        assert_eq!(event, (b"binary".to_vec(), Some(b"x".to_vec())));
    }
    // The peer reads; the writer's next frame goes after the rest of the
    // Pong.
    let mut out: Vec<u8> = ours.borrow_mut().bytes.drain(..).collect();
    assert!(matches!(
        poll(pin!(writer.send_binary(b"after"))),
        Poll::Ready(Ok(()))
    ));
    out.extend(ours.borrow_mut().bytes.drain(..));
    assert_eq!(
        frames(&out),
        [
            (OpCode::Binary, first),
            (OpCode::Pong, b"hi".to_vec()),
            (OpCode::Binary, b"after".to_vec())
        ]
    );
}

mod heartbeat;
mod write_timeout;
