//! Sending set-aside batches again: `ispvm-agent quarantine requeue`.
//!
//! Once an operator has fixed why the server refused a batch (a device created, a limit
//! raised, a server upgraded), the batch should reach the store like any other. Requeue
//! moves chosen entries of the quarantine file back into the disk buffer, where the
//! next start of the agent delivers them in order with everything else.
//!
//! It runs with the agent stopped (the caller holds the data directory's lock) and is
//! safe to interrupt: records are appended to the buffer and synced first, and the
//! quarantine file is replaced atomically only after. A crash between the two leaves a
//! batch in both places; sending it twice is harmless, because the server recognises a
//! batch it already stored by its sequence number and content.

use super::quarantine::QuarantineEntry;
use crate::buffer::{BufferConfig, BufferError, DiskBuffer};
use crate::data_dir::DataDir;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

/// Which entries to send again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Entries with these sequence numbers; empty means every entry.
    pub seqs: Vec<u64>,
    /// Only entries set aside for this reason (`unstorable`, `invalid`, ...).
    pub code: Option<String>,
}

impl Selection {
    fn matches(&self, e: &QuarantineEntry) -> bool {
        let seq_ok = self.seqs.is_empty() || e.seq.is_some_and(|s| self.seqs.contains(&s));
        let code_ok = self.code.as_deref().is_none_or(|c| c == e.code);
        seq_ok && code_ok
    }
}

/// What a requeue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Sequence numbers (where known) of the batches put back in the buffer.
    pub seqs: Vec<Option<u64>>,
    /// Entries left in the quarantine file (not selected).
    pub kept: usize,
    /// Selected entries whose batch could not be decoded from the file: left in place.
    pub unreadable: usize,
    /// Lines of the file that are not entries at all: left in place, untouched.
    pub foreign_lines: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the disk buffer: {0}")]
    Buffer(#[from] BufferError),
}

fn io_err(action: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> RequeueError {
    let path = path.to_owned();
    move |source| RequeueError::Io {
        action,
        path,
        source,
    }
}

/// Moves the selected entries from the quarantine file into the disk buffer.
///
/// The caller must hold the data directory's lock ([`DataDir::lock`]).
pub fn requeue(
    data: &DataDir,
    buffer: BufferConfig,
    selection: &Selection,
) -> Result<Requeued, RequeueError> {
    let path = data.quarantine_file();
    let lines = match File::open(&path) {
        Ok(f) => BufReader::new(f)
            .lines()
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err("read", &path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Requeued::default()),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut report = Requeued::default();
    let mut keep: Vec<&str> = Vec::new();
    let mut records: Vec<Vec<u8>> = Vec::new();
    for line in &lines {
        let Ok(entry) = serde_json::from_str::<QuarantineEntry>(line) else {
            report.foreign_lines += 1;
            keep.push(line);
            continue;
        };
        if !selection.matches(&entry) {
            report.kept += 1;
            keep.push(line);
            continue;
        }
        match entry.record() {
            Ok(record) => {
                records.push(record);
                report.seqs.push(entry.seq);
            }
            Err(_) => {
                report.unreadable += 1;
                keep.push(line);
            }
        }
    }
    if records.is_empty() {
        return Ok(report);
    }
    // First make the batches durable in the buffer...
    let mut b = DiskBuffer::open(data.buffer(), buffer)?;
    for r in &records {
        b.append(r)?;
    }
    b.sync()?;
    b.close()?;
    // ...then drop them from the quarantine file, atomically.
    let tmp = path.with_extension("jsonl.tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err("write", &tmp))?;
        for line in &keep {
            writeln!(f, "{line}").map_err(io_err("write", &tmp))?;
        }
        f.sync_all().map_err(io_err("sync", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err("replace", &path))?;
    File::open(data.root())
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", data.root()))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uplink::quarantine::Quarantine;

    #[test]
    fn selected_entries_move_to_the_buffer_and_the_rest_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let mut q = Quarantine::open(data.quarantine_file(), 1 << 20).expect("open");
        q.put(1, Some(7), "unstorable", "inventory.neighbors[0]", b"seven")
            .expect("put");
        q.put(2, Some(8), "invalid", "samples[3]", b"eight")
            .expect("put");
        q.put(3, Some(9), "unstorable", "events[0]", b"nine")
            .expect("put");
        // A line an operator or an older version left: never lost.
        let mut f = OpenOptions::new()
            .append(true)
            .open(data.quarantine_file())
            .expect("append");
        writeln!(f, "not an entry").expect("write");

        let selection = Selection {
            seqs: Vec::new(),
            code: Some("unstorable".into()),
        };
        let done = requeue(&data, BufferConfig::default(), &selection).expect("requeue");
        assert_eq!(done.seqs, vec![Some(7), Some(9)]);
        assert_eq!((done.kept, done.unreadable, done.foreign_lines), (1, 0, 1));

        let mut b = DiskBuffer::open(data.buffer(), BufferConfig::default()).expect("buffer");
        let records: Vec<Vec<u8>> = b
            .peek(10)
            .expect("peek")
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(records, vec![b"seven".to_vec(), b"nine".to_vec()]);
        let left = Quarantine::read_all(&data.quarantine_file()).expect("read");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, Some(8));
        let text = std::fs::read_to_string(data.quarantine_file()).expect("read");
        assert!(text.contains("not an entry"));

        // Nothing selected: nothing changes.
        let none = Selection {
            seqs: vec![42],
            code: None,
        };
        let done = requeue(&data, BufferConfig::default(), &none).expect("requeue");
        assert!(done.seqs.is_empty());
        assert_eq!(done.kept, 1);
    }
}
