//! `--insecure`: a TLS configuration that takes any server certificate.
//! The handshake's signature is still checked (the server holds the key of
//! the certificate it shows), but not who the certificate names or who
//! signed it: anyone on the path can stand in for the server.

use std::sync::Arc;

use snowsocket_server::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use snowsocket_server::rustls::crypto::{self, CryptoProvider};
use snowsocket_server::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use snowsocket_server::rustls::{self, DigitallySignedStruct, SignatureScheme};

/// What `--insecure` prints before connecting.
pub(crate) const WARNING: &str = "snowsocket: WARNING: --insecure: the server's certificate is \
NOT verified. Anyone on the network path can read and change this connection. Use it only for \
a test server; for a self-signed server, trust its certificate with --ca FILE instead.";

/// A client configuration that accepts any server certificate.
pub(crate) fn config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = snowsocket_server::tls::provider();
    let verifier = AnyCertificate {
        provider: Arc::clone(&provider),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
