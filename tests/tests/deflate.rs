//! permessage-deflate (RFC 7692) over real sockets on 127.0.0.1 (port 0):
//! our client and server with every parameter, hand-made frames for every
//! violation, a decompression bomb against the server's memory, bad
//! answers against our client, broadcasts to deflate connections, and
//! Python `websockets` as an independent peer both ways (those two are
//! `#[ignore]`d: they need the venv, run by scripts/python-peers.sh).
//!
//! Every test runs under [`bounded`]; nothing sleeps to synchronise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use snowsocket_core::deflate::{Compressor, DeflateConfig, DeflateParams};
use snowsocket_core::handshake::{self, HandshakeError};
use snowsocket_core::{Config, Connection, Event, FrameHeader, Instant, MessageKind, OpCode, Role};
use snowsocket_server::client::{self, ClientConfig, ClientError};
use snowsocket_server::{
    CloseCause, CloseCode, Message, PerMessageDeflate, ServerConfig, ServerHandle,
};
use snowsocket_tests::deflate::{bad_answers, json, python, KillOnDrop, PY_SIZES};
use snowsocket_tests::server::{bounded, start, SLOW_WAIT, WAIT};
use snowsocket_tests::XorShiftRng;

/// No heartbeat: a peer busy with 16 MiB in a debug build answers late.
#[path = "deflate/handmade.rs"]
mod handmade;

use handmade::{deflate_server, Got, RawDeflate};

const QUIET: Config = Config::DEFAULT.ping_interval(None);

const SIZES: &[usize] = &[0, 1, 125, 126, 65_535, 65_536, 1 << 20];

fn url(server: &ServerHandle) -> String {
    format!("ws://127.0.0.1:{}/", server.local_addr().port())
}

/// Echoes text and binary messages of every size through `client`.
fn echo_through(client: &mut client::Client, sizes: &[usize]) {
    for (i, &size) in sizes.iter().enumerate() {
        let text = json(size, i);
        client.send_text(&text).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Text(got)) => assert!(got == text, "text echo of {size} bytes"),
            other => panic!("{other:?}"),
        }
        client.send_binary(text.as_bytes()).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Binary(got)) => assert!(got == text.as_bytes(), "binary of {size}"),
            other => panic!("{other:?}"),
        }
    }
}

/// The configurations of both ends, covering the four parameters.
fn configurations() -> Vec<(&'static str, PerMessageDeflate, PerMessageDeflate)> {
    let d = PerMessageDeflate::default().min_size(0);
    vec![
        ("defaults", d, d),
        (
            "server_no_context_takeover asked",
            d,
            d.server_no_context_takeover(true),
        ),
        (
            "server_no_context_takeover imposed",
            d.server_no_context_takeover(true),
            d,
        ),
        (
            "client_no_context_takeover asked of the client",
            d.client_no_context_takeover(true),
            d,
        ),
        (
            "client_no_context_takeover declared",
            d,
            d.client_no_context_takeover(true),
        ),
        (
            "server_max_window_bits asked",
            d,
            d.server_max_window_bits(Some(10)),
        ),
        (
            "client_max_window_bits limited",
            d.client_max_window_bits(Some(9)),
            d.client_max_window_bits(Some(15)),
        ),
        (
            "all four",
            d.server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(12))
                .client_max_window_bits(Some(11)),
            d.server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(13))
                .client_max_window_bits(Some(15)),
        ),
    ]
}

