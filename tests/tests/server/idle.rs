//! Idle connections: no thread, no buffers; input, pushes, heartbeats and closes reach them.

use super::*;

/// Waits (bounded, polling) until `done` holds; fails the test after 5 s.
pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// No heartbeat in the way.
pub(crate) fn quick_idle() -> ServerConfig {
    ServerConfig::default().connection(SLOW_HEARTBEAT)
}

/// A tungstenite client over ws:// or wss://.
pub(crate) enum Tung {
    Ws(Box<tungstenite::WebSocket<TcpStream>>),
    Wss(Box<tungstenite::WebSocket<TlsClientStream>>),
}

impl Tung {
    pub(crate) fn connect(server: &ServerHandle, tls_identity: Option<&Identity>) -> Self {
        match tls_identity {
            None => Self::Ws(Box::new(tung_ws(server))),
            Some(identity) => Self::Wss(Box::new(tung_wss(server, identity))),
        }
    }
    pub(crate) fn round_trips(&mut self, sizes: &[usize]) {
        match self {
            Self::Ws(ws) => echo_round_trips(&mut **ws, sizes),
            Self::Wss(ws) => echo_round_trips(&mut **ws, sizes),
        }
    }
    pub(crate) fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Ws(ws) => ws.get_ref().local_addr().unwrap(),
            Self::Wss(ws) => ws.get_ref().sock.local_addr().unwrap(),
        }
    }
    pub(crate) fn read(&mut self) -> Option<tungstenite::Message> {
        match self {
            Self::Ws(ws) => ws.read().ok(),
            Self::Wss(ws) => ws.read().ok(),
        }
    }
}

pub(crate) fn idle_connections_resume(tls_identity: Option<&Identity>) {
    let mut config = quick_idle();
    if let Some(identity) = tls_identity {
        config = config.tls(identity.server_config());
    }
    let (server, events) = start(config, None);
    let port = server.local_addr().port();
    let mut clients: Vec<Tung> = (0..3)
        .map(|_| Tung::connect(&server, tls_identity))
        .collect();
    // The handles in the clients' order (`on_connect` may run in another).
    let mut conns: Vec<ConnectionHandle> = (0..3).map(|_| events.connection()).collect();
    conns.sort_by_key(|conn| {
        let peer = conn.peer_addr();
        clients.iter().position(|c| c.local_addr() == peer).unwrap()
    });
    // The loops' threads and no other, however many connections.
    assert_eq!(server_threads(port), server.event_loops());
    assert_eq!(server.connections(), 3);
    // Input wakes them (several times: each round trip ends idle again),
    // with messages that need the read buffers back (over 64 KiB).
    for _ in 0..2 {
        for client in &mut clients {
            client.round_trips(&[0, 125, 70_000]);
        }
    }
    assert_eq!(server_threads(port), server.event_loops());
    // A send from another thread reaches an idle connection's peer.
    for (conn, client) in conns.iter().zip(&mut clients) {
        let conn = conn.clone();
        thread::spawn(move || conn.send_text("pushed while idle"))
            .join()
            .unwrap()
            .unwrap();
        match client.read() {
            Some(tungstenite::Message::Text(t)) => assert_eq!(t.as_str(), "pushed while idle"),
            other => panic!("expected the push, got {other:?}"),
        }
    }
    // A close from another thread wakes the connection to run the close
    // handshake; tungstenite answers it.
    for (conn, client) in conns.iter().zip(&mut clients) {
        conn.close(CloseCode::NORMAL, "bye").unwrap();
        match client.read() {
            Some(tungstenite::Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1000)
            }
            other => panic!("expected close 1000, got {other:?}"),
        }
        // tungstenite writes its answer on the next call, which then ends.
        assert!(client.read().is_none());
        let (id, info) = events.close();
        assert_eq!(id, conn.id());
        assert_eq!(info.cause, CloseCause::ClosedByUs, "{info}");
    }
    // `on_close` runs just before the connection leaves the count.
    wait_for("no connections", || server.connections() == 0);
    server.shutdown();
    assert_eq!(server_threads_after_join(port), 0);
}

