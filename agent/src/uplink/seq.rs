//! The agent's batch numbers, which must never be reused.
//!
//! The server answers a known `(agent, seq)` as a replay, so a number used twice for
//! different content would have the second batch acknowledged and thrown away (the
//! server now refuses it with `seq_reused`, but the agent must not get there). Numbers
//! come from what is durable: the file holds the next free number and is written (file
//! and directory fsynced) *before* the batches that use the numbers are buffered, and at
//! start the agent also takes the number after the newest batch still in its buffer, in
//! case the file was lost or rolled back while the buffer was not.

use ispvm_proto::time::now_ms;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The next free sequence number, kept in one small file.
#[derive(Debug)]
pub struct SeqFile {
    path: PathBuf,
    next: u64,
    /// The number the file holds on disk (what a restart would start from).
    durable: u64,
}

/// A number that is above any an earlier life of this agent can have used: the wall
/// clock in ms (an agent cannot have cut more than one batch per millisecond).
fn clock_floor() -> u64 {
    u64::try_from(now_ms()).unwrap_or(1).max(1)
}

impl SeqFile {
    /// Reads the next free number: the larger of the file's and `buffered_max + 1`, the
    /// highest number still in the disk buffer. A missing or unreadable file starts at
    /// the clock (see [`clock_floor`]), so a wiped agent never reuses a number.
    pub fn open(path: impl Into<PathBuf>, buffered_max: Option<u64>) -> Self {
        let path = path.into();
        let stored = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| *n > 0);
        let from_buffer = buffered_max.map_or(1, |m| m.saturating_add(1));
        let next = stored.unwrap_or_else(clock_floor).max(from_buffer);
        SeqFile {
            path,
            next,
            durable: stored.unwrap_or(0),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next free number.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Records durably that every number below `next` is used. Call before buffering the
    /// batches that carry them.
    pub fn advance_to(&mut self, next: u64) -> io::Result<()> {
        self.next = self.next.max(next);
        if self.durable >= self.next {
            return Ok(());
        }
        write_durably(&self.path, self.next)?;
        self.durable = self.next;
        Ok(())
    }

    /// Takes a number above any this agent can have used, for a batch the server said
    /// reuses a number (the state was rolled back): the clock, or the next number if
    /// that is higher. The number is durable when this returns.
    pub fn take_fresh(&mut self) -> io::Result<u64> {
        let seq = self.next.max(clock_floor());
        self.advance_to(seq.saturating_add(1))?;
        Ok(seq)
    }
}

/// Writes `value` to `path` so that after a power cut the file holds either the old or
/// the new value, whole: write a temporary file, fsync it, rename it over, fsync the
/// directory (without which the rename itself may be lost).
fn write_durably(path: &Path, value: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(value.to_string().as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_wins_over_a_file_that_went_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("uplink.seq");
        let mut seq = SeqFile::open(&path, None);
        let first = seq.next();
        seq.advance_to(first + 10).expect("advance");
        assert_eq!(SeqFile::open(&path, None).next(), first + 10);
        // The file rolled back (a restored snapshot) while the buffer holds newer batches.
        fs::write(&path, "5").expect("roll back");
        assert_eq!(SeqFile::open(&path, Some(first + 41)).next(), first + 42);
        // The buffer is behind the file: the file wins.
        assert_eq!(SeqFile::open(&path, Some(2)).next(), 5);
    }

    #[test]
    fn a_lost_file_starts_above_any_number_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("uplink.seq");
        let before = clock_floor();
        let seq = SeqFile::open(&path, Some(7));
        assert!(seq.next() >= before);
    }

    #[test]
    fn fresh_numbers_are_durable_and_above_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("uplink.seq");
        fs::write(&path, "100").expect("write");
        let mut seq = SeqFile::open(&path, None);
        let fresh = seq.take_fresh().expect("fresh");
        assert!(fresh >= clock_floor() - 1000);
        assert_eq!(SeqFile::open(&path, None).next(), fresh + 1);
    }
}
