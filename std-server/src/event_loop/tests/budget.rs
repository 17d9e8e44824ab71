//! The server's output budget: what all outboxes hold together (past
//! each one's first 64 KiB). A send to a connection with output waiting
//! is refused once the budget is spent (the other connections' output
//! counts too); an empty outbox still takes a message; what a connection
//! held goes back to the budget as it is written, and at the end. And the memory budget's share for
//! permessage-deflate state.

use super::*;
use crate::deflate::PerMessageDeflate;
use crate::handle::UNCHARGED;

/// An upgraded connection of a server whose outboxes may hold
/// `budget` bytes together; its handle.
fn budgeted(budget: usize) -> (Harness, ConnectionHandle) {
    let config = ServerConfig::default()
        .connection(quiet())
        .output_budget(budget);
    let mut h = Harness::new(config);
    h.upgrade();
    let handle = h.seen_handle();
    (h, handle)
}

#[test]
fn a_send_past_the_budget_is_refused_and_an_empty_outbox_always_takes_one() {
    let (mut h, handle) = budgeted(100_000);
    let budget = Arc::clone(&h.conn_service().output_budget);
    // The peer takes nothing for now.
    h.wire.0.borrow_mut().room = Some(0);
    // A connection's first 64 KiB cost the budget nothing.
    handle.send_binary(&[0; 1_000]).unwrap();
    assert_eq!(budget.used(), 0);
    h.conn.flush_pushed(h.now);
    h.wire.0.borrow_mut().room = None;
    h.conn.flush_pushed(h.now);
    assert_eq!(h.frames().len(), 1);
    h.wire.0.borrow_mut().room = Some(0);
    // Other connections hold 90,000 bytes: this empty outbox still takes
    // a message (past the budget), the next one is refused.
    budget.charge(90_000);
    handle.send_binary(&[1; 70_000]).unwrap();
    let first = 70_010 - UNCHARGED;
    assert_eq!(budget.used(), 90_000 + first);
    assert_eq!(
        handle.send_binary(&[2; 10_000]),
        Err(SendError::OverBudget { budget: 100_000 })
    );
    assert!(handle
        .send_binary(&[2; 10_000])
        .unwrap_err()
        .waits_for_drain());
    // Under the connection's own bound all along: only the budget refused.
    assert_eq!(handle.buffered_amount(), 70_010);
    // The loop takes the frame; still held (unsent), still charged.
    h.conn.flush_pushed(h.now);
    assert_eq!(budget.used(), 90_000 + first);
    // The others' output goes; this one's fits again.
    budget.give(90_000);
    handle.send_binary(&[3; 100]).unwrap();
    assert_eq!(budget.used(), first + 102);
    // Written out: nothing is charged any more.
    h.wire.0.borrow_mut().room = None;
    h.conn.flush_pushed(h.now);
    let frames = h.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], (OpCode::Binary, vec![1; 70_000]));
    assert_eq!(frames[1], (OpCode::Binary, vec![3; 100]));
    assert_eq!(budget.used(), 0);
}

#[test]
fn what_a_connection_held_goes_back_to_the_budget_when_it_ends() {
    let (mut h, handle) = budgeted(1 << 20);
    let budget = Arc::clone(&h.conn_service().output_budget);
    h.wire.0.borrow_mut().room = Some(1_000);
    for _ in 0..10 {
        handle.send_binary(&[7; 50_000]).unwrap();
    }
    h.conn.flush_pushed(h.now);
    // Part written; the rest (and the echo of a message, a control
    // frame) stays charged while it waits.
    h.peer_sends(&client_frame(OpCode::Binary, b"echo me"));
    h.peer_sends(&client_frame(OpCode::Ping, b"ping"));
    assert!(budget.used() > 400_000, "{}", budget.used());
    assert_eq!(budget.used(), handle.buffered_amount() - UNCHARGED);
    // The peer hangs up and reads nothing more: what waits is given up
    // after the write timeout.
    h.wire.0.borrow_mut().room = Some(0);
    h.peer_hangs_up();
    while !h.conn.is_done() {
        h.advance_to_deadline();
    }
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::UnexpectedEof, "{info}");
    assert_eq!(budget.used(), 0);
}

/// [`REQUEST`] offering permessage-deflate.
const DEFLATE_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

/// The answer to [`DEFLATE_REQUEST`] from a server with permessage-deflate
/// and `memory_budget`; the harness and the budget.
fn offered_deflate(memory_budget: usize) -> (Harness, String) {
    let config = ServerConfig::default()
        .connection(quiet())
        .permessage_deflate(PerMessageDeflate::default())
        .memory_budget(memory_budget);
    let mut h = Harness::new(config);
    h.peer_sends(DEFLATE_REQUEST);
    let answer = String::from_utf8(h.take_written()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    (h, answer)
}

#[test]
fn deflate_state_is_charged_to_the_memory_budget_and_freed_when_the_connection_ends() {
    let (mut h, answer) = offered_deflate(1 << 30);
    assert!(answer.contains("permessage-deflate"), "{answer}");
    let budget = Arc::clone(&h.conn_service().budget);
    // Context takeover both ways: the compressor and the inflater.
    assert_eq!(budget.used(), 294_000 + 56_000);
    h.peer_sends(&client_frame(OpCode::Close, &1000u16.to_be_bytes()));
    h.peer_hangs_up();
    assert!(h.conn.is_done());
    // The application keeps a handle past the end: the compressor goes
    // with the budget's charge all the same.
    let kept = h.conn.finish().unwrap();
    assert_eq!(budget.used(), 0);
    let deflate = kept.shared.deflate.as_deref().unwrap();
    assert!(deflate.lock().is_none(), "compressor freed");
    assert_eq!(kept.send_binary(&[7; 4096]), Err(SendError::Closed));
}

#[test]
fn without_room_for_deflate_state_a_connection_is_accepted_without_it() {
    let (mut h, answer) = offered_deflate(300_000);
    assert!(!answer.contains("permessage-deflate"), "{answer}");
    assert_eq!(h.conn_service().budget.used(), 0);
    // Uncompressed, it works as any other.
    h.peer_sends(&client_frame(OpCode::Binary, b"plain"));
    assert_eq!(h.frames(), [(OpCode::Binary, b"plain".to_vec())]);
}
