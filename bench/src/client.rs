//! The client side's building blocks: opening a connection (plain, from a
//! chosen source address, or over TLS), the WebSocket opening handshake,
//! the clock and the masking-key generator.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant as StdInstant;

use snowsocket_core::handshake::{self, HandshakeLimits, Parsed};
use snowsocket_core::Instant;
use snowsocket_server::rustls;

use crate::loadgen::Link;

/// The name in the `wss://` server's certificate.
pub(crate) const TLS_NAME: &str = "localhost";

/// How long one connect, handshake or echo of the set-up phases may take.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection (from `source` if given: bind before connect, so
/// that many connections to one server port can come from several
/// loopback addresses) and, for a WebSocket server, completes the opening
/// handshake. The stream is blocking, Nagle off.
pub(crate) fn connect(
    addr: SocketAddr,
    source: Option<SocketAddr>,
    websocket: bool,
    rng: &mut XorShift,
) -> Result<TcpStream, String> {
    let mut stream = match source {
        None => TcpStream::connect_timeout(&addr, STEP_TIMEOUT),
        Some(from) => connect_from(addr, from),
    }
    .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    if websocket {
        stream
            .set_read_timeout(Some(STEP_TIMEOUT))
            .map_err(|e| e.to_string())?;
        ws_handshake(&mut stream, &addr.to_string(), rng)?;
        stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    }
    Ok(stream)
}

/// `bind(from)` then `connect(addr)`. A port taken already (a socket of
/// an earlier run still closing) falls back to one the kernel picks.
fn connect_from(addr: SocketAddr, from: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    match socket.bind(&from.into()) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && from.port() != 0 => {
            socket.bind(&SocketAddr::new(from.ip(), 0).into())?;
        }
        other => other?,
    }
    socket.connect_timeout(&addr.into(), STEP_TIMEOUT)?;
    Ok(socket.into())
}

/// Source addresses for many connections to one server port: `127.0.S.2`,
/// `127.0.S.3`, … (S is the caller's: one per server or figure, so that
/// none meets another's sockets), `per_address` connections on each.
///
/// Each gets its port named here rather than by the kernel: with port 0,
/// `bind` searches the ephemeral range for a free port, which grows slow
/// as tens of thousands of them are taken (seconds per thousand here).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sources {
    pub(crate) third: u8,
    pub(crate) per_address: usize,
}

/// The first port [`Sources`] names (ports from 10,000 up; source
/// addresses other than 127.0.0.1 carry nothing else here).
const FIRST_SOURCE_PORT: usize = 10_000;

impl Sources {
    /// The source of connection `i`.
    pub(crate) fn get(&self, i: usize) -> Result<SocketAddr, String> {
        let per = self.per_address.clamp(1, 50_000);
        let fourth = u8::try_from(i / per + 2)
            .map_err(|_| "too many connections for the source addresses")?;
        let port = u16::try_from(FIRST_SOURCE_PORT + i % per).map_err(|_| "port out of range")?;
        Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, self.third, fourth)),
            port,
        ))
    }
}

/// The client side of the opening handshake, over any stream.
pub(crate) fn ws_handshake(
    stream: &mut (impl Read + Write),
    host: &str,
    rng: &mut XorShift,
) -> Result<(), String> {
    let key = handshake::generate_key(rng);
    let mut request = [0u8; 512];
    let n = handshake::write_request(
        &mut request,
        &handshake::ClientRequest::new(host, "/"),
        &key,
    )
    .map_err(|e| format!("handshake request: {e}"))?;
    stream
        .write_all(&request[..n])
        .map_err(|e| format!("handshake write: {e}"))?;
    let mut response = [0u8; 2048];
    let mut filled = 0;
    loop {
        let n = stream
            .read(&mut response[filled..])
            .map_err(|e| format!("handshake read: {e}"))?;
        if n == 0 {
            return Err("server closed during the handshake".into());
        }
        filled += n;
        let mut headers = [handshake::EMPTY_HEADER; 16];
        match handshake::parse_response(
            &response[..filled],
            &mut headers,
            &key,
            &[],
            &HandshakeLimits::DEFAULT,
        ) {
            Ok(Parsed::Complete { consumed, .. }) if consumed == filled => return Ok(()),
            Ok(Parsed::Complete { .. }) => return Err("server spoke before the client".into()),
            Ok(Parsed::Incomplete) if filled < response.len() => {}
            Ok(Parsed::Incomplete) => return Err("handshake response too long".into()),
            Err(e) => return Err(format!("handshake refused: {e}")),
        }
    }
}

