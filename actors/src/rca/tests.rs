//! The analysis judged against a small independent model of the network: a failure is
//! injected into the truth, the observations every vantage would make are derived from
//! it by plain graph search, and the analysis must name the failure back.

use super::*;
use crate::topology::Topology;
use ispvm_proto::DeviceRole;
use std::collections::{BTreeSet, HashSet, VecDeque};

/// A failure in the truth.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Truth {
    Device(&'static str),
    Link(&'static str),
    Api(&'static str),
    Agent(&'static str),
}

const DEVICES: &[(&str, DeviceRole, &str)] = &[
    ("edge1", DeviceRole::Edge, "a"),
    ("core1", DeviceRole::Core, "a"),
    ("core2", DeviceRole::Core, "a"),
    ("rr1", DeviceRole::RouteReflector, "a"),
    ("b-agg1", DeviceRole::Agg, "b"),
    ("b-agg2", DeviceRole::Agg, "b"),
    ("b-bng", DeviceRole::PppoeConcentrator, "b"),
    ("c-agg", DeviceRole::Agg, "c"),
    ("c-acc", DeviceRole::Access, "c"),
];

const LINKS: &[(&str, &str, &str)] = &[
    ("e1-c1", "edge1", "core1"),
    ("e1-c2", "edge1", "core2"),
    ("c1-c2", "core1", "core2"),
    ("c1-rr", "core1", "rr1"),
    ("c2-rr", "core2", "rr1"),
    // Site b: a ring through two aggregation routers, a dual-homed concentrator.
    ("c1-b1", "core1", "b-agg1"),
    ("b1-b2", "b-agg1", "b-agg2"),
    ("b2-c2", "b-agg2", "core2"),
    ("b1-bng", "b-agg1", "b-bng"),
    ("b2-bng", "b-agg2", "b-bng"),
    // Site c: a chain.
    ("c2-ca", "core2", "c-agg"),
    ("ca-cc", "c-agg", "c-acc"),
];

/// Agents and the device each sits on; the server sits on core1.
const AGENTS: &[(&str, &str, &str)] = &[
    ("agent-a", "a", "core1"),
    ("agent-b", "b", "b-agg2"),
    ("agent-c", "c", "c-acc"),
];
const SERVER_AT: &str = "core2";

fn topology() -> Topology {
    let mut t = Topology::new();
    for (id, role, site) in DEVICES {
        t.upsert_device(id, *role, Some(site));
    }
    for (l, a, b) in LINKS {
        t.upsert_link(l, a, b).expect("link");
    }
    t
}

/// The truth: which devices each place reaches with the failures applied.
struct World {
    failed: HashSet<Truth>,
}

impl World {
    fn device_up(&self, d: &str) -> bool {
        !self.failed.iter().any(|f| *f == Truth::Device(leak(d)))
    }

    fn link_up(&self, l: &str, a: &str, b: &str) -> bool {
        self.device_up(a) && self.device_up(b) && !self.failed.contains(&Truth::Link(leak(l)))
    }

    /// Devices reachable from device `from` over up links.
    fn reach(&self, from: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        if !self.device_up(from) {
            return seen;
        }
        seen.insert(from.to_owned());
        let mut q = VecDeque::from([from.to_owned()]);
        while let Some(d) = q.pop_front() {
            for (l, a, b) in LINKS {
                if !self.link_up(l, a, b) {
                    continue;
                }
                let next = if *a == d {
                    b
                } else if *b == d {
                    a
                } else {
                    continue;
                };
                if seen.insert((*next).to_owned()) {
                    q.push_back((*next).to_owned());
                }
            }
        }
        seen
    }

    fn agent_alive(&self, a: &str) -> bool {
        !self.failed.contains(&Truth::Agent(leak(a)))
    }

    /// What reaches the server, as the correlator would have it.
    fn observe(&self) -> Observations {
        let mut obs = Observations::default();
        let server_reach = self.reach(SERVER_AT);
        obs.vantages.push(Vantage {
            id: SERVER_VANTAGE.into(),
            attached_to: vec![SERVER_AT.into()],
            site: None,
        });
        // Agents whose reports reach the server.
        let mut delivering = Vec::new();
        for (agent, site, at) in AGENTS {
            obs.vantages.push(Vantage {
                id: (*agent).into(),
                attached_to: vec![(*at).into()],
                site: Some((*site).into()),
            });
            let heard = self.agent_alive(agent) && server_reach.contains(*at);
            obs.paths.push(PathObservation {
                vantage: SERVER_VANTAGE.into(),
                target: PathTarget::Agent((*agent).into()),
                reached: heard,
                at_ms: 1_000,
            });
            if heard {
                delivering.push((*agent, *at));
            }
        }
        for (agent, at) in &delivering {
            let reach = self.reach(at);
            for (d, _, _) in DEVICES {
                let ok = reach.contains(*d);
                obs.paths.push(PathObservation {
                    vantage: (*agent).into(),
                    target: PathTarget::Device((*d).into()),
                    reached: ok,
                    at_ms: 1_000,
                });
                obs.paths.push(PathObservation {
                    vantage: (*agent).into(),
                    target: PathTarget::Management((*d).into()),
                    reached: ok && !self.failed.contains(&Truth::Api(leak(d))),
                    at_ms: 1_000,
                });
            }
            for (other, _, other_at) in AGENTS {
                if other != agent {
                    obs.paths.push(PathObservation {
                        vantage: (*agent).into(),
                        target: PathTarget::Agent((*other).into()),
                        reached: self.agent_alive(other) && reach.contains(*other_at),
                        at_ms: 1_000,
                    });
                }
            }
        }
        // Routers report their interfaces when some delivering agent reaches them.
        let observable: HashSet<String> = delivering
            .iter()
            .flat_map(|(_, at)| self.reach(at))
            .collect();
        for (l, a, b) in LINKS {
            let up = self.link_up(l, a, b);
            for end in [a, b] {
                if !observable.contains(*end) {
                    continue;
                }
                if up {
                    obs.links_up.push(LinkUp {
                        link: (*l).into(),
                        reported_by: (*end).into(),
                    });
                } else {
                    obs.links_down.push(LinkDown {
                        link: (*l).into(),
                        evidence: LinkEvidence::InterfaceDown {
                            device: (*end).into(),
                            interface: format!("to-{l}"),
                            uplink: false,
                        },
                        at_ms: 900,
                    });
                }
            }
        }
        obs
    }
}

/// Test names are static; the truth compares by value.
fn leak(s: &str) -> &'static str {
    for (d, _, _) in DEVICES {
        if *d == s {
            return d;
        }
    }
    for (l, _, _) in LINKS {
        if *l == s {
            return l;
        }
    }
    for (a, _, _) in AGENTS {
        if *a == s {
            return a;
        }
    }
    ""
}

fn world(failed: &[Truth]) -> World {
    World {
        failed: failed.iter().cloned().collect(),
    }
}

fn analyse_truth(failed: &[Truth]) -> Analysis {
    analyse(&mut topology(), &world(failed).observe())
}

fn entity_of(t: &Truth) -> CauseEntity {
    match t {
        Truth::Device(d) | Truth::Api(d) => CauseEntity::Device { id: (*d).into() },
        Truth::Link(l) => CauseEntity::Link { id: (*l).into() },
        Truth::Agent(a) => CauseEntity::Agent { id: (*a).into() },
    }
}

/// Two failures nobody could tell apart: the same observations.
fn indistinguishable(a: &Truth, b: &Truth) -> bool {
    world(std::slice::from_ref(a)).observe() == world(std::slice::from_ref(b)).observe()
}

fn every_single_failure() -> Vec<Truth> {
    let mut all: Vec<Truth> = DEVICES.iter().map(|(d, _, _)| Truth::Device(d)).collect();
    all.extend(LINKS.iter().map(|(l, _, _)| Truth::Link(l)));
    all.extend(DEVICES.iter().map(|(d, _, _)| Truth::Api(d)));
    all.extend(AGENTS.iter().map(|(a, _, _)| Truth::Agent(a)));
    all
}

#[test]
fn every_single_failure_is_named_back_or_is_indistinguishable_from_the_answer() {
    let all = every_single_failure();
    let mut wrong = Vec::new();
    for truth in &all {
        let a = analyse_truth(std::slice::from_ref(truth));
        let Some(top) = a.findings.first() else {
            // Only a failure nobody can see may go unnoticed.
            if world(std::slice::from_ref(truth)).observe() != world(&[]).observe() {
                wrong.push(format!("{truth:?}: nothing found"));
            }
            continue;
        };
        if top.cause.entity == entity_of(truth) {
            continue;
        }
        let twin = all
            .iter()
            .find(|t| entity_of(t) == top.cause.entity && indistinguishable(t, truth));
        if twin.is_none() {
            wrong.push(format!("{truth:?}: found {:?}", top.cause));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn kinds(a: &Analysis) -> Vec<(CauseKind, CauseEntity)> {
    a.findings
        .iter()
        .map(|f| (f.cause.kind, f.cause.entity.clone()))
        .collect()
}

#[test]
fn a_dead_router_is_device_down_with_what_hangs_off_it() {
    // Dual-homed: both aggregation routers report their link to it down.
    let a = analyse_truth(&[Truth::Device("b-bng")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::DeviceDown,
            CauseEntity::Device { id: "b-bng".into() }
        )]
    );
    let f = &a.findings[0];
    assert_eq!(f.impact.devices, ["b-bng"]);
    assert_eq!(f.impact.sites, ["b"]);
    assert!(f.confidence > 0.5, "{f:?}");
    // A core router with live neighbours on every side.
    let a = analyse_truth(&[Truth::Device("core1")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::DeviceDown,
            CauseEntity::Device { id: "core1".into() }
        )]
    );
}

#[test]
fn a_dead_router_is_device_down_even_before_its_second_link_is_reported() {
    // Polls arrive one by one: b-agg1 has reported its link to the dead BNG, b-agg2
    // not yet. The BNG is unreachable from everywhere, which the one link cannot
    // explain (it is dual-homed); the dead BNG explains both, and alone.
    let mut obs = world(&[Truth::Device("b-bng")]).observe();
    obs.links_down.retain(|l| l.evidence.reporter() != "b-agg2");
    let dead = [(
        CauseKind::DeviceDown,
        CauseEntity::Device { id: "b-bng".into() },
    )];
    let a = analyse(&mut topology(), &obs);
    assert_eq!(kinds(&a), dead);
    // b-agg2's last poll, from before the fault, still says its link runs.
    obs.links_up.push(LinkUp {
        link: "b2-bng".into(),
        reported_by: "b-agg2".into(),
    });
    let a = analyse(&mut topology(), &obs);
    assert_eq!(kinds(&a), dead);
}

#[test]
fn a_ping_answered_before_the_links_went_does_not_keep_a_router_alive() {
    // Both neighbours reported their links to the BNG down at 900 ms; the last echo
    // reply from it is older (800 ms) and newer probes have not come back yet.
    let mut obs = world(&[Truth::Device("b-bng")]).observe();
    obs.paths
        .retain(|p| p.target != PathTarget::Device("b-bng".into()));
    obs.paths.push(PathObservation {
        vantage: "agent-a".into(),
        target: PathTarget::Device("b-bng".into()),
        reached: true,
        at_ms: 800,
    });
    let a = analyse(&mut topology(), &obs);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::DeviceDown,
            CauseEntity::Device { id: "b-bng".into() }
        )]
    );
}

