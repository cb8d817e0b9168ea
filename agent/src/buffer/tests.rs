//! Unit tests of the disk buffer that need to know its file layout (damage made by hand).
//! The model-based property test and the SIGKILL test live in `agent/tests/buffer_*.rs`.

use super::*;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::time::Duration;

/// Segments of 256 bytes: with 40-byte payloads (48-byte frames) four records each.
fn small(fsync: FsyncPolicy) -> BufferConfig {
    BufferConfig {
        segment_max_bytes: 256,
        max_bytes: 1 << 20,
        max_record_bytes: 200,
        fsync,
    }
}

/// 40 bytes that say which record they are.
fn payload(n: u64) -> Vec<u8> {
    let mut p = format!("record-{n:08}-").into_bytes();
    p.resize(40, b'a' + (n % 26) as u8);
    p
}

fn ids(records: &[(RecordId, Vec<u8>)]) -> Vec<u64> {
    records.iter().map(|(id, _)| id.0).collect()
}

fn all(buf: &mut DiskBuffer) -> Vec<(RecordId, Vec<u8>)> {
    buf.peek(usize::MAX).expect("peek")
}

/// Segment files in the directory, oldest first, as (first id, path).
fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| {
            let e = e.expect("entry");
            let base = segment::parse_file_name(e.file_name().to_str()?)?;
            Some((base, e.path()))
        })
        .collect();
    v.sort();
    v
}

fn append_n(buf: &mut DiskBuffer, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        let out = buf.append(&payload(n)).expect("append");
        assert_eq!(out.id, RecordId(n));
        assert_eq!((out.dropped_records, out.dropped_bytes), (0, 0));
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut f, &mut b).expect("read");
    b[0] ^= 0x20;
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(&b).expect("write");
}

#[test]
fn buffer_round_trip_of_encoded_batches() {
    use ispvm_proto::codec::{from_bincode, to_bincode};
    use ispvm_proto::{Batch, EntityKey, Limits, MetricName, MetricSample};

    let dir = tempfile::tempdir().expect("tempdir");
    let batches: Vec<Batch> = (1..=3)
        .map(|seq| {
            let mut b = Batch::new("agent-1", "tenant-1", 1_000 + seq);
            b.samples.push(MetricSample {
                entity: EntityKey::Device(format!("r{seq}")),
                metric: MetricName::DeviceCpuPct,
                ts_ms: 1_700_000_000_000 + seq as i64,
                value: seq as f64 * 1.5,
            });
            b
        })
        .collect();
    {
        let mut buf = DiskBuffer::open(dir.path(), BufferConfig::default()).expect("open");
        assert!(buf.open_report().is_clean());
        for (i, b) in batches.iter().enumerate() {
            let out = buf.append(&to_bincode(b).expect("encode")).expect("append");
            assert_eq!(out.id, RecordId(i as u64 + 1));
        }
        assert_eq!(buf.len(), 3);
        // Always: each append flushed before returning.
        assert!(buf.stats().syncs >= 3);
        assert!(!buf.needs_sync());
    }
    let mut buf = DiskBuffer::open(dir.path(), BufferConfig::default()).expect("reopen");
    assert!(buf.open_report().is_clean());
    assert_eq!(buf.open_report().records, 3);
    let replayed: Vec<Batch> = all(&mut buf)
        .iter()
        .map(|(_, bytes)| from_bincode(bytes, &Limits::default()).expect("decode"))
        .collect();
    assert_eq!(replayed, batches);
}

