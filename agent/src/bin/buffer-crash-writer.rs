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

#[path = "../../tests/support/crash_payload.rs"]
mod crash_payload;
use crash_payload::payload;

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
