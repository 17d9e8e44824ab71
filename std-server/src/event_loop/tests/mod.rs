//! One connection driven on virtual time through an in-memory socket: the
//! handshake, heartbeat, close, write-stall and linger deadlines, without
//! sockets or sleeps (quinn-proto's test `Pair` is the model).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::cell::{Cell, RefCell};
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use snowsocket_core::{encode_frame, CloseCode, Config, FrameHeader, Instant, OpCode};

use super::command::{Command, LoopShared};
use super::conn::{Conn, Socket};
use super::Service;
use crate::close::{CloseCause, CloseInfo, SendError};
use crate::config::ServerConfig;
use crate::handle::{ConnectionHandle, Message};
use crate::handler::Handler;
use crate::http::{HttpRequest, HttpResponse};

/// Both directions of an in-memory TCP connection, as the server sees it.
#[derive(Default)]
struct Wire {
    /// From the peer: bytes, then EOF once `peer_closed`.
    to_server: VecDeque<u8>,
    peer_closed: bool,
    /// To the peer.
    to_peer: Vec<u8>,
    /// How many more bytes the socket takes (`None`: any).
    room: Option<usize>,
    server_shut_write: bool,
    /// The size of every write the socket took.
    writes: Vec<usize>,
}

#[derive(Clone, Default)]
struct MemSocket(Rc<RefCell<Wire>>);

impl Read for MemSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut wire = self.0.borrow_mut();
        if wire.to_server.is_empty() {
            return if wire.peer_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(wire.to_server.len());
        for (slot, byte) in buf.iter_mut().zip(wire.to_server.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for MemSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut wire = self.0.borrow_mut();
        assert!(!wire.server_shut_write, "write after shutdown");
        let n = wire.room.map_or(buf.len(), |room| room.min(buf.len()));
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if let Some(room) = &mut wire.room {
            *room -= n;
        }
        wire.to_peer.extend_from_slice(&buf[..n]);
        wire.writes.push(n);
        Ok(n)
    }
    /// Gathers as a socket does: one write of as much as there is room for.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.write(&all)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket for MemSocket {
    fn shutdown_write(&self) -> io::Result<()> {
        self.0.borrow_mut().server_shut_write = true;
        Ok(())
    }
}

/// What the handler saw.
#[derive(Default)]
struct Seen {
    connects: usize,
    messages: Vec<Vec<u8>>,
    closes: Vec<CloseInfo>,
    /// `on_request` calls.
    requests: usize,
}

struct Echo(Arc<Mutex<Seen>>);

/// Records messages and pauses reading after each (as the client's
/// `read_message` does), keeping the handle to resume.
struct Pausing(Arc<Mutex<Seen>>, Arc<Mutex<Option<ConnectionHandle>>>);

impl Handler for Pausing {
    fn on_connect(&self, conn: &ConnectionHandle) {
        self.0.lock().unwrap().connects += 1;
        *self.1.lock().unwrap() = Some(conn.clone());
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        conn.pause_reading();
        let bytes = match message {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        };
        self.0.lock().unwrap().messages.push(bytes.to_vec());
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        self.0.lock().unwrap().closes.push(info);
    }
}

impl Handler for Echo {
    fn on_connect(&self, _conn: &ConnectionHandle) {
        self.0.lock().unwrap().connects += 1;
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let bytes = match message {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        };
        self.0.lock().unwrap().messages.push(bytes.to_vec());
        let _ = conn.send_binary(bytes);
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        self.0.lock().unwrap().closes.push(info);
    }
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        self.0.lock().unwrap().requests += 1;
        match request.path() {
            "/echo" => HttpResponse::new(200).with_body(request.body()),
            _ => HttpResponse::upgrade_required(),
        }
    }
}

std::thread_local! {
    /// The virtual clock of the test running on this thread.
    static VIRTUAL_NOW: Cell<Instant> = const { Cell::new(Instant::from_secs(100)) };
}

/// The service's clock in these tests: [`Harness::set_now`]'s time, moved
/// on by a handler that "takes long".
fn virtual_now() -> Instant {
    VIRTUAL_NOW.with(Cell::get)
}

