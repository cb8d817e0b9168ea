use super::*;
use crate::alert::rule::{FlapPolicy, Levels, Op, Scope, Window};
use ispvm_proto::{EntityKey, Severity};

const S: i64 = 1_000;

fn rule(json: &str) -> Rule {
    Rule::from_json(json).expect("valid rule")
}

fn sample(entity: EntityKey, metric: MetricName, ts_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        entity,
        metric,
        ts_ms,
        value,
    }
}

fn target(t: &str) -> EntityKey {
    EntityKey::ProbeTarget(t.into())
}

fn kinds(changes: &[AlertChange]) -> Vec<(String, NotificationKind, Level)> {
    changes
        .iter()
        .flat_map(|c| c.notifications.iter())
        .map(|n| (n.entity.id.clone(), n.kind, n.level))
        .collect()
}

fn rtt_rule() -> Rule {
    rule(
        r#"{"id":"rtt","name":"RTT","type":"sla_rtt",
            "window":{"func":"avg","duration_s":30},
            "levels":{"warn":{"op":">","value":50,"recover":30},"critical":{"op":">","value":200}},
            "for_s":20,"cooldown_s":30}"#,
    )
}

/// Feeds one RTT sample every 10 s from `from` to `to` (exclusive) and evaluates each time.
fn run(e: &mut Engine, rtt: f64, from: i64, to: i64) -> Vec<AlertChange> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        e.observe(
            &sample(target("t1"), MetricName::PingRttMs, t, rtt),
            "agent-a",
        );
        out.extend(e.evaluate(Schedule::Medium, t).0);
        t += 10 * S;
    }
    out
}

#[test]
fn fires_after_for_and_recovers_with_hysteresis() {
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    let c = run(&mut e, 80.0, 0, 20 * S);
    assert!(kinds(&c).is_empty(), "pending during for");
    assert_eq!(
        e.state("rtt", &EntityRef::new(EntityKind::ProbeTarget, "t1"))
            .map(|s| s.phase),
        Some(Phase::Pending)
    );
    let c = run(&mut e, 80.0, 20 * S, 30 * S);
    assert_eq!(
        kinds(&c),
        [("t1".into(), NotificationKind::Firing, Level::Warning)]
    );
    let fired = &c[0].notifications[0].explanation;
    assert!(
        fired.summary.contains("avg ping.rtt_ms over 30 s = 80"),
        "{}",
        fired.summary
    );
    assert_eq!(fired.threshold.as_deref(), Some("> 50"));
    assert_eq!(fired.samples, 3);
    // 40 is below the threshold but above the recover point: still firing.
    let c = run(&mut e, 40.0, 30 * S, 100 * S);
    assert!(kinds(&c).is_empty());
    let st = e.state("rtt", &EntityRef::new(EntityKind::ProbeTarget, "t1"));
    assert_eq!(
        st.map(|s| s.phase),
        Some(Phase::Firing),
        "hysteresis holds it"
    );
    // Below the recover point: recovering, then resolved after the cool-down.
    let c = run(&mut e, 10.0, 100 * S, 200 * S);
    assert_eq!(
        kinds(&c),
        [("t1".into(), NotificationKind::Resolved, Level::Warning)]
    );
}

#[test]
fn escalates_to_critical_in_one_rule() {
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    run(&mut e, 80.0, 0, 40 * S);
    let c = run(&mut e, 500.0, 40 * S, 80 * S);
    assert_eq!(
        kinds(&c),
        [("t1".into(), NotificationKind::Escalated, Level::Critical)]
    );
}

#[test]
fn maintenance_window_suppresses_then_releases() {
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    e.upsert_entity(
        EntityRef::new(EntityKind::ProbeTarget, "t1"),
        EntityAttrs {
            site: Some("pop-a".into()),
            ..EntityAttrs::default()
        },
    );
    e.set_maintenance(vec![MaintenanceWindow {
        id: "mw-1".into(),
        scope: Scope {
            sites: vec!["pop-a".into()],
            ..Scope::default()
        },
        starts_ms: 0,
        ends_ms: 100 * S,
        reason: "fibre splice".into(),
    }]);
    let c = run(&mut e, 500.0, 0, 100 * S);
    assert!(kinds(&c).is_empty(), "muted: {:?}", kinds(&c));
    let st = e
        .state("rtt", &EntityRef::new(EntityKind::ProbeTarget, "t1"))
        .cloned()
        .expect("state");
    assert_eq!(st.phase, Phase::Suppressed);
    assert_eq!(st.suppressed_by.as_deref(), Some("maintenance window mw-1"));
    // After the window the condition still holds: pending for `for`, then firing.
    let c = run(&mut e, 500.0, 100 * S, 140 * S);
    assert_eq!(
        kinds(&c),
        [("t1".into(), NotificationKind::Firing, Level::Critical)]
    );
}

