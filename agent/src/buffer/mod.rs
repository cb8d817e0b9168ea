//! The crash-safe disk buffer: encoded batches wait here, in order, until the server has
//! acknowledged them.
//!
//! The uplink appends every batch it cuts (bincode bytes) before sending it, sends what
//! [`DiskBuffer::peek`] returns, and calls [`DiskBuffer::ack`] when the server's `Ack`
//! arrives. A crash, a restart or a long outage therefore loses nothing that was appended:
//! on the next start the undelivered records are replayed in the order they were appended.
//! A record may be replayed after it was delivered (the ack did not reach the disk before a
//! crash); that is harmless because the server deduplicates batches by `seq` and items by
//! their ids.
//!
//! The buffer is a segmented append-only log in one directory (format in
//! `docs/disk-buffer.md`):
//! - `<first id, 20 digits>.log` segment files, each a checked header followed by frames
//!   `length u32 | CRC-32C u32 | payload`; only the newest segment is written to;
//! - `ack.state`, the highest acknowledged id, replaced atomically.
//!
//! Opening checks every frame; a torn tail (a crash in the middle of an append) is cut off,
//! damage elsewhere ends its segment at the last good record, and both are reported in an
//! [`OpenReport`]: a damaged record is never replayed. Space is reclaimed a whole segment at
//! a time, when all its records are acknowledged or, under the size cap, when it is the
//! oldest (see [`AppendOutcome`]).
//!
//! Everything is synchronous `std::fs` I/O: the owner runs it on a dedicated thread or in
//! `spawn_blocking`. One directory must be opened by one `DiskBuffer` at a time; the buffer
//! does not lock it.

mod config;
mod crc;
mod error;
mod record;
mod segment;
mod state;
mod types;

#[cfg(test)]
mod tests;

pub use config::{BufferConfig, FsyncPolicy};
pub use error::BufferError;
pub use record::RECORD_HEADER_LEN;
pub use segment::SEGMENT_HEADER_LEN;
pub use types::{AppendOutcome, BufferStats, OpenReport, RecordId};

use segment::{Scan, SeekError, Segment, Tail};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Capacity of the frame buffer kept between appends; larger ones are freed after use.
const FRAME_BUF_KEEP: usize = 1 << 20;

/// Where record `id` starts: at `offset` in the segment whose first id is `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    base: u64,
    id: u64,
    offset: u64,
}

/// What has been written but not yet flushed.
#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    /// Frames (or a new header) in the active segment.
    data: bool,
    /// A segment file created in the directory.
    dir: bool,
    /// An ack position not yet in the state file (only under `FsyncPolicy::Interval`).
    ack: bool,
}

impl Pending {
    fn any(&self) -> bool {
        self.data || self.dir || self.ack
    }
}

/// A crash-safe, size-capped, ordered store of records awaiting delivery. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    config: BufferConfig,
    /// Oldest first; never empty; the last one is the active segment.
    segments: VecDeque<Segment>,
    /// Append handle of the active segment.
    active: File,
    /// The oldest undelivered record (or the end of the front segment when none is left
    /// in it); always in the front segment.
    cursor: Position,
    /// Where the last read stopped, so a read or ack that continues from there does not
    /// walk the segment from its start again.
    read_hint: Option<Position>,
    next_id: u64,
    /// Highest acknowledged id (0: none).
    acked: u64,
    disk_bytes: u64,
    pending: Pending,
    last_sync: Instant,
    broken: Option<String>,
    /// Reused for encoding frames, so each append is a single `write`.
    frame_buf: Vec<u8>,
    counters: BufferStats,
    report: OpenReport,
}

impl DiskBuffer {
    /// Opens (creating if needed) the buffer in `dir`, checking and repairing what a crash
    /// may have left: see [`DiskBuffer::open_report`] for what was found.
    ///
    /// Reads every segment once to verify the checksums, so opening a full buffer reads
    /// up to `max_bytes`; that is the price of never replaying a damaged record.
    pub fn open(dir: impl AsRef<Path>, config: BufferConfig) -> Result<Self, BufferError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(BufferError::io("create directory", &dir))?;
        let tmp = dir.join(state::STATE_TMP);
        segment::remove(&tmp).map_err(BufferError::io("remove", &tmp))?;
        let loaded =
            state::load(&dir).map_err(BufferError::io("read", dir.join(state::STATE_FILE)))?;
        let mut report = OpenReport {
            ack_state_reset: loaded.reset,
            ..OpenReport::default()
        };
        if loaded.reset {
            tracing::warn!(dir = %dir.display(), "disk buffer ack state damaged; delivered records may be replayed");
        }
        let acked = loaded.acked;

        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(BufferError::io("list", &dir))? {
            let entry = entry.map_err(BufferError::io("list", &dir))?;
            if let Some(base) = entry
                .file_name()
                .to_str()
                .and_then(segment::parse_file_name)
            {
                found.push((base, entry.path()));
            }
        }
        found.sort_by_key(|(base, _)| *base);