#[test]
fn buffer_order_across_segment_rollover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=50);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 13, "4 records per segment");
    for (k, (base, path)) in files.iter().enumerate() {
        assert_eq!(*base, 1 + 4 * k as u64, "segment named by its first id");
        assert!(fs::metadata(path).expect("stat").len() <= 256);
    }
    let got = all(&mut buf);
    assert_eq!(ids(&got), (1..=50).collect::<Vec<_>>());
    for (id, p) in &got {
        assert_eq!(p, &payload(id.0));
    }
    // Reading in pieces, continuing from where the last piece ended.
    let mut after = None;
    let mut pieces = Vec::new();
    loop {
        let piece = buf.peek_after(after, 7, usize::MAX).expect("peek");
        let Some((last, _)) = piece.last() else { break };
        after = Some(*last);
        pieces.extend(piece);
    }
    assert_eq!(pieces, got);
    // A byte limit: whole records only, but always at least one.
    assert_eq!(buf.peek_after(None, 10, 100).expect("peek").len(), 2);
    assert_eq!(buf.peek_after(None, 10, 1).expect("peek").len(), 1);
    drop(buf);
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert!(buf.open_report().is_clean());
    assert_eq!(all(&mut buf), got);
}

#[test]
fn buffer_ack_removes_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("open");
    append_n(&mut buf, 1..=50);
    let bytes_before = buf.bytes();
    assert_eq!(buf.ack(RecordId(30)).expect("ack"), 30);
    assert_eq!(buf.len(), 20);
    assert_eq!(buf.acked_upto(), Some(RecordId(30)));
    // Records 29..=32 share a segment: it stays, the seven before it are gone.
    assert_eq!(segment_files(dir.path())[0].0, 29);
    assert_eq!(segment_files(dir.path()).len(), 6);
    assert!(buf.bytes() < bytes_before);
    assert_eq!(ids(&buf.peek(3).expect("peek")), vec![31, 32, 33]);
    // Acking again or lower changes nothing.
    assert_eq!(buf.ack(RecordId(30)).expect("ack"), 0);
    assert_eq!(buf.ack(RecordId(2)).expect("ack"), 0);
    drop(buf);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    assert!(buf.open_report().is_clean());
    assert_eq!(buf.len(), 20);
    assert_eq!(ids(&all(&mut buf)), (31..=50).collect::<Vec<_>>());
    assert_eq!(buf.ack(RecordId(50)).expect("ack"), 20);
    assert!(buf.is_empty());
    // Only the active segment is left.
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(buf);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    assert!(buf.is_empty());
    assert!(all(&mut buf).is_empty());
    assert_eq!(buf.append(b"next").expect("append").id, RecordId(51));
}

#[test]
fn buffer_torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("open");
    append_n(&mut buf, 1..=3);
    drop(buf);
    let (_, path) = segment_files(dir.path()).pop().expect("segment");
    let good_len = fs::metadata(&path).expect("stat").len();
    // Half a frame, as a crash in the middle of an append leaves it: the header says 100
    // bytes, only 10 made it.
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&100u32.to_le_bytes()).expect("write");
    f.write_all(&0xdead_beef_u32.to_le_bytes()).expect("write");
    f.write_all(&[7u8; 10]).expect("write");
    drop(f);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    let report = *buf.open_report();
    assert_eq!(report.truncated_bytes, 18);
    assert_eq!(report.corrupt_records, 0, "a torn tail is not corruption");
    assert_eq!(report.dropped_segments, 0);
    assert!(!report.found_corruption());
    assert_eq!(report.records, 3);
    assert_eq!(fs::metadata(&path).expect("stat").len(), good_len);
    assert_eq!(ids(&all(&mut buf)), vec![1, 2, 3]);
    assert_eq!(buf.append(&payload(4)).expect("append").id, RecordId(4));
    drop(buf);

    // Only part of a frame header.
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&[1, 0, 0]).expect("write");
    drop(f);
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    assert_eq!(buf.open_report().truncated_bytes, 3);
    assert_eq!(buf.open_report().corrupt_records, 0);
    let got = all(&mut buf);
    assert_eq!(ids(&got), vec![1, 2, 3, 4]);
    assert_eq!(got[3].1, payload(4));
    drop(buf);
    let buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    assert!(buf.open_report().is_clean());
}