#[test]
fn a_cut_access_link_is_the_link_while_the_cut_off_end_still_looks_up() {
    // The access router's last poll, from before the cut, still says its port runs,
    // and the aggregation router also logged the link down: still the link.
    let mut obs = world(&[Truth::Link("ca-cc")]).observe();
    obs.links_up.push(LinkUp {
        link: "ca-cc".into(),
        reported_by: "c-acc".into(),
    });
    obs.links_down.push(LinkDown {
        link: "ca-cc".into(),
        evidence: LinkEvidence::SyslogDown {
            device: "c-agg".into(),
        },
        at_ms: 900,
    });
    let a = analyse(&mut topology(), &obs);
    let cut = [(
        CauseKind::LinkDown,
        CauseEntity::Link { id: "ca-cc".into() },
    )];
    assert_eq!(kinds(&a), cut);
    // Nobody said where the other agents sit: each hangs off its site's highest tier,
    // not off every router of its site (agent-c, behind the cut, says where it is).
    for v in obs.vantages.iter_mut().filter(|v| v.id != "agent-c") {
        v.attached_to.clear();
    }
    let a = analyse(&mut topology(), &obs);
    assert_eq!(kinds(&a), cut);
}

#[test]
fn a_dead_router_behind_its_only_link_names_the_link_and_the_router_as_runner_up() {
    // Seen from outside, c-agg dying and its one link to the core being cut are the
    // same observations: the analysis names what was observed, the link, and says it
    // is not sure.
    let a = analyse_truth(&[Truth::Device("c-agg")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::LinkDown,
            CauseEntity::Link { id: "c2-ca".into() }
        )]
    );
    let f = &a.findings[0];
    assert_eq!(f.impact.devices, ["c-acc", "c-agg"]);
    assert!(f.confidence <= 0.5, "{f:?}");
    assert!(
        f.runner_ups
            .iter()
            .any(|r| r.cause.entity == CauseEntity::Device { id: "c-agg".into() }),
        "{f:?}"
    );
}

