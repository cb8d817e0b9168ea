//! Incidents over the real store (SQLite and PostgreSQL): a link cut behind which a
//! site hangs becomes one incident naming the link, with the alerts behind it
//! suppressed; the incident and its transition are persisted; a restarted tree resumes
//! it without a second transition; recovery resolves it once.

use ispvm_testkit::{FakeClock, on_both_engines, start_tree};

use ispvm_actors::alert::{Phase, Schedule};
use ispvm_actors::incident::{ActionBy, ActionError, IncidentAction, IncidentState};
use ispvm_actors::rca::{CauseEntity, CauseKind};
use ispvm_actors::tree::{Clock, MonitorTree};
use ispvm_proto::{
    Batch, ClusterReport, DeviceRole, EntityKey, InterfaceInfo, MetricName, MetricSample,
};
use ispvm_server::store::catalog::{DeviceSpec, Endpoint, LinkSpec, SiteSpec};
use ispvm_server::store::{Actor, AuditFilter, IncidentFilter, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const S: i64 = 1_000;
const T: &str = "acme";

/// core (site a) —c-x— x-agg (site b) —x-acc— x-acc.
async fn inventory(store: &Store) {
    store.ensure_tenant(T, "Acme").await.expect("tenant");
    let ts = store.tenant(T);
    let sys = Actor::system();
    for (id, name) in [("a", "Lisbon"), ("b", "Coimbra")] {
        let spec = SiteSpec {
            name: name.into(),
            lat: None,
            lon: None,
        };
        ts.create_site(&sys, id, &spec).await.expect("site");
    }
    for (id, site, role) in [
        ("core", "a", DeviceRole::Core),
        ("x-agg", "b", DeviceRole::Agg),
        ("x-acc", "b", DeviceRole::Access),
    ] {
        let spec = DeviceSpec {
            name: id.to_uppercase(),
            site_id: site.into(),
            role,
            mgmt_addr: String::new(),
            tags: Vec::new(),
            polling_profile: None,
            credential_set: None,
        };
        ts.create_device(&sys, id, &spec, 100)
            .await
            .expect("device");
    }
    for (id, a, ai, b, bi) in [
        ("c-x", "core", "sfp1", "x-agg", "sfp9"),
        ("x-acc", "x-agg", "ether2", "x-acc", "ether1"),
    ] {
        let spec = LinkSpec {
            name: String::new(),
            a: Endpoint {
                device: a.into(),
                interface: ai.into(),
            },
            b: Endpoint {
                device: b.into(),
                interface: bi.into(),
            },
            capacity_bps: None,
            provider: String::new(),
            medium: Default::default(),
        };
        ts.create_link(&sys, id, &spec).await.expect("link");
    }
    ispvm_testkit::import_rules(
        store,
        T,
        &[
            r#"{"id":"device-down","name":"Device down","type":"reachability","window":{"func":"last","duration_s":60},"for_s":0,"cooldown_s":30}"#,
            r#"{"id":"interface-down","name":"Interface down","type":"interface_down","window":{"func":"last","duration_s":60},"for_s":0,"cooldown_s":30}"#,
        ],
    )
    .await;
}

fn sample(entity: EntityKey, metric: MetricName, ts_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        entity,
        metric,
        ts_ms,
        value,
    }
}

fn report(site: &str, at_ms: i64) -> ClusterReport {
    ClusterReport {
        at_ms,
        generation: 1,
        site: site.into(),
        gossip_interval_ms: 500,
        phi_threshold: 8.0,
        replication: 1,
        members: Vec::new(),
        owned: Vec::new(),
        reach: Vec::new(),
    }
}

