//! Ingest: batches stored, replayed or refused, and agents' connections.

use super::{ConnectionLabel, OutcomeLabel, ServerMetrics};
use ispvm_telemetry::InternalEvent;
use std::time::Duration;

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

impl InternalEvent for BatchStored<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "BatchStored";

    fn log_and_count(&self, m: &ServerMetrics) {
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
        if o.inventory_skipped > 0 {
            m.inventory_skipped.inc_by(u64::from(o.inventory_skipped));
            tracing::warn!(
                agent = self.agent,
                tenant = self.tenant,
                seq = self.seq,
                skipped = o.inventory_skipped,
                "inventory of devices the tenant does not have was skipped"
            );
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

impl InternalEvent for BatchRejected<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "BatchRejected";

    fn log_and_count(&self, m: &ServerMetrics) {
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

impl InternalEvent for PeerConnection<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "PeerConnection";

    fn log_and_count(&self, m: &ServerMetrics) {
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