#[test]
fn buffer_zero_filled_tail_is_not_an_empty_record() {
    // What a file system may show after a power loss: the size grew, the data never came.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=2);
    drop(buf);
    let (_, path) = segment_files(dir.path()).pop().expect("segment");
    let mut f = OpenOptions::new().append(true).open(&path).expect("open");
    f.write_all(&[0u8; 48]).expect("write");
    drop(f);
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert_eq!(buf.open_report().truncated_bytes, 48);
    assert_eq!(ids(&all(&mut buf)), vec![1, 2]);
}

#[test]
fn buffer_bit_flip_found_on_open_is_never_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=20);
    drop(buf);
    // Segment 5..=8: record 6 is the second frame; flip a byte of its payload.
    let (base, path) = segment_files(dir.path())[1].clone();
    assert_eq!(base, 5);
    flip_byte(&path, SEGMENT_HEADER_LEN + 48 + RECORD_HEADER_LEN + 5);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    let report = *buf.open_report();
    assert_eq!(report.corrupt_records, 1);
    assert_eq!(report.truncated_bytes, 3 * 48, "records 6, 7 and 8 cut off");
    assert!(report.found_corruption());
    let got = all(&mut buf);
    let expected: Vec<u64> = (1..=5).chain(9..=20).collect();
    assert_eq!(ids(&got), expected);
    for (id, p) in &got {
        assert_eq!(p, &payload(id.0));
    }
    assert_eq!(buf.stats().corrupt_records, 1);
    // Ids keep growing after the gap.
    assert_eq!(buf.append(&payload(21)).expect("append").id, RecordId(21));
    drop(buf);
    let buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert!(
        buf.open_report().is_clean(),
        "the damage was cut off the file"
    );
    assert_eq!(buf.len(), 18);
}

#[test]
fn buffer_bit_flip_in_length_and_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=20);
    drop(buf);
    let files = segment_files(dir.path());
    // Length field of record 10 (second frame of segment 9..=12).
    flip_byte(&files[2].1, SEGMENT_HEADER_LEN + 48 + 1);
    // Header of segment 13..=16.
    flip_byte(&files[3].1, 3);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    let report = *buf.open_report();
    assert_eq!(report.corrupt_records, 1);
    assert_eq!(report.dropped_segments, 1);
    let expected: Vec<u64> = (1..=9).chain(17..=20).collect();
    assert_eq!(ids(&all(&mut buf)), expected);
    assert_eq!(segment_files(dir.path()).len(), 4);
}

#[test]
fn buffer_bit_flip_found_while_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=19);
    let files = segment_files(dir.path());
    // Damage appearing under a running buffer: record 6 (old segment) and record 18 (the
    // active segment 17..=19).
    flip_byte(&files[1].1, SEGMENT_HEADER_LEN + 48 + RECORD_HEADER_LEN + 5);
    flip_byte(&files[4].1, SEGMENT_HEADER_LEN + 48 + RECORD_HEADER_LEN + 5);

    let got = all(&mut buf);
    let expected: Vec<u64> = (1..=5).chain(9..=17).collect();
    assert_eq!(ids(&got), expected);
    let stats = buf.stats();
    assert_eq!(stats.corrupt_records, 2);
    assert_eq!(stats.truncated_bytes, 3 * 48 + 2 * 48);
    assert_eq!(stats.records, 14);
    // Ids 18 and 19 were handed out: never reused.
    assert_eq!(buf.append(&payload(20)).expect("append").id, RecordId(20));
    assert_eq!(buf.ack(RecordId(9)).expect("ack"), 6);
    drop(buf);

    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert!(buf.open_report().is_clean());
    let expected: Vec<u64> = (10..=17).chain(20..=20).collect();
    assert_eq!(ids(&all(&mut buf)), expected);
}

