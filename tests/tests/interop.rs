//! Interop with the peers users run: Python `websockets` and Node's `ws`,
//! each as a client of our server and as a server for our (blocking)
//! client, over `ws://` and `wss://` (every test runs both, on fresh
//! connections): echo up to 16 MiB, fragmented messages with Pings between
//! the fragments, close codes and reasons both ways, a message over our
//! limit (the peer sees 1009), our heartbeat against a silent peer,
//! subprotocols, and the peers' default permessage-deflate offer.
//!
//! The peers are child processes (`snowsocket_tests::interop`, scripts in
//! `tests/interop/`), installed by `scripts/interop-setup.sh`; without them
//! these tests fail and say how to install them, unless
//! `SNOWSOCKET_SKIP_INTEROP=1` marks them skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::time::Instant;

use snowsocket_server::client::{self, Client, ClientConfig, ClientError};
use snowsocket_server::{
    on_message, Accept, CloseCause, CloseCode, Config, ConnectionHandle, Message, MessageKind,
    ServerConfig, ServerHandle,
};
use snowsocket_tests::interop::{self, CertFiles, Lang, Opened, Peer, Received};
use snowsocket_tests::server::{bounded, payload, start, text, AcceptHook, Events, SLOW_WAIT};

// ---------------------------------------------------------------------------
// permessage-deflate: the one place to update when snowsocket negotiates it.
// ---------------------------------------------------------------------------

/// Whether our server takes the peers' default permessage-deflate offer.
/// Today it declines (the connection runs uncompressed). When deflate
/// lands, set this to `true` (and, if it is opt-in, turn it on in
/// [`deflate_server_config`]).
const SERVER_TAKES_DEFLATE: bool = false;

/// Whether our client offers permessage-deflate (both peer servers accept
/// it). Today it does not. When deflate lands, set this to `true` (and, if
/// it is opt-in, turn it on in [`deflate_client_config`]).
const CLIENT_OFFERS_DEFLATE: bool = false;

/// Whether permessage-deflate was negotiated on a connection.
fn is_deflate(opened: &Opened) -> bool {
    opened
        .extensions
        .as_deref()
        .is_some_and(|e| e.starts_with("permessage-deflate"))
}

/// The server configuration of the deflate tests.
fn deflate_server_config() -> ServerConfig {
    ServerConfig::default()
}

/// The client configuration of the deflate tests.
fn deflate_client_config() -> ClientConfig {
    ClientConfig::default()
}

// ---------------------------------------------------------------------------
// The tests: each scenario for each peer library, over ws:// then wss://.
// ---------------------------------------------------------------------------

macro_rules! for_each_peer {
    ($($scenario:ident),* $(,)?) => {
        mod python {
            $(#[test]
            fn $scenario() {
                super::run(super::Lang::Python, super::$scenario);
            })*
        }
        mod node {
            $(#[test]
            fn $scenario() {
                super::run(super::Lang::Node, super::$scenario);
            })*
        }
    };
}

for_each_peer!(
    server_echo,
    server_fragments,
    server_close_codes,
    server_over_limit,
    server_heartbeat,
    server_subprotocol,
    server_deflate_offer,
    client_echo,
    client_fragments,
    client_close_codes,
    client_over_limit,
    client_heartbeat,
    client_subprotocol,
    client_deflate,
);

/// Runs `scenario` with `lang`'s peer over `ws://`, then `wss://`, within a
/// bound on the whole.
fn run(lang: Lang, scenario: fn(Lang, Option<&CertFiles>)) {
    if interop::skip() {
        return;
    }
    bounded(240, move || {
        scenario(lang, None);
        scenario(lang, Some(&CertFiles::new()));
    });
}

/// How long a peer may take for something that should come at once (a
/// Python interpreter starting on a busy machine included).
const WAIT: Duration = Duration::from_secs(20);

/// The message sizes of the echo tests: each length-encoding boundary, then
/// 1 MiB and 16 MiB (our default limit, which a message of exactly its size
/// passes).
const SIZES: [usize; 8] = [0, 1, 125, 126, 65_535, 65_536, 1 << 20, 16 << 20];

/// A burst of messages sent back to back: how many, and their size.
const BURST: usize = 200;
const BURST_LEN: usize = 20_000;

/// A close code and reason each way (a reason with non-ASCII characters).
const PEER_CLOSE: (u16, &str) = (4002, "peer: au revoir, ça va");
const OUR_CLOSE: (u16, &str) = (4001, "snowsocket: à bientôt");

/// A message limit low enough to pass quickly.
const LIMIT: usize = 1 << 20;

