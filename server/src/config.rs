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
    /// The tenant of the administrator a fresh installation creates (see docs/api.md);
    /// API requests always act in the tenant of their user.
    pub default_tenant: String,
    pub http: HttpConfig,
    pub quic: QuicConfig,
    /// HTTPS ingest (JSON, mutual TLS): the agents' fallback when UDP is blocked.
    pub https: HttpsIngestConfig,
    /// PEM files; default to `<data_dir>/pki/{ca.pem,server.pem,server.key}`.
    pub tls: Option<TlsPaths>,
    /// How often `crl.pem` beside the CA is re-read; a change closes every agent
    /// connection so revoked agents are cut off without a restart.
    pub crl_check_ms: u64,
    pub limits: Limits,
    /// Batches per second each agent may send (`overloaded` / 429 beyond).
    pub rate: crate::ingest::rate::RateLimit,
    /// A device with no `device.up` report for this long shows as `unknown`.
    pub stale_after_ms: i64,
    /// The time-series store: maintenance schedule, partitions, rollups.
    pub timeseries: TimeseriesConfig,
    /// Retention and quotas of every tenant that does not override them.
    pub tenant_defaults: crate::store::TenantSettings,
    /// Local users, sessions and login throttling.
    pub auth: AuthConfig,
    /// Key credential secrets are sealed with: base64 of 32 bytes. Set it from the
    /// environment (`ISPVM_MASTER_KEY`), not the file; never logged or serialised.
    pub master_key: Option<crate::store::MasterKey>,
    /// A file holding the master key instead (e.g. a systemd credential).
    pub master_key_file: Option<PathBuf>,
    /// `[actors]`: entity actors each tenant may hold, and when an idle one stops.
    pub actors: ispvm_actors::tree::ActorLimits,
    /// `[evaluation]`: how often alerts are evaluated and incidents correlated
    /// (`fast_ms` 10 s, `medium_ms` 60 s, `slow_ms` 5 min).
    pub evaluation: ispvm_actors::tree::SchedulePeriods,
    /// `[correlation]`: how fresh evidence must be and when incidents open.
    pub correlation: CorrelationConfig,
}

/// `[correlation]` of server.toml.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Freshness of evidence, silence of agents, congestion and collapse thresholds.
    pub evidence: ispvm_actors::correlate::BoardPolicy,
    /// Warnings that open an incident, and how soon a fault that comes back reopens it.
    pub incidents: ispvm_actors::incident::IncidentPolicy,
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
            crl_check_ms: 10_000,
            timeseries: TimeseriesConfig::default(),
            tenant_defaults: crate::store::TenantSettings::default(),
            auth: AuthConfig::default(),
            master_key: None,
            master_key_file: None,
            actors: Default::default(),
            evaluation: Default::default(),
            correlation: Default::default(),
        }
    }
}

/// `[auth]`: password hashing, sessions and login throttling (docs/api.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Lifetime of a bearer token from login.
    pub session_ttl_s: u64,
    /// argon2id cost of new password hashes (OWASP's minimum by default: 19 MiB, 2
    /// passes, 1 lane). Stored hashes keep the cost they were made with.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Failed logins in a row that lock an account; 0 never locks.
    pub lockout_after_failures: u32,
    /// How long a locked account refuses every login.
    pub lockout_s: u64,
    /// Password attempts (logins and password changes) one client address may make per
    /// minute (429 beyond).
    pub login_attempts_per_minute: u32,
    /// argon2 computations running at once, server-wide; more wait. Each holds
    /// `argon2_memory_kib` of memory and a core.
    pub argon2_max_concurrent: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_s: 12 * 3600,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            lockout_after_failures: 5,
            lockout_s: 15 * 60,
            login_attempts_per_minute: 30,
            argon2_max_concurrent: 2,
        }
    }
}

/// `[timeseries]`: how the server keeps its time-series store (docs/timeseries-store.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TimeseriesConfig {
    /// Seconds between maintenance runs (partitions ahead, rollups, retention); 0 turns
    /// them off. The first run comes one interval after start.
    pub maintenance_interval_s: u64,
    /// Daily partitions created ahead of today (PostgreSQL).
    pub partitions_ahead_days: u32,
    /// Samples arriving up to this late are rolled up by the regular runs; later ones
    /// mark their hour for recomputation.
    pub rollup_lateness_s: u64,
    /// Most raw time one run rolls up per level while catching up a backlog.
    pub rollup_max_catchup_s: u64,
    /// Samples stamped further ahead of the server's clock are dropped and counted.
    pub max_future_s: u64,
}

