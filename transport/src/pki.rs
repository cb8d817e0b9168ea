//! The development PKI: a private CA and the certificates it issues to the server and to
//! agents, for QUIC and HTTPS with mutual TLS.
//!
//! Layout of a PKI directory: `ca.pem`, `ca.key`, and `<name>.pem` / `<name>.key` per
//! issued certificate. Keys are written with mode 0600. An agent certificate carries the
//! agent id as its common name and the tenant as its organization; the server refuses a
//! batch whose agent or tenant differs from the certificate that carried it.
//!
//! Agent certificates also carry [`GOSSIP_DNS_NAME`], the name gossip peers use as SNI
//! (they know each other only by address). Revoked certificates are listed in `crl.pem`,
//! a CRL signed by the CA that every TLS configuration of [`crate::tls`] enforces.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// DNS name every agent certificate carries besides its agent id: gossip peers connect
/// knowing only an address, so they all use this name as SNI and learn who answered from
/// the certificate's subject after the handshake.
pub const GOSSIP_DNS_NAME: &str = "gossip.ispvm.internal";

/// How long a freshly signed CRL is meant to be used before it is re-signed.
const CRL_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// The server: serves QUIC ingest and HTTPS.
    Server,
    /// An agent: client of the server, and both ends of gossip with other agents.
    Agent,
}

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("no CA in {0}: run `ispvm pki init` first")]
    NoCa(PathBuf),
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("invalid name {0:?}: use letters, digits, '.', '_' and '-'")]
    BadName(String),
    #[error("{path} is not a usable certificate or CRL: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the validity window ends before it starts")]
    BadValidity,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

fn check_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadName(name.to_owned()))
    }
}

/// Writes a file that must not exist yet; keys get mode 0600.
fn write_new(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            PkiError::Exists(path.to_owned())
        } else {
            PkiError::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    })?;
    file.write_all(contents.as_bytes()).map_err(io_err(path))
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour ago (slack for clocks a little behind) to `days` from now.
    pub fn days_from_now(days: u32) -> Self {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    fn apply(&self, params: &mut CertificateParams) -> Result<(), PkiError> {
        if self.not_after <= self.not_before {
            return Err(PkiError::BadValidity);
        }
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
        Ok(())
    }
}

fn unreadable(path: &Path, reason: impl std::fmt::Display) -> PkiError {
    PkiError::Unreadable {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Whether the certificate at `path` lists `name` among its DNS subject alternative
/// names.
fn has_dns_name(path: &Path, name: &str) -> Result<bool, PkiError> {
    let der = CertificateDer::from_pem_file(path).map_err(|e| unreadable(path, e))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| unreadable(path, e))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| unreadable(path, e))?;
    Ok(sans.is_some_and(|ext| {
        ext.value
            .general_names
            .iter()
            .any(|n| matches!(n, x509_parser::extensions::GeneralName::DNSName(d) if *d == name))
    }))
}

