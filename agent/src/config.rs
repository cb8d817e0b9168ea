//! The agent's configuration: one TOML file, every key overridable from the environment
//! with `ISPVM_AGENT_SECTION__KEY` (see `ispvm_proto::settings`).

use ispvm_proto::DeviceRole;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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
    /// The local address every outgoing socket is bound to: RouterOS API and API-SSL
    /// sessions, TCP and UDP echo probes, ICMP, and the uplink (QUIC and HTTPS). For a
    /// host with several addresses whose routers or firewalls expect one of them; the
    /// simulator also places agents by it. Unset (the default), the system picks the
    /// source by route. It applies to peers of its own family only. SNMP sessions do
    /// not follow it yet (the SNMP library binds its own socket); the gossip endpoint
    /// binds `cluster.listen`. See docs/probes.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<IpAddr>,
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
    /// ICMP and TCP probe targets; see docs/probes.md.
    #[serde(default)]
    pub probes: crate::probe::config::ProbesConfig,
    /// The syslog receiver (off unless `enabled = true`); see docs/syslog.md.
    #[serde(default)]
    pub syslog: crate::syslog::SyslogConfig,
    /// Gossip with the tenant's other agents and router ownership with failover (off
    /// unless `enabled = true`); see docs/cluster.md.
    #[serde(default)]
    pub cluster: crate::cluster::ClusterConfig,
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
    /// `host:port` or `ip:port`, or a list of them: several servers, or a DNS name with
    /// several addresses; the uplink uses whichever answers (see `uplink/quic.rs`).
    pub addr: ServerAddrs,
    /// Name the server certificate must carry.
    pub server_name: String,
    /// The server's HTTPS ingest (TCP), used when QUIC (UDP) keeps failing.
    #[serde(default)]
    pub https_addr: Option<SocketAddr>,
}

/// One or more `host:port` / `ip:port` of the server's QUIC ingest, as written in the
/// file: a string (`"ingest.example.net:4433"`, or several separated by commas) or a
/// list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ServerAddrs(pub Vec<String>);

impl<'de> Deserialize<'de> for ServerAddrs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            OneOrMany::Many(v) => v,
        };
        let addrs = ServerAddrs(list);
        addrs.check().map_err(serde::de::Error::custom)?;
        Ok(addrs)
    }
}

impl From<SocketAddr> for ServerAddrs {
    fn from(a: SocketAddr) -> Self {
        ServerAddrs(vec![a.to_string()])
    }
}

impl ServerAddrs {
    /// Each entry must be `host:port` with a port; names are resolved when connecting.
    fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("server.addr names no address".into());
        }
        for a in &self.0 {
            if a.parse::<SocketAddr>().is_ok() {
                continue;
            }
            let port = a.rsplit_once(':').and_then(|(host, port)| {
                (!host.is_empty() && !host.contains(char::is_whitespace))
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
            });
            if port.is_none() {
                return Err(format!("server.addr {a:?} is not host:port"));
            }
        }
        Ok(())
    }
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
    /// Medium tier (counts, sensors) on one poll in this many.
    pub medium_every: u64,
    /// Slow tier (inventory) on one poll in this many.
    pub slow_every: u64,
    /// Daily tier (configuration hash) on one poll in this many (8640 × 10 s = a day).
    pub daily_every: u64,
    /// Polls running at once across all routers of the agent.
    pub max_concurrent_polls: usize,
    /// Named schedules that override `interval_ms`, `medium_every`, `slow_every`.
    pub profiles: BTreeMap<String, PollProfile>,
    /// Which routers get which profile: the first rule whose role and tag match wins; a
    /// router's own `profile` beats every rule.
    pub assign: Vec<ProfileRule>,
}

/// A polling schedule for a class of routers (e.g. cores every 5 s, CPEs every minute).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PollProfile {
    pub interval_ms: Option<u64>,
    pub medium_every: Option<u64>,
    pub slow_every: Option<u64>,
    #[serde(default)]
    pub daily_every: Option<u64>,
}

