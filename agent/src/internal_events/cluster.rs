//! The agent's cluster metrics (`ispvm_agent_cluster_*`).

use super::{KindLabel, ReasonLabel};
use ispvm_cluster::assignment::HandoverKind;
use ispvm_cluster::gossip::{Membership, TransportSnapshot};
use ispvm_telemetry::{EventLog, InternalEvent, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Debug)]
pub struct ClusterMetrics {
    events: EventLog,
    report_entries_left_out: Gauge,
    members: Family<KindLabel, Gauge>,
    owned_routers: Gauge,
    handovers: Family<KindLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    gossip_bytes: Family<KindLabel, Counter>,
    gossip_dropped: Family<ReasonLabel, Counter>,
    last: Mutex<TransportSnapshot>,
}

impl AsRef<EventLog> for ClusterMetrics {
    fn as_ref(&self) -> &EventLog {
        &self.events
    }
}

impl ClusterMetrics {
    /// The events emitted so far (tests read it instead of scraping `/metrics`).
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Standalone, for tests; a running agent uses [`Self::register`].
    pub fn new() -> Arc<Self> {
        Self::register(&mut MetricsRegistry::new(super::PREFIX))
    }

    /// Registers every metric in the agent's registry (names start with `cluster_`).
    pub fn register(r: &mut MetricsRegistry) -> Arc<Self> {
        Arc::new(ClusterMetrics {
            events: r.events().clone(),
            members: r.gauges(
                "cluster_members",
                "Cluster members by state (live, leaving, dead) as this agent sees them",
            ),
            owned_routers: r.gauge(
                "cluster_owned_routers",
                "Routers this agent owns (polls) under the cluster's ownership",
            ),
            handovers: r.counters(
                "cluster_handovers",
                "Router handovers on this agent, by kind (acquired, released)",
            ),
            refused: r.counters(
                "cluster_peers_refused",
                "Gossip peers refused at the TLS handshake or after it, by reason",
            ),
            gossip_bytes: r.counters(
                "cluster_gossip_bytes",
                "Gossip bytes by direction (sent, received)",
            ),
            gossip_dropped: r.counters(
                "cluster_gossip_dropped",
                "Gossip left out, by reason (message_queue_full, message_malformed: whole messages; entry_unproven, entry_forged: entries about members not proven at, or proven not at, their address)",
            ),
            report_entries_left_out: r.gauge(
                "cluster_report_entries_left_out",
                "Entries left out of the latest cluster report because the server would refuse them (invalid id, far-off time)",
            ),
            last: Mutex::default(),
        })
    }

    pub fn handover(&self, kind: HandoverKind) {
        let kind = match kind {
            HandoverKind::Acquired => "acquired",
            HandoverKind::Released => "released",
        };
        self.handovers.get_or_create(&KindLabel { kind }).inc();
    }

    /// Brings gauges and counters up to date with a membership and transport snapshot.
    pub fn observe(&self, membership: &Membership, owned: usize, transport: &TransportSnapshot) {
        let (mut live, mut leaving, mut dead) = (0i64, 0i64, 0i64);
        for m in &membership.members {
            match (m.leaving, m.live) {
                (true, _) => leaving += 1,
                (false, true) => live += 1,
                (false, false) => dead += 1,
            }
        }
        for (kind, n) in [("live", live), ("leaving", leaving), ("dead", dead)] {
            self.members.get_or_create(&KindLabel { kind }).set(n);
        }
        self.owned_routers.set(owned as i64);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        for (reason, n) in &transport.refused {
            let before = last.refused.get(reason).copied().unwrap_or(0);
            self.refused
                .get_or_create(&ReasonLabel { reason })
                .inc_by(n.saturating_sub(before));
        }
        self.gossip_bytes
            .get_or_create(&KindLabel { kind: "sent" })
            .inc_by(transport.bytes_sent.saturating_sub(last.bytes_sent));
        self.gossip_bytes
            .get_or_create(&KindLabel { kind: "received" })
            .inc_by(transport.bytes_received.saturating_sub(last.bytes_received));
        for (reason, now, before) in [
            (
                "message_queue_full",
                transport.messages_dropped,
                last.messages_dropped,
            ),
            (
                "message_malformed",
                transport.messages_malformed,
                last.messages_malformed,
            ),
            (
                "entry_unproven",
                transport.entries_unproven,
                last.entries_unproven,
            ),
            (
                "entry_forged",
                transport.entries_forged,
                last.entries_forged,
            ),
        ] {
            let n = now.saturating_sub(before);
            if n > 0 {
                self.gossip_dropped
                    .get_or_create(&ReasonLabel { reason })
                    .inc_by(n);
            }
        }
        *last = transport.clone();
    }
}

/// Entries of the cluster report the server would refuse (a peer publishes an invalid id
/// or a far-off time) were left out, so one bad peer costs its entries, not the report.
/// The report is rebuilt every few seconds with the same entries, so this is a level (a
/// gauge), logged when it changes.
pub struct ReportEntriesLeftOut {
    pub left_out: usize,
    pub changed: bool,
}

impl InternalEvent for ReportEntriesLeftOut {
    type Metrics = ClusterMetrics;
    const NAME: &'static str = "ReportEntriesLeftOut";

    fn log_and_count(&self, m: &ClusterMetrics) {
        m.report_entries_left_out
            .set(i64::try_from(self.left_out).unwrap_or(i64::MAX));
        if self.changed && self.left_out > 0 {
            tracing::warn!(
                left_out = self.left_out,
                "cluster report entries the server would refuse were left out (a peer publishes an invalid id or a far-off time)"
            );
        }
    }
}
