//! The search: the fewest failed nodes that explain what was observed lost while
//! staying consistent with what was observed fine.
//!
//! Each observation that something is wrong is a *symptom* with a weight (ARCHITECTURE
//! §3: an uplink interface down 10, OSPF down on the link 7, BGP down to an upstream 7,
//! ping lost from several agents 6, syslog link-down 6, API unreachable while ping is
//! fine 3). A candidate node explains a lost (vantage, target) observation when it
//! dominates the target as seen from the vantage — every path there crosses it — and a
//! reported link-down when it is the link or the device at its far end. A candidate is
//! contradicted by every observation that still works through it.
//!
//! Greedy weighted set cover in rounds: each round computes, per vantage, the dominator
//! tree of the network without the nodes already chosen, scores every candidate by the
//! weight of the symptoms it newly explains less its contradictions, and takes the best
//! candidates whose symptoms do not overlap (so the gains taken in one round are exact).
//! Causes that only fail together (both uplinks of a dual-homed site) show up in the
//! next round: with the first one removed, the second dominates what both cut off.

use super::net::{DomView, Ix, Kind, Net, Node};
use super::observations::{LinkEvidence, Observations, PathTarget, SERVER_VANTAGE};
use std::collections::{BTreeMap, HashMap};

/// A data-plane target lost from every vantage that tried (spread over those).
const W_PING_LOST: f64 = 6.0;
/// A management plane that does not answer.
const W_API_LOST: f64 = 3.0;
/// An agent nobody hears.
const W_AGENT_LOST: f64 = 4.0;
const W_UPLINK_DOWN: f64 = 10.0;
const W_IFACE_DOWN: f64 = 8.0;
const W_OSPF_DOWN: f64 = 7.0;
const W_SYSLOG_DOWN: f64 = 6.0;
const W_BGP_UPSTREAM: f64 = 7.0;
const W_BGP_INTERNAL: f64 = 5.0;
/// A path observed working through a candidate.
const W_WORKS: f64 = 2.0;
/// A live end reporting the link running.
const W_LINK_UP: f64 = 5.0;
/// A candidate is dropped when its contradictions reach this share of what it explains.
const MAX_CONTRADICTION: f64 = 0.5;
/// Rounds of the search; each finds at least one cause, so this bounds the work when
/// observations are contradictory, not the number of causes in a normal storm.
const MAX_ROUNDS: usize = 32;

/// What a symptom is about.
#[derive(Debug, Clone)]
pub(crate) enum SymptomKind {
    Path { vantage: Ix, target: Ix },
    Link { link: Ix, reporter: Option<Ix> },
    Bgp { ends: Vec<Ix>, via: Option<Ix> },
}

#[derive(Debug, Clone)]
pub(crate) struct Symptom {
    pub kind: SymptomKind,
    pub weight: f64,
    pub at_ms: i64,
    pub text: String,
    /// Index into `Observations::bgp_down` for BGP symptoms.
    pub bgp: Option<usize>,
}

/// A chosen node with what it explains.
#[derive(Debug, Clone)]
pub(crate) struct Pick {
    pub node: Ix,
    pub symptoms: Vec<usize>,
    /// Competing nodes and their score on the same symptoms.
    pub rivals: Vec<(Ix, f64)>,
}

#[derive(Debug, Default)]
struct Candidate {
    symptoms: Vec<usize>,
    contradiction: f64,
}

/// The symptoms and the working observations, as nodes of `net`.
pub(crate) struct Problem {
    pub symptoms: Vec<Symptom>,
    /// (vantage, target) observed working.
    works: Vec<(Ix, Ix, i64)>,
    /// (link, other end) reported running by one end.
    links_up: Vec<(Ix, Option<Ix>)>,
}

fn target_node(net: &Net, t: &PathTarget) -> Option<Ix> {
    match t {
        PathTarget::Device(d) => net.find(Kind::Device, d),
        PathTarget::Management(d) => net.find(Kind::Api, d),
        PathTarget::Agent(a) => net.find(Kind::Agent, a),
    }
}

