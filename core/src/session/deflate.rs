//! permessage-deflate in the async driver (features `async` and
//! `deflate`): the client's offer and its check of the answer, and the
//! sending half ([`DeflateSend`]). The server's answer is
//! [`handshake::write_accept_with_deflate`] through
//! [`super::server_handshake_with`]; inflation is the connection's
//! ([`crate::Connection::enable_deflate`]).

use alloc::vec::Vec;

use rand_core::RngCore;

use super::{Output, MAX_HEADERS};
use crate::connection::{MessageKind, Role};
use crate::deflate::{Compressor, DeflateConfig, DeflateParams, PerMessageDeflate};
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Parsed};

/// The frame buffer's capacity kept between sends: a larger message's
/// buffer is given back once it is sent.
const KEEP: usize = 64 * 1024;

/// The sending half of permessage-deflate in a driver: the agreement, the
/// options, our own [`Compressor`] (not the connection's: a reply is
/// compressed while it borrows the connection's message buffer), and the
/// buffer a compressed frame is built in before it is written.
///
/// Memory: the compressor's state (about 294 KB, kept between messages
/// only with context takeover) and the frame buffer (the largest
/// compressed frame sent, of which at most 64 KiB is kept between sends).
pub(crate) struct DeflateSend {
    /// What the handshake agreed on.
    pub(crate) params: DeflateParams,
    /// Messages shorter than this go uncompressed.
    min_size: usize,
    compressor: Compressor,
    frame: Vec<u8>,
}

impl DeflateSend {
    /// The sending half of `role` (this end) after agreeing on `params`.
    pub(crate) fn new(role: Role, params: DeflateParams, options: &PerMessageDeflate) -> Self {
        Self {
            params,
            min_size: options.min_size,
            compressor: Compressor::new(role, &params, options.level),
            frame: Vec::new(),
        }
    }

    /// Whether a message of `len` bytes is sent compressed.
    pub(crate) fn compresses(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// The whole message as one compressed frame (RSV1 set), masked with
    /// `mask` (a client's key from the header the connection gave). It
    /// must be sent, whole, before the next message is compressed: with
    /// context takeover the peer's window follows ours. (A send that stops
    /// half way fails the connection, so a frame left unsent is never
    /// followed by another.)
    pub(crate) fn encode(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) -> &[u8] {
        self.frame.clear();
        self.compressor
            .write_message(kind, payload, mask, &mut self.frame);
        &self.frame
    }

    /// The frame was written: keep at most [`KEEP`] bytes of its buffer.
    pub(crate) fn sent(&mut self) {
        self.frame.clear();
        self.frame.shrink_to(KEEP);
    }
}

impl Output<'_> {
    /// Puts an encoded frame after what waits, if it fits; `false` (and
    /// nothing put) if not.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.end + bytes.len();
        match self.buf.get_mut(self.end..end) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.end = end;
                true
            }
            None => false,
        }
    }
}

/// The client's request with a permessage-deflate `offer`, written into
/// `output`; returns the accept value to expect (see
/// [`super::client_request`]).
pub(crate) fn client_request_deflate<R: RngCore>(
    output: &mut Output<'_>,
    request: &ClientRequest<'_>,
    rng: &mut R,
    offer: &DeflateConfig,
) -> Result<[u8; 28], handshake::WriteError> {
    let key = handshake::generate_key(rng);
    let n = handshake::write_request_with_deflate(output.buffer(), request, &key, Some(offer))?;
    output.queue(n);
    Ok(handshake::accept_key(&key))
}

/// [`super::client_handshake`] for a request that offered `offer`: also
/// the agreement (`None`: the server declined). An answer we must refuse
/// is [`HandshakeError::UnexpectedExtensions`], as for every client of
/// ours.
#[allow(clippy::type_complexity)]
pub(crate) fn client_handshake_deflate(
    read: &[u8],
    accept: &[u8; 28],
    request: &ClientRequest<'_>,
    limits: &HandshakeLimits,
    offer: &DeflateConfig,
) -> Result<Option<(usize, Option<usize>, Option<DeflateParams>)>, HandshakeError> {
    let mut headers = [handshake::EMPTY_HEADER; MAX_HEADERS];
    let protocols = request.subprotocols;
    match handshake::parse_response_with_deflate_expecting(
        read,
        &mut headers,
        accept,
        protocols,
        Some(offer),
        limits,
    )? {
        Parsed::Complete {
            value: (response, agreed),
            consumed,
        } => {
            let chosen = response
                .subprotocol()
                .and_then(|p| protocols.iter().position(|o| *o == p));
            Ok(Some((consumed, chosen, agreed)))
        }
        Parsed::Incomplete => Ok(None),
    }
}