impl Default for TimeseriesConfig {
    fn default() -> Self {
        let p = crate::store::TimeseriesPolicy::default();
        TimeseriesConfig {
            maintenance_interval_s: 60,
            partitions_ahead_days: p.partitions_ahead_days,
            rollup_lateness_s: u64::try_from(p.rollup_lateness_ms / 1000).unwrap_or(120),
            rollup_max_catchup_s: u64::try_from(p.rollup_max_catchup_ms / 1000).unwrap_or(21_600),
            max_future_s: u64::try_from(p.max_future_ms / 1000).unwrap_or(3_600),
        }
    }
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// `[http]`: the API and UI listener and its limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Time a client has to send a request's headers; a connection that takes longer is
    /// closed (slowloris).
    pub header_read_timeout_ms: u64,
    /// Longest a request may take, its body and the handler included (408 beyond).
    pub request_timeout_ms: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed, as CIDR blocks
    /// (`10.0.0.0/8`, `192.0.2.1/32`). Empty: the client is the TCP peer, whatever the
    /// headers say.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 1_024,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct QuicConfig {
    /// UDP address of the agent ingest endpoint.
    pub listen: SocketAddr,
    /// Ingest connections one agent may hold open at once, QUIC and HTTPS together
    /// (it needs one; a second while it reconnects).
    pub max_connections_per_agent: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            max_connections_per_agent: crate::ingest::DEFAULT_CONNECTIONS_PER_AGENT,
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
    #[error("[{section}]: {reason}")]
    Invalid {
        section: &'static str,
        reason: String,
    },
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
        Self::from_toml(&text, std::env::vars())
    }

    /// Parses a configuration from TOML text with `vars` (environment variables) over
    /// it: what `load` does once the file is read.
    pub fn from_toml(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config: ServerConfig = ispvm_proto::settings::load(text, ENV_PREFIX, vars)?;
        if let Some(reason) = config.actors.problem() {
            return Err(ConfigError::Invalid {
                section: "actors",
                reason,
            });
        }
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ispvm.db").display()))
    }

    /// The time-series policy ingest and maintenance share.
    pub fn timeseries_policy(&self) -> crate::store::TimeseriesPolicy {
        let t = &self.timeseries;
        crate::store::TimeseriesPolicy {
            tenant_defaults: self.tenant_defaults,
            partitions_ahead_days: t.partitions_ahead_days,
            rollup_lateness_ms: secs_to_ms(t.rollup_lateness_s),
            rollup_max_catchup_ms: secs_to_ms(t.rollup_max_catchup_s),
            max_future_ms: secs_to_ms(t.max_future_s),
        }
    }

    /// The master key: `master_key` (from `ISPVM_MASTER_KEY` or the file), else the
    /// contents of `master_key_file`, else none (credential secrets cannot be stored).
    pub fn resolve_master_key(
        &self,
    ) -> Result<Option<crate::store::MasterKey>, crate::store::crypto::KeyError> {
        if let Some(k) = &self.master_key {
            return Ok(Some(k.clone()));
        }
        match &self.master_key_file {
            Some(path) => crate::store::MasterKey::from_file(path).map(Some),
            None => Ok(None),
        }
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

    #[test]
    fn actor_limits_come_from_the_actors_section_and_are_checked() {
        let config = ServerConfig::from_toml(
            "[actors]\nmax_routers = 500\n",
            vec![(
                "ISPVM_ACTORS__IDLE_AFTER_MS".to_owned(),
                "120000".to_owned(),
            )],
        )
        .expect("config");
        assert_eq!(config.actors.max_routers, 500);
        assert_eq!(config.actors.idle_after_ms, 120_000);
        assert_eq!(
            config.actors.max_probes,
            ispvm_actors::tree::ActorLimits::default().max_probes
        );
        let e = ServerConfig::from_toml("[actors]\nidle_after_ms = 10\n", Vec::new())
            .expect_err("an idle time below a minute is refused");
        assert!(e.to_string().contains("[actors]"), "{e}");
        assert!(ServerConfig::from_toml("[actors]\nmax_router = 5\n", Vec::new()).is_err());
    }

    #[test]
    fn timeseries_sections_override_the_defaults() {
        let config: ServerConfig = ispvm_proto::settings::load(
            "[timeseries]\nrollup_lateness_s = 300\n[tenant_defaults]\nraw_retention_days = 7\n",
            ENV_PREFIX,
            vec![(
                "ISPVM_TENANT_DEFAULTS__MAX_DEVICES".to_owned(),
                "42".to_owned(),
            )],
        )
        .expect("config");
        let p = config.timeseries_policy();
        assert_eq!(p.rollup_lateness_ms, 300_000);
        assert_eq!(p.max_future_ms, 3_600_000);
        assert_eq!(p.tenant_defaults.raw_retention_days, 7);
        assert_eq!(p.tenant_defaults.max_devices, 42);
        assert_eq!(p.tenant_defaults.hour_retention_days, 730);
        assert_eq!(config.timeseries.maintenance_interval_s, 60);
    }
}
