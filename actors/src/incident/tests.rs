use super::*;
use crate::alert::{EntityKind, EntityRef, Level, Phase};
use crate::rca::{Analysis, Cause, CauseEntity, CauseKind, Evidence, Finding, Impact};
use ispvm_proto::DeviceRole;

struct Ctx;

impl IncidentContext for Ctx {
    fn device(&self, id: &str) -> Option<(String, DeviceRole)> {
        let role = match id {
            "core1" | "core2" => DeviceRole::Core,
            "bng" => DeviceRole::PppoeConcentrator,
            _ => DeviceRole::Agg,
        };
        Some((id.to_uppercase(), role))
    }
    fn link(&self, id: &str) -> Option<[(String, String); 2]> {
        match id {
            "l1" => Some([
                ("core1".into(), "sfp28-1".into()),
                ("core2".into(), "sfp-sfpplus1".into()),
            ]),
            "l2" => Some([
                ("core2".into(), "ether5".into()),
                ("agg".into(), "ether1".into()),
            ]),
            _ => None,
        }
    }
    fn far_end(&self, device: &str, interface: &str) -> Option<String> {
        ["l1", "l2"].into_iter().find_map(|l| {
            let [a, b] = self.link(l)?;
            if (a.0.as_str(), a.1.as_str()) == (device, interface) {
                Some(b.0)
            } else if (b.0.as_str(), b.1.as_str()) == (device, interface) {
                Some(a.0)
            } else {
                None
            }
        })
    }
    fn site(&self, id: &str) -> Option<String> {
        Some(format!("Site {id}"))
    }
    fn subscribers_before(&self, device: &str, _before_ms: i64) -> Option<u64> {
        (device == "bng").then_some(1_850)
    }
}

fn link_down(id: &str, devices: &[&str]) -> Finding {
    Finding {
        cause: Cause {
            kind: CauseKind::LinkDown,
            entity: CauseEntity::Link { id: id.into() },
        },
        score: 20.0,
        confidence: 0.9,
        runner_ups: Vec::new(),
        evidence: vec![Evidence {
            at_ms: 1_000,
            weight: 10.0,
            text: format!("core2 reports ether5 not running (link {id})"),
        }],
        impact: Impact {
            devices: devices.iter().map(|d| (*d).to_owned()).collect(),
            sites: vec!["b".into()],
            services: Vec::new(),
        },
        since_ms: 1_000,
        parts: Vec::new(),
        observed_devices: Vec::new(),
        sessions: Vec::new(),
    }
}

fn alert(rule: &str, kind: EntityKind, id: &str, level: Level, phase: Phase) -> AlertFact {
    AlertFact {
        key: AlertKey {
            rule_id: rule.into(),
            entity: EntityRef::new(kind, id),
        },
        level,
        phase,
        since_ms: 2_000,
        site: Some("b".into()),
        device: None,
        meaning: CauseKind::DeviceDown,
    }
}

fn storm(phase: Phase) -> Vec<AlertFact> {
    vec![
        alert(
            "iface",
            EntityKind::Interface,
            "core2/ether5",
            Level::Warning,
            phase,
        ),
        alert("down", EntityKind::Device, "agg", Level::Critical, phase),
        alert("down", EntityKind::Device, "bng", Level::Critical, phase),
        alert("loss", EntityKind::Device, "bng", Level::Warning, phase),
    ]
}

fn analysis(findings: Vec<Finding>) -> Analysis {
    Analysis {
        findings,
        unexplained: Vec::new(),
    }
}

#[test]
fn a_storm_becomes_one_incident_with_members_and_suppressed_children() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let a = analysis(vec![link_down("l2", &["agg", "bng"])]);
    // One analysis is not enough: the finding must hold two cycles in a row.
    let first = m.update(2_000, &a, &storm(Phase::Firing), &Ctx);
    assert!(
        first.changes.is_empty() && m.all().next().is_none(),
        "{first:?}"
    );
    let out = m.update(3_000, &a, &storm(Phase::Firing), &Ctx);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].transition, Transition::Opened);
    let i = m.get(out.changes[0].incident).expect("incident");
    assert_eq!(i.title, "Aggregation link CORE2 ether5 ↔ AGG ether1 down");
    assert_eq!(i.severity, Level::Critical);
    assert_eq!(i.members.len(), 1, "the link's own interface alert");
    assert_eq!(i.suppressed.len(), 3);
    assert!(
        i.suppressed
            .iter()
            .all(|s| s.upstream == CauseEntity::Link { id: "l2".into() } && !s.evidence.is_empty())
    );
    assert_eq!(i.impacted_subscribers, 1_850);
    assert_eq!(out.suppress.len(), 2, "agg and bng muted");
    // The same picture again changes nothing people are told.
    let again = m.update(4_000, &a, &storm(Phase::Firing), &Ctx);
    assert!(again.changes.is_empty());
    // Recovered: resolved once.
    let done = m.update(9_000, &analysis(vec![]), &storm(Phase::Ok), &Ctx);
    assert_eq!(done.changes.len(), 1);
    assert_eq!(done.changes[0].transition, Transition::Resolved);
    assert!(done.suppress.is_empty(), "children unmuted");
    assert!(
        m.update(10_000, &analysis(vec![]), &storm(Phase::Ok), &Ctx)
            .changes
            .is_empty()
    );
}

#[test]
fn a_fault_that_comes_back_soon_reopens_its_incident() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let a = analysis(vec![link_down("l2", &["agg", "bng"])]);
    m.update(-1_000, &a, &storm(Phase::Firing), &Ctx);
    for round in 0..10 {
        let t = round * 60_000;
        m.update(t, &a, &storm(Phase::Firing), &Ctx);
        m.update(t + 30_000, &analysis(vec![]), &storm(Phase::Ok), &Ctx);
    }
    assert_eq!(m.all().count(), 1, "a flapping link is one incident");
}

