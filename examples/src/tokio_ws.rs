//! The async driver on tokio: what `examples/tokio_echo_server.rs` and
//! `examples/hyper_upgrade.rs` share (and the tests use).
//!
//! A tokio stream becomes an `embedded_io_async` one through
//! `embedded_io_adapters::tokio_1::FromTokio`; time is
//! [`TokioClock`]; a server needs no RNG ([`Parts::server`]).

use std::io;

use embedded_io_adapters::tokio_1::FromTokio;
use snowsocket_core::asynch::{TokioClock, WebSocket};
use snowsocket_core::deflate::{DeflateParams, PerMessageDeflate};
use snowsocket_core::{
    Config, Connection, CounterRng, DriverError, FrameHeader, Parts, ServerSide,
};

/// The read and write buffers of one connection: 64 KiB and the longest
/// frame header each, so that a message up to 64 KiB that arrives whole
/// (its frame in one piece in the read buffer) is echoed without a copy;
/// larger ones are assembled in the growable message buffer.
pub const BUFFER: usize = 64 * 1024 + FrameHeader::MAX_LEN;

/// Accepts the upgrade on `stream` and echoes every message until the peer
/// closes: the read buffer, the write buffer and nothing else (a message
/// assembled from fragments is echoed from the message buffer).
pub async fn echo<T>(stream: T, config: Config, seed: u64) -> Result<(), DriverError<io::Error>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    echo_with(stream, config, None, seed).await
}

/// [`echo`], agreeing to permessage-deflate with `deflate` (when set) if
/// the client offers it: compressed messages are inflated into the
/// message buffer and echoes of at least `min_size` bytes go back
/// compressed.
pub async fn echo_with<T>(
    stream: T,
    config: Config,
    deflate: Option<PerMessageDeflate>,
    seed: u64,
) -> Result<(), DriverError<io::Error>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let parts =
        Parts::server(&mut read, &mut write, Vec::new(), TokioClock::new(), seed).config(config);
    let io = FromTokio::new(stream);
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
/// options).
pub async fn echo_upgraded<T>(
    stream: T,
    config: Config,
    deflate: Option<(DeflateParams, PerMessageDeflate)>,
    seed: u64,
) -> Result<(), DriverError<io::Error>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let clock = TokioClock::new();
    let now = snowsocket_core::asynch::Clock::now(&clock);
    let conn = Connection::new(ServerSide, config, Vec::new(), CounterRng::new(seed), now);
    let mut ws = WebSocket::new(
        FromTokio::new(stream),
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
