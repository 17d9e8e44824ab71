//! The async driver on tokio: our async client against the tokio echo
//! server of `examples/tokio_echo_server.rs` (and against raw peers), over
//! real sockets on 127.0.0.1; permessage-deflate in `asynch/deflate.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "asynch/deflate.rs"]
mod deflate;
#[path = "asynch/in_place.rs"]
mod in_place;
#[path = "asynch/split.rs"]
mod split;

use core::net::SocketAddr;
use core::time::Duration;

use snowsocket_core::{CloseCode, Config, DriverError, Event, Message, MessageKind, OpCode};
use snowsocket_tests::asynch::{connect, raw_peer, read_to_end, run};
use snowsocket_tests::{frame, parse_frames};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The tokio echo server with `config` on 127.0.0.1:0; each connection's
/// outcome goes to the returned channel.
async fn echo_server(
    config: Config,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<(), snowsocket_examples::tokio_ws::EchoError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seed = 0;
        while let Ok((stream, _)) = listener.accept().await {
            seed += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let outcome = snowsocket_examples::tokio_ws::echo(stream, config, seed).await;
                let _ = tx.send(outcome);
            });
        }
    });
    (addr, rx)
}

/// A payload of `len` bytes that is also valid UTF-8 text.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn echo_from_empty_to_16_mib() {
    run(async {
        let (addr, mut outcomes) = echo_server(Config::default()).await;
        let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
        let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
        let sizes = [
            0,
            1,
            125,
            126,
            127,
            65_535,
            65_536,
            65_537,
            1 << 20,
            16 << 20,
        ];
        for (i, &len) in sizes.iter().enumerate() {
            let data = payload(len);
            let text = i % 2 == 0;
            if text {
                ws.send_text(core::str::from_utf8(&data).unwrap())
                    .await
                    .unwrap();
            } else {
                ws.send_binary(&data).await.unwrap();
            }
            match ws.read_message().await.unwrap() {
                Some(Message::Text(echo)) if text => assert!(echo.as_bytes() == data, "{len}"),
                Some(Message::Binary(echo)) if !text => assert!(echo == data, "{len}"),
                other => panic!("{len} B: {:?}", other.map(|_| "the wrong kind")),
            }
        }
        // A fragmented message is echoed whole.
        ws.send_fragment(MessageKind::Text, b"frag", false)
            .await
            .unwrap();
        ws.ping(b"between").await.unwrap();
        ws.send_fragment(MessageKind::Text, b"mented", true)
            .await
            .unwrap();
        assert_eq!(ws.read().await.unwrap(), Event::Pong(b"between"));
        assert_eq!(ws.read().await.unwrap(), Event::Text("fragmented"));
        ws.close(CloseCode::NORMAL, "done").await.unwrap();
        assert!(outcomes.recv().await.unwrap().is_ok());
    });
}

#[test]
fn a_message_over_the_limit_gets_1009() {
    run(async {
        let config = Config::default()
            .max_message_size(1024)
            .max_frame_size(1024);
        let (addr, mut outcomes) = echo_server(config).await;
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
        ws.send_binary(&payload(1024)).await.unwrap();
        assert_eq!(
            ws.read_message().await.unwrap(),
            Some(Message::Binary(&payload(1024)))
        );
        ws.send_binary(&payload(1025)).await.unwrap();
        match ws.read().await.unwrap() {
            Event::Close(Some(close)) => assert_eq!(close.code, CloseCode::MESSAGE_TOO_BIG),
            other => panic!("{other:?}"),
        }
        let server = outcomes.recv().await.unwrap();
        assert!(
            matches!(server, Err(DriverError::Connection(_))),
            "{server:?}"
        );
    });
}

