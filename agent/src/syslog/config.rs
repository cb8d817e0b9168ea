//! Syslog receiver settings (`[syslog]` in the agent's TOML); defaults and limits are
//! documented in docs/syslog.md.

use super::SyslogSeverity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Largest UDP payload there is.
const UDP_MAX: usize = 65_507;
/// Smallest message size every syslog receiver must take (RFC 5424 §6.1: 480 octets).
const MESSAGE_MIN: usize = 480;
/// Largest TCP frame the agent can be configured to take.
const TCP_FRAME_MAX: usize = 1 << 20;
/// The envelope's bound on free text (`ispvm_proto::Limits::max_text_len`).
const TEXT_MAX: usize = 4096;
/// The envelope's bound on identifiers.
const ID_MAX: usize = 128;

/// What to do with messages from addresses that map to no device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSources {
    /// Count and drop them (TCP connections from them are refused).
    #[default]
    Drop,
    /// Attribute them to the device `unknown:<address>`.
    Map,
}

/// The per-source token bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Sustained messages per second per source; 0 disables the limit.
    pub per_second: f64,
    /// Messages a source may send at once.
    pub burst: u32,
    /// How often the drops of each rate-limited source are reported as an event.
    pub report_interval_ms: u64,
    /// Sources tracked at once (memory bound).
    pub max_sources: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 50.0,
            burst: 200,
            report_interval_ms: 30_000,
            max_sources: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyslogConfig {
    /// Off unless asked for: the receiver listens on the network.
    pub enabled: bool,
    /// Address the sockets bind to; `::` takes IPv4 and IPv6 where the OS allows it.
    pub bind: IpAddr,
    pub udp: bool,
    pub udp_port: u16,
    pub tcp: bool,
    pub tcp_port: u16,
    /// Messages less severe than this are dropped, except the typed RouterOS events
    /// (link, OSPF, BGP, login failure), which the agent always keeps.
    pub min_severity: SyslogSeverity,
    /// Window of repeated-message suppression; 0 disables it.
    pub dedup_window_ms: u64,
    /// Suppression windows open at once (memory bound).
    pub dedup_max_entries: usize,
    pub rate_limit: RateLimitConfig,
    /// Marks every event `event_only=true`: the server stores it but alert rules do not
    /// fire on it.
    pub event_only: bool,
    pub unknown_sources: UnknownSources,
    /// Largest UDP datagram taken; longer ones are dropped as malformed.
    pub max_udp_bytes: usize,
    /// Largest TCP frame taken; longer ones are skipped as malformed.
    pub max_tcp_frame_bytes: usize,
    /// TCP connections at once; more are refused.
    pub max_tcp_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle_timeout_ms: u64,
    /// Bound on the `raw` attribute and the event message, bytes.
    pub max_text_bytes: usize,
    /// Messages waiting between the sockets and the normaliser; UDP beyond it is dropped
    /// and counted, TCP waits.
    pub queue_capacity: usize,
    /// Source address → device key, on top of the routers' API addresses (see
    /// [`SyslogConfig::source_map`]).
    pub sources: BTreeMap<IpAddr, String>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            enabled: false,
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            udp: true,
            udp_port: 5514,
            tcp: true,
            tcp_port: 5514,
            min_severity: SyslogSeverity::Info,
            dedup_window_ms: 30_000,
            dedup_max_entries: 4096,
            rate_limit: RateLimitConfig::default(),
            event_only: false,
            unknown_sources: UnknownSources::Drop,
            max_udp_bytes: 8 * 1024,
            max_tcp_frame_bytes: 64 * 1024,
            max_tcp_connections: 256,
            tcp_idle_timeout_ms: 900_000,
            max_text_bytes: 2048,
            queue_capacity: 4096,
            sources: BTreeMap::new(),
        }
    }
}

/// A setting out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syslog config: {0}")]
pub struct ConfigError(pub String);

/// Device keys as the envelope accepts them (`ispvm_proto` `check_id`).
pub fn valid_device_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= ID_MAX
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'))
}

