//! Values the buffer hands back: record ids, outcomes, the open report and statistics.

use std::fmt;

/// Id of a record in the buffer: starts at 1 and only grows, across restarts too.
///
/// It is the buffer's own numbering, independent of a batch's `seq`: the caller acks by
/// record id, and the ids need not be contiguous (records lost to corruption leave gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u64);

impl RecordId {
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The id of the appended record.
    pub id: RecordId,
    /// Undelivered records deleted to stay under `max_bytes` to make room for this one.
    /// When non-zero the caller should emit a `buffer_overflow` event.
    pub dropped_records: u64,
    /// Bytes of those records on disk (frames: payload plus 8 bytes each).
    pub dropped_bytes: u64,
}

/// What opening found wrong on disk and repaired. All zero after a clean shutdown; a torn
/// tail after a crash mid-append is expected and harmless, anything else means the disk or
/// someone else damaged the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes cut off the ends of segments (torn tails and everything after a corrupt record).
    pub truncated_bytes: u64,
    /// Frames that were complete but failed their checksum (or ran past the next segment's
    /// first id), plus frames cut short anywhere but at the very end of the log. The records
    /// after such a frame in the same segment are lost too (the framing can no longer be
    /// trusted); the count is of damage sites, at least one record each.
    pub corrupt_records: u64,
    /// Segment files deleted whole because their header was missing or damaged.
    pub dropped_segments: u64,
    /// The ack state file was damaged and ignored: delivered records may be replayed.
    pub ack_state_reset: bool,
    /// Undelivered records after opening.
    pub records: u64,
}

impl OpenReport {
    /// True when nothing at all had to be repaired.
    pub fn is_clean(&self) -> bool {
        self.truncated_bytes == 0
            && self.corrupt_records == 0
            && self.dropped_segments == 0
            && !self.ack_state_reset
    }

    /// True when something other than a torn tail was found: damage to report loudly.
    pub fn found_corruption(&self) -> bool {
        self.corrupt_records > 0 || self.dropped_segments > 0 || self.ack_state_reset
    }
}

/// A snapshot of the buffer, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Undelivered records.
    pub records: u64,
    /// Bytes of the undelivered records on disk (frames).
    pub record_bytes: u64,
    /// Bytes of all segment files (headers and not yet reclaimed delivered records too).
    pub disk_bytes: u64,
    pub segments: u64,
    /// The id the next append gets.
    pub next_id: u64,
    /// Highest acknowledged id, 0 for none.
    pub acked_upto: u64,
    // Counters since open:
    pub appended_records: u64,
    pub appended_bytes: u64,
    pub acked_records: u64,
    /// Undelivered records deleted by the size cap, and their bytes.
    pub overflow_records: u64,
    pub overflow_bytes: u64,
    /// Damage found, on open and while reading (see [`OpenReport`]).
    pub corrupt_records: u64,
    pub truncated_bytes: u64,
    pub dropped_segments: u64,
    /// fsync/fdatasync calls made.
    pub syncs: u64,
}
