//! Where the uplink sets aside a batch it will not send again, so that one batch can
//! never hold up every batch behind it.
//!
//! A batch goes here when the server refused it for good (`unstorable`, `invalid`,
//! `too_large`, ...), when it kept failing with `internal` for too many attempts, or
//! when the buffered bytes cannot be read back. Nothing is thrown away silently: the
//! file keeps each batch whole with the reason, for an operator to look at (`jq`) and,
//! once the cause is fixed, to send again. The file is append-only JSON lines, fsynced
//! per entry (the buffer record is acknowledged only after), and capped in size: past
//! the cap a batch is dropped and counted, never the agent stopped.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One batch set aside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// When it was set aside, Unix ms.
    pub at_ms: i64,
    /// The batch's sequence number, when its bytes could be read.
    pub seq: Option<u64>,
    /// Why: a rejection code (`unstorable`, `invalid`, ...), `internal_repeated` or
    /// `unreadable`.
    pub code: String,
    /// The server's message, or what went wrong locally.
    pub reason: String,
    /// The buffered record: the batch in bincode, base64.
    pub batch: String,
}

/// What happened to a batch handed to [`Quarantine::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Kept,
    /// The file is at its cap: the batch is lost (and counted).
    Full,
}

/// The quarantine file.
#[derive(Debug)]
pub struct Quarantine {
    path: PathBuf,
    max_bytes: u64,
    bytes: u64,
    entries: u64,
}

impl Quarantine {
    /// Opens (creating nothing yet) the file at `path`, counting what earlier lives put
    /// there.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64) -> io::Result<Self> {
        let path = path.into();
        let (bytes, entries) = match File::open(&path) {
            Ok(f) => {
                let bytes = f.metadata()?.len();
                let entries = BufReader::new(f).lines().count() as u64;
                (bytes, entries)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, 0),
            Err(e) => return Err(e),
        };
        Ok(Quarantine {
            path,
            max_bytes,
            bytes,
            entries,
        })
    }

    /// Batches in the file (from every life of the agent).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` with its reason, durably, unless the file is full.
    pub fn put(
        &mut self,
        at_ms: i64,
        seq: Option<u64>,
        code: &str,
        reason: &str,
        record: &[u8],
    ) -> io::Result<Outcome> {
        let entry = QuarantineEntry {
            at_ms,
            seq,
            code: code.to_owned(),
            reason: reason.to_owned(),
            batch: base64::engine::general_purpose::STANDARD.encode(record),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        if self.bytes.saturating_add(line.len() as u64) > self.max_bytes {
            return Ok(Outcome::Full);
        }
        let created = !self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()?;
        if created && let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        self.bytes += line.len() as u64;
        self.entries += 1;
        Ok(Outcome::Kept)
    }

    /// Every entry in the file, oldest first (lines that do not parse are skipped).
    pub fn read_all(path: &Path) -> io::Result<Vec<QuarantineEntry>> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            if let Ok(entry) = serde_json::from_str(&line?) {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

impl QuarantineEntry {
    /// The batch bytes as they were buffered.
    pub fn record(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening_and_the_cap_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("quarantine.jsonl");
        let mut q = Quarantine::open(&path, 400).expect("open");
        assert_eq!(
            q.put(1, Some(7), "unstorable", "inventory.neighbors[0]", b"abc")
                .expect("put"),
            Outcome::Kept
        );
        let q2 = Quarantine::open(&path, 400).expect("reopen");
        assert_eq!((q2.entries(), q2.bytes()), (1, q.bytes()));
        let big = vec![0u8; 400];
        assert_eq!(
            q.put(2, None, "unreadable", "x", &big).expect("put"),
            Outcome::Full
        );
        let all = Quarantine::read_all(&path).expect("read");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].seq, Some(7));
        assert_eq!(all[0].record().expect("base64"), b"abc");
    }
}
