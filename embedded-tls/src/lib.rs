//! A `wss://` client for a `no_std` stack: snowsocket-core's blocking driver
//! ([`WebSocket`]) over an [`embedded_tls`] TLS 1.3 session over any
//! `embedded_io` byte stream (a TCP socket of an embedded network stack, a
//! modem UART, or `snowsocket_core::std_io::StdIo<TcpStream>` on a host).
//!
//! Only `core`, `embedded-io`, `embedded-tls` (`default-features = false`,
//! feature `rustpki`), `rand_core` and `snowsocket-core` are used, and every
//! buffer is the caller's: nothing here allocates, and the crate builds for
//! `thumbv7em-none-eabihf` (the test suite checks it with
//! `examples/embedded-tls-thumb`, which instantiates the whole client path).
//!
//! ```toml
//! [dependencies]
//! snowsocket-embedded-tls = "0.1"
//! ```
//!
//! ```text
//! transport (embedded_io) ─► RecordTicks ─► TlsConnection (embedded-tls) ─► WebSocket (snowsocket-core)
//! ```
//!
//! What to know about embedded-tls 0.19 (checked against snowsocket-server,
//! i.e. rustls):
//!
//! - TLS 1.3 only, AES-GCM suites ([`Suite`] is `TLS_AES_128_GCM_SHA256`),
//!   secp256r1 key exchange; the server's certificate must be ECDSA P-256
//!   (P-384 and Ed25519 need more embedded-tls features).
//! - The certificate is verified against one CA certificate (DER) and the
//!   host name given to [`connect`]; validity dates are checked only when the
//!   [`TlsClock`] knows the time ([`NoClock`] does not).
//! - The TLS read buffer should be [`TLS_READ_BUFFER`] (16,640) bytes (a
//!   whole record); the write buffer must not exceed [`TLS_WRITE_BUFFER`]
//!   (16,384) bytes, or rustls aborts with "peer sent excess record size".
//! - The TLS handshake with certificate verification needs a deep stack.
//!   Measured on x86_64 (the `embedded_tls_client` example, whose ~48 KiB
//!   of buffers are on the same stack): the smallest thread stack that
//!   works is about 112 KiB in release builds and 256 KiB unoptimised, so
//!   the handshake itself takes roughly 64 KiB (release) to 210 KiB (debug).
//! - A read that fails inside a TLS record loses the bytes embedded-tls had
//!   read of it (the record header is held in a local variable), so a
//!   transport read timeout is only harmless at a record boundary.
//!   [`RecordTicks`] tracks the record framing and passes a timeout up (as a
//!   clock tick for the driver's heartbeat) only there; elsewhere it retries.

#![no_std]

#[cfg(test)]
extern crate std;

use core::fmt;

use embedded_io::{Error as _, ErrorKind, ErrorType, Read, Write};
use embedded_tls::blocking::{TlsConfig, TlsConnection, TlsContext};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{Aes128GcmSha256, Certificate, CryptoProvider, CryptoRngCore, TlsVerifier};
use rand_core::{CryptoRng, RngCore};
use snowsocket_core::handshake::ClientRequest;
use snowsocket_core::{ClientSide, Clock, DriverError, MessageBuffer, Parts, WebSocket};

pub use embedded_tls::blocking::{NoClock, TlsClock};
pub use embedded_tls::TlsError;

/// The TLS read buffer size that holds any TLS record (16 KiB of plaintext
/// plus the largest record expansion).
pub const TLS_READ_BUFFER: usize = 16_640;
/// The largest TLS write buffer a server accepts records from (16 KiB).
pub const TLS_WRITE_BUFFER: usize = 16_384;
/// The largest server certificate (DER) the verifier keeps.
pub const MAX_CERT_SIZE: usize = 4096;
/// How many timeouts in a row [`RecordTicks`] retries inside a record (or
/// on a write, or during the TLS handshake) before giving up.
pub const MAX_STALLS: u32 = 100;

