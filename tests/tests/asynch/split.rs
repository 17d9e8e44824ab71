//! The split halves on tokio when both ends send a large message at once
//! and read only once it is out (a peer with one task, or a full-duplex
//! one whose reads wait on its own sends): a Ping from the peer must not
//! stop our reader behind our writer's frame, else neither end ever
//! reads again.

use embedded_io_adapters::tokio_1::FromTokio;
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::{Parts, Role};
use snowsocket_tests::asynch::{accept_split, upgrade};
use snowsocket_tests::{close_payload, frame_from, header};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

use super::*;

/// Each end's message: many times what the socket buffers between the
/// two ends hold, so neither send can complete before the other end
/// reads.
const LARGE: usize = 6 << 20;

/// `SO_SNDBUF` and `SO_RCVBUF` of both ends (Linux doubles them, and
/// turns their autotuning off).
const SOCKET_BUFFER: u32 = 64 * 1024;

/// Plenty for 2 × 6 MiB over loopback in a debug build; a deadlock fails
/// the test here, well before the run's own timeout.
const DEADLOCK: Duration = Duration::from_secs(20);

/// The Ping's payload.
const PING: &[u8] = b"are you there";

fn small_buffers(socket: &TcpSocket) {
    socket.set_send_buffer_size(SOCKET_BUFFER).unwrap();
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
}

/// A listener on 127.0.0.1:0 whose connections have [`small_buffers`].
fn small_listener() -> tokio::net::TcpListener {
    let listening = TcpSocket::new_v4().unwrap();
    small_buffers(&listening);
    listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    listening.listen(8).unwrap()
}

