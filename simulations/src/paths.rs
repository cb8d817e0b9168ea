//! Paths through the virtual ISP: whether two routers can reach each other at an
//! instant, and what the path does to packets (loss, extra delay).
//!
//! An endpoint of the simulation (an agent, the server, a client in a test) sits on a
//! router ([`crate::attach`]); whether its packets reach another router is decided here,
//! from the same fault log every router reports from, so what the API shows (a cut link
//! not running) and what the traffic sees (no path) always agree.
//!
//! # Model
//!
//! - The graph has the routers as nodes and the links as edges. A router is **off**
//!   while `router_down` or a `reboot` (for `settings.reboot_s`) holds it; a link is
//!   **cut** by `link_cut` or by a `site_partition` of a site that holds exactly one of
//!   its ends. Off routers and cut links carry nothing, and a router that is off reaches
//!   nothing, not even itself.
//! - The path is the **shortest by hop count** over what is up (breadth-first search; the
//!   first link of the topology wins among equal paths), standing in for an IGP with
//!   equal link costs. It is not chosen to avoid congestion, as OSPF would not either.
//! - A `congestion` fault on a link of the path adds loss and queueing delay that grow
//!   with its utilisation ([`congestion_effect`]): nothing up to 0.9, then, with
//!   `x = (u − 0.9) / 0.1`, loss `5 % × x²` and one-way delay `40 ms × x` per congested
//!   link (so 5 % and 40 ms at utilisation 1.0). A queue fills before it drops, hence
//!   delay first, loss mostly near saturation. Losses of several links compound as
//!   independent drops, delays add.
//! - `management_down`, `slow_api` and `flaky_api` concern a router's API only: the data
//!   plane still forwards, so paths through the router are unaffected. `upstream_loss`
//!   concerns traffic to the outside, not between routers. `bgp_shut` changes no path
//!   (BGP state is not routing here).
//!
//! # Cost
//!
//! Queries come per datagram and per connection, so the graph of what is up is built
//! once per version of the fault log and time window (a reboot's end flips state without
//! a change to the log), and shortest paths from a router are computed the first time
//! that router is asked about within a window: `O(routers + links)` per source, then a
//! lookup.

use crate::faults::{Fault, FaultRecord, covered};
use crate::network::Network;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Utilisation from which a congested link starts to queue.
pub const CONGESTION_ONSET: f64 = 0.9;
/// Loss one link adds at utilisation 1.0.
pub const CONGESTION_MAX_LOSS: f64 = 0.05;
/// One-way queueing delay one link adds at utilisation 1.0.
pub const CONGESTION_MAX_DELAY: Duration = Duration::from_millis(40);

/// What a path that is up does to the packets crossing it, one way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathQuality {
    /// Links crossed (0 between a router and itself).
    pub hops: u32,
    /// Chance that a packet is lost on the way, 0..=1.
    pub loss: f64,
    /// Extra one-way delay (queueing on congested links).
    pub delay: Duration,
}

impl PathQuality {
    /// A path of no length: a router to itself.
    pub const LOCAL: PathQuality = PathQuality {
        hops: 0,
        loss: 0.0,
        delay: Duration::ZERO,
    };

    /// This path followed by one more link with `loss` and `delay`.
    fn then(self, loss: f64, delay: Duration) -> PathQuality {
        PathQuality {
            hops: self.hops.saturating_add(1),
            loss: 1.0 - (1.0 - self.loss) * (1.0 - loss),
            delay: self.delay.saturating_add(delay),
        }
    }

    /// Whether a packet crossing the path one way is dropped (random draw).
    pub fn drops(&self) -> bool {
        self.loss > 0.0 && rand::random::<f64>() < self.loss
    }
}

/// Where a peer stands toward a router, as far as the simulated network is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// The peer's address is not attached to any router: it is outside the model
    /// (the demo, every test that connects from 127.0.0.1) and always gets through.
    Outside,
    /// A path joins the peer's router and the router, with this quality one way.
    Up(PathQuality),
    /// No path: nothing the peer sends arrives, nothing comes back.
    Down,
}

impl Reach {
    /// Whether packets get through at all.
    pub fn is_up(&self) -> bool {
        !matches!(self, Reach::Down)
    }

    /// The quality of the path (perfect for a peer outside the model); `None` when down.
    pub fn quality(&self) -> Option<PathQuality> {
        match self {
            Reach::Outside => Some(PathQuality::LOCAL),
            Reach::Up(q) => Some(*q),
            Reach::Down => None,
        }
    }
}

/// Loss and one-way delay a link at `utilisation` (0..=1) adds; see the module
/// documentation for the model.
pub fn congestion_effect(utilisation: f64) -> (f64, Duration) {
    if !utilisation.is_finite() || utilisation <= CONGESTION_ONSET {
        return (0.0, Duration::ZERO);
    }
    let x = ((utilisation - CONGESTION_ONSET) / (1.0 - CONGESTION_ONSET)).clamp(0.0, 1.0);
    (CONGESTION_MAX_LOSS * x * x, CONGESTION_MAX_DELAY.mul_f64(x))
}

