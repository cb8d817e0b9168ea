//! The ack state file, `ack.state`: the highest record id the server has acknowledged.
//!
//! Layout (24 bytes): `magic "ISPVMACK" | format version u32 LE | acked id u64 LE | crc u32 LE`.
//! It is replaced atomically (write `ack.state.tmp`, flush, rename over, flush the
//! directory), so after a crash it holds either the old or the new position, never a mix.
//! Losing it costs only duplicates: records already delivered are replayed and the server
//! drops them.

use super::crc::crc32c;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

pub(crate) const STATE_FILE: &str = "ack.state";
pub(crate) const STATE_TMP: &str = "ack.state.tmp";
const MAGIC: &[u8; 8] = b"ISPVMACK";
const FORMAT_VERSION: u32 = 1;
const LEN: usize = 24;

/// What the state file said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// Highest acknowledged id; 0 when nothing was acknowledged (ids start at 1).
    pub acked: u64,
    /// The file existed but could not be understood, so `acked` fell back to 0.
    pub reset: bool,
}

fn encode(acked: u64) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&acked.to_le_bytes());
    let crc = crc32c(&b[..20]);
    b[20..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<u64> {
    if b.len() != LEN || &b[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes([b[20], b[21], b[22], b[23]]);
    let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    if crc32c(&b[..20]) != crc || version != FORMAT_VERSION {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[12..20]);
    Some(u64::from_le_bytes(id))
}

/// Reads the state file of `dir`. A missing file is a fresh buffer; a damaged one is
/// reported and treated as "nothing acknowledged" rather than refusing to start.
pub(crate) fn load(dir: &Path) -> io::Result<Loaded> {
    let file = match File::open(dir.join(STATE_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Loaded {
                acked: 0,
                reset: false,
            });
        }
        Err(e) => return Err(e),
    };
    let mut raw = Vec::with_capacity(LEN);
    // Read one byte more than a valid file has, so a longer file is seen as damaged.
    file.take(LEN as u64 + 1).read_to_end(&mut raw)?;
    Ok(match decode(&raw) {
        Some(acked) => Loaded {
            acked,
            reset: false,
        },
        None => Loaded {
            acked: 0,
            reset: true,
        },
    })
}

/// Replaces the state file with `acked`. With `durable`, the new content and the rename
/// are flushed before returning; without, a power loss may bring back the old position.
pub(crate) fn store(dir: &Path, acked: u64, durable: bool) -> io::Result<()> {
    let tmp = dir.join(STATE_TMP);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(&encode(acked))?;
    if durable {
        file.sync_all()?;
    }
    drop(file);
    fs::rename(&tmp, dir.join(STATE_FILE))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Flushes a directory, so that files created, renamed or removed in it stay so after a
/// power loss (on Linux a file's own fsync does not cover its directory entry).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_state_round_trip_and_damage() {
        assert_eq!(decode(&encode(0)), Some(0));
        assert_eq!(decode(&encode(u64::MAX)), Some(u64::MAX));
        let mut bad = encode(5);
        bad[13] ^= 0x10;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&encode(5)[..23]), None);
    }
}
