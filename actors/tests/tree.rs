//! The actor tree over an in-memory store: routing, supervision with restart from
//! stored state, and alert persistence across an engine restart.

use ispvm_actors::alert::{
    AlertChange, AlertState, EntityAttrs, EntityKind, EntityRef, MaintenanceWindow, Notification,
    NotificationKind, Rule, Schedule,
};
use ispvm_actors::incident::{Incident, IncidentChange};
use ispvm_actors::tree::{
    ActorLimits, ChildKey, Clock, DisplayNames, DomainStore, EntityActor, EventHook, LinkSpec,
    LinkStatus, MonitorTree, PortError, StoredIncidents, StoredPoint, TreeEvent, TreeOptions,
};
use ispvm_proto::{Batch, EntityKey, MetricName, MetricSample};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Default)]
struct MemStore {
    rules: Vec<Rule>,
    links: Vec<LinkSpec>,
    entities: Vec<(EntityRef, EntityAttrs)>,
    points: Mutex<Vec<StoredPoint>>,
    states: Mutex<BTreeMap<(String, EntityRef), AlertState>>,
    notifications: Mutex<Vec<Notification>>,
    incidents: Mutex<BTreeMap<u64, Incident>>,
    transitions: Mutex<Vec<IncidentChange>>,
}

impl MemStore {
    fn record(&self, batch: &Batch) {
        let mut p = self.points.lock().expect("lock");
        for s in &batch.samples {
            p.push(StoredPoint {
                entity: EntityRef::from(&s.entity),
                metric: s.metric,
                ts_ms: s.ts_ms,
                value: s.value,
            });
        }
    }
}

impl DomainStore for MemStore {
    async fn tenants(&self) -> Result<Vec<String>, PortError> {
        Ok(vec!["t1".into()])
    }
    async fn rules(&self, _: &str) -> Result<Vec<Rule>, PortError> {
        Ok(self.rules.clone())
    }
    async fn alert_states(
        &self,
        _: &str,
    ) -> Result<Vec<(String, EntityRef, AlertState)>, PortError> {
        let s = self.states.lock().expect("lock");
        Ok(s.iter()
            .map(|((r, e), st)| (r.clone(), e.clone(), st.clone()))
            .collect())
    }
    async fn save_alert_changes(&self, _: &str, changes: &[AlertChange]) -> Result<(), PortError> {
        let mut s = self.states.lock().expect("lock");
        let mut n = self.notifications.lock().expect("lock");
        for c in changes {
            s.insert((c.rule_id.clone(), c.entity.clone()), c.state.clone());
            n.extend(c.notifications.iter().cloned());
        }
        Ok(())
    }
    async fn entities(&self, _: &str) -> Result<Vec<(EntityRef, EntityAttrs)>, PortError> {
        Ok(self.entities.clone())
    }
    async fn maintenance_windows(&self, _: &str) -> Result<Vec<MaintenanceWindow>, PortError> {
        Ok(Vec::new())
    }
    async fn links(&self, _: &str) -> Result<Vec<LinkSpec>, PortError> {
        Ok(self.links.clone())
    }
    async fn save_incident_action(
        &self,
        _: &str,
        _: &ispvm_actors::incident::Incident,
        _: &ispvm_actors::incident::ActionBy,
        _: &ispvm_actors::incident::IncidentAction,
    ) -> Result<(), PortError> {
        Ok(())
    }
    async fn display_names(&self, _: &str) -> Result<DisplayNames, PortError> {
        Ok(DisplayNames::default())
    }
    async fn incidents(&self, _: &str, _: i64) -> Result<StoredIncidents, PortError> {
        let saved = self.incidents.lock().expect("lock");
        Ok(StoredIncidents {
            incidents: saved.values().cloned().collect(),
            next_id: saved.keys().max().map_or(1, |m| m + 1),
        })
    }
    async fn save_incidents(
        &self,
        _: &str,
        incidents: &[Incident],
        changes: &[IncidentChange],
    ) -> Result<(), PortError> {
        let mut saved = self.incidents.lock().expect("lock");
        for i in incidents {
            saved.insert(i.id, i.clone());
        }
        self.transitions
            .lock()
            .expect("lock")
            .extend(changes.iter().cloned());
        Ok(())
    }
    async fn recent_points(&self, _: &str, since_ms: i64) -> Result<Vec<StoredPoint>, PortError> {
        let p = self.points.lock().expect("lock");
        Ok(p.iter().filter(|x| x.ts_ms >= since_ms).cloned().collect())
    }
    async fn device_latest(&self, _: &str, device: &str) -> Result<Vec<StoredPoint>, PortError> {
        let p = self.points.lock().expect("lock");
        Ok(p.iter()
            .filter(|x| x.entity.device_id() == Some(device))
            .cloned()
            .collect())
    }
}