/// One usable link, seen from one of its ends.
#[derive(Debug, Clone, Copy)]
struct Edge {
    to: usize,
    loss: f64,
    delay: Duration,
}

/// What is up during one window of time.
#[derive(Debug)]
struct Graph {
    router_up: Vec<bool>,
    /// Per router, the links that are not cut (ends may still be off).
    edges: Vec<Vec<Edge>>,
}

/// Shortest paths from one router: per destination, the quality of the path or `None`.
type Tree = Vec<Option<PathQuality>>;

#[derive(Debug)]
struct Snapshot {
    version: u64,
    /// The window `[from, to)` of time over which no fault starts or ends.
    from: f64,
    to: f64,
    graph: Graph,
    trees: Vec<Option<Arc<Tree>>>,
}

/// The cache of paths a [`Network`] keeps; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct PathCache {
    snapshot: Mutex<Option<Snapshot>>,
}

impl PathCache {
    /// The path from router `from` to router `to` at `now_s`, given the log and its
    /// version.
    fn query(
        &self,
        net: &Network,
        version: u64,
        log: &[FaultRecord],
        from: usize,
        to: usize,
        now_s: f64,
    ) -> Option<PathQuality> {
        let mut guard = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = guard
            .as_ref()
            .is_some_and(|s| s.version == version && s.from <= now_s && now_s < s.to);
        if !fresh {
            let (window_from, window_to) = window(net, log, now_s);
            let graph = build_graph(net, log, now_s);
            *guard = Some(Snapshot {
                version,
                from: window_from,
                to: window_to,
                trees: vec![None; graph.router_up.len()],
                graph,
            });
        }
        let snapshot = guard.as_mut()?;
        let tree = match snapshot.trees.get(from)? {
            Some(tree) => Arc::clone(tree),
            None => {
                let tree = Arc::new(shortest_paths(&snapshot.graph, from));
                if let Some(slot) = snapshot.trees.get_mut(from) {
                    *slot = Some(Arc::clone(&tree));
                }
                tree
            }
        };
        tree.get(to).copied().flatten()
    }
}

/// The window of time around `now_s` in which no fault of the log starts or ends (a
/// reboot also ends its outage `reboot_s` after it starts).
fn window(net: &Network, log: &[FaultRecord], now_s: f64) -> (f64, f64) {
    let reboot_s = net.topology().settings.reboot_s;
    let mut from = f64::NEG_INFINITY;
    let mut to = f64::INFINITY;
    for rec in log {
        let mut edges = vec![rec.from_s];
        edges.extend(rec.to_s);
        if matches!(rec.fault, Fault::Reboot { .. }) {
            edges.push(rec.from_s + reboot_s);
        }
        for t in edges {
            if t <= now_s {
                from = from.max(t);
            } else {
                to = to.min(t);
            }
        }
    }
    (from, to)
}

/// Which routers are on and which links carry traffic at `now_s`.
fn build_graph(net: &Network, log: &[FaultRecord], now_s: f64) -> Graph {
    let n = net.len();
    let router_up: Vec<bool> = (0..n)
        .map(|r| !covered(&net.offline_spans(log, r), now_s))
        .collect();
    let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); n];
    let active: Vec<&FaultRecord> = log.iter().filter(|r| r.active_at(now_s)).collect();
    for (k, link) in net.links.iter().enumerate() {
        if active.iter().any(|rec| net.cuts_link(&rec.fault, k)) {
            continue;
        }
        let utilisation = active
            .iter()
            .filter_map(|rec| match &rec.fault {
                Fault::Congestion { a, b, utilisation }
                    if net.topology().link_between(a, b).map(|(spec, _)| spec)
                        == Some(link.spec) =>
                {
                    Some(*utilisation)
                }
                _ => None,
            })
            .fold(0.0, f64::max);
        let (loss, delay) = congestion_effect(utilisation);
        let [(a, _), (b, _)] = link.ends;
        if let Some(list) = edges.get_mut(a) {
            list.push(Edge { to: b, loss, delay });
        }
        if let Some(list) = edges.get_mut(b) {
            list.push(Edge { to: a, loss, delay });
        }
    }
    Graph { router_up, edges }
}

