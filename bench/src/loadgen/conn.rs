//! One client connection of the load generator: sends its share of the
//! cyclic message pattern, parses the server's frames, counts echoes and
//! answers pings.

use std::io::{self, Read, Write};

use snowsocket_core::{encode_frame_vec, FrameHeader, OpCode};
use snowsocket_server::rustls;

use super::{Link, Workload, FILL};
use crate::client::XorShift;

/// One client connection on the event loop.
pub(super) struct ClientConn {
    pub(super) stream: mio::net::TcpStream,
    /// Under TLS: the session (rustls's buffered API).
    tls: Option<Box<rustls::ClientConnection>>,
    /// Bytes owed to the server (whole frames granted by completed echoes).
    to_send: usize,
    /// Messages granted so far (the first `in_flight`, then one per echo).
    granted: u64,
    /// Where the next byte comes from in the cyclic pattern.
    send_at: usize,
    /// Pongs to send at the next frame boundary, and how much of them went.
    control: Vec<u8>,
    control_sent: usize,
    /// Raw TCP: bytes of the current message received so far.
    partial: usize,
    /// WebSocket: an incomplete frame header.
    header: [u8; FrameHeader::MAX_LEN],
    header_len: usize,
    /// WebSocket: payload bytes still to come in the current frame, and
    /// what that frame is.
    remaining: u64,
    frame: Incoming,
    /// The payload of a Ping being received (at most 125 bytes).
    ping: Vec<u8>,
}

/// What the frame being received is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Incoming {
    Echo,
    Ping,
    Pong,
}

impl ClientConn {
    pub(super) fn new(link: Link, w: &Workload) -> Result<Self, String> {
        let Link { stream, mut tls } = link;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        if let Some(tls) = &mut tls {
            // What one flush hands over is bounded by the workload.
            tls.set_buffer_limit(None);
        }
        Ok(Self {
            stream: mio::net::TcpStream::from_std(stream),
            tls,
            to_send: w.pattern.len(),
            granted: (w.pattern.len() / w.frame_len) as u64,
            send_at: 0,
            control: Vec::new(),
            control_sent: 0,
            partial: 0,
            header: [0; FrameHeader::MAX_LEN],
            header_len: 0,
            remaining: 0,
            frame: Incoming::Echo,
            ping: Vec::new(),
        })
    }

