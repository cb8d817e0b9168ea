//! The probes' events and metrics (`probe_*` under the agent's prefix).

use super::{KindLabel, ResultLabel};
use crate::probe::ProbeError;
use crate::probe::stats::RoundStats;
use ispvm_telemetry::{EventLog, InternalEvent, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;

ispvm_telemetry::label_set! {
pub struct RoundLabels {
    /// `icmp`, `tcp` or `udp_echo`.
    pub kind: &'static str,
    /// `ok` (every echo answered), `partial`, `lost` (none answered) or `error` (the
    /// round could not run: no socket, name not resolved).
    pub result: &'static str,
}
}

/// Counters of the probes; cheap to clone (every metric is shared).
#[derive(Debug, Clone)]
pub struct ProbeMetrics {
    events: EventLog,
    rounds_dropped: Counter,
    rounds: Family<RoundLabels, Counter>,
    echoes_sent: Family<KindLabel, Counter>,
    echoes_received: Family<KindLabel, Counter>,
    targets: Gauge,
    traceroutes: Family<ResultLabel, Counter>,
}

impl AsRef<EventLog> for ProbeMetrics {
    fn as_ref(&self) -> &EventLog {
        &self.events
    }
}

impl ProbeMetrics {
    /// The events emitted so far (tests read it instead of scraping `/metrics`).
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Standalone, for tests of the probes; a running agent uses [`Self::register`].
    pub fn new() -> Arc<Self> {
        Self::register(&mut MetricsRegistry::new(super::PREFIX))
    }

    /// Registers the probe metrics in the agent's registry (names start with `probe_`).
    pub fn register(r: &mut MetricsRegistry) -> Arc<Self> {
        Arc::new(ProbeMetrics {
            events: r.events().clone(),
            rounds: r.counters(
                "probe_rounds",
                "Probe rounds by kind and result (ok, partial, lost, error)",
            ),
            rounds_dropped: r.counter(
                "probe_rounds_dropped",
                "Probe rounds measured but lost because the uplink was not running",
            ),
            echoes_sent: r.counters(
                "probe_echoes_sent",
                "ICMP echoes, TCP connects or UDP echoes attempted",
            ),
            echoes_received: r.counters(
                "probe_echoes_received",
                "ICMP echoes, TCP connects or UDP echoes answered by the target",
            ),
            targets: r.gauge("probe_targets", "Probe targets with a running prober"),
            traceroutes: r.counters("probe_traceroutes", "Traceroutes run on demand by result"),
        })
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

impl InternalEvent for RoundFinished<'_> {
    type Metrics = ProbeMetrics;
    const NAME: &'static str = "RoundFinished";

    fn log_and_count(&self, m: &ProbeMetrics) {
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

impl InternalEvent for ProberRunning<'_> {
    type Metrics = ProbeMetrics;
    const NAME: &'static str = "ProberRunning";

    fn log_and_count(&self, m: &ProbeMetrics) {
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

impl InternalEvent for TracerouteFinished<'_> {
    type Metrics = ProbeMetrics;
    const NAME: &'static str = "TracerouteFinished";

    fn log_and_count(&self, m: &ProbeMetrics) {
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

/// A measured round could not be handed to the uplink (it was not running), so it is lost.
pub struct RoundDropped<'a> {
    pub target: &'a str,
}

impl InternalEvent for RoundDropped<'_> {
    type Metrics = ProbeMetrics;
    const NAME: &'static str = "RoundDropped";

    fn log_and_count(&self, m: &ProbeMetrics) {
        m.rounds_dropped.inc();
        tracing::warn!(
            target_key = self.target,
            "uplink is not running; probe round dropped"
        );
    }
}
