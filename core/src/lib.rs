#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
//! snowsocket-core — placeholder crate docs (rewritten once the connection lands).

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod close;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod time;
pub mod utf8;

pub use close::CloseCode;
pub use error::{InsufficientSizeError, ProtocolError};
pub use frame::{FrameHeader, OpCode};
pub use time::Instant;
