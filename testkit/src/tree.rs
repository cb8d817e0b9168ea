//! The server's actor tree over a real store, driven by a clock the test sets: what the
//! alert and incident tests share.

use ispvm_actors::alert::Rule;
use ispvm_actors::tree::{Clock, MonitorTree, TreeOptions};
use ispvm_server::domain::StoreDomain;
use ispvm_server::internal_events::ServerMetrics;
use ispvm_server::store::catalog::ImportMode;
use ispvm_server::store::{Actor, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock that shows what the test stored in it, Unix ms.
pub struct FakeClock(pub AtomicI64);

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The tree with its timers off (the test runs every cycle) and no hooks.
pub async fn start_tree(store: &Store, clock: &Arc<FakeClock>) -> MonitorTree {
    MonitorTree::start(
        Arc::new(StoreDomain {
            store: store.clone(),
            metrics: ServerMetrics::new(),
        }),
        Arc::clone(clock),
        TreeOptions {
            timers: false,
            notify: None,
            on_cycle: None,
            on_event: None,
            limits: Default::default(),
            correlation: Default::default(),
        },
    )
    .await
    .expect("tree")
}

/// Replaces the tenant's alert rules with these JSON documents.
pub async fn import_rules(store: &Store, tenant: &str, docs: &[&str]) {
    let rules: Vec<(Rule, serde_json::Value)> = docs
        .iter()
        .map(|d| {
            let r = Rule::from_json(d).expect("rule");
            let v = serde_json::to_value(&r).expect("json");
            (r, v)
        })
        .collect();
    store
        .tenant(tenant)
        .import_alert_rules(&Actor::system(), &rules, ImportMode::Replace)
        .await
        .expect("import");
}
