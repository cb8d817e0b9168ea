//! The development PKI: a private CA and the certificates it issues to the server and to
//! agents, for QUIC and HTTPS with mutual TLS.
//!
//! Layout of a PKI directory: `ca.pem`, `ca.key`, and `<name>.pem` / `<name>.key` per
//! issued certificate. Keys are written with mode 0600. An agent certificate carries the
//! agent id as its common name and the tenant as its organization; the server refuses a
//! batch whose agent or tenant differs from the certificate that carried it.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

fn validity(params: &mut CertificateParams, days: u32) {
    let now = SystemTime::now();
    // An hour of slack for clocks that are a little behind.
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + Duration::from_secs(u64::from(days) * 86_400)).into();
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
        validity(&mut params, days);
        let cert = params.self_signed(&key)?;
        write_new(&self.ca_key_path(), &key.serialize_pem(), true)?;
        write_new(&self.ca_cert_path(), &cert.pem(), false)
    }

    /// Issues a certificate signed by the CA. `tenant` goes into the organization of an
    /// agent certificate; `dns` and `ips` become subject alternative names (a server
    /// certificate needs the names clients connect to).
    pub fn issue(
        &self,
        kind: CertKind,
        name: &str,
        tenant: Option<&str>,
        dns: &[String],
        ips: &[IpAddr],
        days: u32,
    ) -> Result<Issued, PkiError> {
        check_name(name)?;
        if let Some(t) = tenant {
            check_name(t)?;
        }
        if !self.has_ca() {
            return Err(PkiError::NoCa(self.dir.clone()));
        }
        let out = self.paths(name);
        for p in [&out.cert, &out.key] {
            if p.exists() {
                return Err(PkiError::Exists(p.clone()));
            }
        }
        let ca_pem =
            std::fs::read_to_string(self.ca_cert_path()).map_err(io_err(&self.ca_cert_path()))?;
        let ca_key_pem =
            std::fs::read_to_string(self.ca_key_path()).map_err(io_err(&self.ca_key_path()))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)?;

        let mut sans: Vec<String> = dns.to_vec();
        if sans.is_empty() {
            sans.push(name.to_owned());
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
        validity(&mut params, days);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write_new(&out.key, &key.serialize_pem(), true)?;
        write_new(&out.cert, &cert.pem(), false)?;
        Ok(out)
    }

    /// Issues a certificate unless one with that name exists (used by the demo's first
    /// start; a second start reuses what the first made).
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
            return Ok(paths);
        }
        self.issue(kind, name, tenant, dns, ips, 825)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_cluster::{PeerIdentity, TlsMaterial};

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
    fn issue_without_ca_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(dir.path());
        assert!(matches!(
            pki.issue(CertKind::Server, "srv", None, &[], &[], 10),
            Err(PkiError::NoCa(_))
        ));
    }
}
