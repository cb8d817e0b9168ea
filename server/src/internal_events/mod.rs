//! The server's internal events and the metrics they move.
//!
//! Each event is a type implementing [`InternalEvent`]: its `log_and_count` writes the log
//! line and moves the metrics in one place. The metrics are registered through one
//! [`MetricsRegistry`], whose catalog is the server's half of `docs/metrics.md`.

pub mod alerts;
pub mod ingest;
pub mod notify;

pub use alerts::{AlertCycle, AlertNotified, EntityNotWatched, StoredRowUnreadable};
pub use ingest::{BatchRejected, BatchStored, PeerConnection};
pub use ispvm_telemetry::{EventLog, InternalEvent};
pub use notify::NotificationAttempted;

use ispvm_telemetry::{Buckets, Catalog, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;

/// Every server metric's name starts with this.
pub const PREFIX: &str = "ispvm_server";

ispvm_telemetry::label_set! {
    pub struct ConnectionLabel {
        pub transport: &'static str,
        pub outcome: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct OutcomeLabel {
        pub outcome: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct ScheduleLabel {
        pub schedule: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct WhatLabel {
        pub what: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct NotWatchedLabel {
        pub kind: &'static str,
        pub reason: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct DeliveryLabel {
        pub channel: &'static str,
        pub outcome: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct NotificationLabel {
        pub kind: &'static str,
        pub level: &'static str,
    }
}

/// Every metric the server exports on `/metrics`.
pub struct ServerMetrics {
    registry: MetricsRegistry,
    events_log: EventLog,
    batches: Family<OutcomeLabel, Counter>,
    samples: Family<OutcomeLabel, Counter>,
    events: Family<OutcomeLabel, Counter>,
    inventory_skipped: Counter,
    seq_gaps: Counter,
    cluster_reports: Family<OutcomeLabel, Counter>,
    ingest_seconds: Histogram,
    connections: Family<ConnectionLabel, Counter>,
    alert_cycles: Family<ScheduleLabel, Counter>,
    alert_evaluations: Family<ScheduleLabel, Counter>,
    alert_cycle_seconds: Family<ScheduleLabel, Histogram, Buckets>,
    alert_unsaved: Gauge,
    alert_notifications: Family<NotificationLabel, Counter>,
    entities_not_watched: Family<NotWatchedLabel, Counter>,
    rows_unreadable: Family<WhatLabel, Counter>,
    notification_deliveries: Family<DeliveryLabel, Counter>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerMetrics")
    }
}

impl AsRef<EventLog> for ServerMetrics {
    fn as_ref(&self) -> &EventLog {
        &self.events_log
    }
}

impl ServerMetrics {
    pub fn new() -> Arc<Self> {
        let mut r = MetricsRegistry::new(PREFIX);
        Arc::new(ServerMetrics {
            events_log: r.events().clone(),
            batches: r.counters(
                "ingest_batches",
                "Batches received, by outcome (stored, duplicate, or the rejection code)",
            ),
            samples: r.counters(
                "ingest_samples",
                "Samples received, by outcome (stored, duplicate, future, over_series_quota)",
            ),
            events: r.counters("ingest_events", "Events received, by outcome (stored, duplicate)"),
            inventory_skipped: r.counter(
                "ingest_inventory_skipped",
                "Inventory rows (interfaces, addresses, neighbours) of devices the tenant does not have, skipped",
            ),
            seq_gaps: r.counter(
                "ingest_seq_gaps",
                "Batch sequence numbers skipped by agents",
            ),
            cluster_reports: r.counters(
                "ingest_cluster_reports",
                "Agents' cluster reports in stored batches: kept, or older than the agent's newest",
            ),
            ingest_seconds: r.histogram(
                "ingest_duration_seconds",
                "Time to validate and store one batch",
                Buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            ),
            connections: r.counters(
                "ingest_connections",
                "Agent connections (QUIC, HTTPS), by transport and outcome",
            ),
            alert_cycles: r.counters("alert_cycles", "Alert evaluation cycles, by schedule"),
            alert_evaluations: r.counters(
                "alert_evaluations",
                "Rule-entity evaluations, by schedule",
            ),
            alert_cycle_seconds: r.histograms(
                "alert_cycle_duration_seconds",
                "Time of one evaluation cycle including persistence, by schedule",
                Buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            ),
            alert_unsaved: r.gauge(
                "alert_changes_unsaved",
                "Alert state changes waiting to be persisted (the store failed)",
            ),
            alert_notifications: r.counters(
                "alert_notifications",
                "Alert notifications recorded, by kind and level",
            ),
            rows_unreadable: r.counters(
                "store_rows_unreadable",
                "Stored rows left out because they could not be read (alert_rule: that rule does not run; alert_state: that alert restarts from OK; cluster_report: the cluster view lacks that agent's report)",
            ),
            entities_not_watched: r.counters(
                "actors_entities_not_watched",
                "Entities given no live actor (still stored and evaluated), or whose actor started without its history, by actor kind and reason (over_cap: the tenant's [actors] cap; not_started; state_not_restored)",
            ),
            notification_deliveries: r.counters(
                "notification_deliveries",
                "Incident notification attempts and holds, by channel kind and outcome (sent; retried: failed, tried again later; failed: gave up; silenced and maintenance: held back, not sent)",
            ),
            registry: r,
        })
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        self.registry.encode()
    }

    /// What the registry holds, for `docs/metrics.md`.
    pub fn catalog(&self) -> &Catalog {
        self.registry.catalog()
    }

    /// The events emitted so far (tests read it instead of scraping `/metrics`).
    pub fn events(&self) -> &EventLog {
        &self.events_log
    }
}
