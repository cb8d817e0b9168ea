//! The agent's configuration: one TOML file, every key overridable from the environment
//! with `ISPVM_AGENT_SECTION__KEY` (see `ispvm_proto::settings`).

use ispvm_proto::DeviceRole;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "ISPVM_AGENT_";

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AgentConfig {
    /// This agent's id; must equal the common name of its certificate.
    pub agent_id: String,
    /// The tenant; must equal the organization of its certificate.
    pub tenant_id: String,
    /// The PoP the agent sits in; routers default to it.
    pub site: String,
    /// Where the agent keeps state across restarts.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsPaths,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub uplink: UplinkConfig,
    #[serde(default)]
    pub buffer: BufferSettings,
    #[serde(default)]
    pub routers: Vec<RouterConfig>,
}

/// The crash-safe disk buffer batches wait in until the server acknowledges them
/// (`<data_dir>/buffer`); see docs/disk-buffer.md.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct BufferSettings {
    /// Cap on the buffer's disk use; beyond it the oldest batches are dropped and a
    /// `buffer_overflow` event says how many.
    pub max_bytes: u64,
    pub segment_max_bytes: u64,
    /// `always` (each batch on stable storage before delivery; the default), `interval`
    /// (at most one flush per `fsync_interval_ms`) or `never` (the OS decides).
    pub fsync: FsyncSetting,
    pub fsync_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncSetting {
    Always,
    Interval,
    Never,
}

impl Default for BufferSettings {
    fn default() -> Self {
        BufferSettings {
            max_bytes: 1 << 30,
            segment_max_bytes: 16 << 20,
            fsync: FsyncSetting::Always,
            fsync_interval_ms: 1_000,
        }
    }
}

impl BufferSettings {
    pub fn buffer_config(&self) -> crate::buffer::BufferConfig {
        use crate::buffer::{BufferConfig, FsyncPolicy};
        BufferConfig {
            segment_max_bytes: self.segment_max_bytes,
            max_bytes: self.max_bytes,
            fsync: match self.fsync {
                FsyncSetting::Always => FsyncPolicy::Always,
                FsyncSetting::Interval => {
                    FsyncPolicy::Interval(Duration::from_millis(self.fsync_interval_ms.max(1)))
                }
                FsyncSetting::Never => FsyncPolicy::Never,
            },
            ..BufferConfig::default()
        }
    }
}

/// Where the server's QUIC ingest listens.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// Name the server certificate must carry.
    pub server_name: String,
}

/// PEM files of the deployment PKI.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `/healthz`, `/metrics` and `/v1/state`.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct PollConfig {
    /// Interval of the fast tier (reachability, CPU, interface state and rates).
    pub interval_ms: u64,
    /// Largest random delay added before a router's first poll, spreading load.
    pub jitter_ms: u64,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    /// Commands in flight at once on one router's session (ARCHITECTURE §3: 1–3).
    pub max_in_flight: usize,
    /// Consecutive failed polls that open a router's circuit breaker.
    pub breaker_failures: u32,
    /// First open period of the breaker; doubles per failed probe up to the max.
    pub breaker_open_ms: u64,
    pub breaker_open_max_ms: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval_ms: 10_000,
            jitter_ms: 2_000,
            connect_timeout_ms: 5_000,
            command_timeout_ms: 10_000,
            max_in_flight: 3,
            breaker_failures: 3,
            breaker_open_ms: 30_000,
            breaker_open_max_ms: 600_000,
        }
    }
}

impl PollConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(100))
    }

    pub fn breaker(&self) -> crate::breaker::BreakerConfig {
        crate::breaker::BreakerConfig {
            failure_threshold: self.breaker_failures,
            open_min: Duration::from_millis(self.breaker_open_ms),
            open_max: Duration::from_millis(self.breaker_open_max_ms.max(self.breaker_open_ms)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct UplinkConfig {
    /// How often collected data is cut into a batch and sent.
    pub flush_interval_ms: u64,
    /// Most samples in one batch; larger collections are split.
    pub max_batch_samples: usize,
    pub connect_timeout_ms: u64,
    pub exchange_timeout_ms: u64,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            flush_interval_ms: 1_000,
            max_batch_samples: 10_000,
            connect_timeout_ms: 5_000,
            exchange_timeout_ms: 10_000,
        }
    }
}

/// One router the agent polls over the RouterOS API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RouterConfig {
    /// Device key, unique within the tenant.
    pub key: String,
    /// RouterOS API address, `host:port`.
    pub address: SocketAddr,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub role: DeviceRole,
    /// Site of the router when not the agent's.
    #[serde(default)]
    pub site: Option<String>,
    /// API-SSL (port 8729) instead of the plain API.
    #[serde(default)]
    pub tls: Option<RouterTlsConfig>,
}