/// A server-side connection on a virtual clock.
struct Harness {
    conn: Conn<MemSocket>,
    wire: MemSocket,
    owner: Arc<LoopShared>,
    _poll: mio::Poll,
    seen: Arc<Mutex<Seen>>,
    rbuf: Vec<u8>,
    now: Instant,
}

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

impl Harness {
    fn new(config: ServerConfig) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handler = Arc::new(Echo(Arc::clone(&seen)));
        Self::with_handler(config, seen, handler)
    }

    fn with_handler(
        config: ServerConfig,
        seen: Arc<Mutex<Seen>>,
        handler: Arc<dyn Handler>,
    ) -> Self {
        let service = Arc::new(Service::new(config, handler).with_clock(virtual_now));
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let wire = MemSocket::default();
        let peer = "127.0.0.1:1".parse().unwrap();
        // The slot `Loop::accept` takes before a connection exists.
        assert!(service.admit(peer));
        let now = Instant::from_secs(100);
        VIRTUAL_NOW.with(|c| c.set(now));
        Self {
            conn: Conn::accepted(wire.clone(), peer, service, now),
            wire,
            owner: Arc::new(LoopShared::new(waker)),
            _poll: poll,
            seen,
            rbuf: vec![0; 4096],
            now,
        }
    }

    /// An upgraded connection whose handler pauses reading after each
    /// message ([`Pausing`]), and where that handler keeps its handle.
    fn upgraded_pausing() -> (Self, Arc<Mutex<Option<ConnectionHandle>>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handle = Arc::new(Mutex::new(None));
        let handler = Arc::new(Pausing(Arc::clone(&seen), Arc::clone(&handle)));
        let config = ServerConfig::default().connection(quiet());
        let mut h = Self::with_handler(config, seen, handler);
        h.upgrade();
        (h, handle)
    }

    /// The peer sends `bytes`; the connection reads them.
    fn peer_sends(&mut self, bytes: &[u8]) {
        self.wire.0.borrow_mut().to_server.extend(bytes);
        self.conn
            .on_readable(&mut self.rbuf, &self.owner, 0, self.now);
    }

    fn peer_hangs_up(&mut self) {
        self.wire.0.borrow_mut().peer_closed = true;
        self.conn
            .on_readable(&mut self.rbuf, &self.owner, 0, self.now);
    }

    /// Everything written to the peer since the last call.
    fn take_written(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.wire.0.borrow_mut().to_peer)
    }

    /// The frames written to the peer since the last call.
    fn frames(&mut self) -> Vec<(OpCode, Vec<u8>)> {
        let bytes = self.take_written();
        let mut rest = &bytes[..];
        let mut frames = Vec::new();
        while let Ok(Some((header, used))) = FrameHeader::decode(rest) {
            let end = used + header.payload_len as usize;
            frames.push((header.opcode, rest[used..end].to_vec()));
            rest = &rest[end..];
        }
        assert!(rest.is_empty(), "a partial frame on the wire");
        frames
    }

    /// Sets the virtual clock (the harness's and the service's).
    fn set_now(&mut self, now: Instant) {
        self.now = now;
        VIRTUAL_NOW.with(|c| c.set(now));
    }

    /// Moves the clock to the connection's deadline and fires it.
    fn advance_to_deadline(&mut self) -> Duration {
        let at = self.conn.deadline().expect("a deadline");
        let waited = at.saturating_duration_since(self.now);
        self.set_now(at);
        self.conn.on_timeout(self.now);
        waited
    }

    /// An upgraded connection with a heartbeat (a Ping every 30 s, 10 s
    /// for its Pong), moved on to its first Ping: its payload.
    fn pinged() -> (Self, Vec<u8>) {
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_secs(30)))
            .pong_timeout(Duration::from_secs(10));
        let mut h = Self::new(ServerConfig::default().connection(connection));
        h.upgrade();
        assert_eq!(h.advance_to_deadline(), Duration::from_secs(30));
        let frames = h.frames();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, OpCode::Ping);
        (h, frames[0].1.clone())
    }

    fn upgrade(&mut self) {
        self.peer_sends(REQUEST);
        let answer = String::from_utf8(self.take_written()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        assert_eq!(self.seen.lock().unwrap().connects, 1);
    }

    fn finish(&mut self) -> CloseInfo {
        assert!(self.conn.is_done());
        self.conn.finish();
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.closes.len(), 1, "on_close runs once");
        seen.closes[0].clone()
    }
}

