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
//! The compression is zlib-rs's (pure Rust, `no_std` + `alloc`), picked
//! over miniz_oxide by measurement: on permessage-deflate's work (each
//! message compressed with a sync flush and inflated, context kept) it
//! took 0.19–0.74× miniz_oxide's time (medians of 7 rounds) on JSON-like
//! text of 256 B to 64 KiB at levels 1, 3 and 6, for compressed sizes
//! within a few percent of each other at levels 3 and 6 (`cargo bench -p snowsocket-core --features deflate
//! --bench deflate_crates`; the figures are in the README), and it
//! compresses within any window the peer allows, which miniz_oxide
//! cannot limit.
//!
//! Inflation always keeps a 32 KiB window, which reads any window size a
//! peer uses. The compressor uses the window agreed on (9–15 bits; under
//! 8 bits, which zlib does not make raw streams for, it runs in RLE mode:
//! Huffman-coded literals and repeats of the previous byte, valid under
//! any window). With context takeover a connection keeps its compressor
//! (294 KB with a 15-bit window, from the first compressed message it
//! sends) and its inflater (about 56 KB with its 8 KiB output scratch,
//! from the first compressed message it receives) between messages;
//! without it, each is dropped after every message.

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
