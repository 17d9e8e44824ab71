//! Protocol rules through the server: fragments, limits, UTF-8, close codes, heartbeats, write timeout.

use super::*;

#[test]
fn fragmented_message_with_interleaved_pings() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        let word = "Hello, wörld".as_bytes();
        // "ö" is split across the second and third fragments.
        let mut bytes = client_frame(false, OpCode::Text, &word[..3]);
        bytes.extend(client_frame(true, OpCode::Ping, b"p1"));
        bytes.extend(client_frame(false, OpCode::Continuation, &word[3..9]));
        bytes.extend(client_frame(true, OpCode::Ping, b"p2"));
        bytes.extend(client_frame(true, OpCode::Continuation, &word[9..]));
        raw.send(&bytes);
        assert_eq!(raw.frame(), Some((OpCode::Pong, b"p1".to_vec())));
        assert_eq!(raw.frame(), Some((OpCode::Pong, b"p2".to_vec())));
        assert_eq!(raw.frame(), Some((OpCode::Text, word.to_vec())));
        raw.close_normally();
        assert!(raw.at_eof());
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

#[test]
fn message_over_16_mib_is_closed_with_1009_and_others_keep_working() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut other = tung_ws(&server);
        let mut raw = Raw::connect(server.local_addr());
        // A header declaring 16 MiB + 1: refused before any byte of it.
        let mut head = snowsocket_tests::header(true, 0, 2, Some([1, 2, 3, 4]), (16 << 20) + 1);
        head.extend_from_slice(&[0; 16]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1009));
        let (_, info) = events.close();
        assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG));
        assert!(
            matches!(info.cause, CloseCause::ProtocolError(_)),
            "{info:?}"
        );
        // Fragments adding up to more than 16 MiB: 1009 too.
        let mut raw = Raw::connect(server.local_addr());
        let half = vec![0u8; 8 << 20];
        raw.send(&client_frame(false, OpCode::Binary, &half));
        raw.send(&client_frame(false, OpCode::Continuation, &half));
        raw.send(&client_frame(true, OpCode::Continuation, b"x"));
        assert_eq!(raw.close_code(), Some(1009));
        assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        echo_round_trips(&mut other, &[10]);
        close_tungstenite(&mut other);
        server.shutdown();
    });
}

#[test]
fn messages_arriving_in_pieces_are_echoed_whole() {
    bounded(30, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        raw.stream.set_nodelay(true).unwrap();
        // Binary messages the reader waits for whole (up to 128 KiB), one
        // it streams (larger), text (always streamed), tiny ones between.
        let messages = [
            (OpCode::Binary, payload(100_000)),
            (OpCode::Binary, payload(3)),
            (OpCode::Binary, payload(65_536)),
            (OpCode::Text, text(70_000).into_bytes()),
            (OpCode::Binary, payload(200_000)),
            (OpCode::Binary, payload(0)),
            (OpCode::Binary, payload(131_072)),
        ];
        let mut bytes = Vec::new();
        for (op, data) in &messages {
            bytes.extend(client_frame(true, *op, data));
        }
        // Odd-sized pieces, so that headers and payloads are cut anywhere.
        for piece in bytes.chunks(7_001) {
            raw.send(piece);
        }
        for (op, data) in &messages {
            let (got_op, got) = raw.frame().unwrap();
            assert_eq!((got_op, got.len()), (*op, data.len()));
            assert!(got == *data, "payload of {} bytes differs", data.len());
        }
        raw.close_normally();
        events.close();
        server.shutdown();
    });
}

