//! Who is on the other end of a connection, read from its verified certificate.
//!
//! The dev PKI (`ispvm pki`) puts the agent id in the certificate's common name and the
//! tenant in its organization, so the server can refuse a batch that claims another
//! agent or tenant than the certificate that carried it.

use rustls::pki_types::CertificateDer;

/// The identity a verified peer certificate states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common name: the agent id (or server name).
    pub common_name: String,
    /// Subject organization: the tenant id, when the certificate is tenant-bound.
    pub organization: Option<String>,
    /// Certificate expiry, Unix seconds.
    pub not_after: i64,
}

/// A peer certificate that does not state an identity we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("the peer certificate cannot be parsed: {0}")]
    Unparsable(String),
    #[error("the peer certificate has no common name")]
    NoCommonName,
}

impl PeerIdentity {
    /// Reads the identity of a DER certificate (already verified by rustls).
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| IdentityError::Unparsable(e.to_string()))?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or(IdentityError::NoCommonName)?
            .to_owned();
        let organization = subject
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok())
            .map(str::to_owned);
        Ok(PeerIdentity {
            common_name,
            organization,
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// The identity of the peer of a QUIC connection (its leaf certificate).
    pub fn of_connection(conn: &quinn::Connection) -> Result<Self, IdentityError> {
        let certs = conn
            .peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or(IdentityError::NoCertificate)?;
        let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
        Self::from_der(leaf)
    }
}