#[test]
fn a_flapping_interface_is_notified_as_flapping_once() {
    let mut e = Engine::new();
    let mut r = rule(
        r#"{"id":"if","name":"If","type":"interface_down","for_s":0,"cooldown_s":0,
            "flap":{"transitions":4,"window_s":600}}"#,
    );
    r.window = Window {
        duration_s: 15,
        ..Window::default()
    };
    e.set_rules(vec![r]);
    let itf = EntityKey::Interface {
        device: "r1".into(),
        name: "ether1".into(),
    };
    let mut all = Vec::new();
    for i in 0..20i64 {
        let v = if i % 2 == 0 { 0.0 } else { 1.0 };
        e.observe(
            &sample(itf.clone(), MetricName::InterfaceRunning, i * 10 * S, v),
            "a",
        );
        all.extend(kinds(&e.evaluate(Schedule::Fast, i * 10 * S).0));
    }
    let flapping = all
        .iter()
        .filter(|k| k.1 == NotificationKind::Flapping)
        .count();
    assert_eq!(flapping, 1, "{all:?}");
    assert!(all.len() <= 5, "no storm: {all:?}");
}

#[test]
fn uplinks_fire_at_once_and_disabled_interfaces_never() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"id":"if","name":"If","type":"interface_down","for_s":60}"#,
    )]);
    let up = EntityRef::new(EntityKind::Interface, "r1/sfp1");
    e.upsert_entity(
        up,
        EntityAttrs {
            uplink: true,
            ..EntityAttrs::default()
        },
    );
    e.upsert_entity(
        EntityRef::new(EntityKind::Interface, "r1/ether9"),
        EntityAttrs {
            disabled: true,
            ..EntityAttrs::default()
        },
    );
    let itf = |name: &str| EntityKey::Interface {
        device: "r1".into(),
        name: name.into(),
    };
    // ether2 ran before it went down; ether3 never ran (an unused port).
    e.observe(
        &sample(itf("ether2"), MetricName::InterfaceRunning, -10_000, 1.0),
        "a",
    );
    for name in ["sfp1", "ether2", "ether3", "ether9"] {
        e.observe(
            &sample(itf(name), MetricName::InterfaceRunning, 0, 0.0),
            "a",
        );
    }
    let c = e.evaluate(Schedule::Fast, 0).0;
    assert_eq!(
        kinds(&c),
        [("r1/sfp1".into(), NotificationKind::Firing, Level::Critical)]
    );
    let st = e.state("if", &EntityRef::new(EntityKind::Interface, "r1/ether2"));
    assert_eq!(st.map(|s| s.phase), Some(Phase::Pending));
    for quiet in ["r1/ether3", "r1/ether9"] {
        assert!(
            e.state("if", &EntityRef::new(EntityKind::Interface, quiet))
                .is_none(),
            "{quiet}"
        );
    }
}

fn reach_engine() -> Engine {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"id":"down","name":"Down","type":"reachability","for_s":0}"#,
    )]);
    e.upsert_entity(
        EntityRef::new(EntityKind::ProbeTarget, "ping-r1"),
        EntityAttrs {
            device: Some("r1".into()),
            ..EntityAttrs::default()
        },
    );
    e
}

