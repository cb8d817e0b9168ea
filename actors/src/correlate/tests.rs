//! The correlator from batches and alerts, as the actor drives it.

use super::*;
use crate::alert::{AlertState, Level};
use crate::incident::Transition;
use crate::rca::{CauseEntity, CauseKind};
use ispvm_proto::{Batch, ClusterReport, EntityKey, MemberState, MemberView, MetricSample};

fn attrs(site: &str, role: Option<DeviceRole>) -> EntityAttrs {
    EntityAttrs {
        site: Some(site.into()),
        role,
        ..EntityAttrs::default()
    }
}

/// core (site a) — link "c-x" — x-agg (site b) — link "x-acc" — x-acc; agent-a in a,
/// agent-b in b; every device probed.
fn correlator() -> Correlator {
    let mut c = Correlator::new(BoardPolicy::default(), IncidentPolicy::default());
    let mut entities = vec![
        (
            EntityRef::device("core"),
            attrs("a", Some(DeviceRole::Core)),
        ),
        (
            EntityRef::device("x-agg"),
            attrs("b", Some(DeviceRole::Agg)),
        ),
        (
            EntityRef::device("x-acc"),
            attrs("b", Some(DeviceRole::Access)),
        ),
    ];
    for d in ["core", "x-agg", "x-acc"] {
        entities.push((
            EntityRef::new(EntityKind::ProbeTarget, format!("ping-{d}")),
            EntityAttrs {
                device: Some(d.into()),
                ..EntityAttrs::default()
            },
        ));
    }
    let links = vec![
        LinkSpec {
            id: "c-x".into(),
            a: ("core".into(), "sfp1".into()),
            b: ("x-agg".into(), "sfp9".into()),
        },
        LinkSpec {
            id: "x-acc".into(),
            a: ("x-agg".into(), "ether2".into()),
            b: ("x-acc".into(), "ether1".into()),
        },
    ];
    let names = crate::tree::DisplayNames {
        sites: vec![("b".into(), "Coimbra".into())],
        devices: Vec::new(),
    };
    c.set_inventory(&entities, &links, &names);
    c
}

fn sample(entity: EntityKey, metric: MetricName, ts_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        entity,
        metric,
        ts_ms,
        value,
    }
}

fn report(site: &str, peer: &str, peer_live: bool, at_ms: i64) -> ClusterReport {
    ClusterReport {
        at_ms,
        generation: 1,
        site: site.into(),
        gossip_interval_ms: 500,
        phi_threshold: 8.0,
        replication: 1,
        members: vec![MemberView {
            agent: peer.into(),
            generation: 1,
            site: String::new(),
            version: String::new(),
            capabilities: Vec::new(),
            state: if peer_live {
                MemberState::Live
            } else {
                MemberState::Dead
            },
            heartbeat: 1,
            phi: None,
            live_for_ms: 0,
            cert_expiry_s: None,
            routers: 0,
            probes: 0,
            buffer_bytes: 0,
            health: "ok".into(),
        }],
        owned: Vec::new(),
        reach: Vec::new(),
    }
}

/// What agent-a reports at `t` with link c-x cut or not.
fn batch_a(t: i64, cut: bool) -> Batch {
    let mut b = Batch::new("agent-a", "t1", 1);
    b.sent_at_ms = t;
    let far = if cut { 100.0 } else { 0.0 };
    b.samples = vec![
        sample(
            EntityKey::Device("core".into()),
            MetricName::DeviceUp,
            t,
            1.0,
        ),
        sample(
            EntityKey::ProbeTarget("ping-core".into()),
            MetricName::PingLossPct,
            t,
            0.0,
        ),
        sample(
            EntityKey::ProbeTarget("ping-x-agg".into()),
            MetricName::PingLossPct,
            t,
            far,
        ),
        sample(
            EntityKey::ProbeTarget("ping-x-acc".into()),
            MetricName::PingLossPct,
            t,
            far,
        ),
        // After the cut agent-a has taken over site b's routers, and cannot reach them.
        sample(
            EntityKey::Device("x-agg".into()),
            MetricName::DeviceUp,
            t,
            if cut { 0.0 } else { 1.0 },
        ),
        sample(
            EntityKey::Interface {
                device: "core".into(),
                name: "sfp1".into(),
            },
            MetricName::InterfaceRunning,
            t,
            if cut { 0.0 } else { 1.0 },
        ),
    ];
    b.cluster = Some(report("a", "agent-b", !cut, t));
    b
}

fn firing(rule: &str, entity: EntityRef, level: Level, t: i64) -> AlertView {
    AlertView {
        rule_id: rule.into(),
        entity,
        state: AlertState {
            phase: Phase::Firing,
            level: Some(level),
            fired_ms: Some(t),
            last_change_ms: t,
            ..AlertState::default()
        },
    }
}

#[test]
fn a_cut_link_behind_which_a_site_hangs_is_one_incident_naming_the_link() {
    let mut c = correlator();
    // Healthy: both agents heard, everything reached.
    let mut b = Batch::new("agent-b", "t1", 1);
    b.sent_at_ms = 1_000;
    b.cluster = Some(report("b", "agent-a", true, 1_000));
    c.observe(&b);
    c.observe(&batch_a(1_000, false));
    let quiet = c.cycle(2_000, &[]);
    assert!(quiet.changes.is_empty());
    assert!(c.analysis().findings.is_empty(), "{:?}", c.analysis());
    // The cut: agent-b goes silent (its site is behind the link), agent-a loses site b.
    c.observe(&batch_a(40_000, true));
    let alerts = vec![
        firing(
            "iface",
            EntityRef::new(EntityKind::Interface, "core/sfp1"),
            Level::Warning,
            40_000,
        ),
        firing("down", EntityRef::device("x-agg"), Level::Critical, 41_000),
        firing(
            "loss",
            EntityRef::new(EntityKind::ProbeTarget, "ping-x-acc"),
            Level::Critical,
            41_000,
        ),
    ];
    let first = c.cycle(41_500, &alerts);
    assert!(
        first.changes.is_empty(),
        "a finding holds two cycles before it opens"
    );
    let out = c.cycle(42_000, &alerts);
    let top = &c.analysis().findings[0];
    assert_eq!(top.cause.kind, CauseKind::LinkDown, "{:?}", c.analysis());
    assert_eq!(top.cause.entity, CauseEntity::Link { id: "c-x".into() });
    assert_eq!(top.impact.devices, ["x-acc", "x-agg"]);
    assert_eq!(out.changes.len(), 1, "{:?}", out.changes);
    assert_eq!(out.changes[0].transition, Transition::Opened);
    let i = c
        .incidents()
        .get(out.changes[0].incident)
        .expect("incident");
    assert_eq!(i.title, "Aggregation link core sfp1 ↔ x-agg sfp9 down");
    assert_eq!(i.members.len(), 1);
    assert_eq!(
        i.suppressed.len(),
        2,
        "the device and the probe behind the cut"
    );
    assert!(out.suppress.contains_key(&EntityRef::device("x-agg")));
}
