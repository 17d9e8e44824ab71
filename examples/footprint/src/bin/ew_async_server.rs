//! embedded-websocket (crates.io, no default features), server role, its
//! async framer (`framer_async`): the same echo as `ew_server`, over the
//! same transport seen as a `futures` `Stream` of received chunks and a
//! `Sink` of byte slices (what that framer takes), polled by the same
//! minimal `block_on` as `snowsocket_async_server`.
//!
//! The framer keeps the bytes not yet decoded at the end of its one buffer
//! and decodes the frames in there; the buffer also holds the opening
//! handshake's request and answer. A received chunk is the stream's item,
//! moved out of it by value, so it is the firmware's read buffer. As in
//! embedded-websocket's own `server_async` example, bytes that follow the
//! upgrade request in the same read are dropped (the framer has no way to
//! take them), and a frame must arrive within one chunk.

#![no_std]
#![no_main]

use core::pin::Pin;
use core::task::{Context, Poll};

use cortex_m_rt::entry;
use embedded_websocket::framer_async::{Framer, ReadResult};
use embedded_websocket::{read_http_header, WebSocketSendMessageType, WebSocketServer};
use snowsocket_footprint::{block_on, halt, IoError, Opaque, MESSAGE_BUF, READ_BUF, WRITE_BUF};

/// One read from the transport: the stream's item.
struct Chunk {
    len: usize,
    bytes: [u8; READ_BUF],
}

impl core::ops::Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The transport as the async framer takes it.
struct Chunks(Opaque);

impl futures::Stream for Chunks {
    type Item = Result<Chunk, IoError>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut chunk = Chunk {
            len: 0,
            bytes: [0; READ_BUF],
        };
        Poll::Ready(match self.get_mut().0.receive(&mut chunk.bytes) {
            Ok(0) => None,
            Ok(n) => {
                chunk.len = n;
                Some(Ok(chunk))
            }
            Err(e) => Some(Err(e)),
        })
    }
}

impl<'a> futures::Sink<&'a [u8]> for Chunks {
    type Error = IoError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), IoError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: &'a [u8]) -> Result<(), IoError> {
        let io = &mut self.get_mut().0;
        let mut rest = item;
        while !rest.is_empty() {
            let n = io.transmit(rest)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), IoError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), IoError>> {
        Poll::Ready(Ok(()))
    }
}

/// The connection state the caller holds besides its buffers (read from the
/// ELF by scripts/footprint.sh; 4 bytes of .rodata).
#[used]
#[no_mangle]
static FOOTPRINT_STATE_BYTES: usize =
    core::mem::size_of::<Framer<embedded_websocket::EmptyRng, embedded_websocket::Server>>();

#[entry]
fn main() -> ! {
    let mut write_buf = [0u8; WRITE_BUF];
    let mut frame_buf = [0u8; MESSAGE_BUF];
    block_on(async {
        let mut stream = Chunks(Opaque::new());
        // The opening handshake: read until the header block is complete.
        let mut cursor = 0;
        let context = loop {
            let Ok(n) = stream.0.receive(&mut frame_buf[cursor..]) else {
                halt()
            };
            if n == 0 {
                halt()
            }
            cursor += n;
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&frame_buf[..cursor]) {
                Ok(httparse::Status::Complete(_)) => {
                    let headers = request.headers.iter().map(|h| (h.name, h.value));
                    match read_http_header(headers) {
                        Ok(Some(context)) => break context,
                        _ => halt(),
                    }
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => halt(),
            }
        };
        let mut framer = Framer::new(WebSocketServer::new_server());
        if framer
            .accept(&mut stream, &mut frame_buf, &context)
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(result)) = framer.read(&mut stream, &mut frame_buf).await {
            let (kind, message) = match result {
                ReadResult::Text(t) => (WebSocketSendMessageType::Text, t.as_bytes()),
                ReadResult::Binary(b) => (WebSocketSendMessageType::Binary, b),
                ReadResult::Ping(_) | ReadResult::Pong(_) => continue,
                ReadResult::Close(_) => break,
            };
            if framer
                .write(&mut stream, &mut write_buf, kind, true, message)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    halt()
}
