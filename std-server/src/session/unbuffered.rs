//! The TLS session over rustls's unbuffered API (feature `tls`).

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};

use crate::ServerConfig;

use super::outgoing::Outgoing;
use super::step::{encode_alert, Output, Step};

/// The largest TLS record on the wire: 16 KiB of plaintext, 2 KiB of
/// expansion, the 5-byte header (RFC 5246 §6.2.3).
const MAX_RECORD: usize = 16_384 + 2_048 + 5;
/// During the handshake a handshake message (up to 64 KiB, rustls's
/// limit) may span records and is joined in the buffer.
const MAX_HANDSHAKE: usize = 0xffff + MAX_RECORD;
/// Plaintext encrypted per step; the encrypted bytes wait in
/// `outgoing` until the socket takes them.
const ENCRYPT_CHUNK: usize = 64 << 10;
/// More unsent TLS bytes than this: nothing more is encrypted until
/// the socket takes some.
const OUTGOING_HIGH: usize = 64 << 10;
/// rustls steps per call before giving the caller a turn (each step
/// handles one record or one output; the bound only guards the loop).
const MAX_STEPS: usize = 256;
/// Socket reads per [`TlsSession::read`] that bring no plaintext (a
/// peer sending only handshake or alert records) before it returns.
const MAX_READS: usize = 8;
/// Received TLS bytes held at most once the handshake is done: one
/// socket read takes this many (as a plain connection's read takes the
/// loop's 256 KiB buffer), and the records are decrypted in place.
const READ_AHEAD: usize = 256 << 10;

std::thread_local! {
    /// A loop thread's spare receive buffer: the one the last connection
    /// to go quiet gave back, kept (initialized: its length is its
    /// capacity) for the next connection that reads, so that a busy
    /// connection neither allocates nor zeroes one per readiness event
    /// while an idle one holds none.
    static SPARE_INCOMING: core::cell::Cell<Vec<u8>> = const { core::cell::Cell::new(Vec::new()) };
}

/// The thread's spare receive buffer, or an empty one.
fn spare_incoming() -> Vec<u8> {
    SPARE_INCOMING.with(core::cell::Cell::take)
}

/// Keeps `buf` (emptied by its connection) as the thread's spare, if it
/// is larger than the one kept.
fn keep_incoming(buf: Vec<u8>) {
    if buf.len() > READ_AHEAD + MAX_RECORD {
        return;
    }
    SPARE_INCOMING.with(|spare| {
        let kept = spare.take();
        spare.set(if kept.len() >= buf.len() { kept } else { buf });
    });
}

enum Side {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// What a read brought.
#[derive(Debug)]
pub(crate) enum TlsRead {
    /// Plaintext bytes written to the caller's buffer (0: records were
    /// processed but none carried data yet; call again).
    Bytes(usize),
    /// The socket has nothing more now.
    WouldBlock,
    /// The peer's close_notify, or the end of the TCP stream.
    Eof,
}

/// Why the session failed.
#[derive(Debug)]
pub(crate) enum TlsFailure {
    /// The socket failed.
    Io(io::Error),
    /// TLS failed (the alert, if any, is queued to send).
    Tls(rustls::Error),
}

/// A rustls client or server session with its own buffers.
pub(crate) struct TlsSession {
    side: Side,
    /// TLS bytes received and not yet consumed by rustls:
    /// `incoming[..filled]`.
    incoming: Vec<u8>,
    filled: usize,
    /// TLS bytes to send.
    outgoing: Outgoing,
    /// Plaintext decrypted but not yet taken (the caller's buffer was
    /// full, or it was decrypted while writing): `plain[taken..]`.
    plain: Vec<u8>,
    taken: usize,
    /// The peer's close_notify arrived: no more plaintext follows.
    peer_closed: bool,
    /// Our close_notify is wanted / queued.
    close_wanted: bool,
    close_queued: bool,
    /// The session failed: the error, for any later call.
    failed: Option<rustls::Error>,
    /// The last [`TlsSession::read`] brought data and then found the
    /// socket empty.
    drained: bool,
}

impl core::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsSession")
            .field("incoming", &self.filled)
            .field("unsent", &self.unsent())
            .field("plain", &(self.plain.len() - self.taken))
            .finish_non_exhaustive()
    }
}