/// Breadth-first search from `source` over routers that are on.
fn shortest_paths(graph: &Graph, source: usize) -> Tree {
    let mut tree: Tree = vec![None; graph.router_up.len()];
    if !graph.router_up.get(source).copied().unwrap_or(false) {
        return tree;
    }
    if let Some(slot) = tree.get_mut(source) {
        *slot = Some(PathQuality::LOCAL);
    }
    let mut queue = std::collections::VecDeque::from([source]);
    while let Some(u) = queue.pop_front() {
        let Some(here) = tree.get(u).copied().flatten() else {
            continue;
        };
        for edge in graph.edges.get(u).map(Vec::as_slice).unwrap_or_default() {
            let on = graph.router_up.get(edge.to).copied().unwrap_or(false);
            if let Some(slot) = tree.get_mut(edge.to)
                && on
                && slot.is_none()
            {
                *slot = Some(here.then(edge.loss, edge.delay));
                queue.push_back(edge.to);
            }
        }
    }
    tree
}

impl Network {
    /// The path between routers `from` and `to` (topology indices) at Unix time `now_s`:
    /// `None` when no chain of links that are not cut, through routers that are on,
    /// joins them (or an index is out of range). Paths are symmetric.
    pub fn path(&self, from: usize, to: usize, now_s: f64) -> Option<PathQuality> {
        self.with_versioned_log(|version, log| {
            self.paths.query(self, version, log, from, to, now_s)
        })
    }

    /// [`Network::path`] by router id; `Err` names an id that is not a router.
    pub fn path_between(
        &self,
        from: &str,
        to: &str,
        now_s: f64,
    ) -> Result<Option<PathQuality>, crate::faults::FaultError> {
        let index = |id: &str| {
            self.index_of(id)
                .ok_or_else(|| crate::faults::FaultError::UnknownRouter(id.to_owned()))
        };
        Ok(self.path(index(from)?, index(to)?, now_s))
    }

