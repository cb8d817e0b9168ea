//! The alert engine: evaluation cycles and notifications.

use super::{NotificationLabel, ScheduleLabel, ServerMetrics};
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
