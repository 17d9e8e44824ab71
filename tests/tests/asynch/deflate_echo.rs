//! permessage-deflate in the async driver: echo with every parameter in
//! both roles (against our async and std peers), 0 B to 16 MiB, and the
//! split writer compressing in order.

use super::*;

// ---------------------------------------------------------------------------
// Echo with every parameter, both roles
// ---------------------------------------------------------------------------

#[test]
fn async_client_and_async_server_with_every_parameter() {
    run_for(120, async {
        for (what, server, client, want) in configurations() {
            let (addr, mut outcomes) = async_server(QUIET, Some(server)).await;
            let (mut read, mut write) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
            let (mut ws, log) = tapped(addr, &mut read, &mut write, Some(&client))
                .await
                .unwrap();
            check_params(what, &ws, want);
            exchange(what, &mut ws, &log).await;
            // Back to back: the server finds many in one read and its
            // compressed replies wait in its output to go out together,
            // in order.
            let burst: Vec<String> = (0..200).map(|i| json(100 + i, i)).collect();
            for m in &burst {
                ws.send_text(m).await.unwrap();
            }
            for m in &burst {
                assert_eq!(ws.read().await.unwrap(), Event::Text(m), "{what}");
            }
            let frames = data_frames(&log.lock().unwrap().read);
            assert!(frames.iter().rev().take(200).all(|f| f.rsv1), "{what}");
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            assert!(outcomes.recv().await.unwrap().is_ok(), "{what}");
        }
    });
}

#[test]
fn async_client_against_the_std_server_with_every_parameter() {
    run_for(120, async {
        for (what, server, client, want) in configurations() {
            let server = std_server(server);
            let (mut read, mut write) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
            let (mut ws, log) = tapped(server.local_addr(), &mut read, &mut write, Some(&client))
                .await
                .unwrap();
            check_params(what, &ws, want);
            exchange(what, &mut ws, &log).await;
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            server.shutdown();
        }
    });
}

#[test]
fn std_client_against_the_async_server_with_every_parameter() {
    run_for(120, async {
        for (what, server, client, _) in configurations() {
            let (addr, mut outcomes) = async_server(QUIET, Some(server)).await;
            let want = {
                let offer = client.params.offer();
                let headers = [handshake::Header {
                    name: "Sec-WebSocket-Extensions",
                    value: offer.as_bytes(),
                }];
                negotiate(&headers, &server.params).unwrap().answer()
            };
            let answer = tokio::task::spawn_blocking(move || {
                let config = ClientConfig::default()
                    .connection(QUIET)
                    .permessage_deflate(client);
                let mut c = std_client::connect(&format!("ws://{addr}/"), config).unwrap();
                let answer = c
                    .response()
                    .header("Sec-WebSocket-Extensions")
                    .map(<[u8]>::to_vec);
                for (i, size) in [0, 10, 4096, 4096, 100_000].into_iter().enumerate() {
                    let text = json(size, i);
                    c.send_text(&text).unwrap();
                    match c.read_message().unwrap() {
                        Some(Message::Text(got)) => assert!(got == text, "{size} B"),
                        other => panic!("{other:?}"),
                    }
                }
                c.close(CloseCode::NORMAL, "").unwrap();
                answer
            })
            .await
            .unwrap();
            assert_eq!(answer.as_deref(), Some(want.as_bytes()), "{what}");
            assert!(outcomes.recv().await.unwrap().is_ok(), "{what}");
        }
    });
}

// ---------------------------------------------------------------------------
// 0 B to 16 MiB
// ---------------------------------------------------------------------------

const SIZES: &[usize] = &[
    0,
    1,
    63,
    64,
    125,
    126,
    65_535,
    65_536,
    65_537,
    1 << 20,
    16 << 20,
];

#[test]
fn async_client_against_the_std_server_from_empty_to_16_mib() {
    run_for(400, async {
        let server = std_server(PerMessageDeflate::default());
        let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
        let (mut ws, log) = tapped(
            server.local_addr(),
            &mut read,
            &mut write,
            Some(&PerMessageDeflate::default()),
        )
        .await
        .unwrap();
        assert!(ws.deflate().is_some());
        for (i, &size) in SIZES.iter().enumerate() {
            let text = json(size, i);
            if i % 2 == 0 {
                ws.send_text(&text).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Text(&text)),
                    "{size} B"
                );
            } else {
                ws.send_binary(text.as_bytes()).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Binary(text.as_bytes())),
                    "{size} B"
                );
            }
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        let log = log.lock().unwrap();
        // One frame per message each way, compressed from 64 bytes on.
        for (dir, frames) in [
            ("sent", data_frames(&log.written)),
            ("received", data_frames(&log.read)),
        ] {
            assert_eq!(frames.len(), SIZES.len(), "{dir}");
            for (frame, &size) in frames.iter().zip(SIZES) {
                assert_eq!(frame.rsv1, size >= 64, "{dir} {size} B: {frame:?}");
                if size >= 1024 {
                    assert!(frame.len * 3 < size, "{dir} {size} B: {frame:?}");
                }
            }
        }
        server.shutdown();
    });
}

