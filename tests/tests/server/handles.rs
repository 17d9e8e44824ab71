//! Handles and handlers: sends from other threads, panics, TLS clients, close timeouts, concurrent senders.

use super::*;

#[test]
fn handle_sends_fragments_pings_and_closes_from_another_thread() {
    bounded(20, || {
        let (server, events) = start(ServerConfig::default(), None);
        let mut ws = tung_ws(&server);
        let conn = events.connection();
        assert_eq!(conn.peer_addr(), ws.get_ref().local_addr().unwrap());
        let sender = thread::spawn(move || {
            use snowsocket_server::MessageKind;
            conn.send_fragment(MessageKind::Text, "frag".as_bytes(), false)?;
            conn.ping(b"hey")?;
            conn.send_fragment(MessageKind::Text, "ment".as_bytes(), true)?;
            assert!(matches!(conn.ping(&[0; 126]), Err(SendError::Refused(_))));
            conn.close(CloseCode(4000), "app says bye")?;
            Ok::<_, SendError>(conn)
        });
        let mut got = Vec::new();
        loop {
            match ws.read() {
                Ok(m) => got.push(format!("{m:?}")),
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let conn = sender.join().unwrap().unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("Ping"), "{got:?}");
        assert!(got[1].contains("fragment"), "{got:?}");
        assert!(
            got[2].contains("4000") && got[2].contains("app says bye"),
            "{got:?}"
        );
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::ClosedByUs);
        assert_eq!(info.code, Some(CloseCode(4000)));
        assert!(!conn.is_open());
        assert_eq!(conn.send_text("late"), Err(SendError::Closed));
        server.shutdown();
    });
}

/// Panics on the message "panic"; reports every connection's end.
pub(crate) struct Panicky(pub(crate) Mutex<Sender<CloseInfo>>);

impl Handler for Panicky {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        if message == Message::Text("panic") {
            panic!("handler bug (expected by the test)");
        }
        let _ = conn.send_text("fine");
    }

    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        let _ = self.0.lock().unwrap().send(info);
    }
}

#[test]
fn a_panicking_handler_costs_only_its_connection() {
    bounded(20, || {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
        let (closes, closed) = mpsc::channel();
        let server = server.spawn(Panicky(Mutex::new(closes))).unwrap();
        let mut bad = tung_ws(&server);
        let mut good = tung_ws(&server);
        bad.send(tungstenite::Message::text("panic")).unwrap();
        // Its connection is closed (no close handshake: the handler is
        // broken); reading ends with an error.
        while bad.read().is_ok() {}
        let info = closed.recv_timeout(WAIT).unwrap();
        assert_eq!(info.cause, CloseCause::HandlerPanicked);
        good.send(tungstenite::Message::text("hi")).unwrap();
        assert_eq!(good.read().unwrap(), tungstenite::Message::text("fine"));
        close_tungstenite(&mut good);
        assert!(closed.recv_timeout(WAIT).unwrap().is_clean());
        server.shutdown();
        // Exactly one on_close per connection.
        assert!(closed.try_recv().is_err());
    });
}