/// The cipher suite offered: `TLS_AES_128_GCM_SHA256`.
pub type Suite = Aes128GcmSha256;
/// The TLS session over a transport `T`.
pub type Tls<'a, T> = TlsConnection<'a, RecordTicks<T>, Suite>;
/// The WebSocket [`connect`] returns.
pub type TlsWebSocket<'a, T, B, R, C> = WebSocket<'a, Tls<'a, T>, B, R, C, ClientSide>;

/// What [`connect`] returns: the open WebSocket and the index (in the
/// request's `subprotocols`) of the subprotocol the server chose.
pub type Connected<'a, T, B, R, C> = (TlsWebSocket<'a, T, B, R, C>, Option<usize>);

/// How the server is authenticated.
#[derive(Clone, Copy, Debug)]
pub struct Verify<'a, K> {
    /// The CA certificate (DER) that must have signed the server's.
    pub ca_der: &'a [u8],
    /// The host name the server's certificate must carry (also sent as SNI).
    pub server_name: &'a str,
    /// The wall clock for the certificate's validity dates
    /// ([`NoClock`] to skip them).
    pub clock: K,
}

/// The TLS buffers (see [`TLS_READ_BUFFER`] and [`TLS_WRITE_BUFFER`]).
#[derive(Debug)]
pub struct TlsBuffers<'a> {
    /// Encrypted records in.
    pub read: &'a mut [u8],
    /// Encrypted records out (at most [`TLS_WRITE_BUFFER`]).
    pub write: &'a mut [u8],
}

/// Why [`connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TLS write buffer is larger than [`TLS_WRITE_BUFFER`].
    WriteBufferTooLarge,
    /// The TLS handshake failed (certificate not signed by the CA or not for
    /// the host name, unsupported suite, transport error, …).
    Tls(TlsError),
    /// The WebSocket opening handshake failed.
    WebSocket(DriverError<TlsError>),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WriteBufferTooLarge => write!(
                f,
                "the TLS write buffer exceeds {TLS_WRITE_BUFFER} bytes (records too large)"
            ),
            Self::Tls(e) => write!(f, "TLS handshake failed: {e:?}"),
            Self::WebSocket(e) => write!(f, "WebSocket handshake failed: {e}"),
        }
    }
}

impl core::error::Error for ConnectError {}

/// Opens a TLS 1.3 session over `transport`, checks the server's
/// certificate against `verify`, then performs the WebSocket opening
/// handshake with `request`. Returns the open WebSocket and the index of the
/// subprotocol the server chose.
///
/// `parts.rng` serves both layers (TLS key exchange, then masking keys and
/// the handshake key), so it must be a cryptographic RNG. A received
/// message that does not arrive whole in `parts.read_buf` is reassembled in
/// `parts.message_buf`, whose size is then its limit (larger ones fail the
/// connection with close code 1009). After the close handshake, [`finish`]
/// sends TLS `close_notify` and gives the transport back.
pub fn connect<'a, T, B, R, C, K>(
    transport: T,
    tls: TlsBuffers<'a>,
    verify: &Verify<'_, K>,
    mut parts: Parts<'a, B, R, C>,
    request: &ClientRequest<'_>,
) -> Result<Connected<'a, T, B, R, C>, ConnectError>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore + CryptoRng,
    C: Clock,
    K: TlsClock,
{
    if tls.write.len() > TLS_WRITE_BUFFER {
        return Err(ConnectError::WriteBufferTooLarge);
    }
    let mut session = TlsConnection::new(RecordTicks::new(transport), tls.read, tls.write);
    let config = TlsConfig::new().with_server_name(verify.server_name);
    let provider = Provider::<R, K> {
        rng: &mut parts.rng,
        verifier: CertVerifier::new(Certificate::X509(verify.ca_der)),
    };
    session
        .open(TlsContext::new(&config, provider))
        .map_err(ConnectError::Tls)?;
    WebSocket::connect(session, parts, request).map_err(ConnectError::WebSocket)
}

