//! Configuration of probe targets and of the shared ICMP sockets.
//!
//! A target is validated before its prober starts, so a typo becomes a clear error at
//! load time instead of a target that silently never reports.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Shortest interval between two rounds of one target. Below one second a target would
/// spend more time in flight than idle and the server's series would be dominated by
/// probe noise.
pub const MIN_INTERVAL_MS: u64 = 1_000;
/// Longest interval: once a day still yields a series the server can alert on.
pub const MAX_INTERVAL_MS: u64 = 86_400_000;
/// Most echoes in one round; more would make one round a flood toward the target.
pub const MAX_COUNT: u16 = 100;
/// Shortest per-echo timeout: below it, a loaded agent times out its own replies.
pub const MIN_TIMEOUT_MS: u64 = 10;
/// Longest per-echo timeout.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest ICMP payload: an IPv4 datagram of 65 535 bytes minus the IPv4 and ICMP headers.
pub const MAX_PAYLOAD: usize = 65_507;
/// Longest target key, the id limit the server's ingest enforces (`ispvm_proto::codec`).
pub const MAX_KEY_LEN: usize = 128;

/// Which kind of ICMP socket the shared pinger opens.
///
/// A raw socket needs root or `CAP_NET_RAW`; it sees every ICMP packet the host
/// receives and is the only kind that receives the "time exceeded" answers traceroute
/// needs. A datagram ("ping") socket is unprivileged where the kernel allows it
/// (`net.ipv4.ping_group_range` covers the agent's group); the kernel then assigns the
/// echo identifier and hands the socket only its own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IcmpSocketMode {
    /// A datagram socket where the kernel allows one, else a raw socket.
    #[default]
    Auto,
    /// A raw socket only; fails without the privilege.
    Raw,
    /// A datagram socket only; fails where `ping_group_range` excludes the agent.
    Dgram,
}

/// What a probe measures.
///
/// In TOML: `kind = "icmp"`, `kind = { tcp = { port = 443 } }`, or
/// `kind = { udp_echo = { port = 7 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// ICMP echo (ping) through the agent's shared ICMP socket.
    #[default]
    Icmp,
    /// TCP connect to a port; the handshake time is the round trip and a refused or
    /// timed-out connect is a loss.
    Tcp { port: u16 },
    /// UDP datagrams to an echo service (RFC 862) on a port; each carries a sequence
    /// number and its send time, the RTT is taken from the matching reply, and no reply
    /// within the timeout is a loss (`probe::udp_echo`).
    #[serde(rename = "udp_echo")]
    UdpEcho { port: u16 },
}

impl ProbeKind {
    /// Label value for telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Icmp => "icmp",
            ProbeKind::Tcp { .. } => "tcp",
            ProbeKind::UdpEcho { .. } => "udp_echo",
        }
    }
}

/// Probing of every target this agent owns.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ProbesConfig {
    /// The kind of socket the shared ICMP pinger opens.
    pub icmp_socket: IcmpSocketMode,
    pub targets: Vec<ProbeTargetConfig>,
}

/// One probe target.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTargetConfig {
    /// The target's key: samples are reported for `EntityKey::ProbeTarget(key)`.
    pub key: String,
    /// An IPv4 or IPv6 address, or a host name resolved before every round (so a
    /// changed DNS record is followed without a restart).
    pub address: String,
    #[serde(default)]
    pub kind: ProbeKind,
    /// Time between the starts of two rounds.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Echoes (or connects) per round.
    #[serde(default = "default_count")]
    pub count: u16,
    /// Time between two echoes of one round; echoes do not wait for the previous reply.
    #[serde(default = "default_spacing_ms")]
    pub spacing_ms: u64,
    /// How long one echo waits for its reply before it counts as lost.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// ICMP payload bytes, or the size of a UDP echo datagram (at least its 24-byte
    /// header); ignored by TCP probes. 56 as in `ping`.
    #[serde(default = "default_payload_size")]
    pub payload_size: usize,
}

fn default_interval_ms() -> u64 {
    10_000
}
fn default_count() -> u16 {
    5
}
fn default_spacing_ms() -> u64 {
    200
}
fn default_timeout_ms() -> u64 {
    1_000
}
fn default_payload_size() -> usize {
    56
}