/// What agent-a (site a) reports at `now`, with link c-x cut or not.
fn from_a(seq: u64, now: i64, cut: bool) -> Batch {
    let mut b = Batch::new("agent-a", T, seq);
    b.sent_at_ms = now;
    let (loss, up) = if cut { (100.0, 0.0) } else { (0.0, 1.0) };
    let mut samples = vec![
        sample(
            EntityKey::Device("core".into()),
            MetricName::DeviceUp,
            now,
            1.0,
        ),
        sample(
            EntityKey::ProbeTarget("core".into()),
            MetricName::PingLossPct,
            now,
            0.0,
        ),
        sample(
            EntityKey::Interface {
                device: "core".into(),
                name: "sfp1".into(),
            },
            MetricName::InterfaceRunning,
            now,
            up,
        ),
    ];
    for d in ["x-agg", "x-acc"] {
        samples.push(sample(
            EntityKey::ProbeTarget(d.into()),
            MetricName::PingLossPct,
            now,
            loss,
        ));
        // Agent-a polls site b's routers once agent-b is gone.
        if cut {
            samples.push(sample(
                EntityKey::Device(d.into()),
                MetricName::DeviceUp,
                now,
                0.0,
            ));
        }
    }
    b.samples = samples;
    b.inventory.interfaces.push(InterfaceInfo {
        device: "core".into(),
        name: "sfp1".into(),
        kind: "ether".into(),
        disabled: false,
    });
    b.cluster = Some(report("a", now));
    b
}

/// What agent-b (site b) reports while it can.
fn from_b(seq: u64, now: i64) -> Batch {
    let mut b = Batch::new("agent-b", T, seq);
    b.sent_at_ms = now;
    b.samples = ["x-agg", "x-acc"]
        .iter()
        .flat_map(|d| {
            [
                sample(
                    EntityKey::Device((*d).into()),
                    MetricName::DeviceUp,
                    now,
                    1.0,
                ),
                sample(
                    EntityKey::ProbeTarget((*d).into()),
                    MetricName::PingLossPct,
                    now,
                    0.0,
                ),
            ]
        })
        .collect();
    b.cluster = Some(report("b", now));
    b
}

struct Run {
    store: Store,
    clock: Arc<FakeClock>,
    tree: MonitorTree,
    seq: u64,
}

impl Run {
    async fn deliver(&mut self, batch: Batch) {
        self.store
            .tenant(T)
            .ingest(&batch, batch.sent_at_ms)
            .await
            .expect("ingest");
        self.tree.ingest(T, Arc::new(batch));
    }

    /// At `now`: the agents' batches, an alert cycle, a correlation cycle; the number
    /// of transitions persisted.
    async fn step(&mut self, now: i64, cut: bool) -> usize {
        self.clock.0.store(now, Ordering::SeqCst);
        self.seq += 1;
        self.deliver(from_a(self.seq, now, cut)).await;
        if !cut {
            self.deliver(from_b(self.seq, now)).await;
        }
        self.tree
            .evaluate_now(T, Schedule::Fast)
            .await
            .expect("alerts");
        self.tree.correlate_now(T).await.expect("correlation").len()
    }
}