/// A masked client frame.
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        opcode,
        mask: Some([1, 2, 3, 4]),
        payload_len: payload.len() as u64,
    };
    let mut out = vec![0; header.encoded_len() + payload.len()];
    encode_frame(header, payload, &mut out).unwrap();
    out
}

fn quiet() -> Config {
    Config::DEFAULT.ping_interval(None)
}

#[test]
fn the_handshake_deadline_counts_from_accept_however_the_bytes_arrive() {
    let mut h = Harness::new(ServerConfig::default().handshake_timeout(Duration::from_secs(2)));
    // A byte at a time, each within the deadline of the one before.
    for byte in &REQUEST[..20] {
        h.set_now(h.now.max(Instant::from_micros(h.now.as_micros() + 90_000)));
        h.peer_sends(&[*byte]);
        h.conn.on_timeout(h.now);
    }
    assert!(!h.conn.is_done());
    assert_eq!(h.advance_to_deadline(), Duration::from_millis(200));
    assert!(h.conn.is_done());
    assert!(h.conn.finish().is_none(), "never opened: no on_close");
    assert_eq!(h.seen.lock().unwrap().connects, 0);
}

#[test]
fn echo_then_the_peers_close_is_answered_and_the_socket_closed_at_once() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    h.peer_sends(&client_frame(OpCode::Binary, b"hi"));
    assert_eq!(h.frames(), [(OpCode::Binary, b"hi".to_vec())]);
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    h.peer_sends(&client_frame(OpCode::Close, &close));
    assert_eq!(
        h.frames(),
        [(OpCode::Close, 1000u16.to_be_bytes().to_vec())]
    );
    // The handshake is complete: no lingering.
    assert!(h.wire.0.borrow().server_shut_write);
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::PeerClosed);
    assert_eq!(
        (info.code, info.reason.as_str()),
        (Some(CloseCode::NORMAL), "bye")
    );
}

#[test]
fn heartbeat_pings_then_fails_a_silent_peer_with_1001_and_lingers_until_eof() {
    let (mut h, payload) = Harness::pinged();
    // An answer keeps it open; the next ping comes 30 s after the first.
    h.peer_sends(&client_frame(OpCode::Pong, &payload));
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(30));
    assert_eq!(h.frames()[0].0, OpCode::Ping);
    // No answer: 10 s later, Close 1001.
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(10));
    let frames = h.frames();
    assert_eq!(frames[0].0, OpCode::Close);
    assert_eq!(frames[0].1[..2], 1001u16.to_be_bytes());
    // Lingering: the write side is shut, input is dropped, EOF ends it.
    assert!(h.wire.0.borrow().server_shut_write);
    assert!(!h.conn.is_done());
    h.peer_sends(&client_frame(OpCode::Binary, &[0; 3000]));
    assert!(!h.conn.is_done());
    assert!(h.take_written().is_empty());
    h.peer_hangs_up();
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::PongTimeout);
    assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
}

#[test]
fn a_failed_connection_lingers_at_most_the_close_timeout() {
    let connection = quiet().close_timeout(Duration::from_secs(5));
    let mut h = Harness::new(ServerConfig::default().connection(connection));
    h.upgrade();
    h.peer_sends(&client_frame(OpCode::Text, &[0xc3, 0x28]));
    let frames = h.frames();
    assert_eq!(frames[0].1[..2], 1007u16.to_be_bytes());
    assert!(!h.conn.is_done());
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(5));
    let info = h.finish();
    assert!(matches!(info.cause, CloseCause::ProtocolError(_)), "{info}");
    assert_eq!(info.code, Some(CloseCode::INVALID_PAYLOAD));
}

#[test]
fn our_close_unanswered_times_out() {
    let connection = quiet().close_timeout(Duration::from_secs(3));
    let mut h = Harness::new(ServerConfig::default().connection(connection));
    h.upgrade();
    let handle = h.seen_handle();
    handle.close(CloseCode::NORMAL, "done").unwrap();
    h.conn.flush(h.now);
    assert_eq!(h.frames()[0].0, OpCode::Close);
    assert_eq!(handle.send_text("late"), Err(crate::SendError::Closed));
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(3));
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::CloseTimeout);
    assert_eq!(info.code, Some(CloseCode::NORMAL));
}