impl SyslogConfig {
    pub fn dedup_window(&self) -> Duration {
        Duration::from_millis(self.dedup_window_ms)
    }

    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.tcp_idle_timeout_ms)
    }

    pub fn rate_limit_report_interval(&self) -> Duration {
        Duration::from_millis(self.rate_limit.report_interval_ms.max(100))
    }

    /// Checks every bound; the receiver refuses to start with a bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |s: String| Err(ConfigError(s));
        if !self.udp && !self.tcp {
            return err("neither udp nor tcp is enabled".into());
        }
        if !(MESSAGE_MIN..=UDP_MAX).contains(&self.max_udp_bytes) {
            return err(format!(
                "max_udp_bytes {} is outside {MESSAGE_MIN}..={UDP_MAX}",
                self.max_udp_bytes
            ));
        }
        if !(MESSAGE_MIN..=TCP_FRAME_MAX).contains(&self.max_tcp_frame_bytes) {
            return err(format!(
                "max_tcp_frame_bytes {} is outside {MESSAGE_MIN}..={TCP_FRAME_MAX}",
                self.max_tcp_frame_bytes
            ));
        }
        if self.max_tcp_connections == 0 || self.max_tcp_connections > 65_536 {
            return err("max_tcp_connections must be 1..=65536".into());
        }
        if self.tcp_idle_timeout_ms < 1_000 {
            return err("tcp_idle_timeout_ms must be at least 1000".into());
        }
        if !(256..=TEXT_MAX).contains(&self.max_text_bytes) {
            return err(format!("max_text_bytes must be 256..={TEXT_MAX}"));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 1 << 20 {
            return err("queue_capacity must be 1..=1048576".into());
        }
        if self.dedup_window_ms > 86_400_000 {
            return err("dedup_window_ms must be at most one day".into());
        }
        if self.dedup_max_entries == 0 || self.dedup_max_entries > 1 << 20 {
            return err("dedup_max_entries must be 1..=1048576".into());
        }
        let rl = &self.rate_limit;
        if !rl.per_second.is_finite() || rl.per_second < 0.0 {
            return err("rate_limit.per_second must be a number ≥ 0".into());
        }
        if rl.burst == 0 {
            return err("rate_limit.burst must be at least 1".into());
        }
        if rl.max_sources == 0 || rl.max_sources > 1 << 20 {
            return err("rate_limit.max_sources must be 1..=1048576".into());
        }
        for (addr, key) in &self.sources {
            if !valid_device_key(key) {
                return err(format!(
                    "sources.{addr}: device key {key:?} must be 1–{ID_MAX} characters of A–Z a–z 0–9 . _ - : @"
                ));
            }
        }
        Ok(())
    }

    /// The source map the receiver uses: each router's API address maps to its key, and
    /// the explicit `sources` entries are added on top (and win). A router that sends
    /// syslog from another address than the one the agent polls needs a `sources` entry
    /// (or `src-address=` on its logging action).
    pub fn source_map(&self, routers: &[crate::config::RouterConfig]) -> HashMap<IpAddr, String> {
        let mut map: HashMap<IpAddr, String> = routers
            .iter()
            .map(|r| (r.address.ip().to_canonical(), r.key.clone()))
            .collect();
        for (addr, key) in &self.sources {
            map.insert(addr.to_canonical(), key.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = SyslogConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.enabled);
        assert_eq!((c.udp_port, c.tcp_port), (5514, 5514));
        assert_eq!(c.dedup_window(), Duration::from_secs(30));
        assert_eq!(c.max_udp_bytes, 8192);
        assert_eq!(c.max_tcp_frame_bytes, 65536);
    }

    #[test]
    fn reads_toml() {
        let c: SyslogConfig = toml::from_str(
            r#"
            enabled = true
            bind = "::"
            udp_port = 1514
            tcp = false
            min_severity = "warn"
            event_only = true
            unknown_sources = "map"
            [rate_limit]
            per_second = 10
            burst = 20
            [sources]
            "10.0.0.1" = "edge1"
            "2001:db8::7" = "core2"
            "#,
        )
        .expect("toml");
        assert!(c.enabled && !c.tcp && c.udp && c.event_only);
        assert_eq!(c.udp_port, 1514);
        assert_eq!(c.min_severity, SyslogSeverity::Warning);
        assert_eq!(c.unknown_sources, UnknownSources::Map);
        assert_eq!(c.rate_limit.burst, 20);
        assert_eq!(c.rate_limit.report_interval_ms, 30_000);
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_settings() {
        let bad = [
            SyslogConfig {
                udp: false,
                tcp: false,
                ..Default::default()
            },
            SyslogConfig {
                max_udp_bytes: 100,
                ..Default::default()
            },
            SyslogConfig {
                max_tcp_frame_bytes: 10 << 20,
                ..Default::default()
            },
            SyslogConfig {
                max_tcp_connections: 0,
                ..Default::default()
            },
            SyslogConfig {
                max_text_bytes: 10_000,
                ..Default::default()
            },
            SyslogConfig {
                rate_limit: RateLimitConfig {
                    per_second: -1.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            SyslogConfig {
                sources: [("10.0.0.1".parse().expect("ip"), "a/b".to_owned())].into(),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn source_map_merges_routers_and_overrides() {
        let router = |key: &str, addr: &str| -> crate::config::RouterConfig {
            toml::from_str(&format!(
                "key = \"{key}\"\naddress = \"{addr}\"\nusername = \"u\"\npassword = \"p\""
            ))
            .expect("router")
        };
        let c = SyslogConfig {
            sources: [
                ("10.0.0.2".parse().expect("ip"), "edge2-loopback".to_owned()),
                ("::ffff:10.0.0.3".parse().expect("ip"), "edge3".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let map = c.source_map(&[
            router("edge1", "10.0.0.1:8728"),
            router("edge2", "10.0.0.2:8728"),
        ]);
        assert_eq!(
            map.get(&"10.0.0.1".parse().expect("ip"))
                .map(String::as_str),
            Some("edge1")
        );
        assert_eq!(
            map.get(&"10.0.0.2".parse().expect("ip"))
                .map(String::as_str),
            Some("edge2-loopback")
        );
        assert_eq!(
            map.get(&"10.0.0.3".parse().expect("ip"))
                .map(String::as_str),
            Some("edge3")
        );
    }
}
