//! What a client connection is given: its configuration, its URL, and the
//! errors connecting can end in.

use core::fmt;
use core::time::Duration;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use snowsocket_core::handshake::HandshakeError;
use snowsocket_core::Config;

use crate::close::{CloseInfo, SendError};
use crate::tls::{self, TlsError};
use crate::PerMessageDeflate;

/// The client's configuration. [`ClientConfig::default`]: the core's
/// defaults (16 MiB messages, ping every 30 s, pong timeout 10 s), 10 s
/// handshake and write timeouts, the Mozilla roots for `wss://`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The WebSocket connection's limits and timers.
    pub connection: Config,
    /// How long connecting, the TLS handshake and the upgrade may take.
    pub handshake_timeout: Duration,
    /// How long a write may stall before the connection is failed.
    pub write_timeout: Duration,
    /// Subprotocols to offer, in order of preference.
    pub subprotocols: Vec<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// Extra trusted root certificates (for self-signed servers).
    pub roots: Vec<CertificateDer<'static>>,
    /// Whether to trust the Mozilla roots (`webpki-roots`). Default true.
    pub webpki_roots: bool,
    /// A ready TLS configuration, used instead of `roots`/`webpki_roots`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The bound on bytes sent and not yet written (see
    /// [`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes)).
    /// Default 16 MiB + 16.
    pub max_buffered_bytes: usize,
    /// permessage-deflate (RFC 7692): offered when set
    /// ([`ClientConfig::permessage_deflate`]); a server's answer that does
    /// not match the offer fails the connection
    /// ([`HandshakeError::UnexpectedExtensions`]). Default `None`.
    pub deflate: Option<PerMessageDeflate>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connection: Config::DEFAULT,
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            subprotocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            roots: Vec::new(),
            webpki_roots: true,
            tls: None,
            max_buffered_bytes: (16 << 20) + 16,
            deflate: None,
        }
    }
}

impl ClientConfig {
    /// Offers permessage-deflate (RFC 7692) with these options; see
    /// [`PerMessageDeflate`].
    #[must_use]
    pub const fn permessage_deflate(mut self, options: PerMessageDeflate) -> Self {
        self.deflate = Some(options);
        self
    }
    /// Sets [`ClientConfig::connection`].
    #[must_use]
    pub const fn connection(mut self, config: Config) -> Self {
        self.connection = config;
        self
    }
    /// Sets [`ClientConfig::handshake_timeout`].
    #[must_use]
    pub const fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`ClientConfig::write_timeout`].
    #[must_use]
    pub const fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Offers one more subprotocol.
    #[must_use]
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocols.push(name.into());
        self
    }
    /// Adds a request header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the `Origin` header.
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }
    /// Trusts the certificates of a PEM file (e.g. a self-signed server's).
    ///
    /// A self-signed server certificate must be an end-entity certificate
    /// (`basicConstraints` CA:FALSE, as rcgen makes them): webpki refuses a
    /// CA certificate presented as the server's own (`openssl req -x509`
    /// makes CA certificates unless told `-addext basicConstraints=critical,CA:FALSE`).
    pub fn add_root_pem(mut self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        self.roots.extend(tls::certs_from_pem(path)?);
        Ok(self)
    }
    /// Trusts a DER certificate.
    #[must_use]
    pub fn add_root_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(CertificateDer::from(der.into()));
        self
    }
    /// Uses a ready rustls configuration for `wss://`.
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// Why connecting or talking failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `ws://host[:port][/path]` or `wss://…`.
    InvalidUrl(String),
    /// Connecting or the handshake I/O failed.
    Io(io::Error),
    /// The TLS configuration could not be built.
    Tls(TlsError),
    /// The server's answer was not a valid upgrade (status, accept key…).
    Handshake(HandshakeError),
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// A send failed.
    Send(SendError),
    /// The connection ended abnormally (protocol error, timeout, I/O).
    Closed(CloseInfo),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(url) => write!(f, "invalid WebSocket URL: {url}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::Send(e) => write!(f, "send failed: {e}"),
            Self::Closed(info) => write!(f, "connection ended: {info}"),
        }
    }
}

impl core::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::HandshakeTimeout,
            _ => Self::Io(e),
        }
    }
}

impl From<SendError> for ClientError {
    fn from(e: SendError) -> Self {
        Self::Send(e)
    }
}

impl From<TlsError> for ClientError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

/// A parsed `ws://` or `wss://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Url {
    pub(super) tls: bool,
    /// The host as written, without brackets for IPv6.
    pub(super) host: String,
    pub(super) port: u16,
    /// The `Host` header value.
    pub(super) authority: String,
    pub(super) path: String,
}

pub(super) fn parse_url(url: &str) -> Result<Url, ClientError> {
    let bad = || ClientError::InvalidUrl(url.to_owned());
    let (tls, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let path = path.split('#').next().unwrap_or("/").to_owned();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Url {
        tls,
        host: host.to_owned(),
        port: port.unwrap_or(if tls { 443 } else { 80 }),
        authority: authority.to_owned(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("ws://example.com/chat?x=1").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "example.com", 80));
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("example.com", "/chat?x=1")
        );
        let u = parse_url("wss://[::1]:9001").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", 9001));
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("[::1]:9001", "/"));
        let u = parse_url("ws://h:1?q").unwrap();
        assert_eq!(u.path, "/?q");
        for bad in [
            "http://x/",
            "ws://",
            "ws://:80/",
            "ws://h:port/",
            "ws://u@h/",
            "ws://[::1/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
