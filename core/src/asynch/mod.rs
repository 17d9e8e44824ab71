//! The async driver (feature `async`): a [`Connection`](crate::Connection)
//! over any `embedded_io_async::{Read, Write}` byte stream — an embassy-net
//! `TcpSocket`, an `embassy_sync::pipe::Pipe`, a tokio `TcpStream` through
//! `embedded_io_adapters::tokio_1::FromTokio` — with caller-provided
//! buffers, no allocation and no executor of its own.
//!
//! It is the blocking driver ([`crate::driver`]) with `.await`s (also
//! after a failure: it returns the error only once it has read past what
//! the peer still sends, to its Close, its EOF or the close timeout; see
//! [`crate::driver`]): both run
//! the same steps (`crate::session`: the read loop, the timers, the close,
//! the frame writer, the handshake), give the same events, close codes and
//! errors, and use only the connection's public API.
//!
//! - [`WebSocket`]: one value for reading and sending, as the blocking
//!   driver.
//! - [`WebSocket::split`] (with the transport in two halves): a [`Reader`]
//!   and a [`Writer`] for two tasks. A send never waits behind a pending
//!   read, nor a read behind a send (replies wait queued until the
//!   transport is free), and the heartbeat (pings, the pong timeout) runs
//!   while only the reader does.
//! - permessage-deflate (feature `deflate`, with an allocator): see
//!   below.
//!
//! # Time
//!
//! Time comes from a [`Clock`]: `now`, and a wait until a deadline.
//! `TokioClock` (feature `tokio`) and `EmbassyClock` (feature
//! `embassy-time`) are provided. While it waits for input the driver races
//! the read against the connection's next deadline (heartbeat ping, pong,
//! fragment, close timeouts), so a silent peer is noticed on time without
//! a task of its own. A deadline that waits for the peer is judged only
//! once what arrived before it has been read (a read was still waiting
//! when the deadline came: a read that brings less than it could does not
//! count, so a transport that hands out one TLS record per read is read
//! through first): a Pong that came while the application was busy
//! between reads, or behind a backlog it is working through, answered in
//! time.
//!
//! # Cancellation
//!
//! Required of the transport: its `read` and `write` futures must be
//! cancel-safe (dropping one that has not completed reads or writes
//! nothing), as embedded-io-async encourages: the driver drops the read
//! when a deadline comes first. embassy-net's `TcpSocket`, embassy-sync's
//! `Pipe` and tokio's streams (through `FromTokio`) are.
//!
//! Guaranteed by the driver, with such a transport:
//! - a read ([`WebSocket::read`], [`WebSocket::read_message`],
//!   [`Reader::read`], …) may be dropped at any `.await` (in a `select`,
//!   under a timeout) and called again: no input is lost, and control
//!   frames half written are finished first by the next call (also the
//!   linger after a failure: the next call goes on with it and returns
//!   the failure; only after invalid UTF-8 in a text message that
//!   `read`/`read_message` was handing out does it return
//!   [`crate::Error::Closed`] instead);
//! - a send dropped before it completes may have written part of its
//!   frame: the peer cannot make sense of anything after it, so the next
//!   call fails the connection without a Close ([`crate::Error::Closed`],
//!   the transport should be dropped). Don't cancel sends you mean to keep
//!   the connection through.
//!
//! # A peer that stops reading
//!
//! A write waits as long as the transport makes it wait: [`WebSocket`]'s
//! sends, and the replies its reads write, wait for a peer that takes none
//! of our bytes until the transport gives up. For a dead peer (one that
//! acknowledges nothing) a transport timeout does that: embassy-net's
//! `TcpSocket::set_timeout`, Linux's `TCP_USER_TIMEOUT`. A live peer that
//! acknowledges but reads nothing (TCP's window closed) holds a write for
//! ever: wrap the transport in [`WriteTimeout`], whose writes fail when
//! the peer takes none of our bytes for its timeout (reads, and so idle
//! connections, are left alone), or bound such calls with your
//! executor's timeout (`tokio::time::timeout`,
//! `embassy_time::with_timeout`); drop the transport when one fires (a
//! send dropped half way makes the next call fail, see above). The
//! split halves bound it themselves: the reader judges the peer by its
//! progress on the writer's frame and gives the connection up, dropping
//! the writer's write, when its Close cannot go out within the close
//! timeout (see [`Reader`]). Neither judges a peer that keeps every read
//! full (it is evidently there): if one that sends without end and never
//! reads must not hold a send, bound that send too.
//!
//! # permessage-deflate
//!
//! With the `deflate` feature (which needs an allocator; without it
//! nothing below exists and the driver allocates nothing),
//! `WebSocket::accept_deflate` / `accept_with_deflate` (server) and
//! `WebSocket::connect_deflate` (client) negotiate permessage-deflate
//! (RFC 7692) with `deflate::PerMessageDeflate` options, and
//! `WebSocket::enable_deflate` turns on one agreed elsewhere (hyper's
//! upgrade). Then whole messages of at least `PerMessageDeflate::min_size`
//! bytes (default 64) are sent compressed at `PerMessageDeflate::level`
//! (default 3): `send`, `send_text`, `send_binary`, the replies of
//! `respond`, and the split `Writer`'s sends. Fragments (`send_fragment`)
//! go uncompressed, as the RFC allows. Compressed messages received are
//! inflated by the connection within `Config::max_message_size` (past it:
//! 1009 before the memory is spent), text checked as UTF-8 as it comes
//! out (1007). A client refuses an answer it must refuse with
//! `HandshakeError::UnexpectedExtensions`, as every client of ours.
//!
//! Memory, per connection:
//! - sending: the driver's own `deflate::Compressor` (about 294 KB from
//!   the first compressed message on with context takeover; none kept
//!   between messages without it) and a frame buffer (`Vec<u8>`) in which
//!   each compressed frame is built whole before it is written: as large
//!   as the largest compressed frame, of which at most 64 KiB is kept
//!   between sends. A compressed frame that fits the room in the write
//!   buffer is copied there (and may wait there with other replies, as
//!   uncompressed ones do); a larger one is written straight from the
//!   frame buffer;
//! - receiving: the connection's inflater (about 56 KB with its 32 KiB
//!   window and 8 KiB scratch, from the first compressed message on with
//!   context takeover; none kept between messages without it), inflating
//!   into the message buffer.
//!
//! Compression runs in the sending call, on the executor's thread: a
//! large compressible message keeps that thread busy for as long as it
//! takes (raise `min_size`, or send such messages from a task that may).
//!
//! Order: with context takeover the peer's inflater follows our
//! compressor's window, so frames must reach it in the order they were
//! compressed. `WebSocket` sends one message at a time; after `split`
//! only the `Writer` sends data (the reader writes control frames only),
//! and it compresses a message only once it holds the transport's write
//! half, which it keeps until the frame is written (a pong waits that
//! long, queued, while the reader reads on). A send dropped before its frame is
//! whole fails the connection, as any data frame left part written does,
//! so no later message refers to one the peer never got.