#[test]
fn device_down_combines_vantages_and_the_api() {
    let mut e = reach_engine();
    let dev = EntityKey::Device("r1".into());
    e.observe(
        &sample(dev.clone(), MetricName::DeviceUp, 0, 0.0),
        "agent-a",
    );
    e.observe(
        &sample(target("ping-r1"), MetricName::PingLossPct, 0, 100.0),
        "agent-a",
    );
    e.observe(
        &sample(target("ping-r1"), MetricName::PingLossPct, 0, 0.0),
        "agent-b",
    );
    let c = e.evaluate(Schedule::Fast, 1_000).0;
    assert_eq!(
        kinds(&c),
        [("r1".into(), NotificationKind::Firing, Level::Warning)]
    );
    assert!(c[0].state.explanation.summary.contains("path"));
    // Now every vantage loses it and the API is silent: a device outage.
    e.observe(
        &sample(target("ping-r1"), MetricName::PingLossPct, 10_000, 100.0),
        "agent-b",
    );
    e.observe(&sample(dev, MetricName::DeviceUp, 10_000, 0.0), "agent-a");
    let c = e.evaluate(Schedule::Fast, 11_000).0;
    assert_eq!(
        kinds(&c),
        [("r1".into(), NotificationKind::Escalated, Level::Critical)]
    );
    let signals = &c[0].state.explanation.signals;
    assert!(signals.iter().any(|s| s.contains("2/2")), "{signals:?}");
}

#[test]
fn api_down_with_ping_fine_is_a_management_plane_warning() {
    let mut e = reach_engine();
    e.observe(
        &sample(EntityKey::Device("r1".into()), MetricName::DeviceUp, 0, 0.0),
        "a",
    );
    e.observe(
        &sample(target("ping-r1"), MetricName::PingLossPct, 0, 0.0),
        "a",
    );
    let c = e.evaluate(Schedule::Fast, 0).0;
    assert_eq!(
        kinds(&c),
        [("r1".into(), NotificationKind::Firing, Level::Warning)]
    );
    assert!(c[0].state.explanation.summary.contains("management plane"));
}

#[test]
fn syslog_from_the_device_keeps_it_from_being_down() {
    let mut e = reach_engine();
    e.observe(
        &sample(EntityKey::Device("r1".into()), MetricName::DeviceUp, 0, 0.0),
        "a",
    );
    e.observe(
        &sample(target("ping-r1"), MetricName::PingLossPct, 0, 100.0),
        "a",
    );
    let mut ev = Event::new(
        EntityKey::Device("r1".into()),
        EventKind::Syslog,
        Severity::Notice,
        "system,info log".into(),
    );
    ev.ts_ms = 0;
    e.observe_event(&ev);
    let c = e.evaluate(Schedule::Fast, 0).0;
    assert_eq!(
        kinds(&c),
        [("r1".into(), NotificationKind::Firing, Level::Warning)]
    );
}

#[test]
fn silence_neither_fires_nor_resolves() {
    let mut e = reach_engine();
    e.observe(
        &sample(EntityKey::Device("r1".into()), MetricName::DeviceUp, 0, 0.0),
        "a",
    );
    let c = e.evaluate(Schedule::Fast, 0).0;
    assert_eq!(
        kinds(&c),
        [("r1".into(), NotificationKind::Firing, Level::Critical)]
    );
    // The agent goes quiet: no fresh report, the alert holds.
    let c = e.evaluate(Schedule::Fast, 600_000).0;
    assert!(c.is_empty());
    assert_eq!(
        e.state("down", &EntityRef::device("r1")).map(|s| s.phase),
        Some(Phase::Firing)
    );
}

#[test]
fn utilisation_uses_the_busier_direction_over_capacity() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"id":"util","name":"Util","type":"utilisation","window":{"func":"avg","duration_s":60},
            "levels":{"warn":{"op":">","value":80}}}"#,
    )]);
    e.upsert_entity(
        EntityRef::new(EntityKind::Interface, "r1/sfp1"),
        EntityAttrs {
            capacity_bps: Some(1e9),
            ..EntityAttrs::default()
        },
    );
    let itf = EntityKey::Interface {
        device: "r1".into(),
        name: "sfp1".into(),
    };
    e.observe(
        &sample(itf.clone(), MetricName::InterfaceRxBps, 0, 1e8),
        "a",
    );
    e.observe(&sample(itf, MetricName::InterfaceTxBps, 0, 9e8), "a");
    let c = e.evaluate(Schedule::Medium, 0).0;
    assert_eq!(
        kinds(&c),
        [("r1/sfp1".into(), NotificationKind::Firing, Level::Warning)]
    );
    assert_eq!(c[0].state.explanation.value, Some(90.0));
}