/// What the reader hands out, owned.
fn owned(event: Event<'_>) -> (OpCode, Vec<u8>) {
    match event {
        Event::Ping(p) => (OpCode::Ping, p.to_vec()),
        Event::Binary(b) => (OpCode::Binary, b.to_vec()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_ping_while_both_ends_send_large_messages_does_not_stop_the_split_reader() {
    run(async {
        let listener = small_listener();
        let addr = listener.local_addr().unwrap();
        let theirs: Vec<u8> = (0..LARGE).map(|i| (i * 7 % 251) as u8).collect();

        // The peer: once our frame has begun, a Ping and its own message,
        // reading nothing until all of it is out; then the rest of ours,
        // the Pong and our Close, and its Close in answer.
        let sent = theirs.clone();
        let peer = tokio::spawn(async move {
            let socket = TcpSocket::new_v4().unwrap();
            small_buffers(&socket);
            let mut stream = socket.connect(addr).await.unwrap();
            upgrade(&mut stream, addr).await;
            let mut wire = vec![0; 10];
            stream.read_exact(&mut wire).await.unwrap();
            assert_eq!(wire, header(true, 0, 2, None, LARGE as u64));
            let mut burst = frame_from(Role::Client, true, OpCode::Ping, PING);
            burst.extend(frame_from(Role::Client, true, OpCode::Binary, &sent));
            stream.write_all(&burst).await.unwrap();
            let mut rest = vec![0; LARGE + (2 + PING.len()) + (2 + 2)];
            stream.read_exact(&mut rest).await.unwrap();
            wire.extend(rest);
            let close = close_payload(1000, b"");
            let answer = frame_from(Role::Client, true, OpCode::Close, &close);
            stream.write_all(&answer).await.unwrap();
            (wire, read_to_end(&mut stream).await)
        });

        let (stream, _) = listener.accept().await.unwrap();
        let config = Config::default().ping_interval(None);
        let (mut reader, mut writer) = accept_split(stream, 64 * 1024, config).await;

        let sending = tokio::spawn(async move {
            writer.send_binary(&payload(LARGE)).await.unwrap();
            writer
        });
        let reading = tokio::spawn(async move {
            let ping = reader.read(owned).await.unwrap();
            let message = reader.read(owned).await.unwrap();
            (reader, ping, message)
        });
        let both = async { (sending.await.unwrap(), reading.await.unwrap()) };
        let (mut writer, (mut reader, ping, message)) = tokio::time::timeout(DEADLOCK, both)
            .await
            .expect("deadlock: our reader stopped reading behind our writer's frame");
        assert_eq!(ping, (OpCode::Ping, PING.to_vec()));
        assert_eq!(message.0, OpCode::Binary);
        assert!(message.1 == theirs, "the peer's message came back changed");

        writer.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(reader.read_message(|_| ()).await.unwrap(), None);
        drop((reader, writer));
        let (wire, after) = peer.await.unwrap();
        let frames = parse_frames(&wire);
        let kinds: Vec<OpCode> = frames.iter().map(|f| f.opcode).collect();
        // The Pong waited for our frame, and went right after it.
        assert_eq!(kinds, [OpCode::Binary, OpCode::Pong, OpCode::Close]);
        assert!(
            frames[0].payload == payload(LARGE),
            "our message arrived changed"
        );
        assert_eq!(frames[1].payload, PING);
        assert_eq!(frames[2].close_code(), Some(1000));
        assert!(after.is_empty(), "{} bytes after our Close", after.len());
    });
}

/// After failing a connection (1009) the split reader, like the one-value
/// driver, reads past what the peer still sends until its Close: an
/// independent raw peer that keeps sending a message far over the limit
/// reads the 1009 every time (no reset destroys it).
#[test]
fn the_split_reader_lingers_after_failing_so_the_peer_reads_the_1009() {
    use core::cell::RefCell;

    use snowsocket_tests::linger::{is_frame_too_large, oversize_peer, OVERSIZED};
    const ROUNDS: usize = 50;
    let started = std::time::Instant::now();
    run(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peers = tokio::task::spawn_blocking(move || {
            (0..ROUNDS).map(|_| oversize_peer(addr)).collect::<Vec<_>>()
        });
        let config = Config::default()
            .ping_interval(None)
            .max_message_size(OVERSIZED / 64)
            .max_frame_size(OVERSIZED / 64)
            .close_timeout(Duration::from_secs(5));
        for round in 0..ROUNDS {
            let (stream, _) = listener.accept().await.unwrap();
            let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
            let parts = Parts::server(&mut read, &mut write, Vec::new(), TokioClock::new(), 1)
                .config(config);
            let ws = WebSocket::accept(FromTokio::new(stream), parts)
                .await
                .unwrap();
            let (half, shared) = ws
                .split(|io| {
                    let (r, w) = io.into_inner().into_split();
                    (FromTokio::new(r), FromTokio::new(w))
                })
                .await
                .unwrap();
            let shared = RefCell::new(shared);
            let (mut reader, _writer) = half.with(&shared);
            let outcome = reader.read(owned).await;
            let failure = outcome.as_ref().err();
            assert!(
                failure.is_some_and(is_frame_too_large),
                "round {round}: {outcome:?}"
            );
        }
        let codes = tokio::time::timeout(Duration::from_secs(60), peers)
            .await
            .expect("the peers finish in time")
            .unwrap();
        for (round, code) in codes.iter().enumerate() {
            assert_eq!(code, &Ok(1009), "round {round}");
        }
    });
    assert!(started.elapsed() < Duration::from_secs(90));
}

/// A peer that stops reading while our writer is in the middle of a
/// large frame, and sends nothing: the heartbeat Ping cannot go out
/// behind the frame, the peer takes none of our bytes for the pong
/// timeout, and the connection is failed; its Close cannot go out either,
/// so after the close timeout both halves are told (no task hangs in a
/// write that will never complete).
#[test]
fn a_peer_that_stops_reading_mid_frame_is_found_dead_by_both_halves() {
    run(async {
        let listener = small_listener();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The peer: the upgrade, then nothing, until the test is over.
        let peer = tokio::spawn(async move {
            let socket = TcpSocket::new_v4().unwrap();
            small_buffers(&socket);
            let mut stream = socket.connect(addr).await.unwrap();
            upgrade(&mut stream, addr).await;
            let _ = stopped.await;
            drop(stream);
        });

        let (stream, _) = listener.accept().await.unwrap();
        let config = Config::default()
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(300))
            .close_timeout(Duration::from_millis(500));
        let (mut reader, mut writer) = accept_split(stream, 4096, config).await;
        let started = std::time::Instant::now();
        let sending = tokio::spawn(async move { writer.send_binary(&payload(LARGE)).await });
        let reading = tokio::spawn(async move { reader.read(owned).await.map(|_| ()) });
        let both = async { (sending.await.unwrap(), reading.await.unwrap()) };
        let (sent, read) = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("a half still waits on a peer that takes nothing");
        let took = started.elapsed();
        let pong_timeout = |r: &Result<(), snowsocket_core::DriverError<std::io::Error>>| {
            matches!(
                r,
                Err(snowsocket_core::DriverError::Connection(
                    snowsocket_core::Error::PongTimeout
                ))
            )
        };
        assert!(pong_timeout(&read), "the reader: {read:?}");
        assert!(pong_timeout(&sent), "the writer: {sent:?}");
        // Ping due at 100 ms, no progress for 300 ms, 500 ms for the Close.
        assert!(
            took >= Duration::from_millis(850),
            "given up after {took:?}"
        );
        let _ = stop.send(());
        peer.await.unwrap();
    });
}