/// Ends the TLS session after the WebSocket close handshake: sends
/// `close_notify` and gives the transport back.
pub fn finish<T, B, R, C>(ws: TlsWebSocket<'_, T, B, R, C>) -> Result<T, TlsError>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    match ws.into_transport().close() {
        Ok(io) => Ok(io.into_inner()),
        Err((_, e)) => Err(e),
    }
}

/// embedded-tls's crypto: the caller's RNG and a verifier for one CA.
struct Provider<'a, 'r, R, K: TlsClock> {
    rng: &'r mut R,
    verifier: CertVerifier<'a, Suite, K, MAX_CERT_SIZE>,
}

impl<R: RngCore + CryptoRng, K: TlsClock> CryptoProvider for Provider<'_, '_, R, K> {
    type CipherSuite = Suite;
    type Signature = &'static [u8];

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut *self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// A transport wrapper that makes read timeouts safe under embedded-tls.
///
/// It follows the TLS record framing of the bytes read and written (a
/// 5-byte header with the content type and body length, then the body). A
/// read that fails with [`ErrorKind::TimedOut`] or [`ErrorKind::Interrupted`]
/// is returned (a clock tick for the WebSocket driver) only at a record
/// boundary once the TLS handshake is done (the client has written an
/// encrypted record: its Finished); inside a record or during the handshake
/// it is retried, up to [`MAX_STALLS`] times in a row. Writes that time out
/// are retried the same way (nothing was written).
#[derive(Debug)]
pub struct RecordTicks<T> {
    io: T,
    read: Framing,
    written: Framing,
}

impl<T> RecordTicks<T> {
    /// Wraps `io`.
    pub const fn new(io: T) -> Self {
        Self {
            io,
            read: Framing::NEW,
            written: Framing::NEW,
        }
    }

    /// The transport.
    pub const fn inner(&self) -> &T {
        &self.io
    }

    /// The transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Gives the transport back.
    pub fn into_inner(self) -> T {
        self.io
    }

    /// Whether the bytes read so far end exactly at a record boundary.
    pub const fn at_record_boundary(&self) -> bool {
        self.read.at_boundary()
    }

    /// Whether the TLS handshake is done (an encrypted record was written).
    pub const fn handshake_done(&self) -> bool {
        self.written.saw_application_data
    }
}

/// The TLS record framing of one direction of a byte stream.
#[derive(Clone, Copy, Debug)]
struct Framing {
    header_seen: u8,
    length_high: u8,
    body_left: usize,
    records: u32,
    saw_application_data: bool,
}

impl Framing {
    const NEW: Self = Self {
        header_seen: 0,
        length_high: 0,
        body_left: 0,
        records: 0,
        saw_application_data: false,
    };
    /// The record content type of TLS 1.3's encrypted records.
    const APPLICATION_DATA: u8 = 23;

    const fn at_boundary(&self) -> bool {
        self.header_seen == 0 && self.body_left == 0
    }

    /// Follows the framing over `data`, just read or written.
    fn account(&mut self, mut data: &[u8]) {
        while let Some((&byte, rest)) = data.split_first() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = data.get(n..).unwrap_or_default();
                continue;
            }
            data = rest;
            match self.header_seen {
                0 if byte == Self::APPLICATION_DATA => self.saw_application_data = true,
                3 => self.length_high = byte,
                4 => {
                    self.body_left = usize::from(u16::from_be_bytes([self.length_high, byte]));
                    self.header_seen = 0;
                    self.records = self.records.saturating_add(1);
                    continue;
                }
                _ => {}
            }
            self.header_seen += 1;
        }
    }
}

/// Whether an error is a timeout (or an interrupted call) worth retrying.
fn is_tick(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::TimedOut | ErrorKind::Interrupted)
}

impl<T: ErrorType> ErrorType for RecordTicks<T> {
    type Error = T::Error;
}

