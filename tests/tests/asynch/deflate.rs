//! permessage-deflate in the async driver (features `async` + `deflate`)
//! on tokio, over real sockets on 127.0.0.1 (port 0): our async client and
//! server with every parameter (what goes on the wire is recorded by a
//! [`Tap`] on the client's transport and checked: RSV1, sizes, context
//! takeover or not), against the std shell's server and client too,
//! 0 B to 16 MiB; decompression bombs and invalid compressed text both
//! ways; bad extension answers refused by the async client; the split
//! writer compressing in order; Python `websockets` as an independent peer
//! both ways (`#[ignore]`d: they need the venv, run by
//! scripts/python-peers.sh).

use std::sync::{Arc, Mutex};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, Write};
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::deflate::{negotiate, Compressor, DeflateConfig, PerMessageDeflate};
use snowsocket_core::handshake::{self, ClientRequest, HandshakeError};
use snowsocket_core::{ClientSide, FrameHeader, Message as CoreMessage, Parts, Role};
use snowsocket_server::client::{self as std_client, ClientConfig};
use snowsocket_server::{Message, ServerConfig};
use snowsocket_tests::asynch::runtime;
use snowsocket_tests::XorShiftRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// No heartbeat: an end busy compressing 16 MiB in a debug build answers
/// late.
const QUIET: Config = Config::DEFAULT.ping_interval(None);

/// Runs `test` on a fresh runtime, failing it after `secs` seconds.
fn run_for<F: core::future::Future<Output = ()>>(secs: u64, test: F) {
    runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(secs), test)
            .await
            .expect("the test did not finish in time");
    });
}

/// JSON-like text of `len` bytes: compressible, not trivially.
fn json(len: usize, seed: usize) -> String {
    let mut s = String::with_capacity(len + 64);
    let mut i = seed;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user{}\",\"tags\":[\"a\",\"b\"],\"ok\":true}},",
            i % 97
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

// ---------------------------------------------------------------------------
// What goes on the wire
// ---------------------------------------------------------------------------

/// Every byte a transport read and wrote.
#[derive(Default)]
struct Log {
    read: Vec<u8>,
    written: Vec<u8>,
}

/// A transport that records what passes through it.
struct Tap<T> {
    io: T,
    log: Arc<Mutex<Log>>,
}

impl<T: ErrorType> ErrorType for Tap<T> {
    type Error = T::Error;
}

impl<T: Read> Read for Tap<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = self.io.read(buf).await?;
        self.log.lock().unwrap().read.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<T: Write> Write for Tap<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let n = self.io.write(buf).await?;
        self.log
            .lock()
            .unwrap()
            .written
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.io.flush().await
    }
}

/// A data frame seen on the wire (continuation frames included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    rsv1: bool,
    opcode: u8,
    len: usize,
}

/// The data frames in `bytes`, after the HTTP head (request or answer);
/// an incomplete last frame is left out.
fn data_frames(bytes: &[u8]) -> Vec<Seen> {
    let start = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the HTTP head")
        + 4;
    let mut rest = &bytes[start..];
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let (b0, b1) = (rest[0], rest[1]);
        let (len, mut used) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => {
                let n = u64::from_be_bytes(rest[2..10].try_into().unwrap());
                (usize::try_from(n).unwrap(), 10)
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        if b1 & 0x80 != 0 {
            used += 4;
        }
        if rest.len() < used + len {
            break;
        }
        if b0 & 0x0f < 8 {
            frames.push(Seen {
                rsv1: b0 & 0x40 != 0,
                opcode: b0 & 0x0f,
                len,
            });
        }
        rest = &rest[used + len..];
    }
    frames
}

/// Our async client over a tapped tokio stream.
type Tapped<'b> =
    WebSocket<'b, Tap<FromTokio<TcpStream>>, Vec<u8>, XorShiftRng, TokioClock, ClientSide>;

