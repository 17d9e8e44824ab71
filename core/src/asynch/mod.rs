//! The async driver (feature `async`): a [`Connection`](crate::Connection)
//! over any `embedded_io_async::{Read, Write}` byte stream — an embassy-net
//! `TcpSocket`, an `embassy_sync::pipe::Pipe`, a tokio `TcpStream` through
//! `embedded_io_adapters::tokio_1::FromTokio` — with caller-provided
//! buffers, no allocation and no executor of its own.
//!
//! It is the blocking driver ([`crate::driver`]) with `.await`s: both run
//! the same steps (`crate::session`: the read loop, the timers, the close,
//! the frame writer, the handshake), give the same events, close codes and
//! errors, and use only the connection's public API.
//!
//! - [`WebSocket`]: one value for reading and sending, as the blocking
//!   driver.
//! - [`WebSocket::split`] (with the transport in two halves): a [`Reader`]
//!   and a [`Writer`] for two tasks. A send never waits behind a pending
//!   read, and the heartbeat (pings, the pong timeout) runs while only the
//!   reader does.
//!
//! # Time
//!
//! Time comes from a [`Clock`]: `now`, and a wait until a deadline.
//! `TokioClock` (feature `tokio`) and `EmbassyClock` (feature
//! `embassy-time`) are provided. While it waits for input the driver races
//! the read against the connection's next deadline (heartbeat ping, pong,
//! fragment, close timeouts), so a silent peer is noticed on time without
//! a task of its own.
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
//!   frames half written are finished first by the next call;
//! - a send dropped before it completes may have written part of its
//!   frame: the peer cannot make sense of anything after it, so the next
//!   call fails the connection without a Close ([`crate::Error::Closed`],
//!   the transport should be dropped). Don't cancel sends you mean to keep
//!   the connection through.

#[cfg(any(feature = "tokio", feature = "embassy-time"))]
mod clocks;
mod split;
mod websocket;

#[cfg(any(feature = "tokio", feature = "embassy-time"))]
pub use clocks::*;
pub use split::{Lock, ReadHalf, Reader, Shared, Writer};
pub use websocket::WebSocket;

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
