//! A `wss://` client built only from `no_std` parts — snowsocket-core's
//! blocking driver over embedded-tls (`snowsocket_embedded_tls`)
//! — here over `snowsocket_core::std_io::StdIo<TcpStream>`, talking to
//! snowsocket-server. A CA and an ECDSA P-256 server certificate for
//! `localhost` are made at start-up (rcgen); the client verifies the
//! server against that CA and the host name.
//!
//! ```text
//! cargo run --release -p snowsocket-examples --example embedded_tls_client
//! ```
//!
//! On a microcontroller the same `embedded_tls::connect` call runs over the
//! firmware's TCP socket with its hardware RNG and `NoClock` (see
//! `examples/embedded-tls-thumb`).

use core::time::Duration;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::SystemTime;

use rand_core::OsRng;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use snowsocket_core::handshake::{ClientRequest, HandshakeLimits};
use snowsocket_core::std_io::StdIo;
use snowsocket_core::{
    CloseCode, Config, Event, Instant, Message, MessageKind, Parts, SliceBuffer,
};
use snowsocket_embedded_tls::{
    self as embedded_tls, TlsBuffers, TlsClock, Verify, TLS_READ_BUFFER, TLS_WRITE_BUFFER,
};
use snowsocket_examples::cli;
use snowsocket_server::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use snowsocket_server::{on_message, Message as ServerMessage, Server, ServerConfig};

/// The client's stack: its buffers (about 48 KiB) live there, and the TLS
/// handshake with certificate verification needs about 64 KiB more in
/// release builds, 210 KiB unoptimised (the smallest stacks that worked
/// here: 112 KiB and 256 KiB).
const CLIENT_STACK: usize = 1 << 20;

type Error = Box<dyn core::error::Error + Send + Sync>;

const HELP: &str = "\
embedded_tls_client: a wss:// client built only from no_std parts
(snowsocket-core's blocking driver over embedded-tls, TLS 1.3, fixed
buffers on its stack) talking to snowsocket-server in the same process: a
CA and a localhost server certificate are made at start-up (rcgen); the
client verifies the server against that CA, then exchanges text, binary, a
fragmented message and a ping, and closes. Exits 0 when all went through.

usage: embedded_tls_client [-h | --help]   (no other arguments)";

fn main() -> ExitCode {
    if let Some(status) = cli::no_arguments("embedded_tls_client", HELP) {
        return status;
    }
    cli::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embedded_tls_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    // A CA, and a server certificate for `localhost` signed by it.
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "embedded_tls_client demo CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &ca)?;
    let tls = snowsocket_server::tls::server_config_from_der(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )?;

    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(tls))?;
    let addr = server.local_addr()?;
    let handle = server.spawn(on_message(|conn, message| {
        let _ = match message {
            ServerMessage::Text(text) => conn.send_text(text),
            ServerMessage::Binary(data) => conn.send_binary(data),
        };
    }))?;
    println!("snowsocket-server on wss://localhost:{}/", addr.port());

    let ca_der = ca.der().to_vec();
    let client = std::thread::Builder::new()
        .stack_size(CLIENT_STACK)
        .spawn(move || client(TcpStream::connect(addr)?, &ca_der))?;
    let result = client.join().map_err(|_| "the client panicked")?;
    handle.shutdown();
    result
}

/// The wall clock, for the certificate's validity dates.
struct WallClock;

impl TlsClock for WallClock {
    fn now() -> Option<u64> {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// The client: every buffer is a fixed array on this thread's stack.
fn client(socket: TcpStream, ca_der: &[u8]) -> Result<(), Error> {
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls_read = [0u8; TLS_READ_BUFFER];
    let mut tls_write = [0u8; TLS_WRITE_BUFFER];
    let mut ws_read = [0u8; 4096];
    let mut ws_write = [0u8; 4096];
    let mut message = [0u8; 8192];
    let start = std::time::Instant::now();
    let parts = Parts {
        read_buf: &mut ws_read,
        write_buf: &mut ws_write,
        message_buf: SliceBuffer::new(&mut message[..]),
        rng: OsRng,
        clock: move || {
            Instant::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
        },
        config: Config::DEFAULT,
        limits: HandshakeLimits::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
    };
    let verify = Verify {
        ca_der,
        server_name: "localhost",
        clock: WallClock,
    };
    let tls = TlsBuffers {
        read: &mut tls_read,
        write: &mut tls_write,
    };
    let request = ClientRequest::new("localhost", "/");
    let (mut ws, _) = embedded_tls::connect(StdIo::new(socket), tls, &verify, parts, &request)?;
    println!("TLS 1.3 and WebSocket handshakes done, certificate verified");

    ws.send_text("hello from a no_std stack")?;
    match ws.read_message()? {
        Some(Message::Text(t)) => println!("echoed text: {t}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    ws.send_binary(&[1, 2, 3, 4])?;
    match ws.read_message()? {
        Some(Message::Binary(b)) => println!("echoed binary: {b:?}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    ws.send_fragment(MessageKind::Text, b"in ", false)?;
    ws.send_fragment(MessageKind::Text, b"three ", false)?;
    ws.send_fragment(MessageKind::Text, b"fragments", true)?;
    match ws.read_message()? {
        Some(Message::Text(t)) => println!("echoed fragmented message: {t}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    ws.ping(b"ping")?;
    match ws.read()? {
        Event::Pong(p) => println!("pong: {}", String::from_utf8_lossy(p)),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    ws.close(CloseCode::NORMAL, "done")?;
    embedded_tls::finish(ws).map_err(|e| format!("TLS close_notify: {e:?}"))?;
    println!("closed cleanly");
    Ok(())
}
