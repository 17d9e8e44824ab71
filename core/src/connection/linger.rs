//! After a failure whose Close went out: reading past what the peer still
//! sends until its Close ([`Connection::handle_linger`]).

use super::*;

/// Inputs after a failure.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// After a failure whose Close went out: reads past what the peer
    /// still sends, frame by frame and without looking inside, until its
    /// Close ([`Connection::peer_closed`]); all of `input` is consumed (a
    /// header cut short is kept for the next call). Give it, in order, the
    /// input [`Connection::handle_read`] left unconsumed (for a failure it
    /// returned, the whole input of that call) and then what arrives next.
    /// Returns whether to go on reading: `false` once the peer's Close has
    /// come, or [`Config::close_timeout`] has passed since the first call
    /// (and at once, doing nothing, when the connection has not failed)
    /// (its deadline is then [`Connection::poll_timeout`]'s). Each header
    /// is taken at its word, however it breaks the protocol (the failure
    /// may have been that very header): a peer that sends what is not
    /// frames at all may be read until its EOF or the deadline.
    ///
    /// RFC 6455 §7.1.1: after sending a Close, read until the peer's. A
    /// transport closed while the peer's bytes are still unread may reset
    /// the connection (TCP sends RST), and the peer may never read our
    /// Close.
    pub fn handle_linger(&mut self, mut input: &[u8], now: Instant) -> bool {
        // Only a failed connection lingers (else nothing to do).
        if !matches!(self.state, State::Failing(_) | State::Failed(_)) {
            return false;
        }
        if !self.timers.is_set(Timer::Close) {
            self.timers
                .set(Timer::Close, now.after(&self.config.close_timeout));
        }
        loop {
            match &mut self.rx {
                Rx::Skip { remaining } => {
                    let take = (*remaining).min(input.len());
                    input = input.get(take..).unwrap_or_default();
                    *remaining -= take;
                    if *remaining > 0 || input.is_empty() {
                        break;
                    }
                    self.rx = Rx::SkipHeader {
                        read: 0,
                        close: false,
                        masked: false,
                        extended: 0,
                        len: 0,
                    };
                }
                Rx::SkipHeader {
                    read,
                    close,
                    masked,
                    extended,
                    len,
                } => {
                    let Some((&byte, rest)) = input.split_first() else {
                        break;
                    };
                    input = rest;
                    match *read {
                        0 => *close = byte & 0x0f == OpCode::Close.as_u8(),
                        1 => {
                            *masked = byte & 0x80 != 0;
                            *len = u64::from(byte & 0x7f);
                            *extended = match *len {
                                126 => 2,
                                127 => 8,
                                _ => 0,
                            };
                            if *extended > 0 {
                                *len = 0;
                            }
                        }
                        // The extended length, big-endian.
                        _ => *len = (*len << 8) | u64::from(byte),
                    }
                    *read += 1;
                    if *read >= 2 && *read - 2 == *extended {
                        let key = if *masked { 4 } else { 0 };
                        self.rx = if *close {
                            Rx::Done
                        } else {
                            Rx::Skip {
                                remaining: saturating_usize(*len).saturating_add(key),
                            }
                        };
                    }
                }
                _ => break,
            }
        }
        !self.peer_closed() && !self.timers.is_expired(Timer::Close, now)
    }
}
