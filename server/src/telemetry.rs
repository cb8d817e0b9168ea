//! The server's own metrics and logs: each internal event is a type whose `emit` logs it
//! and counts it in one place.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConnectionLabel {
    pub transport: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScheduleLabel {
    pub schedule: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NotificationLabel {
    pub kind: &'static str,
    pub level: &'static str,
}

/// Every metric the server exports on `/metrics`.
pub struct ServerMetrics {
    registry: Registry,
    batches: Family<OutcomeLabel, Counter>,
    samples: Family<OutcomeLabel, Counter>,
    events: Family<OutcomeLabel, Counter>,
    seq_gaps: Counter,
    cluster_reports: Family<OutcomeLabel, Counter>,
    ingest_seconds: Histogram,
    connections: Family<ConnectionLabel, Counter>,
    alert_cycles: Family<ScheduleLabel, Counter>,
    alert_evaluations: Family<ScheduleLabel, Counter>,
    alert_cycle_seconds: Family<ScheduleLabel, Histogram>,
    alert_unsaved: prometheus_client::metrics::gauge::Gauge,
    alert_notifications: Family<NotificationLabel, Counter>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerMetrics")
    }
}

impl ServerMetrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("ispvm_server");
        let m = ServerMetrics {
            registry: Registry::default(),
            batches: Family::default(),
            samples: Family::default(),
            events: Family::default(),
            seq_gaps: Counter::default(),
            cluster_reports: Family::default(),
            ingest_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            connections: Family::default(),
            alert_cycles: Family::default(),
            alert_evaluations: Family::default(),
            alert_cycle_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
            }),
            alert_unsaved: Default::default(),
            alert_notifications: Family::default(),
        };
        registry.register(
            "ingest_batches",
            "Batches received, by outcome",
            m.batches.clone(),
        );
        registry.register(
            "ingest_samples",
            "Samples received, by outcome",
            m.samples.clone(),
        );
        registry.register(
            "ingest_events",
            "Events received, by outcome",
            m.events.clone(),
        );
        registry.register(
            "ingest_seq_gaps",
            "Batch sequence numbers skipped by agents",
            m.seq_gaps.clone(),
        );
        registry.register(
            "ingest_cluster_reports",
            "Agents' cluster reports in stored batches: kept, or older than the agent's newest",
            m.cluster_reports.clone(),
        );
        registry.register(
            "ingest_duration_seconds",
            "Time to validate and store one batch",
            m.ingest_seconds.clone(),
        );
        registry.register(
            "ingest_connections",
            "Agent connections (QUIC, HTTPS), by transport and outcome",
            m.connections.clone(),
        );
        registry.register(
            "alert_cycles",
            "Alert evaluation cycles, by schedule",
            m.alert_cycles.clone(),
        );
        registry.register(
            "alert_evaluations",
            "Rule-entity evaluations, by schedule",
            m.alert_evaluations.clone(),
        );
        registry.register(
            "alert_cycle_duration_seconds",
            "Time of one evaluation cycle including persistence, by schedule",
            m.alert_cycle_seconds.clone(),
        );
        registry.register(
            "alert_changes_unsaved",
            "Alert state changes waiting to be persisted (the store failed)",
            m.alert_unsaved.clone(),
        );
        registry.register(
            "alert_notifications",
            "Alert notifications recorded, by kind and level",
            m.alert_notifications.clone(),
        );
        Arc::new(ServerMetrics { registry, ..m })
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A batch was stored (or recognised as a replay).
pub struct BatchStored<'a> {
    pub agent: &'a str,
    pub tenant: &'a str,
    pub seq: u64,
    pub outcome: &'a crate::store::IngestOutcome,
    /// The batch carried a cluster report.
    pub cluster_report: bool,
    pub took: Duration,
}

