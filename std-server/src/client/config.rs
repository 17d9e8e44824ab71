//! What a client connection is given: its configuration and its URL.

use core::time::Duration;
#[cfg(feature = "tls")]
use std::path::Path;
#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use rustls::pki_types::CertificateDer;
use snowsocket_core::Config;

use super::ClientError;
#[cfg(feature = "tls")]
use crate::tls::{self, TlsError};
use crate::ConfigError;
use crate::PerMessageDeflate;

/// The client's configuration. [`ClientConfig::default`]: the core's
/// defaults (16 MiB messages, ping every 30 s, pong timeout 10 s), 10 s
/// handshake and write timeouts, the Mozilla roots for `wss://` (features
/// `tls` and `webpki-roots`).
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
    /// (Feature `tls`.)
    #[cfg(feature = "tls")]
    pub roots: Vec<CertificateDer<'static>>,
    /// Whether to trust the Mozilla roots (`webpki-roots`). Default: true
    /// with the `webpki-roots` feature, which brings them. (Feature `tls`.)
    #[cfg(feature = "tls")]
    pub webpki_roots: bool,
    /// A ready TLS configuration, used instead of `roots`/`webpki_roots`.
    /// (Feature `tls`.)
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The bound on bytes sent and not yet written (see
    /// [`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes)).
    /// Default 16 MiB + 16.
    pub max_buffered_bytes: usize,
    /// permessage-deflate (RFC 7692): offered when set
    /// ([`ClientConfig::permessage_deflate`]); a server's answer that does
    /// not match the offer fails the connection
    /// ([`HandshakeError::UnexpectedExtensions`](snowsocket_core::handshake::HandshakeError::UnexpectedExtensions)). Default `None`.
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
            #[cfg(feature = "tls")]
            roots: Vec::new(),
            #[cfg(feature = "tls")]
            webpki_roots: cfg!(feature = "webpki-roots"),
            #[cfg(feature = "tls")]
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
    #[cfg(feature = "tls")]
    pub fn add_root_pem(mut self, path: impl AsRef<Path>) -> Result<Self, TlsError> {
        self.roots.extend(tls::certs_from_pem(path)?);
        Ok(self)
    }
    /// Trusts a DER certificate.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn add_root_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(CertificateDer::from(der.into()));
        self
    }
    /// Checks that every value can work, as
    /// [`ServerConfig::validate`](crate::ServerConfig::validate) does;
    /// [`connect`](super::connect) checks it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero = [
            (self.handshake_timeout.is_zero(), "handshake_timeout"),
            (self.write_timeout.is_zero(), "write_timeout"),
            (self.max_buffered_bytes == 0, "max_buffered_bytes"),
        ];
        if let Some((_, field)) = zero.iter().find(|(bad, _)| *bad) {
            return Err(ConfigError::zero(field));
        }
        self.connection.validate().map_err(ConfigError::connection)
    }
    /// Uses a ready rustls configuration for `wss://`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
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
