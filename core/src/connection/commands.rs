//! The commands from the application: data frames written into the
//! caller's buffer, pings, the Close (queued), failing and aborting.

use super::*;

/// Commands from the application: frames written into the caller's
/// buffer (or, for the Close, queued for [`Connection::poll_transmit`]).
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// Writes a whole text or binary message as one frame into `out`,
    /// masked when this end is a client, and returns its length
    /// ([`Connection::frame_len`]).
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let header = self.message_header(kind, payload.len())?;
        Ok(encode_frame(header, payload, out)?)
    }

    /// Writes a text message as one frame; see [`Connection::send`].
    pub fn send_text(&mut self, text: &str, out: &mut [u8]) -> Result<usize, SendError> {
        self.send(MessageKind::Text, text.as_bytes(), out)
    }

    /// Writes a binary message as one frame; see [`Connection::send`].
    pub fn send_binary(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize, SendError> {
        self.send(MessageKind::Binary, data, out)
    }

    /// Writes one fragment of a message: the first call starts a message of
    /// `kind`, later calls continue it (their `kind` is ignored), and `fin`
    /// ends it. Text fragments may split a character; the whole must be UTF-8.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let required = self.frame_len(payload.len());
        if out.len() < required {
            return Err(InsufficientSizeError { required }.into());
        }
        let header = self.fragment_header(kind, payload.len(), fin)?;
        Ok(encode_frame(header, payload, out)?)
    }

    /// For callers that write payloads themselves (to stream a large one, or
    /// to send it without a copy): the header of a whole-message frame, with
    /// a fresh masking key when this end is a client. Encode it with
    /// [`FrameHeader::encode`], then write the payload masked with
    /// [`crate::mask::apply_mask`] if `mask` is set.
    pub fn message_header(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
    ) -> Result<FrameHeader, SendError> {
        if self.sending_fragmented {
            return Err(SendError::FragmentInProgress);
        }
        self.check_open()?;
        Ok(self.header(kind.opcode(), true, payload_len))
    }

    /// Like [`Connection::message_header`], for one fragment (see
    /// [`Connection::send_fragment`]).
    pub fn fragment_header(
        &mut self,
        kind: MessageKind,
        payload_len: usize,
        fin: bool,
    ) -> Result<FrameHeader, SendError> {
        self.check_open()?;
        let opcode = if self.sending_fragmented {
            OpCode::Continuation
        } else {
            kind.opcode()
        };
        self.sending_fragmented = !fin;
        Ok(self.header(opcode, fin, payload_len))
    }

    /// Writes a Ping with `payload` (at most 125 bytes). The heartbeat sends
    /// its own Pings; a Pong to this one is reported as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, SendError> {
        self.check_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong);
        }
        let header = self.header(OpCode::Ping, true, payload.len());
        Ok(encode_frame(header, payload, out)?)
    }

    /// Starts the close handshake: queues a Close with `code` and `reason`
    /// (cut to 123 bytes on a character boundary) for
    /// [`Connection::poll_transmit`]. No data frame may be sent afterwards;
    /// the peer has [`Config::close_timeout`] from `now` to answer.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.check_open()?;
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code));
        }
        self.queue_close(code, close::truncate_reason(reason).as_bytes());
        self.pending_ping = false;
        // Only the close handshake's own deadline runs from now on.
        self.timers.stop_all();
        self.timers
            .set(Timer::Close, now.after(&self.config.close_timeout));
        self.state = State::CloseSent;
        Ok(())
    }

    /// Fails the connection for a violation the caller found itself, as if
    /// the connection had found it: the Close with the error's
    /// [`close_code`](ProtocolError::close_code) is queued for
    /// [`Connection::poll_transmit`], and the error is returned and kept
    /// ([`Connection::failure`]). A connection that has already failed or
    /// closed is left as it is and gives [`Error::Closed`].
    ///
    /// For example a caller that validates a text message that arrived
    /// whole in its input itself (`core::str::from_utf8` on
    /// [`Connection::payload`]) and fails with
    /// [`ProtocolError::InvalidUtf8`] when it is not UTF-8, as the blocking
    /// driver does: [`Connection::event`] does the same, but the event it
    /// returns borrows the connection, which a caller that hands out that
    /// event can then not touch when the validation failed (to send the
    /// Close, say).
    pub fn fail(&mut self, error: ProtocolError) -> Error {
        match self.fail_protocol(error) {
            // What `error` would read back from the state.
            Stop::Failed => Error::Protocol(error),
            Stop::Closed => Error::Closed,
        }
    }

    /// Marks the connection closed without a close handshake (the transport
    /// ended). Pending frames are dropped.
    pub fn abort(&mut self) {
        self.pending_pong = None;
        self.pending_ping = false;
        self.timers.stop_all();
        self.pending_close = None;
        self.state = State::Closed;
    }
}
