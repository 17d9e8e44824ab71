//! A turn's replies written together (`Conn::holds_output`): in fewer
//! writes, and never held past a short read, EOF, a pause, the turn's
//! end, 1 MiB, a quarter of the send bound or 1 ms.

use super::*;
use crate::event_loop::conn::{read_buffer_len, READS_PER_TURN, WRITE_BATCH};

/// `count` masked binary frames of `size` bytes, the `i`th filled with `i`.
fn numbered_frames(count: usize, size: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| client_frame(OpCode::Binary, &vec![i as u8; size]))
        .collect()
}

#[test]
fn replies_to_a_turns_reads_go_out_in_one_write() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    // Three reads of the 4 KiB read buffer, the last one short.
    h.peer_sends(&numbered_frames(10, 1_000));
    let frames = h.frames();
    assert_eq!(frames.len(), 10);
    for (i, (opcode, payload)) in frames.iter().enumerate() {
        assert_eq!((*opcode, payload.len()), (OpCode::Binary, 1_000));
        assert!(payload.iter().all(|&b| b == i as u8), "echo {i} in order");
    }
    assert_eq!(h.wire.0.borrow().writes.len(), 1, "one write for the turn");
}

#[test]
fn a_turn_that_runs_out_of_reads_writes_its_replies_before_it_ends() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    // More than a turn reads: the turn stops with input left, and what it
    // read has been answered.
    let input = numbered_frames(3 * READS_PER_TURN, 2_000);
    h.peer_sends(&input);
    assert!(!h.wire.0.borrow().to_server.is_empty(), "input left");
    let echoed = h.frames().len();
    assert!(echoed >= 2 * READS_PER_TURN - 1, "{echoed} echoes");
    assert_eq!(h.wire.0.borrow().writes.len(), 1);
    h.conn.on_readable(&mut h.rbuf, &h.owner, 0, h.now);
    assert_eq!(echoed + h.frames().len(), 3 * READS_PER_TURN);
}

#[test]
fn replies_held_for_the_next_read_are_written_before_the_peers_eof_ends_it() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    h.wire.0.borrow_mut().peer_closed = true;
    // Two full reads (4 KiB frames), then the EOF.
    let input = numbered_frames(2, 4_088);
    assert_eq!(input.len(), 2 * h.rbuf.len());
    h.peer_sends(&input);
    assert_eq!(h.frames().len(), 2, "every echo written");
    assert_eq!(h.finish().cause, CloseCause::UnexpectedEof);
}

/// [`Echo`], pausing reading after echoing `b"pause"`.
struct EchoPausingOnCue(Echo);

impl Handler for EchoPausingOnCue {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let cue = matches!(message, Message::Binary(b"pause"));
        self.0.on_message(conn, message);
        if cue {
            conn.pause_reading();
        }
    }
}

#[test]
fn replies_held_for_the_next_read_are_written_when_the_handler_pauses_reading() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Arc::new(EchoPausingOnCue(Echo(Arc::clone(&seen))));
    let config = ServerConfig::default().connection(quiet());
    let mut h = Harness::with_handler(config, Arc::clone(&seen), handler);
    h.peer_sends(REQUEST);
    assert!(h.take_written().starts_with(b"HTTP/1.1 101"));
    // Two full reads of the 4 KiB read buffer: the first one's echo is
    // held for the next read, which brings the cue.
    let mut input = client_frame(OpCode::Binary, &[1; 4_088]);
    input.extend(client_frame(OpCode::Binary, b"pause"));
    input.extend(client_frame(OpCode::Binary, &[2; 4_077]));
    assert_eq!(input.len(), 2 * h.rbuf.len());
    h.peer_sends(&input);
    assert_eq!(
        h.frames(),
        [
            (OpCode::Binary, vec![1; 4_088]),
            (OpCode::Binary, b"pause".to_vec())
        ]
    );
    assert_eq!(
        seen.lock().unwrap().messages.len(),
        2,
        "paused after the cue"
    );
}

#[test]
fn a_large_turn_is_written_every_write_batch_bytes() {
    let mut h = Harness::new(
        ServerConfig::default()
            .connection(quiet())
            .read_buffer_size(512 * 1024),
    );
    h.rbuf = vec![0; read_buffer_len(512 * 1024)];
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    let size = 64 * 1024;
    let count = 3 * WRITE_BATCH / size;
    h.peer_sends(&numbered_frames(count, size));
    assert_eq!(h.frames().len(), count);
    let writes = h.wire.0.borrow().writes.clone();
    assert!(writes.len() > 1, "{writes:?}");
    let (last, rest) = writes.split_last().unwrap();
    assert!(rest.iter().all(|&w| w >= WRITE_BATCH), "{writes:?}");
    assert!(*last <= WRITE_BATCH + 512 * 1024, "{writes:?}");
}

#[test]
fn held_replies_stay_under_a_quarter_of_the_send_bound() {
    let config = ServerConfig::default()
        .connection(quiet())
        .max_buffered_bytes(8 * 1024);
    let mut h = Harness::new(config);
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    // Four full 4 KiB reads: each one's reply (4 KiB) passes the 2 KiB a
    // small bound lets a turn hold, so each is written at once.
    h.peer_sends(&numbered_frames(4, 4_088));
    assert_eq!(h.frames().len(), 4);
    let writes = h.wire.0.borrow().writes.clone();
    assert_eq!(writes.len(), 4, "{writes:?}");
}

#[test]
fn slow_callbacks_get_their_replies_written_read_by_read() {
    // Each message takes the handler 20 s: the replies to the first read
    // are not held for the second.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let handler = Arc::new(SlowEcho(Arc::clone(&seen)));
    let mut h = Harness::with_handler(ServerConfig::default().connection(quiet()), seen, handler);
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    h.peer_sends(&numbered_frames(2, 4_088));
    assert_eq!(h.frames().len(), 2);
    assert_eq!(h.wire.0.borrow().writes.len(), 2);
}

#[test]
fn a_peer_that_always_leaves_some_unread_does_not_grow_the_write_buffer() {
    // Each round the peer takes 1,000 bytes of what waits, and the
    // application sends as much again: the output never empties, and
    // what was written must not pile up in front of what was not.
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    let handle = h.seen_handle();
    h.wire.0.borrow_mut().room = Some(1_000);
    handle.send_binary(&[7; 2_996]).unwrap();
    h.conn.flush(h.now);
    for _ in 0..1_000 {
        assert_eq!(handle.buffered_amount(), 2_000);
        h.wire.0.borrow_mut().room = Some(1_000);
        h.conn.on_writable(h.now);
        handle.send_binary(&[7; 996]).unwrap();
        h.conn.flush(h.now);
    }
    assert_eq!(h.take_written().len(), 1_001_000);
    assert!(
        h.conn.write_capacity() <= 8_000,
        "{}",
        h.conn.write_capacity()
    );
}
