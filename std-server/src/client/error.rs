//! Why connecting or talking failed ([`ClientError`]), with what to do
//! about the usual set-up mistakes.

use core::fmt;
use std::io;

#[cfg(feature = "tls")]
use rustls::CertificateError;
use snowsocket_core::handshake::HandshakeError;

use super::Response;
use crate::close::{CloseInfo, SendError};
#[cfg(feature = "tls")]
use crate::tls::TlsError;
use crate::ConfigError;

/// Why connecting or talking failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `ws://host[:port][/path]` or `wss://…`.
    InvalidUrl(String),
    /// A [`ClientConfig`](super::ClientConfig) value cannot work.
    Config(ConfigError),
    /// Connecting or the handshake I/O failed.
    Io(io::Error),
    /// The TLS configuration could not be built. (Feature `tls`.)
    #[cfg(feature = "tls")]
    Tls(TlsError),
    /// The TLS handshake failed: the server's certificate was refused, or
    /// the server does not speak TLS. Its `Display` says what to do for
    /// the usual causes (a plain `ws://` server, a CA certificate used as
    /// the server's own, an untrusted self-signed certificate).
    #[cfg(feature = "tls")]
    TlsHandshake(rustls::Error),
    /// A `ws://` connection was answered with TLS: the server serves
    /// `wss://` on this port.
    ServerSpeaksTls,
    /// The server refused the upgrade: its status, headers and body.
    Rejected(Box<Response>),
    /// The server's answer was not a valid upgrade (accept key, headers,
    /// malformed HTTP).
    Handshake(HandshakeError),
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// A send failed.
    Send(SendError),
    /// The connection ended abnormally (protocol error, timeout, I/O).
    Closed(CloseInfo),
}

/// The command that makes a self-signed end-entity certificate for
/// `localhost` (what a test server needs), given in the hints.
pub const LEAF_CERT_COMMAND: &str =
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
     -nodes -days 365 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
     -addext basicConstraints=critical,CA:FALSE -keyout key.pem -out cert.pem";

impl ClientError {
    /// What to do about this error, for the usual set-up mistakes (also
    /// part of its `Display`).
    pub fn hint(&self) -> Option<String> {
        match self {
            #[cfg(feature = "tls")]
            Self::TlsHandshake(e) => tls_hint(e),
            Self::ServerSpeaksTls => Some("use wss:// for this server".into()),
            _ => None,
        }
    }
}

#[cfg(feature = "tls")]
fn tls_hint(e: &rustls::Error) -> Option<String> {
    Some(match e {
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server did not answer with TLS: if it serves plain ws:// on this port, use ws://"
                .into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            format!(
                "the server presents a CA certificate (basicConstraints CA:TRUE, what a plain \
                 `openssl req -x509` makes) as its own; TLS clients accept only an end-entity \
                 certificate there. Make one, e.g. `{LEAF_CERT_COMMAND}` (or rcgen's \
                 generate_simple_self_signed), serve it, and trust it (--ca cert.pem, \
                 ClientConfig::add_root_pem)"
            )
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted root: for a self-signed \
             test server, trust its certificate (--ca cert.pem, ClientConfig::add_root_pem)"
                .into()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the certificate does not name the URL's host: connect with a name it holds \
              (e.g. wss://localhost:PORT/ rather than the address)"
            .into(),
        _ => return None,
    })
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(url) => write!(f, "invalid WebSocket URL: {url}"),
            Self::Config(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            #[cfg(feature = "tls")]
            Self::Tls(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            Self::TlsHandshake(e) => write!(f, "TLS handshake failed: {e}"),
            Self::ServerSpeaksTls => f.write_str("the server answered a ws:// request with TLS"),
            Self::Rejected(response) => {
                write!(
                    f,
                    "upgrade refused: HTTP {} {}",
                    response.status, response.reason
                )?;
                let body = response.body_text();
                let body = body.trim();
                if !body.is_empty() {
                    write!(f, ": {}", body.chars().take(200).collect::<String>())?;
                }
                Ok(())
            }
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::Send(e) => write!(f, "send failed: {e}"),
            Self::Closed(info) => write!(f, "connection ended: {info}"),
        }?;
        match self.hint() {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

impl core::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::Tls(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::TlsHandshake(e) => Some(e),
            Self::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::HandshakeTimeout,
            #[cfg(feature = "tls")]
            _ => match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => Self::TlsHandshake(tls.clone()),
                None => Self::Io(e),
            },
            #[cfg(not(feature = "tls"))]
            _ => Self::Io(e),
        }
    }
}

impl From<SendError> for ClientError {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

#[cfg(feature = "tls")]
impl From<TlsError> for ClientError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

impl From<ConfigError> for ClientError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