    /// Writes what is owed until the socket would block: pongs, and
    /// messages if `messages`. Pongs go out at frame boundaries of the
    /// message stream.
    pub(super) fn flush(&mut self, w: &Workload, messages: bool) -> Result<(), String> {
        loop {
            let at_boundary = w.pattern.is_empty() || self.send_at.is_multiple_of(w.frame_len);
            let (bytes, control) = if self.control_sent < self.control.len() && at_boundary {
                (&self.control[self.control_sent..], true)
            } else if self.to_send > 0 && (messages || !at_boundary) {
                let mut end = w.pattern.len().min(self.send_at + self.to_send);
                if self.control_sent < self.control.len() {
                    // Stop at the end of this frame; the pong goes next.
                    end = end.min((self.send_at / w.frame_len + 1) * w.frame_len);
                }
                (&w.pattern[self.send_at..end], false)
            } else {
                break;
            };
            let written = match &mut self.tls {
                None => self.stream.write(bytes),
                Some(tls) => send_tls(tls, &mut self.stream, bytes),
            };
            match written {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) if control => {
                    self.control_sent += n;
                    if self.control_sent == self.control.len() {
                        self.control.clear();
                        self.control_sent = 0;
                    }
                }
                Ok(n) => {
                    self.to_send -= n;
                    self.send_at = (self.send_at + n) % w.pattern.len();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if let Some(tls) = &mut self.tls {
            match push_tls(tls, &mut self.stream) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                    return Err(format!("write: {e}"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads until the socket would block; returns the echoes completed and
    /// the pings received.
    pub(super) fn receive(
        &mut self,
        buf: &mut [u8],
        w: &Workload,
        rng: &mut XorShift,
    ) -> Result<(u64, u64), String> {
        let (mut done, mut pings) = (0, 0);
        loop {
            let read = match &mut self.tls {
                None => self.stream.read(buf),
                Some(tls) => recv_tls(tls, &mut self.stream, buf),
            };
            match read {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => {
                    let data = &buf[..n];
                    if w.websocket {
                        let (d, p) = self.parse_frames(data, w, rng)?;
                        done += d;
                        pings += p;
                    } else {
                        done += self.count_bytes(data, w)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        if done > 0 && w.pattern.is_empty() {
            return Err("an echo arrived with no message in flight".into());
        }
        let grant = match w.limit {
            Some(limit) => done.min(limit.saturating_sub(self.granted)),
            None => done,
        };
        self.granted += grant;
        self.to_send += grant as usize * w.frame_len;
        Ok((done, pings))
    }

    fn count_bytes(&mut self, data: &[u8], w: &Workload) -> Result<u64, String> {
        if w.verify && !data.iter().all(|&b| b == FILL) {
            return Err("echoed bytes differ from those sent".into());
        }
        self.partial += data.len();
        let done = self.partial / w.frame_len;
        self.partial %= w.frame_len;
        Ok(done as u64)
    }

    fn parse_frames(
        &mut self,
        mut data: &[u8],
        w: &Workload,
        rng: &mut XorShift,
    ) -> Result<(u64, u64), String> {
        let (mut done, mut pings) = (0, 0);
        while !data.is_empty() {
            if self.remaining > 0 {
                let take = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                let (payload, rest) = data.split_at(take);
                data = rest;
                self.remaining -= take as u64;
                match self.frame {
                    Incoming::Echo if w.verify && !payload.iter().all(|&b| b == FILL) => {
                        return Err("echoed payload differs from the one sent".into());
                    }
                    Incoming::Ping => self.ping.extend_from_slice(payload),
                    _ => {}
                }
                if self.remaining == 0 {
                    let (d, p) = self.frame_done(rng)?;
                    done += d;
                    pings += p;
                }
                continue;
            }
            let Some(header) = self.next_header(&mut data)? else {
                break;
            };
            if header.mask.is_some() {
                return Err("the server masked a frame".into());
            }
            self.frame = match header.opcode {
                OpCode::Binary if header.fin && header.payload_len == w.payload_len as u64 => {
                    Incoming::Echo
                }
                OpCode::Ping if header.fin && header.payload_len <= 125 => Incoming::Ping,
                OpCode::Pong => Incoming::Pong,
                other => {
                    return Err(format!(
                        "unexpected {other} frame (fin {}, {} bytes) from the server",
                        header.fin, header.payload_len
                    ))
                }
            };
            self.remaining = header.payload_len;
            if self.remaining == 0 {
                let (d, p) = self.frame_done(rng)?;
                done += d;
                pings += p;
            }
        }
        Ok((done, pings))
    }

    /// The next frame header: decoded from `data` (which it advances), or
    /// completed from a header split across reads; `None` if incomplete.
    fn next_header(&mut self, data: &mut &[u8]) -> Result<Option<FrameHeader>, String> {
        if self.header_len == 0 {
            return match FrameHeader::decode(data) {
                Ok(Some((header, used))) => {
                    *data = &data[used..];
                    Ok(Some(header))
                }
                Ok(None) => {
                    self.header[..data.len()].copy_from_slice(data);
                    self.header_len = data.len();
                    *data = &[];
                    Ok(None)
                }
                Err(e) => Err(format!("bad frame from the server: {e}")),
            };
        }
        // A header split across reads: add a byte at a time.
        while let Some((&byte, rest)) = data.split_first() {
            *data = rest;
            self.header[self.header_len] = byte;
            self.header_len += 1;
            match FrameHeader::decode(&self.header[..self.header_len]) {
                Ok(Some((header, _))) => {
                    self.header_len = 0;
                    return Ok(Some(header));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("bad frame from the server: {e}")),
            }
        }
        Ok(None)
    }

    /// A frame is complete: an echo counts, a Ping queues its Pong.
    fn frame_done(&mut self, rng: &mut XorShift) -> Result<(u64, u64), String> {
        match self.frame {
            Incoming::Echo => Ok((1, 0)),
            Incoming::Pong => Ok((0, 0)),
            Incoming::Ping => {
                let key = rng.mask_key();
                let header = FrameHeader {
                    fin: true,
                    opcode: OpCode::Pong,
                    mask: Some(key),
                    payload_len: self.ping.len() as u64,
                };
                encode_frame_vec(header, &self.ping, &mut self.control);
                self.ping.clear();
                Ok((0, 1))
            }
        }
    }
}

/// Hands `bytes` to the TLS session and writes its records until the
/// socket would block; the bytes the session took.
fn send_tls(
    tls: &mut rustls::ClientConnection,
    stream: &mut mio::net::TcpStream,
    bytes: &[u8],
) -> io::Result<usize> {
    // Records still waiting go first: until they are out, take nothing.
    push_tls(tls, stream)?;
    let n = tls.writer().write(bytes)?;
    match push_tls(tls, stream) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(n),
    }
}

/// Writes the session's pending records (`WouldBlock` when the socket
/// takes no more).
fn push_tls(
    tls: &mut rustls::ClientConnection,
    stream: &mut mio::net::TcpStream,
) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Plaintext from the TLS session, reading records as needed: like a
/// socket's `read` (0 at the peer's close, `WouldBlock` when the socket
/// has nothing more).
fn recv_tls(
    tls: &mut rustls::ClientConnection,
    stream: &mut mio::net::TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        if tls.read_tls(stream)? == 0 {
            return Ok(0);
        }
        tls.process_new_packets().map_err(io::Error::other)?;
    }
}
