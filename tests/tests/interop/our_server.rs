//! Our server (the test echo server of `tests/src/server.rs`), the peer as
//! its client.

use super::*;

/// Our echo server (`tests/src/server.rs`) with `config`, under TLS when
/// `certs` is given, and its URL.
fn our_server(
    certs: Option<&CertFiles>,
    config: ServerConfig,
    accept: Option<AcceptHook>,
) -> (ServerHandle, Events, String) {
    let config = match certs {
        Some(c) => config.tls(c.identity.server_config()),
        None => config,
    };
    let (server, events) = start(config, accept);
    let scheme = if certs.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://127.0.0.1:{}/", server.local_addr().port());
    (server, events, url)
}

/// A peer client of `url`, connected: how it saw the connection open, and
/// our side's handle.
fn connect_peer(
    lang: Lang,
    url: &str,
    certs: Option<&CertFiles>,
    events: &Events,
) -> (Peer, Opened, ConnectionHandle) {
    let mut peer = interop::client(lang, url).tls(certs).spawn();
    let opened = peer.opened();
    let conn = events
        .connected
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| peer.fail("our server saw no connection"));
    (peer, opened, conn)
}

pub(super) fn server_echo(lang: Lang, certs: Option<&CertFiles>) {
    let (server, events, url) = our_server(certs, ServerConfig::default(), None);
    let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
    for len in SIZES {
        for kind in ["binary", "text"] {
            peer.command(&format!("send {kind} {len}"));
            assert_eq!(peer.message(SLOW_WAIT), pattern(kind, len), "{kind} {len}");
        }
    }
    // A burst: the peer sends back to back, we echo each.
    for kind in ["binary", "text"] {
        peer.command(&format!("send {kind} {BURST_LEN} {BURST}"));
        for i in 0..BURST {
            let got = peer.message(WAIT);
            assert_eq!(got, pattern(kind, BURST_LEN), "{kind} burst message {i}");
        }
    }
    peer.command("close 1000 done");
    assert_eq!(peer.closed(WAIT).0, 1000, "our answer echoes the code");
    let (_, info) = events.close();
    assert_eq!(info.cause, CloseCause::PeerClosed);
    server.shutdown();
}

pub(super) fn server_fragments(lang: Lang, certs: Option<&CertFiles>) {
    let (server, events, url) = our_server(certs, ServerConfig::default(), None);
    let (mut peer, _, conn) = connect_peer(lang, &url, certs, &events);
    let total: usize = FRAGMENTS.iter().sum();
    let sizes = FRAGMENTS.map(|n| n.to_string()).join(",");
    for kind in ["binary", "text"] {
        // The peer fragments, with a Ping after each fragment but the
        // last: we answer the Pings in the middle of the message and echo
        // it whole.
        peer.command(&format!("fragments {kind} {sizes} ping"));
        assert_eq!(peer.message(WAIT), pattern(kind, total), "{kind} echoed");
        for i in 0..FRAGMENTS.len() - 1 {
            assert_eq!(peer.expect("pong", WAIT), format!("f{i}"));
        }
    }
    // The longest Ping, answered.
    let longest = "p".repeat(125);
    peer.command(&format!("ping {longest}"));
    assert_eq!(peer.expect("pong", WAIT), longest);
    // We fragment, with our Pings between the fragments.
    for kind in [MessageKind::Binary, MessageKind::Text] {
        send_fragmented(
            |data, fin| conn.send_fragment(kind, data, fin),
            |p| conn.ping(p),
            kind,
        );
        let name = if kind == MessageKind::Text {
            "text"
        } else {
            "binary"
        };
        assert_eq!(peer.message(WAIT), pattern(name, total), "{name} from us");
    }
    peer.command("close 1000 done");
    assert_eq!(peer.closed(WAIT).0, 1000);
    server.shutdown();
}

pub(super) fn server_close_codes(lang: Lang, certs: Option<&CertFiles>) {
    let (server, events, url) = our_server(certs, ServerConfig::default(), None);

    // The peer closes: we see its code and reason (also one of the
    // longest, 123 bytes, that ends in a 2-byte character).
    let longest = format!("{}{}", "a".repeat(121), "é");
    for (code, reason) in [PEER_CLOSE, (1000, longest.as_str())] {
        let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
        peer.command(&format!("close {code} {reason}"));
        assert_eq!(peer.closed(WAIT).0, code, "our answer echoes the code");
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, Some(CloseCode(code)));
        assert_eq!(info.reason, reason);
    }

    // A Close without a status code (ws's `close()`; websockets always
    // sends one): we report none, and answer 1000.
    if lang == Lang::Node {
        let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
        peer.command("close");
        assert_eq!(peer.closed(WAIT), (1000, String::new()), "our answer: 1000");
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PeerClosed);
        assert_eq!(info.code, None, "{info}");
    }

    // We close: the peer sees our code and reason; a reason over 123
    // bytes is cut on a character boundary (the peers refuse a reason that
    // is not UTF-8).
    let long = "é".repeat(100);
    let cut = "é".repeat(61);
    for (code, reason, seen) in [
        (OUR_CLOSE.0, OUR_CLOSE.1, OUR_CLOSE.1),
        (1000, long.as_str(), cut.as_str()),
    ] {
        let (mut peer, _, conn) = connect_peer(lang, &url, certs, &events);
        conn.close(CloseCode(code), reason).unwrap();
        assert_eq!(peer.closed(WAIT), (code, seen.into()));
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::ClosedByUs);
        assert_eq!(info.code, Some(CloseCode(code)));
    }

    // A protocol error, text that is not UTF-8: the peer sees our 1007.
    let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
    peer.command("send invalid-text 0");
    assert_eq!(peer.closed(WAIT).0, 1007);
    let (_, info) = events.close();
    assert_eq!(info.code, Some(CloseCode::INVALID_PAYLOAD), "{info}");
    assert!(matches!(info.cause, CloseCause::ProtocolError(_)), "{info}");
    drop(peer);

    // A shutdown: the peer sees 1001.
    let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
    server.shutdown();
    assert_eq!(peer.closed(WAIT).0, 1001);
    let (_, info) = events.close();
    assert_eq!(info.cause, CloseCause::ServerShutdown);
}

