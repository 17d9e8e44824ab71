//! 6. A slow peer never stalls senders or others.

use super::*;

/// A peer that reads nothing, and 5 healthy tungstenite readers: sends to
/// the slow one from another thread return at once (`Ok` or `Full`, never
/// blocking); each of 20 broadcasts reaches every healthy reader within a
/// second and reports the slow one in `full`; once the slow peer reads
/// again, `on_drain` runs for it and its `buffered_amount` is back to 0.
///
/// An engine whose sends write before they return blocks the sender (and
/// a broadcast behind it) for up to the write timeout.
#[test]
fn a_slow_peer_never_stalls_senders_or_other_connections() {
    bounded(30, || {
        let config = ServerConfig::default()
            .connection(NO_PINGS)
            .write_timeout(Duration::from_secs(60))
            .max_buffered_bytes(256 << 10);
        let (server, events) = start(config, None);
        let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
        let mut slow = Raw::upgrade(sock);
        let slow_conn = events.connection();
        let (got_tx, got) = mpsc::channel();
        let readers: Vec<_> = (0..5)
            .map(|i| {
                let mut ws = tung_ws(&server);
                events.connection();
                let got_tx = got_tx.clone();
                thread::spawn(move || {
                    for _ in 0..20 {
                        let message = ws.read().unwrap().into_data();
                        got_tx.send((i, message[0], Instant::now())).unwrap();
                    }
                    close_tungstenite(&mut ws);
                })
            })
            .collect();

        // Fill the slow peer's outbox from another thread: one message far
        // larger than the kernel's send buffer can take (4 MiB at most; a
        // message larger than the bound goes into an empty outbox), then
        // sends that find it full. Each returns at once.
        let filler_conn = slow_conn.clone();
        let filler = thread::spawn(move || {
            let t = Instant::now();
            filler_conn.send_binary(&vec![1u8; 16 << 20]).unwrap();
            let mut slowest = t.elapsed();
            for _ in 0..100 {
                let t = Instant::now();
                let result = filler_conn.send_binary(&[1u8; 100]);
                slowest = slowest.max(t.elapsed());
                assert!(matches!(result, Err(SendError::Full { .. })), "{result:?}");
            }
            slowest
        });
        let slowest = filler.join().unwrap();
        assert!(slowest < SENDS_RETURN_WITHIN, "a send waited {slowest:?}");

        let mut message = vec![0u8; 32 << 10];
        for n in 0..20u8 {
            message[0] = n;
            let sent = Instant::now();
            let report = server.broadcast(Message::Binary(&message));
            let took = sent.elapsed();
            assert!(took < SENDS_RETURN_WITHIN, "broadcast {n} took {took:?}");
            assert_eq!(report.full, [slow_conn.id()], "broadcast {n}: {report:?}");
            assert_eq!(report.sent, 5, "broadcast {n}: {report:?}");
            for _ in 0..5 {
                let (i, first, at) = got
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_else(|e| panic!("broadcast {n} not delivered to all: {e}"));
                assert_eq!(first, n, "reader {i}: in order");
                assert!(
                    at - sent < Duration::from_secs(1),
                    "reader {i} got {n} late"
                );
            }
        }
        for reader in readers {
            reader.join().unwrap();
        }
        assert!(slow_conn.buffered_amount() > 0);

        // The slow peer reads again: on_drain, and nothing buffered.
        assert!(
            events.drained.try_recv().is_err(),
            "on_drain before the peer read"
        );
        slow.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let drainer = thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(1..) = slow.stream.read(&mut buf) {}
            slow
        });
        let drained = events.drained.recv_timeout(WAIT).expect("on_drain");
        assert_eq!(drained, slow_conn.id());
        assert_eq!(slow_conn.buffered_amount(), 0);
        let slow = drainer.join().unwrap();
        assert!(slow_conn.is_open());
        slow_conn.send_text("after").unwrap();
        drop(slow);
        server.shutdown();
    });
}
