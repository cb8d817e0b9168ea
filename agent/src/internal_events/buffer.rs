//! The disk buffer: damage found in it, and what that cost.
//!
//! The buffer itself does no telemetry (it is a library with a crash test of its own);
//! the uplink, which owns it, emits these from the buffer's reports.

use super::{AgentMetrics, KindLabel};
use crate::buffer::OpenReport;
use ispvm_telemetry::InternalEvent;

/// Opening the buffer found and repaired what a crash or a bad disk left behind.
pub struct BufferRepaired<'a> {
    pub report: &'a OpenReport,
}

impl InternalEvent for BufferRepaired<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BufferRepaired";

    fn log_and_count(&self, m: &AgentMetrics) {
        let r = self.report;
        for (kind, n) in [
            ("record", r.corrupt_records),
            ("segment", r.dropped_segments),
            ("ack_state", u64::from(r.ack_state_reset)),
        ] {
            if n > 0 {
                m.buffer_damage.get_or_create(&KindLabel { kind }).inc_by(n);
            }
        }
        if r.corrupt_records > 0 || r.dropped_segments > 0 {
            tracing::error!(
                corrupt_records = r.corrupt_records,
                dropped_segments = r.dropped_segments,
                truncated_bytes = r.truncated_bytes,
                "the disk buffer was damaged: records from each damage site on were lost"
            );
        } else if r.ack_state_reset {
            tracing::warn!(
                "the disk buffer's ack state was damaged: delivered batches may be sent again (the server deduplicates them)"
            );
        } else {
            tracing::info!(
                truncated_bytes = r.truncated_bytes,
                "the torn tail of an interrupted append was cut off the disk buffer"
            );
        }
    }
}

/// A record was found damaged while reading the buffer for delivery: the rest of its
/// segment is lost.
pub struct BufferDamagedOnRead {
    pub damage_sites: u64,
}

impl InternalEvent for BufferDamagedOnRead {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BufferDamagedOnRead";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.buffer_damage
            .get_or_create(&KindLabel { kind: "record" })
            .inc_by(self.damage_sites);
        tracing::error!(
            damage_sites = self.damage_sites,
            "disk buffer record damaged on disk: the rest of its segment was lost"
        );
    }
}