#[test]
fn idle_connections_resume_on_input_pushes_and_closes_ws() {
    bounded(30, || idle_connections_resume(None));
}

#[test]
fn idle_connections_resume_on_input_pushes_and_closes_wss() {
    bounded(30, || idle_connections_resume(Some(&tls::identity())));
}

#[test]
fn idle_connection_keeps_its_heartbeat() {
    bounded(20, || {
        // A silent peer: pinged while idle, then failed after the pong
        // timeout, all without a thread in between.
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(400)))
            .pong_timeout(Duration::from_millis(400));
        let config = ServerConfig::default().connection(connection);
        let (server, events) = start(config, None);
        let started = Instant::now();
        let mut raw = Raw::connect(server.local_addr());
        events.connection();
        assert_eq!(raw.frame().map(|f| f.0), Some(OpCode::Ping));
        assert_eq!(raw.close_code(), Some(1001));
        let elapsed = started.elapsed();
        assert!(raw.at_eof());
        drop(raw);
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PongTimeout);
        assert!(elapsed >= Duration::from_millis(750), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");

        // A peer that answers stays connected across several pings, idle
        // in between.
        let mut raw = Raw::connect(server.local_addr());
        let conn = events.connection();
        for _ in 0..3 {
            let (op, payload) = raw.frame().unwrap();
            assert_eq!(op, OpCode::Ping);
            raw.send(&client_frame(true, OpCode::Pong, &payload));
        }
        assert!(conn.is_open());
        raw.send(&client_frame(true, OpCode::Text, b"still here"));
        assert_eq!(raw.frame(), Some((OpCode::Text, b"still here".to_vec())));
        server.shutdown();
        assert_eq!(events.close().1.cause, CloseCause::ServerShutdown);
    });
}

#[test]
fn shutdown_closes_idle_connections_and_joins_every_thread() {
    bounded(20, || {
        let config = quick_idle().shutdown_timeout(Duration::from_millis(500));
        let (server, events) = start(config, None);
        let port = server.local_addr().port();
        let mut readers = Vec::new();
        for _ in 0..3 {
            let mut client =
                client::connect(&url(&server, false), ClientConfig::default()).unwrap();
            readers.push(thread::spawn(move || {
                client.read_message().map(|m| m.is_none())
            }));
            events.connection();
        }
        // One that never answers: its socket is closed at the deadline.
        let _deaf = Raw::connect(server.local_addr());
        events.connection();
        wait_for("4 connections", || server.connections() == 4);
        server.shutdown();
        assert_eq!(server_threads_after_join(port), 0);
        let causes: Vec<CloseCause> = events.closed.try_iter().map(|(_, i)| i.cause).collect();
        assert_eq!(causes, vec![CloseCause::ServerShutdown; 4]);
        for reader in readers {
            assert!(matches!(reader.join().unwrap(), Ok(true)));
        }
    });
}