#[test]
fn our_client_and_server_echo_with_every_parameter() {
    bounded(240, || {
        for (name, server_side, client_side) in configurations() {
            let config = ServerConfig::default()
                .connection(QUIET)
                .permessage_deflate(server_side);
            let (server, events) = start(config, None);
            let mut client = client::connect(
                &url(&server),
                ClientConfig::default()
                    .connection(QUIET)
                    .permessage_deflate(client_side),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            echo_through(&mut client, SIZES);
            client.close(CloseCode::NORMAL, "").unwrap();
            assert_eq!(events.close().1.cause, CloseCause::PeerClosed, "{name}");
            server.shutdown();
        }
    });
}

#[test]
fn sixteen_mib_messages_both_ways() {
    bounded(240, || {
        let d = PerMessageDeflate::default();
        let config = ServerConfig::default()
            .connection(QUIET)
            .permessage_deflate(d);
        let (server, _events) = start(config, None);
        let mut client = client::connect(
            &url(&server),
            ClientConfig::default()
                .connection(QUIET)
                .permessage_deflate(d),
        )
        .unwrap();
        // 16 MiB exactly: the default message limit.
        echo_through(&mut client, &[16 << 20]);
        // Incompressible bytes grow a little when compressed: still accepted.
        let noise = XorShiftRng::new(7).bytes(1 << 20);
        client.send_binary(&noise).unwrap();
        match client.read_message().unwrap() {
            Some(Message::Binary(got)) => assert!(got == &noise[..]),
            other => panic!("{other:?}"),
        }
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// A decompression bomb against the server's memory
// ---------------------------------------------------------------------------

const BOMB_CHILD: &str = "SNOWSOCKET_DEFLATE_BOMB_CHILD";

/// This process's resident set, peak and current, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A compressed message payload that inflates to `gib` GiB of zeros: the
/// compressed form of 1 MiB of zeros (sync-flushed, self-contained)
/// repeated, about 1 KiB per MiB.
fn bomb(mib: usize) -> Vec<u8> {
    let mut piece = Vec::new();
    let no_takeover = {
        let headers = [handshake::Header {
            name: "Sec-WebSocket-Extensions",
            value: b"permessage-deflate; client_no_context_takeover",
        }];
        snowsocket_core::deflate::negotiate(
            &headers,
            &DeflateConfig::DEFAULT.client_no_context_takeover(true),
        )
        .unwrap()
    };
    let mut c = Compressor::new(Role::Client, &no_takeover, 9);
    c.write_message(MessageKind::Binary, &vec![0u8; 1 << 20], None, &mut piece);
    let mut head = piece.clone();
    head[0] &= !0x40;
    let (_, used) = FrameHeader::decode(&head).unwrap().unwrap();
    piece.drain(..used);
    // Each piece ends with a sync flush's empty stored block header byte
    // (0x00) minus its LEN/NLEN: restore them so pieces concatenate.
    piece.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut out = Vec::with_capacity(piece.len() * mib);
    for _ in 0..mib {
        out.extend_from_slice(&piece);
    }
    // The message's own tail is appended by the receiver.
    out.truncate(out.len() - 4);
    out
}

fn bomb_child() {
    let server = deflate_server(PerMessageDeflate::default());
    let payload = bomb(1024);
    eprintln!("bomb: {} bytes compressed, 1 GiB inflated", payload.len());
    let (mut raw, _) =
        RawDeflate::connect(&server, Some("permessage-deflate"), &DeflateConfig::DEFAULT);
    let before = rss_kib();
    raw.send_frame(0x80 | 0x40 | 0x2, &payload);
    assert_eq!(raw.next(), Got::Close(Some(1009)));
    let after = rss_kib();
    eprintln!(
        "rss: peak {} -> {} KiB, now {} -> {} KiB",
        before.0, after.0, before.1, after.1
    );
    // The limit is 16 MiB; the sender's own copy of the payload (1 MiB)
    // and the inflater's state come on top. Far below the 1 GiB it
    // inflates to.
    assert!(
        after.0.saturating_sub(before.0) < 48 * 1024,
        "peak RSS grew by {} KiB",
        after.0 - before.0
    );
    server.shutdown();
}

#[test]
fn a_decompression_bomb_is_refused_with_1009_within_the_limit() {
    if std::env::var_os(BOMB_CHILD).is_some() {
        bounded(120, bomb_child);
        return;
    }
    bounded(150, || {
        let exe = std::env::current_exe().unwrap();
        let output = Command::new(exe)
            .args([
                "--exact",
                "a_decompression_bomb_is_refused_with_1009_within_the_limit",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(BOMB_CHILD, "1")
            .output()
            .unwrap();
        // The child must have run this very test (an exact name that no
        // longer matches would run nothing and pass).
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child ran no test:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprint!(
            "{}",
            stderr
                .lines()
                .filter(|l| l.starts_with("rss") || l.starts_with("bomb"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(output.status.success(), "child failed:\n{stderr}");
    });
}

// ---------------------------------------------------------------------------
// Our client against bad answers
// ---------------------------------------------------------------------------

/// A one-shot server that answers the upgrade with `extensions` as its
/// `Sec-WebSocket-Extensions` value.
fn answering(extensions: &'static str) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut key = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            if let Some(k) = line.strip_prefix("Sec-WebSocket-Key: ") {
                key = k.trim().to_owned();
            }
        }
        let accept = handshake::accept_key(key.as_bytes());
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n",
            core::str::from_utf8(&accept).unwrap()
        );
        // The client may already have hung up: ignore write errors.
        let _ = s.write_all(answer.as_bytes());
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    (port, thread)
}

#[test]
fn our_client_refuses_bad_extension_answers() {
    bounded(60, || {
        let cases = bad_answers();
        for (answer, offer) in &cases {
            let (port, thread) = answering(answer);
            let mut config = ClientConfig::default();
            if let Some(offer) = offer {
                config = config.permessage_deflate(*offer);
            }
            let result = client::connect(&format!("ws://127.0.0.1:{port}/"), config);
            assert!(
                matches!(
                    result,
                    Err(ClientError::Handshake(HandshakeError::UnexpectedExtensions))
                ),
                "{answer} / {offer:?}: {:?}",
                result.map(|_| ())
            );
            thread.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------------------
// Broadcast
// ---------------------------------------------------------------------------

#[test]
fn broadcast_compresses_for_each_deflate_connection() {
    bounded(60, || {
        let options = PerMessageDeflate::default().min_size(0);
        let config = ServerConfig::default()
            .connection(QUIET)
            .permessage_deflate(options);
        let (server, events) = start(config, None);
        // Two deflate clients with context takeover, one without deflate.
        let mut clients: Vec<client::Client> = (0..3)
            .map(|i| {
                let mut c = ClientConfig::default().connection(QUIET);
                if i < 2 {
                    c = c.permessage_deflate(options);
                }
                client::connect(&url(&server), c).unwrap()
            })
            .collect();
        for _ in 0..3 {
            events.connection();
        }
        // The first client also gets its own messages in between, so its
        // window differs from the second's.
        clients[0].send_text(&json(700, 99)).unwrap();
        match clients[0].read_message().unwrap() {
            Some(Message::Text(t)) => assert_eq!(t, json(700, 99)),
            other => panic!("{other:?}"),
        }
        let messages: Vec<String> = (0..6).map(|i| json(200 + i * 900, i)).collect();
        for m in &messages {
            let report = server.broadcast(Message::Text(m));
            assert_eq!(report.sent, 3, "{report:?}");
        }
        for (i, client) in clients.iter_mut().enumerate() {
            for m in &messages {
                match client.read_message().unwrap() {
                    Some(Message::Text(t)) => assert!(t == m, "client {i}"),
                    other => panic!("client {i}: {other:?}"),
                }
            }
        }
        server.shutdown();
    });
}

// ---------------------------------------------------------------------------
// Python websockets as the peer (needs the venv: scripts/python-peers.sh)
// ---------------------------------------------------------------------------

/// Python's parameters and ours for the same negotiation, named.
const PY_CASES: &[(&str, &str)] = &[
    ("none", "-"),
    ("server_no_context_takeover", "snct"),
    ("client_no_context_takeover", "cnct"),
    ("server_max_window_bits", "smwb=10"),
    ("client_max_window_bits", "cmwb=9"),
    ("all four", "snct,cnct,smwb=12,cmwb=11"),
];

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn python_websockets_client_against_our_server() {
    bounded(600, || {
        let (py, script) = python();
        let server = deflate_server(PerMessageDeflate::default());
        for (name, params) in PY_CASES {
            let output = Command::new(&py)
                .args([script.as_str(), "client", &url(&server), params, PY_SIZES])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{name}: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("\"negotiated\": {"), "{name}: {stdout}");
            assert!(
                stdout.contains(&format!("\"echoed\": \"{PY_SIZES}\"")),
                "{name}"
            );
            eprintln!("{name}: {}", stdout.lines().next().unwrap_or(""));
        }
        server.shutdown();
    });
}

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn our_client_against_python_websockets_server() {
    bounded(600, || {
        let (py, script) = python();
        let d = PerMessageDeflate::default().min_size(0);
        let ours = [
            d,
            d.server_no_context_takeover(true),
            d.client_no_context_takeover(true),
            d.server_max_window_bits(Some(10)),
            d.client_max_window_bits(Some(9)),
            d.server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(12))
                .client_max_window_bits(Some(11)),
        ];
        for ((name, params), offer) in PY_CASES.iter().zip(ours) {
            let mut child = KillOnDrop(
                Command::new(&py)
                    .args([script.as_str(), "server", params])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap(),
            );
            let stdout = child.0.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let line = rx
                .recv_timeout(SLOW_WAIT)
                .expect("the Python server's port");
            let port: u16 = line.strip_prefix("listening ").unwrap().parse().unwrap();
            let mut client = client::connect(
                &format!("ws://127.0.0.1:{port}/"),
                ClientConfig::default()
                    .connection(QUIET)
                    .permessage_deflate(offer),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let negotiated = rx.recv_timeout(SLOW_WAIT).unwrap();
            assert!(
                negotiated.starts_with("{\"negotiated\": {"),
                "{name}: {negotiated}"
            );
            eprintln!("{name}: {negotiated}");
            let sizes: Vec<usize> = PY_SIZES.split(',').map(|s| s.parse().unwrap()).collect();
            echo_through(&mut client, &sizes);
            client.close(CloseCode::NORMAL, "").unwrap();
            let status = child.0.wait().unwrap();
            assert!(
                status.success(),
                "{name}: the Python server exited with {status}"
            );
        }
    });
}
