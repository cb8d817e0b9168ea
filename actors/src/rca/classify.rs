//! From chosen nodes to findings: which kind of fault each is, what it impacts, how
//! sure the analysis is, and the evidence to show.
//!
//! - Links that are every way into a site, failed together: the site is isolated.
//! - A link whose loss cuts nothing off: redundancy is degraded, not service.
//! - A management plane or an agent: never a device outage.
//! - BGP sessions down that no failure of the network explains: the session itself,
//!   or, towards an outside peer whose uplink's traffic also collapsed, the upstream.

use super::finding::{
    Analysis, Cause, CauseEntity, CauseKind, Evidence, Finding, Impact, RunnerUp,
};
use super::net::{Ix, Kind, Net, Node};
use super::observations::{BgpPeer, Observations};
use super::search::{Pick, Problem, Solution, SymptomKind};
use crate::topology::{NodeKey, Topology};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The cause a node stands for when chosen alone.
fn cause_of(net: &Net, node: Ix, cuts_something: bool) -> Option<Cause> {
    let (kind, entity) = match &net.nodes[node as usize] {
        Node::Device(id) => (
            CauseKind::DeviceDown,
            CauseEntity::Device { id: id.clone() },
        ),
        Node::Link(id) => (
            if cuts_something {
                CauseKind::LinkDown
            } else {
                CauseKind::RedundancyDegraded
            },
            CauseEntity::Link { id: id.clone() },
        ),
        Node::Api(id) => (
            CauseKind::ManagementPlane,
            CauseEntity::Device { id: id.clone() },
        ),
        Node::Agent(id) => (CauseKind::AgentLost, CauseEntity::Agent { id: id.clone() }),
        Node::Server => return None,
    };
    Some(Cause { kind, entity })
}

/// What the server no longer reaches when nodes fail.
struct Cuts<'a> {
    net: &'a Net,
    /// The server's dominator tree of the intact network, as children lists: one node
    /// cuts off exactly its subtree, with no search of the whole network.
    below: Vec<Vec<Ix>>,
}

impl<'a> Cuts<'a> {
    fn new(net: &'a Net) -> Self {
        let none = vec![false; net.len()];
        let below = net.dominators(net.server(), &none).children();
        Cuts { net, below }
    }

    fn is_device(&self, n: Ix) -> bool {
        matches!(self.net.nodes[n as usize], Node::Device(_))
    }

    /// Devices cut off when `nodes` fail together.
    fn devices(&self, nodes: &[Ix]) -> BTreeSet<Ix> {
        if let [one] = nodes {
            let mut out = BTreeSet::new();
            let mut stack = vec![*one];
            while let Some(n) = stack.pop() {
                if self.is_device(n) {
                    out.insert(n);
                }
                stack.extend(self.below[n as usize].iter().copied());
            }
            return out;
        }
        let mut failed = vec![false; self.net.len()];
        for n in nodes {
            failed[*n as usize] = true;
        }
        let reached = self.net.reach(self.net.server(), &failed);
        (0..self.net.len() as Ix)
            .filter(|n| self.is_device(*n) && !reached[*n as usize])
            .collect()
    }
}

struct Builder<'a> {
    net: &'a Net,
    cuts: Cuts<'a>,
    problem: &'a Problem,
    obs: &'a Observations,
    topology: &'a mut Topology,
}

