//! The async driver on tokio: what `examples/tokio_echo_server.rs` and
//! `examples/hyper_upgrade.rs` share (and the tests use).
//!
//! A tokio stream becomes an `embedded_io_async` one through
//! `embedded_io_adapters::tokio_1::FromTokio`, its writes bounded by
//! [`WriteTimeout`] (a peer that takes none of our bytes for that long is
//! given up, rather than holding its task and buffers for ever); time is
//! [`TokioClock`]; a server needs no RNG ([`Parts::server`]).

use core::time::Duration;
use std::io;

use embedded_io_adapters::tokio_1::FromTokio;
use snowsocket_core::asynch::{TokioClock, WebSocket, WriteTimeout, WriteTimeoutError};
use snowsocket_core::deflate::{DeflateParams, PerMessageDeflate};
use snowsocket_core::{
    Config, Connection, CounterRng, DriverError, FrameHeader, Parts, ServerSide,
};

/// The read and write buffers of one connection: 64 KiB and the longest
/// frame header each, so that a message up to 64 KiB that arrives whole
/// (its frame in one piece in the read buffer) is echoed without a copy;
/// larger ones are assembled in the growable message buffer.
pub const BUFFER: usize = 64 * 1024 + FrameHeader::MAX_LEN;

/// How long a write waits for a peer that takes none of our bytes (as the
/// std server's `write_timeout`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long accepting rests after it failed (see [`accept`]).
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The next connection on `listener`, `TCP_NODELAY` set. A failed accept
/// is logged (as `who`) and retried after [`ACCEPT_RETRY`]: out of file
/// descriptors (or memory) accept fails again at once, and retrying
/// straight away would spin a core until a connection ends.
pub async fn accept(listener: &tokio::net::TcpListener, who: &str) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                eprintln!("{who}: accept: {e}; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// How an echo ended badly: the driver's error over a tokio stream whose
/// writes are bounded ([`WriteTimeoutError::TimedOut`] for a peer that
/// stopped taking our bytes).
pub type EchoError = DriverError<WriteTimeoutError<io::Error>>;

/// `stream` as the driver's transport: its writes bounded by `timeout`.
fn transport<T>(stream: T, timeout: Duration) -> WriteTimeout<FromTokio<T>, TokioClock> {
    WriteTimeout::new(FromTokio::new(stream), TokioClock::new(), timeout)
}

/// Accepts the upgrade on `stream` and echoes every message until the peer
/// closes: the read buffer, the write buffer and nothing else (a message
/// assembled from fragments is echoed from the message buffer). Writes
/// wait at most [`WRITE_TIMEOUT`] for a peer that takes nothing.
pub async fn echo<T>(stream: T, config: Config, seed: u64) -> Result<(), EchoError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    echo_with(stream, config, None, WRITE_TIMEOUT, seed).await
}

/// [`echo`], agreeing to permessage-deflate with `deflate` (when set) if
/// the client offers it: compressed messages are inflated into the
/// message buffer and echoes of at least `min_size` bytes go back
/// compressed; a write that the peer takes none of for `write_timeout`
/// ends the connection with [`WriteTimeoutError::TimedOut`].
pub async fn echo_with<T>(
    stream: T,
    config: Config,
    deflate: Option<PerMessageDeflate>,
    write_timeout: Duration,
    seed: u64,
) -> Result<(), EchoError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let parts =
        Parts::server(&mut read, &mut write, Vec::new(), TokioClock::new(), seed).config(config);
    let io = transport(stream, write_timeout);
    let mut ws = match &deflate {
        Some(options) => WebSocket::accept_deflate(io, parts, options).await?,
        None => WebSocket::accept(io, parts).await?,
    };
    while ws.respond(snowsocket_core::echo).await? {}
    Ok(())
}

/// Echoes on `stream`, whose upgrade was done elsewhere (by hyper): the
/// connection starts open, with permessage-deflate on when the upgrade
/// agreed to it (`deflate`: the agreement, answered in the 101, and our
/// options). Writes wait at most [`WRITE_TIMEOUT`] for a peer that takes
/// nothing.
pub async fn echo_upgraded<T>(
    stream: T,
    config: Config,
    deflate: Option<(DeflateParams, PerMessageDeflate)>,
    seed: u64,
) -> Result<(), EchoError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let clock = TokioClock::new();
    let now = snowsocket_core::asynch::Clock::now(&clock);
    let conn = Connection::new(ServerSide, config, Vec::new(), CounterRng::new(seed), now);
    let mut ws = WebSocket::new(
        transport(stream, WRITE_TIMEOUT),
        conn,
        clock,
        &mut read,
        0,
        &mut write,
    )?;
    if let Some((params, options)) = &deflate {
        ws.enable_deflate(params, options);
    }
    while ws.respond(snowsocket_core::echo).await? {}
    Ok(())
}
