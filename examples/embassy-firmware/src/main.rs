//! snowsocket's async driver on embassy, on a Cortex-M4F (QEMU's
//! `mps2-an386`): a server task and a client task talk WebSocket to each
//! other through two `embassy_sync::pipe::Pipe`s (which implement
//! `embedded_io_async`), on embassy-executor with a SysTick time driver.
//!
//! ```text
//! qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
//!     -semihosting-config enable=on,target=native -kernel <elf>
//! ```
//!
//! It checks the handshake, text and binary echo, a fragmented message with
//! a ping in the middle, the close handshake (1000), and the heartbeat with
//! a silent peer (the server, split into a reader and a writer with only
//! the reader running, closes with 1001 "pong timeout"). It prints one line
//! per check, then `N passed, M failed`, and exits with status 0 when all
//! passed, 1 otherwise (a panic also exits with 1).

#![no_std]
#![no_main]

mod time_driver;

use core::cell::RefCell;
use core::convert::Infallible;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;
use embassy_sync::signal::Signal;
use snowsocket_core::asynch::{EmbassyClock, WebSocket};
use snowsocket_core::handshake::ClientRequest;
use snowsocket_core::{
    echo, ClientSide, CloseCode, Config, DriverError, Error, Event, Message, MessageKind, Parts,
    SliceBuffer,
};

type Link = Pipe<CriticalSectionRawMutex, 2048>;

/// Client to server, and server to client.
static UP: Link = Pipe::new();
static DOWN: Link = Pipe::new();

/// How the server task's connection ended.
static SERVER_DONE: Signal<CriticalSectionRawMutex, Result<(), DriverError<Infallible>>> =
    Signal::new();

/// Checks passed so far (read by the panic handler).
static PASSED: AtomicU32 = AtomicU32::new(0);

/// One end of the two pipes, as one duplex stream.
struct Duplex {
    rx: &'static Link,
    tx: &'static Link,
}

impl embedded_io_async::ErrorType for Duplex {
    type Error = Infallible;
}

impl embedded_io_async::Read for Duplex {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(self.rx.read(buf).await)
    }
}

impl embedded_io_async::Write for Duplex {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(self.tx.write(buf).await)
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A xorshift RNG for the client's masking keys (a test stand-in for a
/// hardware RNG).
struct XorShift(u32);

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32()) << 32 | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// What the server task does with its connection.
#[derive(Clone, Copy)]
enum Mode {
    /// Echo every message until the peer closes.
    Echo,
    /// Heartbeat every 100 ms, pong timeout 200 ms; split, only the reader
    /// runs.
    Heartbeat,
}

#[embassy_executor::task]
async fn server(mode: Mode) {
    let (mut read, mut write, mut message) = ([0u8; 1024], [0u8; 1024], [0u8; 1024]);
    let config = match mode {
        Mode::Echo => Config::default().ping_interval(None),
        Mode::Heartbeat => Config::default()
            .ping_interval(Some(Duration::from_millis(100)))
            .pong_timeout(Duration::from_millis(200)),
    };
    let buffer = SliceBuffer::new(&mut message[..]);
    let parts = Parts::server(&mut read, &mut write, buffer, EmbassyClock, 1).config(config);
    let io = Duplex { rx: &UP, tx: &DOWN };
    let outcome = async {
        let mut ws = WebSocket::accept(io, parts).await?;
        match mode {
            Mode::Echo => while ws.respond(echo).await? {},
            Mode::Heartbeat => {
                let (half, shared) = ws.split(|io| (io.rx, io.tx)).await?;
                let shared = RefCell::new(shared);
                let (mut reader, _writer) = half.with(&shared);
                reader.read_message(|_| ()).await?;
            }
        }
        Ok(())
    };
    SERVER_DONE.signal(outcome.await);
}

type Client<'b> =
    WebSocket<'b, Duplex, SliceBuffer<&'b mut [u8]>, XorShift, EmbassyClock, ClientSide>;

/// Connects a client over fresh pipes to a server task in `mode`.
async fn connect<'b>(
    spawner: Spawner,
    mode: Mode,
    read: &'b mut [u8],
    write: &'b mut [u8],
    message: &'b mut [u8],
) -> Result<Client<'b>, &'static str> {
    UP.clear();
    DOWN.clear();
    SERVER_DONE.reset();
    spawner
        .spawn(server(mode))
        .map_err(|_| "cannot spawn the server task")?;
    let parts = Parts::new(
        read,
        write,
        SliceBuffer::new(message),
        XorShift(0x2545_F491),
        EmbassyClock,
    )
    .config(Config::default().ping_interval(None));
    let request = ClientRequest::new("qemu.local", "/");
    let (ws, chosen) = WebSocket::connect(Duplex { rx: &DOWN, tx: &UP }, parts, &request)
        .await
        .map_err(|_| "the opening handshake failed")?;
    if chosen.is_some() {
        return Err("a subprotocol nobody offered");
    }
    Ok(ws)
}

