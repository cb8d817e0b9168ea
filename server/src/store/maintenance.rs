//! The background task that keeps the time-series store in shape: partitions ahead,
//! rollups, retention ([`Store::maintain`]) on a fixed interval.

use super::{IngestCache, Store, TimeseriesPolicy};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// Runs [`Store::maintain`] every `every` (the first run one interval after start, so a
/// starting server serves agents first) until `stop` turns true. A run in progress when
/// the server stops is abandoned; its transaction rolls back and the next start redoes it.
/// `cache` (ingest's series ids) forgets the tenants whose series retention deleted.
pub async fn run(
    store: Store,
    policy: TimeseriesPolicy,
    cache: Option<Arc<IngestCache>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let started = Instant::now();
        let run = store.maintain(&policy, ispvm_proto::time::now_ms());
        let result = tokio::select! {
            r = run => r,
            _ = stop.changed() => return,
        };
        if let (Ok(r), Some(cache)) = (&result, &cache) {
            for tenant in &r.series_deleted_in {
                cache.forget_tenant(tenant);
            }
        }
        match result {
            Ok(r) => tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                tenants = r.tenants,
                failures = r.tenant_failures,
                partitions_created = r.partitions_created.len(),
                partitions_dropped = r.partitions_dropped.len(),
                minute_buckets = r.minute_buckets,
                hour_buckets = r.hour_buckets,
                late_marks = r.late_marks,
                samples_deleted = r.retention.samples + r.default_rows_deleted,
                events_deleted = r.retention.events,
                audit_deleted = r.retention.audit_entries,
                notifications_deleted = r.retention.notifications,
                discovery_deleted = r.retention.discovery_rows,
                series_deleted = r.retention.series,
                "store maintenance done"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "time-series maintenance failed; retrying next interval")
            }
        }
    }
}