/// How to trust a router's API-SSL certificate: a CA, or one pinned certificate (the
/// usual case for the self-signed certificates RouterOS generates).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RouterTlsConfig {
    /// Name the certificate must carry when trusting a CA; defaults to the router key.
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file of the CA that issued the router certificates.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// SHA-256 fingerprint of the router certificate, hex (colons allowed).
    #[serde(default)]
    pub fingerprint_sha256: Option<String>,
}

impl RouterConfig {
    /// The session's TLS settings, read and checked (CA file, fingerprint).
    pub fn tls_options(&self) -> Result<Option<crate::routeros::TlsOptions>, ConfigError> {
        use crate::routeros::{TlsOptions, TlsTrust};
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let bad = |why: String| ConfigError::Invalid(format!("router {:?}: {why}", self.key));
        let trust = match (&tls.ca, &tls.fingerprint_sha256) {
            (Some(ca), None) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                let certs = CertificateDer::pem_file_iter(ca)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| bad(format!("cannot read CA {}: {e}", ca.display())))?;
                if certs.is_empty() {
                    return Err(bad(format!("{} holds no certificate", ca.display())));
                }
                TlsTrust::Ca(certs)
            }
            (None, Some(fp)) => {
                let hex_digits: String = fp.chars().filter(|c| *c != ':').collect();
                let bytes = hex::decode(&hex_digits)
                    .map_err(|e| bad(format!("fingerprint is not hex: {e}")))?;
                let pin: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| bad("a SHA-256 fingerprint is 32 bytes".into()))?;
                TlsTrust::Pinned(pin)
            }
            _ => {
                return Err(bad(
                    "tls needs exactly one of `ca` and `fingerprint_sha256`".into(),
                ));
            }
        };
        Ok(Some(TlsOptions {
            server_name: tls.server_name.clone().unwrap_or_else(|| self.key.clone()),
            trust,
        }))
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] ispvm_proto::settings::SettingsError),
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

impl AgentConfig {
    /// Reads `path` and applies environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: AgentConfig = ispvm_proto::settings::load(&text, ENV_PREFIX, std::env::vars())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: unique router keys, non-empty ids.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.agent_id.is_empty() || self.tenant_id.is_empty() {
            return Err(ConfigError::Invalid(
                "agent_id and tenant_id are required".into(),
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for r in &self.routers {
            if !keys.insert(&r.key) {
                return Err(ConfigError::Invalid(format!(
                    "router key {:?} appears twice",
                    r.key
                )));
            }
            r.tls_options()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../deploy/agent.example.toml");
        let config: AgentConfig =
            ispvm_proto::settings::load(text, ENV_PREFIX, Vec::new()).expect("example config");
        config.validate().expect("valid");
        assert_eq!(config.routers.len(), 1);
        assert_eq!(config.routers[0].role, DeviceRole::Core);
    }

    #[test]
    fn duplicate_router_keys_are_refused() {
        let text = include_str!("../../deploy/agent.example.toml");
        let mut config: AgentConfig =
            ispvm_proto::settings::load(text, ENV_PREFIX, Vec::new()).expect("example config");
        config.routers.push(config.routers[0].clone());
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn router_tls_needs_one_trust_anchor() {
        let text = include_str!("../../deploy/agent.example.toml");
        let mut config: AgentConfig =
            ispvm_proto::settings::load(text, ENV_PREFIX, Vec::new()).expect("example config");
        let fp = "AB:".repeat(31) + "AB";
        config.routers[0].tls = Some(RouterTlsConfig {
            server_name: None,
            ca: None,
            fingerprint_sha256: Some(fp),
        });
        config.validate().expect("pinned");
        let opts = config.routers[0]
            .tls_options()
            .expect("options")
            .expect("tls");
        assert!(matches!(opts.trust, crate::routeros::TlsTrust::Pinned(p) if p == [0xAB; 32]));
        config.routers[0].tls = Some(RouterTlsConfig {
            server_name: None,
            ca: None,
            fingerprint_sha256: Some("abcd".into()),
        });
        assert!(config.validate().is_err(), "short fingerprint");
        config.routers[0].tls = Some(RouterTlsConfig {
            server_name: None,
            ca: Some("/nonexistent/ca.pem".into()),
            fingerprint_sha256: None,
        });
        assert!(config.validate().is_err(), "unreadable CA");
    }
}