#[test]
fn large_echoes_to_a_slow_reader_arrive_whole_and_in_order() {
    bounded(60, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        let mut writer = raw.stream.try_clone().unwrap();
        // 150 messages of 8 KiB (from where the server writes an echo from
        // its read buffer) to 148 KiB, about 11 MB (under the 16 MiB send
        // bound), each of its own bytes; a Ping now and then.
        let messages: Vec<Vec<u8>> = (0..150)
            .map(|i: usize| {
                let len = 8_192 + (i * 37_813) % 140_000;
                (0..len).map(|j| (j * 31 + i * 7) as u8).collect()
            })
            .collect();
        let sent = messages.clone();
        let writing = thread::spawn(move || {
            for (i, m) in sent.iter().enumerate() {
                writer
                    .write_all(&client_frame(true, OpCode::Binary, m))
                    .unwrap();
                if i % 37 == 36 {
                    writer
                        .write_all(&client_frame(true, OpCode::Ping, b"p"))
                        .unwrap();
                }
            }
        });
        // Nothing is read until everything is sent: the server's socket
        // fills, its writes come back short, and the rest of its echoes
        // wait (copied) for the reader.
        writing.join().unwrap();
        for (i, m) in messages.iter().enumerate() {
            let (op, got) = loop {
                let frame = raw.frame().unwrap();
                if frame.0 != OpCode::Pong {
                    break frame;
                }
            };
            assert_eq!(op, OpCode::Binary);
            assert!(got == *m, "echo {i} ({} bytes) differs", m.len());
        }
        raw.close_normally();
        events.close();
        server.shutdown();
    });
}

#[test]
fn a_bad_binary_frame_fails_before_its_payload_arrives() {
    bounded(20, || {
        let config = ServerConfig::default().connection(Config::DEFAULT.max_message_size(1000));
        let (server, events) = start(config, None);
        // Unmasked: 1002 on the header, without waiting for the payload.
        let mut raw = Raw::connect(server.local_addr());
        let mut head = snowsocket_tests::header(true, 0, 2, None, 500);
        head.extend_from_slice(&[0; 10]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1002));
        assert_eq!(events.close().1.code, Some(CloseCode::PROTOCOL_ERROR));
        // Over the message size limit: 1009, likewise.
        let mut raw = Raw::connect(server.local_addr());
        let mut head = snowsocket_tests::header(true, 0, 2, Some([1, 2, 3, 4]), 2000);
        head.extend_from_slice(&[0; 10]);
        raw.send(&head);
        assert_eq!(raw.close_code(), Some(1009));
        assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        server.shutdown();
    });
}

#[test]
fn invalid_utf8_split_across_fragments_is_1007() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut raw = Raw::connect(server.local_addr());
        // E2 82 starts a 3-byte sequence; 28 cannot continue it.
        raw.send(&client_frame(false, OpCode::Text, b"ok \xE2\x82"));
        raw.send(&client_frame(true, OpCode::Continuation, b"\x28 rest"));
        assert_eq!(raw.close_code(), Some(1007));
        assert!(raw.at_eof());
        assert_eq!(events.close().1.code, Some(CloseCode::INVALID_PAYLOAD));
        server.shutdown();
    });
}

#[test]
fn invalid_close_codes_are_1002() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        for code in [1005u16, 999, 1016, 2999] {
            let mut raw = Raw::connect(server.local_addr());
            raw.send(&client_frame(
                true,
                OpCode::Close,
                &close_payload(code, b""),
            ));
            assert_eq!(raw.close_code(), Some(1002), "close code {code}");
            // The server shut its side after its Close; it lingers until
            // we hang up (on_close runs when the socket is gone).
            assert!(raw.at_eof());
            drop(raw);
            assert_eq!(events.close().1.code, Some(CloseCode::PROTOCOL_ERROR));
        }
        // A one-byte close payload too.
        let mut raw = Raw::connect(server.local_addr());
        raw.send(&client_frame(true, OpCode::Close, &[3]));
        assert_eq!(raw.close_code(), Some(1002));
        events.close();
        server.shutdown();
    });
}

#[test]
fn silent_client_is_dropped_after_ping_interval_plus_pong_timeout() {
    bounded(20, || {
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(200)))
            .pong_timeout(Duration::from_millis(300));
        let (server, events) = start(ServerConfig::default().connection(connection), None);
        let started = Instant::now();
        let mut raw = Raw::connect(server.local_addr());
        // Never answer: the server pings, waits, then fails with 1001.
        assert_eq!(raw.frame().map(|f| f.0), Some(OpCode::Ping));
        assert_eq!(raw.close_code(), Some(1001));
        let elapsed = started.elapsed();
        assert!(raw.at_eof());
        drop(raw);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PongTimeout);
        assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
        assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        server.shutdown();
    });
}