/// Assigns a profile to routers by role and/or tag.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ProfileRule {
    #[serde(default)]
    pub role: Option<DeviceRole>,
    #[serde(default)]
    pub tag: Option<String>,
    pub profile: String,
}

/// The schedule one router is polled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Duration,
    pub medium_every: u64,
    pub slow_every: u64,
    pub daily_every: u64,
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
            medium_every: 6,
            slow_every: 60,
            daily_every: 8_640,
            max_concurrent_polls: 64,
            profiles: BTreeMap::new(),
            assign: Vec::new(),
        }
    }
}

impl PollConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(100))
    }

    /// The schedule of `router`: its own profile, else the first matching rule's, else
    /// the defaults of this section.
    pub fn schedule_for(&self, router: &RouterConfig) -> Result<Schedule, ConfigError> {
        let name = router.profile.as_deref().or_else(|| {
            self.assign
                .iter()
                .find(|rule| {
                    rule.role.is_none_or(|r| r == router.role)
                        && rule.tag.as_ref().is_none_or(|t| router.tags.contains(t))
                })
                .map(|rule| rule.profile.as_str())
        });
        let profile = match name {
            None => None,
            Some(n) => Some(self.profiles.get(n).ok_or_else(|| {
                ConfigError::Invalid(format!("router {:?}: no polling profile {n:?}", router.key))
            })?),
        };
        let pick = |own: Option<u64>, default: u64| own.unwrap_or(default);
        Ok(Schedule {
            interval: Duration::from_millis(
                pick(profile.and_then(|p| p.interval_ms), self.interval_ms).max(100),
            ),
            medium_every: pick(profile.and_then(|p| p.medium_every), self.medium_every).max(1),
            slow_every: pick(profile.and_then(|p| p.slow_every), self.slow_every).max(1),
            daily_every: pick(profile.and_then(|p| p.daily_every), self.daily_every).max(1),
        })
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
    /// Consecutive `internal` answers to the same batch after which it is set aside in
    /// the quarantine file, so that one batch the server keeps failing on cannot hold up
    /// the rest. (An unavailable server answers `overloaded` and never counts here.)
    pub poison_after: u32,
    /// Size cap of the quarantine file (`<data_dir>/quarantine.jsonl`); past it, batches
    /// that would be set aside are dropped and counted.
    pub quarantine_max_bytes: u64,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            flush_interval_ms: 1_000,
            max_batch_samples: 10_000,
            connect_timeout_ms: 5_000,
            exchange_timeout_ms: 10_000,
            poison_after: 8,
            quarantine_max_bytes: 256 << 20,
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
    /// RouterOS API user (not needed with `collector = "snmp"`).
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `routeros` (the API; the default) or `snmp` (needs a `[routers.snmp]` section).
    #[serde(default)]
    pub collector: CollectorKind,
    #[serde(default)]
    pub snmp: Option<crate::snmp::SnmpConfig>,
    #[serde(default)]
    pub role: DeviceRole,
    /// Site of the router when not the agent's.
    #[serde(default)]
    pub site: Option<String>,
    /// API-SSL (port 8729) instead of the plain API.
    #[serde(default)]
    pub tls: Option<RouterTlsConfig>,
    /// Free labels for schedule rules (`[[poll.assign]] tag = …`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// A polling profile by name, overriding every rule.
    #[serde(default)]
    pub profile: Option<String>,
}

