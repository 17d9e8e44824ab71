//! Helpers for the tests that run snowsocket-server over real sockets on
//! 127.0.0.1 (port 0): a bounded test body, an echo handler that reports on
//! channels, tungstenite clients over `ws://` and `wss://`, a raw TCP client
//! for hand-made frames, and the server's thread count.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use snowsocket_core::{FrameHeader, OpCode, Role};
use snowsocket_server::{
    Accept, CloseInfo, ConnectionHandle, Handler, Message, Server, ServerConfig, ServerHandle,
    UpgradeRequest,
};
use tungstenite::protocol::WebSocketConfig;

use crate::frame_from;
use crate::tls::{self, Identity};

/// Runs `body` on a thread and fails the test if it takes over `secs`.
pub fn bounded(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => thread.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s"),
    }
}

/// How long a test waits for something that should come at once.
pub const WAIT: Duration = Duration::from_secs(10);
/// Socket read timeout for peers moving 16 MiB messages in debug builds on
/// a busy machine (the test itself is still bounded).
pub const SLOW_WAIT: Duration = Duration::from_secs(40);

/// An echo handler that reports connections and their ends on channels,
/// with an optional accept hook.
pub struct Echo {
    connected: Mutex<Sender<ConnectionHandle>>,
    closed: Mutex<Sender<(u64, CloseInfo)>>,
    drained: Mutex<Sender<u64>>,
    accept: Option<AcceptHook>,
}

/// Decides an upgrade request in place of [`Echo`]'s default (upgrade).
pub type AcceptHook = Box<dyn Fn(&UpgradeRequest<'_, '_>) -> Accept + Send + Sync>;

/// What an [`Echo`] handler reports.
pub struct Events {
    /// Each connection's handle, from `on_connect`.
    pub connected: Receiver<ConnectionHandle>,
    /// Each connection's id and end, from `on_close`.
    pub closed: Receiver<(u64, CloseInfo)>,
    /// The id of each connection `on_drain` ran for.
    pub drained: Receiver<u64>,
}

impl Events {
    /// The next connection (fails the test after [`WAIT`]).
    pub fn connection(&self) -> ConnectionHandle {
        self.connected.recv_timeout(WAIT).expect("on_connect")
    }
    /// The next connection's end (fails the test after [`WAIT`]).
    pub fn close(&self) -> (u64, CloseInfo) {
        self.closed.recv_timeout(WAIT).expect("on_close")
    }
}

/// An [`Echo`] handler and the [`Events`] it reports on.
pub fn echo(accept: Option<AcceptHook>) -> (Echo, Events) {
    let (ctx, crx) = mpsc::channel();
    let (dtx, drx) = mpsc::channel();
    let (ntx, nrx) = mpsc::channel();
    let handler = Echo {
        connected: Mutex::new(ctx),
        closed: Mutex::new(dtx),
        drained: Mutex::new(ntx),
        accept,
    };
    (
        handler,
        Events {
            connected: crx,
            closed: drx,
            drained: nrx,
        },
    )
}

impl Handler for Echo {
    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        self.accept
            .as_ref()
            .map_or_else(Accept::upgrade, |f| f(request))
    }
    fn on_connect(&self, conn: &ConnectionHandle) {
        let _ = self.connected.lock().unwrap().send(conn.clone());
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }
    fn on_drain(&self, conn: &ConnectionHandle) {
        let _ = self.drained.lock().unwrap().send(conn.id());
    }
    fn on_close(&self, conn: &ConnectionHandle, info: CloseInfo) {
        let _ = self.closed.lock().unwrap().send((conn.id(), info));
    }
}

/// Binds 127.0.0.1:0 with `config` and spawns an [`Echo`] server.
pub fn start(config: ServerConfig, accept: Option<AcceptHook>) -> (ServerHandle, Events) {
    let (handler, events) = echo(accept);
    let server = Server::bind("127.0.0.1:0", config).unwrap();
    (server.spawn(handler).unwrap(), events)
}

/// The server's URL (`localhost`, so that the certificate matches).
pub fn url(server: &ServerHandle, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://localhost:{}/", server.local_addr().port())
}

/// tungstenite's limits raised to 64 MiB.
pub fn big_tungstenite_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_frame_size(Some(64 << 20))
        .max_message_size(Some(64 << 20))
}

/// A tungstenite client over plain TCP.
pub fn tung_ws(server: &ServerHandle) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
    let (ws, _) = tungstenite::client::client_with_config(
        url(server, false),
        stream,
        Some(big_tungstenite_config()),
    )
    .unwrap();
    ws
}

