//! `[cluster]` of the agent configuration: gossip with the other agents of the tenant and
//! router ownership with failover. Off by default: a lone agent polls every router it is
//! given.

use ispvm_cluster::ownership::{CrossSite, OwnershipPolicy};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// UDP address of the gossip QUIC endpoint.
    pub listen: SocketAddr,
    /// Address peers reach this agent at, when not `listen` (NAT, 0.0.0.0 binds).
    pub advertise: Option<SocketAddr>,
    /// Gossip addresses (`ip:port` or `host:port`) of a few agents to join through.
    pub seeds: Vec<String>,
    pub gossip_interval_ms: u64,
    /// Failure-detector threshold; detection takes about this many gossip intervals.
    pub phi_threshold: f64,
    /// Agents polling each router: 1, or 2 for critical PoPs (twice the router load).
    pub replication: usize,
    /// May agents of another PoP take over a PoP's routers?
    pub cross_site: CrossSiteSetting,
    /// How long a returning owner must stay live before this agent hands its routers
    /// back (make-before-break); default 8 gossip intervals.
    pub settle_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossSiteSetting {
    Never,
    #[default]
    WhenSiteEmpty,
    ToReplication,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 7946)),
            advertise: None,
            seeds: Vec::new(),
            gossip_interval_ms: 250,
            phi_threshold: 8.0,
            replication: 1,
            cross_site: CrossSiteSetting::default(),
            settle_ms: None,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !(20..=10_000).contains(&self.gossip_interval_ms) {
            return Err("cluster.gossip_interval_ms must be 20 to 10000".into());
        }
        if !(1.0..=100.0).contains(&self.phi_threshold) {
            return Err("cluster.phi_threshold must be 1 to 100".into());
        }
        if !(1..=2).contains(&self.replication) {
            return Err("cluster.replication must be 1 or 2".into());
        }
        if self.seeds.len() > 64 {
            return Err("cluster.seeds: at most 64".into());
        }
        Ok(())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }

    pub fn settle(&self) -> Duration {
        self.settle_ms
            .map(Duration::from_millis)
            .unwrap_or(self.interval() * 8)
    }

    pub fn policy(&self) -> OwnershipPolicy {
        OwnershipPolicy {
            replication: self.replication,
            cross_site: match self.cross_site {
                CrossSiteSetting::Never => CrossSite::Never,
                CrossSiteSetting::WhenSiteEmpty => CrossSite::WhenSiteEmpty,
                CrossSiteSetting::ToReplication => CrossSite::ToReplication,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid_and_bad_values_are_refused() {
        let c = ClusterConfig::default();
        assert!(!c.enabled);
        assert!(c.validate().is_ok());
        let on = |f: fn(&mut ClusterConfig)| {
            let mut c = ClusterConfig {
                enabled: true,
                ..ClusterConfig::default()
            };
            f(&mut c);
            c.validate()
        };
        assert!(on(|_| {}).is_ok());
        assert!(on(|c| c.replication = 3).is_err());
        assert!(on(|c| c.gossip_interval_ms = 1).is_err());
        assert!(on(|c| c.phi_threshold = 0.0).is_err());
        let parsed: ClusterConfig = toml::from_str(
            "enabled = true\nlisten = \"127.0.0.1:7000\"\nseeds = [\"10.0.0.1:7946\"]\ncross_site = \"never\"\nreplication = 2",
        )
        .expect("parse");
        assert_eq!(parsed.policy().replication, 2);
        assert_eq!(parsed.policy().cross_site, CrossSite::Never);
        assert!(toml::from_str::<ClusterConfig>("bogus = 1").is_err());
    }
}
