//! Errors of the disk buffer.

use std::io;
use std::path::PathBuf;

/// Why a buffer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The limits in [`BufferConfig`](super::BufferConfig) do not fit together.
    #[error("invalid disk buffer configuration: {0}")]
    Config(String),
    /// `append` of a record above `max_record_bytes`; nothing was written and the buffer
    /// stays usable.
    #[error("record of {size} bytes exceeds the disk buffer's limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    /// `ack` of an id that was never handed out: a bug in the caller.
    #[error("ack up to record {upto}, but the newest record is {newest}")]
    AckBeyondEnd { upto: u64, newest: u64 },
    /// All 2^64 - 1 record ids are used up (unreachable in practice; checked, not assumed).
    #[error("disk buffer record ids are exhausted")]
    IdsExhausted,
    /// A file system operation failed.
    #[error("disk buffer: cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An earlier failure left the files in a state this handle can no longer vouch for
    /// (a write that could not be rolled back, a failed fsync whose data the kernel may
    /// have dropped). Open the buffer again: opening checks every record on disk.
    #[error("disk buffer must be reopened after an earlier failure: {0}")]
    Broken(String),
}

impl BufferError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| BufferError::Io { op, path, source }
    }
}
