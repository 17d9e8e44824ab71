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
use snowsocket_tests::deflate::{bad_answers, json, python, KillOnDrop, PY_SIZES};
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
                let outcome = snowsocket_examples::tokio_ws::echo_with(
                    stream,
                    config,
                    deflate,
                    snowsocket_examples::tokio_ws::WRITE_TIMEOUT,
                    seed,
                )
                .await;
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
/// context takeover and a 15-bit window the second refers to the first
/// and is much smaller (a limited window reaches less of it: no larger);
/// without takeover, it is the first again.
fn check_takeover(what: &str, frames: &[Seen], no_takeover: bool, window: Option<u8>) {
    let [first, second] = frames else {
        panic!("{what}: {frames:?}");
    };
    assert!(first.rsv1 && second.rsv1, "{what}: {frames:?}");
    if no_takeover {
        assert_eq!(first.len, second.len, "{what}: {frames:?}");
    } else if window.is_some_and(|w| w < 15) {
        assert!(second.len <= first.len, "{what}: {frames:?}");
    } else {
        // zlib-rs at level 3: 420 bytes, then 109.
        assert!(second.len * 3 < first.len, "{what}: {frames:?}");
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

#[path = "deflate_echo.rs"]
mod echo;
#[path = "deflate_hostile.rs"]
mod hostile;
#[path = "deflate_python.rs"]
mod python;
