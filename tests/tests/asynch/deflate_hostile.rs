//! permessage-deflate in the async driver against peers that misbehave:
//! decompression bombs (1009) and compressed invalid text (1007) in both
//! roles, bad extension answers refused by the client.

use super::*;

// ---------------------------------------------------------------------------
// Bombs and bad compressed text, both roles
// ---------------------------------------------------------------------------

/// A compressed message payload that inflates to `mib` MiB of zeros: the
/// compressed form of 1 MiB of zeros (sync-flushed, self-contained)
/// repeated, about 1 KiB per MiB.
fn bomb(mib: usize) -> Vec<u8> {
    let piece = compressed_payload(&vec![0u8; 1 << 20]);
    let mut out = Vec::new();
    for _ in 0..mib {
        out.extend_from_slice(&piece);
        // The sync flush's tail the sender removed: pieces concatenate.
        out.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    }
    // The message's own tail is appended by the receiver.
    out.truncate(out.len() - 4);
    out
}

/// `data` compressed as one self-contained message payload (no context).
fn compressed_payload(data: &[u8]) -> Vec<u8> {
    let headers = [handshake::Header {
        name: "Sec-WebSocket-Extensions",
        value: b"permessage-deflate; client_no_context_takeover",
    }];
    let params = negotiate(
        &headers,
        &DeflateConfig::DEFAULT.client_no_context_takeover(true),
    )
    .unwrap();
    let mut frame = Vec::new();
    Compressor::new(Role::Client, &params, 9).write_message(
        snowsocket_core::MessageKind::Binary,
        data,
        None,
        &mut frame,
    );
    let mut head = frame.clone();
    head[0] &= !0x40;
    let (_, used) = FrameHeader::decode(&head).unwrap().unwrap();
    frame.split_off(used)
}

/// A frame with RSV1 set: `opcode`, `payload`, masked when `mask`.
fn compressed_frame(opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mask = mask.then_some([1, 2, 3, 4]);
    snowsocket_tests::frame(true, 0b100, opcode, mask, payload)
}

/// A raw client: upgrades with a permessage-deflate offer; the answer
/// must accept it.
async fn raw_deflate_peer(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
        "{head}"
    );
    stream
}

/// Everything `stream` receives until the peer closes it, or resets it:
/// a server that fails a connection while a large frame is still arriving
/// closes its socket with input unread, which resets the connection after
/// its Close went out.
async fn received(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk).await {
        bytes.extend_from_slice(&chunk[..n]);
    }
    bytes
}

/// Reads an HTTP head, byte by byte.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("the head");
        head.push(byte);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn the_async_server_refuses_a_bomb_with_1009_and_bad_compressed_text_with_1007() {
    run_for(120, async {
        let config = QUIET.max_message_size(1 << 20);
        let (addr, mut outcomes) = async_server(config, Some(PerMessageDeflate::default())).await;
        // 64 MiB of zeros in about 64 KiB: refused once past 1 MiB.
        let mut raw = raw_deflate_peer(addr).await;
        raw.write_all(&compressed_frame(0x2, &bomb(64), true))
            .await
            .unwrap();
        assert_eq!(
            snowsocket_tests::close_code(&received(&mut raw).await),
            Some(1009)
        );
        let outcome = outcomes.recv().await.unwrap();
        assert!(
            matches!(outcome, Err(DriverError::Connection(_))),
            "{outcome:?}"
        );
        // Exactly the limit is fine.
        let mut raw = raw_deflate_peer(addr).await;
        let payload = compressed_payload(&vec![b'a'; 1 << 20]);
        raw.write_all(&compressed_frame(0x2, &payload, true))
            .await
            .unwrap();
        raw.write_all(&snowsocket_tests::frame(
            true,
            0,
            0x8,
            Some([0; 4]),
            &1000u16.to_be_bytes(),
        ))
        .await
        .unwrap();
        let mut got = b"\r\n\r\n".to_vec();
        got.extend_from_slice(&received(&mut raw).await);
        let frames = data_frames(&got);
        assert_eq!(frames.len(), 1, "the echo: {frames:?}");
        assert!(
            frames[0].rsv1 && frames[0].len * 100 < 1 << 20,
            "{frames:?}"
        );
        assert!(got.ends_with(&[0x88, 0x02, 0x03, 0xe8]), "then Close 1000");
        assert!(outcomes.recv().await.unwrap().is_ok());
        // Text that inflates to invalid UTF-8.
        let mut raw = raw_deflate_peer(addr).await;
        let payload = compressed_payload(b"valid, then \xff not");
        raw.write_all(&compressed_frame(0x1, &payload, true))
            .await
            .unwrap();
        assert_eq!(
            snowsocket_tests::close_code(&received(&mut raw).await),
            Some(1007)
        );
        let outcome = outcomes.recv().await.unwrap();
        assert!(
            matches!(outcome, Err(DriverError::Connection(_))),
            "{outcome:?}"
        );
    });
}

