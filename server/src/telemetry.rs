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

/// Every metric the server exports on `/metrics`.
pub struct ServerMetrics {
    registry: Registry,
    batches: Family<OutcomeLabel, Counter>,
    samples: Family<OutcomeLabel, Counter>,
    events: Family<OutcomeLabel, Counter>,
    seq_gaps: Counter,
    ingest_seconds: Histogram,
    connections: Family<ConnectionLabel, Counter>,
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
            ingest_seconds: Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            connections: Family::default(),
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
            "ingest_duration_seconds",
            "Time to validate and store one batch",
            m.ingest_seconds.clone(),
        );
        registry.register(
            "ingest_connections",
            "Agent connections (QUIC, HTTPS), by transport and outcome",
            m.connections.clone(),
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
        m.seq_gaps.inc_by(o.seq_gap);
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
        tracing::warn!(
            peer = self.peer,
            code = self.code.as_str(),
            reason = self.reason,
            "batch rejected"
        );
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
