//! The server's configuration: one TOML file, every key overridable from the environment
//! with `ISPVM_SECTION__KEY` (see `ispvm_proto::settings`).

use ispvm_proto::Limits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "ISPVM_";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Where the embedded database and the PKI live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://<data_dir>/ispvm.db`.
    pub database_url: Option<String>,
    /// The tenant the API shows when a request names none (until users and roles arrive,
    /// see docs/decisions/0001-foundation.md).
    pub default_tenant: String,
    pub http: HttpConfig,
    pub quic: QuicConfig,
    /// HTTPS ingest (JSON, mutual TLS): the agents' fallback when UDP is blocked.
    pub https: HttpsIngestConfig,
    /// PEM files; default to `<data_dir>/pki/{ca.pem,server.pem,server.key}`.
    pub tls: Option<TlsPaths>,
    pub limits: Limits,
    /// Batches per second each agent may send (`overloaded` / 429 beyond).
    pub rate: crate::ingest::rate::RateLimit,
    /// A device with no `device.up` report for this long shows as `unknown`.
    pub stale_after_ms: i64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("/var/lib/ispvm"),
            database_url: None,
            default_tenant: "default".into(),
            http: HttpConfig::default(),
            quic: QuicConfig::default(),
            https: HttpsIngestConfig::default(),
            tls: None,
            limits: Limits::default(),
            rate: Default::default(),
            stale_after_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct QuicConfig {
    /// UDP address of the agent ingest endpoint.
    pub listen: SocketAddr,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpsIngestConfig {
    /// TCP address of `POST /v1/ingest`; `None` turns HTTPS ingest off.
    pub listen: Option<SocketAddr>,
}

impl Default for HttpsIngestConfig {
    fn default() -> Self {
        HttpsIngestConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
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
}

impl ServerConfig {
    /// Reads `path` (if given) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Ok(ispvm_proto::settings::load(
            &text,
            ENV_PREFIX,
            std::env::vars(),
        )?)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ispvm.db").display()))
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    pub fn tls_paths(&self) -> TlsPaths {
        self.tls.clone().unwrap_or_else(|| {
            let dir = self.pki_dir();
            TlsPaths {
                ca: dir.join("ca.pem"),
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses_and_env_overrides_it() {
        let text = include_str!("../../deploy/server.example.toml");
        let config: ServerConfig = ispvm_proto::settings::load(
            text,
            ENV_PREFIX,
            vec![("ISPVM_HTTP__LISTEN".to_owned(), "0.0.0.0:9999".to_owned())],
        )
        .expect("example config");
        assert_eq!(config.http.listen, SocketAddr::from(([0, 0, 0, 0], 9999)));
        assert_eq!(config.limits.max_samples, 50_000);
        assert_eq!(config.database_url(), "sqlite:///var/lib/ispvm/ispvm.db");
    }
}