async fn a_cut_link_is_one_persisted_incident_that_survives_a_restart(store: Store) {
    inventory(&store).await;
    let t0 = ispvm_proto::time::now_ms();
    let clock = Arc::new(FakeClock(AtomicI64::new(t0)));
    let tree = start_tree(&store, &clock).await;
    let mut run = Run {
        store: store.clone(),
        clock,
        tree,
        seq: 0,
    };
    for i in 0..3 {
        assert_eq!(run.step(t0 + i * 10 * S, false).await, 0, "healthy at {i}");
    }
    // The cut; agent-b (behind it) falls silent.
    let mut opened = 0;
    for i in 3..9 {
        opened += run.step(t0 + i * 10 * S, true).await;
    }
    assert_eq!(opened, 1, "one transition: opened");
    let ts = store.tenant(T);
    let rows = ts
        .incidents_page(IncidentFilter::default(), None, 10)
        .await
        .expect("list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].kind, CauseKind::LinkDown);
    assert_eq!(rows[0].state, IncidentState::Open);
    let incident = ts.incident(rows[0].id).await.expect("get").expect("there");
    assert_eq!(
        incident.root_cause.entity,
        CauseEntity::Link { id: "c-x".into() }
    );
    assert_eq!(
        incident.title,
        "Aggregation link CORE sfp1 ↔ X-AGG sfp9 down"
    );
    assert_eq!(incident.impact.devices, ["x-acc", "x-agg"]);
    assert_eq!(incident.impact.sites, ["b"]);
    assert!(
        incident
            .suppressed
            .iter()
            .any(|s| s.alert.entity.id == "x-agg" && s.alert.rule_id == "device-down"),
        "{:?}",
        incident.suppressed
    );
    // The alerts behind the cut are muted in the engine.
    let alerts = run.tree.alerts(T).await.expect("alerts");
    let behind: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule_id == "device-down" && a.entity.id != "core")
        .collect();
    assert!(!behind.is_empty());
    assert!(
        behind.iter().all(|a| a.state.phase == Phase::Suppressed),
        "{behind:?}"
    );

    // Operators act through the correlator; every action is audited, a bad one changes
    // nothing, another tenant cannot touch it.
    let id = u64::try_from(rows[0].id).expect("id");
    let by = ActionBy {
        username: "nina".into(),
        remote: "192.0.2.7:5555".into(),
    };
    let acked = run
        .tree
        .incident_action(
            T,
            id,
            by.clone(),
            IncidentAction::Acknowledge {
                silence: true,
                until_ms: None,
            },
        )
        .await
        .expect("tree")
        .expect("ack");
    assert!(acked.silenced_at(run.clock.now_ms()));
    let refused = run
        .tree
        .incident_action(
            T,
            id,
            by.clone(),
            IncidentAction::AddNote { text: " ".into() },
        )
        .await
        .expect("tree");
    assert_eq!(refused, Err(ActionError::BadNote));
    run.tree
        .incident_action(
            T,
            id,
            by.clone(),
            IncidentAction::AddNote {
                text: "fibre crew dispatched".into(),
            },
        )
        .await
        .expect("tree")
        .expect("note");
    let stored = ts.incident(rows[0].id).await.expect("get").expect("there");
    assert_eq!(stored.ack.as_ref().map(|a| a.by.as_str()), Some("nina"));
    assert_eq!(stored.notes.len(), 1, "the refused note left nothing");
    let audit = ts
        .audit_entries(
            &AuditFilter {
                resource: Some("incident".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("audit");
    let verbs: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(verbs, ["note", "acknowledge"], "newest first");
    assert_eq!(audit[1].remote_addr, "192.0.2.7:5555");
    store.ensure_tenant("other", "Other").await.expect("tenant");
    let foreign = run
        .tree
        .incident_action("other", id, by, IncidentAction::Unacknowledge)
        .await
        .expect("tree");
    assert_eq!(foreign, Err(ActionError::Unknown(id)));
    assert!(
        ts.incident(rows[0].id)
            .await
            .expect("get")
            .expect("there")
            .ack
            .is_some()
    );

    // Restart: the incident is resumed, not opened again.
    run.tree.stop().await;
    run.tree = start_tree(&store, &run.clock).await;
    let mut again = 0;
    for i in 9..12 {
        again += run.step(t0 + i * 10 * S, true).await;
    }
    assert_eq!(again, 0, "no second transition after a restart");
    let rows = ts
        .incidents_page(IncidentFilter::default(), None, 10)
        .await
        .expect("list");
    assert_eq!(rows.len(), 1);

    // Repaired: resolved once, past the alerts' cool-down.
    let mut resolved = 0;
    for i in 12..20 {
        resolved += run.step(t0 + i * 10 * S, false).await;
    }
    let all = ts
        .incidents_page(IncidentFilter::default(), None, 10)
        .await
        .expect("list");
    assert_eq!(
        all.len(),
        1,
        "the children recovering after it are not a new incident"
    );
    assert_eq!(resolved, 1, "one transition: resolved");
    let incident = ts.incident(rows[0].id).await.expect("get").expect("there");
    assert_eq!(incident.state, IncidentState::Resolved);
    assert!(incident.resolved_ms.is_some());
    // Another tenant sees nothing of it.
    assert!(
        store
            .tenant("other")
            .incident(rows[0].id)
            .await
            .expect("get")
            .is_none()
    );
    run.tree.stop().await;
}
on_both_engines!(
    cut_link,
    a_cut_link_is_one_persisted_incident_that_survives_a_restart
);