#[test]
fn the_api_silent_while_pings_answer_is_the_management_plane_never_device_down() {
    let a = analyse_truth(&[Truth::Api("b-bng")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::ManagementPlane,
            CauseEntity::Device { id: "b-bng".into() }
        )]
    );
    assert!(a.findings[0].impact.devices.is_empty());
}

#[test]
fn a_dead_agent_is_agent_lost_and_no_outage() {
    let a = analyse_truth(&[Truth::Agent("agent-b")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::AgentLost,
            CauseEntity::Agent {
                id: "agent-b".into()
            }
        )]
    );
}

#[test]
fn a_ring_cut_degrades_redundancy_and_cuts_nothing_off() {
    let a = analyse_truth(&[Truth::Link("b1-b2")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::RedundancyDegraded,
            CauseEntity::Link { id: "b1-b2".into() }
        )]
    );
    assert!(a.findings[0].impact.devices.is_empty());
}

#[test]
fn a_chain_link_cut_is_link_down_with_the_site_behind_it() {
    let a = analyse_truth(&[Truth::Link("c2-ca")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::LinkDown,
            CauseEntity::Link { id: "c2-ca".into() }
        )]
    );
    assert_eq!(a.findings[0].impact.devices, ["c-acc", "c-agg"]);
}

#[test]
fn every_way_into_a_site_cut_is_the_site_isolated() {
    let a = analyse_truth(&[Truth::Link("c1-b1"), Truth::Link("b2-c2")]);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::SiteIsolated,
            CauseEntity::Site { id: "b".into() }
        )]
    );
    assert_eq!(a.findings[0].impact.devices, ["b-agg1", "b-agg2", "b-bng"]);
}

