//! Helpers for the async driver's tests on tokio: a runtime, our async
//! client over a tokio `TcpStream`, and a raw peer that does the opening
//! handshake by hand and then says only what a test makes it say.

use core::net::SocketAddr;
use core::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::handshake::ClientRequest;
use snowsocket_core::{ClientSide, Config, Parts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::XorShiftRng;

/// How long any one test may take before it fails (not a sleep: every
/// wait is bounded by it).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A multi-threaded tokio runtime with two workers and its timers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `test` on a fresh [`runtime`], failing it after [`TEST_TIMEOUT`].
pub fn run<F: core::future::Future<Output = ()>>(test: F) {
    runtime().block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("the test did not finish in time");
    });
}

/// Our async client over tokio.
pub type Client<'b> =
    WebSocket<'b, FromTokio<TcpStream>, Vec<u8>, XorShiftRng, TokioClock, ClientSide>;

/// Connects our async client to `ws://addr/` with `config` and the given
/// buffers (the message buffer grows as needed).
pub async fn connect<'b>(
    addr: SocketAddr,
    read: &'b mut [u8],
    write: &'b mut [u8],
    config: Config,
) -> Client<'b> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let host = addr.to_string();
    let request = ClientRequest::new(&host, "/");
    let parts = Parts::new(
        read,
        write,
        Vec::new(),
        XorShiftRng::new(7),
        TokioClock::new(),
    )
    .config(config);
    let (ws, _) = WebSocket::connect(FromTokio::new(stream), parts, &request)
        .await
        .expect("the opening handshake");
    ws
}

/// A raw peer: connects to `addr`, sends an upgrade request and reads the
/// 101 answer; then the stream is the test's.
pub async fn raw_peer(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    upgrade(&mut stream, addr).await;
    stream
}

/// The raw peer's opening handshake on `stream` (connected to `addr`):
/// the upgrade request, then the 101 answer, read to its end.
pub async fn upgrade(stream: &mut TcpStream, addr: SocketAddr) {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read the answer");
        assert_eq!(n, 1, "the server closed during the handshake: {head:?}");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// Everything `stream` receives until the peer closes it.
pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read");
    bytes
}

/// What a server connection's split halves share here: across tasks, in
/// an `Arc<Mutex<_>>`.
pub type SplitShared = std::sync::Arc<
    std::sync::Mutex<
        snowsocket_core::asynch::Shared<
            'static,
            FromTokio<tokio::net::tcp::OwnedWriteHalf>,
            Vec<u8>,
            snowsocket_core::CounterRng,
            snowsocket_core::ServerSide,
        >,
    >,
>;

/// A server connection's reading half over tokio.
pub type SplitReader = snowsocket_core::asynch::Reader<
    'static,
    FromTokio<tokio::net::tcp::OwnedReadHalf>,
    TokioClock,
    SplitShared,
>;

/// A server connection's writing half over tokio.
pub type SplitWriter = snowsocket_core::asynch::Writer<TokioClock, SplitShared>;

/// Accepts the upgrade on `stream` with `config` and read and write
/// buffers of `buffer` bytes each (leaked: spawned tasks need `'static`
/// ones), and splits the connection for two tasks.
pub async fn accept_split(
    stream: TcpStream,
    buffer: usize,
    config: Config,
) -> (SplitReader, SplitWriter) {
    let read: &'static mut [u8] = Box::leak(vec![0; buffer].into_boxed_slice());
    let write: &'static mut [u8] = Box::leak(vec![0; buffer].into_boxed_slice());
    let parts = Parts::server(read, write, Vec::new(), TokioClock::new(), 1).config(config);
    let ws = WebSocket::accept(FromTokio::new(stream), parts)
        .await
        .expect("the opening handshake");
    let (half, shared) = ws
        .split(|io| {
            let (r, w) = io.into_inner().into_split();
            (FromTokio::new(r), FromTokio::new(w))
        })
        .await
        .expect("the split");
    half.with(std::sync::Arc::new(std::sync::Mutex::new(shared)))
}
