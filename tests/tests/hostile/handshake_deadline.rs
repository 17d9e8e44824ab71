//! 2. The handshake deadline, however the bytes arrive.

use super::*;

/// The handshake timeout in these tests.
pub(crate) const HANDSHAKE: Duration = Duration::from_millis(500);
/// How often a trickler sends its next piece.
pub(crate) const TRICKLE: Duration = Duration::from_millis(100);

/// Sends `pieces` on `sock` one every [`TRICKLE`] (a slow peer, not a
/// synchronisation), from `connected` on, until the server drops the
/// connection. Returns when that was, after `connected`, and how many
/// pieces had gone out; fails if all went out first.
pub(crate) fn trickle(
    sock: TcpStream,
    connected: Instant,
    pieces: Vec<Vec<u8>>,
) -> thread::JoinHandle<(Duration, usize)> {
    let (dropped_tx, dropped) = mpsc::channel();
    let mut reader = sock.try_clone().unwrap();
    reader.set_read_timeout(Some(WAIT)).unwrap();
    // Whatever the server sends (TLS handshake records) is read and
    // dropped; its EOF (or a reset) is the drop.
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(1..) = reader.read(&mut buf) {}
        let _ = dropped_tx.send(connected.elapsed());
    });
    thread::spawn(move || {
        let mut sock = sock;
        let total = pieces.len();
        for (sent, piece) in pieces.into_iter().enumerate() {
            match dropped.recv_timeout(TRICKLE) {
                Ok(at) => return (at, sent),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!("trickle reader gone"),
            }
            if sock.write_all(&piece).is_err() {
                break;
            }
        }
        let at = dropped.recv_timeout(WAIT).expect("dropped by the server");
        panic!("all {total} pieces went out before the drop at {at:?}");
    })
}

pub(crate) fn bytes_one_by_one(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.iter().map(|b| vec![*b]).collect()
}

/// Every handshake ends at `handshake_timeout` counted from the TCP accept,
/// however slowly its bytes come: a ClientHello trickled a byte at a time;
/// over a finished TLS handshake, an upgrade request trickled byte by byte
/// in one record or one record per byte; a plain TCP upgrade request
/// trickled byte by byte. Each trickle alone would take 15 s or more.
///
/// An engine that times only the silence between reads (a socket read
/// timeout) never drops the TLS ones: a byte comes every 100 ms.
#[test]
fn trickled_handshakes_are_dropped_at_the_deadline_over_tls_and_tcp() {
    bounded(30, || {
        let identity = tls::identity();
        let (wss, _wss_events) = start(
            ServerConfig::default()
                .handshake_timeout(HANDSHAKE)
                .tls(identity.server_config()),
            None,
        );
        let (ws, _ws_events) = start(ServerConfig::default().handshake_timeout(HANDSHAKE), None);
        let mut tricklers = Vec::new();

        // A ClientHello, a byte at a time.
        let connected = Instant::now();
        let sock = TcpStream::connect(wss.local_addr()).unwrap();
        let hello = client_hello(&identity);
        tricklers.push((
            "ClientHello",
            trickle(sock, connected, bytes_one_by_one(&hello)),
        ));

        // TLS done, then the request in one record, a byte at a time.
        let connected = Instant::now();
        let (mut conn, sock) = tls_connect(wss.local_addr(), &identity);
        let record = seal(&mut conn, UPGRADE.as_bytes());
        tricklers.push((
            "one record",
            trickle(sock, connected, bytes_one_by_one(&record)),
        ));

        // TLS done, then one record per byte of the request.
        let connected = Instant::now();
        let (mut conn, sock) = tls_connect(wss.local_addr(), &identity);
        let records = UPGRADE.bytes().map(|b| seal(&mut conn, &[b])).collect();
        tricklers.push(("a record per byte", trickle(sock, connected, records)));

        // Plain TCP: the request a byte at a time.
        let connected = Instant::now();
        let sock = TcpStream::connect(ws.local_addr()).unwrap();
        tricklers.push((
            "plain",
            trickle(sock, connected, bytes_one_by_one(UPGRADE.as_bytes())),
        ));

        for (what, trickler) in tricklers {
            let (at, sent) = trickler.join().unwrap();
            eprintln!("{what}: dropped after {at:?}, {sent} pieces sent");
            assert!(
                at >= HANDSHAKE - Duration::from_millis(50) && at < HANDSHAKE + Duration::from_secs(1),
                "{what}: dropped after {at:?} ({sent} pieces sent), not at the {HANDSHAKE:?} deadline"
            );
        }
        wait_for("no handshake left", WAIT, || {
            wss.handshaking() == 0 && ws.handshaking() == 0
        });
        // Both still serve.
        echo_round_trips(&mut tung_wss(&wss, &identity), &[10]);
        echo_round_trips(&mut tung_ws(&ws), &[10]);
        wss.shutdown();
        ws.shutdown();
    });
}
