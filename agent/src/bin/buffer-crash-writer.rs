//! Test tool for the disk buffer, not part of the agent: appends numbered records to a
//! [`DiskBuffer`] as fast as it can until it is killed. `agent/tests/buffer_crash.rs` runs
//! it and kills it with SIGKILL at random moments.
//!
//! Usage: `buffer-crash-writer DIR RUN [always|never|interval-MS]`
//!
//! Prints `# open TRUNCATED_BYTES CORRUPT_RECORDS DROPPED_SEGMENTS` once the buffer is open,
//! then `ID RUN COUNTER` for every record, each line flushed only after `append` returned:
//! a printed id is one the buffer acknowledged as stored. Record `COUNTER` of run `RUN` has
//! the payload [`payload`] computes; the test recomputes it to check what is replayed.

use ispvm_agent::buffer::{BufferConfig, DiskBuffer, FsyncPolicy};
use std::io::Write;
use std::time::Duration;

/// Payload of record `counter` of run `run`: the two numbers, then a length and filler
/// that follow from them. Every eighth record is large (up to 1 MiB) so that a kill often
/// lands in the middle of a write. The test has a copy of this function.
fn payload(run: u32, counter: u64) -> Vec<u8> {
    let seed = splitmix((u64::from(run) << 40) ^ counter);
    let len = if counter % 8 == 7 {
        (seed % (1 << 20)) as usize
    } else {
        (seed % 2048) as usize
    };
    let start = ((seed >> 24) % (1 << 20)) as usize;
    let mut p = Vec::with_capacity(12 + len);
    p.extend_from_slice(&run.to_le_bytes());
    p.extend_from_slice(&counter.to_le_bytes());
    p.extend_from_slice(&noise()[start..start + len]);
    p
}

/// 2 MiB of fixed pseudo-random bytes, made once: payloads are slices of it, so making a
/// payload costs a copy and the writer spends its time in the buffer, where kills should land.
fn noise() -> &'static [u8] {
    static NOISE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    NOISE.get_or_init(|| {
        (0..(2u64 << 20) / 8)
            .flat_map(|i| splitmix(i).to_le_bytes())
            .collect()
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The buffer configuration of the test: small segments so kills also hit rollovers.
fn config(fsync: FsyncPolicy) -> BufferConfig {
    BufferConfig {
        segment_max_bytes: 4 << 20,
        max_bytes: 1 << 30,
        max_record_bytes: 1 << 20,
        fsync,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(run)) = (args.get(1), args.get(2)) else {
        return Err("usage: buffer-crash-writer DIR RUN [always|never|interval-MS]".into());
    };
    let run: u32 = run.parse()?;
    let fsync = match args.get(3).map(String::as_str) {
        None | Some("always") => FsyncPolicy::Always,
        Some("never") => FsyncPolicy::Never,
        Some(other) => match other.strip_prefix("interval-") {
            Some(ms) => FsyncPolicy::Interval(Duration::from_millis(ms.parse()?)),
            None => return Err(format!("unknown fsync policy {other}").into()),
        },
    };
    let mut buffer = DiskBuffer::open(dir, config(fsync))?;
    let report = *buffer.open_report();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# open {} {} {}",
        report.truncated_bytes, report.corrupt_records, report.dropped_segments
    )?;
    out.flush()?;
    for counter in 0u64.. {
        let outcome = buffer.append(&payload(run, counter))?;
        writeln!(out, "{} {run} {counter}", outcome.id)?;
        out.flush()?;
    }
    Ok(())
}