#[test]
fn tls13_secp256r1_ecdsa_p256_client_like_embedded_tls_is_served() {
    bounded(20, || {
        // What an embedded-tls client offers: TLS 1.3 only, secp256r1 only,
        // and it verifies an ECDSA P-256 certificate (rcgen's default).
        let identity = tls::identity();
        let (server, _events) = start(ServerConfig::default().tls(identity.server_config()), None);
        let provider = rustls::crypto::CryptoProvider {
            kx_groups: vec![rustls::crypto::ring::kx_group::SECP256R1],
            ..rustls::crypto::ring::default_provider()
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(identity.cert_der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let stream = rustls::StreamOwned::new(conn, stream);
        let (mut ws, _) = tungstenite::client(url(&server, true), stream).unwrap();
        let tls = &ws.get_ref().conn;
        assert_eq!(
            tls.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(
            tls.negotiated_key_exchange_group().map(|g| g.name()),
            Some(rustls::NamedGroup::secp256r1)
        );
        echo_round_trips(&mut ws, &[1, 300]);
        close_tungstenite(&mut ws);
        server.shutdown();
    });
}

#[test]
fn client_refuses_untrusted_certificates_and_times_out_silent_servers() {
    bounded(20, || {
        let identity = tls::identity();
        let (server, _events) = start(ServerConfig::default().tls(identity.server_config()), None);
        // The Mozilla roots do not include a fresh self-signed certificate.
        match client::connect(&url(&server, true), ClientConfig::default()) {
            Err(e @ ClientError::TlsHandshake(_)) => {
                let message = e.to_string();
                assert!(message.contains("UnknownIssuer"), "{message}");
                assert!(message.contains("--ca cert.pem"), "{message}");
            }
            other => panic!("expected a certificate error, got {other:?}"),
        }
        server.shutdown();
        // A server that accepts the connection and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let config = ClientConfig::default().handshake_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let result = client::connect(&url, config);
        assert!(
            matches!(result, Err(ClientError::HandshakeTimeout)),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
        assert!(matches!(
            client::connect("http://example.test/", ClientConfig::default()),
            Err(ClientError::InvalidUrl(_))
        ));
    });
}

/// A Close queued from another thread to a peer that never answers: the
/// server gives up after the close timeout (300 ms) and closes the socket.
/// The Close is queued from another thread; nothing else wakes the loop.
pub(crate) fn close_times_out(at_most: Duration) {
    // No heartbeat: nothing else would wake the reader.
    let connection = Config::DEFAULT
        .ping_interval(None)
        .close_timeout(Duration::from_millis(300));
    let config = ServerConfig::default().connection(connection);
    let (server, events) = start(config, None);
    let mut raw = Raw::connect(server.local_addr());
    let conn = events.connection();
    let started = Instant::now();
    thread::spawn(move || conn.close(CloseCode::NORMAL, "bye"))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(raw.close_code(), Some(1000));
    // We never answer; the server gives up and closes the socket.
    assert!(raw.at_eof());
    let (_, info) = events.close();
    assert_eq!(info.cause, CloseCause::CloseTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < at_most,
        "{elapsed:?}"
    );
    server.shutdown();
}

#[test]
fn close_from_another_thread_times_out_when_the_peer_never_answers() {
    bounded(20, || close_times_out(Duration::from_secs(3)));
}

/// Several threads send on one connection at once (and the connection's own
/// thread echoes): every message arrives whole, in each sender's order, and
/// under TLS every record decrypts (frames and records are never
/// interleaved).
pub(crate) fn concurrent_senders(tls_identity: Option<&Identity>) {
    let mut config = ServerConfig::default();
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    const THREADS: usize = 4;
    const EACH: usize = 200;
    const ECHOES: usize = 50;
    let check = move |ws: &mut dyn FnMut() -> tungstenite::Message| {
        let mut next = [0usize; THREADS];
        let mut next_echo = 0;
        for _ in 0..THREADS * EACH + ECHOES {
            let m = ws();
            let text = m.to_text().unwrap();
            if let Some(i) = text.strip_prefix("echo:") {
                assert_eq!(i.parse::<usize>().unwrap(), next_echo);
                next_echo += 1;
                continue;
            }
            let (t, rest) = text.split_once(':').unwrap();
            let (i, pad) = rest.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(pad.len(), 100 + (i * 37) % 3000);
            next[t] += 1;
        }
    };
    let send_all = |conn: ConnectionHandle| {
        (0..THREADS)
            .map(|t| {
                let conn = conn.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        let pad = "x".repeat(100 + (i * 37) % 3000);
                        conn.send_text(&format!("{t}:{i}:{pad}")).unwrap();
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    match tls_identity {
        None => {
            let mut ws = tung_ws(&server);
            let senders = send_all(events.connection());
            for i in 0..ECHOES {
                ws.send(tungstenite::Message::text(format!("echo:{i}")))
                    .unwrap();
            }
            check(&mut || ws.read().unwrap());
            senders.into_iter().for_each(|s| s.join().unwrap());
            close_tungstenite(&mut ws);
        }
        Some(identity) => {
            let mut ws = tung_wss(&server, identity);
            let senders = send_all(events.connection());
            for i in 0..ECHOES {
                ws.send(tungstenite::Message::text(format!("echo:{i}")))
                    .unwrap();
            }
            check(&mut || ws.read().unwrap());
            senders.into_iter().for_each(|s| s.join().unwrap());
            close_tungstenite(&mut ws);
        }
    }
    assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
    server.shutdown();
}

#[test]
fn concurrent_senders_keep_frames_and_records_whole_ws() {
    bounded(30, || concurrent_senders(None));
}

#[test]
fn concurrent_senders_keep_frames_and_records_whole_wss() {
    bounded(30, || concurrent_senders(Some(&tls::identity())));
}

#[test]
fn shutdown_is_bounded_by_its_deadline_even_with_peers_that_do_not_read() {
    bounded(30, || {
        // The deaf peer's output can wait 20 s, but shutdown must not.
        let config = ServerConfig::default()
            .write_timeout(Duration::from_secs(20))
            .shutdown_timeout(Duration::from_millis(500));
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        let _deaf = Raw::connect(server.local_addr());
        let stuck = events.connection();
        let mut polite = tung_ws(&server);
        events.connection();
        // Fill the deaf peer's buffers until its outbox is full.
        let chunk = vec![1u8; 256 << 10];
        let full = (0..4096).find_map(|_| stuck.send_binary(&chunk).err());
        assert!(matches!(full, Some(SendError::Full { .. })), "{full:?}");
        let started = Instant::now();
        server.shutdown();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(4),
            "shutdown took {elapsed:?}"
        );
        assert_eq!(server_threads_after_join(port), 0);
        assert_eq!(stuck.send_text("after"), Err(SendError::Closed));
        match polite.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1001)
            }
            other => panic!("expected close 1001, got {other:?}"),
        }
        let causes: Vec<CloseCause> = events.closed.try_iter().map(|(_, i)| i.cause).collect();
        assert_eq!(
            causes,
            [CloseCause::ServerShutdown, CloseCause::ServerShutdown]
        );
    });
}
