//! The control plane: BGP sessions, OSPF adjacencies and neighbour discovery, as they
//! stand at an instant given the fault log.
//!
//! Rules, kept simple on purpose but the ones a monitor must get right:
//! - An OSPF adjacency exists while its link is up; it drops the instant the link goes
//!   down (loss of carrier) and is back `converge_s` after the link returns.
//! - A BGP session drops at once when its own router goes down or either end shuts it;
//!   when its path (`via`) or its peer disappears it survives for the hold time, and goes
//!   down only if the outage lasts longer. It is back `converge_s` after the cause ends.
//! - `/ip/neighbor` (MNDP) lists the router at the other end of every link that is up.

use crate::faults::{Fault, FaultRecord, Span, covered, outages_started, up_since};
use crate::network::{LinkModel, Network};
use crate::router_state::RouterModel;
use crate::seed;
use crate::topology::{BgpKind, Topology};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// A BGP session between side 0 (the configured router) and side 1 (the peer).
#[derive(Debug, Clone)]
pub struct SessionModel {
    /// Router index of each side; side 1 is `None` for an external peer.
    pub routers: [Option<usize>; 2],
    pub addrs: [Ipv4Addr; 2],
    pub asns: [u32; 2],
    pub kind: BgpKind,
    /// `(router index, interface index)` the session depends on.
    pub via: Option<(usize, usize)>,
    /// Prefixes each side receives when established.
    pub prefixes: [u64; 2],
    pub names: [String; 2],
    /// When the session was (notionally) established before any fault.
    pub base_since: f64,
    seed: u64,
}

/// All BGP sessions, and which routers show which.
#[derive(Debug, Clone, Default)]
pub struct RoutingTables {
    pub sessions: Vec<SessionModel>,
    /// Per router: `(session index, side)`.
    pub by_router: Vec<Vec<(usize, usize)>>,
}

fn address_on(model: &RouterModel, iface: usize) -> Option<Ipv4Addr> {
    let name = &model.interfaces.get(iface)?.spec.name;
    model
        .addresses
        .iter()
        .find(|a| &a.interface == name)
        .map(|a| a.address)
}

impl RoutingTables {
    /// Resolves the topology's `[[bgp]]` entries to router indices and addresses.
    pub fn build(
        topology: &Topology,
        models: &[RouterModel],
        by_id: &HashMap<String, usize>,
        links: &[LinkModel],
    ) -> RoutingTables {
        let mut tables = RoutingTables {
            sessions: Vec::with_capacity(topology.bgp.len()),
            by_router: vec![Vec::new(); models.len()],
        };
        let partner = |r: usize, i: usize| {
            links.iter().find_map(|l| {
                if l.ends[0] == (r, i) {
                    Some(l.ends[1])
                } else if l.ends[1] == (r, i) {
                    Some(l.ends[0])
                } else {
                    None
                }
            })
        };
        for spec in &topology.bgp {
            let Some(&r0) = by_id.get(&spec.router) else {
                continue;
            };
            let r1 = spec
                .peer_router
                .as_ref()
                .and_then(|p| by_id.get(p).copied());
            let via = spec.via.as_deref().and_then(|v| {
                let (r, i) = v.split_once(':')?;
                let ri = *by_id.get(r)?;
                Some((ri, models.get(ri)?.interface_index(i)?))
            });
            let router_id = |r: usize| models.get(r).map_or(Ipv4Addr::UNSPECIFIED, |m| m.router_id);
            let on_link = via.and_then(|(vr, vi)| {
                let here = address_on(models.get(vr)?, vi)?;
                let there = partner(vr, vi)
                    .and_then(|(pr, pi)| address_on(models.get(pr)?, pi))
                    .or(spec.peer_address);
                Some(if vr == r0 {
                    (here, there?)
                } else {
                    (there?, here)
                })
            });
            let addrs = match on_link {
                Some((a, b)) if spec.kind == BgpKind::Ebgp => [a, b],
                _ => [
                    router_id(r0),
                    r1.map(router_id)
                        .or(spec.peer_address)
                        .unwrap_or(Ipv4Addr::UNSPECIFIED),
                ],
            };
            let peer_name = spec
                .peer_router
                .clone()
                .unwrap_or_else(|| format!("as{}", spec.peer_as));
            let name0 = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("to-{peer_name}"));
            let name1 = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("to-{}", spec.router));
            let s = seed::seed_of(&["bgp", &spec.router, &peer_name]);
            let boots = [Some(r0), r1]
                .into_iter()
                .flatten()
                .filter_map(|r| models.get(r).map(|m| m.boot_s))
                .fold(f64::NEG_INFINITY, f64::max);
            let peer_prefixes = spec
                .peer_prefixes
                .map_or_else(|| seed::int_between(s, 1, 12, 400), u64::from);
            let index = tables.sessions.len();
            tables.sessions.push(SessionModel {
                routers: [Some(r0), r1],
                addrs,
                asns: [spec.local_as, spec.peer_as],
                kind: spec.kind,
                via,
                prefixes: [u64::from(spec.prefixes), peer_prefixes],
                names: [name0, name1],
                base_since: boots + seed::between(s, 2, 20.0, 600.0),
                seed: s,
            });
            if let Some(list) = tables.by_router.get_mut(r0) {
                list.push((index, 0));
            }
            if let Some(list) = r1.and_then(|r| tables.by_router.get_mut(r)) {
                list.push((index, 1));
            }
        }
        tables
    }
}

