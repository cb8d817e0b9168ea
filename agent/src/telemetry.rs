//! The agent's own metrics and logs.
//!
//! Each internal event is a type whose `emit` logs it and counts it in one place, so a log
//! line and its metric can never disagree and call sites stay one line long.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ActorLabel {
    pub actor: &'static str,
}

/// Every metric the agent exports on `/metrics`.
pub struct AgentMetrics {
    registry: Registry,
    polls: Family<ResultLabel, Counter>,
    poll_seconds: Histogram,
    batches: Family<ResultLabel, Counter>,
    samples_sent: Counter,
    events_sent: Counter,
    batches_dropped: Counter,
    uplink_queue: Gauge,
    routers_owned: Gauge,
    actor_restarts: Family<ActorLabel, Counter>,
    breakers_open: Gauge,
    breaker_openings: Counter,
    crash_loops: Family<ActorLabel, Counter>,
    buffered_samples: Counter,
    buffered_events: Counter,
    batches_quarantined: Family<ReasonLabel, Counter>,
    quarantine_full: Counter,
    items_dropped: Family<ReasonLabel, Counter>,
    fields_cleaned: Counter,
    seq_renumbered: Counter,
    seq_persist_failures: Counter,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentMetrics")
    }
}

/// Every metric of a running agent: its own and those of the parts that keep theirs
/// (syslog, probes, cluster), all in one registry.
pub struct AllMetrics {
    pub agent: Arc<AgentMetrics>,
    pub syslog: Arc<crate::syslog::SyslogMetrics>,
    pub probes: Arc<crate::probe::ProbeMetrics>,
    pub cluster: Arc<crate::cluster::ClusterMetrics>,
}

impl AllMetrics {
    pub fn new() -> Self {
        let syslog = crate::syslog::SyslogMetrics::new();
        let probes = crate::probe::ProbeMetrics::new();
        let cluster = crate::cluster::ClusterMetrics::new();
        let agent = AgentMetrics::new_with(|registry| {
            syslog.register(registry);
            probes.register(registry);
            cluster.register(registry);
        });
        AllMetrics {
            agent,
            syslog,
            probes,
            cluster,
        }
    }
}

impl Default for AllMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> Arc<Self> {
        Self::new_with(|_| {})
    }

    /// Also registers the metrics of parts that keep their own (syslog, probes).
    pub fn new_with(extra: impl FnOnce(&mut Registry)) -> Arc<Self> {
        let mut registry = Registry::with_prefix("ispvm_agent");
        extra(&mut registry);
        let m = AgentMetrics {
            polls: Family::default(),
            poll_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            batches: Family::default(),
            samples_sent: Counter::default(),
            events_sent: Counter::default(),
            batches_dropped: Counter::default(),
            uplink_queue: Gauge::default(),
            routers_owned: Gauge::default(),
            actor_restarts: Family::default(),
            breakers_open: Gauge::default(),
            crash_loops: Family::default(),
            buffered_samples: Counter::default(),
            buffered_events: Counter::default(),
            breaker_openings: Counter::default(),
            batches_quarantined: Family::default(),
            quarantine_full: Counter::default(),
            items_dropped: Family::default(),
            fields_cleaned: Counter::default(),
            seq_renumbered: Counter::default(),
            seq_persist_failures: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("polls", "Router polls by result", m.polls.clone());
        registry.register(
            "poll_duration_seconds",
            "Duration of one router poll",
            m.poll_seconds.clone(),
        );
        registry.register(
            "uplink_batches",
            "Batches sent to the server by result",
            m.batches.clone(),
        );
        registry.register(
            "uplink_samples",
            "Samples acknowledged by the server",
            m.samples_sent.clone(),
        );
        registry.register(
            "uplink_events",
            "Events acknowledged by the server",
            m.events_sent.clone(),
        );
        registry.register(
            "uplink_batches_dropped",
            "Batches dropped because the in-memory queue was full or the server refused them for good",
            m.batches_dropped.clone(),
        );
        registry.register(
            "uplink_queue_batches",
            "Batches waiting for the server",
            m.uplink_queue.clone(),
        );
        registry.register(
            "routers_owned",
            "Routers this agent polls",
            m.routers_owned.clone(),
        );
        registry.register(
            "actor_restarts",
            "Actors restarted by their supervisor",
            m.actor_restarts.clone(),
        );
        registry.register(
            "breakers_open",
            "Routers whose circuit breaker is open (polling throttled)",
            m.breakers_open.clone(),
        );
        registry.register(
            "breaker_openings",
            "Times a router's circuit breaker opened",
            m.breaker_openings.clone(),
        );
        registry.register(
            "actor_crash_loops",
            "Times an actor restarted so often that its supervisor parked or escalated it",
            m.crash_loops.clone(),
        );
        registry.register(
            "buffered_samples",
            "Samples put in the disk buffer for delivery",
            m.buffered_samples.clone(),
        );
        registry.register(
            "buffered_events",
            "Events put in the disk buffer for delivery",
            m.buffered_events.clone(),
        );
        registry.register(
            "uplink_batches_quarantined",
            "Batches set aside in the quarantine file instead of being sent again, by reason",
            m.batches_quarantined.clone(),
        );
        registry.register(
            "uplink_quarantine_full",
            "Batches lost because the quarantine file was at its size cap",
            m.quarantine_full.clone(),
        );
        registry.register(
            "uplink_items_dropped",
            "Collected items left out of a batch because the server would refuse them, by kind",
            m.items_dropped.clone(),
        );
        registry.register(
            "uplink_fields_cleaned",
            "Router-supplied text fields cleaned (control characters replaced, length cut) before buffering",
            m.fields_cleaned.clone(),
        );
        registry.register(
            "uplink_seq_renumbered",
            "Batches numbered anew because the server had their sequence number with other content",
            m.seq_renumbered.clone(),
        );
        registry.register(
            "uplink_seq_persist_failures",
            "Times the next sequence number could not be written durably",
            m.seq_persist_failures.clone(),
        );
        Arc::new(AgentMetrics { registry, ..m })
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A router poll finished.
pub struct PollFinished<'a> {
    pub router: &'a str,
    pub took: Duration,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl PollFinished<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        m.poll_seconds.observe(self.took.as_secs_f64());
        match self.error {
            None => {
                m.polls.get_or_create(&ResultLabel { result: "ok" }).inc();
                tracing::debug!(
                    router = self.router,
                    took_ms = self.took.as_millis() as u64,
                    "poll ok"
                );
            }
            Some(e) => {
                m.polls
                    .get_or_create(&ResultLabel { result: "error" })
                    .inc();
                tracing::warn!(router = self.router, error = %e, "poll failed");
            }
        }
    }
}

