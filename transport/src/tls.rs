//! rustls configurations for mutual TLS, built from PEM files of the deployment PKI.
//!
//! Both directions verify the peer against the CA and its revocation list (`crl.pem`
//! beside the CA bundle, required: a lost file must not read as "nothing revoked"), and
//! count refused peers by reason.

use crate::refusal::{CountingClientVerifier, CountingServerVerifier, RefusalCounters};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why TLS material could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no {what}")]
    Missing { path: PathBuf, what: &'static str },
    #[error("TLS configuration ({what}): {source}")]
    Config {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration (peer verifier): {0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
    #[error("TLS configuration not usable for QUIC: {0}")]
    Quic(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error(
        "{0} is missing: without the CA's revocation list a revoked certificate would pass; `ispvm pki crl` writes an empty one"
    )]
    NoCrl(PathBuf),
}

/// A CA to trust plus this process's own certificate chain and key.
#[derive(Debug)]
pub struct TlsMaterial {
    pub ca: Vec<CertificateDer<'static>>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Revocation lists of the CA; a peer whose certificate is listed is refused.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// Where the revocation list is re-read from (`crl.pem` beside the CA bundle);
    /// `None` for material built in memory.
    pub crl_path: Option<PathBuf>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            crls: self.crls.clone(),
            crl_path: self.crl_path.clone(),
        }
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

/// The revocation list at `path`, which must exist (it may list nothing).
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    if !path.exists() {
        return Err(TlsError::NoCrl(path.to_owned()));
    }
    read_crls(path)
}

impl TlsMaterial {
    /// Loads the CA bundle, the certificate chain and the private key from PEM files, and
    /// the CA's revocation list from `crl.pem` beside the CA bundle (where `ispvm pki`
    /// writes it), so revocation needs no extra setting. A missing list is an error.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
            path: key.to_owned(),
            source,
        })?;
        let crl = ca.with_file_name("crl.pem");
        let crls = load_crls(&crl)?;
        Ok(TlsMaterial {
            ca: read_certs(ca)?,
            chain: read_certs(cert)?,
            key: key_der,
            crls,
            crl_path: Some(crl),
        })
    }

    /// This material with the revocation list as the file holds it now, when that
    /// differs from the list in force; `None` when nothing changed. A missing file is
    /// an error (the list in force stays).
    pub fn with_current_crls(&self) -> Result<Option<TlsMaterial>, TlsError> {
        let Some(path) = &self.crl_path else {
            return Ok(None);
        };
        let crls = load_crls(path)?;
        if crls == self.crls {
            return Ok(None);
        }
        let mut material = self.clone();
        material.crls = crls;
        Ok(Some(material))
    }

    /// Loads `<dir>/ca.pem`, `<dir>/<name>.pem` and `<dir>/<name>.key`, the layout
    /// `ispvm pki` writes.
    pub fn load_from_pki_dir(dir: &Path, name: &str) -> Result<Self, TlsError> {
        Self::load(
            &dir.join("ca.pem"),
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
        )
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in &self.ca {
            roots.add(ca.clone()).map_err(|source| TlsError::Config {
                what: "CA certificate",
                source,
            })?;
        }
        Ok(roots)
    }

    /// A server configuration that requires a client certificate issued by the CA.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
        self.server_config_counting(alpn, &Arc::default())
    }

    /// [`TlsMaterial::server_config`], counting refused clients into `refusals`.
    pub fn server_config_counting(
        &self,
        alpn: &[&[u8]],
        refusals: &Arc<RefusalCounters>,
    ) -> Result<ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .with_crls(self.crls.iter().cloned())
                .build()
                .map_err(TlsError::Verifier)?;
        let verifier = Arc::new(CountingClientVerifier {
            inner,
            counters: refusals.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|source| TlsError::Config {
                what: "protocol versions",
                source,
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|source| TlsError::Config {
                what: "own certificate and key",
                source,
            })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// A client configuration that trusts only the CA and presents our certificate.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
        self.client_config_counting(alpn, &Arc::default())
    }

    /// [`TlsMaterial::client_config`], counting refused servers into `refusals`.
    pub fn client_config_counting(
        &self,
        alpn: &[&[u8]],
        refusals: &Arc<RefusalCounters>,
    ) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .with_crls(self.crls.iter().cloned())
                .build()
                .map_err(TlsError::Verifier)?;
        let verifier = Arc::new(CountingServerVerifier {
            inner,
            counters: refusals.clone(),
        });
        // `dangerous()` is rustls's door to a custom verifier; ours still runs the full
        // WebPKI verification (CA, validity, CRL, server name) and only adds counting.
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|source| TlsError::Config {
                what: "protocol versions",
                source,
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|source| TlsError::Config {
                what: "own certificate and key",
                source,
            })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}
