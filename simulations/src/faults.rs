//! Faults: what can go wrong in the virtual ISP, and the log of what did.
//!
//! A fault is never applied by mutating a router. It is appended to a log with the time it
//! started (and, once cleared, ended); every value a router reports is computed from the
//! log and the time of the request, exactly like the healthy values are computed from the
//! time alone. That is what keeps every router consistent with every other: both ends of a
//! cut link, the OSPF neighbour over it, the BGP session depending on it and the
//! `/ip/neighbor` table all read the same record.
//!
//! In TOML (a `[[timeline]]` entry's `fault`), a fault is a table tagged by `kind`:
//! `{ kind = "link_cut", a = "r1:ether1", b = "r2:ether1" }`.

use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Something that goes wrong in the virtual ISP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The link between two `router:interface` endpoints (either order) is cut: both ends
    /// stop running, the OSPF adjacency over it drops at once, BGP sessions whose `via`
    /// is an end drop after the hold time.
    LinkCut { a: String, b: String },
    /// The router loses power: its API refuses connections, its links look cut to its
    /// neighbours. When cleared it boots (uptime and counters from zero).
    RouterDown { router: String },
    /// A BGP session is shut down; `peer` is the peer's router id or address.
    BgpShut { router: String, peer: String },
    /// An upstream stops carrying traffic: the uplink stays running, its traffic drops
    /// to almost nothing and the eBGP session over it goes down after the hold time.
    UpstreamLoss { router: String, interface: String },
    /// The link between `a` and `b` carries `utilisation` (0..1) of its capacity in both
    /// directions, with transmit queue drops growing at both ends.
    Congestion {
        a: String,
        b: String,
        utilisation: f64,
    },
    /// Only the management plane fails: the API is unreachable while interfaces, traffic
    /// and routing stay normal.
    ManagementDown { router: String },
    /// Every API reply is delayed by `delay_ms`.
    SlowApi { router: String, delay_ms: u64 },
    /// Each API reply has a `drop_per_mille` / 1000 chance of the session being cut in
    /// the middle of it.
    FlakyApi { router: String, drop_per_mille: u32 },
    /// The router reboots now: unreachable for `settings.reboot_s`, then uptime and
    /// counters start from zero and OSPF/BGP come back after `settings.converge_s`.
    Reboot { router: String },
    /// A PoP is cut off: every link with exactly one end in `site` is cut at once, as one
    /// fault (what a fibre duct dug up or a ring that lost both ways looks like). Links
    /// inside the site keep running, so the site's routers still reach each other.
    SitePartition { site: String },
    /// A monitoring agent's process dies (no leave message). The network is untouched:
    /// whoever runs the agents (the scenario runner) stops it; checked there, since the
    /// topology does not know the agents.
    AgentDown { agent: String },
}

/// Identifies an applied fault (for [`crate::VirtualIsp::clear`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault #{}", self.0)
    }
}

/// Why a fault could not be applied or cleared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("no router {0:?}")]
    UnknownRouter(String),
    #[error("no interface {0:?} (expected \"router:interface\" of an existing interface)")]
    UnknownInterface(String),
    #[error("{a:?} and {b:?} are not the two ends of a link")]
    NotALink { a: String, b: String },
    #[error("router {router:?} has no BGP session with {peer:?}")]
    UnknownBgpPeer { router: String, peer: String },
    #[error("utilisation {0} is not within 0..=1")]
    BadUtilisation(f64),
    #[error("drop_per_mille {0} is over 1000")]
    BadDropRate(u32),
    #[error("delay_ms {0} is over {max} ms", max = MAX_API_DELAY_MS)]
    DelayTooLong(u64),
    #[error("no site {0:?}")]
    UnknownSite(String),
    #[error("agent_down names no agent")]
    EmptyAgent,
    #[error("{0} was never applied")]
    UnknownFault(FaultId),
    #[error("{0} is already cleared")]
    AlreadyCleared(FaultId),
}

/// A slow API is slow, not dead: beyond a minute use `management_down`.
pub const MAX_API_DELAY_MS: u64 = 60_000;

impl Fault {
    /// The router the fault is about (for link faults, end `a`'s); `None` for a fault
    /// about a whole site.
    pub fn router(&self) -> Option<&str> {
        match self {
            Fault::LinkCut { a, .. } | Fault::Congestion { a, .. } => {
                Some(a.split_once(':').map_or(a.as_str(), |(r, _)| r))
            }
            Fault::RouterDown { router }
            | Fault::BgpShut { router, .. }
            | Fault::UpstreamLoss { router, .. }
            | Fault::ManagementDown { router }
            | Fault::SlowApi { router, .. }
            | Fault::FlakyApi { router, .. }
            | Fault::Reboot { router } => Some(router),
            Fault::SitePartition { .. } | Fault::AgentDown { .. } => None,
        }
    }

