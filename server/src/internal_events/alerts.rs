//! The actor tree: evaluation cycles, notifications, and entities it cannot watch live.

use super::{NotWatchedLabel, NotificationLabel, ScheduleLabel, ServerMetrics};
use ispvm_actors::tree::TreeEvent;
use ispvm_telemetry::InternalEvent;

/// An alert evaluation cycle ended.
pub struct AlertCycle<'a> {
    pub report: &'a ispvm_actors::tree::CycleReport,
}

impl InternalEvent for AlertCycle<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "AlertCycle";

    fn log_and_count(&self, m: &ServerMetrics) {
        let r = self.report;
        let label = ScheduleLabel {
            schedule: r.schedule.as_str(),
        };
        m.alert_cycles.get_or_create(&label).inc();
        m.alert_evaluations
            .get_or_create(&label)
            .inc_by(r.stats.evaluations as u64);
        m.alert_cycle_seconds
            .get_or_create(&label)
            .observe(r.took.as_secs_f64());
        m.alert_unsaved
            .set(i64::try_from(r.unsaved).unwrap_or(i64::MAX));
        if r.unsaved > 0 {
            tracing::warn!(tenant = %r.tenant, schedule = r.schedule.as_str(), unsaved = r.unsaved, "alert changes not yet persisted");
        } else {
            tracing::debug!(tenant = %r.tenant, schedule = r.schedule.as_str(), evaluations = r.stats.evaluations, changes = r.stats.changes, took_ms = r.took.as_millis() as u64, "alert cycle");
        }
    }
}

/// An alert notification was recorded (persisted with its state).
pub struct AlertNotified<'a> {
    pub notification: &'a ispvm_actors::alert::Notification,
}

impl InternalEvent for AlertNotified<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "AlertNotified";

    fn log_and_count(&self, m: &ServerMetrics) {
        let n = self.notification;
        m.alert_notifications
            .get_or_create(&NotificationLabel {
                kind: n.kind.as_str(),
                level: n.level.as_str(),
            })
            .inc();
        tracing::info!(
            rule = %n.rule_id,
            entity = %n.entity,
            kind = n.kind.as_str(),
            level = n.level.as_str(),
            why = %n.explanation.summary,
            "alert notification"
        );
    }
}

/// The tree could not watch an entity live: over the tenant's actor cap, or its actor
/// did not start. Its data is still stored and reaches the alert engine.
pub struct EntityNotWatched<'a> {
    pub event: &'a TreeEvent,
}

impl InternalEvent for EntityNotWatched<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "EntityNotWatched";

    fn log_and_count(&self, m: &ServerMetrics) {
        // The tree logged the details where it decided; this counts them.
        let (kind, reason, n) = match self.event {
            TreeEvent::OverCap { kind, refused, .. } => (kind.as_str(), "over_cap", *refused),
            TreeEvent::NotStarted { kind, .. } => (kind.as_str(), "not_started", 1),
            TreeEvent::StateNotRestored { kind, .. } => (kind.as_str(), "state_not_restored", 1),
        };
        m.entities_not_watched
            .get_or_create(&NotWatchedLabel { kind, reason })
            .inc_by(n);
    }
}

/// A stored row that cannot be read was left out: a rule document that no longer
/// validates (that rule does not run), an alert state of an unknown kind (that alert
/// restarts from OK), an agent's cluster report (the view lacks that agent's).
pub struct StoredRowUnreadable<'a> {
    pub tenant: &'a str,
    pub row: &'a crate::store::Unreadable,
}

impl StoredRowUnreadable<'_> {
    /// The rows that were read, each unreadable one reported.
    pub fn report<T>(
        tenant: &str,
        read: crate::store::Readable<T>,
        metrics: &ServerMetrics,
    ) -> Vec<T> {
        for row in &read.unreadable {
            StoredRowUnreadable { tenant, row }.emit(metrics);
        }
        read.items
    }
}

impl InternalEvent for StoredRowUnreadable<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "StoredRowUnreadable";

    fn log_and_count(&self, m: &ServerMetrics) {
        let r = self.row;
        m.rows_unreadable
            .get_or_create(&super::WhatLabel { what: r.what })
            .inc();
        tracing::error!(
            tenant = self.tenant,
            what = r.what,
            key = %r.key,
            error = %r.error,
            "stored row unreadable; left out"
        );
    }
}
