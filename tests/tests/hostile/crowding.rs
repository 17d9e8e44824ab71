//! 3. Handshakes do not crowd out established users.

use super::*;

pub(crate) const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Connections that send the start of an upgrade request and then trickle
/// its last header, a byte each every [`TRICKLE`] (one thread for all of
/// them), until dropped.
pub(crate) struct Tricklers {
    pub(crate) socks: Arc<Vec<TcpStream>>,
    pub(crate) stop: mpsc::Sender<()>,
    pub(crate) rounds: mpsc::Receiver<()>,
    pub(crate) thread: Option<thread::JoinHandle<()>>,
}

/// The start of an upgrade request whose last header never ends (the
/// tricklers add a byte to it every [`TRICKLE`]).
pub(crate) const SLOW_REQUEST: &str =
    "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nX-Slow: ";

impl Tricklers {
    pub(crate) fn start(server: SocketAddr, from: &[(Ipv4Addr, usize)]) -> Self {
        let socks: Vec<TcpStream> = from
            .iter()
            .flat_map(|&(ip, n)| (0..n).map(move |_| connect_from(server, ip, None)))
            .collect();
        for mut sock in &socks {
            sock.write_all(SLOW_REQUEST.as_bytes()).unwrap();
            sock.set_nonblocking(true).unwrap();
        }
        let socks = Arc::new(socks);
        let (stop, stopped) = mpsc::channel::<()>();
        let (round_done, rounds) = mpsc::channel::<()>();
        let shared = Arc::clone(&socks);
        let thread = thread::spawn(move || {
            for _ in 0..1000 {
                if stopped.recv_timeout(TRICKLE) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                for mut sock in shared.iter() {
                    let _ = sock.write(b"a");
                }
                let _ = round_done.send(());
            }
        });
        Self {
            socks,
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Waits until each has trickled `n` more bytes.
    pub(crate) fn trickled(&self, n: usize) {
        for _ in 0..n {
            self.rounds.recv_timeout(WAIT).expect("a trickle round");
        }
    }

    /// How many the server has closed (EOF or reset).
    pub(crate) fn closed(&self) -> usize {
        let mut buf = [0u8; 64];
        self.socks
            .iter()
            .filter(|sock| match (&**sock).read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            })
            .count()
    }
}

impl Drop for Tricklers {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// 45 connections trickling their upgrade requests, from three addresses,
/// against `max_pending_handshakes(20)`, `max_handshakes_per_ip(10)` and
/// `max_connections(4)`: at most 10 per address and 20 in all are held
/// (the rest closed at once), a client from a fourth address upgrades and
/// echoes promptly while one address's tricklers hold their slots, and the
/// established clients keep echoing however many are pending.
///
/// An engine that counts handshaking connections toward
/// `max_connections` answers the newcomer 503 (or makes it wait).
#[test]
fn trickling_handshakes_do_not_crowd_out_established_users() {
    bounded(30, || {
        let config = ServerConfig::default()
            .max_pending_handshakes(20)
            .max_handshakes_per_ip(10)
            .max_connections(4)
            .handshake_timeout(Duration::from_secs(20));
        let (server, events) = start(config, None);
        let addr = server.local_addr();
        let mut before = tung_ws(&server);
        events.connection();

        // 15 from 127.0.0.1: 10 held, 5 closed at once.
        let first = Tricklers::start(addr, &[(LOCALHOST, 15)]);
        wait_for("10 tricklers held, 5 closed", WAIT, || {
            server.handshaking() == 10 && first.closed() == 5
        });
        first.trickled(3);
        // A newcomer from elsewhere upgrades and echoes at once.
        let started = Instant::now();
        let stream = connect_from(addr, Ipv4Addr::new(127, 0, 0, 2), None);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (mut newcomer, _) = tungstenite::client(url(&server, false), stream).unwrap();
        echo_round_trips(&mut newcomer, &[100]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "the newcomer took {took:?}");
        events.connection();

        // 30 more from two other addresses: 10 held from each of them,
        // but 20 in all.
        let more = Tricklers::start(
            addr,
            &[
                (Ipv4Addr::new(127, 0, 0, 3), 15),
                (Ipv4Addr::new(127, 0, 0, 4), 15),
            ],
        );
        wait_for("20 held in all, 20 of the 30 closed", WAIT, || {
            server.handshaking() == 20 && more.closed() == 20
        });
        more.trickled(3);
        assert_eq!(first.closed(), 5, "the first ones keep their slots");
        // The established ones are served as before, promptly.
        let started = Instant::now();
        echo_round_trips(&mut before, &[100, 10_000]);
        echo_round_trips(&mut newcomer, &[100, 10_000]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "echoes took {took:?}");
        assert_eq!(server.connections(), 2);
        // A newcomer now finds the handshake slots full: it is closed at
        // once, not kept waiting.
        let started = Instant::now();
        let mut late = connect_from(addr, Ipv4Addr::new(127, 0, 0, 5), None);
        late.set_read_timeout(Some(WAIT)).unwrap();
        late.write_all(UPGRADE.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(late.read(&mut buf), Ok(0) | Err(_)), "refused");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop((first, more));
        wait_for("the slots given back", WAIT, || server.handshaking() == 0);
        close_tungstenite(&mut before);
        close_tungstenite(&mut newcomer);
        server.shutdown();
    });
}

/// With `max_connections(2)` reached over `wss://` and a TLS client stuck
/// in its handshake (a ClientHello trickled a byte at a time), a third
/// client gets its 503 within a second.
///
/// An engine with one thread for refusals, blocked by the stuck
/// handshake, answers it only at the handshake timeout.
#[test]
fn over_the_limit_tls_clients_get_503_promptly_while_a_handshake_is_stuck() {
    bounded(30, || {
        let identity = tls::identity();
        let config = ServerConfig::default()
            .max_connections(2)
            .handshake_timeout(Duration::from_secs(20))
            .tls(identity.server_config());
        let (server, events) = start(config, None);
        let mut a = tung_wss(&server, &identity);
        let mut b = tung_wss(&server, &identity);
        events.connection();
        events.connection();
        // Stuck: half a ClientHello, trickled; and one done with TLS that
        // never sends its request.
        let mut hello = client_hello(&identity);
        hello.truncate(hello.len() / 2);
        let mut hello_sock = TcpStream::connect(server.local_addr()).unwrap();
        hello_sock.write_all(&hello[..20]).unwrap();
        let trickler = trickle(hello_sock, Instant::now(), bytes_one_by_one(&hello[20..]));
        let _silent = tls_connect(server.local_addr(), &identity);
        wait_for("two stuck handshakes", WAIT, || server.handshaking() == 2);
        for round in 0..3 {
            let started = Instant::now();
            let stream = TcpStream::connect(server.local_addr()).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            let stream = tls::client_stream(&identity, stream);
            match tungstenite::client::client(url(&server, true), stream) {
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                    assert_eq!(response.status(), 503, "round {round}");
                }
                Err(e) => panic!("round {round}: expected a 503, got {e}"),
                Ok(_) => panic!("round {round}: expected a 503, got a WebSocket"),
            }
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "round {round}: the 503 took {took:?}"
            );
        }
        assert_eq!(server.handshaking(), 2, "the stuck ones are still stuck");
        echo_round_trips(&mut a, &[10]);
        echo_round_trips(&mut b, &[10]);
        close_tungstenite(&mut a);
        close_tungstenite(&mut b);
        server.shutdown();
        // The shutdown dropped the ClientHello trickler.
        let (at, sent) = trickler.join().unwrap();
        assert!(sent < hello.len() - 20, "dropped after {at:?}");
    });
}

/// How long a send or a broadcast may take at most: it never waits for a
/// peer (a blocking one would wait up to the write timeout, seconds), but
/// the machine may be busy.
pub(crate) const SENDS_RETURN_WITHIN: Duration = Duration::from_millis(250);
