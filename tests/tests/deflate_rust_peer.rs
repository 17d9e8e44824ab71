//! permessage-deflate (RFC 7692) against an independent Rust peer, yawc
//! (crates.io, its own deflate on flate2/zlib-rs, all four parameters with
//! its `zlib` feature): yawc's client against our server, and our client
//! against yawc's server, text and binary from 0 B to 16 MiB.
//!
//! Every connection goes through a tap (`snowsocket_tests::tap`) on 127.0.0.1 that
//! forwards the bytes and reads the frame headers as they pass, so the
//! tests see on the wire what each side did: the `Sec-WebSocket-Extensions`
//! answer, the RSV1 bit of every message (compressed or not), its size on
//! the wire, and whether a message sent twice in a row shrinks the second
//! time (context takeover) or not (`*_no_context_takeover`).
//!
//! Every test runs under [`bounded`]; nothing sleeps to synchronise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::SocketAddr;
use std::net::TcpListener;
use std::thread;

use futures_util::{SinkExt, StreamExt};
use snowsocket_core::Config;
use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::{CloseCause, CloseCode, Message, PerMessageDeflate, ServerConfig};
use snowsocket_tests::deflate::json;
use snowsocket_tests::server::{bounded, start};
use snowsocket_tests::tap::{tap, Wire};
use yawc::{DeflateOptions, Frame, OpCode, Options, WebSocket};

/// No heartbeat: a peer busy with 16 MiB in a debug build answers late.
const QUIET: Config = Config::DEFAULT
    .ping_interval(None)
    .max_message_size(17 << 20);

/// The sizes of the issue, each sent as text and as binary: up to 64 KiB
/// with every parameter; 1 MiB and 16 MiB with the defaults (a debug build
/// compresses a few MB/s, and the machine may be shared).
const SIZES: &[usize] = &[0, 1, 125, 126, 64 << 10];
const BIG: &[usize] = &[1 << 20, 16 << 20];
/// The message sent twice in a row to see context takeover on the wire:
/// short enough for the smallest window used here (2^10 bytes).
const PROBE: usize = 256;

// ---------------------------------------------------------------------------
// What the tests send, and what they check on the wire
// ---------------------------------------------------------------------------

/// The messages of one connection, in order: each size as text then as
/// binary, then the probe twice (text).
fn script(sizes: &[usize]) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        out.push((true, json(size, i)));
        out.push((false, json(size, i + 1000)));
    }
    // Letters from a xorshift: hardly compressible alone, so only a kept
    // window (context takeover) makes the repeat small.
    let mut x = 0x9e37_79b9_u32;
    let probe: String = (0..PROBE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    out.push((true, probe.clone()));
    out.push((true, probe));
    out
}

/// How one direction's sender compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Deflate with the window kept between messages.
    Takeover,
    /// Deflate, the window reset after every message.
    NoTakeover,
}

/// Checks one direction's messages against the script: all there, every
/// one with RSV1 (yawc's empty messages may go either way, see
/// [`YAWC_MIN`]), and then as `how` says: the compressible ones at most
/// half their size on the wire (windows limited to 10 or 11 bits included)
/// and the probe's second copy much smaller (takeover) or the same size
/// (no takeover).
fn check_wire(name: &str, dir: &str, wire: &Wire, sent: &[(bool, String)], how: Sent) {
    let got = &wire.messages;
    assert_eq!(got.len(), sent.len(), "{name} {dir}: messages on the wire");
    for (m, (text, payload)) in got.iter().zip(sent) {
        let len = payload.len();
        assert_eq!(m.opcode, if *text { 1 } else { 2 }, "{name} {dir}");
        assert!(
            m.rsv1 || (len == 0 && dir.starts_with("yawc")),
            "{name} {dir}: {len} B sent without RSV1"
        );
        if len >= 4096 {
            assert!(
                m.bytes * 2 < len as u64,
                "{name} {dir}: {len} B took {} B on the wire",
                m.bytes
            );
        }
    }
    let (first, second) = (got[got.len() - 2].bytes, got[got.len() - 1].bytes);
    if how == Sent::Takeover {
        assert!(
            second * 4 < first,
            "{name} {dir}: context takeover, yet the repeat took {second} B after {first} B"
        );
    } else {
        assert_eq!(
            first, second,
            "{name} {dir}: no context takeover, yet the repeat differs"
        );
    }
}

