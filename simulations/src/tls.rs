//! API-SSL: the RouterOS API over TLS (port 8729 on a real router).
//!
//! A virtual ISP makes its own private CA when it starts and gives every router a
//! certificate for `127.0.0.1` (and the bind address) and `<router id>.sim.invalid`, so a
//! client can be tested both trusting the CA (works) and trusting another one (refused),
//! without any file on disk. `.invalid` is reserved (RFC 6761): the names can never
//! resolve to a real host.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The private CA of one virtual ISP.
pub struct SimCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for SimCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCa").finish_non_exhaustive()
    }
}

impl SimCa {
    /// A new CA with a fresh key.
    pub fn new() -> Result<SimCa, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "ISPVisualMonitor simulated routers CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(SimCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The CA certificate, PEM encoded: what a client must trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A TLS acceptor presenting a certificate for router `router_id` at `bind_ip`.
    pub fn acceptor_for(&self, router_id: &str, bind_ip: IpAddr) -> Result<TlsAcceptor, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![format!("{router_id}.sim.invalid")])?;
        params
            .distinguished_name
            .push(DnType::CommonName, router_id);
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        if bind_ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            params.subject_alt_names.push(SanType::IpAddress(bind_ip));
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        let config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