/// The server answered a batch.
pub struct BatchAnswered<'a> {
    pub seq: u64,
    pub samples: usize,
    pub events: usize,
    /// `None` when accepted, else the rejection code.
    pub rejected: Option<(&'a str, &'a str)>,
}

impl BatchAnswered<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        match self.rejected {
            None => {
                m.batches
                    .get_or_create(&ResultLabel { result: "accepted" })
                    .inc();
                m.samples_sent.inc_by(self.samples as u64);
                m.events_sent.inc_by(self.events as u64);
                tracing::debug!(seq = self.seq, samples = self.samples, "batch accepted");
            }
            Some((code, message)) => {
                m.batches
                    .get_or_create(&ResultLabel { result: "rejected" })
                    .inc();
                tracing::warn!(seq = self.seq, code, message, "batch rejected by server");
            }
        }
    }
}

/// A batch could not be delivered this time (the server is away or slow).
pub struct UplinkFailed<'a> {
    pub error: &'a dyn std::fmt::Display,
    pub queued: usize,
}

impl UplinkFailed<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        m.batches
            .get_or_create(&ResultLabel { result: "failed" })
            .inc();
        tracing::warn!(error = %self.error, queued = self.queued, "uplink failed; will retry");
    }
}

/// Batches were dropped (queue full or refused for good).
pub struct BatchesDropped<'a> {
    pub count: usize,
    pub reason: &'a str,
}

impl BatchesDropped<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        m.batches_dropped.inc_by(self.count as u64);
        tracing::error!(count = self.count, reason = self.reason, "batches dropped");
    }
}

/// The uplink queue changed length.
pub struct QueueDepth(pub usize);

impl QueueDepth {
    pub fn emit(&self, m: &AgentMetrics) {
        m.uplink_queue
            .set(i64::try_from(self.0).unwrap_or(i64::MAX));
    }
}

/// The set of polled routers changed size.
pub struct RoutersOwned(pub usize);

impl RoutersOwned {
    pub fn emit(&self, m: &AgentMetrics) {
        m.routers_owned
            .set(i64::try_from(self.0).unwrap_or(i64::MAX));
        tracing::info!(routers = self.0, "routers owned");
    }
}

/// A supervisor restarted a child.
pub struct ActorRestarted<'a> {
    pub actor: &'static str,
    pub name: &'a str,
    pub reason: &'a str,
    pub attempt: u32,
    /// Restarting too often: the supervisor waits much longer before the next attempt.
    pub crash_loop: bool,
}

impl ActorRestarted<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let label = ActorLabel { actor: self.actor };
        m.actor_restarts.get_or_create(&label).inc();
        if self.crash_loop {
            m.crash_loops.get_or_create(&label).inc();
            tracing::error!(
                actor = self.actor,
                name = self.name,
                reason = self.reason,
                attempt = self.attempt,
                "actor is crash-looping"
            );
        } else {
            tracing::warn!(
                actor = self.actor,
                name = self.name,
                reason = self.reason,
                attempt = self.attempt,
                "restarting actor"
            );
        }
    }
}

