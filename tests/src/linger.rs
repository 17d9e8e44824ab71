//! An independent peer for the drivers' linger after a failure (issue 9's
//! bug, in the drivers): a raw std `TcpStream` client that upgrades by hand,
//! sends a message far over the server's size limit, and only then reads:
//! it must find the server's Close (1009) however far the server had got
//! when it failed.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;

use snowsocket_core::{DriverError, Error, FrameHeader, OpCode, ProtocolError};

use crate::{frame, header};

/// The size of the peer's message (the server's limit must be far below):
/// more than the loopback socket buffers take at once, so that the peer is
/// still writing when the server fails.
pub const OVERSIZED: usize = 8 * 1024 * 1024;

/// Connects to `addr`, upgrades, sends one binary message of [`OVERSIZED`]
/// bytes, then reads to the first Close and answers it; returns the close
/// code read, or what went wrong instead. Like the clients of issue 9
/// (browsers, Node `ws`, Python `websockets`), it gives up when a write
/// fails: a server that closes its socket with our bytes unread makes the
/// kernel reset the connection, and the write under way fails before the
/// Close is read.
pub fn oversize_peer(addr: SocketAddr) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("request: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => return Err(format!("handshake: {other:?}")),
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(String::from_utf8_lossy(&head).into_owned());
    }
    // The whole message, header first, in pieces: the server fails on the
    // header, while most of the payload is still on its way. (The key is
    // zero: the payload goes as it is.)
    let _ = stream.write_all(&header(true, 0, 0x2, Some([0; 4]), OVERSIZED as u64));
    let piece = vec![0x88u8; 64 * 1024];
    for _ in 0..OVERSIZED / piece.len() {
        stream
            .write_all(&piece)
            .map_err(|e| format!("write failed before the Close was read: {e}"))?;
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let code = loop {
        // The server's frames (unmasked), as they become whole.
        if let Ok(Some((h, used))) = FrameHeader::decode(&received) {
            let end = used + usize::try_from(h.payload_len).map_err(|e| e.to_string())?;
            if received.len() >= end {
                if h.opcode == OpCode::Close {
                    match received.get(used..used + 2) {
                        Some(&[a, b]) => break u16::from_be_bytes([a, b]),
                        _ => return Err("a Close without a code".into()),
                    }
                }
                received.drain(..end);
                continue;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(format!("EOF before a Close, after {received:?}")),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no Close read: {e}")),
        }
    };
    // Our Close in answer, then the server ends the connection.
    let _ = stream.write_all(&frame(
        true,
        0,
        0x8,
        Some([1, 2, 3, 4]),
        &code.to_be_bytes(),
    ));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    Ok(code)
}

/// Whether a driver's `error` is the failure [`oversize_peer`]'s message
/// causes: a frame over the limit (its Close: 1009).
pub fn is_frame_too_large<E>(error: &DriverError<E>) -> bool {
    matches!(
        error,
        DriverError::Connection(Error::Protocol(ProtocolError::FrameTooLarge { .. }))
    )
}
