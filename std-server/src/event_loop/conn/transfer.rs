//! Bytes in and out of a connection: plain TCP, or through its TLS
//! session (`crate::session`); and the peer's progress on what we write.

use std::io;

use super::{would_block, Conn, Socket, READS_PER_TURN};
use crate::close::CloseCause;
use crate::session::{TlsFailure, TlsRead};

/// What a read brought.
pub(super) enum Input {
    Bytes(usize),
    WouldBlock,
    Eof,
}

impl<S: Socket> Conn<S> {
    /// Reads into `rbuf`: plaintext, through TLS when there is a session.
    pub(super) fn read(&mut self, rbuf: &mut [u8]) -> Result<Input, CloseCause> {
        let Some(tls) = &mut self.tls else {
            return match self.io.read(rbuf) {
                Ok(0) => Ok(Input::Eof),
                Ok(n) => Ok(Input::Bytes(n)),
                Err(e) if would_block(&e) => Ok(Input::WouldBlock),
                Err(e) => Err(CloseCause::Io(e.kind())),
            };
        };
        match tls.read(&mut self.io, rbuf) {
            Ok(TlsRead::Bytes(n)) => Ok(Input::Bytes(n)),
            Ok(TlsRead::WouldBlock) => Ok(Input::WouldBlock),
            Ok(TlsRead::Eof) => Ok(Input::Eof),
            Err(TlsFailure::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Input::Eof),
            Err(TlsFailure::Io(e)) => Err(CloseCause::Io(e.kind())),
            Err(TlsFailure::Tls(e)) => {
                // Send the alert, then give up.
                let _ = tls.send(&mut self.io);
                Err(CloseCause::Tls(e.to_string()))
            }
        }
    }

    /// Lingering: reads and drops whatever the peer still sends, until
    /// its EOF.
    pub(super) fn discard(&mut self, rbuf: &mut [u8]) {
        for _ in 0..READS_PER_TURN {
            match self.io.read(rbuf) {
                Ok(0) => return self.finish_linger(),
                Ok(_) => {}
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.finish_linger(),
            }
        }
        // More to drop: other connections get a turn first.
        self.more_to_read = true;
    }

    /// Writes `out` (through TLS when there is a session) as far as the
    /// socket takes it, tracking whether the peer makes progress. The stall
    /// is timed from the clock read here, not from the turn's start: a
    /// long callback before the write is not the peer's stall.
    pub(super) fn write(&mut self) -> Result<(), CloseCause> {
        let mut progress = false;
        match &mut self.tls {
            None => {
                while self.sent < self.out.len() {
                    match self.io.write(&self.out[self.sent..]) {
                        Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                        Ok(n) => {
                            self.sent += n;
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if would_block(&e) => break,
                        Err(e) => return Err(CloseCause::Io(e.kind())),
                    }
                }
            }
            Some(tls) => loop {
                if self.sent < self.out.len() {
                    match tls.encrypt(&self.out[self.sent..]) {
                        Ok(n) => self.sent += n,
                        Err(e) => {
                            let _ = tls.send(&mut self.io);
                            return Err(CloseCause::Tls(e.to_string()));
                        }
                    }
                }
                if !tls.wants_write() {
                    break;
                }
                match tls.send(&mut self.io) {
                    Ok(0) => return Err(CloseCause::Io(io::ErrorKind::WriteZero)),
                    Ok(_) => progress = true,
                    Err(e) if would_block(&e) => break,
                    Err(e) => return Err(CloseCause::Io(e.kind())),
                }
            },
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        let pending = !self.out.is_empty() || self.tls_pending();
        self.stalled_since = match (pending, progress) {
            (false, _) => None,
            (true, true) => Some(self.service.now()),
            (true, false) => self.stalled_since.or_else(|| Some(self.service.now())),
        };
        Ok(())
    }

    pub(super) fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}
