//! Generated topologies of any size, for scale tests and benchmarks.
//!
//! [`Topology::generated`] builds an ISP of `n` routers the way a growing regional ISP
//! looks: points of presence of about 20 routers each (two cores, an aggregation ring of
//! four, access routers hanging off the ring), the cores of neighbouring PoPs linked in a
//! backbone ring, OSPF area 0 on core and aggregation links, and iBGP from every core to
//! the first PoP's first core. Everything is deterministic in `n`.

use crate::topology::{
    BgpKind, BgpSpec, Credentials, InterfaceSpec, LinkSpec, RouterSpec, Settings, Site, Topology,
};
use ispvm_proto::DeviceRole;

/// Routers per point of presence.
pub const POP_SIZE: usize = 20;
/// Aggregation routers per PoP (in a ring between the two cores).
const AGGS: usize = 4;

struct Builder {
    routers: Vec<RouterSpec>,
    links: Vec<LinkSpec>,
    ports: Vec<u32>,
}

impl Builder {
    /// Adds a 10G port to router `r` and returns its endpoint name.
    fn port(&mut self, r: usize) -> Option<String> {
        let count = self.ports.get_mut(r)?;
        *count += 1;
        let name = format!("sfp-sfpplus{count}");
        let router = self.routers.get_mut(r)?;
        router.interfaces.push(InterfaceSpec {
            name: name.clone(),
            kind: "ether".to_owned(),
            speed_mbps: 10_000,
            uplink: false,
        });
        Some(format!("{}:{name}", router.id))
    }

    fn link(&mut self, a: usize, b: usize, ospf: bool, a_is_uplink: bool) {
        let (Some(ea), Some(eb)) = (self.port(a), self.port(b)) else {
            return;
        };
        if a_is_uplink
            && let Some(iface) = self
                .routers
                .get_mut(a)
                .and_then(|r| r.interfaces.last_mut())
        {
            iface.uplink = true;
        }
        self.links.push(LinkSpec {
            a: ea,
            b: eb,
            capacity_mbps: 10_000,
            ospf_area: ospf.then(|| "0".to_owned()),
        });
    }
}

impl Topology {
    /// An ISP of exactly `n` routers in PoPs of [`POP_SIZE`] (see the module docs).
    pub fn generated(n: usize) -> Topology {
        let pops = n.div_ceil(POP_SIZE).max(1);
        let mut sites = Vec::with_capacity(pops);
        let mut b = Builder {
            routers: Vec::with_capacity(n),
            links: Vec::new(),
            ports: Vec::with_capacity(n),
        };
        for p in 0..pops {
            let site = format!("pop{p:03}");
            sites.push(Site {
                id: site.clone(),
                name: format!("PoP {p}"),
                lat: 35.0 + (p % 20) as f64 * 0.5,
                lon: -10.0 + (p / 20) as f64 * 0.7,
            });
            for k in 0..POP_SIZE.min(n - b.routers.len()) {
                let (role, name) = match k {
                    0 | 1 => (DeviceRole::Core, format!("core{}", k + 1)),
                    k if k < 2 + AGGS => (DeviceRole::Agg, format!("agg{}", k - 1)),
                    k => (DeviceRole::Access, format!("acc{}", k - 1 - AGGS)),
                };
                let id = format!("{site}-{name}");
                let (version, board) = match (role, b.routers.len() % 5) {
                    (DeviceRole::Core, _) => ("7.16.1", "CCR2216-1G-12XS-2XQ"),
                    (DeviceRole::Agg, _) => ("7.15.3", "CCR2004-1G-12S+2XS"),
                    (_, 0) => ("6.49.15", "CCR1009-7G-1C-1S+"),
                    _ => ("7.16.1", "RB5009UG+S+IN"),
                };
                b.routers.push(RouterSpec {
                    identity: id.to_uppercase(),
                    id,
                    site: site.clone(),
                    role,
                    ros_version: version.to_owned(),
                    board: board.to_owned(),
                    credentials: None,
                    pppoe_subscribers: None,
                    dhcp_leases: (role == DeviceRole::Access).then_some(120),
                    interfaces: vec![
                        InterfaceSpec {
                            name: "ether1".to_owned(),
                            kind: "ether".to_owned(),
                            speed_mbps: 1000,
                            uplink: false,
                        },
                        InterfaceSpec {
                            name: "loopback".to_owned(),
                            kind: "bridge".to_owned(),
                            speed_mbps: 0,
                            uplink: false,
                        },
                    ],
                });
                b.ports.push(0);
            }
        }
        let mut bgp = Vec::new();
        for p in 0..pops {
            let base = p * POP_SIZE;
            let size = POP_SIZE.min(n - base);
            let exists = |k: usize| k < size;
            if exists(1) {
                b.link(base, base + 1, true, false);
            }
            // Aggregation ring: core1 - agg1 - ... - aggN - core2.
            let ring: Vec<usize> = [0]
                .into_iter()
                .chain(2..2 + AGGS)
                .chain([1])
                .filter(|&k| exists(k))
                .collect();
            for pair in ring.windows(2) {
                b.link(base + pair[0], base + pair[1], true, false);
            }
            for k in (2 + AGGS)..size {
                let agg = 2 + (k - 2 - AGGS) % AGGS;
                b.link(base + k, base + agg, false, true);
            }
            // Backbone ring between PoPs (core2 here to core1 of the next PoP).
            if pops > 1 && exists(1) {
                let next = ((p + 1) % pops) * POP_SIZE;
                if next != base && next < n && (pops > 2 || p == 0) {
                    b.link(base + 1, next, true, false);
                }
            }
            for k in 0..2 {
                if exists(k) && base + k != 0 {
                    bgp.push(BgpSpec {
                        router: b
                            .routers
                            .get(base + k)
                            .map(|r| r.id.clone())
                            .unwrap_or_default(),
                        peer_router: b.routers.first().map(|r| r.id.clone()),
                        peer_address: None,
                        peer_as: 64_500,
                        local_as: 64_500,
                        kind: BgpKind::Ibgp,
                        via: None,
                        prefixes: 950_000,
                        peer_prefixes: None,
                        name: None,
                    });
                }
            }
        }
        Topology {
            name: format!("Generated ISP ({n} routers)"),
            credentials: Credentials::default(),
            sites,
            routers: b.routers,
            links: b.links,
            settings: Settings::default(),
            bgp,
            probe_targets: Vec::new(),
            timeline: Vec::new(),
            scenario: None,
            maintenance: Vec::new(),
            expect: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_topologies_are_valid_and_exact() {
        for n in [1, 2, 7, 20, 21, 45, 1000] {
            let t = Topology::generated(n);
            assert_eq!(t.routers.len(), n);
            t.validate().expect("valid");
        }
        let t = Topology::generated(100);
        assert_eq!(t.sites.len(), 5);
        assert!(t.links.len() > 100);
        assert!(t.links.iter().any(|l| l.ospf_area.is_some()));
    }
}
