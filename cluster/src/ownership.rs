//! Which live agents poll which router: rendezvous (highest-random-weight) hashing.
//!
//! Every agent computes the same answer from the same membership, with no coordination:
//! each (router, agent) pair gets a score from a stable hash and the router goes to the
//! best-scoring eligible agents. When an agent dies only the routers it owned move, and
//! when it comes back exactly those routers move back, so ownership settles without
//! flapping after a partition heals. Eligibility is site affinity and capability;
//! [`CrossSite`] decides whether agents of another PoP may take over.

use sha2::{Digest, Sha256};

/// What an agent can collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    RouterOs,
    Snmp,
    Syslog,
    Icmp,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::RouterOs,
        Capability::Snmp,
        Capability::Syslog,
        Capability::Icmp,
    ];

    fn bit(self) -> u8 {
        match self {
            Capability::RouterOs => 1,
            Capability::Snmp => 2,
            Capability::Syslog => 4,
            Capability::Icmp => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::RouterOs => "routeros",
            Capability::Snmp => "snmp",
            Capability::Syslog => "syslog",
            Capability::Icmp => "icmp",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A set of capabilities, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    pub fn of(caps: &[Capability]) -> Self {
        Capabilities(caps.iter().fold(0, |acc, c| acc | c.bit()))
    }

    pub fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// Comma-separated names, as gossiped.
    pub fn encode(self) -> String {
        Capability::ALL
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Capability::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses [`Capabilities::encode`]; unknown names are ignored (a newer agent may
    /// know more collectors than this one).
    pub fn decode(s: &str) -> Self {
        let caps: Vec<Capability> = s.split(',').filter_map(Capability::parse).collect();
        Capabilities::of(&caps)
    }
}

/// May an agent of another site poll a router?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrossSite {
    /// Never: a router goes unpolled rather than polled across the backbone.
    Never,
    /// Only when no capable agent of the router's own site is alive.
    #[default]
    WhenSiteEmpty,
    /// Fill up to the replication factor from other sites when the own site has too few.
    ToReplication,
}

/// How many agents poll each router and where they may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnershipPolicy {
    /// 1 or 2: the most agents that poll one router (more would double the load on it).
    pub replication: usize,
    pub cross_site: CrossSite,
}

impl Default for OwnershipPolicy {
    fn default() -> Self {
        OwnershipPolicy {
            replication: 1,
            cross_site: CrossSite::WhenSiteEmpty,
        }
    }
}

/// A live agent as ownership sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub agent: &'a str,
    pub site: &'a str,
    pub capabilities: Capabilities,
}

/// A router to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router<'a> {
    pub id: &'a str,
    pub site: &'a str,
    pub needs: Capability,
}

