//! The agent's cluster metrics (`ispvm_agent_cluster_*`).

use ispvm_cluster::assignment::HandoverKind;
use ispvm_cluster::gossip::{Membership, TransportSnapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct ClusterMetrics {
    members: Family<KindLabel, Gauge>,
    owned_routers: Gauge,
    handovers: Family<KindLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    gossip_bytes: Family<KindLabel, Counter>,
    last: Mutex<TransportSnapshot>,
}

impl ClusterMetrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds every metric to `registry` (names start with `cluster_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_members",
            "Cluster members by state (live, leaving, dead) as this agent sees them",
            self.members.clone(),
        );
        registry.register(
            "cluster_owned_routers",
            "Routers this agent owns (polls) under the cluster's ownership",
            self.owned_routers.clone(),
        );
        registry.register(
            "cluster_handovers",
            "Router handovers on this agent, by kind (acquired, released)",
            self.handovers.clone(),
        );
        registry.register(
            "cluster_peers_refused",
            "Gossip peers refused at the TLS handshake or after it, by reason",
            self.refused.clone(),
        );
        registry.register(
            "cluster_gossip_bytes",
            "Gossip bytes by direction (sent, received)",
            self.gossip_bytes.clone(),
        );
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
        *last = transport.clone();
    }
}