    /// Checks that everything the fault names exists in `topology`.
    pub fn check(&self, topology: &Topology) -> Result<(), FaultError> {
        let router_exists = |id: &str| {
            topology
                .router(id)
                .map(|_| ())
                .ok_or_else(|| FaultError::UnknownRouter(id.to_owned()))
        };
        let link_exists = |a: &str, b: &str| {
            for end in [a, b] {
                let known = end
                    .split_once(':')
                    .is_some_and(|(r, i)| topology.has_interface(r, i));
                if !known {
                    return Err(FaultError::UnknownInterface(end.to_owned()));
                }
            }
            topology
                .link_between(a, b)
                .map(|_| ())
                .ok_or_else(|| FaultError::NotALink {
                    a: a.to_owned(),
                    b: b.to_owned(),
                })
        };
        match self {
            Fault::AgentDown { agent } => {
                if agent.is_empty() {
                    Err(FaultError::EmptyAgent)
                } else {
                    Ok(())
                }
            }
            Fault::SitePartition { site } => topology
                .site(site)
                .map(|_| ())
                .ok_or_else(|| FaultError::UnknownSite(site.clone())),
            Fault::LinkCut { a, b } => link_exists(a, b),
            Fault::Congestion { a, b, utilisation } => {
                link_exists(a, b)?;
                if utilisation.is_finite() && (0.0..=1.0).contains(utilisation) {
                    Ok(())
                } else {
                    Err(FaultError::BadUtilisation(*utilisation))
                }
            }
            Fault::RouterDown { router }
            | Fault::ManagementDown { router }
            | Fault::Reboot { router } => router_exists(router),
            Fault::SlowApi { router, delay_ms } => {
                router_exists(router)?;
                if *delay_ms > MAX_API_DELAY_MS {
                    return Err(FaultError::DelayTooLong(*delay_ms));
                }
                Ok(())
            }
            Fault::FlakyApi {
                router,
                drop_per_mille,
            } => {
                router_exists(router)?;
                if *drop_per_mille > 1000 {
                    return Err(FaultError::BadDropRate(*drop_per_mille));
                }
                Ok(())
            }
            Fault::UpstreamLoss { router, interface } => {
                router_exists(router)?;
                if topology.has_interface(router, interface) {
                    Ok(())
                } else {
                    Err(FaultError::UnknownInterface(format!(
                        "{router}:{interface}"
                    )))
                }
            }
            Fault::BgpShut { router, peer } => {
                router_exists(router)?;
                let matches = topology.bgp.iter().any(|s| {
                    let forward = &s.router == router
                        && (s.peer_router.as_deref() == Some(peer.as_str())
                            || s.peer_address.is_some_and(|a| a.to_string() == *peer));
                    let backward =
                        s.peer_router.as_deref() == Some(router.as_str()) && &s.router == peer;
                    forward || backward
                });
                // Peers given by address are also matched against simulated routers'
                // addresses at run time; here only ids and configured addresses are known.
                if matches || peer.parse::<std::net::Ipv4Addr>().is_ok() {
                    Ok(())
                } else {
                    Err(FaultError::UnknownBgpPeer {
                        router: router.clone(),
                        peer: peer.clone(),
                    })
                }
            }
        }
    }
}

/// One applied fault: when it started and, once cleared, when it ended (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub id: FaultId,
    pub fault: Fault,
    pub from_s: f64,
    pub to_s: Option<f64>,
}

impl FaultRecord {
    /// The time span the fault covers (open-ended until cleared).
    pub fn span(&self) -> Span {
        Span::new(self.from_s, self.to_s.unwrap_or(f64::INFINITY))
    }

    /// Whether the fault is in force at `now_s`.
    pub fn active_at(&self, now_s: f64) -> bool {
        self.span().contains(now_s)
    }
}

/// A time span `[from, to)` in Unix seconds; `to` is infinite while open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub from: f64,
    pub to: f64,
}

impl Span {
    pub fn new(from: f64, to: f64) -> Span {
        Span {
            from,
            to: to.max(from),
        }
    }

    pub fn contains(&self, t: f64) -> bool {
        self.from <= t && t < self.to
    }

    pub fn len(&self) -> f64 {
        self.to - self.from
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 0.0
    }

    /// The same span lengthened at its end (by a convergence time, say).
    pub fn extended(self, by_s: f64) -> Span {
        Span::new(self.from, self.to + by_s)
    }
}

/// Whether any span covers `t`.
pub fn covered(spans: &[Span], t: f64) -> bool {
    spans.iter().any(|s| s.contains(t))
}

