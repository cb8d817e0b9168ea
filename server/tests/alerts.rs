//! The alert engine over the real store (SQLite and PostgreSQL): an alert fires after
//! `for`, holds with hysteresis, recovers after the cool-down, is muted by a maintenance
//! window, is reported as flapping once, and survives a restart of the actor tree without
//! a second notification. Every notification explains itself.

use ispvm_testkit as common;
use ispvm_testkit::{FakeClock, on_both_engines};

use common::batch;
use ispvm_actors::alert::Schedule;
use ispvm_actors::tree::DomainStore;
use ispvm_actors::tree::MonitorTree;
use ispvm_proto::{Batch, EntityKey, MetricName, MetricSample};
use ispvm_server::domain::StoreDomain;
use ispvm_server::internal_events::{ServerMetrics, StoredRowUnreadable};
use ispvm_server::store::catalog::{MaintenanceSpec, Scope};
use ispvm_server::store::{Actor, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

const S: i64 = 1_000;

async fn import(store: &Store, tenant: &str, docs: &[&str]) {
    ispvm_testkit::import_rules(store, tenant, docs).await;
}

async fn start(store: &Store, clock: &Arc<FakeClock>) -> MonitorTree {
    ispvm_testkit::start_tree(store, clock).await
}

struct Feed {
    store: Store,
    tree: MonitorTree,
    seq: u64,
}

impl Feed {
    async fn start(store: &Store, clock: &Arc<FakeClock>, seq: u64) -> Feed {
        Feed {
            store: store.clone(),
            tree: start(store, clock).await,
            seq,
        }
    }

    /// At `now`: stores the samples, hands them to the tree and runs one cycle.
    async fn step(&mut self, clock: &FakeClock, now: i64, samples: Vec<MetricSample>, s: Schedule) {
        clock.0.store(now, Ordering::SeqCst);
        self.send(samples).await;
        self.tree.evaluate_now("acme", s).await.expect("cycle");
    }

    /// Stores one batch and hands it to the tree, as ingest does.
    async fn send(&mut self, samples: Vec<MetricSample>) {
        self.seq += 1;
        let mut b = Batch::new("agent-a", "acme", self.seq);
        b.samples = samples;
        self.store
            .tenant("acme")
            .ingest(&b, b.sent_at_ms)
            .await
            .expect("ingest");
        self.tree.ingest("acme", Arc::new(b));
    }
}

fn rtt(ts_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        entity: EntityKey::ProbeTarget("t1".into()),
        metric: MetricName::PingRttMs,
        ts_ms,
        value,
    }
}

fn running(name: &str, ts_ms: i64, up: bool) -> MetricSample {
    MetricSample {
        entity: EntityKey::Interface {
            device: "r1".into(),
            name: name.into(),
        },
        metric: MetricName::InterfaceRunning,
        ts_ms,
        value: if up { 1.0 } else { 0.0 },
    }
}

/// Notification kinds stored so far, oldest first.
async fn notified(store: &Store) -> Vec<(String, String, String)> {
    store
        .tenant("acme")
        .alert_notifications(0, 1_000)
        .await
        .expect("notifications")
        .into_iter()
        .map(|n| {
            (
                n.entity_id,
                n.kind.as_str().to_owned(),
                n.level.as_str().to_owned(),
            )
        })
        .collect()
}

fn n(entity: &str, kind: &str, level: &str) -> (String, String, String) {
    (entity.into(), kind.into(), level.into())
}

