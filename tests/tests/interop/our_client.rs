//! The peer as server, our blocking client.

use super::*;

/// Starts `spec` (a peer server) and connects our client with `config` to
/// it (trusting the test certificate under TLS): the peer, how it saw the
/// connection open, our client.
fn connect_ours(
    spec: interop::PeerSpec,
    certs: Option<&CertFiles>,
    config: ClientConfig,
) -> (Peer, Opened, Client) {
    let mut peer = spec.tls(certs).spawn();
    let port = peer.listening();
    let (scheme, config) = match certs {
        Some(c) => ("wss", config.add_root_der(c.identity.cert_der.to_vec())),
        None => ("ws", config),
    };
    let url = format!("{scheme}://127.0.0.1:{port}/");
    let client = client::connect(&url, config)
        .unwrap_or_else(|e| peer.fail(&format!("our client could not connect to {url}: {e}")));
    let opened = peer.opened();
    (peer, opened, client)
}

/// The next message our client reads, owned.
fn read(client: &mut Client, peer: &Peer) -> (MessageKind, Vec<u8>) {
    match client.read_message() {
        Ok(Some(Message::Text(t))) => (MessageKind::Text, t.as_bytes().to_vec()),
        Ok(Some(Message::Binary(b))) => (MessageKind::Binary, b.to_vec()),
        other => peer.fail(&format!("our client read {other:?}")),
    }
}

pub(super) fn client_echo(lang: Lang, certs: Option<&CertFiles>) {
    let (mut peer, _, mut client) =
        connect_ours(interop::server(lang).echo(), certs, ClientConfig::default());
    for len in SIZES {
        for (kind, name) in [(MessageKind::Binary, "binary"), (MessageKind::Text, "text")] {
            let data = pattern_bytes(kind, len);
            client.send(kind, &data).unwrap();
            assert_eq!(peer.message(SLOW_WAIT), pattern(name, len), "{name} {len}");
            let (got_kind, got) = read(&mut client, &peer);
            assert_eq!(got_kind, kind, "{name} {len}");
            assert!(got == data, "{name} {len}: the echo differs");
        }
    }
    // A burst: the peer sends back to back, our client takes one message
    // at a time.
    for kind in [MessageKind::Binary, MessageKind::Text] {
        let name = if kind == MessageKind::Text {
            "text"
        } else {
            "binary"
        };
        peer.command(&format!("send {name} {BURST_LEN} {BURST}"));
        let data = pattern_bytes(kind, BURST_LEN);
        for i in 0..BURST {
            let (got_kind, got) = read(&mut client, &peer);
            assert!(got_kind == kind && got == data, "{name} burst message {i}");
        }
        peer.expect("sent", WAIT);
    }
    client.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(peer.closed(WAIT), (1000, "done".into()));
}

pub(super) fn client_fragments(lang: Lang, certs: Option<&CertFiles>) {
    let (mut peer, _, mut client) =
        connect_ours(interop::server(lang).echo(), certs, ClientConfig::default());
    let total: usize = FRAGMENTS.iter().sum();
    // We fragment, with our Pings between the fragments; the peer echoes.
    for kind in [MessageKind::Binary, MessageKind::Text] {
        send_fragmented(
            |data, fin| client.send_fragment(kind, data, fin),
            |p| client.ping(p),
            kind,
        );
        let name = if kind == MessageKind::Text {
            "text"
        } else {
            "binary"
        };
        assert_eq!(peer.message(WAIT), pattern(name, total), "{name} from us");
        let (got_kind, got) = read(&mut client, &peer);
        assert_eq!(got_kind, kind);
        assert!(
            got == pattern_bytes(kind, total),
            "{name}: the echo differs"
        );
    }
    // The peer fragments, with its Pings between: we answer them in the
    // middle of the message.
    let sizes = FRAGMENTS.map(|n| n.to_string()).join(",");
    for kind in [MessageKind::Binary, MessageKind::Text] {
        let name = if kind == MessageKind::Text {
            "text"
        } else {
            "binary"
        };
        peer.command(&format!("fragments {name} {sizes} ping"));
        let (got_kind, got) = read(&mut client, &peer);
        assert_eq!(got_kind, kind);
        assert!(got == pattern_bytes(kind, total), "{name} from the peer");
        for i in 0..FRAGMENTS.len() - 1 {
            assert_eq!(peer.expect("pong", WAIT), format!("f{i}"));
        }
    }
    // The longest Ping, answered (while our client reads).
    let longest = "p".repeat(125);
    peer.command(&format!("ping {longest}"));
    peer.command("send text 10");
    assert_eq!(
        read(&mut client, &peer).1,
        pattern_bytes(MessageKind::Text, 10)
    );
    assert_eq!(peer.expect("pong", WAIT), longest);
    client.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(peer.closed(WAIT).0, 1000);
}