#[test]
fn buffer_size_cap_drops_oldest_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BufferConfig {
        max_bytes: 1024,
        ..small(FsyncPolicy::Never)
    };
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("open");
    append_n(&mut buf, 1..=10);
    assert_eq!(buf.ack(RecordId(3)).expect("ack"), 3);
    let (mut dropped, mut dropped_bytes) = (0, 0);
    let mut first_drop = None;
    for n in 11..=60 {
        let out = buf.append(&payload(n)).expect("append");
        assert_eq!(out.id, RecordId(n));
        assert!(buf.bytes() <= 1024, "{} bytes on disk", buf.bytes());
        if out.dropped_records > 0 && first_drop.is_none() {
            first_drop = Some(out);
        }
        dropped += out.dropped_records;
        dropped_bytes += out.dropped_bytes;
    }
    // The first segment held 1..=4 with 1..=3 delivered: only record 4 was lost.
    let first = first_drop.expect("the cap was reached");
    assert_eq!((first.dropped_records, first.dropped_bytes), (1, 48));
    assert_eq!(dropped_bytes, dropped * 48);
    let stats = buf.stats();
    assert_eq!(
        (stats.overflow_records, stats.overflow_bytes),
        (dropped, dropped_bytes)
    );
    let got = ids(&all(&mut buf));
    assert_eq!(got.len() as u64 + dropped + 3, 60);
    assert_eq!(got.last(), Some(&60));
    assert_eq!(
        got,
        (61 - got.len() as u64..=60).collect::<Vec<_>>(),
        "the newest are kept"
    );
    drop(buf);
    let mut buf = DiskBuffer::open(dir.path(), config).expect("reopen");
    assert!(buf.open_report().is_clean());
    assert_eq!(ids(&all(&mut buf)), got);
}

#[test]
fn buffer_oversized_record_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    let err = buf.append(&[0u8; 201]).expect_err("too large");
    assert!(
        matches!(
            err,
            BufferError::RecordTooLarge {
                size: 201,
                max: 200
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("201"));
    assert_eq!(buf.append(&[1u8; 200]).expect("append").id, RecordId(1));
    assert_eq!(buf.append(b"").expect("empty record").id, RecordId(2));
    let got = all(&mut buf);
    assert_eq!(got[0].1.len(), 200);
    assert!(got[1].1.is_empty());
}

#[test]
fn buffer_reopen_continues_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small(FsyncPolicy::Always);
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("open");
    append_n(&mut buf, 1..=6);
    buf.ack(RecordId(6)).expect("ack");
    drop(buf);
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("reopen");
    assert_eq!(buf.next_id(), RecordId(7));
    append_n(&mut buf, 7..=9);
    drop(buf);

    // Segments lost, ack state kept: ids continue after what was acknowledged.
    for (_, path) in segment_files(dir.path()) {
        fs::remove_file(path).expect("remove");
    }
    let buf = DiskBuffer::open(dir.path(), config.clone()).expect("reopen");
    assert!(buf.is_empty());
    assert_eq!(buf.next_id(), RecordId(7));
    drop(buf);

    // The ack state ahead of the segments (a power loss under `Never` can do that).
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("reopen");
    append_n(&mut buf, 7..=8);
    drop(buf);
    state::store(dir.path(), 20, true).expect("store");
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("reopen");
    assert!(buf.is_empty());
    assert_eq!(buf.append(b"x").expect("append").id, RecordId(21));
    assert_eq!(ids(&all(&mut buf)), vec![21]);
}

#[test]
fn buffer_ack_beyond_end_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    assert!(matches!(
        buf.ack(RecordId(1)),
        Err(BufferError::AckBeyondEnd { upto: 1, newest: 0 })
    ));
    append_n(&mut buf, 1..=2);
    assert!(matches!(
        buf.ack(RecordId(3)),
        Err(BufferError::AckBeyondEnd { upto: 3, newest: 2 })
    ));
    assert_eq!(buf.ack(RecordId(0)).expect("ack 0"), 0);
    assert_eq!(buf.len(), 2);
}

