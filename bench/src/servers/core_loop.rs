//! `snowsocket-core` driven by hand, one thread per connection: one read,
//! every event of it handled, every reply (and any control frame) gathered,
//! one `write_all`. What the core alone can do with the simplest shell;
//! beside our server's row it tells the shell's cost apart.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_core::{Config, Connection, Event, FrameHeader, MessageKind, OpCode, Role};

use crate::client::{now, XorShift};

pub(super) fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let Some(mut filled) = accept(&mut stream, &mut buf)? else {
        return Ok(());
    };
    let mut out: Vec<u8> = Vec::new();
    let mut conn = Connection::new(
        Role::Server,
        Config::DEFAULT,
        Vec::new(),
        XorShift::seeded(),
        now(),
    );
    loop {
        let mut at = 0;
        let mut failed = false;
        loop {
            let mut echo = None;
            match conn.handle_read(&mut buf[at..filled], now()) {
                Ok((consumed, event)) => {
                    at += consumed;
                    match event {
                        None => break,
                        Some(Event::Binary(data)) => {
                            echo = Some(stage_echo(&mut out, MessageKind::Binary, data));
                        }
                        Some(Event::Text(text)) => {
                            echo = Some(stage_echo(&mut out, MessageKind::Text, text.as_bytes()));
                        }
                        Some(_) => {}
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            // The event's borrow of `conn` has ended: write the header.
            if let Some((kind, header_at, len)) = echo {
                let header = conn.message_header(kind, len).map_err(io::Error::other)?;
                header
                    .encode(&mut out[header_at..])
                    .map_err(io::Error::other)?;
            }
        }
        if let Some(deadline) = conn.poll_timeout() {
            if now() >= deadline && conn.handle_timeout(now()).is_err() {
                failed = true;
            }
        }
        let mut control = [0u8; 139];
        loop {
            let n = conn.poll_transmit(&mut control).map_err(io::Error::other)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&control[..n]);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if failed || conn.is_closed() {
            return Ok(());
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if filled == buf.len() {
            return Err(io::Error::other("read buffer full"));
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

/// The opening handshake. Leaves what followed the request at the front of
/// `buf` and returns its length; `None` if the client went away or was
/// refused.
fn accept(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut filled = 0;
    let start = loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(None);
        }
        filled += n;
        let mut headers = [handshake::EMPTY_HEADER; 32];
        match handshake::parse_request(&buf[..filled], &mut headers, &HandshakeLimits::DEFAULT) {
            Ok(Parsed::Complete { value, consumed }) => {
                let mut accept = [0u8; 256];
                let n = handshake::write_accept(&mut accept, &value, None, &[])
                    .map_err(io::Error::other)?;
                stream.write_all(&accept[..n])?;
                break consumed;
            }
            Ok(Parsed::Incomplete) => {}
            Err(e) => {
                let mut answer = [0u8; 512];
                if let Ok(n) = e.write_response(&mut answer) {
                    stream.write_all(&answer[..n])?;
                }
                return Ok(None);
            }
        }
    };
    buf.copy_within(start..filled, 0);
    Ok(Some(filled - start))
}

/// Appends room for a server frame header and then `payload` to `out`;
/// returns where the header goes and the payload length.
fn stage_echo(out: &mut Vec<u8>, kind: MessageKind, payload: &[u8]) -> (MessageKind, usize, usize) {
    let header = FrameHeader {
        fin: true,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let at = out.len();
    out.resize(at + header.encoded_len(), 0);
    out.extend_from_slice(payload);
    (kind, at, payload.len())
}