/// A blocking client connection of the set-up phases (idle memory).
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// A client configuration trusting only `cert` (DER), TLS 1.3 and 1.2.
pub(crate) fn tls_client_config(cert: Vec<u8>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert))
        .map_err(|e| format!("the server's certificate: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A `wss://` connection: TLS (for [`TLS_NAME`]), then the WebSocket
/// handshake.
pub(crate) fn connect_tls(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    rng: &mut XorShift,
) -> Result<Stream, String> {
    let mut stream = Stream::Tls(connect_tls_only(addr, config)?);
    ws_handshake(&mut stream, TLS_NAME, rng)?;
    Ok(stream)
}

/// A TCP connection with a TLS session for [`TLS_NAME`] on it, whose
/// handshake runs with the first read or write (blocking, bounded by
/// [`STEP_TIMEOUT`] per read).
fn connect_tls_only(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> Result<Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>, String> {
    let socket =
        TcpStream::connect_timeout(&addr, STEP_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(STEP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(TLS_NAME).map_err(|e| e.to_string())?;
    let session =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    Ok(Box::new(rustls::StreamOwned::new(session, socket)))
}

/// A connection for the load generator, its handshakes done: plain (see
/// [`connect`]), or under `tls` a TLS session for [`TLS_NAME`] first, then
/// the WebSocket handshake if `websocket`.
pub(crate) fn connect_link(
    addr: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    websocket: bool,
    rng: &mut XorShift,
) -> Result<Link, String> {
    let Some(config) = tls else {
        return connect(addr, None, websocket, rng).map(Link::from);
    };
    let mut stream = connect_tls_only(addr, config)?;
    if websocket {
        ws_handshake(&mut stream, TLS_NAME, rng)?;
    } else {
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
    }
    let rustls::StreamOwned { conn, sock } = *stream;
    sock.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(Link {
        stream: sock,
        tls: Some(Box::new(conn)),
    })
}

/// The clock handed to the core: microseconds since the first call.
/// A client-side core connection (default limits) for encoding frames and
/// reading a server's answers.
pub(crate) fn client_connection() -> snowsocket_core::Connection<Vec<u8>, XorShift> {
    snowsocket_core::Connection::new(
        snowsocket_core::Role::Client,
        snowsocket_core::Config::DEFAULT,
        Vec::new(),
        XorShift::seeded(),
        now(),
    )
}

pub(crate) fn now() -> Instant {
    static START: OnceLock<StdInstant> = OnceLock::new();
    let micros = START.get_or_init(StdInstant::now).elapsed().as_micros();
    Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// Masking keys and handshake nonces. A benchmark needs them varied, not
/// secret.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn seeded() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let seed = NEXT.fetch_add(0x6A09_E667_F3BC_C909, Ordering::Relaxed) ^ now().as_micros();
        Self(seed | 1)
    }

    pub(crate) fn mask_key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_le_bytes()
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

impl rand_core::RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Bytes as lowercase hex (the `wss://` server's certificate on its
/// address line).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_addresses() {
        let sources = Sources {
            third: 1,
            per_address: 20_000,
        };
        let at = |i| sources.get(i).map(|a| a.to_string());
        assert_eq!(at(0).as_deref(), Ok("127.0.1.2:10000"));
        assert_eq!(at(19_999).as_deref(), Ok("127.0.1.2:29999"));
        assert_eq!(at(20_000).as_deref(), Ok("127.0.1.3:10000"));
        assert!(sources.get(300 * 20_000).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0xA5, 0xFF];
        assert_eq!(hex(&bytes), "0001a5ff");
        assert_eq!(unhex("0001a5ff").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("0g"), None);
    }
}
