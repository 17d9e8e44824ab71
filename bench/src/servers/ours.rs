//! `snowsocket-server` as a user runs it: `Server::bind`, the default
//! configuration, `spawn` with an echo `Handler`, and `shutdown` at the end
//! (Close 1001 to every peer still there, every thread joined).
//!
//! Only API that stays through the engine's rewrite is used: the ping
//! interval and pong timeout go through `ServerConfig::connection`, the
//! 50,000-connection figure raises `max_connections`; `--read-buffer`
//! (scripts only, e.g. `SERVE_FLAGS` of `scripts/server-cpu.sh`) sets
//! `read_buffer_size`.

use std::sync::Arc;

use snowsocket_server::rustls;
use snowsocket_server::{Config, ConnectionHandle, Handler, Message, Server, ServerConfig};

use super::{Running, ServeOptions};
use crate::client::TLS_NAME;

/// Echoes every message as it came.
struct Echo;

impl Handler for Echo {
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }
}

pub(super) fn start(opts: &ServeOptions, tls: bool) -> Result<Running, String> {
    let mut connection = Config::DEFAULT;
    if let Some(interval) = opts.ping_interval {
        connection = connection.ping_interval(Some(interval));
    }
    if let Some(timeout) = opts.pong_timeout {
        connection = connection.pong_timeout(timeout);
    }
    let mut config = ServerConfig::default().connection(connection);
    if let Some(max) = opts.max_connections {
        config = config.max_connections(max);
    }
    if let Some(bytes) = opts.read_buffer {
        config = config.read_buffer_size(bytes);
    }
    let mut cert = None;
    if tls {
        let (server_config, der) = self_signed()?;
        config = config.tls(server_config);
        cert = Some(der);
    }
    let server = Server::bind("127.0.0.1:0", config).map_err(|e| format!("bind: {e}"))?;
    let handle = server.spawn(Echo).map_err(|e| format!("spawn: {e}"))?;
    Ok(Running {
        addr: handle.local_addr(),
        cert,
        stop: Some(Box::new(move || handle.shutdown())),
    })
}

/// A TLS configuration with a certificate for [`TLS_NAME`] made now
/// (rcgen, ECDSA P-256), and that certificate (DER) for clients to trust.
pub(super) fn self_signed() -> Result<(Arc<rustls::ServerConfig>, Vec<u8>), String> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(vec![TLS_NAME.to_string()])
        .map_err(|e| format!("certificate: {e}"))?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok((Arc::new(config), cert.to_vec()))
}
