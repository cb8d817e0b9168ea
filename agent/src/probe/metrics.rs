//! The probes' own telemetry, in the style of `crate::telemetry`: each event is a type
//! whose `emit` logs it and counts it in one place.
//!
//! Kept apart from `AgentMetrics` so probing can be wired into `/metrics` by registering
//! [`ProbeMetrics`] on the agent's registry ([`ProbeMetrics::register`]).

use super::ProbeError;
use super::stats::RoundStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RoundLabels {
    /// `icmp` or `tcp`.
    pub kind: &'static str,
    /// `ok` (every echo answered), `partial`, `lost` (none answered) or `error` (the
    /// round could not run: no socket, name not resolved).
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Counters of the probes; cheap to clone (every metric is shared).
#[derive(Debug, Default, Clone)]
pub struct ProbeMetrics {
    rounds: Family<RoundLabels, Counter>,
    echoes_sent: Family<KindLabel, Counter>,
    echoes_received: Family<KindLabel, Counter>,
    targets: Gauge,
    traceroutes: Family<ResultLabel, Counter>,
}

impl ProbeMetrics {
    pub fn new() -> Arc<Self> {
        Arc::new(ProbeMetrics::default())
    }

    /// Adds the probe metrics to a registry (names start with `probe_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "probe_rounds",
            "Probe rounds by kind and result (ok, partial, lost, error)",
            self.rounds.clone(),
        );
        registry.register(
            "probe_echoes_sent",
            "ICMP echoes or TCP connects attempted",
            self.echoes_sent.clone(),
        );
        registry.register(
            "probe_echoes_received",
            "ICMP echoes or TCP connects answered by the target",
            self.echoes_received.clone(),
        );
        registry.register(
            "probe_targets",
            "Probe targets with a running prober",
            self.targets.clone(),
        );
        registry.register(
            "probe_traceroutes",
            "Traceroutes run on demand by result",
            self.traceroutes.clone(),
        );
    }

    /// Rounds counted so far for a kind and result (for tests and `/v1/state`).
    pub fn rounds(&self, kind: &'static str, result: &'static str) -> u64 {
        self.rounds
            .get_or_create(&RoundLabels { kind, result })
            .get()
    }

    pub fn echoes_sent(&self, kind: &'static str) -> u64 {
        self.echoes_sent.get_or_create(&KindLabel { kind }).get()
    }

    pub fn echoes_received(&self, kind: &'static str) -> u64 {
        self.echoes_received
            .get_or_create(&KindLabel { kind })
            .get()
    }

    pub fn targets(&self) -> i64 {
        self.targets.get()
    }
}

/// A probe round finished (or could not run).
pub struct RoundFinished<'a> {
    pub target: &'a str,
    pub kind: &'static str,
    pub took: Duration,
    pub outcome: Result<&'a RoundStats, &'a ProbeError>,
}

impl RoundFinished<'_> {
    pub fn emit(&self, m: &ProbeMetrics) {
        let kind = self.kind;
        match self.outcome {
            Ok(stats) => {
                let result = if stats.all_lost() {
                    "lost"
                } else if stats.received < stats.sent {
                    "partial"
                } else {
                    "ok"
                };
                m.rounds.get_or_create(&RoundLabels { kind, result }).inc();
                m.echoes_sent
                    .get_or_create(&KindLabel { kind })
                    .inc_by(u64::from(stats.sent));
                m.echoes_received
                    .get_or_create(&KindLabel { kind })
                    .inc_by(u64::from(stats.received));
                tracing::debug!(
                    target_key = self.target,
                    kind,
                    result,
                    sent = stats.sent,
                    received = stats.received,
                    avg_ms = stats.avg_ms,
                    jitter_ms = stats.jitter_ms,
                    took_ms = self.took.as_millis() as u64,
                    "probe round"
                );
            }
            Err(e) => {
                m.rounds
                    .get_or_create(&RoundLabels {
                        kind,
                        result: "error",
                    })
                    .inc();
                tracing::warn!(target_key = self.target, kind, error = %e, "probe round could not run");
            }
        }
    }
}

/// A prober started or stopped.
pub struct ProberRunning<'a> {
    pub target: &'a str,
    pub running: bool,
}

impl ProberRunning<'_> {
    pub fn emit(&self, m: &ProbeMetrics) {
        if self.running {
            m.targets.inc();
            tracing::debug!(target_key = self.target, "prober started");
        } else {
            m.targets.dec();
            tracing::debug!(target_key = self.target, "prober stopped");
        }
    }
}

/// A traceroute finished.
pub struct TracerouteFinished<'a> {
    pub target: &'a str,
    pub hops: Result<usize, &'a ProbeError>,
}

impl TracerouteFinished<'_> {
    pub fn emit(&self, m: &ProbeMetrics) {
        match self.hops {
            Ok(hops) => {
                m.traceroutes
                    .get_or_create(&ResultLabel { result: "ok" })
                    .inc();
                tracing::info!(target_key = self.target, hops, "traceroute finished");
            }
            Err(e) => {
                m.traceroutes
                    .get_or_create(&ResultLabel { result: "error" })
                    .inc();
                tracing::warn!(target_key = self.target, error = %e, "traceroute failed");
            }
        }
    }
}
