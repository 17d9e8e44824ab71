//! The outputs: queued control frames handed out (`poll_transmit`), the
//! next deadline (`poll_timeout`), and the steps that queue and retire
//! control frames.

use super::*;

/// Outputs (`poll_*`): the frames to send and the next deadline. Call them
/// after every input and command, in this order.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// Writes the queued control frames (Pong, heartbeat Ping, Close, in that
    /// order) into `out` and returns the number of bytes written (0 when
    /// nothing is queued). A buffer of 139 bytes always fits the next frame;
    /// a smaller one that fits none gives [`InsufficientSizeError`].
    #[must_use = "the returned bytes must be written to the peer"]
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, InsufficientSizeError> {
        let mut written = 0;
        let frames = self.poll_transmit_with(|header, payload| {
            written += encode_frame(header, payload, out.get_mut(written..).unwrap_or_default())?;
            Ok(())
        });
        match frames {
            // The next frame does not fit: it stays queued.
            Err(e) if written == 0 => Err(e),
            _ => Ok(written),
        }
    }

    /// [`Connection::poll_transmit`] for a caller that writes frames
    /// itself (through its own buffer, as the blocking driver does, or
    /// straight into a transport): hands each queued control frame (Pong,
    /// heartbeat Ping, Close, in that order) to `write` as its header, with
    /// a fresh masking key when this end is a client, and its payload, not
    /// yet masked. Encode the header with [`FrameHeader::encode`] and mask
    /// the payload with [`crate::mask::apply_mask`] if the header has a key
    /// ([`crate::encode_frame`] does both).
    ///
    /// A frame leaves the queue once `write` returns `Ok`; an `Err` leaves
    /// it queued and is returned. Returns the number of frames written;
    /// nothing is handed out after the Close.
    #[inline]
    pub fn poll_transmit_with<E>(
        &mut self,
        mut write: impl FnMut(FrameHeader, &[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut frames = 0;
        while let Some((header, payload)) = self.next_control() {
            write(header, payload)?;
            frames += 1;
            if self.control_sent(header.opcode) {
                break;
            }
        }
        Ok(frames)
    }

    /// The heartbeat Ping that [`Connection::poll_transmit_with`] (or
    /// [`Connection::poll_transmit`]) handed out last went out at `now`:
    /// its Pong's deadline counts from here instead of from when the Ping
    /// was queued. For a caller whose control frames can wait after being
    /// queued (behind the rest of a long frame being written, as in the
    /// async driver's split halves); one that writes them when they are
    /// queued need not call it. It never brings the deadline forward, and
    /// does nothing once the Pong came or the connection stopped.
    pub fn heartbeat_sent(&mut self, now: Instant) {
        if self.timers.is_set(Timer::Pong) {
            let from_now = now.after(&self.config.pong_timeout);
            if from_now > self.timers.deadline(Timer::Pong) {
                self.timers.set(Timer::Pong, from_now);
            }
        }
    }

    /// The heartbeat Ping is queued but cannot be handed out yet: the
    /// caller is in the middle of a frame, which the peer last took bytes
    /// of at `progress`. The Pong's deadline then runs (before the Ping is
    /// handed out) from the later of `progress` and when the Ping was
    /// queued, so a peer that takes nothing of ours for
    /// [`Config::pong_timeout`] is failed with it, 1001 "pong timeout",
    /// though the Ping never got out; one that keeps taking bytes, however
    /// slowly, is not. Call it again as the peer makes progress (it never
    /// brings the deadline forward); once the Ping is handed out,
    /// [`heartbeat_sent`](Self::heartbeat_sent) takes over. It does
    /// nothing while no Ping is queued. For a caller whose control frames
    /// wait behind its data frames, as the async driver's split halves.
    pub fn heartbeat_held(&mut self, progress: Instant) {
        if self.pending_ping {
            let from_progress = progress.after(&self.config.pong_timeout);
            if from_progress > self.timers.deadline(Timer::Pong) {
                self.timers.prime(Timer::Pong, from_progress);
            }
            self.timers.start(Timer::Pong);
        }
    }

    /// Whether the heartbeat Ping is queued, not yet handed out.
    #[cfg(feature = "async")]
    pub(crate) const fn heartbeat_queued(&self) -> bool {
        self.pending_ping
    }

    /// The next deadline at which [`Connection::handle_timeout`] has work:
    /// a heartbeat Ping due, a Pong overdue, a fragmented message or the
    /// close handshake overdue (the earliest in the timer table). `None`
    /// when no timer runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}

/// Queuing and retiring control frames.
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// Queues a Close with `code` and `reason` (already at most 123 bytes;
    /// see `QueuedPayload` for where it is kept).
    pub(super) fn queue_close(&mut self, code: CloseCode, reason: &[u8]) {
        #[cfg(not(feature = "alloc"))]
        {
            let payload = self.pending_close.insert(ControlPayload::new());
            let _ = payload.extend_from_slice(&code.0.to_be_bytes());
            let _ = payload.extend_from_slice(reason);
        }
        #[cfg(feature = "alloc")]
        {
            self.pending_close = Some(queued(&code.0.to_be_bytes(), reason));
        }
    }

    /// The next queued control frame (Pong, heartbeat Ping, Close, in that
    /// order): its header, with a fresh masking key for a client, and its
    /// payload. Once it is written, call [`Connection::control_sent`].
    pub(super) fn next_control(&mut self) -> Option<(FrameHeader, &[u8])> {
        let opcode = if self.pending_pong.is_some() {
            OpCode::Pong
        } else if self.pending_ping {
            OpCode::Ping
        } else if self.pending_close.is_some() {
            OpCode::Close
        } else {
            return None;
        };
        let mask = self.mask_key();
        let payload: &[u8] = match opcode {
            OpCode::Pong => self.pending_pong.as_deref().unwrap_or_default(),
            OpCode::Ping => &self.heartbeat,
            _ => self.pending_close.as_deref().unwrap_or_default(),
        };
        let header = FrameHeader {
            fin: true,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        Some((header, payload))
    }

    /// The control frame [`Connection::next_control`] gave, with `opcode`,
    /// was written: it is no longer queued. Returns `true` for the Close,
    /// after which nothing more is sent.
    pub(super) fn control_sent(&mut self, opcode: OpCode) -> bool {
        match opcode {
            OpCode::Pong => self.pending_pong = None,
            OpCode::Ping => {
                self.pending_ping = false;
                // Counted from the queueing (primed by `heartbeat`), or
                // from the hand-out (`heartbeat_sent`).
                self.timers.start(Timer::Pong);
            }
            _ => {
                self.pending_close = None;
                match self.state {
                    State::Replying => self.state = State::Closed,
                    // Closed, remembering why (`failure`).
                    State::Failing(e) => self.state = State::Failed(e),
                    _ => {}
                }
                return true;
            }
        }
        false
    }

    /// The heartbeat Ping is due: queue one (unless the last one awaits
    /// its Pong) and schedule the next. (One still queued is queued again:
    /// a fresh payload and deadline, both taken when it is handed out.)
    pub(super) fn heartbeat(&mut self, now: Instant) {
        if let Some(interval) = &self.config.ping_interval {
            self.timers.set(Timer::Ping, now.after(interval));
        }
        if !self.timers.is_set(Timer::Pong) {
            // `next_u32`: the bytes `fill_bytes` gives for 4 bytes with
            // rand_core's helpers, and an RNG need not link its
            // `fill_bytes` for them.
            self.heartbeat = self.rng.next_u32().to_le_bytes();
            self.pending_ping = true;
            // It runs once the Ping is handed out (`control_sent`).
            self.timers
                .prime(Timer::Pong, now.after(&self.config.pong_timeout));
        }
    }
}
