//! A peer that reads slowly behind a long backlog of our output is alive:
//! the heartbeat's Pong and the close handshake's deadlines count from
//! when our Ping or Close reaches the socket, not from when it was queued
//! behind megabytes the peer has yet to read. Likewise a Pong behind a
//! backlog of the peer's input is read before its deadline is judged.

use super::*;
use crate::event_loop::conn::{read_buffer_len, CONTROL_BACKLOG, READS_PER_TURN};

/// A peer reading slowly, answering every Ping it reads with its Pong and
/// our Close with its own.
struct SlowReader {
    received: Vec<u8>,
    frames: Vec<(OpCode, Vec<u8>)>,
}

impl SlowReader {
    fn new() -> Self {
        Self {
            received: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// One virtual second: the clock moves on, the socket takes `rate`
    /// more bytes, the connection's deadlines run, and the peer answers
    /// the Pings it has read by now.
    fn second(&mut self, h: &mut Harness, rate: usize) {
        h.set_now(Instant::from_micros(h.now.as_micros() + 1_000_000));
        h.wire.0.borrow_mut().room = Some(rate);
        h.conn.on_writable(h.now);
        if h.conn.deadline().is_some_and(|at| at <= h.now) {
            h.conn.on_timeout(h.now);
        }
        self.received.extend(h.take_written());
        let mut used = 0;
        while let Ok(Some((header, n))) = FrameHeader::decode(&self.received[used..]) {
            let end = used + n + header.payload_len as usize;
            if end > self.received.len() {
                break;
            }
            let payload = self.received[used + n..end].to_vec();
            used = end;
            let answer = match header.opcode {
                OpCode::Ping => Some(OpCode::Pong),
                OpCode::Close => Some(OpCode::Close),
                _ => None,
            };
            if let (Some(opcode), false) = (answer, h.conn.is_done()) {
                h.peer_sends(&client_frame(opcode, &payload));
            }
            self.frames.push((header.opcode, payload));
        }
        self.received.drain(..used);
    }
}

/// An upgraded connection pinging every 30 s, a Pong due within 10 s,
/// failed after 20 s without write progress; and its handle.
fn heartbeating() -> (Harness, ConnectionHandle) {
    upgraded(
        Config::DEFAULT
            .ping_interval(Some(Duration::from_secs(30)))
            .pong_timeout(Duration::from_secs(10)),
    )
}

/// An upgraded connection with `connection`'s timers, failed after 20 s
/// without write progress; and its handle.
fn upgraded(connection: Config) -> (Harness, ConnectionHandle) {
    let config = ServerConfig::default()
        .connection(connection)
        .write_timeout(Duration::from_secs(20));
    let mut h = Harness::new(config);
    h.upgrade();
    let handle = h.seen_handle();
    (h, handle)
}

#[test]
fn a_slow_reader_behind_a_backlog_is_not_failed_for_a_late_pong() {
    let (mut h, handle) = heartbeating();
    // 4 MiB the peer reads at 64 KiB a second: a minute of backlog, in
    // which the heartbeat's Ping is due twice.
    h.wire.0.borrow_mut().room = Some(0);
    for _ in 0..4 {
        handle.send_binary(&vec![7; 1 << 20]).unwrap();
    }
    h.conn.flush_pushed(h.now);
    let mut peer = SlowReader::new();
    for _ in 0..100 {
        peer.second(&mut h, 64 << 10);
    }
    assert!(!h.conn.is_done(), "{:?}", h.seen.lock().unwrap().closes);
    let data = peer.frames.iter().filter(|f| f.0 == OpCode::Binary).count();
    let pings = peer.frames.iter().filter(|f| f.0 == OpCode::Ping).count();
    assert_eq!(data, 4, "the whole backlog arrived");
    assert!(pings >= 2, "{pings} pings");
    assert!(peer.frames.iter().all(|f| f.0 != OpCode::Close));
}

#[test]
fn our_close_behind_a_backlog_reaches_a_slow_reader() {
    let (mut h, handle) = upgraded(quiet().close_timeout(Duration::from_secs(5)));
    h.wire.0.borrow_mut().room = Some(0);
    handle.send_binary(&vec![7; 2 << 20]).unwrap();
    handle.close(CloseCode::NORMAL, "done").unwrap();
    h.conn.flush_pushed(h.now);
    let mut peer = SlowReader::new();
    for _ in 0..40 {
        peer.second(&mut h, 128 << 10);
    }
    let opcodes: Vec<OpCode> = peer.frames.iter().map(|f| f.0).collect();
    assert_eq!(opcodes, [OpCode::Binary, OpCode::Close]);
    // The peer answered once it read our Close: the handshake completed.
    h.peer_hangs_up();
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::ClosedByUs, "{info}");
}

#[test]
fn a_heartbeat_ping_goes_ahead_of_what_other_threads_pushed_meanwhile() {
    let (mut h, handle) = heartbeating();
    // Pushed from another thread, not yet taken by the loop when the
    // heartbeat is due.
    for _ in 0..4 {
        handle.send_binary(&vec![7; 1 << 20]).unwrap();
    }
    h.wire.0.borrow_mut().room = Some(0);
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(30));
    let mut peer = SlowReader::new();
    for _ in 0..80 {
        peer.second(&mut h, 64 << 10);
    }
    assert!(!h.conn.is_done(), "{:?}", h.seen.lock().unwrap().closes);
    assert_eq!(peer.frames[0].0, OpCode::Ping, "the Ping first");
    let data = peer.frames.iter().filter(|f| f.0 == OpCode::Binary).count();
    assert_eq!(data, 4);
}