#[test]
fn std_client_against_the_async_server_from_empty_to_16_mib() {
    run_for(400, async {
        let (addr, mut outcomes) = async_server(QUIET, Some(PerMessageDeflate::default())).await;
        tokio::task::spawn_blocking(move || {
            let config = ClientConfig::default()
                .connection(QUIET)
                .permessage_deflate(PerMessageDeflate::default());
            let mut c = std_client::connect(&format!("ws://{addr}/"), config).unwrap();
            assert!(c.response().header("Sec-WebSocket-Extensions").is_some());
            for (i, &size) in SIZES.iter().enumerate() {
                let text = json(size, i);
                c.send_text(&text).unwrap();
                match c.read_message().unwrap() {
                    Some(Message::Text(got)) => assert!(got == text, "text of {size} B"),
                    other => panic!("{other:?}"),
                }
                c.send_binary(text.as_bytes()).unwrap();
                match c.read_message().unwrap() {
                    Some(Message::Binary(got)) => assert!(got == text.as_bytes(), "{size} B"),
                    other => panic!("{other:?}"),
                }
            }
            c.close(CloseCode::NORMAL, "").unwrap();
        })
        .await
        .unwrap();
        assert!(outcomes.recv().await.unwrap().is_ok());
    });
}

// ---------------------------------------------------------------------------
// The split writer
// ---------------------------------------------------------------------------

#[test]
fn the_split_writer_compresses_in_order_while_the_reader_reads() {
    run_for(120, async {
        let server = std_server(PerMessageDeflate::default());
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        let host = server.local_addr().to_string();
        let request = ClientRequest::new(&host, "/");
        let read: &'static mut [u8] = Box::leak(vec![0; 16 * 1024].into_boxed_slice());
        let write: &'static mut [u8] = Box::leak(vec![0; 16 * 1024].into_boxed_slice());
        let parts = Parts::new(
            read,
            write,
            Vec::new(),
            XorShiftRng::new(5),
            TokioClock::new(),
        )
        .config(QUIET);
        let options = PerMessageDeflate::default();
        let (ws, _) = WebSocket::connect_deflate(FromTokio::new(stream), parts, &request, &options)
            .await
            .unwrap();
        assert!(ws.deflate().is_some());
        let log = Arc::new(Mutex::new(Log::default()));
        let tap = Arc::clone(&log);
        let (half, shared) = ws
            .split(move |io| {
                let (r, w) = io.into_inner().into_split();
                (
                    FromTokio::new(r),
                    Tap {
                        io: FromTokio::new(w),
                        log: tap,
                    },
                )
            })
            .await
            .unwrap();
        let (mut reader, mut writer) = half.with(Arc::new(Mutex::new(shared)));
        const N: usize = 50;
        let messages: Vec<String> = (0..N).map(|i| json(2000 + i * 37, i)).collect();
        let sent = messages.clone();
        let writing = tokio::spawn(async move {
            for m in &sent {
                writer.send_text(m).await.unwrap();
            }
            writer
        });
        for (i, m) in messages.iter().enumerate() {
            let got = reader
                .read_message(|msg| match msg {
                    CoreMessage::Text(t) => t.to_owned(),
                    CoreMessage::Binary(_) => String::new(),
                })
                .await
                .unwrap();
            assert!(got.as_deref() == Some(m.as_str()), "message {i}");
        }
        let mut writer = writing.await.unwrap();
        writer.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(reader.read_message(|_| ()).await.unwrap(), None);
        // What the writer half wrote (its transport has no HTTP head).
        let mut written = b"\r\n\r\n".to_vec();
        written.extend_from_slice(&log.lock().unwrap().written);
        let frames = data_frames(&written);
        assert_eq!(frames.len(), N);
        assert!(frames.iter().all(|f| f.rsv1 && f.opcode == 1), "{frames:?}");
        // Context takeover: after the first, each refers to the ones before.
        let total: usize = frames.iter().map(|f| f.len).sum();
        let plain: usize = messages.iter().map(String::len).sum();
        assert!(total * 10 < plain, "{total} of {plain} bytes");
        server.shutdown();
    });
}