#[test]
fn bgp_flap_rate_warns_while_the_session_is_up() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"id":"bgp","name":"BGP","type":"bgp_not_established","for_s":0,
            "flap_rate":{"transitions":4,"window_s":300}}"#,
    )]);
    let peer = EntityKey::Peer {
        device: "r1".into(),
        peer: "10.0.0.1".into(),
    };
    for (i, v) in [1.0, 0.0, 1.0, 0.0, 1.0].into_iter().enumerate() {
        e.observe(
            &sample(
                peer.clone(),
                MetricName::BgpSessionState,
                i as i64 * 30 * S,
                v,
            ),
            "a",
        );
    }
    let c = e.evaluate(Schedule::Fast, 130 * S).0;
    assert_eq!(
        kinds(&c),
        [(
            "r1/10.0.0.1".into(),
            NotificationKind::Firing,
            Level::Warning
        )]
    );
    assert!(c[0].state.explanation.summary.contains("4 times"));
}

#[test]
fn one_bgp_outage_recovers_instead_of_counting_as_a_flap() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"id":"bgp","name":"BGP","type":"bgp_not_established","for_s":0,"cooldown_s":20,
            "flap_rate":{"transitions":4,"window_s":300}}"#,
    )]);
    let peer = EntityKey::Peer {
        device: "r1".into(),
        peer: "203.0.113.9".into(),
    };
    let mut last = Vec::new();
    for (i, v) in [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0].into_iter().enumerate() {
        let t = i as i64 * 10 * S;
        e.observe(
            &sample(peer.clone(), MetricName::BgpSessionState, t, v),
            "a",
        );
        last.extend(kinds(&e.evaluate(Schedule::Fast, t).0));
    }
    assert_eq!(
        last,
        [
            (
                "r1/203.0.113.9".into(),
                NotificationKind::Firing,
                Level::Critical
            ),
            (
                "r1/203.0.113.9".into(),
                NotificationKind::Resolved,
                Level::Critical
            ),
        ],
        "down once, back once: firing, then resolved after the cool-down"
    );
}

#[test]
fn restored_state_is_not_notified_again() {
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    let c = run(&mut e, 500.0, 0, 40 * S);
    assert_eq!(kinds(&c).len(), 1);
    let saved: Vec<(String, EntityRef, AlertState)> = c
        .iter()
        .map(|ch| (ch.rule_id.clone(), ch.entity.clone(), ch.state.clone()))
        .collect();
    // A new engine (a restart) loads the persisted states before it sees samples.
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    for (r, ent, st) in saved {
        e.restore(&r, ent, st);
    }
    let c = run(&mut e, 500.0, 40 * S, 100 * S);
    assert!(kinds(&c).is_empty(), "{:?}", kinds(&c));
    let c = run(&mut e, 1.0, 100 * S, 200 * S);
    assert_eq!(
        kinds(&c),
        [("t1".into(), NotificationKind::Resolved, Level::Critical)]
    );
}

#[test]
fn scope_selects_entities() {
    let mut r = rtt_rule();
    r.scope = Scope {
        ids: vec!["t2".into()],
        ..Scope::default()
    };
    r.levels = Levels {
        warn: Some(Threshold {
            op: Op::Gt,
            value: 1.0,
            recover: None,
        }),
        critical: None,
    };
    r.for_s = 0;
    r.flap = FlapPolicy::default();
    let mut e = Engine::new();
    e.set_rules(vec![r]);
    e.observe(&sample(target("t1"), MetricName::PingRttMs, 0, 100.0), "a");
    e.observe(&sample(target("t2"), MetricName::PingRttMs, 0, 100.0), "a");
    let c = e.evaluate(Schedule::Medium, 0).0;
    assert_eq!(
        kinds(&c),
        [("t2".into(), NotificationKind::Firing, Level::Warning)]
    );
}

#[test]
fn only_metrics_some_rule_reads_are_kept() {
    let mut e = Engine::new();
    e.set_rules(vec![rtt_rule()]);
    e.observe(&sample(target("t1"), MetricName::PingRttMs, 0, 10.0), "a");
    e.observe(
        &sample(
            EntityKey::Device("r1".into()),
            MetricName::DeviceUptimeS,
            0,
            1.0,
        ),
        "a",
    );
    assert_eq!(e.footprint(), (1, 1), "uptime is read by no rule");
}