/// Connects our async client to `ws://addr/`, offering `deflate` (when
/// set), with its transport tapped.
async fn tapped<'b>(
    addr: SocketAddr,
    read: &'b mut [u8],
    write: &'b mut [u8],
    deflate: Option<&PerMessageDeflate>,
) -> Result<(Tapped<'b>, Arc<Mutex<Log>>), DriverError<std::io::Error>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let log = Arc::new(Mutex::new(Log::default()));
    let io = Tap {
        io: FromTokio::new(stream),
        log: Arc::clone(&log),
    };
    let host = addr.to_string();
    let request = ClientRequest::new(&host, "/");
    let rng = XorShiftRng::new(11);
    let parts = Parts::new(read, write, Vec::new(), rng, TokioClock::new()).config(QUIET);
    let (ws, _) = match deflate {
        Some(options) => WebSocket::connect_deflate(io, parts, &request, options).await?,
        None => WebSocket::connect(io, parts, &request).await?,
    };
    Ok((ws, log))
}

/// Our async echo server with `deflate` (when set) on 127.0.0.1:0; each
/// connection's outcome goes to the returned channel.
async fn async_server(
    config: Config,
    deflate: Option<PerMessageDeflate>,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<(), DriverError<std::io::Error>>>,
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
                let outcome =
                    snowsocket_examples::tokio_ws::echo_with(stream, config, deflate, seed).await;
                let _ = tx.send(outcome);
            });
        }
    });
    (addr, rx)
}

/// The std shell's echo server with `deflate`.
fn std_server(deflate: PerMessageDeflate) -> snowsocket_server::ServerHandle {
    let config = ServerConfig::default()
        .connection(QUIET)
        .permessage_deflate(deflate);
    snowsocket_tests::server::start(config, None).0
}

/// The configurations of both ends (server, client), covering the four
/// parameters, with what the agreement must say: (server no context
/// takeover, client no context takeover, server window, client window).
#[allow(clippy::type_complexity)]
fn configurations() -> Vec<(
    &'static str,
    PerMessageDeflate,
    PerMessageDeflate,
    (bool, bool, Option<u8>, Option<u8>),
)> {
    let d = PerMessageDeflate::default();
    vec![
        ("defaults", d, d, (false, false, None, None)),
        (
            "server_no_context_takeover asked",
            d,
            d.server_no_context_takeover(true),
            (true, false, None, None),
        ),
        (
            "server_no_context_takeover imposed",
            d.server_no_context_takeover(true),
            d,
            (true, false, None, None),
        ),
        (
            "client_no_context_takeover declared",
            d,
            d.client_no_context_takeover(true),
            (false, true, None, None),
        ),
        (
            "client_no_context_takeover asked",
            d.client_no_context_takeover(true),
            d,
            (false, true, None, None),
        ),
        (
            "server_max_window_bits asked",
            d,
            d.server_max_window_bits(Some(10)),
            (false, false, Some(10), None),
        ),
        (
            "client_max_window_bits allowed and asked",
            d.client_max_window_bits(Some(9)),
            d.client_max_window_bits(Some(15)),
            (false, false, None, Some(9)),
        ),
        (
            "both no context takeover",
            d.server_no_context_takeover(true),
            d.client_no_context_takeover(true),
            (true, true, None, None),
        ),
    ]
}

/// The two compressed frames of the same 4 KiB message sent twice: with
/// context takeover (and a 15-bit window, where we really compress) the
/// second refers to the first and is much smaller; without, it is the
/// first again.
fn check_takeover(what: &str, frames: &[Seen], no_takeover: bool, window: Option<u8>) {
    let [first, second] = frames else {
        panic!("{what}: {frames:?}");
    };
    assert!(first.rsv1 && second.rsv1, "{what}: {frames:?}");
    if no_takeover || window.is_some_and(|w| w < 15) {
        assert_eq!(first.len, second.len, "{what}: {frames:?}");
    } else {
        assert!(second.len * 4 < first.len, "{what}: {frames:?}");
    }
}