/// Since when something that is up at `t` has been continuously up: the latest end of a
/// span before `t`, or `base` if later. `None` when a span covers `t`.
pub fn up_since(spans: &[Span], t: f64, base: f64) -> Option<f64> {
    if covered(spans, t) {
        return None;
    }
    Some(
        spans
            .iter()
            .filter(|s| s.to <= t)
            .map(|s| s.to)
            .fold(base, f64::max),
    )
}

/// How many separate outages started within `(after, t]` (overlapping spans count once).
pub fn outages_started(spans: &[Span], after: f64, t: f64) -> u64 {
    let mut sorted: Vec<Span> = spans
        .iter()
        .copied()
        .filter(|s| s.from <= t && !s.is_empty())
        .collect();
    sorted.sort_by(|x, y| x.from.total_cmp(&y.from));
    let mut count = 0;
    let mut reach = f64::NEG_INFINITY;
    for s in sorted {
        // A span starting inside an earlier one is the same outage.
        if s.from >= reach && s.from > after {
            count += 1;
        }
        reach = reach.max(s.to);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_tagged_tables_in_toml() {
        #[derive(Deserialize)]
        struct Wrap {
            fault: Fault,
        }
        let w: Wrap =
            toml::from_str("fault = { kind = \"link_cut\", a = \"r1:ether1\", b = \"r2:ether1\" }")
                .expect("parse");
        assert_eq!(
            w.fault,
            Fault::LinkCut {
                a: "r1:ether1".into(),
                b: "r2:ether1".into()
            }
        );
        let w: Wrap =
            toml::from_str("fault = { kind = \"slow_api\", router = \"r\", delay_ms = 300 }")
                .expect("parse");
        assert_eq!(w.fault.router(), Some("r"));
        let w: Wrap = toml::from_str("fault = { kind = \"site_partition\", site = \"lis1\" }")
            .expect("parse");
        assert_eq!(w.fault.router(), None);
        assert_eq!(w.fault.check(&Topology::demo()), Ok(()));
        let w: Wrap = toml::from_str("fault = { kind = \"site_partition\", site = \"mars\" }")
            .expect("parse");
        assert_eq!(
            w.fault.check(&Topology::demo()),
            Err(FaultError::UnknownSite("mars".into()))
        );
        assert!(
            toml::from_str::<Wrap>("fault = { kind = \"reboot\", router = \"r\", x = 1 }").is_err()
        );
        assert!(toml::from_str::<Wrap>("fault = { kind = \"meteor\" }").is_err());
    }

    #[test]
    fn faults_are_checked_against_the_topology() {
        let t = Topology::demo();
        let ok = Fault::LinkCut {
            a: "cbr1-agg1:sfp-sfpplus1".into(),
            b: "lis1-core1:sfp28-6".into(),
        };
        assert!(matches!(ok.check(&t), Err(FaultError::NotALink { .. })));
        let ok = Fault::LinkCut {
            a: "cbr1-agg1:sfp28-1".into(),
            b: "lis1-core1:sfp28-6".into(),
        };
        assert_eq!(ok.check(&t), Ok(()));
        assert!(matches!(
            Fault::Reboot { router: "x".into() }.check(&t),
            Err(FaultError::UnknownRouter(_))
        ));
        assert!(matches!(
            Fault::Congestion {
                a: "cbr1-agg1:sfp28-1".into(),
                b: "lis1-core1:sfp28-6".into(),
                utilisation: 1.5
            }
            .check(&t),
            Err(FaultError::BadUtilisation(_))
        ));
        assert_eq!(
            Fault::BgpShut {
                router: "lis1-rr1".into(),
                peer: "lis1-core1".into()
            }
            .check(&t),
            Ok(())
        );
        assert!(matches!(
            Fault::BgpShut {
                router: "lis1-core1".into(),
                peer: "evr1-acc1".into()
            }
            .check(&t),
            Err(FaultError::UnknownBgpPeer { .. })
        ));
    }

    #[test]
    fn spans() {
        let spans = [
            Span::new(10.0, 20.0),
            Span::new(15.0, 30.0),
            Span::new(50.0, 60.0),
        ];
        assert!(covered(&spans, 25.0));
        assert_eq!(up_since(&spans, 25.0, 0.0), None);
        assert_eq!(up_since(&spans, 40.0, 0.0), Some(30.0));
        assert_eq!(up_since(&spans, 5.0, 1.0), Some(1.0));
        assert_eq!(outages_started(&spans, 0.0, 100.0), 2);
        assert_eq!(outages_started(&spans, 12.0, 100.0), 1);
        assert_eq!(Span::new(5.0, 1.0).len(), 0.0);
    }
}
