//! A WebSocket echo server for WASI (wasm32-wasip2), single-threaded:
//! WASI has no threads, so it serves **one connection at a time** from one
//! accept loop, with snowsocket-core's blocking driver over a std
//! `TcpStream` (through `snowsocket_core::std_io::StdIo`). A client
//! that stays connected holds the server until it leaves; the heartbeat
//! (a ping every 30 s, 10 s to answer) drops a dead one.
//!
//! ```text
//! wasmtime run -S inherit-network=y snowsocket-wasi-echo.wasm [ADDR [MAX_CONNECTIONS]]
//! ```
//!
//! It listens on `ADDR` (default `127.0.0.1:0`, a free port), prints
//! `listening on ws://HOST:PORT/` on stdout, and echoes every text and
//! binary message. With `MAX_CONNECTIONS` it exits after serving that many.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use snowsocket_core::handshake::HandshakeLimits;
use snowsocket_core::std_io::StdIo;
use snowsocket_core::{Config, Instant, Message, Parts, WebSocket};

/// How long a read may wait before it becomes a clock tick for the driver
/// (heartbeat pings and timeouts are serviced on ticks).
const TICK: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let max_connections: Option<u64> = match args.next().map(|n| n.parse()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            eprintln!("MAX_CONNECTIONS: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on ws://{local}/"),
        Err(e) => {
            eprintln!("no local address: {e}");
            return ExitCode::FAILURE;
        }
    }
    let _ = std::io::stdout().flush();
    let start = std::time::Instant::now();
    for (served, stream) in (1u64..).zip(listener.incoming()) {
        match stream {
            Ok(stream) => match serve(stream, start) {
                Ok(messages) => eprintln!("connection closed after {messages} messages"),
                Err(e) => eprintln!("connection failed: {e}"),
            },
            Err(e) => eprintln!("accept failed: {e}"),
        }
        if max_connections.is_some_and(|max| served >= max) {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Serves one connection until it closes; returns how many messages it echoed.
fn serve(stream: TcpStream, start: std::time::Instant) -> Result<u64, String> {
    // Not every WASI host supports socket timeouts: without one, reads block
    // and the heartbeat is serviced only when data arrives.
    if let Err(e) = stream.set_read_timeout(Some(TICK)) {
        eprintln!("no read timeout ({e}): the heartbeat waits for data");
    }
    let (mut read, mut write) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    let parts = Parts {
        read_buf: &mut read,
        write_buf: &mut write,
        message_buf: Vec::new(),
        rng: XorShift::seeded(),
        clock: move || {
            Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
        },
        config: Config::DEFAULT.max_message_size(1 << 20),
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
    };
    let mut ws = WebSocket::accept(StdIo::new(stream), parts).map_err(|e| e.to_string())?;
    let mut messages = 0;
    loop {
        let echoed = match ws.read_message().map_err(|e| e.to_string())? {
            None => return Ok(messages),
            Some(Message::Text(t)) => {
                let t = t.to_owned();
                ws.send_text(&t)
            }
            Some(Message::Binary(b)) => {
                let b = b.to_vec();
                ws.send_binary(&b)
            }
        };
        echoed.map_err(|e| e.to_string())?;
        messages += 1;
    }
}

/// The server's RNG: it only makes heartbeat ping payloads (a server never
/// masks), so a xorshift seeded from the clock is enough.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self((nanos as u64) | 1)
    }
}

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