fn vantage_node(net: &Net, v: &str) -> Option<Ix> {
    if v == SERVER_VANTAGE {
        Some(net.server())
    } else {
        net.find(Kind::Agent, v)
    }
}

/// One vantage that lost a target: the vantage, when, and its name.
type LostFrom<'a> = (Ix, i64, &'a str);

impl Problem {
    pub fn new(net: &Net, obs: &Observations) -> Problem {
        let mut symptoms = Vec::new();
        let mut works = Vec::new();
        // Lost observations per target, to spread the target's weight over them.
        let mut lost: BTreeMap<Ix, (&PathTarget, Vec<LostFrom<'_>>)> = BTreeMap::new();
        for p in &obs.paths {
            let (Some(v), Some(t)) = (vantage_node(net, &p.vantage), target_node(net, &p.target))
            else {
                continue;
            };
            if p.reached {
                works.push((v, t, p.at_ms));
            } else {
                lost.entry(t)
                    .or_insert_with(|| (&p.target, Vec::new()))
                    .1
                    .push((v, p.at_ms, &p.vantage));
            }
        }
        for (t, (target, from)) in lost {
            let total = match target {
                PathTarget::Device(_) => W_PING_LOST,
                PathTarget::Management(_) => W_API_LOST,
                PathTarget::Agent(_) => W_AGENT_LOST,
            };
            let what = match target {
                PathTarget::Device(d) => format!("no echo reply from {d}"),
                PathTarget::Management(d) => format!("management API of {d} does not answer"),
                PathTarget::Agent(a) => format!("agent {a} not heard"),
            };
            for (v, at_ms, name) in &from {
                symptoms.push(Symptom {
                    kind: SymptomKind::Path {
                        vantage: *v,
                        target: t,
                    },
                    weight: total / from.len() as f64,
                    at_ms: *at_ms,
                    text: format!("{what} (seen from {name})"),
                    bgp: None,
                });
            }
        }
        let dev = |d: &str| net.find(Kind::Device, d);
        let far_end = |link: Ix, near: Option<Ix>| {
            let (a, b) = net.ends.get(&link).copied()?;
            match near {
                Some(n) if n == a => Some(b),
                Some(n) if n == b => Some(a),
                _ => None,
            }
        };
        for l in &obs.links_down {
            let Some(link) = net.find(Kind::Link, &l.link) else {
                continue;
            };
            let reporter = dev(l.evidence.reporter());
            let (weight, text) = match &l.evidence {
                LinkEvidence::InterfaceDown {
                    device,
                    interface,
                    uplink,
                } => (
                    if *uplink { W_UPLINK_DOWN } else { W_IFACE_DOWN },
                    format!("{device} reports {interface} not running (link {})", l.link),
                ),
                LinkEvidence::OspfDown { device } => (
                    W_OSPF_DOWN,
                    format!("{device} lost its OSPF neighbour over link {}", l.link),
                ),
                LinkEvidence::SyslogDown { device } => (
                    W_SYSLOG_DOWN,
                    format!("{device} logged link {} down", l.link),
                ),
            };
            symptoms.push(Symptom {
                kind: SymptomKind::Link {
                    link,
                    reporter: far_end(link, reporter).and(reporter),
                },
                weight,
                at_ms: l.at_ms,
                text,
                bgp: None,
            });
        }
        for (i, b) in obs.bgp_down.iter().enumerate() {
            let Some(a) = dev(&b.device) else { continue };
            let mut ends = vec![a];
            let (weight, peer) = match &b.peer {
                super::observations::BgpPeer::Device(p) => {
                    ends.extend(dev(p));
                    (W_BGP_INTERNAL, p.clone())
                }
                super::observations::BgpPeer::External(p) => (W_BGP_UPSTREAM, p.clone()),
            };
            let via = b.via_link.as_ref().and_then(|l| net.find(Kind::Link, l));
            symptoms.push(Symptom {
                kind: SymptomKind::Bgp { ends, via },
                weight,
                at_ms: b.at_ms,
                text: format!(
                    "BGP session {} of {} to {peer} not established",
                    b.session, b.device
                ),
                bgp: Some(i),
            });
        }
        let links_up = obs
            .links_up
            .iter()
            .filter_map(|u| {
                let link = net.find(Kind::Link, &u.link)?;
                Some((link, far_end(link, dev(&u.reported_by))))
            })
            .collect();
        Problem {
            symptoms,
            works,
            links_up,
        }
    }

    /// Whether the symptom holds once `failed` nodes are gone, given the views.
    fn explained(
        &self,
        s: &Symptom,
        net: &Net,
        failed: &[bool],
        views: &HashMap<Ix, DomView>,
        primary: &DomView,
    ) -> bool {
        match &s.kind {
            SymptomKind::Path { vantage, target } => views
                .get(vantage)
                .is_some_and(|v| !v.reached[*target as usize]),
            SymptomKind::Link { link, reporter } => {
                failed[*link as usize]
                    || net.ends.get(link).is_some_and(|(a, b)| {
                        [a, b]
                            .into_iter()
                            .any(|e| Some(*e) != *reporter && failed[*e as usize])
                    })
            }
            SymptomKind::Bgp { ends, via } => {
                via.is_some_and(|v| failed[v as usize])
                    || ends.iter().any(|e| !primary.reached[*e as usize])
            }
        }
    }

    /// The nodes that would explain the symptom, given the views.
    fn explainers(
        &self,
        s: &Symptom,
        net: &Net,
        views: &HashMap<Ix, DomView>,
        primary: &DomView,
        out: &mut Vec<Ix>,
    ) {
        out.clear();
        match &s.kind {
            SymptomKind::Path { vantage, target } => {
                if let Some(v) = views.get(vantage) {
                    out.extend(v.ancestors(*target));
                }
            }
            SymptomKind::Link { link, reporter } => {
                out.push(*link);
                if let Some((a, b)) = net.ends.get(link) {
                    out.extend([*a, *b].into_iter().filter(|e| Some(*e) != *reporter));
                }
            }
            SymptomKind::Bgp { ends, via } => {
                out.extend(*via);
                for e in ends {
                    out.extend(primary.ancestors(*e));
                }
                out.sort_unstable();
                out.dedup();
            }
        }
    }

    /// Links reported down by a live end are facts, not guesses: they start the
    /// search failed. A device with two or more of its links reported down by the
    /// other ends, and nothing seen working at it, is taken as failed instead of those
    /// links (one dead router explains them all); with a single link reported, a dead
    /// device beyond it and a cut link look the same from outside and the link, which
    /// is what was observed, stands.
    fn facts(&self, net: &Net) -> Vec<Ix> {
        let mut links: Vec<(Ix, Option<Ix>)> = Vec::new();
        // When each far end was first reported cut off from a neighbour.
        let mut reported_at: HashMap<Ix, i64> = HashMap::new();
        for s in &self.symptoms {
            if let SymptomKind::Link { link, reporter } = s.kind {
                let far = net.ends.get(&link).and_then(|(a, b)| match reporter {
                    Some(r) if r == *a => Some(*b),
                    Some(r) if r == *b => Some(*a),
                    _ => None,
                });
                if let Some(f) = far {
                    let at = reported_at.entry(f).or_insert(s.at_ms);
                    *at = (*at).min(s.at_ms);
                }
                links.push((link, far));
            }
        }
        links.sort_unstable();
        links.dedup();
        // Seen working, by an observation no older than its links' reports: a ping
        // answered before the neighbours saw the links go says nothing about after.
        let mut alive = vec![false; net.len()];
        for (_, t, at) in &self.works {
            let device = match &net.nodes[*t as usize] {
                Node::Api(d) => net.find(Kind::Device, d),
                Node::Device(_) => Some(*t),
                _ => None,
            };
            if device
                .and_then(|d| reported_at.get(&d))
                .is_some_and(|reported| at < reported)
            {
                continue;
            }
            alive[*t as usize] = true;
            if let Some(dev) = device {
                alive[dev as usize] = true;
            }
        }
        for (_, far) in &self.links_up {
            if let Some(f) = far {
                alive[*f as usize] = true;
            }
        }
        let mut reported: HashMap<Ix, Vec<Ix>> = HashMap::new();
        for (link, far) in &links {
            if let Some(f) = far {
                reported.entry(*f).or_default().push(*link);
            }
        }
        let mut facts = Vec::new();
        let mut covered = std::collections::HashSet::new();
        let mut devices: Vec<(&Ix, &Vec<Ix>)> = reported
            .iter()
            .filter(|(d, l)| l.len() >= 2 && !alive[**d as usize])
            .collect();
        devices.sort_unstable();
        for (d, l) in devices {
            facts.push(*d);
            covered.extend(l.iter().copied());
        }
        for (link, _) in links {
            if !covered.contains(&link) && !facts.contains(&link) {
                facts.push(link);
            }
        }
        facts
    }

    /// Candidates for every symptom not yet explained, with their contradictions.
    fn candidates(
        &self,
        net: &Net,
        failed: &[bool],
        views: &HashMap<Ix, DomView>,
        primary: &DomView,
        explained: &[bool],
    ) -> Vec<Candidate> {
        let mut cands: Vec<Candidate> = (0..net.len()).map(|_| Candidate::default()).collect();
        let mut buf = Vec::new();
        for (i, s) in self.symptoms.iter().enumerate() {
            if explained[i] {
                continue;
            }
            self.explainers(s, net, views, primary, &mut buf);
            for &c in &buf {
                if !failed[c as usize] && !matches!(net.nodes[c as usize], Node::Server) {
                    cands[c as usize].symptoms.push(i);
                }
            }
        }
        for (v, t, _) in &self.works {
            if let Some(view) = views.get(v) {
                for a in view.ancestors(*t) {
                    let c = &mut cands[a as usize];
                    if !c.symptoms.is_empty() {
                        c.contradiction += W_WORKS;
                    }
                }
            }
        }
        for (link, far) in &self.links_up {
            for n in std::iter::once(*link).chain(*far) {
                let c = &mut cands[n as usize];
                if !c.symptoms.is_empty() {
                    c.contradiction += W_LINK_UP;
                }
            }
        }
        cands
    }

    /// Reachability only, per vantage: what `failed` explains, one search each.
    fn reach_views(
        &self,
        net: &Net,
        failed: &[bool],
        vantages: &[Ix],
    ) -> (HashMap<Ix, DomView>, DomView) {
        let views = vantages
            .iter()
            .map(|v| (*v, net.reach_view(*v, failed)))
            .collect();
        (views, net.reach_view(net.server(), failed))
    }

    fn views(
        &self,
        net: &Net,
        failed: &[bool],
        vantages: &[Ix],
    ) -> (HashMap<Ix, DomView>, DomView) {
        let views = vantages
            .iter()
            .map(|v| (*v, net.dominators(*v, failed)))
            .collect();
        (views, net.dominators(net.server(), failed))
    }

    /// Runs the search over `net`: the facts, then greedy rounds over what they leave
    /// unexplained. Returns the chosen nodes, the symptoms the facts explain only
    /// together (for the caller to attribute), and the symptoms nothing explains.
    pub fn solve(&self, net: &Net) -> Solution {
        let mut vantages: Vec<Ix> = self
            .symptoms
            .iter()
            .filter_map(|s| match s.kind {
                SymptomKind::Path { vantage, .. } => Some(vantage),
                _ => None,
            })
            .chain(self.works.iter().map(|(v, _, _)| *v))
            .collect();
        vantages.sort_unstable();
        vantages.dedup();
        let none = vec![false; net.len()];
        let nothing = vec![false; self.symptoms.len()];
        // Rivals of the facts are judged on the untouched network.
        let (views0, primary0) = self.views(net, &none, &vantages);
        let cands0 = self.candidates(net, &none, &views0, &primary0, &nothing);
        let index0 = by_symptom(&cands0, self.symptoms.len());

        let facts = self.facts(net);
        let mut failed = none.clone();
        for f in &facts {
            failed[*f as usize] = true;
        }
        let mut explained = nothing.clone();
        let mut picks: Vec<Pick> = Vec::new();
        let mut joint = Vec::new();
        // The views of the network as `failed` stands, carried into the search.
        let mut carried;
        if facts.is_empty() {
            carried = Some((views0, primary0));
        } else {
            carried = None;
            let (views, primary) = self.reach_views(net, &failed, &vantages);
            // A fact alone explains a symptom when, in the intact network, it is one
            // of the symptom's explainers (it dominates the target from the vantage,
            // it is the link or its far end).
            let mut is_fact = vec![false; net.len()];
            for f in &facts {
                is_fact[*f as usize] = true;
            }
            let mut own: HashMap<Ix, Vec<usize>> = HashMap::new();
            for (i, s) in self.symptoms.iter().enumerate() {
                if !self.explained(s, net, &failed, &views, &primary) {
                    continue;
                }
                explained[i] = true;
                let mut credited = false;
                for &n in &index0[i] {
                    if is_fact[n as usize] {
                        own.entry(n).or_default().push(i);
                        credited = true;
                    }
                }
                if !credited {
                    joint.push(i);
                }
            }
            for f in &facts {
                let symptoms = own.remove(f).unwrap_or_default();
                let rivals = rivals_of(*f, &symptoms, &cands0, &index0, &self.symptoms);
                picks.push(Pick {
                    node: *f,
                    symptoms,
                    rivals,
                });
            }
        }
        let searched_from = picks.len();
        // A device at the far end of links taken as cut would explain those reports
        // too: choosing it can make a fact redundant (a dual-homed router dead, one
        // neighbour's report in), which is worth what the reports weigh.
        let mut absorbs: HashMap<Ix, f64> = HashMap::new();
        for s in &self.symptoms {
            if let SymptomKind::Link {
                link,
                reporter: Some(r),
            } = s.kind
                && failed[link as usize]
                && let Some((a, b)) = net.ends.get(&link)
            {
                let far = if *a == r { *b } else { *a };
                *absorbs.entry(far).or_default() += s.weight;
            }
        }
        for round in 0..MAX_ROUNDS {
            if explained.iter().all(|e| *e) {
                break;
            }
            let (views, primary) = match carried.take() {
                Some(v) => v,
                None => self.views(net, &failed, &vantages),
            };
            if round > 0 {
                for (i, s) in self.symptoms.iter().enumerate() {
                    if !explained[i] && self.explained(s, net, &failed, &views, &primary) {
                        explained[i] = true;
                        // Explained by causes chosen together: credit the latest pick.
                        match picks[searched_from..].last_mut() {
                            Some(p) => p.symptoms.push(i),
                            None => joint.push(i),
                        }
                    }
                }
            }
            if explained.iter().all(|e| *e) {
                break;
            }
            let cands = self.candidates(net, &failed, &views, &primary, &explained);
            let index = by_symptom(&cands, self.symptoms.len());
            let gain = |c: &Candidate| -> f64 {
                c.symptoms.iter().map(|&i| self.symptoms[i].weight).sum()
            };
            let mut ranked: Vec<(Ix, f64)> = cands
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.symptoms.is_empty())
                .map(|(n, c)| {
                    let n = n as Ix;
                    (n, gain(c), c.contradiction, absorbs.get(&n).copied())
                })
                .filter(|(_, g, x, more)| {
                    *g > 0.0 && *x < (g + more.unwrap_or(0.0)) * MAX_CONTRADICTION
                })
                .map(|(n, g, x, more)| (n, g + more.unwrap_or(0.0) - x))
                .collect();
            ranked.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(
                        net.nodes[a.0 as usize]
                            .modesty()
                            .cmp(&net.nodes[b.0 as usize].modesty()),
                    )
                    .then(a.0.cmp(&b.0))
            });
            let mut taken = vec![false; self.symptoms.len()];
            let mut any = false;
            for &(node, _) in &ranked {
                let Some(c) = cands.get(node as usize) else {
                    continue;
                };
                if c.symptoms.iter().any(|&i| taken[i]) {
                    continue;
                }
                let rivals = rivals_of(node, &c.symptoms, &cands, &index, &self.symptoms);
                for &i in &c.symptoms {
                    taken[i] = true;
                    explained[i] = true;
                }
                failed[node as usize] = true;
                picks.push(Pick {
                    node,
                    symptoms: c.symptoms.clone(),
                    rivals,
                });
                any = true;
            }
            if !any {
                break;
            }
        }
        absorb_links_into_dead_ends(net, &mut picks, searched_from);
        let left = (0..self.symptoms.len())
            .filter(|i| !explained[*i])
            .collect();
        Solution { picks, joint, left }
    }
}