/// Why a probe target's configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeConfigError {
    #[error(
        "probe target key {0:?} is empty, longer than {MAX_KEY_LEN} bytes or has characters other than letters, digits and . _ - : @"
    )]
    Key(String),
    #[error("probe target {key}: address {address:?} is neither an IP address nor a host name")]
    Address { key: String, address: String },
    #[error(
        "probe target {key}: interval_ms {value} is outside {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS}"
    )]
    Interval { key: String, value: u64 },
    #[error("probe target {key}: count {value} is outside 1..={MAX_COUNT}")]
    Count { key: String, value: u16 },
    #[error(
        "probe target {key}: timeout_ms {value} is outside {MIN_TIMEOUT_MS}..={MAX_TIMEOUT_MS}"
    )]
    Timeout { key: String, value: u64 },
    #[error("probe target {key}: payload_size {value} is over {MAX_PAYLOAD}")]
    Payload { key: String, value: usize },
    #[error("probe target {key}: port 0 cannot be probed")]
    Port { key: String },
    #[error(
        "probe target {key}: a round lasts up to {round_ms} ms ((count - 1) × spacing_ms + timeout_ms), longer than interval_ms {interval_ms}"
    )]
    RoundTooLong {
        key: String,
        round_ms: u64,
        interval_ms: u64,
    },
    #[error("probe target key {0:?} appears more than once")]
    DuplicateKey(String),
}

/// The same rule the server's ingest applies to ids, so a sample is never refused there.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'))
}

/// An IP address, or something that can be a DNS name (RFC 1123 labels).
fn valid_address(address: &str) -> bool {
    if address.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl ProbeTargetConfig {
    /// An ICMP target with the default schedule (5 echoes every 10 s).
    pub fn icmp(key: impl Into<String>, address: impl Into<String>) -> Self {
        ProbeTargetConfig {
            key: key.into(),
            address: address.into(),
            kind: ProbeKind::Icmp,
            interval_ms: default_interval_ms(),
            count: default_count(),
            spacing_ms: default_spacing_ms(),
            timeout_ms: default_timeout_ms(),
            payload_size: default_payload_size(),
        }
    }

    /// A TCP connect target with the default schedule.
    pub fn tcp(key: impl Into<String>, address: impl Into<String>, port: u16) -> Self {
        ProbeTargetConfig {
            kind: ProbeKind::Tcp { port },
            ..ProbeTargetConfig::icmp(key, address)
        }
    }

    /// A UDP echo target with the default schedule.
    pub fn udp_echo(key: impl Into<String>, address: impl Into<String>, port: u16) -> Self {
        ProbeTargetConfig {
            kind: ProbeKind::UdpEcho { port },
            ..ProbeTargetConfig::icmp(key, address)
        }
    }

    /// Checks every bound; the prober refuses to start on an error.
    pub fn validate(&self) -> Result<(), ProbeConfigError> {
        let key = || self.key.clone();
        if !valid_key(&self.key) {
            return Err(ProbeConfigError::Key(self.key.chars().take(160).collect()));
        }
        if !valid_address(&self.address) {
            return Err(ProbeConfigError::Address {
                key: key(),
                address: self.address.chars().take(300).collect(),
            });
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return Err(ProbeConfigError::Interval {
                key: key(),
                value: self.interval_ms,
            });
        }
        if !(1..=MAX_COUNT).contains(&self.count) {
            return Err(ProbeConfigError::Count {
                key: key(),
                value: self.count,
            });
        }
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(ProbeConfigError::Timeout {
                key: key(),
                value: self.timeout_ms,
            });
        }
        if self.payload_size > MAX_PAYLOAD {
            return Err(ProbeConfigError::Payload {
                key: key(),
                value: self.payload_size,
            });
        }
        if matches!(
            self.kind,
            ProbeKind::Tcp { port: 0 } | ProbeKind::UdpEcho { port: 0 }
        ) {
            return Err(ProbeConfigError::Port { key: key() });
        }
        let round_ms = self.round_budget_ms();
        if round_ms > self.interval_ms {
            return Err(ProbeConfigError::RoundTooLong {
                key: key(),
                round_ms,
                interval_ms: self.interval_ms,
            });
        }
        Ok(())
    }

    /// The longest a round can last: the last echo leaves `(count - 1) × spacing` after
    /// the first and waits up to `timeout`.
    pub fn round_budget_ms(&self) -> u64 {
        u64::from(self.count.saturating_sub(1))
            .saturating_mul(self.spacing_ms)
            .saturating_add(self.timeout_ms)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.max(MIN_INTERVAL_MS))
    }

    /// How one round of this target is run.
    pub fn plan(&self) -> RoundPlan {
        RoundPlan {
            count: self.count.clamp(1, MAX_COUNT),
            spacing: Duration::from_millis(self.spacing_ms),
            timeout: Duration::from_millis(self.timeout_ms.clamp(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS)),
            payload_size: self.payload_size.min(MAX_PAYLOAD),
        }
    }
}

