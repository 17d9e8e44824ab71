//! 4. write_timeout: the peer's progress, not the kernel's.

use super::*;

/// Keeps output waiting for `conn` from this thread, as an application
/// pushing data would: sends a 16 KiB message whenever one is accepted,
/// and while the outbox is full, a small one every 10 ms (each accepted
/// send makes the loop try to write again). Returns how `conn` ended, and
/// the slowest send.
pub(crate) fn keep_queueing(
    conn: &ConnectionHandle,
    events: &snowsocket_tests::server::Events,
    limit: Duration,
) -> (snowsocket_server::CloseInfo, Duration) {
    let big = vec![0x5a; 16 << 10];
    let small = [0x5a; 64];
    let deadline = Instant::now() + limit;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let t = Instant::now();
        let result = conn.send_binary(&big);
        slowest = slowest.max(t.elapsed());
        match result {
            Ok(()) => continue,
            Err(SendError::Full { .. }) => {}
            Err(SendError::Closed) => break,
            Err(e) => panic!("send: {e}"),
        }
        let t = Instant::now();
        let result = conn.send_binary(&small);
        slowest = slowest.max(t.elapsed());
        if result == Err(SendError::Closed) {
            break;
        }
        match events.closed.recv_timeout(Duration::from_millis(10)) {
            Ok((id, info)) => {
                assert_eq!(id, conn.id());
                return (info, slowest);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("handler gone"),
        }
    }
    let (id, info) = events.close();
    assert_eq!(id, conn.id());
    (info, slowest)
}

/// A peer with a 4 KiB receive buffer completes the upgrade and then reads
/// nothing, while the server keeps output queued for it: it is failed with
/// `WriteTimeout` within `write_timeout` (1 s) + 1 s of the first send
/// (when it stopped taking data), however often the kernel takes a few
/// more bytes into the socket's send buffer. Sends never wait meanwhile.
/// Over `ws://` and `wss://`.
///
/// An engine that counts every byte the kernel takes as progress keeps
/// such a peer for 17–31 s with a 10 s write timeout; one whose sends
/// write before they return blocks the sender.
#[test]
fn a_peer_with_a_small_window_that_reads_nothing_fails_with_write_timeout() {
    bounded(30, || {
        let identity = tls::identity();
        for tls_on in [false, true] {
            let write_timeout = Duration::from_secs(1);
            let mut config = ServerConfig::default()
                .connection(NO_PINGS)
                .write_timeout(write_timeout)
                .max_buffered_bytes(256 << 10);
            if tls_on {
                config = config.tls(identity.server_config());
            }
            let (server, events) = start(config, None);
            let sock = connect_from(server.local_addr(), LOCALHOST, Some(4096));
            let _deaf: Box<dyn Send> = if tls_on {
                let name = ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(identity.client_config(), name).unwrap();
                let mut stream = rustls::StreamOwned::new(conn, sock);
                stream.write_all(UPGRADE.as_bytes()).unwrap();
                let mut head = [0u8; 12];
                stream.read_exact(&mut head).unwrap();
                assert_eq!(&head, b"HTTP/1.1 101");
                Box::new(stream)
            } else {
                Box::new(Raw::upgrade(sock))
            };
            let conn = events.connection();
            let mut other = tung_ws_or_wss(&server, tls_on.then_some(&identity));
            events.connection();
            let started = Instant::now();
            let (info, slowest) = keep_queueing(&conn, &events, Duration::from_secs(20));
            let took = started.elapsed();
            eprintln!("tls {tls_on}: failed after {took:?} ({info:?}); slowest send {slowest:?}");
            assert_eq!(info.cause, CloseCause::WriteTimeout, "tls {tls_on}");
            assert!(
                took < write_timeout + Duration::from_secs(1),
                "tls {tls_on}: failed after {took:?}"
            );
            assert!(
                slowest < SENDS_RETURN_WITHIN,
                "tls {tls_on}: a send waited {slowest:?}"
            );
            // Only that one.
            other.round_trip(100);
            other.close();
            server.shutdown();
        }
    });
}

/// A tungstenite client over `ws://` or `wss://`.
pub(crate) enum Tung {
    Ws(Box<tungstenite::WebSocket<TcpStream>>),
    Wss(Box<tungstenite::WebSocket<snowsocket_tests::server::TlsClientStream>>),
}

pub(crate) fn tung_ws_or_wss(server: &ServerHandle, identity: Option<&Identity>) -> Tung {
    match identity {
        None => Tung::Ws(Box::new(tung_ws(server))),
        Some(identity) => Tung::Wss(Box::new(tung_wss(server, identity))),
    }
}

impl Tung {
    pub(crate) fn round_trip(&mut self, len: usize) {
        match self {
            Self::Ws(ws) => echo_round_trips(&mut **ws, &[len]),
            Self::Wss(ws) => echo_round_trips(&mut **ws, &[len]),
        }
    }

    pub(crate) fn close(&mut self) {
        match self {
            Self::Ws(ws) => close_tungstenite(&mut **ws),
            Self::Wss(ws) => close_tungstenite(&mut **ws),
        }
    }
}
