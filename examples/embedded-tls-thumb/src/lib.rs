//! Build check: `snowsocket-embedded-tls` (the wss:// client over
//! embedded-tls) compiled `#![no_std]`, without an allocator, for
//! `thumbv7em-none-eabihf`. [`check`] instantiates the whole client path
//! (TLS handshake with certificate verification, WebSocket handshake,
//! messages, close) so that all of it is code-generated for the target.
//! Nothing here runs: the transport and RNG are placeholders for a
//! firmware's network stack and hardware RNG.
#![no_std]

pub use snowsocket_embedded_tls as embedded_tls;

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use snowsocket_core::handshake::{ClientRequest, HandshakeLimits};
use snowsocket_core::{CloseCode, Config, Instant, Parts, SliceBuffer};

use crate::embedded_tls::{
    ConnectError, NoClock, TlsBuffers, Verify, TLS_READ_BUFFER, TLS_WRITE_BUFFER,
};

/// Where a firmware's TCP socket (or modem UART) would be.
#[derive(Debug)]
pub struct Socket;

impl ErrorType for Socket {
    type Error = ErrorKind;
}

impl Read for Socket {
    fn read(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
        Err(ErrorKind::NotConnected)
    }
}

impl Write for Socket {
    fn write(&mut self, _: &[u8]) -> Result<usize, ErrorKind> {
        Err(ErrorKind::NotConnected)
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Where a firmware's hardware RNG would be (this one is not random).
#[derive(Debug)]
pub struct HardwareRng;

impl rand_core::RngCore for HardwareRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for HardwareRng {}

/// The TLS and WebSocket buffers a firmware would keep in a `static`.
#[derive(Debug)]
pub struct Buffers {
    /// TLS records in.
    pub tls_read: [u8; TLS_READ_BUFFER],
    /// TLS records out.
    pub tls_write: [u8; TLS_WRITE_BUFFER],
    /// WebSocket bytes in.
    pub ws_read: [u8; 2048],
    /// WebSocket frames out.
    pub ws_write: [u8; 2048],
    /// Messages that arrive in pieces.
    pub message: [u8; 4096],
}

/// The whole client path, for code generation: connect, send, read, close.
pub fn check(
    buffers: &mut Buffers,
    ca_der: &[u8],
    millis: fn() -> u64,
) -> Result<(), ConnectError> {
    let parts = Parts {
        read_buf: &mut buffers.ws_read,
        write_buf: &mut buffers.ws_write,
        message_buf: SliceBuffer::new(&mut buffers.message[..]),
        rng: HardwareRng,
        clock: move || Instant::from_millis(millis()),
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: None,
    };
    let verify = Verify {
        ca_der,
        server_name: "device.example",
        clock: NoClock,
    };
    let tls = TlsBuffers {
        read: &mut buffers.tls_read,
        write: &mut buffers.tls_write,
    };
    let request = ClientRequest::new("device.example", "/telemetry");
    let (mut ws, _) = embedded_tls::connect(Socket, tls, &verify, parts, &request)?;
    ws.send_text("{\"t\":21.5}")
        .map_err(ConnectError::WebSocket)?;
    let _ = ws.read_message().map_err(ConnectError::WebSocket)?;
    ws.close(CloseCode::NORMAL, "")
        .map_err(ConnectError::WebSocket)?;
    embedded_tls::finish(ws).map_err(ConnectError::Tls)?;
    Ok(())
}