impl<T: Read> Read for RecordTicks<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let mut stalls = 0;
        loop {
            match self.io.read(buf) {
                Ok(n) => {
                    self.read.account(buf.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e)
                    if is_tick(e.kind())
                        && !(self.handshake_done() && self.at_record_boundary())
                        && stalls < MAX_STALLS =>
                {
                    stalls += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<T: Write> Write for RecordTicks<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let mut stalls = 0;
        loop {
            match self.io.write(buf) {
                Ok(n) => {
                    self.written.account(buf.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if is_tick(e.kind()) && stalls < MAX_STALLS => stalls += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.io.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_boundaries_are_followed_at_every_split() {
        // Three records: a 3-byte handshake body, an empty one, then a
        // 2-byte application-data body.
        let stream = [
            22, 3, 3, 0, 3, 1, 2, 3, 22, 3, 3, 0, 0, 23, 3, 3, 0, 2, 9, 9,
        ];
        let boundaries = [0, 8, 13, 20];
        for split in 0..=stream.len() {
            let mut f = Framing::NEW;
            f.account(&stream[..split]);
            assert_eq!(f.at_boundary(), boundaries.contains(&split), "{split}");
            assert_eq!(f.saw_application_data, split > 13, "{split}");
            f.account(&stream[split..]);
            assert!(f.at_boundary());
            assert_eq!(f.records, 3);
        }
        let mut f = Framing::NEW;
        for (i, b) in stream.iter().enumerate() {
            f.account(core::slice::from_ref(b));
            assert_eq!(f.at_boundary(), boundaries.contains(&(i + 1)), "{i}");
        }
    }

    /// A transport that plays a script: `Some(bytes)` is a read returning
    /// them, `None` a read that times out. Writes are accepted whole.
    struct Script<'a> {
        steps: &'a [Option<&'a [u8]>],
    }

    impl ErrorType for Script<'_> {
        type Error = ErrorKind;
    }

    impl Read for Script<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            let (step, rest) = self.steps.split_first().ok_or(ErrorKind::BrokenPipe)?;
            self.steps = rest;
            let data = step.ok_or(ErrorKind::TimedOut)?;
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
    }

    impl Write for Script<'_> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    #[test]
    fn timeouts_reach_the_caller_only_at_boundaries_after_the_handshake() {
        let steps = [
            None,                  // handshake: retried
            Some(&[22, 3, 3][..]), // half a header
            None,                  // inside the header: retried
            Some(&[0, 1, 7][..]),  // rest of the header and the body
            None,                  // boundary, handshake not done: retried
            Some(&[23, 3, 3, 0][..]),
            None,              // inside the header: retried
            Some(&[2, 1][..]), // one body byte of two
            None,              // inside the body: retried
            Some(&[2][..]),    // boundary
            None,              // handshake done: a tick
        ];
        let mut io = RecordTicks::new(Script { steps: &steps });
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf), Ok(3));
        assert_eq!(io.read(&mut buf), Ok(3));
        assert!(io.at_record_boundary());
        assert_eq!(io.read(&mut buf), Ok(4));
        // The client's Finished goes out: an encrypted record.
        assert!(!io.handshake_done());
        assert_eq!(io.write(&[23, 3, 3, 0, 1, 0]), Ok(6));
        assert!(io.handshake_done());
        assert_eq!(io.read(&mut buf), Ok(2));
        assert_eq!(io.read(&mut buf), Ok(1));
        assert!(io.at_record_boundary());
        assert_eq!(io.read(&mut buf), Err(ErrorKind::TimedOut));
        assert_eq!(io.read(&mut buf), Err(ErrorKind::BrokenPipe));
    }

    #[test]
    fn a_peer_stalled_inside_a_record_fails_after_max_stalls() {
        let mut steps = [None; MAX_STALLS as usize + 2];
        steps[0] = Some(&[23, 3][..]);
        let mut io = RecordTicks::new(Script { steps: &steps });
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf), Ok(2));
        assert_eq!(io.read(&mut buf), Err(ErrorKind::TimedOut));
    }
}