#[test]
fn buffer_damaged_ack_state_replays_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("open");
    append_n(&mut buf, 1..=5);
    buf.ack(RecordId(3)).expect("ack");
    drop(buf);
    flip_byte(&dir.path().join(state::STATE_FILE), 14);
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Always)).expect("reopen");
    assert!(buf.open_report().ack_state_reset);
    // Records 1..=3 shared the segment with 4: they come back (the server drops them).
    assert_eq!(ids(&all(&mut buf)), vec![1, 2, 3, 4, 5]);
}

#[test]
fn buffer_bad_segments_and_stray_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("open");
    append_n(&mut buf, 1..=8);
    drop(buf);
    // A crash right after creating the next segment (empty file), a leftover temporary
    // state file, and files that are none of the buffer's business.
    fs::write(dir.path().join(segment::file_name(9)), b"").expect("write");
    fs::write(dir.path().join(state::STATE_TMP), b"junk").expect("write");
    fs::write(dir.path().join("notes.txt"), b"keep me").expect("write");
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert!(!buf.open_report().found_corruption());
    assert!(!dir.path().join(state::STATE_TMP).exists());
    assert!(dir.path().join("notes.txt").exists());
    assert_eq!(buf.append(&payload(9)).expect("append").id, RecordId(9));
    assert_eq!(ids(&all(&mut buf)), (1..=9).collect::<Vec<_>>());
    drop(buf);

    // A header cut short in the newest segment: torn creation, not corruption.
    let last = segment_files(dir.path()).pop().expect("segment").1;
    let f = OpenOptions::new().write(true).open(&last).expect("open");
    f.set_len(10).expect("truncate");
    drop(f);
    let mut buf = DiskBuffer::open(dir.path(), small(FsyncPolicy::Never)).expect("reopen");
    assert_eq!(buf.open_report().truncated_bytes, 10);
    assert!(!buf.open_report().found_corruption());
    assert_eq!(ids(&all(&mut buf)), (1..=8).collect::<Vec<_>>());
    assert_eq!(buf.append(b"x").expect("append").id, RecordId(9));
}

#[test]
fn buffer_interval_policy_flushes_on_sync_and_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small(FsyncPolicy::Interval(Duration::from_secs(3600)));
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("open");
    append_n(&mut buf, 1..=3);
    assert!(buf.needs_sync());
    let syncs = buf.stats().syncs;
    buf.sync().expect("sync");
    assert!(!buf.needs_sync());
    assert!(buf.stats().syncs > syncs);
    buf.ack(RecordId(2)).expect("ack");
    assert!(
        buf.needs_sync(),
        "the ack position waits for the next flush"
    );
    drop(buf);
    let mut buf = DiskBuffer::open(dir.path(), config.clone()).expect("reopen");
    assert_eq!(buf.acked_upto(), Some(RecordId(2)));
    assert_eq!(ids(&all(&mut buf)), vec![3]);
    buf.close().expect("close");

    let mut buf =
        DiskBuffer::open(dir.path(), small(FsyncPolicy::Interval(Duration::ZERO))).expect("reopen");
    buf.append(b"x").expect("append");
    assert!(!buf.needs_sync(), "a zero interval flushes every time");
}

#[test]
fn buffer_can_move_to_its_own_thread() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<DiskBuffer>();
    send_and_sync::<BufferError>();
}

#[test]
fn buffer_config_is_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in [
        BufferConfig {
            segment_max_bytes: 100,
            max_record_bytes: 100,
            ..BufferConfig::default()
        },
        BufferConfig {
            max_bytes: 1 << 20,
            ..BufferConfig::default()
        },
    ] {
        assert!(matches!(
            DiskBuffer::open(dir.path(), bad),
            Err(BufferError::Config(_))
        ));
    }
    BufferConfig::default()
        .validate()
        .expect("defaults are valid");
}