struct FakeClock(AtomicI64);

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn batch(seq: u64, samples: Vec<MetricSample>) -> Arc<Batch> {
    let mut b = Batch::new("agent-a", "t1", seq);
    b.samples = samples;
    Arc::new(b)
}

fn running(device: &str, name: &str, ts_ms: i64, up: bool) -> MetricSample {
    MetricSample {
        entity: EntityKey::Interface {
            device: device.into(),
            name: name.into(),
        },
        metric: MetricName::InterfaceRunning,
        ts_ms,
        value: if up { 1.0 } else { 0.0 },
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn start(
    store: Arc<MemStore>,
    clock: Arc<FakeClock>,
    notify: Option<mpsc::UnboundedSender<Notification>>,
) -> MonitorTree {
    start_limited(store, clock, notify, ActorLimits::default(), None).await
}

async fn start_limited(
    store: Arc<MemStore>,
    clock: Arc<FakeClock>,
    notify: Option<mpsc::UnboundedSender<Notification>>,
    limits: ActorLimits,
    on_event: Option<EventHook>,
) -> MonitorTree {
    let options = TreeOptions {
        timers: false,
        notify,
        on_cycle: None,
        on_event,
        limits,
        correlation: Default::default(),
    };
    MonitorTree::start(store, clock, options)
        .await
        .expect("tree")
}

fn store() -> Arc<MemStore> {
    Arc::new(MemStore {
        rules: vec![
            Rule::from_json(
                r#"{"id":"uplink","name":"Uplink down","type":"interface_down","scope":{"uplink_only":true}}"#,
            )
            .expect("rule"),
        ],
        links: vec![LinkSpec {
            id: "r1-r2".into(),
            a: ("r1".into(), "sfp1".into()),
            b: ("r2".into(), "sfp1".into()),
        }],
        entities: vec![(
            EntityRef::new(EntityKind::Interface, "r1/sfp1"),
            EntityAttrs {
                uplink: true,
                ..EntityAttrs::default()
            },
        )],
        ..MemStore::default()
    })
}

#[tokio::test]
async fn batches_reach_routers_and_links() {
    let store = store();
    let clock = Arc::new(FakeClock(AtomicI64::new(1_000)));
    let tree = start(Arc::clone(&store), clock, None).await;
    let b = batch(
        1,
        vec![
            running("r1", "sfp1", 1_000, true),
            running("r2", "sfp1", 1_000, false),
        ],
    );
    tree.ingest("t1", b);
    eventually("link one side down", || async {
        tree.link("t1", "r1-r2")
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.status == LinkStatus::OneSideDown)
    })
    .await;
    let r1 = tree
        .router("t1", "r1")
        .await
        .expect("answer")
        .expect("router r1");
    assert_eq!(r1.interfaces_running.get("sfp1"), Some(&true));
    let children = tree.children("t1").await.expect("children");
    for k in [
        ChildKey::Engine,
        ChildKey::Router("r1".into()),
        ChildKey::Router("r2".into()),
        ChildKey::Link("r1-r2".into()),
    ] {
        assert!(children.contains(&k), "{k:?} in {children:?}");
    }
    tree.stop().await;
}

#[tokio::test]
async fn a_crashed_router_actor_restarts_from_stored_state() {
    let store = store();
    let clock = Arc::new(FakeClock(AtomicI64::new(1_000)));
    let tree = start(Arc::clone(&store), clock, None).await;
    let b = batch(1, vec![running("r1", "ether2", 1_000, false)]);
    store.record(&b);
    tree.ingest("t1", b);
    eventually("router r1", || async {
        tree.router("t1", "r1").await.ok().flatten().is_some()
    })
    .await;
    tree.crash_child("t1", ChildKey::Router("r1".into()));
    // The restarted actor is a new one that loaded the stored values.
    eventually("r1 restarted with stored state", || async {
        tree.router("t1", "r1")
            .await
            .ok()
            .flatten()
            .is_some_and(|v| v.interfaces_running.get("ether2") == Some(&false))
    })
    .await;
    tree.stop().await;
}

#[tokio::test]
async fn an_engine_restart_keeps_alerts_without_notifying_again() {
    let store = store();
    let clock = Arc::new(FakeClock(AtomicI64::new(10_000)));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tree = start(Arc::clone(&store), Arc::clone(&clock), Some(tx)).await;
    let b = batch(1, vec![running("r1", "sfp1", 10_000, false)]);
    store.record(&b);
    tree.ingest("t1", b);
    eventually("uplink alert", || async {
        tree.evaluate_now("t1", Schedule::Fast)
            .await
            .expect("cycle");
        !tree.alerts("t1").await.expect("alerts").is_empty()
    })
    .await;
    let n = rx.recv().await.expect("a notification");
    assert_eq!(n.kind, NotificationKind::Firing);
    assert_eq!(n.entity.id, "r1/sfp1");

    tree.crash_child("t1", ChildKey::Engine);
    clock.0.store(20_000, Ordering::SeqCst);
    // The restarted engine restores the firing state and refills its window from the
    // store: the condition still holds, and nobody is told twice.
    eventually("engine back with the alert", || async {
        tree.alerts("t1")
            .await
            .is_ok_and(|a| a.iter().any(|v| v.entity.id == "r1/sfp1"))
    })
    .await;
    tree.evaluate_now("t1", Schedule::Fast)
        .await
        .expect("cycle");
    assert!(rx.try_recv().is_err(), "no second notification");
    assert_eq!(store.notifications.lock().expect("lock").len(), 1);
    tree.stop().await;
}

fn cpu(device: &str, ts_ms: i64) -> MetricSample {
    MetricSample {
        entity: EntityKey::Device(device.into()),
        metric: MetricName::DeviceCpuPct,
        ts_ms,
        value: 10.0,
    }
}

fn routers(children: &[ChildKey]) -> Vec<&str> {
    children
        .iter()
        .filter_map(|k| match k {
            ChildKey::Router(d) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

/// A tenant's agents naming ever more entities cannot make the tree hold ever more
/// actors: beyond the cap an entity gets none, and actors that heard nothing for the
/// idle limit are stopped (and not restarted as if they had failed), which makes room.
#[tokio::test]
async fn entity_actors_are_capped_and_idle_ones_stopped() {
    let store = store();
    let clock = Arc::new(FakeClock(AtomicI64::new(1_000)));
    let limits = ActorLimits {
        max_routers: 3,
        max_probes: 3,
        idle_after_ms: 60_000,
    };
    let events: Arc<std::sync::Mutex<Vec<TreeEvent>>> = Arc::default();
    let seen = Arc::clone(&events);
    let hook: EventHook = Arc::new(move |e: &TreeEvent| {
        seen.lock().expect("events").push(e.clone());
    });
    let tree = start_limited(
        Arc::clone(&store),
        Arc::clone(&clock),
        None,
        limits,
        Some(hook),
    )
    .await;
    let devices: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    tree.ingest(
        "t1",
        batch(1, devices.iter().map(|d| cpu(d, 1_000)).collect()),
    );
    eventually("three routers", || async {
        routers(&tree.children("t1").await.expect("children")).len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        routers(&tree.children("t1").await.expect("children")),
        ["d0", "d1", "d2"],
        "no more than the cap"
    );

    // d0 keeps talking; d1 and d2 fall silent for longer than the idle limit.
    clock.0.store(50_000, Ordering::SeqCst);
    tree.ingest("t1", batch(2, vec![cpu("d0", 50_000)]));
    clock.0.store(100_000, Ordering::SeqCst);
    assert_eq!(tree.reap_now("t1").await.expect("reap"), 2);
    // Both refused routers were told to the host: the first at once, the other with
    // the reap.
    let refused: u64 = events
        .lock()
        .expect("events")
        .iter()
        .map(|e| match e {
            TreeEvent::OverCap {
                kind: EntityActor::Router,
                max: 3,
                refused,
                ..
            } => *refused,
            _ => 0,
        })
        .sum();
    assert_eq!(refused, 2);
    // Stopped for idleness is not a failure: nothing comes back by itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        routers(&tree.children("t1").await.expect("children")),
        ["d0"]
    );
    // The room is used by the next entities.
    tree.ingest("t1", batch(3, vec![cpu("d3", 100_000), cpu("d4", 100_000)]));
    eventually("d3 and d4 watched", || async {
        routers(&tree.children("t1").await.expect("children")) == ["d0", "d3", "d4"]
    })
    .await;
    let d3 = tree.router("t1", "d3").await.expect("answer");
    assert!(d3.is_some());
    tree.stop().await;
}
