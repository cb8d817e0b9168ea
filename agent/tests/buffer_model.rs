//! Model-based property tests of the disk buffer: random sequences of append, ack, read and
//! reopen must replay exactly what a plain in-memory queue holds.

use ispvm_agent::buffer::{
    BufferConfig, BufferError, DiskBuffer, FsyncPolicy, RECORD_HEADER_LEN, RecordId,
};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    /// Ack the pending record at this position (modulo the number pending).
    Ack(usize),
    /// Ack an id that was never handed out.
    AckBeyond,
    Peek(usize),
    /// Read after the pending record at this position, at most this many records and bytes.
    PeekAfter(usize, usize, usize),
    Sync,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(Op::Append),
        3 => any::<usize>().prop_map(Op::Ack),
        1 => Just(Op::AckBeyond),
        2 => (0usize..6).prop_map(Op::Peek),
        2 => (any::<usize>(), 0usize..6, 0usize..400).prop_map(|(a, n, b)| Op::PeekAfter(a, n, b)),
        1 => Just(Op::Sync),
        2 => Just(Op::Reopen),
    ]
}

fn policy() -> impl Strategy<Value = FsyncPolicy> {
    prop_oneof![
        4 => Just(FsyncPolicy::Never),
        2 => (0u64..3).prop_map(|ms| FsyncPolicy::Interval(Duration::from_millis(ms))),
        1 => Just(FsyncPolicy::Always),
    ]
}

/// The reference: records not yet acknowledged (or dropped), oldest first.
#[derive(Default)]
struct Model {
    pending: VecDeque<(u64, Vec<u8>)>,
    next_id: u64,
}

fn frame(p: &[u8]) -> u64 {
    RECORD_HEADER_LEN + p.len() as u64
}

fn check_same(buf: &mut DiskBuffer, model: &Model) -> Result<(), TestCaseError> {
    let got = buf
        .peek(usize::MAX)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let want: Vec<(RecordId, Vec<u8>)> = model
        .pending
        .iter()
        .map(|(id, p)| (RecordId(*id), p.clone()))
        .collect();
    prop_assert_eq!(got, want);
    prop_assert_eq!(buf.len(), model.pending.len() as u64);
    let stats = buf.stats();
    prop_assert_eq!(stats.records, model.pending.len() as u64);
    prop_assert_eq!(
        stats.record_bytes,
        model.pending.iter().map(|(_, p)| frame(p)).sum::<u64>()
    );
    prop_assert!(buf.bytes() <= buf.config().max_bytes);
    Ok(())
}

/// Runs `ops` against a buffer and the model. With `overflow`, the size cap is small and
/// the model pops the records the buffer reports as dropped, which must be the oldest.
fn run(dir: &Path, config: BufferConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let fail = |e: BufferError| TestCaseError::fail(e.to_string());
    let mut buf = DiskBuffer::open(dir, config.clone()).map_err(fail)?;
    let mut model = Model {
        next_id: 1,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Append(p) => {
                let out = buf.append(&p).map_err(fail)?;
                // Ids are contiguous as long as nothing is damaged, across reopens too.
                prop_assert_eq!(out.id, RecordId(model.next_id));
                let mut bytes = 0;
                for _ in 0..out.dropped_records {
                    let dropped = model.pending.pop_front();
                    prop_assert!(dropped.is_some(), "dropped more than was pending");
                    bytes += dropped.map_or(0, |(_, p)| frame(&p));
                }
                prop_assert_eq!(out.dropped_bytes, bytes);
                model.pending.push_back((model.next_id, p));
                model.next_id += 1;
            }
            Op::Ack(k) => {
                if model.pending.is_empty() {
                    continue;
                }
                let upto = model.pending[k % model.pending.len()].0;
                let released = buf.ack(RecordId(upto)).map_err(fail)?;
                let before = model.pending.len();
                model.pending.retain(|(id, _)| *id > upto);
                prop_assert_eq!(released, (before - model.pending.len()) as u64);
            }
            Op::AckBeyond => {
                let err = buf.ack(RecordId(model.next_id));
                let refused = matches!(err, Err(BufferError::AckBeyondEnd { .. }));
                prop_assert!(refused, "ack beyond the end: {:?}", err);
            }
            Op::Peek(n) => {
                let got = buf.peek(n).map_err(fail)?;
                let want: Vec<_> = model
                    .pending
                    .iter()
                    .take(n)
                    .map(|(id, p)| (RecordId(*id), p.clone()))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::PeekAfter(k, n, max_bytes) => {
                let after = if model.pending.is_empty() {
                    None
                } else {
                    Some(model.pending[k % model.pending.len()].0)
                };
                let got = buf
                    .peek_after(after.map(RecordId), n, max_bytes)
                    .map_err(fail)?;
                let mut want = Vec::new();
                let mut taken = 0;
                for (id, p) in model.pending.iter().filter(|(id, _)| Some(*id) > after) {
                    if want.len() == n || (!want.is_empty() && taken + p.len() > max_bytes) {
                        break;
                    }
                    taken += p.len();
                    want.push((RecordId(*id), p.clone()));
                }
                prop_assert_eq!(got, want);
            }
            Op::Sync => {
                buf.sync().map_err(fail)?;
                prop_assert!(!buf.needs_sync());
            }
            Op::Reopen => {
                drop(buf);
                buf = DiskBuffer::open(dir, config.clone()).map_err(fail)?;
                prop_assert!(buf.open_report().is_clean(), "{:?}", buf.open_report());
                prop_assert_eq!(buf.next_id(), RecordId(model.next_id));
            }
        }
        check_same(&mut buf, &model)?;
    }
    drop(buf);
    let mut buf = DiskBuffer::open(dir, config).map_err(fail)?;
    prop_assert!(buf.open_report().is_clean());
    check_same(&mut buf, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// No size pressure: every appended record is replayed until acknowledged.
    #[test]
    fn buffer_model_replays_what_a_queue_holds(
        ops in proptest::collection::vec(op(), 1..80),
        segment_max_bytes in 160u64..700,
        fsync in policy(),
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let config = BufferConfig {
            segment_max_bytes,
            max_bytes: 1 << 20,
            max_record_bytes: 120,
            fsync,
        };
        run(dir.path(), config, ops)?;
    }

    /// A small cap: whatever is dropped is the oldest, and it is counted exactly.
    #[test]
    fn buffer_model_overflow_drops_the_oldest(
        ops in proptest::collection::vec(op(), 1..120),
        segment_max_bytes in 160u64..400,
        segments in 1u64..5,
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let config = BufferConfig {
            segment_max_bytes,
            max_bytes: segment_max_bytes * segments,
            max_record_bytes: 120,
            fsync: FsyncPolicy::Never,
        };
        run(dir.path(), config, ops)?;
    }
}
