//! [`WriteTimeout`](crate::asynch::WriteTimeout) on virtual time: a peer
//! that takes nothing fails the write after the timeout; one that takes
//! bytes slowly does not; an idle read is left alone.

use super::*;
use crate::asynch::{WriteTimeout, WriteTimeoutError};
use crate::DriverError;

/// The one-value driver over [`WriteTimeout`] (1 s) on pipes holding
/// 4 KiB (ours to the peer: 8 KiB), no heartbeat.
macro_rules! bounded_server {
    ($ws:ident, $theirs:ident, $ours:ident, $clock:ident) => {
        let (mut read, mut write, mut message) = (vec![0; 1024], vec![0; 1024], vec![0; 1024]);
        let $theirs = pipe(4096);
        let $ours = pipe(8192);
        let $clock = ManualClock(Rc::new(Cell::new(Instant::from_millis(0))));
        let config = Config::default().ping_interval(None);
        let buffer = SliceBuffer::new(&mut message[..]);
        let conn = Connection::new(
            Role::Server,
            config,
            buffer,
            CounterRng::new(1),
            $clock.now(),
        );
        let io = Duplex(Rx($theirs.clone()), Tx($ours.clone()));
        let io = WriteTimeout::new(io, $clock.clone(), core::time::Duration::from_secs(1));
        let mut $ws = WebSocket::new(io, conn, $clock.clone(), &mut read, 0, &mut write).unwrap();
    };
}

#[test]
fn a_send_to_a_peer_that_takes_nothing_fails_after_the_timeout() {
    bounded_server!(ws, theirs, ours, clock);
    let _ = &theirs;
    let big = vec![7; 20 * 1024];
    let mut sending = pin!(ws.send_binary(&big));
    for ms in [0, 500, 999] {
        clock.0.set(Instant::from_millis(ms));
        assert!(poll(sending.as_mut()).is_pending(), "ended at {ms} ms");
    }
    assert_eq!(ours.borrow().bytes.len(), 8192);
    clock.0.set(Instant::from_millis(1_000));
    let Poll::Ready(Err(e)) = poll(sending.as_mut()) else {
        panic!("the send still waits on a peer that takes nothing");
    };
    assert!(
        matches!(e, DriverError::Io(WriteTimeoutError::TimedOut)),
        "{e:?}"
    );
}

#[test]
fn a_peer_that_takes_bytes_slowly_is_not_failed() {
    bounded_server!(ws, theirs, ours, clock);
    let _ = &theirs;
    // 20 KiB to a peer that takes 1 KiB every 600 ms: each write waits
    // less than the 1 s timeout.
    let big = vec![7; 20 * 1024];
    let mut sending = pin!(ws.send_binary(&big));
    let mut taken = 0;
    let mut ms = 0;
    while poll(sending.as_mut()).is_pending() {
        assert!(ms < 30_000, "the send never ended");
        ms += 600;
        clock.0.set(Instant::from_millis(ms));
        let mut pipe = ours.borrow_mut();
        let n = pipe.bytes.len().min(1024);
        pipe.bytes.drain(..n);
        taken += n;
    }
    assert!(ms > 1_000, "ended at {ms} ms");
    taken += ours.borrow().bytes.len();
    assert_eq!(taken, big.len() + 4);
}

#[test]
fn an_idle_read_is_not_bounded_by_the_write_timeout() {
    bounded_server!(ws, theirs, ours, clock);
    let _ = &ours;
    let mut reading = pin!(ws.read());
    for ms in [0, 1_000, 60_000] {
        clock.0.set(Instant::from_millis(ms));
        assert!(poll(reading.as_mut()).is_pending(), "ended at {ms} ms");
    }
    let mut wire = Vec::new();
    client_frame(OpCode::Text, b"late", &mut wire);
    theirs.borrow_mut().bytes.extend(wire);
    let Poll::Ready(Ok(event)) = poll(reading.as_mut()) else {
        panic!("the message was not read");
    };
    assert!(matches!(event, Event::Text("late")), "{event:?}");
}