/// Sends the same 4 KiB message twice and a 10-byte one (below the
/// minimum size: uncompressed), reads the echoes, and checks the frames
/// both ways against the agreement.
async fn exchange(what: &str, ws: &mut Tapped<'_>, log: &Mutex<Log>) {
    let (sent, got) = {
        let log = log.lock().unwrap();
        (
            data_frames(&log.written).len(),
            data_frames(&log.read).len(),
        )
    };
    let message = json(4096, 1);
    for _ in 0..2 {
        ws.send_text(&message).await.unwrap();
        assert_eq!(ws.read().await.unwrap(), Event::Text(&message), "{what}");
    }
    ws.send_binary(b"0123456789").await.unwrap();
    assert_eq!(
        ws.read().await.unwrap(),
        Event::Binary(b"0123456789"),
        "{what}"
    );
    let params = *ws.deflate().unwrap();
    let log = log.lock().unwrap();
    let written = &data_frames(&log.written)[sent..];
    let read = &data_frames(&log.read)[got..];
    assert_eq!(written.len(), 3, "{what}: {written:?}");
    assert_eq!(read.len(), 3, "{what}: {read:?}");
    check_takeover(
        &format!("{what}, client to server"),
        &written[..2],
        params.client_no_context_takeover,
        params.client_max_window_bits,
    );
    check_takeover(
        &format!("{what}, server to client"),
        &read[..2],
        params.server_no_context_takeover,
        params.server_max_window_bits,
    );
    assert_eq!(
        written[2],
        Seen {
            rsv1: false,
            opcode: 2,
            len: 10
        },
        "{what}"
    );
    assert_eq!(
        read[2],
        Seen {
            rsv1: false,
            opcode: 2,
            len: 10
        },
        "{what}"
    );
}

/// Asserts that the agreement is `want`.
fn check_params(what: &str, ws: &Tapped<'_>, want: (bool, bool, Option<u8>, Option<u8>)) {
    let p = ws
        .deflate()
        .unwrap_or_else(|| panic!("{what}: no agreement"));
    let got = (
        p.server_no_context_takeover,
        p.client_no_context_takeover,
        p.server_max_window_bits,
        p.client_max_window_bits,
    );
    assert_eq!(got, want, "{what}");
}

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
        let offered = PerMessageDeflate::default();
        let cases: &[(&'static str, Option<PerMessageDeflate>)] = &[
            // Nothing offered: any extension.
            ("permessage-deflate", None),
            // Another extension, two elements, an unknown parameter.
            ("x-foo", Some(offered)),
            ("permessage-deflate, permessage-deflate", Some(offered)),
            ("permessage-deflate; foo=1", Some(offered)),
            // A window limit on us that we did not allow, bad values.
            (
                "permessage-deflate; client_max_window_bits=10",
                Some(offered),
            ),
            (
                "permessage-deflate; server_max_window_bits=7",
                Some(offered),
            ),
            ("permessage-deflate; server_max_window_bits", Some(offered)),
            (
                "permessage-deflate; server_no_context_takeover=yes",
                Some(offered),
            ),
            // We asked for server_no_context_takeover: it must be granted.
            (
                "permessage-deflate",
                Some(offered.server_no_context_takeover(true)),
            ),
            // We asked for a window of at most 10 bits: 12 is more.
            (
                "permessage-deflate; server_max_window_bits=12",
                Some(offered.server_max_window_bits(Some(10))),
            ),
        ];
        for (answer, offer) in cases {
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
        let (ws, _) = tapped(addr, &mut read, &mut write, Some(&offered))
            .await
            .unwrap();
        assert!(ws.deflate().is_none());
        drop(ws);
        server.await.unwrap();
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

// ---------------------------------------------------------------------------
// Python websockets as the peer (needs the venv: scripts/python-peers.sh)
// ---------------------------------------------------------------------------

/// The venv's Python with `websockets` (`SNOWSOCKET_PYTHON`), and the peer
/// script of tests/tests/deflate.rs.
fn python() -> (String, String) {
    let python = std::env::var("SNOWSOCKET_PYTHON")
        .expect("SNOWSOCKET_PYTHON: the venv's python with websockets (scripts/python-peers.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/websockets_deflate.py");
    (python, script.to_owned())
}

/// Python's parameters and ours for the same negotiation, named: what the
/// Python end asks (as the peer script spells it) and what our end offers
/// (as a client; as a server we accept whatever is asked).
fn python_cases() -> Vec<(&'static str, &'static str, PerMessageDeflate)> {
    let d = PerMessageDeflate::default().min_size(0);
    vec![
        ("none", "-", d),
        (
            "server_no_context_takeover",
            "snct",
            d.server_no_context_takeover(true),
        ),
        (
            "client_no_context_takeover",
            "cnct",
            d.client_no_context_takeover(true),
        ),
        (
            "server_max_window_bits",
            "smwb=10",
            d.server_max_window_bits(Some(10)),
        ),
        (
            "client_max_window_bits",
            "cmwb=9",
            d.client_max_window_bits(Some(9)),
        ),
        (
            "all four",
            "snct,cnct,smwb=12,cmwb=11",
            d.server_no_context_takeover(true)
                .client_no_context_takeover(true)
                .server_max_window_bits(Some(12))
                .client_max_window_bits(Some(11)),
        ),
    ]
}

const PY_SIZES: &str = "0,1,125,126,4096,65535,65536,1048576,16777216";

/// Kills the child when dropped (a failed test leaves no process).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn python_websockets_client_against_the_async_server() {
    let (py, script) = python();
    run_for(600, async move {
        let options = PerMessageDeflate::default()
            .min_size(0)
            .client_max_window_bits(Some(15));
        let (addr, mut outcomes) = async_server(QUIET, Some(options)).await;
        for (name, params, _) in python_cases() {
            let (py, script) = (py.clone(), script.clone());
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new(&py)
                    .args([
                        &script,
                        "client",
                        &format!("ws://{addr}/"),
                        params,
                        PY_SIZES,
                    ])
                    .output()
            })
            .await
            .unwrap()
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
                "{name}: {stdout}"
            );
            eprintln!("{name}: {}", stdout.lines().next().unwrap_or(""));
            let outcome = outcomes.recv().await.unwrap();
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        }
    });
}