/// A one-shot server: answers the upgrade with `extensions` (if any) as
/// its `Sec-WebSocket-Extensions` value, then sends `then` and returns
/// what the client sent after the handshake.
async fn answering(
    extensions: Option<&'static str>,
    then: Vec<u8>,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let head = read_head(&mut s).await;
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_owned();
        let accept = handshake::accept_key(key.as_bytes());
        let extension = extensions
            .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extension}\r\n",
            core::str::from_utf8(&accept).unwrap()
        );
        // The client may already have hung up: ignore write errors.
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.write_all(&then).await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        rest
    });
    (addr, task)
}

#[test]
fn the_async_client_refuses_a_bomb_with_1009() {
    run_for(60, async {
        let bomb = compressed_frame(0x2, &bomb(64), false);
        let (addr, server) = answering(Some("permessage-deflate"), bomb).await;
        let (mut read, mut write) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
        let stream = TcpStream::connect(addr).await.unwrap();
        let host = addr.to_string();
        let request = ClientRequest::new(&host, "/");
        let parts = Parts::new(
            &mut read,
            &mut write,
            Vec::new(),
            XorShiftRng::new(3),
            TokioClock::new(),
        )
        .config(QUIET.max_message_size(1 << 20));
        let options = PerMessageDeflate::default();
        let (mut ws, _) =
            WebSocket::connect_deflate(FromTokio::new(stream), parts, &request, &options)
                .await
                .unwrap();
        assert!(ws.deflate().is_some());
        let outcome = ws.read().await.map(|_| ());
        assert!(
            matches!(
                outcome,
                Err(DriverError::Connection(snowsocket_core::Error::Protocol(
                    snowsocket_core::ProtocolError::MessageTooLarge { .. }
                )))
            ),
            "{outcome:?}"
        );
        drop(ws);
        assert_eq!(
            snowsocket_tests::close_code(&server.await.unwrap()),
            Some(1009)
        );
    });
}

#[test]
fn the_async_client_refuses_bad_extension_answers() {
    run_for(60, async {
        let cases = bad_answers();
        for (answer, offer) in &cases {
            let (addr, server) = answering(Some(answer), Vec::new()).await;
            let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
            let result = tapped(addr, &mut read, &mut write, offer.as_ref()).await;
            assert!(
                matches!(
                    result,
                    Err(DriverError::Handshake(HandshakeError::UnexpectedExtensions))
                ),
                "{answer} / {offer:?}: {:?}",
                result.map(|_| ())
            );
            server.await.unwrap();
        }
        // A server that declines: the connection opens without it.
        let (addr, server) = answering(None, Vec::new()).await;
        let (mut read, mut write) = (vec![0; 4096], vec![0; 4096]);
        let (ws, _) = tapped(
            addr,
            &mut read,
            &mut write,
            Some(&PerMessageDeflate::default()),
        )
        .await
        .unwrap();
        assert!(ws.deflate().is_none());
        drop(ws);
        server.await.unwrap();
    });
}