#[test]
fn invalid_utf8_gets_1007_whole_or_fragmented() {
    run(async {
        let (addr, _outcomes) = echo_server(Config::default()).await;
        for fragmented in [false, true] {
            let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
            let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
            if fragmented {
                ws.send_fragment(MessageKind::Text, b"ok \xce", false)
                    .await
                    .unwrap();
                ws.send_fragment(MessageKind::Text, b"\xff", true)
                    .await
                    .unwrap();
            } else {
                ws.send(MessageKind::Text, b"bad \xff").await.unwrap();
            }
            match ws.read().await.unwrap() {
                Event::Close(Some(close)) => {
                    assert_eq!(
                        close.code,
                        CloseCode::INVALID_PAYLOAD,
                        "fragmented: {fragmented}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

#[test]
fn heartbeat_keeps_a_reading_peer_and_drops_a_silent_one() {
    run(async {
        let config = Config::default()
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(200));
        let (addr, mut outcomes) = echo_server(config).await;

        // A silent peer: the server's ping goes unanswered, then 1001.
        let mut silent = raw_peer(addr).await;
        let frames = parse_frames(&read_to_end(&mut silent).await);
        assert_eq!(
            frames.first().map(|f| f.opcode),
            Some(OpCode::Ping),
            "{frames:?}"
        );
        let close = frames.last().expect("a close frame");
        assert_eq!(close.close_code(), Some(1001));
        assert_eq!(&close.payload[2..], b"pong timeout");
        assert!(matches!(
            outcomes.recv().await.unwrap(),
            Err(DriverError::Connection(snowsocket_core::Error::PongTimeout))
        ));

        // Our client answers pings while it waits for a message, across
        // reads cancelled by a timeout (cancel-safe), for 8 intervals.
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
        for _ in 0..8 {
            let waited = tokio::time::timeout(Duration::from_millis(100), ws.read_message()).await;
            assert!(waited.is_err(), "no message was sent");
        }
        ws.send_text("still here").await.unwrap();
        assert_eq!(
            ws.read_message().await.unwrap(),
            Some(Message::Text("still here"))
        );
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(outcomes.recv().await.unwrap().is_ok());
    });
}

#[test]
fn close_handshake_both_ways() {
    run(async {
        let (addr, mut outcomes) = echo_server(Config::default()).await;
        // Our client closes: the server answers and ends cleanly.
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert!(outcomes.recv().await.unwrap().is_ok());
        assert!(ws.connection().is_closed());

        // A raw peer closes: the server's answer carries the same code.
        let mut raw = raw_peer(addr).await;
        let close = frame(
            true,
            0,
            OpCode::Close.as_u8(),
            Some([1, 2, 3, 4]),
            &[0x03, 0xe8],
        );
        raw.write_all(&close).await.unwrap();
        let frames = parse_frames(&read_to_end(&mut raw).await);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].close_code(), Some(1000));
        assert!(outcomes.recv().await.unwrap().is_ok());
    });
}

/// A plain HTTP/1.1 request on a fresh connection; the whole answer.
async fn http_get(addr: SocketAddr, path: &str, extra: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    String::from_utf8(read_to_end(&mut stream).await).unwrap()
}

/// A peer that sends no request, or trickles its head, does not hold its
/// connection (and task) past the header read timeout.
#[test]
fn hyper_upgrade_drops_a_peer_whose_request_head_does_not_arrive() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(snowsocket_examples::hyper_ws::serve_with(listener, TIMEOUT));
        for sent in ["", "GET /ws HTTP/1.1\r\nHost: x\r\n"] {
            let started = tokio::time::Instant::now();
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            // A byte every 100 ms, 3 s for the whole head, until the
            // server hangs up (a write fails, or the read ends).
            let trickle = async {
                for byte in sent.as_bytes() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let mut answer = Vec::new();
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer).await;
                let answer = String::from_utf8_lossy(&answer);
                assert!(
                    answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                    "{answer}"
                );
            };
            tokio::time::timeout(Duration::from_secs(20), trickle)
                .await
                .expect("the server ends the connection");
            assert!(
                started.elapsed() < TIMEOUT * 4,
                "{sent:?}: {:?}",
                started.elapsed()
            );
        }
    });
}

#[test]
fn hyper_serves_http_and_upgrades_ws_to_the_async_driver() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(snowsocket_examples::hyper_ws::serve(listener));

        let health = http_get(addr, "/health", "").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let page = http_get(addr, "/", "").await;
        assert!(
            page.starts_with("HTTP/1.1 200") && page.contains("new WebSocket("),
            "{page}"
        );
        assert!(http_get(addr, "/nothing", "")
            .await
            .starts_with("HTTP/1.1 404"));
        // An upgrade without a key is refused with snowsocket's status.
        let bad = http_get(
            addr,
            "/ws",
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        )
        .await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");

        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let parts = snowsocket_core::Parts::new(
            &mut read,
            &mut write,
            Vec::new(),
            snowsocket_tests::XorShiftRng::new(3),
            snowsocket_core::asynch::TokioClock::new(),
        );
        let host = addr.to_string();
        let request = snowsocket_core::handshake::ClientRequest::new(&host, "/ws");
        let stream = embedded_io_adapters::tokio_1::FromTokio::new(stream);
        let (mut ws, _) = snowsocket_core::asynch::WebSocket::connect(stream, parts, &request)
            .await
            .unwrap();
        for len in [0, 5, 70_000] {
            ws.send_binary(&payload(len)).await.unwrap();
            assert_eq!(
                ws.read_message().await.unwrap(),
                Some(Message::Binary(&payload(len)))
            );
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    });
}

