//! Interop with the peers users run: Python `websockets` and Node's `ws`,
//! each as a client of our server and as a server for our (blocking)
//! client, over `ws://` and `wss://` (every test runs both, on fresh
//! connections): echo up to 16 MiB, fragmented messages with Pings between
//! the fragments, close codes and reasons both ways, a message over our
//! limit (the peer sees 1009), our heartbeat against a silent peer,
//! subprotocols, and the peers' default permessage-deflate offer.
//!
//! The scenarios are in `interop/our_server.rs` (the peer as client of our
//! server) and `interop/our_client.rs` (the peer as server for our client);
//! this file runs each for both peers.
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
    PerMessageDeflate, ServerConfig, ServerHandle,
};
use snowsocket_tests::interop::{self, CertFiles, Lang, Opened, Peer, Received};
use snowsocket_tests::server::{bounded, payload, start, text, AcceptHook, Events, SLOW_WAIT};

#[path = "interop/our_client.rs"]
mod our_client;
#[path = "interop/our_drivers.rs"]
mod our_drivers;
#[path = "interop/our_server.rs"]
mod our_server;

use our_client::{
    client_close_codes, client_deflate, client_echo, client_fragments, client_heartbeat,
    client_over_limit, client_subprotocol,
};
use our_drivers::drivers_over_limit;
use our_server::{
    server_close_codes, server_deflate_offer, server_echo, server_fragments, server_heartbeat,
    server_over_limit, server_subprotocol,
};

// ---------------------------------------------------------------------------
// permessage-deflate: the one place to update when snowsocket negotiates it.
// ---------------------------------------------------------------------------

/// Whether our server takes the peers' default permessage-deflate offer:
/// yes, when configured to ([`deflate_server_config`]; it is opt-in).
const SERVER_TAKES_DEFLATE: bool = true;

/// Whether our client offers permessage-deflate (both peer servers accept
/// it): yes, when configured to ([`deflate_client_config`]).
const CLIENT_OFFERS_DEFLATE: bool = true;

/// Whether permessage-deflate was negotiated on a connection.
fn is_deflate(opened: &Opened) -> bool {
    opened
        .extensions
        .as_deref()
        .is_some_and(|e| e.starts_with("permessage-deflate"))
}

/// The server configuration of the deflate tests.
fn deflate_server_config() -> ServerConfig {
    ServerConfig::default().permessage_deflate(PerMessageDeflate::default())
}

/// The client configuration of the deflate tests.
fn deflate_client_config() -> ClientConfig {
    ClientConfig::default().permessage_deflate(PerMessageDeflate::default())
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
    drivers_over_limit,
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

/// Fragment sizes that split the text pattern inside characters and cross
/// the 7-bit and 16-bit length encodings, with an empty fragment.
const FRAGMENTS: [usize; 7] = [1, 2, 125, 0, 126, 65_536, 3];

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

/// Peer commands that send past [`LIMIT`]: one frame over it, text, and
/// fragments that pass it together (the peer is still writing when our
/// 1009 comes, and must read it all the same).
fn over_limit_sends() -> [String; 3] {
    let half = LIMIT / 2;
    [
        format!("send binary {}", 4 * LIMIT),
        format!("send text {}", 2 * LIMIT),
        format!("fragments binary {}", vec![half.to_string(); 6].join(",")),
    ]
}
