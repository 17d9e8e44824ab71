//! Shared helpers for snowsocket's behaviour tests (and for anyone testing
//! code built on it).
//!
//! - [`pipe`]: an in-memory duplex byte stream implementing
//!   `embedded_io::{Read, Write}`, with chosen chunk sizes and either
//!   "empty read = `TimedOut` tick" or blocking reads with a bounded wait.
//! - [`ManualClock`]: virtual time, shared and cloneable, usable as the
//!   driver's [`snowsocket_core::Clock`].
//! - [`FixedRng`] (a fixed byte sequence, e.g. the RFC 6455 masking key
//!   `37 fa 21 3d`) and [`XorShiftRng`] (seeded, for property loops).
//! - [`Pair`]: a client and a server [`Connection`] talking in memory on
//!   virtual time, bytes pumped both ways.
//! - [`frame`] / [`header`]: hand-made (possibly invalid) frames, and
//!   [`parse_frames`] / [`close_code`] to read what a connection sent.
//! - [`feed_chunks`] / [`feed_split`] / [`feed_every_way`]: feed bytes to a connection in a
//!   chosen chunking (or every split point and byte by byte) and collect the
//!   owned events, the error and what it transmitted.
//! - [`server`]: real-socket helpers for the server tests; [`tap`]: a
//!   forwarding tap that reads frame headers on the wire; [`tls`]: rcgen
//!   certificates and rustls configurations; [`interop`]: Python
//!   `websockets` and Node `ws` peers as child processes.
//!
//! These are test helpers: they panic (with a message) when a test's
//! expectation cannot hold, which is why the panic lints are allowed here.
//!
//! # Examples
//!
//! Two connections on virtual time:
//!
//! ```
//! use core::time::Duration;
//! use snowsocket_core::MessageKind;
//! use snowsocket_tests::{Ev, Pair, Side, QUIET};
//!
//! let mut pair = Pair::new(QUIET.ping_interval(Some(Duration::from_secs(30))));
//! pair.send(Side::Client, MessageKind::Text, b"hi");
//! pair.ping(Side::Server, b"?");
//! pair.run();
//! assert_eq!(pair.take_events(Side::Server), [Ev::Text("hi".into()), Ev::Pong(b"?".to_vec())]);
//! assert_eq!(pair.take_events(Side::Client), [Ev::Ping(b"?".to_vec())]);
//! pair.advance(Duration::from_secs(30)); // heartbeat pings, answered
//! assert!(pair.server.error.is_none() && pair.client.error.is_none());
//! ```
//!
//! The pipe, in its default mode (an empty read is a `TimedOut` tick):
//!
//! ```
//! use embedded_io::{ErrorKind, Error as _, Read, Write};
//!
//! let (mut a, b) = snowsocket_tests::pipe();
//! let mut b = b.read_chunk(2);
//! a.write(b"abc").unwrap();
//! let mut buf = [0u8; 8];
//! assert_eq!(b.read(&mut buf).unwrap(), 2);
//! assert_eq!(b.read(&mut buf).unwrap(), 1);
//! assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
//! drop(a);
//! assert_eq!(b.read(&mut buf).unwrap(), 0, "end of stream");
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod asynch;
pub mod deflate;
pub mod interop;
pub mod linger;
pub mod server;
pub mod tap;
pub mod tls;

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use rand_core::RngCore;
use snowsocket_core::{
    Config, Connection, Error, Event, FrameHeader, Instant, MessageBuffer, MessageKind, OpCode,
    Role,
};

mod clock;
mod feed;
mod pair;
mod pipes;
mod rngs;
mod wire;

pub use clock::*;
pub use feed::*;
pub use pair::*;
pub use pipes::*;
pub use rngs::*;
pub use wire::*;