#[test]
fn hyper_upgrade_agrees_to_permessage_deflate_and_compresses_both_ways() {
    use embedded_io_adapters::tokio_1::FromTokio;
    use snowsocket_core::asynch::{TokioClock, WebSocket};
    use snowsocket_core::deflate::PerMessageDeflate;
    use snowsocket_core::handshake::ClientRequest;
    use snowsocket_tests::tap::tap;

    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        tokio::spawn(snowsocket_examples::hyper_ws::serve(listener));
        // The wire between our client and hyper_upgrade.
        let (addr, tapped) = tap(upstream);
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let parts = snowsocket_core::Parts::new(
            &mut read,
            &mut write,
            Vec::new(),
            snowsocket_tests::XorShiftRng::new(4),
            TokioClock::new(),
        );
        let host = addr.to_string();
        let request = ClientRequest::new(&host, "/ws");
        let options = PerMessageDeflate::DEFAULT;
        let (mut ws, _) =
            WebSocket::connect_deflate(FromTokio::new(stream), parts, &request, &options)
                .await
                .unwrap();
        assert!(ws.deflate().is_some(), "the offer was declined");
        let text = "snowsocket, hyper and permessage-deflate. ".repeat(2_000);
        let sizes = [0, 10, 200, 70_000];
        for len in sizes {
            ws.send_text(&text[..len]).await.unwrap();
            assert_eq!(
                ws.read_message().await.unwrap(),
                Some(Message::Text(&text[..len]))
            );
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();

        let (up, down) = (tapped.up.lock().unwrap(), tapped.down.lock().unwrap());
        let answer = down.head().to_ascii_lowercase();
        assert!(
            answer.contains("\r\nsec-websocket-extensions: permessage-deflate"),
            "{answer}"
        );
        // Both ways: from `min_size` (64 B) on a message goes compressed
        // (RSV1) and shrinks; shorter ones go as they are.
        for (direction, wire) in [("client → hyper", &up), ("hyper → client", &down)] {
            assert_eq!(wire.messages.len(), sizes.len(), "{direction}");
            for (message, len) in wire.messages.iter().zip(sizes) {
                assert_eq!(message.rsv1, len >= 64, "{direction}, {len} B");
                if len >= 200 {
                    assert!(message.bytes < len as u64 / 2, "{direction}: {message:?}");
                }
            }
        }
    });
}

#[test]
fn a_send_from_another_task_does_not_wait_for_the_read_and_the_reader_runs_the_heartbeat() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            // Silent after its handshake: answers nothing, sends nothing.
            let mut raw = raw_peer(addr).await;
            parse_frames(&read_to_end(&mut raw).await)
        });
        let (stream, _) = listener.accept().await.unwrap();
        let config = Config::default()
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(200));
        let (mut reader, mut writer) =
            snowsocket_tests::asynch::accept_split(stream, 4096, config).await;

        // Only the reader runs the connection: it waits for a message that
        // never comes, sends heartbeat pings, and ends on the pong timeout.
        let reader = tokio::spawn(async move { reader.read_message(|_| ()).await });
        let sent = tokio::spawn(async move {
            writer.send_text("from another task").await.unwrap();
            writer
        })
        .await
        .unwrap();
        assert!(
            !reader.is_finished(),
            "the send completed while the read was pending"
        );
        let outcome = reader.await.unwrap();
        assert!(
            matches!(
                outcome,
                Err(DriverError::Connection(snowsocket_core::Error::PongTimeout))
            ),
            "{outcome:?}"
        );
        drop(sent);
        let frames = peer.await.unwrap();
        let text = frames
            .iter()
            .find(|f| f.opcode == OpCode::Text)
            .expect("the text");
        assert_eq!(text.payload, b"from another task");
        assert!(
            frames.iter().any(|f| f.opcode == OpCode::Ping),
            "{frames:?}"
        );
        let close = frames.last().unwrap();
        assert_eq!(close.close_code(), Some(1001));
        assert_eq!(&close.payload[2..], b"pong timeout");
    });
}

