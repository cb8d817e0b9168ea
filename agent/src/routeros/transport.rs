//! How a session reaches a router: plain TCP (API, 8728) or TLS (API-SSL, 8729).
//!
//! RouterOS API-SSL certificates are often self-signed, so besides trusting a CA the
//! client can *pin* the router's certificate by its SHA-256 fingerprint. Pinning still
//! verifies the handshake signature with the pinned certificate's key; nothing here
//! accepts an unverified peer.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Which certificates a router may present.
#[derive(Debug, Clone)]
pub enum TlsTrust {
    /// Certificates issued by one of these CAs, for `server_name`.
    Ca(Vec<CertificateDer<'static>>),
    /// Exactly the certificate with this SHA-256 fingerprint (32 bytes).
    Pinned([u8; 32]),
}

/// API-SSL settings of a session.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// The name the certificate must carry (with [`TlsTrust::Ca`]).
    pub server_name: String,
    pub trust: TlsTrust,
}

/// Why a transport could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: SocketAddr, after: Duration },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A byte stream to a router, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// SHA-256 fingerprint of a DER certificate, as used by [`TlsTrust::Pinned`].
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

/// Accepts exactly one certificate (by fingerprint) and verifies the handshake signature
/// made with its key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(trust: &TlsTrust) -> Result<ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // RouterOS 6 speaks TLS 1.2 only; both versions are allowed.
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsConfig(e.to_string()))?;
    let config = match trust {
        TlsTrust::Ca(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| TransportError::TlsConfig(format!("bad CA certificate: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin: *pin,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Opens a TCP connection (from `source` when given), and TLS over it when `tls` is
/// given, within `connect_timeout` for the whole of it.
pub async fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    tls: Option<&TlsOptions>,
    connect_timeout: Duration,
) -> Result<Box<dyn Stream>, TransportError> {
    let attempt = async {
        let tcp: TcpStream = crate::source_address::tcp_connect(addr, source)
            .await
            .map_err(|source| TransportError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = tls else {
            return Ok(Box::new(tcp) as Box<dyn Stream>);
        };
        let config = client_config(&tls.trust)?;
        let name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
            TransportError::TlsConfig(format!("server name {:?}: {e}", tls.server_name))
        })?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|source| TransportError::Handshake { addr, source })?;
        Ok(Box::new(stream) as Box<dyn Stream>)
    };
    timeout(connect_timeout, attempt)
        .await
        .map_err(|_| TransportError::ConnectTimeout {
            addr,
            after: connect_timeout,
        })?
}
