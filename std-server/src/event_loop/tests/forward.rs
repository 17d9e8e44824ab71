//! Payloads left where they were read (`crate::forward`): what the peer
//! gets is what the handler sent, in order, however the socket takes it.

use super::*;
use crate::event_loop::conn::{read_buffer_len, READS_PER_TURN};
use crate::forward;

/// Reads of this size hold three messages or so and split some.
const READ: usize = 64 * 1024;

/// Message `i`: about 20 KB (over `forward::MIN`), bytes of its own,
/// starting with `i`.
fn message(i: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..20_000 + 7 * i)
        .map(|j| (j * 7 + i * 13) as u8)
        .collect();
    m[0] = i as u8;
    m
}

/// Echoes each message; after one starting with an odd byte, also sends
/// its tail (a part of it, as large) and a small text.
struct Relay(Arc<Mutex<Seen>>);

impl Handler for Relay {
    fn on_connect(&self, _conn: &ConnectionHandle) {
        self.0.lock().unwrap().connects += 1;
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let Message::Binary(bytes) = message else {
            return;
        };
        conn.send_binary(bytes).unwrap();
        if bytes[0] % 2 == 1 {
            conn.send_binary(&bytes[1..]).unwrap();
            conn.send_text("odd").unwrap();
        }
    }
}

/// Asserts that `frames` are `answer`, saying where they part if not.
/// Pongs may come later than in `answer` (after the replies that waited
/// before them), not earlier; returns how many came (behind a backlog,
/// only the latest Ping's is kept: RFC 6455 §5.5.3).
fn assert_frames(frames: &[(OpCode, Vec<u8>)], answer: &[(OpCode, Vec<u8>)]) -> usize {
    let data = |f: &[(OpCode, Vec<u8>)]| -> Vec<(OpCode, Vec<u8>)> {
        f.iter()
            .filter(|(op, _)| *op != OpCode::Pong)
            .cloned()
            .collect()
    };
    let (got, want) = (data(frames), data(answer));
    let brief = |f: Option<&(OpCode, Vec<u8>)>| {
        f.map(|(op, p)| (*op, p.len(), p.get(..4).map(<[u8]>::to_vec)))
    };
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "data frame {i} of {} (of {} expected): {:?}, expected {:?}",
            got.len(),
            want.len(),
            brief(got.get(i)),
            brief(want.get(i))
        );
    }
    // Each Pong after the replies to everything before its Ping.
    let mut pongs = 0;
    for (at, (op, payload)) in frames.iter().enumerate() {
        if *op == OpCode::Pong {
            let before = answer.iter().position(|f| f == &frames[at]).unwrap();
            let replies = answer[..before]
                .iter()
                .filter(|(op, _)| *op != OpCode::Pong)
                .count();
            let sent = frames[..at]
                .iter()
                .filter(|(op, _)| *op != OpCode::Pong)
                .count();
            assert!(sent >= replies, "Pong {payload:?} too early");
            pongs += 1;
        }
    }
    let last = answer.iter().rev().find(|(op, _)| *op == OpCode::Pong);
    assert!(
        last.is_none_or(|pong| frames.contains(pong)),
        "the last Ping answered"
    );
    pongs
}

fn relay() -> Harness {
    let config = ServerConfig::default()
        .connection(quiet())
        .read_buffer_size(READ);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut h = Harness::with_handler(config, Arc::clone(&seen), Arc::new(Relay(seen)));
    h.rbuf = vec![0; read_buffer_len(READ)];
    h.upgrade();
    h.wire.0.borrow_mut().writes.clear();
    h
}

/// `count` messages with a Ping after every fifth; and the frames the
/// relay answers with.
fn exchange(count: usize) -> (Vec<u8>, Vec<(OpCode, Vec<u8>)>) {
    let (mut input, mut answer) = (Vec::new(), Vec::new());
    for i in 0..count {
        let m = message(i);
        input.extend(client_frame(OpCode::Binary, &m));
        answer.push((OpCode::Binary, m.clone()));
        if i % 2 == 1 {
            answer.push((OpCode::Binary, m[1..].to_vec()));
            answer.push((OpCode::Text, b"odd".to_vec()));
        }
        if i % 5 == 4 {
            input.extend(client_frame(OpCode::Ping, &[i as u8]));
            answer.push((OpCode::Pong, vec![i as u8]));
        }
    }
    (input, answer)
}

#[test]
fn payloads_left_in_the_read_buffer_go_out_whole_and_in_order() {
    let mut h = relay();
    let before = forward::noted();
    let (input, answer) = exchange(40);
    h.wire.0.borrow_mut().to_server.extend(&input);
    for _ in 0..10 {
        h.conn.on_readable(&mut h.rbuf, &h.owner, 0, h.now);
    }
    assert!(h.wire.0.borrow().to_server.is_empty());
    let pongs = assert_frames(&h.frames(), &answer);
    assert_eq!(pongs, 8, "every Ping answered");
    assert!(
        forward::noted() > before + 40,
        "payloads were left in place"
    );
    // Replies held across reads went out together, their payloads read
    // into the buffer past each other.
    let writes = h.wire.0.borrow().writes.clone();
    assert!(writes.iter().any(|&w| w > 2 * READ), "{writes:?}");
}

#[test]
fn what_the_socket_does_not_take_is_kept_in_order() {
    let mut h = relay();
    let before = forward::noted();
    let (input, answer) = exchange(40);
    h.wire.0.borrow_mut().to_server.extend(&input);
    h.wire.0.borrow_mut().room = Some(5_000);
    let mut written = Vec::new();
    for _ in 0..1_000 {
        h.conn.on_readable(&mut h.rbuf, &h.owner, 0, h.now);
        written.extend(h.take_written());
        let wire = h.wire.0.borrow();
        if wire.to_server.is_empty() && written.len() >= answer.len() * 20_000 {
            drop(wire);
            // The rest, as the socket takes it.
            h.wire.0.borrow_mut().room = None;
            h.conn.on_writable(h.now);
            written.extend(h.take_written());
            break;
        }
        drop(wire);
        // A little more room each time, less than a turn reads.
        h.wire.0.borrow_mut().room = Some(30_000);
        h.conn.on_writable(h.now);
        written.extend(h.take_written());
    }
    h.wire.0.borrow_mut().to_peer = written;
    assert!(assert_frames(&h.frames(), &answer) >= 1);
    assert!(forward::noted() > before, "payloads were left in place");
}

#[test]
fn replies_left_in_place_go_before_the_close_of_a_later_failure() {
    let mut h = relay();
    let before = forward::noted();
    let mut input = Vec::new();
    for i in [0, 2, 4] {
        input.extend(client_frame(OpCode::Binary, &message(i)));
    }
    // A reserved opcode: a protocol error (1002).
    let mut bad = client_frame(OpCode::Binary, b"x");
    bad[0] = 0x83;
    input.extend(bad);
    assert!(input.len() < READ * READS_PER_TURN);
    h.peer_sends(&input);
    let frames = h.frames();
    let echoes: Vec<_> = [0, 2, 4]
        .map(|i| (OpCode::Binary, message(i)))
        .into_iter()
        .collect();
    assert_eq!(frames[..3], echoes[..]);
    assert_eq!(frames[3].0, OpCode::Close);
    assert_eq!(frames[3].1[..2], 1002u16.to_be_bytes());
    assert_eq!(frames.len(), 4);
    assert_eq!(forward::noted(), before + 3);
}
