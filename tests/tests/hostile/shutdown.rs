//! 8. Graceful shutdown with peers that stopped reading.

use super::*;

/// A shutdown with three peers: one that stopped reading with room left in
/// its buffers (it still gets its 1001), one that stopped reading with
/// everything full (it cannot), one that answers (tungstenite). The
/// shutdown returns within `shutdown_timeout` + 1.5 s, `on_close` ran
/// exactly once per connection (ServerShutdown, 1001), and every thread is
/// joined.
#[test]
fn graceful_shutdown_with_peers_that_stopped_reading() {
    bounded(30, || {
        let shutdown_timeout = Duration::from_millis(500);
        let config = ServerConfig::default()
            .connection(NO_PINGS)
            .write_timeout(Duration::from_secs(60))
            .shutdown_timeout(shutdown_timeout)
            .max_buffered_bytes(256 << 10);
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        // Stopped reading after one message: room for the Close.
        let mut roomy = Raw::connect(server.local_addr());
        roomy.send(&client_frame(true, OpCode::Text, b"hi"));
        assert_eq!(roomy.frame(), Some((OpCode::Text, b"hi".to_vec())));
        let roomy_id = events.connection().id();
        // Stopped reading with its outbox full.
        let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
        let full = Raw::upgrade(sock);
        let full_conn = events.connection();
        let chunk = vec![2u8; 32 << 10];
        let filled = (0..1000).find_map(|_| full_conn.send_binary(&chunk).err());
        assert!(matches!(filled, Some(SendError::Full { .. })), "{filled:?}");
        // Answers.
        let mut polite = tung_ws(&server);
        let polite_id = events.connection().id();
        let polite = thread::spawn(move || match polite.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                let code = u16::from(frame.code);
                // tungstenite answers on its next call.
                assert!(matches!(
                    polite.read(),
                    Err(tungstenite::Error::ConnectionClosed)
                ));
                code
            }
            other => panic!("expected Close 1001, got {other:?}"),
        });

        let started = Instant::now();
        server.shutdown();
        let took = started.elapsed();
        assert!(
            took < shutdown_timeout + Duration::from_millis(1500),
            "shutdown took {took:?}"
        );
        assert_eq!(server_threads_after_join(port), 0);

        let mut closes: Vec<(u64, snowsocket_server::CloseInfo)> =
            events.closed.try_iter().collect();
        assert!(
            events
                .closed
                .recv_timeout(Duration::from_millis(100))
                .is_err(),
            "no on_close after shutdown returned"
        );
        closes.sort_by_key(|(id, _)| *id);
        let mut ids: Vec<u64> = closes.iter().map(|(id, _)| *id).collect();
        let mut expected = vec![roomy_id, full_conn.id(), polite_id];
        expected.sort_unstable();
        ids.dedup();
        assert_eq!(ids, expected, "on_close once per connection: {closes:?}");
        assert_eq!(closes.len(), 3, "{closes:?}");
        for (_, info) in &closes {
            assert_eq!(info.cause, CloseCause::ServerShutdown, "{info:?}");
            assert_eq!(info.code, Some(CloseCode::GOING_AWAY), "{info:?}");
        }
        assert_eq!(polite.join().unwrap(), 1001);
        // The roomy one reads its Close now.
        assert_eq!(roomy.close_code(), Some(1001));
        assert_eq!(full_conn.send_text("after"), Err(SendError::Closed));
        drop(full);
    });
}