/// The rendezvous score of one (router, agent) pair: the first 8 bytes of
/// SHA-256("router\0agent"). SHA-256 rather than a fast hash because every agent of every
/// version must compute the same number forever.
pub fn score(router: &str, agent: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(router.as_bytes());
    h.update([0u8]);
    h.update(agent.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// The agents that own `router` among the live `members`, best first. Ties (equal
/// scores) break by agent id so the answer is total.
pub fn owners<'a>(
    router: &Router<'_>,
    members: &[Member<'a>],
    policy: &OwnershipPolicy,
) -> Vec<&'a str> {
    let want = policy.replication.clamp(1, 2);
    let ranked = |same_site: bool| {
        let mut v: Vec<(u64, &'a str)> = members
            .iter()
            .filter(|m| m.capabilities.has(router.needs) && (m.site == router.site) == same_site)
            .map(|m| (score(router.id, m.agent), m.agent))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        v.dedup_by(|a, b| a.1 == b.1);
        v.into_iter().map(|(_, a)| a).collect::<Vec<_>>()
    };
    let mut chosen: Vec<&'a str> = ranked(true).into_iter().take(want).collect();
    let fill = match policy.cross_site {
        CrossSite::Never => false,
        CrossSite::WhenSiteEmpty => chosen.is_empty(),
        CrossSite::ToReplication => chosen.len() < want,
    };
    if fill {
        let missing = want - chosen.len();
        chosen.extend(ranked(false).into_iter().take(missing));
    }
    chosen
}

/// Whether `agent` should poll `router`.
pub fn owns(
    agent: &str,
    router: &Router<'_>,
    members: &[Member<'_>],
    policy: &OwnershipPolicy,
) -> bool {
    owners(router, members, policy).contains(&agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn all() -> Capabilities {
        Capabilities::of(&Capability::ALL)
    }

    fn members<'a>(names: &'a [(&'a str, &'a str)]) -> Vec<Member<'a>> {
        names
            .iter()
            .map(|(agent, site)| Member {
                agent,
                site,
                capabilities: all(),
            })
            .collect()
    }

    fn routers(n: usize, site: &str) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("r{i}"), site.to_owned())).collect()
    }

    fn placement(
        rs: &[(String, String)],
        ms: &[Member<'_>],
        p: &OwnershipPolicy,
    ) -> HashMap<String, Vec<String>> {
        rs.iter()
            .map(|(id, site)| {
                let r = Router {
                    id,
                    site,
                    needs: Capability::RouterOs,
                };
                let o = owners(&r, ms, p).into_iter().map(str::to_owned).collect();
                (id.clone(), o)
            })
            .collect()
    }

    #[test]
    fn only_the_dead_agents_routers_move_and_they_move_back() {
        let names = [("a1", "lis"), ("a2", "lis"), ("a3", "lis"), ("a4", "lis")];
        let ms = members(&names);
        let rs = routers(1_000, "lis");
        let p = OwnershipPolicy::default();
        let before = placement(&rs, &ms, &p);
        let survivors: Vec<Member<'_>> = ms.iter().copied().filter(|m| m.agent != "a3").collect();
        let after = placement(&rs, &survivors, &p);
        for (r, owners) in &before {
            if owners[0] != "a3" {
                assert_eq!(&after[r], owners, "{r} moved although its owner lives");
            } else {
                assert_ne!(after[r][0], "a3");
            }
        }
        // a3 returns: exactly the same placement as before (no flapping after a heal).
        assert_eq!(placement(&rs, &ms, &p), before);
    }

    #[test]
    fn load_spreads_evenly() {
        let names = [("a1", "lis"), ("a2", "lis"), ("a3", "lis"), ("a4", "lis")];
        let ms = members(&names);
        let p = OwnershipPolicy::default();
        let mut per: HashMap<String, usize> = HashMap::new();
        for owners in placement(&routers(4_000, "lis"), &ms, &p).into_values() {
            *per.entry(owners[0].clone()).or_default() += 1;
        }
        for (agent, n) in per {
            assert!((850..=1_150).contains(&n), "{agent} owns {n} of 4000");
        }
    }

    #[test]
    fn replication_two_uses_distinct_agents() {
        let names = [("a1", "lis"), ("a2", "lis"), ("a3", "lis")];
        let ms = members(&names);
        let p = OwnershipPolicy {
            replication: 2,
            ..OwnershipPolicy::default()
        };
        for owners in placement(&routers(200, "lis"), &ms, &p).into_values() {
            assert_eq!(owners.len(), 2);
            assert_ne!(owners[0], owners[1]);
        }
    }

    #[test]
    fn site_affinity_and_cross_site_policy() {
        let names = [("a1", "lis"), ("b1", "opo"), ("b2", "opo")];
        let ms = members(&names);
        let r = Router {
            id: "edge-lis-1",
            site: "lis",
            needs: Capability::RouterOs,
        };
        let p = OwnershipPolicy::default();
        assert_eq!(owners(&r, &ms, &p), ["a1"], "the own site first");
        let lisbon_dead: Vec<Member<'_>> = ms.iter().copied().filter(|m| m.site != "lis").collect();
        assert_eq!(
            owners(&r, &lisbon_dead, &p).len(),
            1,
            "taken over across sites"
        );
        let never = OwnershipPolicy {
            cross_site: CrossSite::Never,
            ..p
        };
        assert!(owners(&r, &lisbon_dead, &never).is_empty());
        let fill = OwnershipPolicy {
            replication: 2,
            cross_site: CrossSite::ToReplication,
        };
        let o = owners(&r, &ms, &fill);
        assert_eq!((o.len(), o[0]), (2, "a1"));
    }

    #[test]
    fn capabilities_filter_and_round_trip() {
        let ms = [
            Member {
                agent: "icmp-only",
                site: "lis",
                capabilities: Capabilities::of(&[Capability::Icmp]),
            },
            Member {
                agent: "full",
                site: "lis",
                capabilities: all(),
            },
        ];
        let r = Router {
            id: "r1",
            site: "lis",
            needs: Capability::Snmp,
        };
        assert_eq!(owners(&r, &ms, &OwnershipPolicy::default()), ["full"]);
        let caps = Capabilities::of(&[Capability::RouterOs, Capability::Icmp]);
        assert_eq!(caps.encode(), "routeros,icmp");
        assert_eq!(Capabilities::decode("routeros,icmp,teleport"), caps);
    }
}