/// A link reported down before the other links of its far end were: the search then
/// finds the far end dead anyway (it is unreachable from everywhere), and that one
/// dead device explains the report. Every path across the link crosses the device, so
/// handing the link's symptoms to the device loses nothing, and the report of a link
/// stops being a second cause beside the router that took it down.
fn absorb_links_into_dead_ends(net: &Net, picks: &mut Vec<Pick>, facts: usize) {
    let dead: HashMap<Ix, usize> = picks
        .iter()
        .enumerate()
        .skip(facts)
        .filter(|(_, p)| matches!(net.nodes[p.node as usize], Node::Device(_)))
        .map(|(i, p)| (p.node, i))
        .collect();
    if dead.is_empty() {
        return;
    }
    // (the link's pick, the dead end's pick)
    let moves: Vec<(usize, usize)> = picks
        .iter()
        .enumerate()
        .take(facts)
        .filter_map(|(i, p)| {
            let (a, b) = net.ends.get(&p.node)?;
            dead.get(a).or_else(|| dead.get(b)).map(|&into| (i, into))
        })
        .collect();
    for &(from, into) in &moves {
        let symptoms = std::mem::take(&mut picks[from].symptoms);
        let target = &mut picks[into].symptoms;
        target.extend(symptoms);
        target.sort_unstable();
        target.dedup();
    }
    let gone: std::collections::HashSet<usize> = moves.iter().map(|m| m.0).collect();
    let mut i = 0;
    picks.retain(|_| {
        i += 1;
        !gone.contains(&(i - 1))
    });
}

