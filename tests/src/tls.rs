//! TLS fixtures: self-signed ECDSA P-256 certificates made with rcgen at
//! test time, and rustls configurations (ring provider) trusting them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A self-signed certificate and its key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key (PKCS#8), DER.
    pub key_der: Vec<u8>,
}

/// A fresh self-signed ECDSA P-256 certificate valid for `localhost` and
/// `127.0.0.1`.
pub fn identity() -> Identity {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen");
    Identity {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
        cert_der: certified.cert.der().clone(),
        key_der: certified.signing_key.serialize_der(),
    }
}

/// A self-signed certificate for `localhost` with `basicConstraints`
/// CA:TRUE — what a plain `openssl req -x509` makes — which TLS clients
/// refuse as a server's own certificate (`CaUsedAsEndEntity`).
pub fn ca_identity() -> Identity {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("rcgen params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("rcgen key");
    let cert = params.self_signed(&key).expect("rcgen self-signed");
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Identity {
    /// The private key as rustls takes it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], self.private_key())
            .expect("server config");
        Arc::new(config)
    }

    /// A rustls client configuration trusting only this certificate.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    pub fn write_pem(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

/// A blocking rustls client stream to `addr` for `localhost`.
pub fn client_stream(
    identity: &Identity,
    stream: std::net::TcpStream,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(identity.client_config(), name).expect("client");
    rustls::StreamOwned::new(conn, stream)
}

/// A blocking rustls server stream over an accepted socket.
pub fn server_stream(
    identity: &Identity,
    stream: std::net::TcpStream,
) -> rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream> {
    let conn = rustls::ServerConnection::new(identity.server_config()).expect("server");
    rustls::StreamOwned::new(conn, stream)
}