#[test]
fn answering_client_stays_connected_through_heartbeats() {
    bounded(20, || {
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_secs(1));
        let (server, events) = start(ServerConfig::default().connection(connection), None);
        let mut client = client::connect(&url(&server, false), ClientConfig::default()).unwrap();
        let sender = client.sender();
        let conn = events.connection();
        // Our client answers pings while it blocks in read_message; the
        // server sends a message after 2.5 s, many heartbeats later (a
        // client that did not answer would be gone after 1.1 s).
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            let got = client.read_message().unwrap().map(|m| format!("{m:?}"));
            tx.send(()).unwrap();
            (got, client)
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(2500)).is_err(),
            "nothing arrives by itself"
        );
        conn.send_text("still here").unwrap();
        let (got, _client) = reader.join().unwrap();
        assert_eq!(got.as_deref(), Some("Text(\"still here\")"));
        assert!(conn.is_open());
        sender.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

#[test]
fn client_that_stops_reading_fails_with_write_timeout_only_itself() {
    bounded(30, || {
        let config = ServerConfig::default().write_timeout(Duration::from_millis(300));
        let (server, events) = start(config, None);
        let _silent = Raw::connect(server.local_addr());
        let slow = events.connection();
        let mut other = tung_ws(&server);
        events.connection();
        // Sends never wait: the outbox fills up and says so.
        let chunk = vec![7u8; 1 << 20];
        let mut result = Ok(());
        let mut slowest = Duration::ZERO;
        for _ in 0..256 {
            let t = Instant::now();
            result = slow.send_binary(&chunk);
            slowest = slowest.max(t.elapsed());
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err(SendError::Full { .. } | SendError::Closed)),
            "{result:?}"
        );
        assert!(
            slowest < Duration::from_millis(500),
            "a send waited {slowest:?}"
        );
        let started = Instant::now();
        let (id, info) = events.close();
        // Failed within the write timeout (+ 1 s) of the stall.
        assert!(
            started.elapsed() < Duration::from_millis(1300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(id, slow.id());
        assert_eq!(info.cause, CloseCause::WriteTimeout);
        assert_eq!(slow.send_text("after"), Err(SendError::Closed));
        echo_round_trips(&mut other, &[100, 70_000]);
        close_tungstenite(&mut other);
        server.shutdown();
    });
}

/// A client that sends its last message and shuts its write side at once
/// (no Close): the message is echoed and the connection ends then, every
/// time, with no heartbeat to find it later. Data and FIN often reach the
/// server together, in one readiness event; its short read of the data
/// once left the FIN unnoticed (the connection held until a write failed).
/// And the echoes of everything it sent still reach it: 4 MiB in 1 MiB
/// messages (more than the socket buffers), sent before it reads any.
#[test]
fn a_client_that_shuts_its_write_side_gets_its_echoes_and_the_end_at_once() {
    bounded(60, || {
        let config = ServerConfig::default().connection(Config::default().ping_interval(None));
        let (server, events) = start(config, None);
        for round in 0..20 {
            let mut raw = Raw::connect(server.local_addr());
            raw.send(&client_frame(true, OpCode::Text, b"last words"));
            raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
            assert_eq!(
                raw.frame(),
                Some((OpCode::Text, b"last words".to_vec())),
                "round {round}"
            );
            assert_eq!(raw.frame(), None, "round {round}: no EOF");
            assert_eq!(events.close().1.cause, CloseCause::UnexpectedEof);
        }
        let mut raw = Raw::connect(server.local_addr());
        let writer = raw.stream.try_clone().unwrap();
        let sending = thread::spawn(move || {
            let mut writer = writer;
            for i in 0..4u8 {
                writer
                    .write_all(&client_frame(true, OpCode::Binary, &vec![i; 1 << 20]))
                    .unwrap();
            }
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        for i in 0..4u8 {
            let echo = raw.frame().unwrap_or_else(|| panic!("echo {i} lost"));
            assert!(echo == (OpCode::Binary, vec![i; 1 << 20]), "echo {i}");
        }
        assert_eq!(raw.frame(), None);
        sending.join().unwrap();
        assert_eq!(events.close().1.cause, CloseCause::UnexpectedEof);
        server.shutdown();
    });
}