    /// Whether a peer at address `peer` reaches router `router` at `now_s`: outside the
    /// model when the address is not attached, else the path from its router.
    pub fn reach(&self, peer: IpAddr, router: usize, now_s: f64) -> Reach {
        match self.attachments.router_of(peer) {
            None => Reach::Outside,
            Some(at) => match self.path(at, router, now_s) {
                Some(q) => Reach::Up(q),
                None => Reach::Down,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::time::SystemTime;

    const NOW: f64 = 1_732_050_000.0;

    /// Four routers in a ring r1–r2–r3–r4–r1, two sites (r1, r2 in `a`; r3, r4 in `b`).
    fn ring() -> Network {
        let mut text = String::from(
            "name = \"ring\"\n\
             [[sites]]\nid = \"a\"\nname = \"A\"\nlat = 0.0\nlon = 0.0\n\
             [[sites]]\nid = \"b\"\nname = \"B\"\nlat = 0.0\nlon = 1.0\n",
        );
        for i in 1..=4 {
            let site = if i <= 2 { "a" } else { "b" };
            text.push_str(&format!(
                "[[routers]]\nid = \"r{i}\"\nidentity = \"R{i}\"\nsite = \"{site}\"\nrole = \"core\"\n\
                 ros_version = \"7.16\"\nboard = \"CCR2004-1G-12S+2XS\"\n\
                 [[routers.interfaces]]\nname = \"e1\"\nkind = \"ether\"\nspeed_mbps = 10000\n\
                 [[routers.interfaces]]\nname = \"e2\"\nkind = \"ether\"\nspeed_mbps = 10000\n"
            ));
        }
        for i in 1..=4 {
            let j = i % 4 + 1;
            text.push_str(&format!(
                "[[links]]\na = \"r{i}:e2\"\nb = \"r{j}:e1\"\ncapacity_mbps = 10000\n"
            ));
        }
        let topology = Topology::from_toml(&text).expect("ring topology");
        Network::new(topology, SystemTime::now())
    }

    fn cut(net: &Network, i: usize, at: f64) -> crate::faults::FaultId {
        let j = i % 4 + 1;
        net.apply_at(
            Fault::LinkCut {
                a: format!("r{i}:e2"),
                b: format!("r{j}:e1"),
            },
            at,
        )
        .expect("cut")
    }

    fn hops(net: &Network, a: &str, b: &str, at: f64) -> Option<u32> {
        net.path_between(a, b, at).expect("routers").map(|q| q.hops)
    }

    #[test]
    fn one_cut_keeps_a_ring_connected_two_cuts_split_it() {
        let net = ring();
        assert_eq!(hops(&net, "r1", "r3", NOW), Some(2));
        assert_eq!(hops(&net, "r1", "r2", NOW), Some(1));
        assert_eq!(hops(&net, "r2", "r2", NOW), Some(0));
        let first = cut(&net, 1, NOW);
        // r1–r2 cut: the long way round.
        assert_eq!(hops(&net, "r1", "r2", NOW + 1.0), Some(3));
        assert_eq!(hops(&net, "r2", "r1", NOW + 1.0), Some(3));
        // Before the cut (the cache is per window, not per last query).
        assert_eq!(hops(&net, "r1", "r2", NOW - 1.0), Some(1));
        cut(&net, 3, NOW + 2.0);
        // r3–r4 cut as well: {r1, r4} and {r2, r3}.
        assert_eq!(hops(&net, "r1", "r2", NOW + 3.0), None);
        assert_eq!(hops(&net, "r1", "r3", NOW + 3.0), None);
        assert_eq!(hops(&net, "r1", "r4", NOW + 3.0), Some(1));
        assert_eq!(hops(&net, "r2", "r3", NOW + 3.0), Some(1));
        net.clear_at(first, NOW + 4.0).expect("clear");
        assert_eq!(hops(&net, "r1", "r3", NOW + 5.0), Some(2));
        assert!(net.path_between("r1", "r9", NOW).is_err());
    }

    #[test]
    fn routers_that_are_off_carry_nothing_and_reboots_end_on_time() {
        let net = ring();
        let reboot_s = net.topology().settings.reboot_s;
        net.apply_at(
            Fault::Reboot {
                router: "r2".into(),
            },
            NOW,
        )
        .expect("reboot");
        assert_eq!(hops(&net, "r1", "r3", NOW + 1.0), Some(2), "via r4");
        assert_eq!(hops(&net, "r1", "r2", NOW + 1.0), None);
        assert_eq!(
            hops(&net, "r2", "r2", NOW + 1.0),
            None,
            "off reaches nothing"
        );
        // The reboot ends without any change to the log.
        assert_eq!(hops(&net, "r1", "r2", NOW + reboot_s + 0.5), Some(1));
        let down = net
            .apply_at(
                Fault::RouterDown {
                    router: "r4".into(),
                },
                NOW + reboot_s + 1.0,
            )
            .expect("down");
        cut(&net, 2, NOW + reboot_s + 1.0);
        assert_eq!(hops(&net, "r1", "r3", NOW + reboot_s + 2.0), None);
        net.clear_at(down, NOW + reboot_s + 3.0).expect("clear");
        assert_eq!(hops(&net, "r1", "r3", NOW + reboot_s + 4.0), Some(2));
    }

    #[test]
    fn a_site_partition_cuts_only_links_leaving_the_site() {
        let net = ring();
        net.apply_at(Fault::SitePartition { site: "b".into() }, NOW)
            .expect("partition");
        assert_eq!(hops(&net, "r1", "r2", NOW + 1.0), Some(1));
        assert_eq!(hops(&net, "r3", "r4", NOW + 1.0), Some(1));
        assert_eq!(hops(&net, "r1", "r4", NOW + 1.0), None);
        assert_eq!(hops(&net, "r2", "r3", NOW + 1.0), None);
        // The API agrees: the links leaving the site are not running.
        let r2 = net.index_of("r2").expect("r2");
        let r3 = net.index_of("r3").expect("r3");
        let (e1, e2) = (0, 1);
        net.with_log(|log| {
            assert!(!net.interface_live(log, r2, e2, NOW + 1.0).running);
            assert!(net.interface_live(log, r2, e1, NOW + 1.0).running);
            assert!(net.interface_live(log, r3, e2, NOW + 1.0).running);
        });
    }

    #[test]
    fn congestion_adds_loss_and_delay_and_management_faults_change_nothing() {
        let net = ring();
        net.apply_at(
            Fault::Congestion {
                a: "r1:e2".into(),
                b: "r2:e1".into(),
                utilisation: 1.0,
            },
            NOW,
        )
        .expect("congestion");
        net.apply_at(
            Fault::ManagementDown {
                router: "r2".into(),
            },
            NOW,
        )
        .expect("management");
        let q = net
            .path_between("r1", "r3", NOW + 1.0)
            .expect("routers")
            .expect("up");
        assert_eq!(q.hops, 2);
        assert!((q.loss - CONGESTION_MAX_LOSS).abs() < 1e-9, "{q:?}");
        assert_eq!(q.delay, CONGESTION_MAX_DELAY);
        let q = net
            .path_between("r3", "r4", NOW + 1.0)
            .expect("routers")
            .expect("up");
        assert_eq!((q.loss, q.delay), (0.0, Duration::ZERO));
    }

    #[test]
    fn the_congestion_model() {
        assert_eq!(congestion_effect(0.5), (0.0, Duration::ZERO));
        assert_eq!(congestion_effect(0.9), (0.0, Duration::ZERO));
        let (loss, delay) = congestion_effect(0.95);
        assert!((loss - 0.0125).abs() < 1e-9, "{loss}");
        assert!((delay.as_secs_f64() - 0.020).abs() < 1e-6, "{delay:?}");
        assert_eq!(
            congestion_effect(1.0),
            (CONGESTION_MAX_LOSS, CONGESTION_MAX_DELAY)
        );
        assert_eq!(congestion_effect(f64::NAN), (0.0, Duration::ZERO));
    }
}