/// What one pass of rustls produced.
#[derive(Default)]
pub(super) struct Pumped {
    /// Plaintext bytes written to the sink.
    pub(super) sunk: usize,
    /// Bytes of the data to send that were encrypted.
    pub(super) encrypted: usize,
    /// rustls stopped for want of input: no whole record is left in hand
    /// (else the pass ended early: the sink filled, or its step bound).
    pub(super) exhausted: bool,
}

impl TlsSession {
    fn with(side: Side) -> Self {
        Self {
            side,
            incoming: Vec::new(),
            filled: 0,
            outgoing: Outgoing::default(),
            plain: Vec::new(),
            taken: 0,
            peer_closed: false,
            close_wanted: false,
            close_queued: false,
            failed: None,
            drained: false,
        }
    }

    /// A server session.
    pub(crate) fn server(config: Arc<rustls::ServerConfig>) -> Result<Self, rustls::Error> {
        UnbufferedServerConnection::new(config).map(|c| Self::with(Side::Server(c)))
    }

    /// A client session for `name`.
    pub(crate) fn client(
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        UnbufferedClientConnection::new(config, name).map(|c| Self::with(Side::Client(c)))
    }

    /// Whether the TLS handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        match &self.side {
            Side::Client(c) => c.is_handshaking(),
            Side::Server(c) => c.is_handshaking(),
        }
    }

    /// The last [`TlsSession::read`] returned data and found the socket
    /// empty after it: another read now would only say `WouldBlock`.
    pub(crate) fn drained(&self) -> bool {
        self.drained
    }

    /// TLS bytes wait to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        self.unsent() > 0
    }

    fn unsent(&self) -> usize {
        self.outgoing.unsent().len()
    }

    /// The bytes our buffers hold (capacity), for tests.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.plain.capacity()
    }

    /// Frees the buffers that hold nothing: an idle connection keeps no
    /// TLS buffer.
    pub(crate) fn release(&mut self) {
        if self.filled == 0 {
            keep_incoming(core::mem::take(&mut self.incoming));
        } else if self.incoming.len() > 2 * MAX_RECORD {
            // Part of a record waits for the rest: it keeps a buffer of
            // its own size, not a read-ahead's (a peer that leaves many
            // connections mid-record pins no more than it did before).
            let partial = self.incoming[..self.filled].to_vec();
            keep_incoming(core::mem::replace(&mut self.incoming, partial));
        }
        self.outgoing.release();
        if self.taken == self.plain.len() {
            self.plain = Vec::new();
            self.taken = 0;
        }
    }

    /// Reads plaintext into `buf`: what was decrypted before, else the
    /// records in hand, else the socket's bytes. Handshake records
    /// rustls answers with are queued (and a write is tried) on the way.
    pub(crate) fn read<S: Read + Write>(
        &mut self,
        io: &mut S,
        buf: &mut [u8],
    ) -> Result<TlsRead, TlsFailure> {
        if buf.is_empty() {
            return Ok(TlsRead::Bytes(0));
        }
        self.drained = false;
        let mut n = self.take_plain(buf);
        // Records are read and decrypted until `buf` is full or the
        // socket has nothing more, as a plain socket's read fills the
        // buffer: a read brings many records' data (so a large message
        // arrives whole, and fewer, larger reads and writes follow). A
        // socket read that comes back short means the socket is empty
        // (on a blocking socket, the next read would wait).
        let mut empty_reads = 0;
        let mut socket_empty = false;
        while n < buf.len() && empty_reads < MAX_READS {
            let pumped = self.pump(&mut buf[n..], &[]).map_err(TlsFailure::Tls)?;
            n += pumped.sunk;
            if pumped.sunk == 0 {
                empty_reads += 1;
            }
            if n == buf.len() || self.plain.len() > self.taken {
                break;
            }
            if self.peer_closed {
                return Ok(if n > 0 {
                    TlsRead::Bytes(n)
                } else {
                    TlsRead::Eof
                });
            }
            if !pumped.exhausted {
                // Records still in hand (more than a pass steps through):
                // they come before any more input.
                continue;
            }
            if socket_empty && n > 0 {
                self.drained = true;
                break;
            }
            // Handshake answers go out before we wait for the peer.
            match self.send(io) {
                Ok(_) => {}
                Err(e) if is_would_block(&e) => {}
                Err(e) => return Err(TlsFailure::Io(e)),
            }
            self.check_room()?;
            match self.fill(io, buf.len() - n) {
                // The end: the data read first, then (at the next read)
                // the end again.
                Ok((0, _)) if n > 0 => break,
                Ok((0, _)) => return Ok(TlsRead::Eof),
                Ok((_, short)) => socket_empty = short,
                Err(e) if is_would_block(&e) && n > 0 => {
                    self.drained = true;
                    break;
                }
                Err(e) if is_would_block(&e) => return Ok(TlsRead::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TlsFailure::Io(e)),
            }
        }
        Ok(TlsRead::Bytes(n))
    }

    /// One round of the handshake over a blocking socket: what rustls
    /// has to send is written, then (while the handshake runs) the
    /// socket is read once. Plaintext that comes early is kept for
    /// [`Self::read`].
    pub(crate) fn handshake_step<S: Read + Write>(
        &mut self,
        io: &mut S,
    ) -> Result<TlsRead, TlsFailure> {
        self.pump(&mut [], &[]).map_err(TlsFailure::Tls)?;
        while self.wants_write() {
            self.send(io).map_err(TlsFailure::Io)?;
        }
        if !self.is_handshaking() {
            return Ok(TlsRead::Bytes(0));
        }
        if self.peer_closed {
            return Ok(TlsRead::Eof);
        }
        self.check_room()?;
        match self.fill(io, 0) {
            Ok((0, _)) => Ok(TlsRead::Eof),
            Ok(_) => Ok(TlsRead::Bytes(0)),
            Err(e) => Err(TlsFailure::Io(e)),
        }
    }

    /// Fails when `incoming` is full: rustls refuses larger records and
    /// handshake messages itself; this only keeps the buffer bounded.
    fn check_room(&mut self) -> Result<(), TlsFailure> {
        if self.filled < self.bound() {
            return Ok(());
        }
        let e = rustls::Error::General("TLS input larger than a record".into());
        self.failed = Some(e.clone());
        Err(TlsFailure::Tls(e))
    }

    /// Encrypts a prefix of `data` (none while the handshake runs, or
    /// while much is unsent) and returns its length; [`Self::send`]
    /// writes it.
    pub(crate) fn encrypt(&mut self, data: &[u8]) -> Result<usize, rustls::Error> {
        if data.is_empty() || self.close_queued || self.unsent() >= OUTGOING_HIGH {
            return Ok(0);
        }
        let chunk = &data[..data.len().min(ENCRYPT_CHUNK)];
        self.pump(&mut [], chunk).map(|p| p.encrypted)
    }

    /// Queues our close_notify (once the handshake is done; before,
    /// there is nothing to close cleanly).
    pub(crate) fn close_notify(&mut self) -> Result<(), rustls::Error> {
        self.close_wanted = true;
        self.pump(&mut [], &[]).map(|_| ())
    }

    /// Writes unsent TLS bytes to `io` until it would block or all
    /// are written; returns how many were written.
    pub(crate) fn send<S: Write>(&mut self, io: &mut S) -> io::Result<usize> {
        let mut written = 0;
        while !self.outgoing.unsent().is_empty() {
            match io.write(self.outgoing.unsent()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outgoing.sent(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if written > 0 && is_would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Moves decrypted plaintext kept earlier into `buf`.
    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let kept = &self.plain[self.taken..];
        let n = kept.len().min(buf.len());
        buf[..n].copy_from_slice(&kept[..n]);
        self.taken += n;
        if self.taken == self.plain.len() {
            self.plain.clear();
            self.taken = 0;
        }
        n
    }

    /// How many received bytes `incoming` may hold.
    fn bound(&self) -> usize {
        if self.is_handshaking() {
            MAX_HANDSHAKE
        } else {
            READ_AHEAD
        }
    }

    /// Reads from the socket into `incoming`: about `room` bytes (the
    /// plaintext the caller can take; at least a record), bounded by
    /// [`Self::bound`]. Returns how many it read, and whether that was
    /// less than asked for (the socket had no more).
    fn fill<S: Read>(&mut self, io: &mut S, room: usize) -> io::Result<(usize, bool)> {
        let want = (self.filled + room.max(MAX_RECORD)).min(self.bound());
        if self.incoming.len() < want {
            // The thread's spare, if larger, with what is held moved in.
            let mut spare = spare_incoming();
            if spare.len() > self.incoming.len() {
                spare[..self.filled].copy_from_slice(&self.incoming[..self.filled]);
                self.incoming = spare;
            } else {
                keep_incoming(spare);
            }
            if self.incoming.len() < want {
                self.incoming.resize(want, 0);
            }
        }
        let asked = want - self.filled;
        let n = io.read(&mut self.incoming[self.filled..want])?;
        self.filled += n;
        Ok((n, n < asked))
    }

    /// Runs rustls over the records in hand until it needs more input:
    /// plaintext goes to `sink` (then to `plain`), records to send to
    /// `outgoing`, and once application data may be sent, `data` is
    /// encrypted and our close_notify queued if wanted.
    fn pump(&mut self, sink: &mut [u8], data: &[u8]) -> Result<Pumped, rustls::Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut pumped = Pumped::default();
        let mut data = data;
        // Records consumed so far: dropped from `incoming` once, at the
        // end (rustls hands out one record per step; moving the rest of
        // a 256 KiB read after each would copy it many times over).
        let mut consumed = 0;
        for _ in 0..MAX_STEPS {
            let mut out = Output {
                outgoing: &mut self.outgoing,
                plain: &mut self.plain,
                sink: &mut *sink,
                pumped: &mut pumped,
                data: &mut data,
                close_wanted: self.close_wanted,
                close_queued: &mut self.close_queued,
                peer_closed: &mut self.peer_closed,
            };
            let input = &mut self.incoming[consumed..self.filled];
            let (discard, step) = match &mut self.side {
                Side::Client(c) => out.step(c.process_tls_records(input)),
                Side::Server(c) => {
                    let status = c.process_tls_records(input);
                    match status.state {
                        Ok(ConnectionState::ReadEarlyData(mut early)) => {
                            // 0-RTT data, if the configuration accepts
                            // it, is data like any other.
                            let mut extra = 0;
                            while let Some(record) = early.next_record() {
                                let record = record?;
                                extra += record.discard;
                                out.deliver(record.payload);
                            }
                            (status.discard + extra, Ok(Step::Again))
                        }
                        state => out.step(UnbufferedStatus {
                            discard: status.discard,
                            state,
                        }),
                    }
                }
            };
            consumed = (consumed + discard).min(self.filled);
            match step {
                Ok(Step::Again) => {}
                Ok(Step::Stop) => {
                    pumped.exhausted = true;
                    break;
                }
                Err(e) => {
                    self.discard(consumed);
                    self.failed(&e);
                    return Err(e);
                }
            }
            let sink_full = pumped.sunk == sink.len() && !sink.is_empty();
            if sink_full || (self.plain.len() > self.taken && !sink.is_empty()) {
                break;
            }
        }
        self.discard(consumed);
        Ok(pumped)
    }

    /// Drops `n` consumed bytes from the front of `incoming`.
    fn discard(&mut self, n: usize) {
        let n = n.min(self.filled);
        if n > 0 {
            self.incoming.copy_within(n..self.filled, 0);
            self.filled -= n;
        }
    }

    /// rustls failed: queue the alert it prepared, keep the error.
    /// rustls is only asked again while it holds records to send (they
    /// come before any input is looked at: the bad input is not
    /// processed twice).
    fn failed(&mut self, e: &rustls::Error) {
        self.failed = Some(e.clone());
        for _ in 0..4 {
            let input = &mut self.incoming[..self.filled];
            let (discard, encoded) = match &mut self.side {
                Side::Client(c) if c.wants_write() => {
                    let s = c.process_tls_records(input);
                    (s.discard, encode_alert(s.state, &mut self.outgoing))
                }
                Side::Server(c) if c.wants_write() => {
                    let s = c.process_tls_records(input);
                    (s.discard, encode_alert(s.state, &mut self.outgoing))
                }
                _ => break,
            };
            self.discard(discard);
            if !encoded {
                break;
            }
        }
    }
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A new server session when `config` serves `wss://`; `Err` with why
/// when rustls cannot start one.
pub(crate) fn server_session(config: &ServerConfig) -> Result<Option<Box<TlsSession>>, String> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    match TlsSession::server(Arc::clone(tls)) {
        Ok(c) => Ok(Some(Box::new(c))),
        Err(e) => Err(e.to_string()),
    }
}