        let mut scanned = VecDeque::with_capacity(found.len());
        let mut dir_changed = false;
        let mut buf = Vec::new();
        for (k, (base, path)) in found.iter().enumerate() {
            let is_last = k + 1 == found.len();
            let max_records = found.get(k + 1).map(|(next, _)| next - base);
            let scan = segment::scan(path, *base, max_records, &mut buf)
                .map_err(BufferError::io("check segment", path))?;
            match scan {
                Scan::BadHeader { file_len } => {
                    if is_last && file_len <= SEGMENT_HEADER_LEN {
                        // A crash while the newest segment was being created.
                        report.truncated_bytes += file_len;
                    } else {
                        report.dropped_segments += 1;
                        tracing::error!(segment = %path.display(), bytes = file_len,
                            "disk buffer segment header damaged; segment dropped");
                    }
                    segment::remove(path).map_err(BufferError::io("remove", path))?;
                    dir_changed = true;
                }
                Scan::Valid {
                    segment,
                    file_len,
                    tail,
                } => {
                    let cut = file_len - segment.bytes;
                    report.truncated_bytes += cut;
                    match tail {
                        Tail::Clean => {}
                        Tail::Incomplete if is_last => {
                            tracing::info!(segment = %path.display(), bytes = cut,
                                "disk buffer: torn tail of an interrupted append cut off");
                        }
                        Tail::Incomplete | Tail::Corrupt => {
                            report.corrupt_records += 1;
                            tracing::error!(segment = %path.display(), bytes = cut,
                                good_records = segment.records,
                                "disk buffer segment damaged; records from the damage on dropped");
                        }
                    }
                    scanned.push_back(segment);
                }
            }
        }

        // Ids never go back: not below what the segments hold, nor below what was acked
        // (the segments holding acked records may be gone).
        let next_id = scanned
            .back()
            .map_or(1, Segment::end)
            .max(acked.saturating_add(1))
            .max(1);
        let count = scanned.len();
        let mut segments = VecDeque::with_capacity(count + 1);
        for (k, seg) in scanned.into_iter().enumerate() {
            let can_be_active = k + 1 == count && seg.end() == next_id;
            let undelivered = seg.records > 0 && seg.end() > acked.saturating_add(1);
            if can_be_active || undelivered {
                segments.push_back(seg);
            } else {
                segment::remove(&seg.path).map_err(BufferError::io("remove", &seg.path))?;
                dir_changed = true;
            }
        }
        let durable = config.fsync != FsyncPolicy::Never;
        let active = match segments.back() {
            Some(seg) if seg.end() == next_id => segment::open_append(&seg.path)
                .map_err(BufferError::io("open segment", &seg.path))?,
            _ => {
                let path = dir.join(segment::file_name(next_id));
                let (file, seg) = segment::create(&dir, next_id)
                    .map_err(BufferError::io("create segment", &path))?;
                if durable {
                    file.sync_data().map_err(BufferError::io("sync", &path))?;
                }
                segments.push_back(seg);
                dir_changed = true;
                file
            }
        };
        if dir_changed && durable {
            state::sync_dir(&dir).map_err(BufferError::io("sync directory", &dir))?;
        }

