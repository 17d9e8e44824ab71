//! Graceful shutdown.

use super::*;

#[test]
fn graceful_shutdown_closes_everyone_with_1001_and_joins_every_thread() {
    bounded(30, || {
        let identity = tls::identity();
        for tls_on in [false, true] {
            let mut config = ServerConfig::default().shutdown_timeout(Duration::from_millis(500));
            if tls_on {
                config = config.tls(identity.server_config());
            }
            let (server, events) = start(config, None);
            let port = server.local_addr().port();
            let mut readers = Vec::new();
            for _ in 0..3 {
                let (tx, rx) = mpsc::channel();
                let mut client = match tls_on {
                    false => client::connect(&url(&server, false), ClientConfig::default()),
                    true => client::connect(
                        &url(&server, true),
                        ClientConfig::default().add_root_der(identity.cert_der.to_vec()),
                    ),
                }
                .unwrap();
                readers.push(thread::spawn(move || {
                    tx.send(()).unwrap();
                    client.read_message().map(|m| m.is_none())
                }));
                rx.recv().unwrap();
                events.connection();
            }
            // One that never reads nor answers: its socket is closed after
            // the shutdown timeout.
            let _deaf = (!tls_on).then(|| Raw::connect(server.local_addr()));
            if !tls_on {
                events.connection();
            }
            assert_eq!(
                server_threads(port),
                server.event_loops(),
                "the loops' threads, however many connections"
            );
            let started = Instant::now();
            server.shutdown();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(
                server_threads_after_join(port),
                0,
                "every server thread joined"
            );
            let mut causes = Vec::new();
            while let Ok((_, info)) = events.closed.try_recv() {
                assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
                causes.push(info.cause);
            }
            let expected = if tls_on { 3 } else { 4 };
            assert_eq!(
                causes.len(),
                expected,
                "on_close ran for everyone before shutdown returned"
            );
            assert!(
                causes.iter().all(|c| *c == CloseCause::ServerShutdown),
                "{causes:?}"
            );
            for reader in readers {
                // Our client sees the server's 1001 as a clean close.
                assert!(matches!(reader.join().unwrap(), Ok(true)));
            }
        }
    });
}

#[test]
fn dropping_the_handle_also_shuts_down() {
    bounded(20, || {
        // The client reads only after the drop, so its answer to the Close
        // comes late: a short shutdown timeout keeps the test quick.
        let config = ServerConfig::default().shutdown_timeout(Duration::from_millis(300));
        let (server, _events) = start(config, None);
        let port = server.local_addr().port();
        let mut ws = tung_ws(&server);
        drop(server);
        assert_eq!(server_threads_after_join(port), 0);
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
    });
}