/// What the search found.
pub(crate) struct Solution {
    pub picks: Vec<Pick>,
    /// Symptoms that reported-down links explain only together.
    pub joint: Vec<usize>,
    /// Symptoms nothing explains.
    pub left: Vec<usize>,
}

/// Which candidates explain each symptom: the index rivals are found through.
fn by_symptom(cands: &[Candidate], symptoms: usize) -> Vec<Vec<Ix>> {
    let mut out: Vec<Vec<Ix>> = vec![Vec::new(); symptoms];
    for (n, c) in cands.iter().enumerate() {
        for &i in &c.symptoms {
            out[i].push(n as Ix);
        }
    }
    out
}

/// The two best other explanations of (part of) `symptoms`, scored on them.
fn rivals_of(
    node: Ix,
    symptoms: &[usize],
    cands: &[Candidate],
    index: &[Vec<Ix>],
    all: &[Symptom],
) -> Vec<(Ix, f64)> {
    let mut shared: HashMap<Ix, f64> = HashMap::new();
    for &i in symptoms {
        for &n in index.get(i).into_iter().flatten() {
            if n != node {
                *shared.entry(n).or_default() += all[i].weight;
            }
        }
    }
    let mut rivals: Vec<(Ix, f64)> = shared
        .into_iter()
        .filter_map(|(n, w)| {
            let score = w - cands.get(n as usize).map_or(0.0, |c| c.contradiction);
            (score > 0.0).then_some((n, score))
        })
        .collect();
    rivals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    rivals.truncate(2);
    rivals
}