/// Checks every target and that no key is used twice (two probers would report the
/// same series).
pub fn validate_targets(targets: &[ProbeTargetConfig]) -> Result<(), ProbeConfigError> {
    let mut seen = std::collections::HashSet::new();
    for t in targets {
        t.validate()?;
        if !seen.insert(t.key.as_str()) {
            return Err(ProbeConfigError::DuplicateKey(t.key.clone()));
        }
    }
    Ok(())
}

/// The shape of one round: `count` echoes, one every `spacing`, each waiting up to
/// `timeout` for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundPlan {
    pub count: u16,
    pub spacing: Duration,
    pub timeout: Duration,
    pub payload_size: usize,
}

impl Default for RoundPlan {
    fn default() -> Self {
        ProbeTargetConfig::icmp("default", "127.0.0.1").plan()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fit_the_interval() {
        let t = ProbeTargetConfig::icmp("gw-1", "192.0.2.1");
        t.validate().expect("valid");
        assert_eq!(t.round_budget_ms(), 4 * 200 + 1_000);
        ProbeTargetConfig::tcp("web", "example.net", 443)
            .validate()
            .expect("valid");
    }

    #[test]
    fn toml_forms_of_the_kind() {
        let cfg: ProbesConfig = toml::from_str(
            r#"
            icmp_socket = "raw"
            [[targets]]
            key = "core-1"
            address = "2001:db8::1"
            interval_ms = 1000
            count = 3
            spacing_ms = 100
            timeout_ms = 500

            [[targets]]
            key = "web"
            address = "www.example.net"
            kind = { tcp = { port = 443 } }

            [[targets]]
            key = "echo"
            address = "192.0.2.7"
            kind = { udp_echo = { port = 7 } }
            "#,
        )
        .expect("parses");
        assert_eq!(cfg.icmp_socket, IcmpSocketMode::Raw);
        assert_eq!(cfg.targets[0].kind, ProbeKind::Icmp);
        assert_eq!(cfg.targets[0].count, 3);
        assert_eq!(cfg.targets[1].kind, ProbeKind::Tcp { port: 443 });
        assert_eq!(cfg.targets[1].interval_ms, 10_000);
        assert_eq!(cfg.targets[2].kind, ProbeKind::UdpEcho { port: 7 });
        assert_eq!(cfg.targets[2].kind.as_str(), "udp_echo");
        validate_targets(&cfg.targets).expect("valid");
        assert!(
            ProbeTargetConfig::udp_echo("e", "192.0.2.7", 0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<ProbeTargetConfig, _> =
            toml::from_str("key = \"a\"\naddress = \"127.0.0.1\"\nintervall_ms = 5\n");
        assert!(r.is_err());
    }

    #[test]
    fn bounds_are_enforced() {
        let base = ProbeTargetConfig::icmp("t", "127.0.0.1");
        let bad = [
            ProbeTargetConfig {
                key: String::new(),
                ..base.clone()
            },
            ProbeTargetConfig {
                key: "a b".into(),
                ..base.clone()
            },
            ProbeTargetConfig {
                address: "bad host!".into(),
                ..base.clone()
            },
            ProbeTargetConfig {
                address: "-x.example".into(),
                ..base.clone()
            },
            ProbeTargetConfig {
                interval_ms: 999,
                ..base.clone()
            },
            ProbeTargetConfig {
                count: 0,
                ..base.clone()
            },
            ProbeTargetConfig {
                count: MAX_COUNT + 1,
                interval_ms: 600_000,
                ..base.clone()
            },
            ProbeTargetConfig {
                timeout_ms: 0,
                ..base.clone()
            },
            ProbeTargetConfig {
                payload_size: MAX_PAYLOAD + 1,
                ..base.clone()
            },
            ProbeTargetConfig::tcp("t", "127.0.0.1", 0),
            ProbeTargetConfig {
                interval_ms: 1_000,
                ..base.clone()
            },
        ];
        for t in bad {
            assert!(t.validate().is_err(), "accepted {t:?}");
        }
        let fast = ProbeTargetConfig {
            interval_ms: 1_000,
            count: 5,
            spacing_ms: 100,
            timeout_ms: 500,
            ..base.clone()
        };
        fast.validate().expect("valid");
        assert!(matches!(
            validate_targets(&[fast.clone(), fast]),
            Err(ProbeConfigError::DuplicateKey(_))
        ));
    }
}
