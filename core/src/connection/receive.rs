//! The receive path: frames parsed from the peer's bytes, checked against
//! the role, the limits and the fragmentation state, unmasked in place,
//! validated as UTF-8 as they arrive, and assembled into messages; control
//! frames acted on.

use core::ops::Range;

use super::*;

/// The receive path's steps (see [`Connection::handle_read_unborrowed`]).
impl<B: MessageBuffer, R: RngCore, S: Side> Connection<B, R, S> {
    /// The read loop, returning where the event's payload lives rather than
    /// borrowing it (so that callers can loop over it without lending
    /// conflicts).
    pub(super) fn read_raw(
        &mut self,
        input: &mut [u8],
        now: Instant,
    ) -> Result<(usize, Option<UnborrowedEvent>), Stop> {
        match self.state {
            // The caller already had the failure; nothing more is read.
            State::Failing(_) => return Err(Stop::Closed),
            // After the close handshake (or a failure whose Close went out)
            // anything the peer still sends is discarded.
            State::Closed | State::Failed(_) => return Ok((input.len(), None)),
            State::Open | State::CloseSent | State::Replying => {}
        }
        let mut pos = 0;
        loop {
            // The frame whose payload comes next: a header just read flows
            // straight on to its payload (the state is stored only when the
            // input ends inside the payload).
            let (frame, remaining, received) = match self.rx {
                // (Skipping comes only with a failure.)
                Rx::Done | Rx::Skip { .. } | Rx::SkipHeader { .. } => {
                    return Ok((input.len(), None))
                }
                Rx::Header => {
                    #[cfg(not(target_os = "none"))]
                    if let Some(read) = self.whole_message(input, pos) {
                        return Ok(read);
                    }
                    #[cfg(not(feature = "deflate"))]
                    let decoded =
                        FrameHeader::decode(&input[pos..]).map_err(|e| self.fail_protocol(e))?;
                    // RSV1 allowed where permessage-deflate allows it.
                    #[cfg(feature = "deflate")]
                    let decoded = self
                        .decode_header(&input[pos..])
                        .map_err(|e| self.fail_protocol(e))?;
                    let Some((header, used)) = decoded else {
                        return Ok((pos, None));
                    };
                    let text = self
                        .check_header(&header, now)
                        .map_err(|e| self.fail_protocol(e))?;
                    // A control frame is taken whole (at most
                    // `MAX_CONTROL_FRAME` bytes, see `handle_read`): its
                    // payload stays in the input, named by range, and the
                    // connection keeps no buffer for it.
                    let after = input.len() - pos - used;
                    if header.opcode.is_control() && after < header.payload_len as usize {
                        return Ok((pos, None));
                    }
                    pos += used;
                    let frame = Frame {
                        fin: header.fin,
                        opcode: header.opcode,
                        mask: header.mask,
                        text,
                    };
                    // At most `max_frame_size` (or 125), so it fits.
                    (frame, header.payload_len as usize, 0)
                }
                Rx::Payload {
                    frame,
                    remaining,
                    received,
                } => (frame, remaining, received),
            };
            let available = input.len() - pos;
            let take = remaining.min(available);
            let chunk_range = pos..pos + take;
            // Only a server unmasks (check_header refused masked frames sent
            // to a client): with a side fixed when compiling, the other
            // side's code is not linked.
            if let (Role::Server, Some(key)) = (self.role(), frame.mask) {
                apply_mask(&mut input[chunk_range.clone()], key, received);
            }
            pos += take;
            if frame.opcode.is_control() {
                // Whole (see above).
                self.rx = Rx::Header;
                let payload = &input[chunk_range.clone()];
                let event = self.control_frame(frame.opcode, payload, chunk_range)?;
                return Ok((pos, Some(event)));
            }
            let remaining = remaining - take;
            let whole_in_input = received == 0 && remaining == 0;
            // A compressed message is always inflated into the message
            // buffer (by `append`).
            #[cfg(feature = "deflate")]
            let plain = !self.inflating_message();
            #[cfg(not(feature = "deflate"))]
            let plain = true;
            if whole_in_input && frame.fin && self.message.is_none() && plain {
                // An unfragmented message that arrived whole: no copy. Its
                // UTF-8 is validated once, as it is handed out.
                self.rx = Rx::Header;
                let source = Payload::Input(chunk_range);
                return Ok((pos, Some(data_event(frame.text, source))));
            }
            self.append(&input[chunk_range], frame.text)?;
            if remaining > 0 {
                self.rx = Rx::Payload {
                    frame,
                    remaining,
                    received: received + take,
                };
                return Ok((pos, None));
            }
            self.rx = Rx::Header;
            if let Some(event) = self.frame_complete(frame)? {
                return Ok((pos, Some(event)));
            }
        }
    }