/// The server task's outcome, within 5 s.
async fn server_outcome() -> Result<Result<(), DriverError<Infallible>>, &'static str> {
    embassy_time::with_timeout(embassy_time::Duration::from_secs(5), SERVER_DONE.wait())
        .await
        .map_err(|_| "the server task did not finish")
}

async fn text_and_binary(ws: &mut Client<'_>) -> Result<(), &'static str> {
    ws.send_text("hello, embassy")
        .await
        .map_err(|_| "send text")?;
    match ws.read_message().await {
        Ok(Some(Message::Text("hello, embassy"))) => {}
        _ => return Err("the text did not come back"),
    }
    let data = [0u8, 1, 2, 0xfe, 0xff];
    ws.send_binary(&data).await.map_err(|_| "send binary")?;
    match ws.read_message().await {
        Ok(Some(Message::Binary(echoed))) if echoed == data => Ok(()),
        _ => Err("the binary message did not come back"),
    }
}

async fn fragments_with_a_ping(ws: &mut Client<'_>) -> Result<(), &'static str> {
    ws.send_fragment(MessageKind::Text, b"frag", false)
        .await
        .map_err(|_| "fragment 1")?;
    ws.ping(b"mid").await.map_err(|_| "ping")?;
    ws.send_fragment(MessageKind::Text, b"mented", true)
        .await
        .map_err(|_| "fragment 2")?;
    match ws.read().await {
        Ok(Event::Pong(b"mid")) => {}
        _ => return Err("no pong for the ping between the fragments"),
    }
    match ws.read().await {
        Ok(Event::Text("fragmented")) => Ok(()),
        _ => Err("the fragmented message did not come back whole"),
    }
}

async fn close_normal(ws: &mut Client<'_>) -> Result<(), &'static str> {
    ws.close(CloseCode::NORMAL, "bye")
        .await
        .map_err(|_| "the close handshake failed")?;
    match server_outcome().await? {
        Ok(()) => Ok(()),
        Err(_) => Err("the server did not end cleanly"),
    }
}

async fn heartbeat_silent_peer(spawner: Spawner) -> Result<(), &'static str> {
    let (mut read, mut write, mut message) = ([0u8; 1024], [0u8; 1024], [0u8; 1024]);
    let mut ws = connect(
        spawner,
        Mode::Heartbeat,
        &mut read,
        &mut write,
        &mut message,
    )
    .await?;
    // Silent: the client reads nothing until the server gives up.
    match server_outcome().await? {
        Err(DriverError::Connection(Error::PongTimeout)) => {}
        _ => return Err("the server did not fail with the pong timeout"),
    }
    match ws.read().await {
        Ok(Event::Ping(_)) => {}
        _ => return Err("no heartbeat ping came first"),
    }
    match ws.read().await {
        Ok(Event::Close(Some(close)))
            if close.code == CloseCode::GOING_AWAY && close.reason == "pong timeout" =>
        {
            Ok(())
        }
        _ => Err("no Close 1001 \"pong timeout\""),
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let peripherals = cortex_m::Peripherals::take();
    if let Some(p) = peripherals {
        time_driver::start(p.SYST);
    }
    hprintln!("snowsocket async driver on embassy, Cortex-M4F");
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut report = |name: &str, result: Result<(), &'static str>| match result {
        Ok(()) => {
            passed += 1;
            PASSED.store(passed, Ordering::Relaxed);
            hprintln!("{} ... ok", name);
        }
        Err(why) => {
            failed += 1;
            hprintln!("{} ... FAILED: {}", name, why);
        }
    };

    let (mut read, mut write, mut message) = ([0u8; 1024], [0u8; 1024], [0u8; 1024]);
    match connect(spawner, Mode::Echo, &mut read, &mut write, &mut message).await {
        Err(why) => {
            report("handshake", Err(why));
        }
        Ok(mut ws) => {
            report("handshake", Ok(()));
            report("text_and_binary_echo", text_and_binary(&mut ws).await);
            report(
                "fragmented_message_with_a_ping_between",
                fragments_with_a_ping(&mut ws).await,
            );
            report("close_1000", close_normal(&mut ws).await);
        }
    }
    report(
        "heartbeat_silent_peer_1001_pong_timeout",
        heartbeat_silent_peer(spawner).await,
    );

    hprintln!("{} passed, {} failed", passed, failed);
    debug::exit(if failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    hprintln!("{} passed, 1 failed", PASSED.load(Ordering::Relaxed));
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