impl Builder<'_> {
    fn impact(&mut self, failed: &[Ix], extra_devices: &[Ix]) -> Impact {
        let mut devices: BTreeSet<Ix> = self.cuts.devices(failed);
        devices.extend(extra_devices.iter().copied());
        let keys: Vec<NodeKey> = failed
            .iter()
            .filter_map(|n| match &self.net.nodes[*n as usize] {
                Node::Device(d) => Some(NodeKey::Device(d.clone())),
                Node::Link(l) => Some(NodeKey::Link(l.clone())),
                _ => None,
            })
            .collect();
        let mut services = BTreeSet::new();
        let mut names: BTreeSet<String> = devices
            .iter()
            .filter_map(|n| match &self.net.nodes[*n as usize] {
                Node::Device(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            for k in self.topology.impact_of_all(&keys) {
                match k {
                    NodeKey::Service(s) => {
                        services.insert(s);
                    }
                    // Declared dependencies take devices the network alone would not.
                    NodeKey::Device(d) => {
                        names.insert(d);
                    }
                    _ => {}
                }
            }
        }
        let sites: BTreeSet<String> = names
            .iter()
            .filter_map(|d| {
                self.topology
                    .device(d)
                    .and_then(|(_, s)| s.map(str::to_owned))
            })
            .collect();
        Impact {
            devices: names.into_iter().collect(),
            sites: sites.into_iter().collect(),
            services: services.into_iter().collect(),
        }
    }

    fn evidence(&self, symptoms: &[usize]) -> (Vec<Evidence>, i64) {
        let mut since = i64::MAX;
        let evidence = symptoms
            .iter()
            .map(|&i| {
                let s = &self.problem.symptoms[i];
                since = since.min(s.at_ms);
                Evidence {
                    at_ms: s.at_ms,
                    weight: s.weight,
                    text: s.text.clone(),
                }
            })
            .collect();
        (evidence, since)
    }

    fn finding(
        &mut self,
        cause: Cause,
        failed: &[Ix],
        symptoms: &[usize],
        rivals: &[(Ix, f64)],
    ) -> Finding {
        let extra: Vec<Ix> = failed
            .iter()
            .copied()
            .filter(|n| matches!(self.net.nodes[*n as usize], Node::Device(_)))
            .collect();
        let impact = match cause.kind {
            CauseKind::DeviceDown
            | CauseKind::LinkDown
            | CauseKind::SiteIsolated
            | CauseKind::RedundancyDegraded => self.impact(failed, &extra),
            _ => Impact::default(),
        };
        let (evidence, since_ms) = self.evidence(symptoms);
        let score: f64 = symptoms
            .iter()
            .map(|&i| self.problem.symptoms[i].weight)
            .sum();
        let mut finding = finish(cause, score, rivals, self.net, evidence, impact, since_ms);
        let mut observed: BTreeSet<String> = BTreeSet::new();
        for &i in symptoms {
            if let SymptomKind::Path { target, .. } = self.problem.symptoms[i].kind {
                match &self.net.nodes[target as usize] {
                    Node::Device(d) | Node::Api(d) => {
                        observed.insert(d.clone());
                    }
                    _ => {}
                }
            }
        }
        // An agent whose every attachment is cut off lost everything on the other
        // side: its view of that, replayed once it is joined again, belongs to this
        // cause too.
        let impacted: HashSet<&str> = finding.impact.devices.iter().map(String::as_str).collect();
        let name = |n: Ix| match &self.net.nodes[n as usize] {
            Node::Device(d) => Some(d.as_str()),
            _ => None,
        };
        let cut_off_vantage = !impacted.is_empty()
            && (0..self.net.len() as Ix).any(|n| {
                matches!(self.net.nodes[n as usize], Node::Agent(_))
                    && !self.net.neighbours(n).is_empty()
                    && self
                        .net
                        .neighbours(n)
                        .iter()
                        .all(|&d| name(d).is_some_and(|d| impacted.contains(d)))
            });
        if cut_off_vantage {
            observed.extend(
                (0..self.net.len() as Ix)
                    .filter_map(name)
                    .filter(|d| !impacted.contains(d))
                    .map(str::to_owned),
            );
        }
        finding.observed_devices = observed.into_iter().collect();
        let mut sessions: Vec<String> = symptoms
            .iter()
            .filter_map(|&i| self.problem.symptoms[i].bgp)
            .filter_map(|b| self.obs.bgp_down.get(b))
            .map(|b| format!("{}/{}", b.device, b.session))
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        finding.sessions = sessions;
        finding
    }
}

fn finish(
    cause: Cause,
    score: f64,
    rivals: &[(Ix, f64)],
    net: &Net,
    evidence: Vec<Evidence>,
    impact: Impact,
    since_ms: i64,
) -> Finding {
    let total = score + rivals.iter().map(|(_, s)| s).sum::<f64>();
    let share = |s: f64| if total > 0.0 { s / total } else { 1.0 };
    Finding {
        confidence: share(score),
        runner_ups: rivals
            .iter()
            .filter_map(|(n, s)| {
                Some(RunnerUp {
                    cause: cause_of(net, *n, true)?,
                    confidence: share(*s),
                })
            })
            .collect(),
        cause,
        score,
        evidence,
        impact,
        since_ms: if since_ms == i64::MAX { 0 } else { since_ms },
        parts: Vec::new(),
        observed_devices: Vec::new(),
        sessions: Vec::new(),
    }
}

/// Links with exactly one end in each site.
fn boundaries(net: &Net) -> BTreeMap<String, Vec<Ix>> {
    let mut out: BTreeMap<String, Vec<Ix>> = BTreeMap::new();
    for (link, (a, b)) in &net.ends {
        let (sa, sb) = (&net.site[*a as usize], &net.site[*b as usize]);
        if sa != sb {
            for s in [sa, sb].into_iter().flatten() {
                out.entry(s.clone()).or_default().push(*link);
            }
        }
    }
    for links in out.values_mut() {
        links.sort_unstable();
    }
    out
}

/// Whether a symptom is about something in `site`.
fn in_site(
    net: &Net,
    problem: &Problem,
    symptom: usize,
    site: &str,
    devices: &HashSet<Ix>,
) -> bool {
    match &problem.symptoms[symptom].kind {
        SymptomKind::Path { target, .. } => {
            let t = *target as usize;
            match &net.nodes[t] {
                Node::Device(_) => net.site[t].as_deref() == Some(site),
                Node::Api(d) => net
                    .find(Kind::Device, d)
                    .is_some_and(|ix| net.site[ix as usize].as_deref() == Some(site)),
                // An agent of the site, or one cut off with it.
                Node::Agent(_) => true,
                _ => false,
            }
        }
        SymptomKind::Link { link, .. } => net
            .ends
            .get(link)
            .is_some_and(|(a, b)| devices.contains(a) || devices.contains(b)),
        SymptomKind::Bgp { ends, .. } => ends.iter().any(|e| devices.contains(e)),
    }
}

pub(crate) fn classify(
    topology: &mut Topology,
    net: &Net,
    problem: &Problem,
    solution: Solution,
    obs: &Observations,
) -> Analysis {
    let Solution {
        picks,
        mut joint,
        left,
    } = solution;
    let mut b = Builder {
        net,
        cuts: Cuts::new(net),
        problem,
        obs,
        topology,
    };
    let mut findings = Vec::new();
    let picked_links: HashSet<Ix> = picks
        .iter()
        .map(|p| p.node)
        .filter(|n| matches!(net.nodes[*n as usize], Node::Link(_)))
        .collect();
    let picked_devices: HashMap<Ix, f64> = picks
        .iter()
        .filter(|p| matches!(net.nodes[p.node as usize], Node::Device(_)))
        .map(|p| {
            let score = p.symptoms.iter().map(|&i| problem.symptoms[i].weight).sum();
            (p.node, score)
        })
        .collect();
    let mut grouped: HashSet<Ix> = HashSet::new();
    for (site, links) in boundaries(net) {
        let devices: HashSet<Ix> = (0..net.len() as Ix)
            .filter(|d| {
                matches!(net.nodes[*d as usize], Node::Device(_))
                    && net.site[*d as usize].as_deref() == Some(site.as_str())
            })
            .collect();
        // The site's own routers found dead at the inner end of its boundary links:
        // from outside, the death of a PoP's only gateway and the loss of every path
        // into the PoP look the same. "Isolated" is true of both, "down" of one: the
        // site is named, the router is the runner-up. A PoP of one router is that
        // router.
        let gateways: BTreeSet<Ix> = links
            .iter()
            .filter_map(|l| net.ends.get(l))
            .flat_map(|(a, b)| [*a, *b])
            .filter(|d| devices.contains(d) && picked_devices.contains_key(d))
            .collect();
        let covered = |l: &Ix| {
            picked_links.contains(l)
                || net
                    .ends
                    .get(l)
                    .is_some_and(|(a, b)| gateways.contains(a) || gateways.contains(b))
        };
        if links.len() < 2
            || !links.iter().all(covered)
            || (!gateways.is_empty() && devices.len() <= gateways.len())
        {
            continue;
        }
        if links.iter().chain(&gateways).any(|l| grouped.contains(l)) {
            continue;
        }
        let mut symptoms: Vec<usize> = Vec::new();
        let mut rivals: Vec<(Ix, f64)> = gateways
            .iter()
            .filter_map(|g| picked_devices.get(g).map(|s| (*g, *s)))
            .collect();
        for p in picks
            .iter()
            .filter(|p| links.contains(&p.node) || gateways.contains(&p.node))
        {
            symptoms.extend(&p.symptoms);
            rivals.extend(
                p.rivals
                    .iter()
                    .filter(|(n, _)| !links.contains(n) && !devices.contains(n)),
            );
        }
        joint.retain(|&i| {
            let mine = in_site(net, problem, i, &site, &devices);
            if mine {
                symptoms.push(i);
            }
            !mine
        });
        rivals.sort_by(|a, c| c.1.total_cmp(&a.1));
        rivals.dedup_by_key(|r| r.0);
        rivals.truncate(2);
        grouped.extend(links.iter().copied());
        grouped.extend(gateways.iter().copied());
        let cause = Cause {
            kind: CauseKind::SiteIsolated,
            entity: CauseEntity::Site { id: site.clone() },
        };
        let mut finding = b.finding(cause, &links, &symptoms, &rivals);
        finding.parts = links
            .iter()
            .filter_map(|l| match &net.nodes[*l as usize] {
                Node::Link(id) => Some(CauseEntity::Link { id: id.clone() }),
                _ => None,
            })
            .collect();
        findings.push(finding);
    }
    // Links down together that cut off more than any of them alone share what only
    // their combination explains.
    let loose: Vec<&Pick> = picks
        .iter()
        .filter(|p| !grouped.contains(&p.node))
        .collect();
    let together: Vec<Ix> = loose
        .iter()
        .map(|p| p.node)
        .filter(|n| picked_links.contains(n))
        .collect();
    let joint_cut: BTreeSet<Ix> = if joint.is_empty() || together.len() < 2 {
        BTreeSet::new()
    } else {
        b.cuts.devices(&together)
    };
    for p in loose {
        let is_link = picked_links.contains(&p.node);
        let mut symptoms = p.symptoms.clone();
        let mut failed = vec![p.node];
        let alone = b.cuts.devices(&failed);
        let mut cuts = !alone.is_empty();
        if is_link && alone.is_empty() && !joint_cut.is_empty() {
            // Necessary for the joint cut: without it, the others cut less.
            let others: Vec<Ix> = together.iter().copied().filter(|n| *n != p.node).collect();
            if b.cuts.devices(&others).len() < joint_cut.len() {
                symptoms.extend(joint.iter().copied());
                failed = together.clone();
                cuts = true;
            }
        }
        let has_path = symptoms
            .iter()
            .any(|&i| matches!(problem.symptoms[i].kind, SymptomKind::Path { .. }));
        let Some(cause) = cause_of(net, p.node, cuts || has_path) else {
            continue;
        };
        findings.push(b.finding(cause, &failed, &symptoms, &p.rivals));
    }
    bgp_and_upstreams(&mut b, obs, &left, &mut findings);
    for c in &obs.congestion {
        let evidence = vec![Evidence {
            at_ms: c.at_ms,
            weight: 5.0,
            text: match c.saturation_in_s {
                Some(s) => format!(
                    "link {} at {:.0} % of its capacity, saturated in about {:.0} s at this trend",
                    c.link,
                    c.utilisation * 100.0,
                    s
                ),
                None => format!(
                    "link {} at {:.0} % of its capacity",
                    c.link,
                    c.utilisation * 100.0
                ),
            },
        }];
        let cause = Cause {
            kind: CauseKind::Congestion,
            entity: CauseEntity::Link { id: c.link.clone() },
        };
        findings.push(finish(
            cause,
            5.0,
            &[],
            net,
            evidence,
            Impact::default(),
            c.at_ms,
        ));
    }
    let unexplained = left
        .iter()
        .filter(|i| problem.symptoms[**i].bgp.is_none())
        .map(|i| problem.symptoms[*i].text.clone())
        .collect();
    findings.sort_by(|a, c| c.score.total_cmp(&a.score).then(a.cause.cmp(&c.cause)));
    Analysis {
        findings,
        unexplained,
    }
}

/// Evidence gathered for one cause outside the search.
struct Gathered {
    entity: CauseEntity,
    evidence: Vec<Evidence>,
    since: i64,
    score: f64,
}

impl Gathered {
    fn new(entity: CauseEntity) -> Self {
        Gathered {
            entity,
            evidence: Vec::new(),
            since: i64::MAX,
            score: 0.0,
        }
    }

    fn add(&mut self, e: Evidence) {
        self.since = self.since.min(e.at_ms);
        self.score += e.weight;
        self.evidence.push(e);
    }
}

/// Sessions the network does not explain, and uplinks whose traffic collapsed.
fn bgp_and_upstreams(
    b: &mut Builder<'_>,
    obs: &Observations,
    left: &[usize],
    findings: &mut Vec<Finding>,
) {
    let impacted: HashSet<String> = findings
        .iter()
        .flat_map(|f| f.impact.devices.iter().cloned())
        .collect();
    let mut upstream: BTreeMap<(String, String), Gathered> = BTreeMap::new();
    for u in &obs.uplink_collapses {
        if impacted.contains(&u.device) {
            continue;
        }
        upstream
            .entry((u.device.clone(), u.interface.clone()))
            .or_insert_with(|| {
                Gathered::new(CauseEntity::Interface {
                    device: u.device.clone(),
                    interface: u.interface.clone(),
                })
            })
            .add(Evidence {
                at_ms: u.at_ms,
                weight: 6.0,
                text: format!(
                    "{}:{} still running but carries {:.1} % of its usual traffic",
                    u.device,
                    u.interface,
                    u.ratio * 100.0
                ),
            });
    }
    let mut sessions: BTreeMap<(String, String), Gathered> = BTreeMap::new();
    for &i in left {
        let s = &b.problem.symptoms[i];
        let Some(d) = s.bgp.and_then(|bi| obs.bgp_down.get(bi)) else {
            continue;
        };
        let ev = Evidence {
            at_ms: s.at_ms,
            weight: s.weight,
            text: s.text.clone(),
        };
        let (peer, key) = match &d.peer {
            BgpPeer::External(peer) => {
                let over_collapsed = d
                    .interface
                    .as_ref()
                    .and_then(|ifc| upstream.get_mut(&(d.device.clone(), ifc.clone())));
                if let Some(g) = over_collapsed {
                    g.add(ev);
                    continue;
                }
                (peer, (d.device.clone(), peer.clone()))
            }
            // Both ends report the same session: one finding, keyed by the pair.
            BgpPeer::Device(peer) if d.device <= *peer => (peer, (d.device.clone(), peer.clone())),
            BgpPeer::Device(peer) => (peer, (peer.clone(), d.device.clone())),
        };
        sessions
            .entry(key)
            .or_insert_with(|| {
                Gathered::new(CauseEntity::BgpSession {
                    device: d.device.clone(),
                    session: d.session.clone(),
                    peer: peer.clone(),
                })
            })
            .add(ev);
    }
    let gathered = upstream
        .into_values()
        .map(|g| (CauseKind::UpstreamLost, g))
        .chain(sessions.into_values().map(|g| (CauseKind::BgpDown, g)));
    for (kind, g) in gathered {
        let cause = Cause {
            kind,
            entity: g.entity,
        };
        findings.push(finish(
            cause,
            g.score,
            &[],
            b.net,
            g.evidence,
            Impact::default(),
            g.since,
        ));
    }
}
