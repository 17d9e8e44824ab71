//! Echo against tungstenite, both ways, ws:// and wss://.

use super::*;

pub(crate) const SIZES: &[usize] = &[0, 1, 125, 126, 65_535, 65_536, 1 << 20];

#[test]
fn tungstenite_client_echo_ws_up_to_16_mib() {
    bounded(90, || {
        // No heartbeat: a peer busy writing 16 MiB in a debug build answers
        // pings late (heartbeats have their own tests).
        let (server, events) = start(ServerConfig::default().connection(SLOW_HEARTBEAT), None);
        let mut ws = tung_ws(&server);
        echo_round_trips(&mut ws, SIZES);
        echo_round_trips(&mut ws, &[16 << 20]);
        close_tungstenite(&mut ws);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, Some(CloseCode::NORMAL));
        server.shutdown();
    });
}

#[test]
fn tungstenite_client_echo_wss_up_to_16_mib() {
    bounded(90, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .connection(SLOW_HEARTBEAT)
            .tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut ws = tung_wss(&server, &identity);
        echo_round_trips(&mut ws, SIZES);
        echo_round_trips(&mut ws, &[16 << 20]);
        close_tungstenite(&mut ws);
        assert_eq!(events.close().1.cause, CloseCause::PeerClosed);
        server.shutdown();
    });
}

/// A tungstenite echo server on a thread; returns its address and the
/// thread (which ends when the client closes).
pub(crate) fn tungstenite_server(
    identity: Option<Arc<Identity>>,
) -> (SocketAddr, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
        let mut seen = Vec::new();
        let config = Some(big_tungstenite_config());
        let mut run = |ws: &mut dyn FnMut() -> Result<tungstenite::Message, tungstenite::Error>,
                       send: &mut dyn FnMut(tungstenite::Message)| {
            loop {
                match ws() {
                    Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        seen.push(format!("{} bytes", m.len()));
                        send(m);
                    }
                    Ok(tungstenite::Message::Close(frame)) => {
                        seen.push(format!("close {:?}", frame.map(|f| u16::from(f.code))));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        };
        match identity {
            None => {
                let ws = Arc::new(Mutex::new(
                    tungstenite::accept_with_config(stream, config).unwrap(),
                ));
                let reader = Arc::clone(&ws);
                run(&mut || reader.lock().unwrap().read(), &mut |m| {
                    ws.lock().unwrap().send(m).unwrap();
                });
            }
            Some(identity) => {
                let stream = tls::server_stream(&identity, stream);
                let ws = Arc::new(Mutex::new(
                    tungstenite::accept_with_config(stream, config).unwrap(),
                ));
                let reader = Arc::clone(&ws);
                run(&mut || reader.lock().unwrap().read(), &mut |m| {
                    ws.lock().unwrap().send(m).unwrap();
                });
            }
        }
        seen
    });
    (addr, thread)
}

pub(crate) fn client_round_trips(client: &mut client::Client, sizes: &[usize]) {
    for &len in sizes {
        let data = payload(len);
        client.send_binary(&data).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Binary(got)) => assert!(got == &data[..], "binary {len}"),
            other => panic!("expected binary {len}, got {other:?}"),
        }
        let t = text(len);
        client.send_text(&t).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Text(got)) => assert!(got == t, "text {len}"),
            other => panic!("expected text {len}, got {other:?}"),
        }
    }
}

#[test]
fn our_client_against_tungstenite_server_ws() {
    bounded(90, || {
        let (addr, server) = tungstenite_server(None);
        let url = format!("ws://{addr}/echo?x=1");
        let config = ClientConfig::default().connection(SLOW_HEARTBEAT);
        let mut client = client::connect(&url, config).unwrap();
        client_round_trips(&mut client, SIZES);
        client_round_trips(&mut client, &[16 << 20]);
        client.close(CloseCode::NORMAL, "done").unwrap();
        assert!(
            client.read_message().unwrap().is_none(),
            "closed stays closed"
        );
        assert_eq!(client.send_text("late"), Err(SendError::Closed));
        let seen = server.join().unwrap();
        assert_eq!(seen.last().unwrap(), "close Some(1000)");
        assert_eq!(seen.len(), SIZES.len() * 2 + 3);
    });
}

#[test]
fn our_client_against_tungstenite_server_wss() {
    bounded(60, || {
        let identity = Arc::new(tls::identity());
        let (addr, server) = tungstenite_server(Some(Arc::clone(&identity)));
        let url = format!("wss://localhost:{}/", addr.port());
        let config = ClientConfig::default().add_root_der(identity.cert_der.to_vec());
        let mut client = client::connect(&url, config).unwrap();
        client_round_trips(&mut client, SIZES);
        client.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(server.join().unwrap().last().unwrap(), "close Some(1000)");
    });
}

#[test]
fn our_client_and_server_over_wss_from_pem_files() {
    bounded(60, || {
        let identity = tls::identity();
        let dir = std::env::temp_dir().join(format!("snowsocket-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = identity.write_pem(&dir);
        let tls_config = snowsocket_server::tls::server_config_from_pem(&cert, &key).unwrap();
        let (server, events) = start(ServerConfig::default().tls(tls_config), None);
        let config = ClientConfig::default().add_root_pem(&cert).unwrap();
        let mut client = client::connect(&url(&server, true), config).unwrap();
        client_round_trips(&mut client, &[0, 5, 70_000]);
        client.close(CloseCode::NORMAL, "bye").unwrap();
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.reason, "bye");
        // Errors name the file and the reason.
        let missing = dir.join("missing.pem");
        let err = snowsocket_server::tls::server_config_from_pem(&missing, &key).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = snowsocket_server::tls::server_config_from_pem(&key, &key).unwrap_err();
        assert!(
            err.to_string().contains("key.pem") && err.to_string().contains("CERTIFICATE"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        server.shutdown();
    });
}