#[test]
fn a_flapping_incident_tells_once_and_resolves_after_a_quiet_reopen_window() {
    let policy = IncidentPolicy::default();
    let mut m = Incidents::new(policy);
    let a = analysis(vec![link_down("l2", &["agg", "bng"])]);
    let mut told = Vec::new();
    m.update(-1_000, &a, &storm(Phase::Firing), &Ctx);
    let mut last = 0;
    for round in 0..8 {
        let t = round * 25_000;
        told.extend(m.update(t, &a, &storm(Phase::Firing), &Ctx).changes);
        told.extend(
            m.update(t + 10_000, &analysis(vec![]), &storm(Phase::Ok), &Ctx)
                .changes,
        );
        last = t;
    }
    let kinds: Vec<Transition> = told.iter().map(|c| c.transition).collect();
    assert_eq!(
        kinds,
        [Transition::Opened, Transition::Resolved, Transition::Opened],
        "opened, resolved once, back once: then held open while it flaps"
    );
    let quiet = last + policy.reopen_within_ms;
    let end = m.update(quiet, &analysis(vec![]), &storm(Phase::Ok), &Ctx);
    assert_eq!(
        end.changes.iter().map(|c| c.transition).collect::<Vec<_>>(),
        [Transition::Resolved]
    );
}

#[test]
fn a_better_explanation_re_roots_the_same_incident() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let seen = analysis(vec![link_down("l2", &["agg", "bng"])]);
    m.update(2_000, &seen, &storm(Phase::Firing), &Ctx);
    let first = m.update(
        3_000,
        &analysis(vec![link_down("l2", &["agg", "bng"])]),
        &storm(Phase::Firing),
        &Ctx,
    );
    let id = first.changes[0].incident;
    let mut site = link_down("l2", &["agg", "bng"]);
    site.cause = Cause {
        kind: CauseKind::SiteIsolated,
        entity: CauseEntity::Site { id: "b".into() },
    };
    site.parts = vec![
        CauseEntity::Link { id: "l1".into() },
        CauseEntity::Link { id: "l2".into() },
    ];
    let site = analysis(vec![site]);
    // Found once: not yet enough to rename the incident.
    assert!(
        m.update(4_000, &site, &storm(Phase::Firing), &Ctx)
            .changes
            .is_empty()
    );
    let out = m.update(5_000, &site, &storm(Phase::Firing), &Ctx);
    assert_eq!(out.changes.len(), 1);
    assert_eq!(out.changes[0].transition, Transition::RootCauseChanged);
    assert_eq!(out.changes[0].incident, id);
    assert_eq!(m.all().count(), 1);
    assert_eq!(
        m.get(id).map(|i| i.title.as_str()),
        Some("Site Site b isolated: every link into it is down")
    );
}

#[test]
fn two_faults_are_two_incidents() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let mut mgmt = link_down("x", &[]);
    mgmt.cause = Cause {
        kind: CauseKind::ManagementPlane,
        entity: CauseEntity::Device { id: "core1".into() },
    };
    let mut alerts = storm(Phase::Firing);
    alerts.push(alert(
        "api",
        EntityKind::Device,
        "core1",
        Level::Critical,
        Phase::Firing,
    ));
    let both = analysis(vec![link_down("l2", &["agg", "bng"]), mgmt]);
    m.update(2_000, &both, &alerts, &Ctx);
    let out = m.update(3_000, &both, &alerts, &Ctx);
    assert_eq!(out.changes.len(), 2);
    assert_eq!(m.all().count(), 2);
}

#[test]
fn one_warning_waits_and_two_in_a_site_open_an_incident() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let one = vec![alert(
        "loss",
        EntityKind::Device,
        "agg",
        Level::Warning,
        Phase::Firing,
    )];
    assert!(
        m.update(3_000, &analysis(vec![]), &one, &Ctx)
            .changes
            .is_empty()
    );
    let mut two = one.clone();
    two.push(alert(
        "loss",
        EntityKind::Device,
        "bng",
        Level::Warning,
        Phase::Firing,
    ));
    let out = m.update(4_000, &analysis(vec![]), &two, &Ctx);
    assert_eq!(out.changes.len(), 1);
    let i = m.get(out.changes[0].incident).expect("incident");
    assert_eq!(i.members.len(), 2);
    assert!(i.confidence <= 0.5, "no analysis behind it");
}

#[test]
fn a_restored_manager_continues_numbering_and_does_not_reopen() {
    let mut m = Incidents::new(IncidentPolicy::default());
    let a = analysis(vec![link_down("l2", &["agg", "bng"])]);
    m.update(2_000, &a, &storm(Phase::Firing), &Ctx);
    m.update(3_000, &a, &storm(Phase::Firing), &Ctx);
    let stored: Vec<Incident> = m.all().cloned().collect();
    let mut restarted = Incidents::new(IncidentPolicy::default());
    restarted.restore(stored, 0);
    let out = restarted.update(4_000, &a, &storm(Phase::Firing), &Ctx);
    assert!(out.changes.is_empty(), "no duplicate after a restart");
    let mut other = link_down("l1", &["core1"]);
    other.impact.sites = vec!["a".into()];
    let alerts = vec![alert(
        "down",
        EntityKind::Device,
        "core1",
        Level::Critical,
        Phase::Firing,
    )];
    let other = analysis(vec![other]);
    restarted.update(4_500, &other, &alerts, &Ctx);
    let out = restarted.update(5_000, &other, &alerts, &Ctx);
    assert_eq!(out.changes[0].incident, 2);
}