pub(super) fn client_close_codes(lang: Lang, certs: Option<&CertFiles>) {
    // We close: the peer sees our code and reason.
    let (mut peer, _, mut client) =
        connect_ours(interop::server(lang), certs, ClientConfig::default());
    client
        .close(CloseCode(OUR_CLOSE.0), OUR_CLOSE.1)
        .unwrap_or_else(|e| peer.fail(&format!("closing: {e}")));
    assert_eq!(peer.closed(WAIT), (OUR_CLOSE.0, OUR_CLOSE.1.into()));
    drop(peer);

    // The peer closes: we see its code and reason.
    let (mut peer, _, client) = connect_ours(interop::server(lang), certs, ClientConfig::default());
    let running = client.spawn(on_message(|_, _| {})).unwrap();
    peer.command(&format!("close {} {}", PEER_CLOSE.0, PEER_CLOSE.1));
    assert_eq!(
        peer.closed(WAIT).0,
        PEER_CLOSE.0,
        "our answer echoes the code"
    );
    let info = running.join();
    assert_eq!(info.cause, CloseCause::PeerClosed);
    assert_eq!(info.code, Some(CloseCode(PEER_CLOSE.0)));
    assert_eq!(info.reason, PEER_CLOSE.1);

    // A protocol error, text that is not UTF-8: the peer sees our 1007.
    let (mut peer, _, mut client) =
        connect_ours(interop::server(lang), certs, ClientConfig::default());
    peer.command("send invalid-text 0");
    match client.read_message() {
        Err(ClientError::Closed(info)) => {
            assert_eq!(info.code, Some(CloseCode::INVALID_PAYLOAD), "{info}");
            assert!(matches!(info.cause, CloseCause::ProtocolError(_)), "{info}");
        }
        other => peer.fail(&format!("our client read {other:?}")),
    }
    assert_eq!(peer.closed(WAIT).0, 1007);

    // A Close without a status code (ws only, as on the server side).
    if lang == Lang::Node {
        let (mut peer, _, client) =
            connect_ours(interop::server(lang), certs, ClientConfig::default());
        let running = client.spawn(on_message(|_, _| {})).unwrap();
        peer.command("close");
        assert_eq!(peer.closed(WAIT), (1000, String::new()), "our answer: 1000");
        let info = running.join();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, None, "{info}");
    }
}

pub(super) fn client_over_limit(lang: Lang, certs: Option<&CertFiles>) {
    let limit = Config::DEFAULT
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT);
    for send in over_limit_sends() {
        let config = ClientConfig::default().connection(limit);
        let (mut peer, _, mut client) = connect_ours(interop::server(lang), certs, config);
        peer.command(&send);
        match client.read_message() {
            Err(ClientError::Closed(info)) => {
                assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG), "{send}");
                assert!(
                    matches!(info.cause, CloseCause::ProtocolError(_)),
                    "{send}: {info}"
                );
            }
            other => peer.fail(&format!("{send}: our client read {other:?}")),
        }
        let (code, reason) = peer.closed(SLOW_WAIT);
        assert_eq!(code, 1009, "{send}: the peer saw {code} {reason:?}");
    }
}

