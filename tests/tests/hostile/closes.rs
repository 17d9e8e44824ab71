//! 1. Closes that peers receive.

use super::*;

/// The server's message and frame limit in these tests.
pub(crate) const LIMIT: usize = 64 << 10;
/// What the peers send: 16 times the limit.
pub(crate) const OVERSIZED: usize = 1 << 20;

pub(crate) fn limited() -> ServerConfig {
    ServerConfig::default().connection(NO_PINGS.max_message_size(LIMIT).max_frame_size(LIMIT))
}

/// One message of [`OVERSIZED`] bytes as client frames: one frame (refused
/// on its header), or 16 KiB fragments (refused once they pass the limit,
/// in the middle of the stream).
pub(crate) fn oversized(fragmented: bool) -> Vec<u8> {
    if !fragmented {
        return client_frame(true, OpCode::Binary, &payload(OVERSIZED));
    }
    let piece = payload(16 << 10);
    let count = OVERSIZED / piece.len();
    let mut bytes = Vec::new();
    for i in 0..count {
        let opcode = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        bytes.extend(client_frame(i + 1 == count, opcode, &piece));
    }
    bytes
}

/// Writes `bytes` on a thread, in pieces, as a client that keeps sending
/// regardless of what the server said; returns how far it got.
pub(crate) fn keep_sending(
    mut sock: TcpStream,
    bytes: Arc<Vec<u8>>,
) -> thread::JoinHandle<std::io::Result<()>> {
    thread::spawn(move || {
        for piece in bytes.chunks(16 << 10) {
            sock.write_all(piece)?;
        }
        Ok(())
    })
}

/// Reads the server's frames (after `buf`) while `writer` sends: the
/// Close must be 1009 and the stream must then end cleanly, and every
/// write must have gone through.
pub(crate) fn read_1009_while_sending(
    reader: &mut impl Read,
    buf: Vec<u8>,
    writer: thread::JoinHandle<std::io::Result<()>>,
    round: usize,
) {
    let (code, end) = read_close(reader, buf);
    assert_eq!((code, end), (Some(1009), End::Eof), "round {round}");
    let written = writer.join().unwrap();
    assert!(
        written.is_ok(),
        "round {round}: the peer's writes: {written:?}"
    );
}

/// A client streaming a message past the size limit reads the server's
/// 1009 every time, then a clean end (EOF; under TLS close_notify first),
/// never a reset; its writes all go through (the server reads and drops
/// them after its Close); `on_close` reports the 1009.
///
/// Against an engine that closes the socket both ways right after its
/// Close, the kernel resets the connection (unread input), destroying the
/// Close in flight: the peer reads a reset (or EOF) without the Close, and
/// its writes fail.
#[test]
fn a_peer_that_keeps_sending_past_the_limit_reads_1009_every_time() {
    bounded(60, || {
        let started = Instant::now();
        let (server, events) = start(limited(), None);
        let addr = server.local_addr();
        let single = Arc::new(oversized(false));
        let fragments = Arc::new(oversized(true));
        for round in 0..50 {
            let bytes = if round % 2 == 0 { &single } else { &fragments };
            let mut raw = Raw::connect(addr);
            let writer = keep_sending(raw.stream.try_clone().unwrap(), Arc::clone(bytes));
            let buf = core::mem::take(&mut raw.buf);
            read_1009_while_sending(&mut raw.stream, buf, writer, round);
            drop(raw);
            let (_, info) = events.close();
            assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG), "round {round}");
            assert!(
                matches!(info.cause, CloseCause::ProtocolError(_)),
                "round {round}: {info:?}"
            );
        }
        // tungstenite, as an independent client: its send of the whole
        // message goes through, then it reads the 1009 and a clean end.
        for round in 0..5 {
            let mut ws = tung_ws(&server);
            ws.send(tungstenite::Message::binary(payload(OVERSIZED)))
                .unwrap();
            match ws.read() {
                Ok(tungstenite::Message::Close(Some(frame))) => {
                    assert_eq!(u16::from(frame.code), 1009, "tungstenite round {round}");
                }
                other => panic!("tungstenite round {round}: expected Close 1009, got {other:?}"),
            }
            match ws.read() {
                Err(tungstenite::Error::ConnectionClosed) => {}
                other => panic!("tungstenite round {round}: expected a clean end, got {other:?}"),
            }
            drop(ws);
            assert_eq!(events.close().1.code, Some(CloseCode::MESSAGE_TOO_BIG));
        }
        server.shutdown();
        eprintln!(
            "ws:// 50 raw + 5 tungstenite rounds: {:?}",
            started.elapsed()
        );
    });
}

/// The same over `wss://`: the client's records are sealed in advance and
/// written by another thread while it reads: it gets the 1009, then the
/// server's close_notify, never a reset.
#[test]
fn a_tls_peer_that_keeps_sending_past_the_limit_reads_1009_then_close_notify() {
    bounded(60, || {
        let started = Instant::now();
        let identity = tls::identity();
        let (server, events) = start(limited().tls(identity.server_config()), None);
        let addr = server.local_addr();
        for round in 0..6 {
            let mut reader = tls_upgraded(addr, &identity);
            let records = seal(&mut reader.conn, &oversized(round % 2 == 1));
            let writer = keep_sending(reader.sock.try_clone().unwrap(), Arc::new(records));
            read_1009_while_sending(&mut reader, Vec::new(), writer, round);
            drop(reader);
            assert_eq!(
                events.close().1.code,
                Some(CloseCode::MESSAGE_TOO_BIG),
                "round {round}"
            );
        }
        server.shutdown();
        eprintln!("wss:// 6 rounds: {:?}", started.elapsed());
    });
}