async fn fires_holds_recovers_and_survives_a_restart(store: Store) {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    import(
        &store,
        "acme",
        &[r#"{"id":"rtt","name":"Probe RTT","type":"sla_rtt",
             "window":{"func":"avg","duration_s":30},
             "levels":{"warn":{"op":">","value":50,"recover":30},"critical":{"op":">","value":200}},
             "for_s":20,"cooldown_s":30}"#],
    )
    .await;
    let t0 = ispvm_proto::time::now_ms();
    let clock = Arc::new(FakeClock(AtomicI64::new(t0)));
    let mut feed = Feed::start(&store, &clock, 0).await;
    // Pending for 20 s, then firing.
    for i in 0..3 {
        let now = t0 + i * 10 * S;
        feed.step(&clock, now, vec![rtt(now, 80.0)], Schedule::Medium)
            .await;
        if i < 2 {
            assert!(notified(&store).await.is_empty(), "pending at {i}");
        }
    }
    assert_eq!(notified(&store).await, [n("t1", "firing", "warning")]);
    let stored = store
        .tenant("acme")
        .alert_notifications(0, 10)
        .await
        .expect("rows");
    let why = &stored[0].details;
    assert_eq!(why["func"], "avg");
    assert_eq!(why["window_s"], 30);
    assert_eq!(why["threshold"], "> 50");
    assert!(
        stored[0].summary.contains("avg ping.rtt_ms over 30 s = 80"),
        "{}",
        stored[0].summary
    );
    let alerts = store.tenant("acme").alerts().await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (
            alerts[0].phase.as_str(),
            alerts[0].level.map(|l| l.as_str())
        ),
        ("firing", Some("warning"))
    );

    // Restart: a new tree reads the state back and does not notify again.
    feed.tree.stop().await;
    feed.tree = start(&store, &clock).await;
    for i in 3..5 {
        let now = t0 + i * 10 * S;
        feed.step(&clock, now, vec![rtt(now, 80.0)], Schedule::Medium)
            .await;
    }
    assert_eq!(
        notified(&store).await.len(),
        1,
        "no second notification after the restart"
    );

    // Hysteresis: 40 is under the threshold but over the recover point.
    for i in 5..10 {
        let now = t0 + i * 10 * S;
        feed.step(&clock, now, vec![rtt(now, 40.0)], Schedule::Medium)
            .await;
    }
    let alerts = store.tenant("acme").alerts().await.expect("alerts");
    assert_eq!(alerts[0].phase.as_str(), "firing", "held by hysteresis");
    // Under the recover point: recovering, then resolved after the 30 s cool-down.
    for i in 10..20 {
        let now = t0 + i * 10 * S;
        feed.step(&clock, now, vec![rtt(now, 10.0)], Schedule::Medium)
            .await;
    }
    assert_eq!(
        notified(&store).await,
        [n("t1", "firing", "warning"), n("t1", "resolved", "warning")]
    );
    assert!(
        store
            .tenant("acme")
            .alerts()
            .await
            .expect("alerts")
            .is_empty()
    );
    feed.tree.stop().await;

    // Notifications are kept for the tenant's 90 days, then deleted.
    let policy = ispvm_server::store::TimeseriesPolicy::default();
    let day = ispvm_server::store::DAY_MS;
    store
        .maintain(&policy, t0 + 89 * day)
        .await
        .expect("maintain");
    assert_eq!(notified(&store).await.len(), 2, "within retention");
    let report = store
        .maintain(&policy, t0 + 92 * day)
        .await
        .expect("maintain");
    assert_eq!(report.retention.notifications, 2);
    assert!(notified(&store).await.is_empty(), "past retention");
}
on_both_engines!(lifecycle, fires_holds_recovers_and_survives_a_restart);