/// A router's circuit breaker changed state.
pub struct BreakerChanged<'a> {
    pub router: &'a str,
    pub transition: crate::breaker::Transition,
}

impl BreakerChanged<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        use crate::breaker::Transition;
        match self.transition {
            Transition::Opened { failures, retry_in } => {
                m.breakers_open.inc();
                m.breaker_openings.inc();
                tracing::warn!(
                    router = self.router,
                    failures,
                    retry_in_s = retry_in.as_secs(),
                    "circuit breaker opened: polling throttled"
                );
            }
            Transition::Reopened { retry_in } => {
                tracing::info!(
                    router = self.router,
                    retry_in_s = retry_in.as_secs(),
                    "probe failed; circuit breaker stays open"
                );
            }
            Transition::Closed => {
                m.breakers_open.dec();
                tracing::info!(
                    router = self.router,
                    "circuit breaker closed: polling resumed"
                );
            }
        }
    }
}

/// A batch was written to the disk buffer: from here on it is the agent's promise to
/// deliver it.
pub struct BatchBuffered {
    pub seq: u64,
    pub samples: usize,
    pub events: usize,
}

impl BatchBuffered {
    pub fn emit(&self, m: &AgentMetrics) {
        m.buffered_samples.inc_by(self.samples as u64);
        m.buffered_events.inc_by(self.events as u64);
        tracing::debug!(
            seq = self.seq,
            samples = self.samples,
            events = self.events,
            "batch buffered"
        );
    }
}

/// Collected items were cleaned before buffering: text fixed, or items the server would
/// refuse left out (each costs that item, not its batch).
pub struct ItemsCleaned<'a> {
    pub cleaned: &'a ispvm_proto::clean::Cleaned,
    /// Items too large for a batch even alone.
    pub oversize: usize,
}

impl ItemsCleaned<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        let c = self.cleaned;
        m.fields_cleaned.inc_by(c.fields_fixed as u64);
        for (reason, n) in [
            ("sample", c.samples_dropped),
            ("event", c.events_dropped),
            ("inventory", c.inventory_dropped),
            ("cluster_entry", c.cluster_dropped),
            ("event_attribute", c.attrs_dropped),
            ("oversize", self.oversize),
        ] {
            if n > 0 {
                m.items_dropped
                    .get_or_create(&ReasonLabel { reason })
                    .inc_by(n as u64);
            }
        }
        let dropped = c.items_dropped() + c.attrs_dropped + self.oversize;
        if dropped > 0 {
            tracing::warn!(
                samples = c.samples_dropped,
                events = c.events_dropped,
                inventory = c.inventory_dropped,
                cluster_entries = c.cluster_dropped,
                event_attributes = c.attrs_dropped,
                oversize = self.oversize,
                "collected items the server would refuse were left out"
            );
        } else if c.fields_fixed > 0 {
            tracing::debug!(
                fields = c.fields_fixed,
                "router text cleaned before buffering"
            );
        }
    }
}

/// A batch was set aside in the quarantine file (or lost, the file being full) instead
/// of being sent again.
pub struct BatchQuarantined<'a> {
    pub seq: Option<u64>,
    /// A rejection code, `internal_repeated` or `unreadable`.
    pub reason: &'static str,
    pub message: &'a str,
    /// False when the quarantine file was full and the batch was lost.
    pub kept: bool,
}

impl BatchQuarantined<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        if self.kept {
            m.batches_quarantined
                .get_or_create(&ReasonLabel {
                    reason: self.reason,
                })
                .inc();
            tracing::error!(
                seq = self.seq,
                reason = self.reason,
                message = self.message,
                "batch set aside in the quarantine file; the uplink goes on"
            );
        } else {
            m.quarantine_full.inc();
            m.batches_dropped.inc();
            tracing::error!(
                seq = self.seq,
                reason = self.reason,
                message = self.message,
                "quarantine file full: batch dropped"
            );
        }
    }
}

/// The server had a batch's sequence number with other content; the batch was numbered
/// anew and buffered again.
pub struct SeqRenumbered {
    pub old: u64,
    pub new: u64,
}

impl SeqRenumbered {
    pub fn emit(&self, m: &AgentMetrics) {
        m.seq_renumbered.inc();
        tracing::error!(
            old = self.old,
            new = self.new,
            "the server holds this sequence number with other content (was the agent's state rolled back?); batch numbered anew"
        );
    }
}

/// The next sequence number could not be written durably; numbers are still taken above
/// the buffer's newest at the next start.
pub struct SeqNotPersisted<'a> {
    pub file: &'a std::path::Path,
    pub error: &'a std::io::Error,
}

impl SeqNotPersisted<'_> {
    pub fn emit(&self, m: &AgentMetrics) {
        m.seq_persist_failures.inc();
        tracing::error!(file = %self.file.display(), error = %self.error, "cannot persist the uplink sequence number");
    }
}
