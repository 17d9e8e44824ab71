//! permessage-deflate (RFC 7692), with the `deflate` feature: what to offer
//! or accept ([`DeflateConfig`]; with the minimum size and the level a
//! driver or shell applies, [`PerMessageDeflate`]), what was agreed
//! ([`DeflateParams`]), and the negotiation of both handshake roles. The compression itself lives in
//! the [`Connection`](crate::Connection) once
//! [`Connection::enable_deflate`](crate::Connection::enable_deflate) is
//! called with the agreement.
//!
//! ```text
//! server: parse_request ─► negotiate(request.headers(), &config) ─► Some(params)
//!           ─► handshake::write_accept_with_deflate(.., Some(&params), ..)
//!           ─► connection.enable_deflate(&params, level)
//! client: handshake::write_request_with_deflate(.., Some(&config))
//!           ─► handshake::parse_response_with_deflate(.., Some(&config), ..) ─► Some(params)
//!           ─► connection.enable_deflate(&params, level)
//! ```
//!
//! # Rules (RFC 7692 §5, §7.1)
//!
//! - Server: the offers (every element of every `Sec-WebSocket-Extensions`
//!   header, in order) are tried in turn; one with an unknown, repeated or
//!   malformed parameter is declined and the next one is tried; the first
//!   acceptable `permessage-deflate` offer is accepted. No acceptable offer:
//!   no extension (the handshake still succeeds).
//! - Client: an answer is refused ([`HandshakeError::UnexpectedExtensions`](crate::handshake::HandshakeError::UnexpectedExtensions))
//!   when it names anything but one `permessage-deflate`, when it has an
//!   unknown, repeated or malformed parameter, a `client_max_window_bits`
//!   we did not offer, a window larger than we asked for, or lacks a
//!   parameter we requested (`server_no_context_takeover`,
//!   `server_max_window_bits`). The client then fails the connection.
//!
//! # Window sizes and memory
//!
//! Inflation always keeps a 32 KiB window, which reads any window size a
//! peer uses. The compressor (miniz_oxide) always searches a 32 KiB window,
//! so when the agreement limits our window below 15 bits, messages are sent
//! as stored (uncompressed) DEFLATE blocks, which are valid under any
//! window; with 15 bits they are compressed. With context takeover a
//! connection keeps its compressor (about 300 KB while it has sent a
//! compressed message) and its inflater (about 43 KB while it has received
//! one) between messages; without it, each is dropped after every message.

mod codec;
mod compressor;
mod negotiate;
mod options;

pub(crate) use codec::Deflate;
pub use compressor::Compressor;
pub(crate) use compressor::RSV1;
pub(crate) use negotiate::accept_answer;
pub use negotiate::{negotiate, DeflateConfig, DeflateParams, ExtensionValue};
pub use options::PerMessageDeflate;

/// The four bytes a sync flush ends with, removed by the sender and
/// appended again by the receiver (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
