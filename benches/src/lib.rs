//! What several benchmarks share: the synthetic ISP they run on, and a failure in it
//! with what every vantage would observe.

use ispvm_actors::rca::{
    LinkDown, LinkEvidence, LinkUp, Observations, PathObservation, PathTarget, SERVER_VANTAGE,
    Vantage,
};
use ispvm_actors::topology::Topology;
use ispvm_proto::DeviceRole;
use std::collections::{HashMap, HashSet, VecDeque};

/// The shape of a synthetic ISP.
#[derive(Debug, Clone, Copy)]
pub struct IspShape {
    pub pops: usize,
    /// Aggregation routers in each PoP's ring.
    pub ring: usize,
    /// Access routers per aggregation router.
    pub access: usize,
}

/// `pops` PoPs under two upstreams and two edge routers; each PoP has two cores (both
/// on both edges), a ring of `ring` aggregation routers closed on the two cores, and
/// `access` access routers per aggregation router, dual-homed to it and to its ring
/// neighbour. Devices are `pop<P>-core<1|2>`, `pop<P>-agg<I>`, `pop<P>-agg<I>-acc<K>`;
/// links are `<a>~<b>`.
pub fn isp_topology(shape: &IspShape) -> Result<Topology, ispvm_actors::topology::TopologyError> {
    let mut t = Topology::new();
    let link = |t: &mut Topology, x: &str, y: &str| t.upsert_link(&format!("{x}~{y}"), x, y);
    for u in ["up1", "up2"] {
        t.upsert_device(u, DeviceRole::Upstream, None);
    }
    for e in ["edge1", "edge2"] {
        t.upsert_device(e, DeviceRole::Edge, None);
        link(&mut t, "up1", e)?;
        link(&mut t, "up2", e)?;
    }
    for p in 0..shape.pops {
        let site = format!("pop{p}");
        let cores = [format!("{site}-core1"), format!("{site}-core2")];
        for c in &cores {
            t.upsert_device(c, DeviceRole::Core, Some(&site));
            link(&mut t, "edge1", c)?;
            link(&mut t, "edge2", c)?;
        }
        let aggs: Vec<String> = (0..shape.ring).map(|i| format!("{site}-agg{i}")).collect();
        for g in &aggs {
            t.upsert_device(g, DeviceRole::Agg, Some(&site));
        }
        link(&mut t, &cores[0], &aggs[0])?;
        for w in aggs.windows(2) {
            link(&mut t, &w[0], &w[1])?;
        }
        link(&mut t, &aggs[shape.ring - 1], &cores[1])?;
        for (i, g) in aggs.iter().enumerate() {
            let neighbour = &aggs[(i + 1) % shape.ring];
            for k in 0..shape.access {
                let acc = format!("{g}-acc{k}");
                t.upsert_device(&acc, DeviceRole::Access, Some(&site));
                link(&mut t, g, &acc)?;
                link(&mut t, neighbour, &acc)?;
            }
        }
    }
    Ok(t)
}

/// A failure in the synthetic ISP and what the vantages observe of it.
pub struct FailureWorld {
    pub topology: Topology,
    pub observations: Observations,
    /// Devices that died.
    pub dead: HashSet<String>,
    /// Devices the server no longer reaches (dead or cut off).
    pub down: HashSet<String>,
    /// Devices some agent still reaches (their reports arrive).
    pub observable: HashSet<String>,
    /// Device → neighbours.
    pub neighbours: HashMap<String, Vec<String>>,
}

/// Devices reachable from `from` over links whose ends are both alive.
fn reach(
    adj: &HashMap<String, Vec<String>>,
    dead: &HashSet<String>,
    from: &str,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    if dead.contains(from) {
        return seen;
    }
    seen.insert(from.to_owned());
    let mut q = VecDeque::from([from.to_owned()]);
    while let Some(d) = q.pop_front() {
        for n in adj.get(&d).into_iter().flatten() {
            if !dead.contains(n) && seen.insert(n.clone()) {
                q.push_back(n.clone());
            }
        }
    }
    seen
}

/// `pops` PoPs ([`isp_topology`], rings of 8, 6 access routers each); agents on the first
/// core of the first `agents` PoPs, the server on `edge1`. In PoP after PoP two pairs of
/// adjacent aggregation routers die (cutting off the access routers dual-homed to each
/// pair) until at least `down` devices are down. The observations are derived from that
/// truth by graph search: a ping and an API poll of every device from every agent, and
/// every live end's report of its links.
pub fn failure_world(
    pops: usize,
    agents: usize,
    down: usize,
) -> Result<FailureWorld, ispvm_actors::topology::TopologyError> {
    let topology = isp_topology(&IspShape {
        pops,
        ring: 8,
        access: 6,
    })?;
    let device_ids: Vec<String> = topology.devices().map(|(d, _, _)| d.to_owned()).collect();
    let links: Vec<(String, String, String)> = topology
        .links()
        .map(|(l, x, y)| (l.to_owned(), x.to_owned(), y.to_owned()))
        .collect();
    let mut adj: HashMap<String, Vec<String>> = HashMap::new();
    for (_, x, y) in &links {
        adj.entry(x.clone()).or_default().push(y.clone());
        adj.entry(y.clone()).or_default().push(x.clone());
    }
    let agents: Vec<(String, String)> = (0..agents.min(pops))
        .map(|p| (format!("agent-pop{p}"), format!("pop{p}-core1")))
        .collect();
    let mut dead: HashSet<String> = HashSet::new();
    let mut alive = HashSet::new();
    'pops: for p in agents.len()..pops {
        for pair in [[2, 3], [5, 6]] {
            for i in pair {
                dead.insert(format!("pop{p}-agg{i}"));
            }
            alive = reach(&adj, &dead, "edge1");
            if device_ids.len() - alive.len() >= down {
                break 'pops;
            }
        }
    }
    let mut obs = Observations::default();
    obs.vantages.push(Vantage {
        id: SERVER_VANTAGE.into(),
        attached_to: vec!["edge1".into()],
        site: None,
    });
    let mut observable = HashSet::new();
    for (agent, at) in &agents {
        obs.vantages.push(Vantage {
            id: agent.clone(),
            attached_to: vec![at.clone()],
            site: None,
        });
        let seen = reach(&adj, &dead, at);
        for d in &device_ids {
            for target in [
                PathTarget::Device(d.clone()),
                PathTarget::Management(d.clone()),
            ] {
                obs.paths.push(PathObservation {
                    vantage: agent.clone(),
                    target,
                    reached: seen.contains(d),
                    at_ms: 1_000,
                });
            }
        }
        observable.extend(seen);
    }
    for (l, x, y) in &links {
        let up = !dead.contains(x) && !dead.contains(y);
        for end in [x, y] {
            if !observable.contains(end) {
                continue;
            }
            if up {
                obs.links_up.push(LinkUp {
                    link: l.clone(),
                    reported_by: end.clone(),
                });
            } else {
                obs.links_down.push(LinkDown {
                    link: l.clone(),
                    evidence: LinkEvidence::InterfaceDown {
                        device: end.clone(),
                        interface: format!("to-{l}"),
                        uplink: false,
                    },
                    at_ms: 900,
                });
            }
        }
    }
    let down = device_ids
        .into_iter()
        .filter(|d| !alive.contains(d))
        .collect();
    Ok(FailureWorld {
        topology,
        observations: obs,
        dead,
        down,
        observable,
        neighbours: adj,
    })
}