#[test]
fn a_peer_that_takes_nothing_for_the_write_timeout_is_failed() {
    let config = ServerConfig::default()
        .connection(quiet())
        .write_timeout(Duration::from_secs(4));
    let mut h = Harness::new(config);
    h.upgrade();
    let handle = h.seen_handle();
    // The socket takes 100 bytes, then nothing.
    h.wire.0.borrow_mut().room = Some(100);
    handle.send_binary(&[7; 1000]).unwrap();
    h.conn.flush(h.now);
    assert_eq!(handle.buffered_amount(), 1004 - 100);
    // Progress a second later restarts the clock...
    h.set_now(Instant::from_micros(h.now.as_micros() + 1_000_000));
    h.wire.0.borrow_mut().room = Some(10);
    h.conn.on_writable(h.now);
    // ...then no progress: failed 4 s after the last byte was taken.
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(4));
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::WriteTimeout);
}

/// Echoes after "taking" 20 s of the virtual clock (a slow callback).
struct SlowEcho(Arc<Mutex<Seen>>);

impl Handler for SlowEcho {
    fn on_connect(&self, _conn: &ConnectionHandle) {
        self.0.lock().unwrap().connects += 1;
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        self.0.lock().unwrap().closes.push(info);
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        VIRTUAL_NOW.with(|c| c.set(Instant::from_micros(c.get().as_micros() + 20_000_000)));
        let _ = match message {
            Message::Text(t) => conn.send_text(t),
            Message::Binary(b) => conn.send_binary(b),
        };
    }
}

#[test]
fn a_slow_callback_is_not_counted_as_the_peers_write_stall() {
    // A handler that takes 20 s (a big message compressed in a debug
    // build took 13 s) and then sends more than the socket takes: the
    // write timeout counts from the write, not from the turn's start.
    let config = ServerConfig::default()
        .connection(quiet())
        .write_timeout(Duration::from_secs(4));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Arc::new(SlowEcho(Arc::clone(&seen)));
    let mut h = Harness::with_handler(config, seen, handler);
    h.upgrade();
    h.wire.0.borrow_mut().room = Some(100);
    let mut frame = vec![0; 1100];
    let header = FrameHeader {
        fin: true,
        opcode: OpCode::Binary,
        mask: Some([1, 2, 3, 4]),
        payload_len: 1000,
    };
    let n = encode_frame(header, &[7; 1000], &mut frame).unwrap();
    h.peer_sends(&frame[..n]);
    let written_at = virtual_now();
    assert_eq!(
        written_at.saturating_duration_since(h.now),
        Duration::from_secs(20)
    );
    h.set_now(written_at);
    // The peer took the first 100 bytes when the callback returned: the
    // stall is timed from there.
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(4));
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::WriteTimeout);
}

impl Harness {
    /// The open connection's handle (from the registry).
    fn seen_handle(&self) -> ConnectionHandle {
        let handles = self.conn_service().handles();
        assert_eq!(handles.len(), 1);
        handles[0].clone()
    }

    fn conn_service(&self) -> Arc<Service> {
        self.conn.service()
    }
}

#[test]
fn a_plain_request_fed_byte_by_byte_is_answered_once_when_its_body_is_whole() {
    let request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let mut whole = Harness::new(ServerConfig::default());
    whole.peer_sends(request);
    let expected = whole.take_written();
    assert!(
        expected.starts_with(b"HTTP/1.1 200 OK\r\n") && expected.ends_with(b"\r\n\r\nhello"),
        "{}",
        String::from_utf8_lossy(&expected)
    );
    let mut h = Harness::new(ServerConfig::default());
    for (i, byte) in request.iter().enumerate() {
        assert!(h.take_written().is_empty(), "answered after {i} bytes");
        h.peer_sends(&[*byte]);
    }
    assert_eq!(h.take_written(), expected);
    assert_eq!(h.seen.lock().unwrap().requests, 1);
    // Then the write side is shut and the peer's EOF ends the connection,
    // which never was a WebSocket.
    assert!(h.wire.0.borrow().server_shut_write);
    h.peer_hangs_up();
    assert!(h.conn.is_done());
    assert!(h.conn.finish().is_none());
    assert_eq!(h.seen.lock().unwrap().connects, 0);
}