#[test]
#[ignore = "needs Python websockets: run scripts/python-peers.sh"]
fn the_async_client_against_python_websockets_server() {
    let (py, script) = python();
    run_for(600, async move {
        for (name, params, offer) in python_cases() {
            let mut child = KillOnDrop(
                std::process::Command::new(&py)
                    .args([script.as_str(), "server", params])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let stdout = child.0.stdout.take().unwrap();
            let (tx, mut lines) = mpsc::unbounded_channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let line = lines.recv().await.expect("the port");
            let port: u16 = line.strip_prefix("listening ").unwrap().parse().unwrap();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let (mut read, mut write) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
            let (mut ws, log) = tapped(addr, &mut read, &mut write, Some(&offer))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let negotiated = lines.recv().await.unwrap_or_default();
            assert!(
                negotiated.starts_with("{\"negotiated\": {"),
                "{name}: {negotiated}"
            );
            eprintln!("{name}: {negotiated}");
            assert!(ws.deflate().is_some(), "{name}");
            let sizes: Vec<usize> = PY_SIZES.split(',').map(|s| s.parse().unwrap()).collect();
            for (i, &size) in sizes.iter().enumerate() {
                let text = json(size, i);
                ws.send_text(&text).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Text(&text)),
                    "{name}: {size} B"
                );
                ws.send_binary(text.as_bytes()).await.unwrap();
                assert_eq!(
                    ws.read_message().await.unwrap(),
                    Some(CoreMessage::Binary(text.as_bytes())),
                    "{name}: {size} B"
                );
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            // Both ways compressed (min_size 0: every message).
            let log = log.lock().unwrap();
            for frames in [data_frames(&log.written), data_frames(&log.read)] {
                assert_eq!(frames.len(), 2 * sizes.len(), "{name}");
                assert!(frames.iter().all(|f| f.rsv1), "{name}: {frames:?}");
            }
            drop(log);
            let status = tokio::task::spawn_blocking(move || child.0.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(
                status.success(),
                "{name}: the Python server exited with {status}"
            );
        }
    });
}