/// A blocking rustls client stream.
pub type TlsClientStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A tungstenite client over rustls.
pub fn tung_wss(
    server: &ServerHandle,
    identity: &Identity,
) -> tungstenite::WebSocket<TlsClientStream> {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
    let stream = tls::client_stream(identity, stream);
    let (ws, _) = tungstenite::client::client_with_config(
        url(server, true),
        stream,
        Some(big_tungstenite_config()),
    )
    .unwrap();
    ws
}

/// `len` bytes of a fixed pattern.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// About `len` bytes of text mixing 1- to 4-byte characters.
pub fn text(len: usize) -> String {
    "añ€😀"
        .chars()
        .cycle()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= len).then_some(c)
        })
        .collect()
}

/// Echo round trips through any tungstenite client.
pub fn echo_round_trips<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>, sizes: &[usize]) {
    for &len in sizes {
        let data = payload(len);
        ws.send(tungstenite::Message::binary(data.clone())).unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Binary(got) => assert!(got[..] == data[..], "binary {len}"),
            other => panic!("expected binary {len}, got {}", other.len()),
        }
        let t = text(len);
        ws.send(tungstenite::Message::text(t.clone())).unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Text(got) => assert!(got.as_str() == t, "text {len}"),
            other => panic!("expected text {len}, got {}", other.len()),
        }
    }
}

/// Closes a tungstenite client normally and reads until the close completes.
pub fn close_tungstenite<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>) {
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "done".into(),
    }))
    .unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("closing: {e}"),
        }
    }
}

/// A raw TCP client that completed the upgrade, for hand-made frames.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    pub buf: Vec<u8>,
}

/// A valid upgrade request (the RFC 6455 §1.3 key).
pub const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

impl Raw {
    /// Connects to `addr` and upgrades.
    pub fn connect(addr: SocketAddr) -> Self {
        Self::upgrade(TcpStream::connect(addr).unwrap())
    }

    /// Upgrades over `stream` (connected to a server).
    pub fn upgrade(mut stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(UPGRADE.as_bytes()).unwrap();
        let mut raw = Self {
            stream,
            buf: Vec::new(),
        };
        let head = raw.http_response();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// Reads an HTTP response head (up to the empty line).
    pub fn http_response(&mut self) -> String {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "EOF before the response head");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Writes `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the server: opcode and payload; `None` at EOF.
    pub fn frame(&mut self) -> Option<(OpCode, Vec<u8>)> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((h, used)) = FrameHeader::decode(&self.buf).unwrap() {
                let len = usize::try_from(h.payload_len).unwrap();
                if self.buf.len() >= used + len {
                    assert!(h.mask.is_none(), "server frames are not masked");
                    let payload = self.buf[used..used + len].to_vec();
                    self.buf.drain(..used + len);
                    return Some((h.opcode, payload));
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading a frame: {e}"),
            }
        }
    }

    /// Sends a Close 1000 and checks that the answer is 1000 too.
    pub fn close_normally(&mut self) {
        self.send(&client_frame(
            true,
            OpCode::Close,
            &crate::close_payload(1000, b""),
        ));
        assert_eq!(self.close_code(), Some(1000));
    }

    /// Reads frames until a Close; returns its code.
    pub fn close_code(&mut self) -> Option<u16> {
        while let Some((op, payload)) = self.frame() {
            if op == OpCode::Close {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
        None
    }

    /// Whether the server closed the TCP connection (EOF) next.
    pub fn at_eof(&mut self) -> bool {
        self.frame().is_none()
    }
}

/// A one-connection HTTP server on 127.0.0.1:0 for the client's tests:
/// reads the request head, writes `response`, then closes the connection.
/// The thread ends after that one connection (each test using it
/// connects).
pub fn answer_once(response: Vec<u8>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = stream.write_all(&response);
    });
    addr
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    frame_from(Role::Client, fin, opcode, payload)
}

/// The threads of the server on `port` that are gone from the process
/// list: waits (bounded) for their count to reach 0 and returns it. A
/// joined thread has finished (`pthread_join` returned), but the kernel may
/// list its task for a moment longer while it tears it down.
pub fn server_threads_after_join(port: u16) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let n = server_threads(port);
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The threads of the server on `port` still alive (Linux: by name).
pub fn server_threads(port: u16) -> usize {
    let name = format!("ssk-{port}");
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|comm| comm.trim_end() == name)
                })
                .count()
        })
        .unwrap_or(0)
}
