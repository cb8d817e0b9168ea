//! The agent's data directory: what lives in it, and the lock that says an agent runs
//! on it.
//!
//! The disk buffer, the sequence-number file and the quarantine file have one writer:
//! the running agent. Offline tools (`ispvm-agent quarantine requeue`) write them too,
//! so the agent holds an exclusive advisory lock on `agent.lock` for its whole life, and
//! a tool that cannot take the lock refuses to run. The kernel drops the lock when the
//! process dies, so a crashed agent never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The paths of one agent's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The crash-safe disk buffer (docs/disk-buffer.md).
    pub fn buffer(&self) -> PathBuf {
        self.root.join("buffer")
    }

    /// The next uplink sequence number, written durably.
    pub fn seq_file(&self) -> PathBuf {
        self.root.join("uplink.seq")
    }

    /// Batches set aside instead of being sent again.
    pub fn quarantine_file(&self) -> PathBuf {
        self.root.join("quarantine.jsonl")
    }

    fn lock_file(&self) -> PathBuf {
        self.root.join("agent.lock")
    }

    /// Takes the directory for this process, creating it if needed.
    pub fn lock(&self) -> Result<DataDirLock, LockError> {
        let path = self.lock_file();
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held { path }),
            Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

/// Held while an agent (or an offline tool) works on a data directory; dropping it
/// releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{path} is locked: an agent is running on this data directory (stop it first, or give another data_dir)"
    )]
    Held { path: PathBuf },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().join("agent"));
        let held = data.lock().expect("first lock");
        assert!(matches!(data.lock(), Err(LockError::Held { .. })));
        drop(held);
        data.lock().expect("free again");
    }
}