#[test]
fn a_plain_request_whose_body_never_ends_is_dropped_at_the_handshake_deadline() {
    let mut h = Harness::new(ServerConfig::default().handshake_timeout(Duration::from_secs(3)));
    h.peer_sends(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel");
    assert!(h.take_written().is_empty());
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(3));
    assert!(h.conn.is_done());
    assert!(h.take_written().is_empty(), "no answer to half a request");
    assert_eq!(h.seen.lock().unwrap().requests, 0);
}

#[test]
fn input_kept_while_paused_is_handled_before_the_peers_eof() {
    let (mut h, handle) = Harness::upgraded_pausing();
    let seen = Arc::clone(&h.seen);
    // Three messages and a Close in one read: the first is handled, the
    // rest kept while paused.
    let mut bytes = Vec::new();
    for payload in [&b"one"[..], b"two", b"three"] {
        bytes.extend(client_frame(OpCode::Text, payload));
    }
    bytes.extend(client_frame(OpCode::Close, &1000u16.to_be_bytes()));
    h.peer_sends(&bytes);
    assert_eq!(seen.lock().unwrap().messages, [b"one".to_vec()]);
    let handle = handle.lock().unwrap().clone().unwrap();
    // The application resumes, and the socket reports the peer's EOF
    // before the loop has taken the resume command: each time, the next
    // kept message comes first, then the Close, then the end.
    for _ in 0..4 {
        handle.resume_reading();
        h.peer_hangs_up();
    }
    let messages = seen.lock().unwrap().messages.clone();
    assert_eq!(
        messages,
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::PeerClosed);
    assert_eq!(info.code, Some(CloseCode::NORMAL));
}

#[test]
fn a_connection_only_pushed_to_keeps_no_write_buffer_between_pushes() {
    let (mut h, handle) = Harness::upgraded_pausing();
    let handle = handle.lock().unwrap().clone().unwrap();
    // The peer reads slowly at first: part of the push waits for the
    // socket, in the connection's buffer.
    h.wire.0.borrow_mut().room = Some(1_000);
    handle.send_binary(&[7; 3_000]).unwrap();
    h.conn.flush_pushed(h.now);
    assert!(h.conn.write_capacity() >= 2_000);
    // Written once the socket takes it: then nothing is held.
    h.wire.0.borrow_mut().room = None;
    h.conn.on_writable(h.now);
    assert_eq!(h.frames(), [(OpCode::Binary, vec![7; 3_000])]);
    assert_eq!(h.conn.write_capacity(), 0);
    // Pushed and written at once: nothing is held either.
    handle.send_binary(&[8; 3_000]).unwrap();
    h.conn.flush_pushed(h.now);
    assert_eq!(h.frames(), [(OpCode::Binary, vec![8; 3_000])]);
    assert_eq!(h.conn.write_capacity(), 0);
}

#[test]
fn a_callbacks_own_sends_go_out_without_a_flush_command_other_sends_get_one() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    let mut commands = Vec::new();
    h.owner.drain(&mut commands);
    // The echo, sent from the connection's own callback while its loop
    // feeds it, is written by the flush that follows the read.
    h.peer_sends(&client_frame(OpCode::Binary, b"hi"));
    assert_eq!(h.frames(), [(OpCode::Binary, b"hi".to_vec())]);
    h.owner.drain(&mut commands);
    assert!(commands.is_empty(), "no flush command for the echo");
    // A send from elsewhere (here the test's thread, outside any callback)
    // is told to the loop, once until the loop takes it.
    let handle = h.seen_handle();
    handle.send_binary(b"one").unwrap();
    handle.send_binary(b"two").unwrap();
    h.owner.drain(&mut commands);
    assert!(
        matches!(commands[..], [Command::Flush { id, .. }] if id == handle.id()),
        "one flush command"
    );
    h.conn.flush_pushed(h.now);
    assert_eq!(
        h.frames(),
        [
            (OpCode::Binary, b"one".to_vec()),
            (OpCode::Binary, b"two".to_vec())
        ]
    );
}

mod backlog;
mod batching;
mod budget;
mod eof;
mod forward;