/// One BGP session as one of its routers reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpLive {
    pub name: String,
    pub local_address: Ipv4Addr,
    pub remote_address: Ipv4Addr,
    pub local_as: u32,
    pub remote_as: u32,
    pub kind: BgpKind,
    pub established: bool,
    /// Seconds since established (0 when not).
    pub uptime_s: u64,
    /// Prefixes received (0 when not established).
    pub prefixes: u64,
    /// Shut down on this router.
    pub disabled: bool,
    pub updates_sent: u64,
    pub updates_received: u64,
}

/// One OSPF neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct OspfLive {
    pub area: String,
    /// The local interface the adjacency is on.
    pub interface: String,
    /// The neighbour's interface address.
    pub address: Ipv4Addr,
    pub router_id: Ipv4Addr,
    pub state_changes: u64,
    pub adjacency_s: u64,
}

/// One `/ip/neighbor` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborLive {
    pub interface: String,
    pub address: Option<Ipv4Addr>,
    pub mac_address: String,
    pub identity: String,
    pub version: String,
    pub board: String,
}

impl Network {
    fn shut_side(&self, session: &SessionModel, rec: &FaultRecord) -> Option<usize> {
        let Fault::BgpShut { router, peer } = &rec.fault else {
            return None;
        };
        let who = self.index_of(router)?;
        (0..2).find(|&k| {
            let other = 1 - k;
            session.routers[k] == Some(who)
                && (session.routers[other]
                    .and_then(|o| self.model(o))
                    .is_some_and(|m| &m.spec.id == peer)
                    || session.addrs[other].to_string() == *peer)
        })
    }

    /// The spans when session `s` is down as seen from `side`, and whether this side
    /// has it shut down at `now_s`.
    fn session_down_spans(
        &self,
        log: &[FaultRecord],
        session: &SessionModel,
        side: usize,
        now_s: f64,
    ) -> (Vec<Span>, bool) {
        let settings = &self.topology.settings;
        let (hold, conv) = (settings.bgp_hold_time_s, settings.converge_s);
        let mut spans = Vec::new();
        if let Some(me) = session.routers[side] {
            spans.extend(
                self.offline_spans(log, me)
                    .into_iter()
                    .map(|s| s.extended(conv)),
            );
        }
        if let Some(other) = session.routers[1 - side] {
            for s in self.offline_spans(log, other) {
                spans.push(Span::new(s.from + hold.min(s.len()), s.to + conv));
            }
        }
        if let Some((vr, vi)) = session.via {
            let mut path = self.iface_down_spans(log, vr, vi);
            path.extend(self.upstream_loss_spans(log, vr, vi));
            for s in path {
                if s.len() > hold {
                    spans.push(Span::new(s.from + hold, s.to + conv));
                }
            }
        }
        let mut disabled = false;
        for rec in log {
            if let Some(k) = self.shut_side(session, rec) {
                spans.push(rec.span().extended(conv));
                if k == side && rec.active_at(now_s) {
                    disabled = true;
                }
            }
        }
        (spans, disabled)
    }