#[test]
fn pipelined_messages_come_back_in_order_with_their_replies_batched() {
    run(async {
        let (addr, mut outcomes) = echo_server(Config::default()).await;
        let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
        let mut ws = connect(addr, &mut read, &mut write, Config::default()).await;
        // Sent back to back, so that the server finds many in one read and
        // answers them together; a ping among them is answered in order.
        for round in 0..3 {
            for i in 0..300 {
                ws.send_text(&format!("m{round}.{i}")).await.unwrap();
                if i == 150 {
                    ws.ping(b"among").await.unwrap();
                }
            }
            for i in 0..300 {
                let expected = format!("m{round}.{i}");
                assert_eq!(ws.read().await.unwrap(), Event::Text(&expected));
                if i == 150 {
                    assert_eq!(ws.read().await.unwrap(), Event::Pong(b"among"));
                }
            }
        }
        // The peer's Close right behind a burst: every echo before it, then
        // the answer to the Close.
        for i in 0..100 {
            ws.send_binary(&payload(i)).await.unwrap();
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(outcomes.recv().await.unwrap().is_ok());
    });
}

/// After failing a connection (1009) the async driver reads past what the
/// peer still sends until its Close, so the peer reads the 1009 every
/// time (no reset destroys it), here with an independent raw peer that
/// keeps sending a message far over the limit.
#[test]
fn a_peer_sending_past_the_limit_reads_the_1009_every_time() {
    use snowsocket_tests::linger::{is_frame_too_large, oversize_peer, OVERSIZED};
    const ROUNDS: usize = 50;
    let started = std::time::Instant::now();
    run(async {
        let config = Config::default()
            .ping_interval(None)
            .max_message_size(OVERSIZED / 64)
            .max_frame_size(OVERSIZED / 64)
            .close_timeout(Duration::from_secs(5));
        let (addr, mut outcomes) = echo_server(config).await;
        let peers = tokio::task::spawn_blocking(move || {
            (0..ROUNDS).map(|_| oversize_peer(addr)).collect::<Vec<_>>()
        });
        let codes = tokio::time::timeout(Duration::from_secs(60), peers)
            .await
            .expect("the peers finish in time")
            .unwrap();
        for (round, code) in codes.iter().enumerate() {
            assert_eq!(code, &Ok(1009), "round {round}");
        }
        for _ in 0..ROUNDS {
            let outcome = outcomes.recv().await.unwrap();
            let failure = outcome.as_ref().err();
            assert!(failure.is_some_and(is_frame_too_large), "{outcome:?}");
        }
    });
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The example's echo over a peer that sends and never reads: once the
/// peer's window is full, the echo's writes give up after the write
/// timeout (`WriteTimeout`) instead of holding the task and its buffers
/// for ever.
#[test]
fn a_peer_that_never_reads_is_given_up_after_the_write_timeout() {
    use snowsocket_core::asynch::WriteTimeoutError;
    use snowsocket_examples::tokio_ws::echo_with;
    const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
    const SIZE: usize = 256 * 1024;
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let config = Config::default()
                .ping_interval(None)
                .max_message_size(SIZE)
                .max_frame_size(SIZE);
            echo_with(stream, config, None, WRITE_TIMEOUT, 1).await
        });
        let mut peer = raw_peer(addr).await;
        let message = frame(true, 0, 2, Some([1, 2, 3, 4]), &vec![7; SIZE]);
        // Send until the server stops reading (its echoes have filled
        // both sides' buffers: a write waits a second) or gives us up (a
        // reset: it dropped the connection with our bytes unread).
        let mut sent = 0;
        while sent < 256 {
            let write = peer.write_all(&message);
            match tokio::time::timeout(Duration::from_secs(1), write).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(e)) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
                    break;
                }
                Err(_) => break,
            }
        }
        assert!(sent < 256, "the server read 64 MiB without writing back");
        let outcome = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .expect("the server gave the peer up")
            .unwrap();
        assert!(
            matches!(outcome, Err(DriverError::Io(WriteTimeoutError::TimedOut))),
            "{outcome:?}"
        );
        drop(peer);
    });
}
