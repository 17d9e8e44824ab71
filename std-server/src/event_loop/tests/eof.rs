//! The peer's EOF without a Close: noticed in the turn that reads the
//! data before it, and the end waits for what was sent before it to be
//! written (a peer that only shut its write side reads on).

use super::*;

/// The peer sends `bytes` and shuts its write side; the poller reports
/// both at once (`is_read_closed`, as epoll's `EPOLLRDHUP`).
fn peer_sends_and_shuts(h: &mut Harness, bytes: &[u8]) {
    let mut wire = h.wire.0.borrow_mut();
    wire.to_server.extend(bytes);
    wire.peer_closed = true;
    drop(wire);
    h.conn.read_closed = true;
    h.conn.on_readable(&mut h.rbuf, &h.owner, 0, h.now);
}

#[test]
fn a_message_and_the_peers_eof_in_one_readiness_event_end_the_connection_then() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    // One short read brings the message; no further event will come for
    // the EOF behind it.
    peer_sends_and_shuts(&mut h, &client_frame(OpCode::Text, b"last words"));
    assert_eq!(h.seen.lock().unwrap().messages, [b"last words".to_vec()]);
    assert_eq!(h.frames(), [(OpCode::Binary, b"last words".to_vec())]);
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::UnexpectedEof);
}

#[test]
fn what_was_sent_before_the_peers_eof_still_goes_out() {
    let mut h = Harness::new(ServerConfig::default().connection(quiet()));
    h.upgrade();
    // The peer sends three messages and shuts its write side, and reads
    // nothing yet: the echoes wait.
    h.wire.0.borrow_mut().room = Some(0);
    let mut bytes = Vec::new();
    for payload in [&b"one"[..], b"two", b"three"] {
        bytes.extend(client_frame(OpCode::Binary, payload));
    }
    peer_sends_and_shuts(&mut h, &bytes);
    assert!(!h.conn.is_done(), "ended with three echoes unsent");
    // It reads them all; then the connection ends.
    h.wire.0.borrow_mut().room = None;
    h.conn.on_writable(h.now);
    assert_eq!(
        h.frames(),
        [
            (OpCode::Binary, b"one".to_vec()),
            (OpCode::Binary, b"two".to_vec()),
            (OpCode::Binary, b"three".to_vec()),
        ]
    );
    let info = h.finish();
    assert_eq!(info.cause, CloseCause::UnexpectedEof);
}
