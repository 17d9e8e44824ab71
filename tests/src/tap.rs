//! A tap between a WebSocket client and server on 127.0.0.1: it forwards
//! the bytes both ways and reads the frame headers as they pass, so a test
//! sees what each side put on the wire (the handshake's heads, each data
//! message's RSV1 bit, opcode and size on the wire, all its frames).

use core::net::SocketAddr;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One data message as it crossed the wire.
#[derive(Clone, Copy, Debug)]
pub struct WireMessage {
    /// 1 text, 2 binary.
    pub opcode: u8,
    /// RSV1 of its first frame: compressed.
    pub rsv1: bool,
    /// Frame headers and payloads, all its frames.
    pub bytes: u64,
}

/// One direction of a tapped connection: the HTTP head, then the frames,
/// read header by header as the bytes pass.
#[derive(Default)]
pub struct Wire {
    head: Vec<u8>,
    head_done: bool,
    header: Vec<u8>,
    skip: u64,
    partial: Option<WireMessage>,
    /// The data messages whole so far, in order.
    pub messages: Vec<WireMessage>,
}

impl Wire {
    /// Reads the next bytes of this direction.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if !self.head_done {
                self.head.push(data[0]);
                data = &data[1..];
                self.head_done = self.head.ends_with(b"\r\n\r\n");
            } else if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                self.skip -= n;
                data = &data[n as usize..];
            } else {
                self.header.push(data[0]);
                data = &data[1..];
                self.header_byte();
            }
        }
    }

    /// Called with each header byte: once the header is whole, records it.
    fn header_byte(&mut self) {
        let h = &self.header;
        if h.len() < 2 {
            return;
        }
        let ext = match h[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if h[1] & 0x80 != 0 { 4 } else { 0 };
        if h.len() < need {
            return;
        }
        let len = match ext {
            0 => u64::from(h[1] & 0x7f),
            n => h[2..2 + n]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        };
        let (fin, rsv1, opcode) = (h[0] & 0x80 != 0, h[0] & 0x40 != 0, h[0] & 0x0f);
        let bytes = need as u64 + len;
        self.header.clear();
        self.skip = len;
        let message = match opcode {
            1 | 2 => Some(WireMessage {
                opcode,
                rsv1,
                bytes,
            }),
            0 => self.partial.take().map(|mut m| {
                m.bytes += bytes;
                m
            }),
            _ => return, // control frames
        };
        match (message, fin) {
            (Some(m), true) => self.messages.push(m),
            (m, _) => self.partial = m,
        }
    }

    /// The HTTP head (request or response), as text.
    pub fn head(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }
}

/// What the tap saw: client to server, server to client.
pub struct Tapped {
    /// Client to server.
    pub up: Arc<Mutex<Wire>>,
    /// Server to client.
    pub down: Arc<Mutex<Wire>>,
}

/// Accepts one connection on 127.0.0.1:0 and forwards it to `upstream`,
/// reading both directions. Returns the address to connect to.
pub fn tap(upstream: SocketAddr) -> (SocketAddr, Tapped) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let up = Arc::new(Mutex::new(Wire::default()));
    let down = Arc::new(Mutex::new(Wire::default()));
    let (u, d) = (up.clone(), down.clone());
    thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(upstream).unwrap();
        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        thread::spawn(move || pump(c2, s2, &u));
        pump(server, client, &d);
    });
    (addr, Tapped { up, down })
}

/// Copies `from` to `to`, feeding `wire` before each write (so the wire
/// log is complete once the peer has read the bytes), until EOF.
fn pump(mut from: TcpStream, mut to: TcpStream, wire: &Mutex<Wire>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                wire.lock().unwrap().feed(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tap's reader against frames made by hand: a masked 126-byte
    /// compressed text in two fragments, a ping between them, a 64-bit length.
    #[test]
    fn the_tap_reads_frame_headers() {
        let mut wire = Wire::default();
        wire.feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        // Text, RSV1, not FIN, masked, 126 bytes (16-bit length).
        let mut bytes = vec![0x41, 0x80 | 126, 0, 126, 1, 2, 3, 4];
        bytes.extend(core::iter::repeat_n(0u8, 126));
        // A ping in between, 1 byte.
        bytes.extend([0x89, 0x01, 0x00]);
        // Continuation, FIN, 3 bytes.
        bytes.extend([0x80, 0x03, 1, 2, 3]);
        // Binary, FIN, 64-bit length 70000.
        bytes.extend([0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        bytes.extend(core::iter::repeat_n(0u8, 70_000));
        // Fed in small pieces, as a socket may deliver them.
        for piece in bytes.chunks(7) {
            wire.feed(piece);
        }
        let m = &wire.messages;
        assert_eq!(m.len(), 2);
        assert!(m[0].rsv1 && m[0].opcode == 1 && m[0].bytes == 8 + 126 + 2 + 3);
        assert!(!m[1].rsv1 && m[1].opcode == 2 && m[1].bytes == 10 + 70_000);
    }
}
