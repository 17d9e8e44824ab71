//! TLS (`wss://`) configuration with rustls and the *ring* provider.
//!
//! Configurations are built with
//! `builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))`,
//! so nothing depends on (or panics for want of) a process-wide default
//! provider. The safe default protocol versions are TLS 1.3 and 1.2; the
//! *ring* provider offers X25519, secp256r1 and secp384r1 and verifies
//! ECDSA P-256/P-384, Ed25519 and RSA certificates, which keeps small
//! clients (embedded-tls: TLS 1.3, secp256r1, ECDSA P-256) working.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use core::fmt;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built. Its `Display` names the file
/// (when one is involved) and the reason.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no PEM item of the expected kind, or a malformed one.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected or what went wrong.
        reason: String,
    },
    /// rustls refused the configuration (for example a key that does not
    /// match the certificate, or an unusable root certificate).
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Pem { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl core::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Rustls(e) => Some(e),
            Self::Pem { .. } => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Rustls(e)
    }
}

/// The crypto provider every configuration of this crate uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file (a chain: leaf first).
pub fn certs_from_pem(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let path = path.as_ref();
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, format!("malformed PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE item found".into()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn key_from_pem(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let path = path.as_ref();
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        pem_error(
            path,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })
}

/// A server configuration from a PEM certificate chain (leaf first) and a
/// PEM private key.
///
/// ```no_run
/// let tls = snowsocket_server::tls::server_config_from_pem("cert.pem", "key.pem")?;
/// let config = snowsocket_server::ServerConfig::default().tls(tls);
/// # Ok::<(), snowsocket_server::tls::TlsError>(())
/// ```
pub fn server_config_from_pem(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certs_from_pem(cert_path)?;
    let key = key_from_pem(key_path)?;
    server_config_from_der(certs, key)
}

/// A server configuration from a DER certificate chain and private key.
pub fn server_config_from_der(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// A client configuration trusting `roots` (DER certificates), plus the
/// Mozilla roots of `webpki-roots` when `webpki_roots` is set and the
/// `webpki-roots` feature is on (without it there are none to add).
pub fn client_config(
    roots: &[CertificateDer<'static>],
    #[cfg_attr(not(feature = "webpki-roots"), allow(unused_variables))] webpki_roots: bool,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    #[cfg(feature = "webpki-roots")]
    if webpki_roots {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for root in roots {
        store.add(root.clone())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, reason: String) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason,
    }
}