/// Heartbeat timers short enough for a test: a silent peer is dropped
/// within ping + pong + close timeouts. The pong timeout leaves a live
/// peer on a busy machine time to answer.
fn quick_heartbeat() -> Config {
    Config::DEFAULT
        .ping_interval(Some(Duration::from_millis(250)))
        .pong_timeout(Duration::from_secs(1))
        .close_timeout(Duration::from_millis(500))
}

/// How long after it stops answering a silent peer may be dropped: ping +
/// pong + close timeouts, and slack for a busy machine.
fn heartbeat_bound() -> Duration {
    let timers = quick_heartbeat();
    timers.ping_interval.unwrap_or_default()
        + timers.pong_timeout
        + timers.close_timeout
        + Duration::from_secs(3)
}

/// How long a live peer is watched under [`quick_heartbeat`]: six rounds,
/// each answered well within the pong timeout.
const LIVE: Duration = Duration::from_millis(1500);

/// The byte length of the pattern of `kind` cut to `len` bytes.
fn pattern_len(kind: &str, len: usize) -> usize {
    if kind == "text" {
        text(len).len()
    } else {
        len
    }
}

/// What a peer reports for the pattern of `kind` cut to `len` bytes.
fn pattern(kind: &str, len: usize) -> Received {
    Received {
        kind: kind.into(),
        len: pattern_len(kind, len),
        pattern: true,
    }
}

/// The pattern's bytes.
fn pattern_bytes(kind: MessageKind, len: usize) -> Vec<u8> {
    match kind {
        MessageKind::Text => text(len).into_bytes(),
        MessageKind::Binary => payload(len),
    }
}

// ---------------------------------------------------------------------------
// Our server, the peer as client
// ---------------------------------------------------------------------------

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

fn server_echo(lang: Lang, certs: Option<&CertFiles>) {
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

/// Fragment sizes that split the text pattern inside characters and cross
/// the 7-bit and 16-bit length encodings, with an empty fragment.
const FRAGMENTS: [usize; 7] = [1, 2, 125, 0, 126, 65_536, 3];

fn server_fragments(lang: Lang, certs: Option<&CertFiles>) {
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

/// Sends the pattern of `kind` in [`FRAGMENTS`], with a Ping after each
/// fragment but the last.
fn send_fragmented<E: core::fmt::Debug>(
    fragment: impl Fn(&[u8], bool) -> Result<(), E>,
    ping: impl Fn(&[u8]) -> Result<(), E>,
    kind: MessageKind,
) {
    let data = pattern_bytes(kind, FRAGMENTS.iter().sum());
    let mut at = 0;
    for (i, &len) in FRAGMENTS.iter().enumerate() {
        let end = (at + len).min(data.len());
        let last = i + 1 == FRAGMENTS.len();
        fragment(&data[at..end], last).expect("fragment");
        at = end;
        if !last {
            ping(format!("ours {i}").as_bytes()).expect("ping");
        }
    }
}

fn server_close_codes(lang: Lang, certs: Option<&CertFiles>) {
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

fn server_over_limit(lang: Lang, certs: Option<&CertFiles>) {
    let limit = Config::DEFAULT
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT);
    let config = ServerConfig::default().connection(limit);
    let (server, events, url) = our_server(certs, config, None);
    // One frame over the limit, and fragments that pass it together; the
    // peer is still writing when our 1009 comes, and must read it all the
    // same.
    let half = (LIMIT / 2).to_string();
    let sends = [
        format!("send binary {}", 4 * LIMIT),
        format!("send text {}", 2 * LIMIT),
        format!("fragments binary {half},{half},{half},{half},{half},{half}"),
    ];
    for send in sends {
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

fn server_heartbeat(lang: Lang, certs: Option<&CertFiles>) {
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

fn server_subprotocol(lang: Lang, certs: Option<&CertFiles>) {
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

fn server_deflate_offer(lang: Lang, certs: Option<&CertFiles>) {
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

// ---------------------------------------------------------------------------
// The peer as server, our client
// ---------------------------------------------------------------------------

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

fn client_echo(lang: Lang, certs: Option<&CertFiles>) {
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

fn client_fragments(lang: Lang, certs: Option<&CertFiles>) {
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

fn client_close_codes(lang: Lang, certs: Option<&CertFiles>) {
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

fn client_over_limit(lang: Lang, certs: Option<&CertFiles>) {
    let limit = Config::DEFAULT
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT);
    let half = (LIMIT / 2).to_string();
    let sends = [
        format!("send binary {}", 4 * LIMIT),
        format!("send text {}", 2 * LIMIT),
        format!("fragments binary {half},{half},{half},{half},{half},{half}"),
    ];
    for send in sends {
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

fn client_heartbeat(lang: Lang, certs: Option<&CertFiles>) {
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

fn client_subprotocol(lang: Lang, certs: Option<&CertFiles>) {
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

fn client_deflate(lang: Lang, certs: Option<&CertFiles>) {
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