#[cfg(any(feature = "tokio", feature = "embassy-time"))]
mod clocks;
#[cfg(feature = "deflate")]
mod deflate;
mod split;
// Frames are built with `encode_frame_vec` (feature `alloc`).
#[cfg(all(test, feature = "alloc"))]
mod tests;
mod websocket;
mod write_timeout;

#[cfg(any(feature = "tokio", feature = "embassy-time"))]
pub use clocks::*;
pub use split::{Lock, ReadHalf, Reader, Shared, Writer};
pub use websocket::WebSocket;
pub use write_timeout::{WriteTimeout, WriteTimeoutError};

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use crate::time::Instant;

/// The async driver's clock.
///
/// `now` must be monotonic; `wait_until` completes at or after `deadline`
/// (at once if it has passed) and must be cancel-safe (dropped when input
/// comes first).
// The futures' `Send`-ness follows the implementation (tokio's is `Send`).
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Waits until `deadline`.
    async fn wait_until(&self, deadline: Instant);
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    async fn wait_until(&self, deadline: Instant) {
        (**self).wait_until(deadline).await;
    }
}

/// Which of two futures finished first.
pub(crate) enum Either<A, B> {
    /// The first.
    First(A),
    /// The second.
    Second(B),
}

/// Runs `a` and `b` until one finishes, then drops the other (`a` is
/// polled first, so it wins a tie).
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::First(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Second(y));
        }
        Poll::Pending
    })
    .await
}

/// `fut`, or `None` once `deadline` (if any) passes first.
pub(crate) async fn until<C: Clock, F: Future>(
    clock: &C,
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        None => Some(fut.await),
        Some(deadline) => match race(fut, clock.wait_until(deadline)).await {
            Either::First(x) => Some(x),
            Either::Second(()) => None,
        },
    }
}
