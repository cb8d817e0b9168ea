//! How a [`DiskBuffer`](super::DiskBuffer) is sized and how hard it tries to reach the disk.

use super::error::BufferError;
use super::record::RECORD_HEADER_LEN;
use super::segment::SEGMENT_HEADER_LEN;
use std::time::Duration;

/// When appended records are forced from the page cache to stable storage (`fsync`).
///
/// Every policy survives a crash of the *process* (panic, OOM kill, SIGKILL): an append
/// hands the whole record to the kernel in one `write` before it returns, and the kernel
/// keeps it after the process is gone. The policies differ only on a crash of the *machine*
/// (power loss, kernel panic, VM reset):
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every append, and the directory after every new segment, before
    /// `append` returns. A record whose id was returned survives power loss. Costs one
    /// disk flush per append (about a millisecond on SSDs, more on SD cards); the agent
    /// appends one batch every few seconds, so this is the default.
    Always,
    /// At most one flush per interval: an append (or ack) flushes when the previous flush
    /// is at least this old, and the owner calls [`DiskBuffer::sync`](super::DiskBuffer::sync)
    /// from a timer so the tail does not stay unflushed when appends stop. On power loss the
    /// records appended during the last interval (plus the timer's lateness) may be lost,
    /// and the ack position may step back so that already delivered records are replayed
    /// (the server drops them as duplicates). What remains is never corrupt: a torn tail is
    /// cut off when the buffer is opened.
    Interval(Duration),
    /// The buffer never flushes; the kernel writes back when it likes (on Linux typically
    /// within 30 s). On power loss any record not yet written back may be lost, and a
    /// segment may come back shorter or with a garbage tail, which opening detects and cuts
    /// off. For disks that must not be worn, or tests.
    Never,
}

/// Limits and durability of a [`DiskBuffer`](super::DiskBuffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// Size at which the active segment is closed and a new one started, header included.
    /// Space is reclaimed one whole segment at a time (on ack and on overflow), so this is
    /// also the granularity of what an overflow drops. Default 16 MiB.
    pub segment_max_bytes: u64,
    /// Cap on the bytes of all segment files together. An append that would exceed it
    /// first deletes the oldest segments, delivered or not, and reports what was lost.
    /// Keep it several times `segment_max_bytes`. Default 1 GiB.
    pub max_bytes: u64,
    /// Largest record `append` accepts; larger ones are refused with
    /// [`BufferError::RecordTooLarge`]. Default 8 MiB (the server takes at most 4 MiB per batch).
    pub max_record_bytes: usize,
    /// See [`FsyncPolicy`]. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            segment_max_bytes: 16 << 20,
            max_bytes: 1 << 30,
            max_record_bytes: 8 << 20,
            fsync: FsyncPolicy::Always,
        }
    }
}

impl BufferConfig {
    /// Checks that the limits fit together: every accepted record must fit in an empty
    /// segment, and one segment must fit under the cap, otherwise an append could find no
    /// place at all.
    pub fn validate(&self) -> Result<(), BufferError> {
        let max_record = self.max_record_bytes as u64;
        if max_record > u64::from(u32::MAX) {
            return Err(BufferError::Config(format!(
                "max_record_bytes {} exceeds the 4 GiB a record length can express",
                self.max_record_bytes
            )));
        }
        let needed = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + max_record;
        if self.segment_max_bytes < needed {
            return Err(BufferError::Config(format!(
                "segment_max_bytes {} cannot hold a record of max_record_bytes {} \
                 (needs at least {needed})",
                self.segment_max_bytes, self.max_record_bytes
            )));
        }
        if self.max_bytes < self.segment_max_bytes {
            return Err(BufferError::Config(format!(
                "max_bytes {} is smaller than segment_max_bytes {}",
                self.max_bytes, self.segment_max_bytes
            )));
        }
        Ok(())
    }
}