#[test]
fn connections_that_pause_and_resume_all_the_time_lose_nothing() {
    bounded(60, || {
        // Idle after 5 ms: with pauses around that, connections park and
        // resume many times while messages, pushes from other threads and
        // heartbeats cross. Every echo and every push must arrive, in order.
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(30)))
            .pong_timeout(Duration::from_secs(5));
        let config = ServerConfig::default().connection(connection);
        let (server, events) = start(config, None);
        let clients: Vec<_> = (0..24u64)
            .map(|n| {
                let mut ws = tung_ws(&server);
                thread::spawn(move || {
                    let mut seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut last_push = None;
                    for i in 0..40u32 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let pause = Duration::from_micros(seed % 12_000);
                        thread::sleep(pause);
                        let text = format!("{n}:{i}");
                        ws.send(tungstenite::Message::text(text.clone())).unwrap();
                        // Pings are answered by tungstenite inside read.
                        loop {
                            match ws.read().unwrap() {
                                tungstenite::Message::Text(t) if t.as_str() == text => break,
                                tungstenite::Message::Text(t) => {
                                    let round: u32 = t
                                        .strip_prefix("push ")
                                        .and_then(|r| r.parse().ok())
                                        .unwrap_or_else(|| panic!("unexpected {t}"));
                                    assert!(last_push < Some(round), "push out of order");
                                    last_push = Some(round);
                                }
                                tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                    close_tungstenite(&mut ws);
                })
            })
            .collect();
        let conns: Vec<ConnectionHandle> = (0..24).map(|_| events.connection()).collect();
        // Pushes from another thread meanwhile, to connections that may be
        // parked or running.
        let pusher = thread::spawn(move || {
            let mut pushed = 0;
            for round in 0..20 {
                for conn in &conns {
                    if conn.send_text(&format!("push {round}")).is_ok() {
                        pushed += 1;
                    }
                }
                thread::sleep(Duration::from_millis(7));
            }
            pushed
        });
        for client in clients {
            client.join().unwrap();
        }
        assert!(pusher.join().unwrap() > 0);
        for _ in 0..24 {
            let (_, info) = events.close();
            assert_eq!(info.cause, CloseCause::PeerClosed, "{info}");
        }
        server.shutdown();
    });
}

/// Echoes text; takes its time over each binary message (work a real
/// handler would do), so that a peer's backlog outlasts many loop turns.
struct SlowOnBinary;

impl Handler for SlowOnBinary {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        match message {
            Message::Text(text) => drop(conn.send_text(text)),
            Message::Binary(_) => {
                let until = Instant::now() + Duration::from_micros(20);
                while Instant::now() < until {}
            }
        }
    }
}

/// The next Text frame, skipping the heartbeat's Pings.
fn text_skipping_pings(raw: &mut Raw) -> Option<String> {
    loop {
        match raw.frame() {
            Some((OpCode::Ping, _)) => {}
            Some((OpCode::Text, payload)) => return String::from_utf8(payload).ok(),
            _ => return None,
        }
    }
}

#[test]
fn a_heartbeat_due_while_a_backlog_is_read_does_not_stall_the_loop() {
    bounded(30, || {
        // Every read comes back full for many turns (a backlog of small
        // messages, each taking the handler a while), past the
        // heartbeat's deadline: the deadline is not judged while input
        // waits for the next turn's reads, and the loop must go on
        // serving this connection and the others on it. (It used to
        // re-arm the deadline it had declined and pop it again, forever.)
        let connection = Config::DEFAULT
            .ping_interval(Some(Duration::from_millis(20)))
            .pong_timeout(Duration::from_secs(20));
        let config = ServerConfig::default()
            .event_loops(1)
            .read_buffer_size(4096)
            .connection(connection);
        let server = Server::bind("127.0.0.1:0", config)
            .unwrap()
            .spawn(SlowOnBinary)
            .unwrap();
        let mut busy = Raw::connect(server.local_addr());
        let mut other = Raw::connect(server.local_addr());
        // 256 KiB of 100-byte messages: 64 full reads, 8 turns of 8
        // reads, each turn 300 callbacks of 20 µs: the 20 ms heartbeat
        // falls due in the middle.
        let backlog = client_frame(true, OpCode::Binary, &[7; 100]).repeat(256 * 1024 / 106);
        busy.send(&backlog);
        busy.send(&client_frame(true, OpCode::Text, b"after the backlog"));
        // Meanwhile the other connection echoes (a loop turn takes a few
        // tens of milliseconds here).
        for i in 0..5 {
            let message = format!("echo {i}");
            other.send(&client_frame(true, OpCode::Text, message.as_bytes()));
            assert_eq!(text_skipping_pings(&mut other), Some(message));
        }
        assert_eq!(
            text_skipping_pings(&mut busy).as_deref(),
            Some("after the backlog")
        );
        drop((busy, other));
        server.shutdown();
    });
}