/// Which collector polls a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorKind {
    #[default]
    #[serde(rename = "routeros")]
    RouterOs,
    Snmp,
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
        Self::from_toml(&text, std::env::vars())
    }

    /// Parses and checks a configuration from TOML text with `vars` (environment
    /// variables) over it: what `load` does once the file is read.
    pub fn from_toml(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let config: AgentConfig = ispvm_proto::settings::load(text, ENV_PREFIX, vars)?;
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
        if let Some(ip) = self.source_address
            && (ip.is_unspecified() || ip.is_multicast())
        {
            return Err(ConfigError::Invalid(format!(
                "source_address {ip} is not an address of this host (unspecified or multicast)"
            )));
        }
        // The server refuses every batch naming an identifier it cannot store.
        for (field, value) in [
            ("agent_id", &self.agent_id),
            ("tenant_id", &self.tenant_id),
            ("site", &self.site),
        ] {
            ispvm_proto::codec::check_id(field, value, &ispvm_proto::Limits::default())
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
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
            self.poll.schedule_for(r)?;
            match r.collector {
                CollectorKind::RouterOs if r.username.is_empty() => {
                    return Err(ConfigError::Invalid(format!(
                        "router {:?}: the RouterOS API needs a username",
                        r.key
                    )));
                }
                CollectorKind::Snmp => match &r.snmp {
                    None => {
                        return Err(ConfigError::Invalid(format!(
                            "router {:?}: collector = \"snmp\" needs [routers.snmp]",
                            r.key
                        )));
                    }
                    Some(snmp) => snmp
                        .validate()
                        .map_err(|e| ConfigError::Invalid(format!("router {:?}: {e}", r.key)))?,
                },
                CollectorKind::RouterOs => {}
            }
        }
        self.cluster.validate().map_err(ConfigError::Invalid)?;
        crate::probe::config::validate_targets(&self.probes.targets)
            .map_err(|e| ConfigError::Invalid(format!("probes: {e}")))?;
        for rule in &self.poll.assign {
            if !self.poll.profiles.contains_key(&rule.profile) {
                return Err(ConfigError::Invalid(format!(
                    "poll.assign names an unknown profile {:?}",
                    rule.profile
                )));
            }
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
    fn identifiers_ingest_would_refuse_are_refused_at_load() {
        let text = include_str!("../../deploy/agent.example.toml");
        let config: AgentConfig =
            ispvm_proto::settings::load(text, ENV_PREFIX, Vec::new()).expect("example config");
        let mut bad = config.clone();
        bad.site = "Lisbon PoP".into();
        let err = bad.validate().expect_err("a space in the site");
        assert!(err.to_string().contains("site"), "{err}");
        let mut bad = config;
        bad.agent_id = "agent/1".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn schedules_follow_profile_rules() {
        let text = r#"
agent_id = "a"
tenant_id = "t"
site = "s"
data_dir = "/tmp/x"
[server]
addr = "127.0.0.1:4433"
server_name = "localhost"
[tls]
ca = "ca.pem"
cert = "a.pem"
key = "a.key"
[poll]
interval_ms = 10000
[poll.profiles.fast]
interval_ms = 2000
[poll.profiles.lazy]
interval_ms = 60000
slow_every = 10
[[poll.assign]]
role = "core"
profile = "fast"
[[poll.assign]]
tag = "cpe"
profile = "lazy"
[[routers]]
key = "core1"
address = "127.0.0.1:8728"
username = "u"
password = "p"
role = "core"
[[routers]]
key = "cpe1"
address = "127.0.0.1:8729"
username = "u"
password = "p"
tags = ["cpe"]
[[routers]]
key = "cpe2"
address = "127.0.0.1:8730"
username = "u"
password = "p"
tags = ["cpe"]
profile = "fast"
[[routers]]
key = "agg1"
address = "127.0.0.1:8731"
username = "u"
password = "p"
role = "agg"
"#;
        let config: AgentConfig =
            ispvm_proto::settings::load(text, ENV_PREFIX, Vec::new()).expect("config");
        config.validate().expect("valid");
        let s = |i: usize| {
            config
                .poll
                .schedule_for(&config.routers[i])
                .expect("schedule")
        };
        assert_eq!(s(0).interval, Duration::from_secs(2));
        assert_eq!(
            (s(1).interval, s(1).slow_every),
            (Duration::from_secs(60), 10)
        );
        assert_eq!(
            s(2).interval,
            Duration::from_secs(2),
            "a router's own profile wins"
        );
        assert_eq!(
            (s(3).interval, s(3).medium_every),
            (Duration::from_secs(10), 6)
        );
        let mut bad = config.clone();
        bad.routers[3].profile = Some("nope".into());
        assert!(bad.validate().is_err());
    }

    /// The server may be one address, a DNS name, or several; a malformed one is refused.
    #[test]
    fn server_addr_takes_names_and_lists() {
        let text = include_str!("../../deploy/agent.example.toml");
        let with = |addr: &str| {
            let t = text.replace("addr = \"10.0.0.5:4433\"", &format!("addr = {addr}"));
            AgentConfig::from_toml(&t, Vec::new())
        };
        assert_eq!(
            with("\"ingest.example.net:4433\"")
                .expect("name")
                .server
                .addr
                .0,
            ["ingest.example.net:4433"]
        );
        assert_eq!(
            with("[\"a.example.net:4433\", \"10.0.0.2:4433\"]")
                .expect("list")
                .server
                .addr
                .0,
            ["a.example.net:4433", "10.0.0.2:4433"]
        );
        assert!(with("\"ingest.example.net\"").is_err(), "no port");
        assert!(with("[]").is_err(), "no address");
        let env = AgentConfig::from_toml(
            text,
            vec![(
                "ISPVM_AGENT_SERVER__ADDR".to_owned(),
                "s1.example.net:4433, s2.example.net:4433".to_owned(),
            )],
        )
        .expect("from the environment");
        assert_eq!(
            env.server.addr.0,
            ["s1.example.net:4433", "s2.example.net:4433"]
        );
    }

    /// A numeric agent id from the environment is an id, and a misspelt key is named.
    #[test]
    fn environment_values_are_typed_and_unknown_keys_refused() {
        let text = include_str!("../../deploy/agent.example.toml");
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let config = AgentConfig::from_toml(
            text,
            vars(&[
                ("ISPVM_AGENT_AGENT_ID", "1001"),
                ("ISPVM_AGENT_UPLINK__POISON_AFTER", "3"),
            ]),
        )
        .expect("typed from the environment");
        assert_eq!(config.agent_id, "1001");
        assert_eq!(config.uplink.poison_after, 3);
        let err = AgentConfig::from_toml(text, vars(&[("ISPVM_AGENT_UPLINK__POISON_AFTR", "3")]))
            .expect_err("misspelt");
        assert!(err.to_string().contains("uplink.poison_aftr"), "{err}");
        let err = AgentConfig::from_toml(&format!("{text}\nsurprise = 1\n"), Vec::new())
            .expect_err("unknown key in the file");
        assert!(err.to_string().contains("surprise"), "{err}");
    }

    /// The source address is optional, comes from the file or the environment, and
    /// must be an address a socket can be bound to.
    #[test]
    fn source_address_is_optional_and_checked() {
        let text = include_str!("../../deploy/agent.example.toml");
        let config = AgentConfig::from_toml(text, Vec::new()).expect("example");
        assert_eq!(config.source_address, None);
        let env = |v: &str| vec![("ISPVM_AGENT_SOURCE_ADDRESS".to_owned(), v.to_owned())];
        let config = AgentConfig::from_toml(text, env("127.1.0.5")).expect("from the env");
        assert_eq!(config.source_address, Some(IpAddr::from([127, 1, 0, 5])));
        let v6 = AgentConfig::from_toml(text, env("2001:db8::5")).expect("IPv6");
        assert!(v6.source_address.is_some_and(|a| a.is_ipv6()));
        for bad in ["0.0.0.0", "224.0.0.1", "not-an-address"] {
            assert!(AgentConfig::from_toml(text, env(bad)).is_err(), "{bad}");
        }
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
