//! Sends never wait behind reads.

use super::*;

/// Heartbeat and timeouts of minutes: nothing wakes the reader thread, yet a
/// send from another thread must reach the silent peer at once.
pub(crate) const SLOW_HEARTBEAT: Config = Config::DEFAULT
    .ping_interval(Some(Duration::from_secs(600)))
    .pong_timeout(Duration::from_secs(600));

pub(crate) fn send_to_silent_peer(tls_identity: Option<&Identity>) {
    let mut config = ServerConfig::default().connection(SLOW_HEARTBEAT);
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    let (tx, rx) = mpsc::channel();
    let reader = match tls_identity {
        None => {
            let mut ws = tung_ws(&server);
            thread::spawn(move || {
                let m = ws.read().unwrap();
                tx.send(m.into_text().unwrap().to_string()).unwrap();
                close_tungstenite(&mut ws);
            })
        }
        Some(identity) => {
            let mut ws = tung_wss(&server, identity);
            thread::spawn(move || {
                let m = ws.read().unwrap();
                tx.send(m.into_text().unwrap().to_string()).unwrap();
                close_tungstenite(&mut ws);
            })
        }
    };
    let conn = events.connection();
    let sent = Instant::now();
    let from_other_thread = thread::spawn(move || conn.send_text("pushed"));
    from_other_thread.join().unwrap().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(1))
        .expect("the push arrived within 1 s");
    assert_eq!(got, "pushed");
    assert!(sent.elapsed() < Duration::from_secs(1));
    reader.join().unwrap();
    events.close();
    server.shutdown();
}

#[test]
fn send_from_another_thread_reaches_silent_peer_ws() {
    bounded(20, || send_to_silent_peer(None));
}

#[test]
fn send_from_another_thread_reaches_silent_peer_wss() {
    bounded(20, || send_to_silent_peer(Some(&tls::identity())));
}

#[test]
fn client_sender_works_while_another_thread_blocks_in_read() {
    bounded(20, || {
        for tls_on in [false, true] {
            let identity = Arc::new(tls::identity());
            let (addr, server) = tungstenite_server(tls_on.then(|| Arc::clone(&identity)));
            let (url, config) = if tls_on {
                let config = ClientConfig::default().add_root_der(identity.cert_der.to_vec());
                (format!("wss://localhost:{}/", addr.port()), config)
            } else {
                (format!("ws://{addr}/"), ClientConfig::default())
            };
            let mut client = client::connect(&url, config.connection(SLOW_HEARTBEAT)).unwrap();
            let sender = client.sender();
            let (tx, rx) = mpsc::channel();
            let reader = thread::spawn(move || {
                // Blocks (no lock held) until the echo of the send below.
                let got = client.read_message().unwrap().map(|m| format!("{m:?}"));
                tx.send(got).unwrap();
                client.close(CloseCode::NORMAL, "").unwrap();
            });
            let sent = Instant::now();
            sender.send_text("from another thread").unwrap();
            let got = rx
                .recv_timeout(Duration::from_secs(1))
                .expect("echo within 1 s");
            assert_eq!(got.as_deref(), Some("Text(\"from another thread\")"));
            assert!(sent.elapsed() < Duration::from_secs(1));
            reader.join().unwrap();
            server.join().unwrap();
        }
    });
}
