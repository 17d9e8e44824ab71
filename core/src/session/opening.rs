//! The opening handshake's steps, both roles: parse and answer (server),
//! write the request and check the answer (client).

use super::*;

/// Where the server's side of the opening handshake stands.
pub(crate) enum ServerHandshake {
    /// The request is incomplete: read more.
    Incomplete,
    /// An answer waits in the output; write it, then see [`Answer::open`].
    Answered(Answer),
}

/// The answer the server wrote.
pub(crate) enum Answer {
    /// Accepted: the connection is open, the request took `consumed` bytes.
    Open {
        /// The length of the request.
        consumed: usize,
    },
    /// Rejected by the server's `decide` hook with `status`.
    Rejected {
        /// The HTTP status sent.
        status: u16,
    },
    /// Refused: the request was invalid (the HTTP error was sent, if it fit).
    Refused(HandshakeError),
}

impl Answer {
    /// Once the answer is written: the bytes the request took, or the
    /// driver's error.
    pub(crate) fn open<E>(self) -> Result<usize, DriverError<E>> {
        match self {
            Self::Open { consumed } => Ok(consumed),
            Self::Rejected { status } => Err(DriverError::Rejected { status }),
            Self::Refused(e) => Err(DriverError::Handshake(e)),
        }
    }
}

/// One step of the server's opening handshake on `read` (the bytes
/// received so far): parses the request and, when it is complete, asks
/// `decide` (taken from its option) and writes the answer into `output`,
/// the accepting one by `accept` (into the buffer, for the request, with
/// the chosen subprotocol, the accept key's place held: see
/// `write_accept_keyed`; a driver that negotiates an extension,
/// permessage-deflate, writes its own). A bad request is answered with
/// its HTTP error.
///
/// The key (SHA-1) is computed after the step that parsed the request has
/// returned: the hash's state is then not on the stack on top of the
/// parsed headers (the deepest point of an echo firmware's stack).
pub(crate) fn server_handshake_with<'d, D, A>(
    read: &[u8],
    output: &mut Output<'_>,
    limits: &HandshakeLimits,
    decide: &mut Option<D>,
    accept: &mut A,
) -> Result<ServerHandshake, handshake::WriteError>
where
    D: FnOnce(&Request<'_, '_>) -> Decision<'d>,
    A: FnMut(&mut [u8], &Request<'_, '_>, Option<&str>) -> Result<usize, handshake::WriteError>,
{
    let (step, key) = answer_request(read, output, limits, decide, accept)?;
    if let Some(key) = key {
        let at = handshake::ACCEPT_KEY_AT;
        if let Some(slot) = output.buf.get_mut(at..at + 28) {
            slot.copy_from_slice(&handshake::accept_key(key));
        }
    }
    Ok(step)
}

/// Parses the request in `read` and, when it is complete, answers it (see
/// [`server_handshake_with`]); an accepting answer is written with its
/// accept key's place held, and the request's key is returned for it.
#[inline(always)]
fn answer_request<'r, 'd, D, A>(
    read: &'r [u8],
    output: &mut Output<'_>,
    limits: &HandshakeLimits,
    decide: &mut Option<D>,
    accept: &mut A,
) -> Result<(ServerHandshake, Option<&'r [u8]>), handshake::WriteError>
where
    D: FnOnce(&Request<'_, '_>) -> Decision<'d>,
    A: FnMut(&mut [u8], &Request<'_, '_>, Option<&str>) -> Result<usize, handshake::WriteError>,
{
    let mut headers = [handshake::EMPTY_HEADER; MAX_HEADERS];
    let error = match handshake::parse_request(read, &mut headers, limits) {
        Ok(Parsed::Complete {
            value: request,
            consumed,
        }) => {
            let decision = match decide.take() {
                Some(decide) => decide(&request),
                None => Decision::Accept { subprotocol: None },
            };
            let (n, answer, key) = match decision {
                Decision::Accept { subprotocol } => (
                    accept(output.buffer(), &request, subprotocol)?,
                    Answer::Open { consumed },
                    Some(request.key_bytes()),
                ),
                Decision::Reject { status, body } => (
                    handshake::write_reject(output.buffer(), status, body, &[])?,
                    Answer::Rejected { status },
                    None,
                ),
            };
            output.queue(n);
            return Ok((ServerHandshake::Answered(answer), key));
        }
        Ok(Parsed::Incomplete) => return Ok((ServerHandshake::Incomplete, None)),
        Err(e) => e,
    };
    Ok((ServerHandshake::Answered(refuse(output, error)), None))
}

/// Writes the HTTP answer to a request refused with `error` into
/// `output` (when it fits).
pub(crate) fn refuse(output: &mut Output<'_>, error: HandshakeError) -> Answer {
    if let Ok(n) = error.write_response(output.buffer()) {
        output.queue(n);
    }
    Answer::Refused(error)
}

/// Before a handshake read: time is not up and the request or response
/// still has room.
pub(crate) fn handshake_room<E>(
    room: usize,
    now: Instant,
    deadline: Option<Instant>,
) -> Result<(), DriverError<E>> {
    if deadline.is_some_and(|d| now >= d) {
        return Err(DriverError::HandshakeTimeout);
    }
    if room == 0 {
        return Err(DriverError::Handshake(HandshakeError::TooLarge));
    }
    Ok(())
}

/// The client's request, written into `output`; returns the
/// `Sec-WebSocket-Accept` value to expect in the answer (computed now,
/// before the answer's headers are on the stack: see
/// [`server_handshake_with`]).
pub(crate) fn client_request<R: RngCore>(
    output: &mut Output<'_>,
    request: &ClientRequest<'_>,
    rng: &mut R,
) -> Result<[u8; 28], handshake::WriteError> {
    let key = handshake::generate_key(rng);
    let n = handshake::write_generated_request(output.buffer(), request, &key)?;
    output.queue(n);
    Ok(handshake::accept_key(&key))
}

/// One step of the client's opening handshake on `read` (the bytes
/// received so far), expecting `accept`: `None` while the answer is
/// incomplete, else the bytes it took and the chosen subprotocol (an index
/// into `request.subprotocols`).
pub(crate) fn client_handshake(
    read: &[u8],
    accept: &[u8; 28],
    request: &ClientRequest<'_>,
    limits: &HandshakeLimits,
) -> Result<Option<(usize, Option<usize>)>, HandshakeError> {
    let mut headers = [handshake::EMPTY_HEADER; MAX_HEADERS];
    let protocols = request.subprotocols;
    match handshake::parse_response_expecting(read, &mut headers, accept, protocols, limits)? {
        Parsed::Complete {
            value: response,
            consumed,
        } => {
            let chosen = response
                .subprotocol()
                .and_then(|p| request.subprotocols.iter().position(|o| *o == p));
            Ok(Some((consumed, chosen)))
        }
        Parsed::Incomplete => Ok(None),
    }
}