    /// The BGP sessions router `r` shows at `now_s`.
    pub fn bgp_sessions(&self, r: usize, now_s: f64) -> Vec<BgpLive> {
        let Some(list) = self.routing.by_router.get(r) else {
            return Vec::new();
        };
        self.with_log(|log| {
            list.iter()
                .filter_map(|&(index, side)| {
                    let session = self.routing.sessions.get(index)?;
                    let (spans, disabled) = self.session_down_spans(log, session, side, now_s);
                    let boot = self.boot_s(log, r, now_s);
                    let since = up_since(&spans, now_s, session.base_since.max(boot));
                    let uptime_s = since.map_or(0, |t| RouterModel::uptime_since(t, now_s));
                    let established = since.is_some();
                    let full = session.prefixes[side];
                    let prefixes = if established {
                        jitter_prefixes(full, session.seed, now_s)
                    } else {
                        0
                    };
                    let other = 1 - side;
                    Some(BgpLive {
                        name: session.names[side].clone(),
                        local_address: session.addrs[side],
                        remote_address: session.addrs[other],
                        local_as: session.asns[side],
                        remote_as: session.asns[other],
                        kind: session.kind,
                        established,
                        uptime_s,
                        prefixes,
                        disabled,
                        updates_sent: if established {
                            session.prefixes[other].min(50) + uptime_s / 90
                        } else {
                            0
                        },
                        updates_received: if established {
                            prefixes + uptime_s / 20
                        } else {
                            0
                        },
                    })
                })
                .collect()
        })
    }

    /// The OSPF neighbours router `r` has at `now_s`.
    pub fn ospf_neighbors(&self, r: usize, now_s: f64) -> Vec<OspfLive> {
        let Some(model) = self.model(r) else {
            return Vec::new();
        };
        let conv = self.topology.settings.converge_s;
        self.with_log(|log| {
            let boot = self.boot_s(log, r, now_s);
            (0..model.interfaces.len())
                .filter_map(|i| {
                    let (link, pr, pi) = self.link_partner(r, i)?;
                    let area = self.links.get(link)?.ospf_area.clone()?;
                    let partner = self.model(pr)?;
                    let spans: Vec<Span> = self
                        .iface_down_spans(log, r, i)
                        .into_iter()
                        .map(|s| s.extended(conv))
                        .collect();
                    let base = boot.max(self.boot_s(log, pr, now_s));
                    let since = up_since(&spans, now_s, base)?;
                    if since > now_s {
                        return None;
                    }
                    Some(OspfLive {
                        area,
                        interface: model.interfaces.get(i)?.spec.name.clone(),
                        address: address_on(partner, pi).unwrap_or(Ipv4Addr::UNSPECIFIED),
                        router_id: partner.router_id,
                        state_changes: 5 + 6 * outages_started(&spans, boot, now_s),
                        adjacency_s: RouterModel::uptime_since(since, now_s),
                    })
                })
                .collect()
        })
    }

    /// The `/ip/neighbor` entries of router `r` at `now_s`.
    pub fn ip_neighbors(&self, r: usize, now_s: f64) -> Vec<NeighborLive> {
        let Some(model) = self.model(r) else {
            return Vec::new();
        };
        self.with_log(|log| {
            let own = self.offline_spans(log, r);
            (0..model.interfaces.len())
                .filter_map(|i| {
                    let (_, pr, pi) = self.link_partner(r, i)?;
                    let mut down = self.iface_down_spans(log, r, i);
                    down.retain(|s| !own.contains(s));
                    if covered(&down, now_s) {
                        return None;
                    }
                    let partner = self.model(pr)?;
                    Some(NeighborLive {
                        interface: model.interfaces.get(i)?.spec.name.clone(),
                        address: address_on(partner, pi),
                        mac_address: partner.interfaces.get(pi)?.mac_string(),
                        identity: partner.spec.identity.clone(),
                        version: crate::ros_format::version_string(
                            &partner.spec.ros_version,
                            partner.version,
                        ),
                        board: partner.spec.board.clone(),
                    })
                })
                .collect()
        })
    }
}

/// A full table moves by a few hundred prefixes from minute to minute; small tables hold.
fn jitter_prefixes(full: u64, seed: u64, now_s: f64) -> u64 {
    if full < 10_000 {
        return full;
    }
    let minute = if now_s.is_finite() {
        (now_s / 60.0).floor() as i64 as u64
    } else {
        0
    };
    let delta = seed::between(seed ^ minute, 3, -300.0, 300.0);
    (full as f64 + delta).max(0.0) as u64
}
