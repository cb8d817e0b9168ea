//! Peers refused at the TLS handshake (or right after it), counted by reason.
//!
//! rustls reports a bad peer certificate as an alert that the other side sees only as a
//! closed connection, and quinn folds it into a string. Wrapping the WebPKI verifiers lets
//! us count each refusal with a typed reason at the place the decision is made, so an SRE
//! can tell a peer from another CA from an expired or a revoked one on `/metrics` and in
//! the cluster-state API.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The certificate does not chain to the deployment CA.
    UnknownCa,
    /// The certificate's validity ended.
    Expired,
    /// The certificate's validity has not begun.
    NotYetValid,
    /// The certificate is on the CA's revocation list.
    Revoked,
    /// A valid certificate of another tenant, or one that states no usable identity.
    WrongIdentity,
    /// Any other certificate problem (bad encoding, wrong key usage, bad signature).
    Other,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::UnknownCa,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::Revoked,
        Refusal::WrongIdentity,
        Refusal::Other,
    ];

    /// Label value used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownCa => "unknown_ca",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Revoked => "revoked",
            Refusal::WrongIdentity => "wrong_identity",
            Refusal::Other => "other",
        }
    }

    /// The reason a rustls verification error stands for.
    pub fn of_error(error: &Error) -> Refusal {
        match error {
            Error::InvalidCertificate(e) => match e {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    Refusal::UnknownCa
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Refusal::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Refusal::NotYetValid
                }
                CertificateError::Revoked => Refusal::Revoked,
                _ => Refusal::Other,
            },
            _ => Refusal::Other,
        }
    }
}

/// Refusal counters shared by every TLS configuration of one process (or one gossip node).
#[derive(Debug, Default)]
pub struct RefusalCounters {
    counts: [AtomicU64; Refusal::ALL.len()],
}

impl RefusalCounters {
    pub fn record(&self, reason: Refusal) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: Refusal) -> u64 {
        self.counts[reason as usize].load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        Refusal::ALL.iter().map(|r| self.get(*r)).sum()
    }

    /// Every reason with its count (zeros included, so dashboards see the series).
    pub fn snapshot(&self) -> Vec<(Refusal, u64)> {
        Refusal::ALL.iter().map(|r| (*r, self.get(*r))).collect()
    }
}

fn counted<T>(result: Result<T, Error>, counters: &RefusalCounters) -> Result<T, Error> {
    if let Err(e) = &result {
        let reason = Refusal::of_error(e);
        counters.record(reason);
        tracing::warn!(reason = reason.as_str(), error = %e, "peer certificate refused");
    }
    result
}

/// A client-certificate verifier (server side of a handshake) that counts refusals.
#[derive(Debug)]
pub struct CountingClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub counters: Arc<RefusalCounters>,
}

impl ClientCertVerifier for CountingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        counted(
            self.inner
                .verify_client_cert(end_entity, intermediates, now),
            &self.counters,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        counted(
            self.inner.verify_tls12_signature(message, cert, dss),
            &self.counters,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        counted(
            self.inner.verify_tls13_signature(message, cert, dss),
            &self.counters,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

/// A server-certificate verifier (client side of a handshake) that counts refusals.
#[derive(Debug)]
pub struct CountingServerVerifier {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub counters: Arc<RefusalCounters>,
}

impl ServerCertVerifier for CountingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        counted(
            self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            &self.counters,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        counted(
            self.inner.verify_tls12_signature(message, cert, dss),
            &self.counters,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        counted(
            self.inner.verify_tls13_signature(message, cert, dss),
            &self.counters,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_reasons_and_count() {
        let c = RefusalCounters::default();
        for (err, reason) in [
            (CertificateError::UnknownIssuer, Refusal::UnknownCa),
            (CertificateError::Expired, Refusal::Expired),
            (CertificateError::Revoked, Refusal::Revoked),
            (CertificateError::NotValidYet, Refusal::NotYetValid),
            (CertificateError::BadEncoding, Refusal::Other),
        ] {
            let e = Error::InvalidCertificate(err);
            assert_eq!(Refusal::of_error(&e), reason);
            let _ = counted::<()>(Err(e), &c);
            assert_eq!(c.get(reason), 1);
        }
        let _ = counted(Ok(()), &c);
        assert_eq!(c.total(), 5);
        assert_eq!(c.snapshot().len(), Refusal::ALL.len());
    }
}