    /// The most common frame a server receives, taken in one step: a
    /// whole, unfragmented, masked text or binary message of less than
    /// 64 KiB, while no message is being assembled (and, with
    /// permessage-deflate, none is compressed). Its payload is unmasked in
    /// place; returns where the input goes on and its event (as `read_raw`
    /// does, for the frame at `pos` in `input`). Anything else (or too
    /// little input) returns `None` and takes the general path, which
    /// applies every check this one makes, and the rest.
    ///
    /// Not on microcontrollers (`target_os = "none"`), where flash counts
    /// more than the instructions this saves.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn whole_message(
        &mut self,
        input: &mut [u8],
        pos: usize,
    ) -> Option<(usize, Option<UnborrowedEvent>)> {
        let frame = input.get_mut(pos..)?;
        let [first, second, ..] = *frame else {
            return None;
        };
        // FIN, no RSV bits, text or binary.
        let text = match first {
            0x81 => true,
            0x82 => false,
            _ => return None,
        };
        // Masked, with a 7- or 16-bit length.
        let (len, key_at) = match second ^ 0x80 {
            len @ 0..=125 => (usize::from(len), 2),
            126 => match frame.get(2..4)? {
                &[high, low] => (usize::from(u16::from_be_bytes([high, low])), 4),
                _ => return None,
            },
            _ => return None,
        };
        let start = key_at + 4;
        if self.role() != Role::Server
            || frame.len() < start + len
            || len > self.config.max_frame_size
            || len > self.max_message_size()
            || self.message.is_some()
        {
            return None;
        }
        #[cfg(feature = "deflate")]
        if self.deflate.is_some() {
            return None;
        }
        let (head, payload) = frame.split_at_mut(start);
        let key = match head.get(key_at..) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => return None,
        };
        apply_mask(&mut payload[..len], key, 0);
        self.utf8_checked = 0;
        self.message_buf.clear();
        let start = pos + start;
        let source = Payload::Input(start..start + len);
        Some((start + len, Some(data_event(text, source))))
    }

    /// Validates a header against the role, the limits and the fragmentation
    /// state, and prepares for its payload. Returns whether it is a data
    /// frame of a text message: the kind of the message being assembled,
    /// else its own opcode.
    #[inline(always)]
    fn check_header(&mut self, header: &FrameHeader, now: Instant) -> Result<bool, ProtocolError> {
        match (self.role(), header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if header.opcode.is_control() {
            return Ok(false);
        }
        if header.payload_len > self.config.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge {
                len: saturating_usize(header.payload_len),
                max: self.config.max_frame_size,
            });
        }
        // At most `max_frame_size`, so it fits.
        let len = header.payload_len as usize;
        let max_message = self.max_message_size();
        // A compressed message's size is checked as it inflates.
        #[cfg(feature = "deflate")]
        let compressed = self.inflating_message();
        match (header.opcode, &mut self.message) {
            (OpCode::Continuation, None) => Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(assembly)) => {
                assembly.fragments = assembly.fragments.saturating_add(1);
                if assembly.fragments > self.config.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        max: self.config.max_fragments,
                    });
                }
                match self.message_buf.len().checked_add(len) {
                    #[cfg(feature = "deflate")]
                    _ if compressed => {}
                    Some(total) if total <= max_message => {}
                    _ => return Err(ProtocolError::MessageTooLarge { max: max_message }),
                }
                Ok(assembly.kind == MessageKind::Text)
            }
            (_, Some(_)) => Err(ProtocolError::ExpectedContinuation),
            (opcode, None) => {
                if len > max_message {
                    return Err(ProtocolError::MessageTooLarge { max: max_message });
                }
                let kind = if opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.utf8_checked = 0;
                self.message_buf.clear();
                if !header.fin {
                    self.message = Some(Assembly { kind, fragments: 1 });
                    // After our Close only its own deadline runs.
                    if let (State::Open, Some(timeout)) =
                        (self.state, &self.config.fragment_timeout)
                    {
                        self.timers.set(Timer::Fragment, now.after(timeout));
                    }
                }
                Ok(kind == MessageKind::Text)
            }
        }
    }

    /// Appends a piece of data payload to the message being assembled,
    /// validating text as it arrives.
    fn append(&mut self, chunk: &[u8], text: bool) -> Result<(), Stop> {
        #[cfg(feature = "deflate")]
        if self.inflating_message() {
            return self.inflate_piece(chunk, text);
        }
        if self.message_buf.extend_from_slice(chunk).is_err() {
            let max = self.max_message_size();
            return Err(self.fail_protocol(ProtocolError::MessageTooLarge { max }));
        }
        if text && !self.check_utf8() {
            return Err(self.fail_protocol(ProtocolError::InvalidUtf8));
        }
        Ok(())
    }

    /// Validates the text received since the last call (and the incomplete
    /// character it may have ended with): `false` as soon as the message
    /// cannot be UTF-8 whatever follows, else `true` with an incomplete
    /// character at the end left for the next piece. The whole message is
    /// valid once nothing is left unchecked (see `frame_complete`).
    fn check_utf8(&mut self) -> bool {
        let unchecked = self
            .message_buf
            .as_slice()
            .get(self.utf8_checked..)
            .unwrap_or_default();
        let ascii = crate::utf8::ascii_prefix(unchecked);
        let rest = unchecked.get(ascii..).unwrap_or_default();
        let valid = match core::str::from_utf8(rest) {
            Ok(_) => rest.len(),
            // Cut short by the end of the input: a prefix of a character.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return false,
        };
        self.utf8_checked += ascii + valid;
        true
    }

    /// A whole control frame arrived, its payload unmasked (`payload`, at
    /// `range` in the input): act on it.
    #[inline]
    fn control_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        range: Range<usize>,
    ) -> Result<UnborrowedEvent, Stop> {
        match opcode {
            OpCode::Ping => {
                // Once our Close is queued nothing more may follow it (§5.5.1).
                if matches!(self.state, State::Open) {
                    #[cfg(not(feature = "alloc"))]
                    {
                        let pong = self.pending_pong.insert(ControlPayload::new());
                        let _ = pong.extend_from_slice(payload);
                    }
                    #[cfg(feature = "alloc")]
                    {
                        self.pending_pong = Some(queued(payload, &[]));
                    }
                }
                Ok(UnborrowedEvent::Ping(range))
            }
            OpCode::Pong => {
                if self.timers.is_set(Timer::Pong) && payload == self.heartbeat.as_slice() {
                    self.timers.stop(Timer::Pong);
                }
                Ok(UnborrowedEvent::Pong(range))
            }
            _ => {
                let code = match close::parse_close_payload(payload) {
                    Ok(parsed) => parsed.map(|(code, _)| code),
                    Err(e) => {
                        let stop = self.fail_protocol(e.into());
                        // The peer's Close (a bad one): nothing follows.
                        self.rx = Rx::Done;
                        return Err(stop);
                    }
                };
                self.rx = Rx::Done;
                self.message = None;
                // Replying or closed: no deadline is left.
                self.timers.stop_all();
                match self.state {
                    State::Open => {
                        let code = code.unwrap_or(CloseCode::NORMAL);
                        self.queue_close(code, b"");
                        self.pending_ping = false;
                        self.state = State::Replying;
                    }
                    State::CloseSent => self.state = State::Closed,
                    State::Replying | State::Failing(_) | State::Failed(_) | State::Closed => {}
                }
                Ok(UnborrowedEvent::Close(range))
            }
        }
    }

    /// A data frame's payload is complete: finish the message if it was
    /// the last.
    #[inline]
    fn frame_complete(&mut self, frame: Frame) -> Result<Option<UnborrowedEvent>, Stop> {
        match frame.opcode {
            // Taken whole by `read_raw` (`control_frame`), never here.
            OpCode::Ping | OpCode::Pong | OpCode::Close => Ok(None),
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !frame.fin {
                    return Ok(None);
                }
                // What the sender removed from a compressed message's end.
                #[cfg(feature = "deflate")]
                if self.inflating_message() {
                    self.inflate_end(frame.text)?;
                }
                // The last frame of a message that was copied into the buffer.
                if frame.text && self.utf8_checked != self.message_buf.len() {
                    return Err(self.fail_protocol(ProtocolError::InvalidUtf8));
                }
                let event = data_event(frame.text, Payload::Message);
                self.message = None;
                self.timers.stop(Timer::Fragment);
                Ok(Some(event))
            }
        }
    }
}

/// The event of a complete data message.
const fn data_event(text: bool, source: Payload) -> UnborrowedEvent {
    if text {
        UnborrowedEvent::Text(source)
    } else {
        UnborrowedEvent::Binary(source)
    }
}
