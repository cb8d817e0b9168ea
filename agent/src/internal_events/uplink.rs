//! The way to the server: buffering, delivery, answers, and every batch or item the
//! agent sets aside or loses on the way.

use super::{AgentMetrics, ReasonLabel, ResultLabel};
use ispvm_telemetry::InternalEvent;

/// The server answered a batch.
pub struct BatchAnswered<'a> {
    pub seq: u64,
    pub samples: usize,
    pub events: usize,
    /// `None` when accepted, else the rejection code.
    pub rejected: Option<(&'a str, &'a str)>,
}

impl InternalEvent for BatchAnswered<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BatchAnswered";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for UplinkFailed<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "UplinkFailed";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for BatchesDropped<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BatchesDropped";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.batches_dropped.inc_by(self.count as u64);
        tracing::error!(count = self.count, reason = self.reason, "batches dropped");
    }
}

/// The uplink queue changed length.
pub struct QueueDepth(pub usize);

impl InternalEvent for QueueDepth {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "QueueDepth";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.uplink_queue
            .set(i64::try_from(self.0).unwrap_or(i64::MAX));
    }
}

/// A batch was written to the disk buffer: from here on it is the agent's promise to
/// deliver it.
pub struct BatchBuffered {
    pub seq: u64,
    pub samples: usize,
    pub events: usize,
}

impl InternalEvent for BatchBuffered {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BatchBuffered";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for ItemsCleaned<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "ItemsCleaned";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for BatchQuarantined<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BatchQuarantined";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for SeqRenumbered {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "SeqRenumbered";

    fn log_and_count(&self, m: &AgentMetrics) {
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

impl InternalEvent for SeqNotPersisted<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "SeqNotPersisted";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.seq_persist_failures.inc();
        tracing::error!(file = %self.file.display(), error = %self.error, "cannot persist the uplink sequence number");
    }
}