#[test]
fn a_pong_behind_a_backlog_left_for_the_next_turn_is_read_before_the_pong_timeout() {
    let (mut h, ping) = Harness::pinged();
    // More than one turn's reads of messages, then the Pong: the turn
    // stops with the Pong still in the socket (other connections go first).
    let mut backlog = Vec::new();
    for _ in 0..2 * READS_PER_TURN {
        backlog.extend(client_frame(OpCode::Binary, &[5; 4000]));
    }
    backlog.extend(client_frame(OpCode::Pong, &ping));
    h.peer_sends(&backlog);
    assert!(h.conn.more_to_read);
    // The loop is slow to come back to it: the pong deadline passes.
    h.set_now(h.now + Duration::from_secs(15));
    h.conn.on_timeout(h.now);
    assert!(!h.conn.is_done());
    let mut frames = h.frames();
    while h.conn.more_to_read {
        h.conn.on_readable(&mut h.rbuf, &h.owner, 0, h.now);
    }
    frames.extend(h.frames());
    assert_eq!(frames.len(), 2 * READS_PER_TURN, "the echoes, no Close");
    assert!(frames.iter().all(|(op, _)| *op == OpCode::Binary));
    // Answered: the next deadline is the next Ping, 30 s after the first.
    assert_eq!(h.advance_to_deadline(), Duration::from_secs(15));
    assert_eq!(h.frames()[0].0, OpCode::Ping);
}

#[test]
fn a_peer_that_pings_without_reading_cannot_grow_our_output() {
    // 20,000 Pings (2.5 MB of Pongs) from a peer that takes nothing: the
    // Pongs wait in the core once 64 KiB waits unsent, the latest only.
    let mut h = Harness::new(
        ServerConfig::default()
            .connection(quiet())
            .read_buffer_size(512 * 1024),
    );
    // Room to read them all in one turn.
    h.rbuf = vec![0; read_buffer_len(512 * 1024)];
    h.upgrade();
    h.wire.0.borrow_mut().room = Some(0);
    let mut pings = Vec::new();
    for i in 0..20_000u32 {
        let mut payload = [b'p'; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        pings.extend(client_frame(OpCode::Ping, &payload));
    }
    h.peer_sends(&pings);
    assert!(h.wire.0.borrow().to_server.is_empty());
    assert!(
        h.conn.write_capacity() <= 2 * CONTROL_BACKLOG,
        "{} bytes of output kept",
        h.conn.write_capacity()
    );
    // The peer reads everything at last: every Pong taken into the output
    // in order, then the one to its latest Ping.
    h.wire.0.borrow_mut().room = None;
    h.conn.on_writable(h.now);
    let pongs = h.frames();
    assert!(pongs.len() < 1_000, "{} pongs", pongs.len());
    assert!(pongs.iter().all(|(op, _)| *op == OpCode::Pong));
    let numbers: Vec<u32> = pongs
        .iter()
        .map(|(_, p)| u32::from_be_bytes(p[..4].try_into().unwrap()))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers.last(), Some(&19_999));
}

/// Echoes; an echo that does not fit waits, with reading paused, until
/// the output drains (as `examples/echo_server.rs`).
struct PatientEcho(Arc<Mutex<Seen>>, Mutex<Option<Vec<u8>>>);

impl Handler for PatientEcho {
    fn on_connect(&self, _conn: &ConnectionHandle) {
        self.0.lock().unwrap().connects += 1;
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let Message::Binary(data) = message else {
            panic!("binary only")
        };
        if let Err(SendError::Full { .. }) = conn.send_binary(data) {
            conn.pause_reading();
            *self.1.lock().unwrap() = Some(data.to_vec());
        }
    }
    fn on_drain(&self, conn: &ConnectionHandle) {
        if let Some(data) = self.1.lock().unwrap().take() {
            conn.send_binary(&data).unwrap();
            conn.resume_reading();
        }
    }
}

#[test]
fn an_echo_paused_on_a_full_output_resumes_once_it_drains_and_loses_nothing() {
    let config = ServerConfig::default()
        .connection(quiet())
        .max_buffered_bytes(8 * 1024);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Arc::new(PatientEcho(Arc::clone(&seen), Mutex::new(None)));
    let mut h = Harness::with_handler(config, seen, handler);
    h.upgrade();
    h.wire.0.borrow_mut().room = Some(0);
    let mut bytes = Vec::new();
    for i in 0..40u8 {
        bytes.extend(client_frame(OpCode::Binary, &[i; 1024]));
    }
    h.peer_sends(&bytes);
    let mut echoes = Vec::new();
    let mut commands = Vec::new();
    for _ in 0..100 {
        h.wire.0.borrow_mut().room = None;
        h.conn.on_writable(h.now);
        h.owner.drain(&mut commands);
        for command in commands.drain(..) {
            match command {
                Command::Resume { .. } => h.conn.resume(&mut h.rbuf, &h.owner, 0, h.now),
                Command::Flush { .. } => h.conn.flush_pushed(h.now),
                _ => {}
            }
        }
        echoes.extend(h.frames());
        if echoes.len() == 40 {
            break;
        }
    }
    let firsts: Vec<u8> = echoes.iter().map(|(_, p)| p[0]).collect();
    assert_eq!(firsts, (0..40).collect::<Vec<u8>>());
}