#[test]
fn two_independent_faults_are_two_findings() {
    let a = analyse_truth(&[Truth::Link("ca-cc"), Truth::Api("rr1")]);
    let found: BTreeSet<_> = kinds(&a).into_iter().collect();
    let want: BTreeSet<_> = [
        (
            CauseKind::LinkDown,
            CauseEntity::Link { id: "ca-cc".into() },
        ),
        (
            CauseKind::ManagementPlane,
            CauseEntity::Device { id: "rr1".into() },
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, want);
}

fn ibgp_down(device: &str, peer: &str) -> BgpDown {
    BgpDown {
        device: device.into(),
        session: format!("to-{peer}"),
        peer: BgpPeer::Device(peer.into()),
        interface: None,
        via_link: None,
        at_ms: 1_000,
    }
}

#[test]
fn a_dead_route_reflector_explains_its_sessions() {
    let mut obs = world(&[Truth::Device("rr1")]).observe();
    for d in ["edge1", "core1", "core2"] {
        obs.bgp_down.push(ibgp_down(d, "rr1"));
    }
    let a = analyse(&mut topology(), &obs);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::DeviceDown,
            CauseEntity::Device { id: "rr1".into() }
        )]
    );
    assert!(a.findings[0].evidence.len() >= 5, "{:?}", a.findings[0]);
}

#[test]
fn a_session_down_over_a_working_network_is_bgp_down_once() {
    let mut obs = world(&[]).observe();
    obs.bgp_down.push(ibgp_down("edge1", "rr1"));
    obs.bgp_down.push(ibgp_down("rr1", "edge1"));
    let a = analyse(&mut topology(), &obs);
    assert_eq!(a.findings.len(), 1, "{a:?}");
    assert_eq!(a.findings[0].cause.kind, CauseKind::BgpDown);
}

#[test]
fn an_upstream_that_stops_carrying_traffic_is_upstream_lost() {
    let mut obs = world(&[]).observe();
    obs.uplink_collapses.push(UplinkCollapse {
        device: "edge1".into(),
        interface: "sfp-transit".into(),
        ratio: 0.002,
        at_ms: 1_000,
    });
    obs.bgp_down.push(BgpDown {
        device: "edge1".into(),
        session: "transit-a".into(),
        peer: BgpPeer::External("203.0.113.1".into()),
        interface: Some("sfp-transit".into()),
        via_link: None,
        at_ms: 2_000,
    });
    let a = analyse(&mut topology(), &obs);
    assert_eq!(
        kinds(&a),
        [(
            CauseKind::UpstreamLost,
            CauseEntity::Interface {
                device: "edge1".into(),
                interface: "sfp-transit".into()
            }
        )]
    );
    assert_eq!(a.findings[0].evidence.len(), 2);
}

#[test]
fn quiet_observations_find_nothing() {
    assert!(analyse_truth(&[]).findings.is_empty());
}

#[test]
fn observations_of_unknown_things_are_ignored_not_fatal() {
    let mut obs = world(&[]).observe();
    obs.paths.push(PathObservation {
        vantage: "ghost-agent".into(),
        target: PathTarget::Device("ghost".into()),
        reached: false,
        at_ms: 1,
    });
    obs.links_down.push(LinkDown {
        link: "no-such-link".into(),
        evidence: LinkEvidence::OspfDown {
            device: "ghost".into(),
        },
        at_ms: 1,
    });
    let a = analyse(&mut topology(), &obs);
    assert!(a.findings.is_empty(), "{a:?}");
}