impl BatchStored<'_> {
    pub fn emit(&self, m: &ServerMetrics) {
        let o = self.outcome;
        let label = if o.duplicate_batch {
            "duplicate"
        } else {
            "stored"
        };
        m.batches
            .get_or_create(&OutcomeLabel { outcome: label })
            .inc();
        m.samples
            .get_or_create(&OutcomeLabel { outcome: "stored" })
            .inc_by(u64::from(o.samples_stored));
        m.samples
            .get_or_create(&OutcomeLabel {
                outcome: "duplicate",
            })
            .inc_by(u64::from(o.samples_duplicate));
        m.events
            .get_or_create(&OutcomeLabel { outcome: "stored" })
            .inc_by(u64::from(o.events_stored));
        m.events
            .get_or_create(&OutcomeLabel {
                outcome: "duplicate",
            })
            .inc_by(u64::from(o.events_duplicate));
        // Samples dropped from a stored batch, by why.
        for (outcome, n, why) in [
            (
                "future",
                o.samples_future,
                "samples stamped too far in the future were dropped; is the agent's clock right?",
            ),
            (
                "over_series_quota",
                o.samples_over_quota,
                "samples of new series were dropped: the tenant is at its series quota (max_series)",
            ),
        ] {
            if n > 0 {
                m.samples
                    .get_or_create(&OutcomeLabel { outcome })
                    .inc_by(u64::from(n));
                tracing::warn!(
                    agent = self.agent,
                    tenant = self.tenant,
                    seq = self.seq,
                    dropped = n,
                    "{why}"
                );
            }
        }
        m.seq_gaps.inc_by(o.seq_gap);
        if self.cluster_report && !o.duplicate_batch {
            let outcome = if o.cluster_report_kept {
                "kept"
            } else {
                "older"
            };
            m.cluster_reports
                .get_or_create(&OutcomeLabel { outcome })
                .inc();
        }
        m.ingest_seconds.observe(self.took.as_secs_f64());
        if o.seq_gap > 0 {
            tracing::warn!(
                agent = self.agent,
                tenant = self.tenant,
                seq = self.seq,
                missing = o.seq_gap,
                "agent batch sequence has a gap"
            );
        }
        tracing::debug!(
            agent = self.agent,
            seq = self.seq,
            samples = o.samples_stored,
            events = o.events_stored,
            duplicate = o.duplicate_batch,
            "batch stored"
        );
    }
}

/// A batch was refused.
pub struct BatchRejected<'a> {
    pub peer: &'a str,
    pub code: ispvm_proto::RejectCode,
    pub reason: &'a str,
}

impl BatchRejected<'_> {
    pub fn emit(&self, m: &ServerMetrics) {
        m.batches
            .get_or_create(&OutcomeLabel {
                outcome: self.code.as_str(),
            })
            .inc();
        match self.code {
            // Data the agent will not send again (it sets the batch aside), or an agent
            // that reused a sequence number: someone must look.
            ispvm_proto::RejectCode::Unstorable | ispvm_proto::RejectCode::SeqReused => {
                tracing::error!(
                    peer = self.peer,
                    code = self.code.as_str(),
                    reason = self.reason,
                    "batch rejected"
                );
            }
            _ => tracing::warn!(
                peer = self.peer,
                code = self.code.as_str(),
                reason = self.reason,
                "batch rejected"
            ),
        }
    }
}

/// An agent connection (QUIC or HTTPS) was accepted or refused.
pub struct PeerConnection<'a> {
    pub transport: &'static str,
    pub remote: std::net::SocketAddr,
    pub peer: Option<&'a str>,
    pub refused: Option<&'a dyn std::fmt::Display>,
}

impl PeerConnection<'_> {
    pub fn emit(&self, m: &ServerMetrics) {
        let outcome = if self.refused.is_some() {
            "refused"
        } else {
            "accepted"
        };
        m.connections
            .get_or_create(&ConnectionLabel {
                transport: self.transport,
                outcome,
            })
            .inc();
        match self.refused {
            None => {
                tracing::info!(transport = self.transport, remote = %self.remote, peer = self.peer.unwrap_or("?"), "agent connected")
            }
            Some(reason) => {
                tracing::warn!(transport = self.transport, remote = %self.remote, reason = %reason, "agent connection refused")
            }
        }
    }
}

/// An alert evaluation cycle ended.
pub struct AlertCycle<'a> {
    pub report: &'a ispvm_actors::tree::CycleReport,
}

impl AlertCycle<'_> {
    pub fn emit(&self, m: &ServerMetrics) {
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

impl AlertNotified<'_> {
    pub fn emit(&self, m: &ServerMetrics) {
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
