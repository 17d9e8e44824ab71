//! One step of rustls's unbuffered state machine: where its records,
//! plaintext and alerts go ([`Output::step`]; records to send into an
//! [`Outgoing`], which grows to what rustls asks for).

use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};

use super::outgoing::Outgoing;
use super::unbuffered::Pumped;

/// Encodes the record rustls offers after a failure (its alert);
/// whether there was one.
pub(super) fn encode_alert<Data>(
    state: Result<ConnectionState<'_, '_, Data>, rustls::Error>,
    outgoing: &mut Outgoing,
) -> bool {
    match state {
        Ok(ConnectionState::EncodeTlsData(mut e)) => outgoing
            .write_with(64, |buf| match e.encode(buf) {
                Ok(n) => Ok(n),
                Err(EncodeError::InsufficientSize(s)) => Err(Some(s)),
                Err(EncodeError::AlreadyEncoded) => Err(None),
            })
            .is_ok(),
        _ => false,
    }
}

pub(super) enum Step {
    /// Call rustls again.
    Again,
    /// It needs more input (or the caller has what it wanted).
    Stop,
}

/// Where one rustls step's results go.
pub(super) struct Output<'a, 'd> {
    pub(super) outgoing: &'a mut Outgoing,
    pub(super) plain: &'a mut Vec<u8>,
    pub(super) sink: &'a mut [u8],
    pub(super) pumped: &'a mut Pumped,
    pub(super) data: &'a mut &'d [u8],
    pub(super) close_wanted: bool,
    pub(super) close_queued: &'a mut bool,
    pub(super) peer_closed: &'a mut bool,
}

impl Output<'_, '_> {
    /// Plaintext for the reader: into the sink while it has room and
    /// nothing is kept before it, the rest kept.
    pub(super) fn deliver(&mut self, payload: &[u8]) {
        let room = &mut self.sink[self.pumped.sunk..];
        let n = if self.plain.is_empty() {
            payload.len().min(room.len())
        } else {
            0
        };
        room[..n].copy_from_slice(&payload[..n]);
        self.pumped.sunk += n;
        self.plain.extend_from_slice(&payload[n..]);
    }

    /// Handles one state rustls reached; returns its discard and what
    /// to do next.
    pub(super) fn step<Data>(
        &mut self,
        status: UnbufferedStatus<'_, '_, Data>,
    ) -> (usize, Result<Step, rustls::Error>) {
        let mut discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(e) => return (discard, Err(e)),
        };
        let step = match state {
            ConnectionState::ReadTraffic(mut traffic) => loop {
                match traffic.next_record() {
                    Some(Ok(record)) => {
                        discard += record.discard;
                        self.deliver(record.payload);
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Ok(Step::Again),
                }
            },
            ConnectionState::EncodeTlsData(mut e) => {
                match self.outgoing.write_with(512, |buf| match e.encode(buf) {
                    Ok(n) => Ok(n),
                    Err(EncodeError::InsufficientSize(s)) => Err(Some(s)),
                    Err(EncodeError::AlreadyEncoded) => Err(None),
                }) {
                    Ok(_) => Ok(Step::Again),
                    Err(()) => Err(rustls::Error::General("cannot encode a record".into())),
                }
            }
            // The encoded records are in `outgoing`: ours to send.
            ConnectionState::TransmitTlsData(t) => {
                t.done();
                Ok(Step::Again)
            }
            ConnectionState::WriteTraffic(mut w) => {
                let mut result = Ok(Step::Stop);
                if !self.data.is_empty() && !*self.close_queued {
                    let data: &[u8] = self.data;
                    let estimate = data.len() + (data.len() / 16_384 + 1) * 64;
                    match self
                        .outgoing
                        .write_with(estimate, |buf| w.encrypt(data, buf).map_err(encrypt_size))
                    {
                        Ok(_) => {
                            self.pumped.encrypted += data.len();
                            *self.data = &[];
                        }
                        Err(()) => {
                            result = Err(rustls::Error::General("cannot encrypt".into()));
                        }
                    }
                }
                if result.is_ok()
                    && self.close_wanted
                    && !*self.close_queued
                    && self
                        .outgoing
                        .write_with(64, |buf| w.queue_close_notify(buf).map_err(encrypt_size))
                        .is_ok()
                {
                    *self.close_queued = true;
                }
                result
            }
            // No plaintext follows; rustls may still offer WriteTraffic
            // (for data, or our close_notify).
            ConnectionState::PeerClosed => {
                *self.peer_closed = true;
                Ok(Step::Again)
            }
            // Both close_notify sent: final.
            ConnectionState::Closed => {
                *self.peer_closed = true;
                Ok(Step::Stop)
            }
            ConnectionState::BlockedHandshake => Ok(Step::Stop),
            // Early data is handled before (server), and rustls may
            // add states: wait for input.
            _ => Ok(Step::Stop),
        };
        (discard, step)
    }
}

/// The size an encryption needs, when the buffer was too small.
pub(super) fn encrypt_size(e: EncryptError) -> Option<InsufficientSizeError> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s),
        _ => None,
    }
}