async fn maintenance_mutes_and_flapping_is_reported_once(store: Store) {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    import(
        &store,
        "acme",
        &[
            r#"{"id":"if-down","name":"Interface down","type":"interface_down",
             "for_s":0,"cooldown_s":0,"flap":{"transitions":4,"window_s":600}}"#,
        ],
    )
    .await;
    let ts = store.tenant("acme");
    ts.ingest(&batch("agent-a", "acme", 1, "r1"), common::T0)
        .await
        .expect("inventory");
    let t0 = ispvm_proto::time::now_ms();
    let scope = Scope {
        devices: vec!["r1".into()],
        ..Scope::default()
    };
    ts.create_maintenance(
        &Actor::system(),
        "mw-1",
        &MaintenanceSpec {
            name: "Optics swap".into(),
            starts_ms: t0 - 60 * S,
            ends_ms: t0 + 60 * S,
            scope,
            comment: String::new(),
        },
    )
    .await
    .expect("maintenance window");
    let clock = Arc::new(FakeClock(AtomicI64::new(t0)));
    let mut feed = Feed::start(&store, &clock, 10).await;
    feed.send(vec![running("ether1", t0 - 10 * S, true)]).await;
    feed.step(
        &clock,
        t0,
        vec![running("ether1", t0, false)],
        Schedule::Fast,
    )
    .await;
    assert!(notified(&store).await.is_empty(), "muted by the window");
    let alerts = ts.alerts().await.expect("alerts");
    assert_eq!(alerts[0].phase.as_str(), "suppressed");
    assert!(
        alerts[0].state["suppressed_by"]
            .as_str()
            .is_some_and(|s| s.contains("mw-1"))
    );

    // The window ends with the interface still down: now it fires.
    let after = t0 + 70 * S;
    feed.step(
        &clock,
        after,
        vec![running("ether1", after, false)],
        Schedule::Fast,
    )
    .await;
    assert_eq!(
        notified(&store).await,
        [n("r1/ether1", "firing", "warning")]
    );

    // A crashed RouterActor comes back with the newest stored values.
    feed.tree
        .crash_child("acme", ispvm_actors::tree::ChildKey::Router("r1".into()));
    let mut restored = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if let Ok(Some(v)) = feed.tree.router("acme", "r1").await {
            restored = Some(v);
            break;
        }
    }
    let view = restored.expect("r1 restarted");
    assert_eq!(view.interfaces_running.get("ether1"), Some(&false));
    assert_eq!(
        view.latest
            .get(&("r1".to_owned(), MetricName::DeviceCpuPct))
            .map(|v| v.1),
        Some(17.0)
    );

    // An interface that flaps: one "flapping" notification, not a storm.
    for i in 0..12i64 {
        let now = after + (i + 1) * 10 * S;
        feed.step(
            &clock,
            now,
            vec![running("ether2", now, i % 2 == 1)],
            Schedule::Fast,
        )
        .await;
    }
    let ether2: Vec<_> = notified(&store)
        .await
        .into_iter()
        .filter(|x| x.0 == "r1/ether2")
        .collect();
    let flapping = ether2.iter().filter(|x| x.1 == "flapping").count();
    assert_eq!(flapping, 1, "{ether2:?}");
    assert!(ether2.len() <= 5, "no storm: {ether2:?}");
    feed.tree.stop().await;
}
on_both_engines!(maintenance, maintenance_mutes_and_flapping_is_reported_once);

async fn new_tenants_get_the_starter_pack(store: Store) {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    let added = store
        .tenant("acme")
        .seed_starter_rules()
        .await
        .expect("seed");
    assert!(added >= 10);
    assert_eq!(
        store
            .tenant("acme")
            .seed_starter_rules()
            .await
            .expect("again"),
        0
    );
    let rules = store.tenant("acme").alert_rules().await.expect("rules");
    assert!(rules.items.iter().any(|r| r.id == "device-down"));
    assert!(rules.unreadable.is_empty());
    // Another tenant's rules are its own.
    store.ensure_tenant("other", "Other").await.expect("tenant");
    assert!(
        store
            .tenant("other")
            .alert_rules()
            .await
            .expect("rules")
            .items
            .is_empty()
    );
}
on_both_engines!(starter_pack, new_tenants_get_the_starter_pack);

/// A stored rule document changed behind the server's back costs that rule, counted
/// and logged; every other rule still runs.
async fn an_unreadable_stored_rule_is_left_out_and_counted(store: Store) {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    store
        .tenant("acme")
        .seed_starter_rules()
        .await
        .expect("seed");
    let all = store
        .tenant("acme")
        .alert_rules()
        .await
        .expect("rules")
        .items
        .len();
    let corrupt = "UPDATE alert_rules SET document = '{\"id\": 5}' WHERE id = 'device-down'";
    ispvm_testkit::execute_raw(&store, corrupt).await;
    let metrics = ServerMetrics::new();
    let domain = StoreDomain {
        store: store.clone(),
        metrics: metrics.clone(),
    };
    let rules = DomainStore::rules(&domain, "acme").await.expect("rules");
    assert_eq!(rules.len(), all - 1);
    assert!(rules.iter().all(|r| r.id != "device-down"));
    assert_eq!(metrics.events().count::<StoredRowUnreadable>(), 1);
    assert!(
        metrics
            .encode()
            .contains("ispvm_server_store_rows_unreadable_total{what=\"alert_rule\"} 1")
    );
}
on_both_engines!(
    unreadable_rule,
    an_unreadable_stored_rule_is_left_out_and_counted
);