pub(super) fn client_heartbeat(lang: Lang, certs: Option<&CertFiles>) {
    let bound = heartbeat_bound();
    let config = || ClientConfig::default().connection(quick_heartbeat());
    let expect_pong_timeout = |client: &mut Client, peer: &Peer| {
        let started = Instant::now();
        match client.read_message() {
            Err(ClientError::Closed(info)) => {
                assert_eq!(info.cause, CloseCause::PongTimeout);
                assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
            }
            other => peer.fail(&format!("our client read {other:?}")),
        }
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    };

    // A peer that answers our Pings stays connected (the client runs its
    // heartbeat whatever the application does once spawned).
    let (mut peer, _, client) = connect_ours(interop::server(lang), certs, config());
    let (tx, messages) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let running = client
        .spawn(on_message(move |_, message| {
            let _ = tx.lock().unwrap().send(matches!(message, Message::Text(_)));
        }))
        .unwrap();
    assert!(messages.recv_timeout(LIVE).is_err(), "no message was sent");
    peer.command("send text 10");
    assert_eq!(
        messages.recv_timeout(WAIT),
        Ok(true),
        "alive after {LIVE:?}"
    );
    let info = running.close(CloseCode::NORMAL, "");
    assert_eq!(info.cause, CloseCause::ClosedByUs, "{info}");
    peer.closed(WAIT);

    // A peer that reads but answers no Ping (ws only): it sees our 1001.
    if lang == Lang::Node {
        let spec = interop::server(lang).no_auto_pong();
        let (mut peer, _, mut client) = connect_ours(spec, certs, config());
        expect_pong_timeout(&mut client, &peer);
        assert_eq!(peer.closed(WAIT), (1001, "pong timeout".into()));
    }

    // A peer that stops reading: we drop it in bounded time, and once it
    // reads again it finds our 1001.
    let (mut peer, _, mut client) = connect_ours(interop::server(lang), certs, config());
    peer.command("pause");
    expect_pong_timeout(&mut client, &peer);
    peer.command("resume");
    assert_eq!(peer.closed(WAIT), (1001, "pong timeout".into()));
}

pub(super) fn client_subprotocol(lang: Lang, certs: Option<&CertFiles>) {
    let spec = interop::server(lang).subprotocols(&["snow.v2"]);
    let config = ClientConfig::default()
        .subprotocol("chat.v1")
        .subprotocol("snow.v2");
    let (mut peer, opened, mut client) = connect_ours(spec, certs, config);
    assert_eq!(
        opened.offered,
        ["chat.v1", "snow.v2"],
        "what the peer saw offered"
    );
    assert_eq!(opened.subprotocol.as_deref(), Some("snow.v2"));
    assert_eq!(client.subprotocol(), Some("snow.v2"));
    client.close(CloseCode::NORMAL, "").unwrap();
    peer.closed(WAIT);
}

pub(super) fn client_deflate(lang: Lang, certs: Option<&CertFiles>) {
    // Both peer servers accept permessage-deflate here.
    let spec = interop::server(lang).echo();
    let (mut peer, opened, mut client) = connect_ours(spec, certs, deflate_client_config());
    assert_eq!(
        is_deflate(&opened),
        CLIENT_OFFERS_DEFLATE,
        "negotiated: {:?}",
        opened.extensions
    );
    // The connection works, compressed or not.
    for kind in [MessageKind::Text, MessageKind::Binary] {
        let data = pattern_bytes(kind, 100_000);
        client.send(kind, &data).unwrap();
        let (got_kind, got) = read(&mut client, &peer);
        assert_eq!(got_kind, kind);
        assert!(got == data, "the echo differs");
    }
    client.close(CloseCode::NORMAL, "").unwrap();
    peer.closed(WAIT);
}
