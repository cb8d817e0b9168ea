//! The agent's internal events and the metrics they move.
//!
//! Each event is a type implementing [`InternalEvent`]: its `log_and_count` writes the log
//! line and moves the metrics in one place, so a log line and its counter can never
//! disagree, and a call site is one line (`Event { .. }.emit(&metrics)`). Every place the
//! agent drops or loses something emits one. The metrics are registered through one
//! [`MetricsRegistry`], whose catalog is the agent's half of `docs/metrics.md`.

pub mod buffer;
pub mod cluster;
pub mod polling;
pub mod probe;
pub mod supervision;
pub mod syslog;
pub mod uplink;

pub use buffer::{BufferDamagedOnRead, BufferRepaired};
pub use polling::{BreakerChanged, PollDropped, PollFinished, RoutersOwned};
pub use supervision::ActorRestarted;
pub use uplink::{
    BatchAnswered, BatchBuffered, BatchQuarantined, BatchesDropped, ItemsCleaned, QueueDepth,
    SeqNotPersisted, SeqRenumbered, UplinkFailed,
};

use ispvm_telemetry::{Buckets, Catalog, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;

pub use ispvm_telemetry::{EventLog, InternalEvent};

/// Every agent metric's name starts with this.
pub const PREFIX: &str = "ispvm_agent";

ispvm_telemetry::label_set! {
    pub struct ResultLabel {
        pub result: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct ReasonLabel {
        pub reason: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct ActorLabel {
        pub actor: &'static str,
    }
}

ispvm_telemetry::label_set! {
    pub struct KindLabel {
        pub kind: &'static str,
    }
}

/// The agent's own metrics (polling, supervision, buffer, uplink) and, once built, the
/// registry that serves every agent metric on `/metrics`.
pub struct AgentMetrics {
    registry: MetricsRegistry,
    events: EventLog,
    polls: Family<ResultLabel, Counter>,
    poll_seconds: Histogram,
    polls_dropped: Counter,
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
    buffer_damage: Family<KindLabel, Counter>,
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

impl AsRef<EventLog> for AgentMetrics {
    fn as_ref(&self) -> &EventLog {
        &self.events
    }
}

/// Every metric of a running agent: its own and those of the parts that keep theirs
/// (syslog, probes, cluster), all in one registry.
pub struct AllMetrics {
    pub agent: Arc<AgentMetrics>,
    pub syslog: Arc<syslog::SyslogMetrics>,
    pub probes: Arc<probe::ProbeMetrics>,
    pub cluster: Arc<cluster::ClusterMetrics>,
}

impl AllMetrics {
    pub fn new() -> Self {
        let mut registry = MetricsRegistry::new(PREFIX);
        let syslog = syslog::SyslogMetrics::register(&mut registry);
        let probes = probe::ProbeMetrics::register(&mut registry);
        let cluster = cluster::ClusterMetrics::register(&mut registry);
        let agent = AgentMetrics::register(registry);
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
    /// The agent's own metrics alone (tests and benchmarks that need no syslog, probes
    /// or cluster); a running agent builds [`AllMetrics`].
    pub fn new() -> Arc<Self> {
        Self::register(MetricsRegistry::new(PREFIX))
    }

    /// Registers the agent's own metrics and keeps the registry, with whatever other
    /// parts registered in it before, to serve them all.
    pub fn register(mut r: MetricsRegistry) -> Arc<Self> {
        let polls = r.counters("polls", "Router polls by result");
        let poll_seconds = r.histogram(
            "poll_duration_seconds",
            "Duration of one router poll",
            Buckets(&[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        );
        let polls_dropped = r.counter(
            "polls_dropped",
            "Poll results lost because the uplink was not running",
        );
        let batches = r.counters(
            "uplink_batches",
            "Batches sent to the server by result (accepted, rejected, failed)",
        );
        let samples_sent = r.counter("uplink_samples", "Samples acknowledged by the server");
        let events_sent = r.counter("uplink_events", "Events acknowledged by the server");
        let batches_dropped = r.counter(
            "uplink_batches_dropped",
            "Batches lost: the in-memory queue was full, the buffer could not take them, or the quarantine file was full",
        );
        let uplink_queue = r.gauge(
            "uplink_queue_batches",
            "Batches in the disk buffer waiting for the server",
        );
        let routers_owned = r.gauge("routers_owned", "Routers this agent polls");
        let actor_restarts = r.counters(
            "actor_restarts",
            "Actors restarted by their supervisor, by actor",
        );
        let breakers_open = r.gauge(
            "breakers_open",
            "Routers whose circuit breaker is open (polling throttled)",
        );
        let breaker_openings = r.counter(
            "breaker_openings",
            "Times a router's circuit breaker opened",
        );
        let crash_loops = r.counters(
            "actor_crash_loops",
            "Times an actor restarted so often that its supervisor parked or escalated it",
        );
        let buffered_samples = r.counter(
            "buffered_samples",
            "Samples put in the disk buffer for delivery",
        );
        let buffered_events = r.counter(
            "buffered_events",
            "Events put in the disk buffer for delivery",
        );
        let buffer_damage = r.counters(
            "buffer_damage",
            "Damage found in the disk buffer, by kind (record: a damaged record, the rest of its segment lost; segment: a segment dropped whole; ack_state: delivered batches may be replayed)",
        );
        let batches_quarantined = r.counters(
            "uplink_batches_quarantined",
            "Batches set aside in the quarantine file instead of being sent again, by reason",
        );
        let quarantine_full = r.counter(
            "uplink_quarantine_full",
            "Batches lost because the quarantine file was at its size cap",
        );
        let items_dropped = r.counters(
            "uplink_items_dropped",
            "Collected items left out of a batch because the server would refuse them, by kind",
        );
        let fields_cleaned = r.counter(
            "uplink_fields_cleaned",
            "Router-supplied text fields cleaned (control characters replaced, length cut) before buffering",
        );
        let seq_renumbered = r.counter(
            "uplink_seq_renumbered",
            "Batches numbered anew because the server had their sequence number with other content",
        );
        let seq_persist_failures = r.counter(
            "uplink_seq_persist_failures",
            "Times the next sequence number could not be written durably",
        );
        Arc::new(AgentMetrics {
            events: r.events().clone(),
            registry: r,
            polls,
            poll_seconds,
            polls_dropped,
            batches,
            samples_sent,
            events_sent,
            batches_dropped,
            uplink_queue,
            routers_owned,
            actor_restarts,
            breakers_open,
            breaker_openings,
            crash_loops,
            buffered_samples,
            buffered_events,
            buffer_damage,
            batches_quarantined,
            quarantine_full,
            items_dropped,
            fields_cleaned,
            seq_renumbered,
            seq_persist_failures,
        })
    }

    /// The OpenMetrics text exposition of every metric in the registry.
    pub fn encode(&self) -> String {
        self.registry.encode()
    }

    /// What the registry holds, for `docs/metrics.md`.
    pub fn catalog(&self) -> &Catalog {
        self.registry.catalog()
    }

    /// The events emitted so far (tests read it instead of scraping `/metrics`).
    pub fn events(&self) -> &EventLog {
        &self.events
    }
}