fn unix_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// A PKI directory.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// Paths of one issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Pki { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// The CA's certificate revocation list (written empty by `init`).
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    pub fn has_ca(&self) -> bool {
        self.ca_cert_path().exists() && self.ca_key_path().exists()
    }

    /// Paths a certificate named `name` has (or will have).
    pub fn paths(&self, name: &str) -> Issued {
        Issued {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// Creates the CA. Refuses to overwrite an existing one.
    pub fn init(&self, ca_name: &str, days: u32) -> Result<(), PkiError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        if self.ca_cert_path().exists() {
            return Err(PkiError::Exists(self.ca_cert_path()));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ISPVisualMonitor");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::days_from_now(days).apply(&mut params)?;
        let cert = params.self_signed(&key)?;
        write_new(&self.ca_key_path(), &key.serialize_pem(), true)?;
        write_new(&self.ca_cert_path(), &cert.pem(), false)?;
        // An empty list from the start: a missing one is refused by every loader, so
        // a lost file can never pass for "nothing revoked".
        self.publish_crl(Vec::new())
    }

    /// Re-signs `crl.pem` with the revocations it holds (none when it is missing):
    /// for directories made before `init` wrote one, and to renew its `next_update`.
    pub fn refresh_crl(&self) -> Result<(), PkiError> {
        let revoked = self.revoked_entries()?;
        self.publish_crl(revoked)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        if !self.has_ca() {
            return Err(PkiError::NoCa(self.dir.clone()));
        }
        let ca_pem =
            std::fs::read_to_string(self.ca_cert_path()).map_err(io_err(&self.ca_cert_path()))?;
        let ca_key_pem =
            std::fs::read_to_string(self.ca_key_path()).map_err(io_err(&self.ca_key_path()))?;
        Ok(Issuer::from_ca_cert_pem(
            &ca_pem,
            KeyPair::from_pem(&ca_key_pem)?,
        )?)
    }

    /// Issues a certificate signed by the CA, valid for `days` from now. `tenant` goes
    /// into the organization of an agent certificate; `dns` and `ips` become subject
    /// alternative names (a server certificate needs the names clients connect to).
    pub fn issue(
        &self,
        kind: CertKind,
        name: &str,
        tenant: Option<&str>,
        dns: &[String],
        ips: &[IpAddr],
        days: u32,
    ) -> Result<Issued, PkiError> {
        self.issue_valid(kind, name, tenant, dns, ips, Validity::days_from_now(days))
    }

    /// [`Pki::issue`] with an explicit validity window (certificate rollovers planned
    /// ahead, and tests of expired certificates).
    pub fn issue_valid(
        &self,
        kind: CertKind,
        name: &str,
        tenant: Option<&str>,
        dns: &[String],
        ips: &[IpAddr],
        validity: Validity,
    ) -> Result<Issued, PkiError> {
        check_name(name)?;
        if let Some(t) = tenant {
            check_name(t)?;
        }
        let issuer = self.issuer()?;
        let out = self.paths(name);
        for p in [&out.cert, &out.key] {
            if p.exists() {
                return Err(PkiError::Exists(p.clone()));
            }
        }
        let mut sans: Vec<String> = dns.to_vec();
        if sans.is_empty() {
            sans.push(name.to_owned());
        }
        if kind == CertKind::Agent && !sans.iter().any(|s| s == GOSSIP_DNS_NAME) {
            sans.push(GOSSIP_DNS_NAME.to_owned());
        }
        let mut params = CertificateParams::new(sans)?;
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(t) = tenant {
            params.distinguished_name.push(DnType::OrganizationName, t);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match kind {
            CertKind::Server => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            CertKind::Agent => vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ],
        };
        validity.apply(&mut params)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write_new(&out.key, &key.serialize_pem(), true)?;
        write_new(&out.cert, &cert.pem(), false)?;
        Ok(out)
    }

    /// Issues a certificate unless one with that name exists (used by the demo's first
    /// start; a second start reuses what the first made). An agent certificate made
    /// before agents gossiped (without [`GOSSIP_DNS_NAME`]) is replaced, key and all,
    /// since gossip peers would refuse it.
    pub fn ensure(
        &self,
        kind: CertKind,
        name: &str,
        tenant: Option<&str>,
        dns: &[String],
        ips: &[IpAddr],
    ) -> Result<Issued, PkiError> {
        let paths = self.paths(name);
        if paths.cert.exists() && paths.key.exists() {
            if kind != CertKind::Agent || has_dns_name(&paths.cert, GOSSIP_DNS_NAME)? {
                return Ok(paths);
            }
            tracing::info!(
                agent = name,
                "agent certificate lacks the gossip name; issuing a new one"
            );
            for f in [&paths.cert, &paths.key] {
                std::fs::remove_file(f).map_err(io_err(f))?;
            }
        }
        self.issue(kind, name, tenant, dns, ips, 825)
    }

    /// Revokes the certificate `name` (its `<name>.pem` must still be in the directory)
    /// by re-signing `crl.pem` with its serial added. Revoking twice is harmless. Every
    /// process that loads this directory's TLS material refuses the certificate from its
    /// next start on.
    pub fn revoke(&self, name: &str) -> Result<(), PkiError> {
        check_name(name)?;
        let cert_path = self.paths(name).cert;
        let der =
            CertificateDer::from_pem_file(&cert_path).map_err(|e| unreadable(&cert_path, e))?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| unreadable(&cert_path, e))?;
        let serial = cert.tbs_certificate.raw_serial().to_vec();

        let mut revoked = self.revoked_entries()?;
        if revoked
            .iter()
            .any(|r| r.serial_number.as_ref() == serial.as_slice())
        {
            return Ok(());
        }
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: SystemTime::now().into(),
            reason_code: Some(RevocationReason::Unspecified),
            invalidity_date: None,
        });
        self.publish_crl(revoked)
    }

    /// Signs and writes `crl.pem` listing `revoked`.
    fn publish_crl(&self, revoked: Vec<RevokedCertParams>) -> Result<(), PkiError> {
        let issuer = self.issuer()?;
        let now = SystemTime::now();
        let crl_number = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let crl = CertificateRevocationListParams {
            this_update: now.into(),
            next_update: (now + CRL_VALIDITY).into(),
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)?;
        // Write beside and rename, so a reader never sees half a CRL.
        let tmp = self.dir.join("crl.pem.tmp");
        let _ = std::fs::remove_file(&tmp);
        write_new(&tmp, &crl.pem()?, false)?;
        std::fs::rename(&tmp, self.crl_path()).map_err(io_err(&self.crl_path()))
    }

    /// The entries of the current CRL, to carry over into the next one.
    fn revoked_entries(&self) -> Result<Vec<RevokedCertParams>, PkiError> {
        let path = self.crl_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let der =
            CertificateRevocationListDer::from_pem_file(&path).map_err(|e| unreadable(&path, e))?;
        let (_, crl) = x509_parser::parse_x509_crl(&der).map_err(|e| unreadable(&path, e))?;
        Ok(crl
            .iter_revoked_certificates()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.raw_serial()),
                revocation_time: unix_time(r.revocation_date.timestamp()).into(),
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PeerIdentity, TlsMaterial};

    #[test]
    fn init_issue_and_read_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        pki.init("test CA", 30).expect("init");
        assert!(matches!(pki.init("again", 30), Err(PkiError::Exists(_))));
        let issued = pki
            .issue(CertKind::Agent, "agent-a", Some("acme"), &[], &[], 10)
            .expect("issue");
        let material =
            TlsMaterial::load(&pki.ca_cert_path(), &issued.cert, &issued.key).expect("load");
        let id = PeerIdentity::from_der(&material.chain[0]).expect("identity");
        assert_eq!(id.common_name, "agent-a");
        assert_eq!(id.organization.as_deref(), Some("acme"));
        assert!(matches!(
            pki.issue(CertKind::Agent, "agent-a", None, &[], &[], 10),
            Err(PkiError::Exists(_))
        ));
        assert!(matches!(
            pki.issue(CertKind::Agent, "../evil", None, &[], &[], 10),
            Err(PkiError::BadName(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&issued.key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn revocation_list_accumulates_and_is_loaded_beside_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        pki.init("test CA", 30).expect("init");
        for name in ["a1", "a2"] {
            pki.issue(CertKind::Agent, name, Some("acme"), &[], &[], 10)
                .expect("issue");
        }
        assert!(matches!(
            pki.revoke("nobody"),
            Err(PkiError::Unreadable { .. })
        ));
        let empty = std::fs::read(pki.crl_path()).expect("init writes an empty list");
        assert_eq!(
            std::fs::read(pki.crl_path()).expect("crl"),
            empty,
            "a failed revoke writes nothing"
        );
        assert!(pki.revoked_entries().expect("entries").is_empty());
        pki.revoke("a1").expect("revoke a1");
        pki.revoke("a2").expect("revoke a2");
        pki.revoke("a1").expect("again");
        assert_eq!(pki.revoked_entries().expect("entries").len(), 2);
        let material = TlsMaterial::load_from_pki_dir(pki.dir(), "a1").expect("load");
        assert_eq!(material.crls.len(), 1);
        let id = PeerIdentity::from_der(&material.chain[0]).expect("identity");
        assert_eq!(id.organization.as_deref(), Some("acme"));
        assert!(matches!(
            pki.issue_valid(
                CertKind::Agent,
                "bad",
                None,
                &[],
                &[],
                Validity {
                    not_before: SystemTime::now(),
                    not_after: SystemTime::now() - Duration::from_secs(1),
                },
            ),
            Err(PkiError::BadValidity)
        ));
    }

    #[test]
    fn ensure_reuses_agent_certificates_but_replaces_ones_without_the_gossip_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        pki.init("test CA", 30).expect("init");
        let ensure = || {
            pki.ensure(CertKind::Agent, "a1", Some("acme"), &[], &[])
                .expect("ensure")
        };
        let first = ensure();
        assert!(has_dns_name(&first.cert, GOSSIP_DNS_NAME).expect("read"));
        let pem = std::fs::read(&first.cert).expect("read");
        assert_eq!(std::fs::read(&ensure().cert).expect("read"), pem, "reused");
        // What an agent certificate looked like before gossip: no such name.
        let old = pki
            .issue(CertKind::Server, "old", None, &["a1".into()], &[], 10)
            .expect("issue");
        std::fs::copy(&old.cert, &first.cert).expect("copy");
        std::fs::copy(&old.key, &first.key).expect("copy");
        assert!(!has_dns_name(&first.cert, GOSSIP_DNS_NAME).expect("read"));
        let again = ensure();
        assert!(has_dns_name(&again.cert, GOSSIP_DNS_NAME).expect("read"));
        TlsMaterial::load(&pki.ca_cert_path(), &again.cert, &again.key).expect("key matches");
    }

    #[test]
    fn a_missing_revocation_list_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        pki.init("test CA", 30).expect("init");
        pki.issue(CertKind::Agent, "a1", Some("acme"), &[], &[], 10)
            .expect("issue");
        pki.revoke("a1").expect("revoke");
        let loaded = TlsMaterial::load_from_pki_dir(pki.dir(), "a1").expect("load");
        std::fs::remove_file(pki.crl_path()).expect("lose the list");
        let err = TlsMaterial::load_from_pki_dir(pki.dir(), "a1").expect_err("refused");
        assert!(matches!(err, crate::tls::TlsError::NoCrl(_)), "{err}");
        // A running process keeps the list in force rather than forgetting it.
        assert!(loaded.with_current_crls().is_err());
        // `ispvm pki crl` writes a new, empty one.
        pki.refresh_crl().expect("refresh");
        let again = TlsMaterial::load_from_pki_dir(pki.dir(), "a1").expect("load");
        assert_eq!(again.crls.len(), 1);
        assert!(pki.revoked_entries().expect("entries").is_empty());
    }

    #[test]
    fn issue_without_ca_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        assert!(matches!(
            pki.issue(CertKind::Server, "srv", None, &[], &[], 10),
            Err(PkiError::NoCa(_))
        ));
    }
}