/// The `Sec-WebSocket-Extensions` line of the server's answer.
fn extensions_answer(down: &Wire) -> String {
    let head = down.head();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    head.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .map(|l| l.to_owned())
        .unwrap_or_else(|| panic!("no extension answered: {head}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The smallest message yawc compresses here. yawc 0.5.0 spins forever
/// compressing an empty message that follows another one with context
/// takeover (`Deflate::flush` waits for `00 00 ff ff`, and zlib's second
/// sync flush with no input produces nothing), so it sends empty messages
/// uncompressed, which RFC 7692 allows. Ours sends them compressed (one
/// byte).
const YAWC_MIN: usize = 1;

/// yawc's options: compression on, every non-empty message compressed,
/// room for 16 MiB.
fn yawc_options(deflate: DeflateOptions) -> Options {
    let mut options = Options::default()
        .with_max_payload_read(17 << 20)
        .with_max_read_buffer(17 << 20);
    options.compression = Some(DeflateOptions {
        compression_threshold: YAWC_MIN,
        ..deflate
    });
    options
}

/// One case: both ends' settings, what the answer must say, and which
/// directions keep their context.
struct Case {
    name: &'static str,
    ours: PerMessageDeflate,
    yawc: DeflateOptions,
    /// Parameters the answer must carry (and no other parameter).
    answer: &'static [&'static str],
    /// How the client and the server compress.
    takeover: (Sent, Sent),
}

fn ours() -> PerMessageDeflate {
    PerMessageDeflate::default().min_size(0)
}

fn yawc_default() -> DeflateOptions {
    DeflateOptions::balanced()
}

/// The answer carries exactly `params` (order free).
fn check_answer(name: &str, answer: &str, params: &[&str]) {
    let value = answer.split_once(':').unwrap().1;
    let mut parts: Vec<&str> = value.split(';').map(str::trim).collect();
    assert_eq!(parts.remove(0), "permessage-deflate", "{name}: {answer}");
    parts.sort_unstable();
    let mut want = params.to_vec();
    want.sort_unstable();
    assert_eq!(parts, want, "{name}: {answer}");
}

// ---------------------------------------------------------------------------
// yawc's client → our server
// ---------------------------------------------------------------------------

fn server_cases() -> Vec<Case> {
    let d = yawc_default();
    vec![
        Case {
            name: "defaults",
            ours: ours(),
            yawc: d.clone(),
            answer: &[],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
        Case {
            name: "yawc asks server_no_context_takeover",
            ours: ours(),
            yawc: DeflateOptions {
                server_no_context_takeover: true,
                ..d.clone()
            },
            answer: &["server_no_context_takeover"],
            takeover: (Sent::Takeover, Sent::NoTakeover),
        },
        Case {
            name: "yawc declares client_no_context_takeover",
            ours: ours(),
            yawc: DeflateOptions {
                client_no_context_takeover: true,
                ..d.clone()
            },
            answer: &["client_no_context_takeover"],
            takeover: (Sent::NoTakeover, Sent::Takeover),
        },
        Case {
            name: "our server imposes both no_context_takeover",
            ours: ours()
                .server_no_context_takeover(true)
                .client_no_context_takeover(true),
            yawc: d.clone(),
            answer: &["server_no_context_takeover", "client_no_context_takeover"],
            takeover: (Sent::NoTakeover, Sent::NoTakeover),
        },
        Case {
            name: "yawc asks server_max_window_bits=10, offers client_max_window_bits=11",
            ours: ours(),
            yawc: DeflateOptions {
                server_max_window_bits: Some(10),
                client_max_window_bits: Some(11),
                ..d.clone()
            },
            answer: &["server_max_window_bits=10"],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
        Case {
            name: "our server limits client_max_window_bits to 10",
            ours: ours().client_max_window_bits(Some(10)),
            yawc: DeflateOptions {
                client_max_window_bits: Some(15),
                ..d
            },
            answer: &["client_max_window_bits=10"],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
    ]
}

/// yawc's client sends `script` and reads each echo back.
async fn yawc_client_echo(addr: SocketAddr, options: Options, script: &[(bool, String)]) {
    let url = format!("ws://127.0.0.1:{}/", addr.port()).parse().unwrap();
    let mut ws = WebSocket::connect(url).with_options(options).await.unwrap();
    for (text, payload) in script {
        let frame = if *text {
            Frame::text(payload.clone().into_bytes())
        } else {
            Frame::binary(payload.clone().into_bytes())
        };
        ws.send(frame).await.unwrap();
        let echo = ws.next().await.expect("the echo");
        let want = if *text { OpCode::Text } else { OpCode::Binary };
        assert_eq!(echo.opcode(), want);
        assert!(
            echo.payload()[..] == payload.as_bytes()[..],
            "echo of {} B differs",
            payload.len()
        );
    }
    ws.send(Frame::close(yawc::close::CloseCode::Normal, b""))
        .await
        .unwrap();
    // The server's Close, then the end.
    while let Some(frame) = ws.next().await {
        if frame.opcode() == OpCode::Close {
            break;
        }
    }
}

fn yawc_client_against_our_server(cases: Vec<Case>, sizes: &'static [usize]) {
    for case in cases {
        let config = ServerConfig::default()
            .connection(QUIET)
            .permessage_deflate(case.ours);
        let (server, events) = start(config, None);
        let (addr, tapped) = tap(server.local_addr());
        let script = script(sizes);
        runtime().block_on(yawc_client_echo(addr, yawc_options(case.yawc), &script));
        assert_eq!(
            events.close().1.cause,
            CloseCause::PeerClosed,
            "{}",
            case.name
        );
        let (up, down) = (tapped.up.lock().unwrap(), tapped.down.lock().unwrap());
        check_answer(case.name, &extensions_answer(&down), case.answer);
        check_wire(case.name, "yawc → ours", &up, &script, case.takeover.0);
        check_wire(case.name, "ours → yawc", &down, &script, case.takeover.1);
        server.shutdown();
    }
}

#[test]
fn yawc_client_to_our_server_with_every_parameter() {
    bounded(300, || {
        yawc_client_against_our_server(server_cases(), SIZES)
    });
}

#[test]
fn yawc_client_to_our_server_1_and_16_mib() {
    bounded(300, || {
        let mut cases = server_cases();
        cases.truncate(1);
        yawc_client_against_our_server(cases, BIG);
    });
}

// ---------------------------------------------------------------------------
// Our client → yawc's server
// ---------------------------------------------------------------------------

fn client_cases() -> Vec<Case> {
    let d = yawc_default();
    vec![
        Case {
            name: "defaults",
            ours: ours(),
            yawc: d.clone(),
            answer: &[],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
        Case {
            name: "we ask server_no_context_takeover",
            ours: ours().server_no_context_takeover(true),
            yawc: d.clone(),
            answer: &["server_no_context_takeover"],
            takeover: (Sent::Takeover, Sent::NoTakeover),
        },
        Case {
            name: "we declare client_no_context_takeover",
            ours: ours().client_no_context_takeover(true),
            yawc: d.clone(),
            answer: &["client_no_context_takeover"],
            takeover: (Sent::NoTakeover, Sent::Takeover),
        },
        Case {
            name: "yawc's server imposes both no_context_takeover",
            ours: ours(),
            yawc: DeflateOptions {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..d.clone()
            },
            answer: &["server_no_context_takeover", "client_no_context_takeover"],
            takeover: (Sent::NoTakeover, Sent::NoTakeover),
        },
        Case {
            name: "we ask server_max_window_bits=10",
            ours: ours().server_max_window_bits(Some(10)),
            yawc: d.clone(),
            answer: &["server_max_window_bits=10"],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
        Case {
            // We offer client_max_window_bits without a value; yawc's
            // server answers with a limit of its own.
            name: "yawc's server limits our window to 11",
            ours: ours().client_max_window_bits(Some(15)),
            yawc: DeflateOptions {
                client_max_window_bits: Some(11),
                ..d
            },
            answer: &["client_max_window_bits=11"],
            takeover: (Sent::Takeover, Sent::Takeover),
        },
    ]
}

/// yawc's server as its documentation shows it: hyper's HTTP/1 server
/// upgrades (`WebSocket::upgrade_with_options`), then a task echoes every
/// text and binary frame. Serves one connection on a thread of its own;
/// fails on a read error (yawc refusing what our client sent).
fn yawc_server(options: Options) -> SocketAddr {
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        runtime().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            // The upgrade's future, echoed once hyper has handed the
            // connection over (the runtime ends with this block).
            let (tx, rx) = std::sync::mpsc::channel();
            let service = service_fn(move |mut request: Request<Incoming>| {
                let options = options.clone();
                let tx = tx.clone();
                async move {
                    let (response, upgrade) =
                        WebSocket::upgrade_with_options(&mut request, options)?;
                    let _ = tx.send(upgrade);
                    Ok::<Response<Empty<Bytes>>, yawc::WebSocketError>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await
                .unwrap();
            let mut ws = rx.try_recv().unwrap().await.unwrap();
            loop {
                let frame = match ws.next_frame().await {
                    Ok(frame) => frame,
                    Err(e) => panic!("yawc's server: {e}"),
                };
                match frame.opcode() {
                    OpCode::Text | OpCode::Binary => ws.send(frame).await.unwrap(),
                    OpCode::Close => break,
                    _ => {}
                }
            }
        });
    });
    addr
}

fn our_client_against_yawc_server(cases: Vec<Case>, sizes: &'static [usize]) {
    for case in cases {
        let upstream = yawc_server(yawc_options(case.yawc));
        let (addr, tapped) = tap(upstream);
        let mut client = client::connect(
            &format!("ws://127.0.0.1:{}/", addr.port()),
            ClientConfig::default()
                .connection(QUIET)
                .permessage_deflate(case.ours),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let script = script(sizes);
        for (text, payload) in &script {
            if *text {
                client.send_text(payload).unwrap();
            } else {
                client.send_binary(payload.as_bytes()).unwrap();
            }
            match client.read_message().unwrap() {
                Some(Message::Text(got)) if *text => assert!(got == payload, "{}", case.name),
                Some(Message::Binary(got)) if !*text => {
                    assert!(got == payload.as_bytes(), "{}", case.name);
                }
                other => panic!("{}: {other:?}", case.name),
            }
        }
        client.close(CloseCode::NORMAL, "").unwrap();
        let (up, down) = (tapped.up.lock().unwrap(), tapped.down.lock().unwrap());
        check_answer(case.name, &extensions_answer(&down), case.answer);
        check_wire(case.name, "ours → yawc", &up, &script, case.takeover.0);
        check_wire(case.name, "yawc → ours", &down, &script, case.takeover.1);
    }
}

#[test]
fn our_client_to_yawc_server_with_every_parameter() {
    bounded(300, || {
        our_client_against_yawc_server(client_cases(), SIZES)
    });
}

#[test]
fn our_client_to_yawc_server_1_and_16_mib() {
    bounded(300, || {
        let mut cases = client_cases();
        cases.truncate(1);
        our_client_against_yawc_server(cases, BIG);
    });
}
