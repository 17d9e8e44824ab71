#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! snowsocket-core: the WebSocket protocol (RFC 6455) for any target, from a
//! microcontroller to a server, with no allocator and no I/O of its own.
//!
//! ```text
//! bytes in ──► Connection::handle_read(input, now) ──► Event { Text, Binary, Ping, Pong, Close }
//!                │ header → limits → unmask in place → UTF-8 (incremental)
//!                │ → reassembly (only when fragmented) → control frames answered
//!                │
//!                ├─ or, unborrowed: handle_read_unborrowed(input, now) ──► UnborrowedEvent
//!                │    payload named by position: Payload::Input(range) | Payload::Message
//!                │    (drop a lock or a borrow here) ──► event(ev, input) ──► Event
//!                ▼
//!          poll_transmit(out) / poll_transmit_with(write) ──► bytes out (pongs, close replies, heartbeat pings)
//! app ──► send / send_fragment / ping / close / fail ──► bytes out (masked when client)
//! clock ─► handle_timeout(now) / poll_timeout() ──► the next deadline (one timer table)
//! ```
//!
//! - [`handshake`]: the opening handshake, server and client.
//! - [`Connection`]: the sans-I/O state machine after the handshake. Time is
//!   an argument ([`Instant`]), randomness is injected (`rand_core::RngCore`),
//!   and storage is the caller's ([`MessageBuffer`]).
//! - [`WebSocket`]: a thin blocking driver over `embedded_io::{Read, Write}`,
//!   built on [`Connection`]'s public API alone (as any other driver or shell
//!   can be).
//!
//! Every peer violation fails the connection with the close code RFC 6455
//! asks for ([`ProtocolError::close_code`]); nothing a peer sends can panic.
//!
//! # The call order
//!
//! Two connections, a client and a server, talking through memory on a
//! virtual clock:
//!
//! ```
//! use snowsocket_core::{Config, Connection, Event, Instant, Role, SliceBuffer};
//! # struct Rng(u32);
//! # impl rand_core::RngCore for Rng {
//! #     fn next_u32(&mut self) -> u32 { self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223); self.0 }
//! #     fn next_u64(&mut self) -> u64 { u64::from(self.next_u32()) << 32 | u64::from(self.next_u32()) }
//! #     fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = self.next_u32() as u8 } }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! # }
//!
//! let now = Instant::ZERO;
//! let (mut client_store, mut server_store) = ([0u8; 256], [0u8; 256]);
//! let mut client = Connection::new(Role::Client, Config::default(), SliceBuffer::new(&mut client_store[..]), Rng(1), now);
//! let mut server = Connection::new(Role::Server, Config::default(), SliceBuffer::new(&mut server_store[..]), Rng(2), now);
//!
//! // 1. Commands write frames into the caller's buffer (masked: we are the client).
//! let mut wire = [0u8; 256];
//! let n = client.send_text("hello", &mut wire)?;
//!
//! // 2. The peer feeds what it received; each call returns the bytes it
//! //    consumed and at most one event. Loop until no event comes.
//! let mut input = &mut wire[..n];
//! while let (consumed, Some(event)) = server.handle_read(input, now)? {
//!     assert_eq!(event, Event::Text("hello"));
//!     input = &mut input[consumed..];
//! }
//!
//! // 3. Closing: the command queues a Close, poll_transmit hands it out.
//! server.close(snowsocket_core::CloseCode::NORMAL, "bye", now)?;
//! let n = server.poll_transmit(&mut wire)?;
//! let (_, event) = client.handle_read(&mut wire[..n], now)?;
//! assert!(matches!(event, Some(Event::Close(Some(frame))) if frame.reason == "bye"));
//! // The client's reply was queued for it; once it is out, both are closed.
//! let n = client.poll_transmit(&mut wire)?;
//! assert!(client.is_closed());
//! server.handle_read(&mut wire[..n], now)?;
//! assert!(server.is_closed());
//!
//! // 4. The clock: call handle_timeout when poll_timeout's deadline passes
//! //    (heartbeat pings, pong / close / fragment timeouts).
//! assert_eq!(server.poll_timeout(), None);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `alloc`: `alloc::vec::Vec<u8>` becomes a [`MessageBuffer`] that grows on
//!   demand up to the message-size limit.
//! - `reasons` (default): texts on the wire, the reason in the Close a
//!   failing connection sends ([`ProtocolError::reason`], "pong timeout",
//!   "fragment timeout") and the body of the HTTP answer to a refused
//!   upgrade request ([`handshake::HandshakeError::reason`]). Without it
//!   both are empty (about 0.7 KB less flash on a Cortex-M); codes, statuses
//!   and errors are unchanged.
//! - `deflate` (with `alloc`): permessage-deflate (RFC 7692), the
//!   `deflate` module: the negotiation in both handshake roles, compressed
//!   sends (`Connection::send_compressed`) and bounded inflation of
//!   received messages. Off by default; nothing of it is
//!   linked when off.
//! - `std`: `std_io::StdIo`, a `std::io` stream (a `TcpStream`, a WASI
//!   socket) for the blocking driver, with read timeouts as clock ticks.

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub mod asynch;
pub mod buffer;
pub mod close;
mod config;
pub mod connection;
mod counter_rng;
#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub mod deflate;
pub mod driver;
mod driver_body;
pub mod error;
mod event;
pub mod frame;
pub mod handshake;
pub mod mask;
mod role;
#[cfg(any(test, feature = "selftest"))]
pub mod selftest;
#[cfg(any(test, feature = "selftest"))]
mod seq_rng;
mod session;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod std_io;
mod texts;
pub mod time;
mod timer;
pub mod utf8;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use buffer::{MessageBuffer, SliceBuffer};
pub use close::CloseCode;
pub use config::InvalidConfig;
pub use connection::{
    ClientSide, CloseFrame, Config, Connection, Error, Event, MessageKind, Payload, Role,
    SendError, ServerSide, Side, UnborrowedEvent,
};
pub use counter_rng::CounterRng;
pub use driver::{echo, Clock, Decision, DriverError, Message, Parts, WebSocket};
pub use error::{InsufficientSizeError, ProtocolError};
#[cfg(feature = "alloc")]
pub use frame::encode_frame_vec;
pub use frame::{encode_frame, FrameHeader, OpCode};
pub use time::Instant;