        let front = &segments[0];
        let cursor = Position {
            base: front.base,
            id: front.base,
            offset: SEGMENT_HEADER_LEN,
        };
        let disk_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut buffer = DiskBuffer {
            dir,
            config,
            segments,
            active,
            cursor,
            read_hint: None,
            next_id,
            acked,
            disk_bytes,
            pending: Pending::default(),
            last_sync: Instant::now(),
            broken: None,
            frame_buf: Vec::new(),
            counters: BufferStats {
                corrupt_records: report.corrupt_records,
                truncated_bytes: report.truncated_bytes,
                dropped_segments: report.dropped_segments,
                ..BufferStats::default()
            },
            report,
        };
        buffer.advance_cursor(acked.saturating_add(1))?;
        // Damage met while positioning the cursor is counted in the stats; fold it in.
        buffer.report.corrupt_records = buffer.counters.corrupt_records;
        buffer.report.truncated_bytes = buffer.counters.truncated_bytes;
        buffer.report.records = buffer.len();
        Ok(buffer)
    }

    /// Appends one record and returns its id, after which it is in the buffer as durably
    /// as the [`FsyncPolicy`] promises.
    ///
    /// When the size cap requires it, the oldest segments are deleted first, delivered or
    /// not; the outcome counts the undelivered records lost so the caller can raise a
    /// `buffer_overflow` event. A record above `max_record_bytes` is refused and nothing
    /// is written.
    pub fn append(&mut self, record: &[u8]) -> Result<AppendOutcome, BufferError> {
        self.check_usable()?;
        if record.len() > self.config.max_record_bytes {
            return Err(BufferError::RecordTooLarge {
                size: record.len(),
                max: self.config.max_record_bytes,
            });
        }
        let id = self.next_id;
        let next = id.checked_add(1).ok_or(BufferError::IdsExhausted)?;
        let frame_len = RECORD_HEADER_LEN + record.len() as u64;
        let mut outcome = AppendOutcome {
            id: RecordId(id),
            dropped_records: 0,
            dropped_bytes: 0,
        };
        let active = self.active_segment();
        if active.records > 0 && active.bytes + frame_len > self.config.segment_max_bytes {
            self.roll()?;
        }
        while self.disk_bytes + frame_len > self.config.max_bytes {
            if self.segments.len() > 1 {
                self.drop_oldest(&mut outcome)?;
            } else if self.active_segment().records > 0 {
                self.roll()?;
            } else {
                // Cannot happen with a validated config: an empty segment plus the largest
                // record fit under the cap.
                break;
            }
        }

        record::encode_frame(record, &mut self.frame_buf);
        let before = self.active_segment().bytes;
        if let Err(source) = self.active.write_all(&self.frame_buf) {
            let path = self.active_segment().path.clone();
            // Take back whatever part of the frame reached the file (a full disk, say), so
            // the next append does not land behind garbage.
            if let Err(e) = self.active.set_len(before) {
                self.broken = Some(format!(
                    "cannot cut a failed append off {}: {e}",
                    path.display()
                ));
            }
            return Err(BufferError::Io {
                op: "append to",
                path,
                source,
            });
        }
        if self.frame_buf.capacity() > FRAME_BUF_KEEP {
            // A rare large batch should not pin megabytes for the life of the agent.
            self.frame_buf = Vec::new();
        }
        let last = self.segments.len() - 1;
        self.segments[last].records += 1;
        self.segments[last].bytes += frame_len;
        self.disk_bytes += frame_len;
        self.next_id = next;
        self.pending.data = true;
        self.counters.appended_records += 1;
        self.counters.appended_bytes += frame_len;
        match self.config.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Interval(every) => {
                if self.last_sync.elapsed() >= every {
                    self.sync()?;
                }
            }
            FsyncPolicy::Never => {}
        }
        Ok(outcome)
    }

    /// Up to `max` undelivered records, oldest first. Does not remove them: that is
    /// [`DiskBuffer::ack`]'s job once the server has confirmed them.
    ///
    /// Takes `&mut self` because every read checks the checksum again: damage that appeared
    /// after opening (a failing disk) is cut off and counted on the spot, so the caller
    /// neither receives garbage nor stalls on the same bad record forever.
    pub fn peek(&mut self, max: usize) -> Result<Vec<(RecordId, Vec<u8>)>, BufferError> {
        self.peek_after(None, max, usize::MAX)
    }

    /// Undelivered records with an id above `after` (all undelivered ones for `None`),
    /// oldest first: at most `max_records`, and no more than `max_bytes` of payload except
    /// that the first record is always returned whatever its size. Lets the uplink send
    /// the next records while earlier ones await their ack.
    pub fn peek_after(
        &mut self,
        after: Option<RecordId>,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<(RecordId, Vec<u8>)>, BufferError> {
        self.check_usable()?;
        let mut out: Vec<(RecordId, Vec<u8>)> = Vec::new();
        let mut id = after
            .map_or(0, |a| a.0.saturating_add(1))
            .max(self.cursor.id);
        let mut taken = 0usize;
        'segments: while out.len() < max_records {
            let idx = self.segments.partition_point(|s| s.end() <= id);
            let Some(seg) = self.segments.get(idx).cloned() else {
                break;
            };
            id = id.max(seg.base);
            let (from_id, from_offset) = self.best_start(idx, id);
            let mut reader = segment::open_read(&seg.path, from_offset)
                .map_err(BufferError::io("read", &seg.path))?;
            let mut offset = match segment::skip_to(&mut reader, &seg, from_id, from_offset, id) {
                Ok(offset) => offset,
                Err(SeekError::Io(e)) => return Err(BufferError::io("read", &seg.path)(e)),
                Err(SeekError::Damaged { id: bad, offset }) => {
                    self.quarantine(idx, bad, offset)?;
                    continue 'segments;
                }
            };
            let mut full = false;
            while id < seg.end() && out.len() < max_records {
                let header = record::read_header(&mut reader, seg.bytes - offset)
                    .map_err(BufferError::io("read", &seg.path))?;
                let record::HeaderRead::Frame(header) = header else {
                    self.quarantine(idx, id, offset)?;
                    continue 'segments;
                };
                if !out.is_empty() && taken.saturating_add(header.len as usize) > max_bytes {
                    full = true;
                    break;
                }
                let mut payload = Vec::new();
                let good = record::read_payload(&mut reader, header, &mut payload)
                    .map_err(BufferError::io("read", &seg.path))?;
                if !good {
                    self.quarantine(idx, id, offset)?;
                    continue 'segments;
                }
                taken += payload.len();
                out.push((RecordId(id), payload));
                id += 1;
                offset += header.frame_len();
            }
            self.read_hint = Some(Position {
                base: seg.base,
                id,
                offset,
            });
            if full {
                break;
            }
        }
        self.release_front()?;
        Ok(out)
    }

    /// Marks every record up to and including `upto` as delivered; returns how many
    /// undelivered records that released. Segments left with only delivered records are
    /// deleted. The position is stored in the state file (at once under
    /// [`FsyncPolicy::Always`] and `Never`, at the next flush under `Interval`) so a restart
    /// does not replay them.
    ///
    /// Acking an id at or below an earlier ack is a no-op; acking an id never handed out is
    /// an error.
    pub fn ack(&mut self, upto: RecordId) -> Result<u64, BufferError> {
        self.check_usable()?;
        let upto = upto.0;
        if upto >= self.next_id {
            return Err(BufferError::AckBeyondEnd {
                upto,
                newest: self.next_id - 1,
            });
        }
        if upto <= self.acked {
            return Ok(0);
        }
        let state_path = || self.dir.join(state::STATE_FILE);
        match self.config.fsync {
            FsyncPolicy::Always => {
                state::store(&self.dir, upto, true)
                    .map_err(BufferError::io("write", state_path()))?;
                self.counters.syncs += 2;
            }
            FsyncPolicy::Never => {
                state::store(&self.dir, upto, false)
                    .map_err(BufferError::io("write", state_path()))?;
            }
            FsyncPolicy::Interval(_) => self.pending.ack = true,
        }
        self.acked = upto;
        let before = self.len();
        self.advance_cursor(upto + 1)?;
        let released = before.saturating_sub(self.len());
        self.counters.acked_records += released;
        if let FsyncPolicy::Interval(every) = self.config.fsync
            && self.last_sync.elapsed() >= every
        {
            self.sync()?;
        }
        Ok(released)
    }

    /// Flushes everything written so far to stable storage, whatever the policy: the active
    /// segment, new directory entries and a pending ack position. Under
    /// [`FsyncPolicy::Interval`] the owner calls this from a timer.
    ///
    /// A failed fsync makes the buffer [`BufferError::Broken`]: Linux may have dropped the
    /// unwritten pages and report success on the next try, so only reopening (which
    /// checks the files) can tell what is really on disk.
    pub fn sync(&mut self) -> Result<(), BufferError> {
        self.check_usable()?;
        if self.pending.data {
            self.sync_active()?;
        }
        if self.pending.dir {
            if let Err(source) = state::sync_dir(&self.dir) {
                self.broken = Some(format!("fsync of {} failed: {source}", self.dir.display()));
                return Err(BufferError::Io {
                    op: "sync directory",
                    path: self.dir.clone(),
                    source,
                });
            }
            self.pending.dir = false;
            self.counters.syncs += 1;
        }
        if self.pending.ack {
            state::store(&self.dir, self.acked, true)
                .map_err(BufferError::io("write", self.dir.join(state::STATE_FILE)))?;
            self.pending.ack = false;
            self.counters.syncs += 2;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// True when something written is not yet flushed (a timer can skip [`Self::sync`]
    /// otherwise).
    pub fn needs_sync(&self) -> bool {
        self.pending.any()
    }

    /// Flushes everything ([`Self::sync`], whatever the policy) and closes the buffer.
    pub fn close(mut self) -> Result<(), BufferError> {
        if self.broken.is_some() {
            return Ok(());
        }
        self.sync()
    }

    /// Undelivered records.
    pub fn len(&self) -> u64 {
        let held: u64 = self.segments.iter().map(|s| s.records).sum();
        held - (self.cursor.id - self.segments[0].base)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of all segment files on disk (what the size cap limits).
    pub fn bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The id the next append will get.
    pub fn next_id(&self) -> RecordId {
        RecordId(self.next_id)
    }

    /// The highest acknowledged id, if any.
    pub fn acked_upto(&self) -> Option<RecordId> {
        (self.acked > 0).then_some(RecordId(self.acked))
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn config(&self) -> &BufferConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sizes and counters for `/metrics`.
    pub fn stats(&self) -> BufferStats {
        let frames: u64 = self
            .segments
            .iter()
            .map(|s| s.bytes - SEGMENT_HEADER_LEN)
            .sum();
        BufferStats {
            records: self.len(),
            record_bytes: frames - (self.cursor.offset - SEGMENT_HEADER_LEN),
            disk_bytes: self.disk_bytes,
            segments: self.segments.len() as u64,
            next_id: self.next_id,
            acked_upto: self.acked,
            ..self.counters
        }
    }

    fn check_usable(&self) -> Result<(), BufferError> {
        match &self.broken {
            Some(reason) => Err(BufferError::Broken(reason.clone())),
            None => Ok(()),
        }
    }

    fn active_segment(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    /// `fdatasync` of the active segment (it covers the file size too, which is what an
    /// append changes).
    fn sync_active(&mut self) -> Result<(), BufferError> {
        if let Err(source) = self.active.sync_data() {
            let path = self.active_segment().path.clone();
            self.broken = Some(format!("fsync of {} failed: {source}", path.display()));
            return Err(BufferError::Io {
                op: "sync",
                path,
                source,
            });
        }
        self.pending.data = false;
        self.counters.syncs += 1;
        Ok(())
    }

    /// Closes the active segment and starts a new one at `next_id`.
    fn roll(&mut self) -> Result<(), BufferError> {
        // Flush the outgoing segment now: later flushes only see the active one.
        if self.pending.data && self.config.fsync != FsyncPolicy::Never {
            self.sync_active()?;
        }
        let path = self.dir.join(segment::file_name(self.next_id));
        let (file, seg) = segment::create(&self.dir, self.next_id)
            .map_err(BufferError::io("create segment", &path))?;
        self.disk_bytes += seg.bytes;
        self.segments.push_back(seg);
        self.active = file;
        self.pending.data = true;
        self.pending.dir = true;
        Ok(())
    }

    /// Deletes the oldest segment to make room, counting its undelivered records.
    fn drop_oldest(&mut self, outcome: &mut AppendOutcome) -> Result<(), BufferError> {
        let front = &self.segments[0];
        let records = front.end() - self.cursor.id;
        let bytes = front.bytes - self.cursor.offset;
        segment::remove(&front.path).map_err(BufferError::io("remove", &front.path))?;
        if let Some(gone) = self.segments.pop_front() {
            self.disk_bytes -= gone.bytes;
            if records > 0 {
                tracing::warn!(segment = %gone.path.display(), records, bytes,
                    "disk buffer full: oldest undelivered records dropped");
            }
        }
        self.reset_cursor_to_front();
        outcome.dropped_records += records;
        outcome.dropped_bytes += bytes;
        self.counters.overflow_records += records;
        self.counters.overflow_bytes += bytes;
        Ok(())
    }

    fn reset_cursor_to_front(&mut self) {
        let front = &self.segments[0];
        self.cursor = Position {
            base: front.base,
            id: front.base,
            offset: SEGMENT_HEADER_LEN,
        };
    }

    /// Deletes front segments whose records are all delivered, keeping the active one.
    fn release_front(&mut self) -> Result<(), BufferError> {
        while self.segments.len() > 1 && self.cursor.id >= self.segments[0].end() {
            let path = self.segments[0].path.clone();
            segment::remove(&path).map_err(BufferError::io("remove", &path))?;
            if let Some(gone) = self.segments.pop_front() {
                self.disk_bytes -= gone.bytes;
            }
            self.reset_cursor_to_front();
        }
        Ok(())
    }

    /// The nearest known position at or before record `id` in segment `idx`: its start,
    /// the cursor, or where the last read stopped.
    fn best_start(&self, idx: usize, id: u64) -> (u64, u64) {
        let seg = &self.segments[idx];
        let mut best = (seg.base, SEGMENT_HEADER_LEN);
        let known = [Some(self.cursor), self.read_hint];
        for p in known.into_iter().flatten() {
            if p.base == seg.base && p.id <= id && p.id <= seg.end() && p.id >= best.0 {
                best = (p.id, p.offset);
            }
        }
        best
    }

    /// Moves the cursor to the first record with an id of at least `target`, deleting the
    /// segments it leaves behind.
    fn advance_cursor(&mut self, target: u64) -> Result<(), BufferError> {
        loop {
            self.release_front()?;
            if target <= self.cursor.id {
                return Ok(());
            }
            let front = self.segments[0].clone();
            if target >= front.end() {
                self.cursor = Position {
                    base: front.base,
                    id: front.end(),
                    offset: front.bytes,
                };
                if self.segments.len() > 1 {
                    continue;
                }
                return Ok(());
            }
            let (from_id, from_offset) = self.best_start(0, target);
            let mut reader = segment::open_read(&front.path, from_offset)
                .map_err(BufferError::io("read", &front.path))?;
            match segment::skip_to(&mut reader, &front, from_id, from_offset, target) {
                Ok(offset) => {
                    self.cursor = Position {
                        base: front.base,
                        id: target,
                        offset,
                    };
                    return Ok(());
                }
                Err(SeekError::Io(e)) => return Err(BufferError::io("read", &front.path)(e)),
                Err(SeekError::Damaged { id, offset }) => self.quarantine(0, id, offset)?,
            }
        }
    }

    /// The frame of record `id` at `offset` in segment `idx` is damaged (found after
    /// opening): cut the segment there, count it, and make sure no later id is reused.
    fn quarantine(&mut self, idx: usize, id: u64, offset: u64) -> Result<(), BufferError> {
        let is_active = idx + 1 == self.segments.len();
        let seg = &self.segments[idx];
        let path = seg.path.clone();
        let lost_records = seg.end() - id;
        let lost_bytes = seg.bytes - offset;
        tracing::error!(segment = %path.display(), record = id, lost_records, lost_bytes,
            "disk buffer record damaged on disk; rest of the segment dropped");
        // Cut the file too, so the damage is not met again after a restart. If that fails
        // the next open finds and cuts it; the in-memory bounds already exclude it.
        let cut = if is_active {
            self.active.set_len(offset)
        } else {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(offset))
        };
        if let Err(e) = cut {
            tracing::warn!(segment = %path.display(), error = %e, "cannot cut damaged segment");
        }
        let seg = &mut self.segments[idx];
        seg.records = id - seg.base;
        seg.bytes = offset;
        self.disk_bytes -= lost_bytes;
        self.counters.corrupt_records += 1;
        self.counters.truncated_bytes += lost_bytes;
        if is_active {
            // Ids up to next_id were handed out; new records go to a fresh segment so the
            // implicit numbering of the damaged one stays right.
            self.roll()?;
        }
        if self.segments[idx].records == 0 && idx + 1 < self.segments.len() {
            segment::remove(&path).map_err(BufferError::io("remove", &path))?;
            if let Some(gone) = self.segments.remove(idx) {
                self.disk_bytes -= gone.bytes;
            }
            if idx == 0 {
                self.reset_cursor_to_front();
            }
        }
        self.read_hint = None;
        Ok(())
    }
}

impl Drop for DiskBuffer {
    /// Flushes what the policy would have flushed later, so a clean shutdown under
    /// `Interval` loses nothing on a power cut that follows.
    fn drop(&mut self) {
        if self.broken.is_none()
            && self.pending.any()
            && self.config.fsync != FsyncPolicy::Never
            && let Err(e) = self.sync()
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "disk buffer flush on close failed");
        }
    }
}