pub(super) fn server_over_limit(lang: Lang, certs: Option<&CertFiles>) {
    let limit = Config::DEFAULT
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT);
    let config = ServerConfig::default().connection(limit);
    let (server, events, url) = our_server(certs, config, None);
    // One frame over the limit, and fragments that pass it together; the
    // peer is still writing when our 1009 comes, and must read it all the
    // same.
    for send in over_limit_sends() {
        let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
        peer.command(&send);
        let (code, reason) = peer.closed(SLOW_WAIT);
        assert_eq!(code, 1009, "{send}: the peer saw {code} {reason:?}");
        let (_, info) = events.close();
        assert_eq!(info.code, Some(CloseCode::MESSAGE_TOO_BIG), "{send}");
        assert!(
            matches!(info.cause, CloseCause::ProtocolError(_)),
            "{send}: {info}"
        );
    }
    server.shutdown();
}

pub(super) fn server_heartbeat(lang: Lang, certs: Option<&CertFiles>) {
    let bound = heartbeat_bound();
    let config = ServerConfig::default().connection(quick_heartbeat());
    let (server, events, url) = our_server(certs, config, None);

    // A peer that answers our Pings stays connected.
    let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
    if let Ok((_, info)) = events.closed.recv_timeout(LIVE) {
        peer.fail(&format!("a live peer was dropped: {info}"));
    }
    peer.command("send text 10");
    assert_eq!(peer.message(WAIT), pattern("text", 10));
    drop(peer);
    let _ = events.close();

    // A peer that reads but answers no Ping (ws only): it sees our 1001.
    if lang == Lang::Node {
        let mut peer = interop::client(lang, &url)
            .tls(certs)
            .no_auto_pong()
            .spawn();
        peer.opened();
        let started = Instant::now();
        assert_eq!(peer.closed(bound), (1001, "pong timeout".into()));
        let (_, info) = events.close();
        assert_eq!(info.cause, CloseCause::PongTimeout);
        assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    }

    // A peer that stops reading: we drop it in bounded time, and once it
    // reads again it finds our 1001.
    let (mut peer, _, _conn) = connect_peer(lang, &url, certs, &events);
    peer.command("pause");
    let started = Instant::now();
    let (_, info) = events
        .closed
        .recv_timeout(bound)
        .unwrap_or_else(|_| peer.fail(&format!("not dropped within {bound:?}")));
    assert_eq!(info.cause, CloseCause::PongTimeout);
    assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    peer.command("resume");
    assert_eq!(peer.closed(WAIT), (1001, "pong timeout".into()));
    server.shutdown();
}

pub(super) fn server_subprotocol(lang: Lang, certs: Option<&CertFiles>) {
    // on_accept picks the first subprotocol it supports among those offered.
    let accept: AcceptHook = Box::new(|request| {
        match request
            .subprotocols()
            .find(|p| ["snow.v2", "snow.v1"].contains(p))
        {
            Some(p) => Accept::upgrade().with_subprotocol(p),
            None => Accept::upgrade(),
        }
    });
    let (server, events, url) = our_server(certs, ServerConfig::default(), Some(accept));
    let mut peer = interop::client(lang, &url)
        .tls(certs)
        .subprotocols(&["chat.v1", "snow.v1"])
        .spawn();
    assert_eq!(peer.opened().subprotocol.as_deref(), Some("snow.v1"));
    let conn = events.connection();
    assert_eq!(conn.subprotocol(), Some("snow.v1"));
    peer.command("send text 100");
    assert_eq!(peer.message(WAIT), pattern("text", 100));
    drop(peer);
    server.shutdown();
}

pub(super) fn server_deflate_offer(lang: Lang, certs: Option<&CertFiles>) {
    // What the peer offered, seen by on_accept.
    let (offer_tx, offers) = std::sync::mpsc::channel();
    let offer_tx = std::sync::Mutex::new(offer_tx);
    let accept: AcceptHook = Box::new(move |request| {
        let offer = request
            .header("sec-websocket-extensions")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let _ = offer_tx.lock().unwrap().send(offer);
        Accept::upgrade()
    });
    let (server, events, url) = our_server(certs, deflate_server_config(), Some(accept));
    // The peer as users run it: compression on, as by default.
    let (mut peer, opened, _conn) = connect_peer(lang, &url, certs, &events);
    let offer = offers.recv_timeout(WAIT).unwrap();
    assert!(
        offer
            .as_deref()
            .is_some_and(|o| o.starts_with("permessage-deflate")),
        "{} offers permessage-deflate by default: {offer:?}",
        lang.name()
    );
    assert_eq!(
        is_deflate(&opened),
        SERVER_TAKES_DEFLATE,
        "negotiated: {:?}",
        opened.extensions
    );
    // The connection works, compressed or not.
    for kind in ["text", "binary"] {
        peer.command(&format!("send {kind} 100000"));
        assert_eq!(peer.message(WAIT), pattern(kind, 100_000));
    }
    drop(peer);
    server.shutdown();
}
