//! Delivery of the disk buffer to the server, oldest batch first, in a task of its own.
//!
//! The uplink actor only cuts batches and appends them to the buffer; this task sends
//! them. Apart, a long replay after an outage (thousands of batches, each a round trip)
//! never keeps newly collected data waiting in the actor's mailbox: it reaches the disk
//! on the next flush whatever delivery is doing.
//!
//! Every batch leaves the buffer one way only: acknowledged by the server; set aside in
//! the [`Quarantine`] when resending cannot help (a permanent rejection, `internal` for
//! too many attempts in a row, bytes that no longer decode); or numbered anew when the
//! server holds its number with other content. So no batch can hold up the ones behind
//! it, and none is thrown away unseen.

use super::quarantine::{Outcome, Quarantine};
use super::seq::SeqFile;
use super::{HttpsUplink, QuicUplink, UplinkError};
use crate::buffer::{BufferError, DiskBuffer, RecordId};
use crate::internal_events::{
    AgentMetrics, BatchAnswered, BatchQuarantined, BufferDamagedOnRead, InternalEvent, QueueDepth,
    SeqNotPersisted, SeqRenumbered, UplinkFailed,
};
use crate::state::{AgentState, QuarantineNote};
use ispvm_proto::codec::{DecodeError, batch_seq, from_bincode, to_bincode};
use ispvm_proto::time::now_ms;
use ispvm_proto::{Ack, AckStatus, Batch, Limits, RejectCode};
use rand::Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Records read from the buffer per round.
const DELIVER_CHUNK: usize = 32;
/// Consecutive QUIC failures after which batches go over HTTPS (when configured).
const FALLBACK_AFTER: u32 = 2;
/// While on HTTPS, one batch in this many tries QUIC again.
const QUIC_RETRY_EVERY: u32 = 10;
/// Longest wait a server may ask for; a larger `retry_after_ms` is taken as this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// The disk buffer, shared by the actor (appends) and the delivery task (reads, acks).
pub type SharedBuffer = Arc<Mutex<DiskBuffer>>;

/// Why a buffer operation could not run.
#[derive(Debug, thiserror::Error)]
pub enum BufferTaskError {
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error("buffer task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs a blocking operation on the buffer off the async workers.
pub async fn on_buffer<R, F>(buffer: &SharedBuffer, f: F) -> Result<R, BufferTaskError>
where
    R: Send + 'static,
    F: FnOnce(&mut DiskBuffer) -> Result<R, BufferError> + Send + 'static,
{
    let buffer = Arc::clone(buffer);
    let result = tokio::task::spawn_blocking(move || {
        // A panic while holding the lock leaves the buffer as consistent as its own
        // checks make it; keep using it.
        let mut b = buffer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut b)
    })
    .await?;
    Ok(result?)
}

/// Publishes the buffer's depth on `/metrics` and in the agent's state.
pub async fn report_depth(buffer: &SharedBuffer, metrics: &AgentMetrics, state: &AgentState) {
    if let Ok((records, bytes)) = on_buffer(buffer, |b| Ok((b.len(), b.bytes()))).await {
        let records = usize::try_from(records).unwrap_or(usize::MAX);
        QueueDepth(records).emit(metrics);
        state.set_uplink(records, None);
        state.set_buffer_bytes(bytes);
    }
}

/// What the actor asks of the delivery task.
pub enum Command {
    /// New batches are buffered: deliver unless backing off.
    Wake,
    /// Deliver everything now, ignoring backoff; answer with the batches left.
    Drain(oneshot::Sender<u64>),
    /// Stop after the current batch and close the connection.
    Stop(oneshot::Sender<()>),
}

/// What becomes of one buffered record after one attempt.
enum Verdict {
    /// Acknowledged, set aside or numbered anew: it may leave the buffer.
    Done,
    /// Try again later (server away, overloaded, or failing).
    Later(Option<Duration>),
}

/// Settings of the delivery task.
pub struct DeliveryArgs {
    pub buffer: SharedBuffer,
    pub seq: Arc<Mutex<SeqFile>>,
    pub quarantine: Quarantine,
    pub transport: QuicUplink,
    /// HTTPS+JSON, for networks that drop UDP.
    pub fallback: Option<HttpsUplink>,
    /// Consecutive `internal` answers to one batch after which it is set aside.
    pub poison_after: u32,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
}

/// The delivery task's state.
pub struct Delivery {
    args: DeliveryArgs,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Consecutive QUIC transport failures.
    quic_failures: u32,
    /// Batches sent over HTTPS since QUIC was last tried.
    since_quic: u32,
    /// The record that last got `internal`, and how many times in a row.
    strikes: Option<(RecordId, u32)>,
}

impl Delivery {
    /// Starts the task; it runs until told to stop or its sender is dropped.
    pub fn spawn(args: DeliveryArgs) -> (mpsc::Sender<Command>, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8);
        let task = Delivery {
            args,
            backoff: BACKOFF_MIN,
            retry_at: None,
            quic_failures: 0,
            since_quic: 0,
            strikes: None,
        };
        (tx, tokio::spawn(task.run(rx)))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        self.publish_quarantine(None);
        loop {
            let retry = self.retry_at;
            let command = tokio::select! {
                c = rx.recv() => c,
                () = async {
                    match retry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => Some(Command::Wake),
            };
            match command {
                Some(Command::Wake) => self.deliver_logged(false).await,
                Some(Command::Drain(reply)) => {
                    self.deliver_logged(true).await;
                    let left = on_buffer(&self.args.buffer, |b| Ok(b.len()))
                        .await
                        .unwrap_or(u64::MAX);
                    let _ = reply.send(left);
                }
                Some(Command::Stop(done)) => {
                    self.args.transport.close().await;
                    let _ = done.send(());
                    return;
                }
                None => break,
            }
        }
        self.args.transport.close().await;
    }

    async fn deliver_logged(&mut self, ignore_backoff: bool) {
        if let Err(e) = self.deliver(ignore_backoff).await {
            tracing::error!(error = %e, "delivery from the disk buffer failed; retrying later");
            self.back_off(None);
        }
        report_depth(&self.args.buffer, &self.args.metrics, &self.args.state).await;
    }

    /// Sends buffered batches oldest first until the buffer is empty or one must wait.
    async fn deliver(&mut self, ignore_backoff: bool) -> Result<(), BufferTaskError> {
        if !ignore_backoff && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let mut after: Option<RecordId> = None;
        loop {
            let (chunk, damage_sites) = on_buffer(&self.args.buffer, move |b| {
                let before = b.stats().corrupt_records;
                let chunk = b.peek_after(after, DELIVER_CHUNK, 16 << 20)?;
                Ok((chunk, b.stats().corrupt_records.saturating_sub(before)))
            })
            .await?;
            if damage_sites > 0 {
                BufferDamagedOnRead { damage_sites }.emit(&self.args.metrics);
            }
            if chunk.is_empty() {
                return Ok(());
            }
            let mut done: Option<RecordId> = None;
            let mut wait = None;
            for (id, bytes) in chunk {
                match self.attempt(id, bytes).await? {
                    Verdict::Done => done = Some(id),
                    Verdict::Later(hint) => {
                        wait = Some(hint);
                        break;
                    }
                }
            }
            if let Some(upto) = done {
                let left = on_buffer(&self.args.buffer, move |b| {
                    b.ack(upto)?;
                    Ok(b.len())
                })
                .await?;
                self.args
                    .state
                    .set_uplink(usize::try_from(left).unwrap_or(usize::MAX), Some(now_ms()));
                after = Some(upto);
            }
            if let Some(hint) = wait {
                self.back_off(hint);
                return Ok(());
            }
        }
    }

    /// Sends one record and decides what becomes of it.
    async fn attempt(&mut self, id: RecordId, bytes: Vec<u8>) -> Result<Verdict, BufferTaskError> {
        let ack = match self.send(&bytes).await {
            Ok(ack) => ack,
            Err(SendError::Unreadable(e)) => {
                return Ok(self.set_aside(&bytes, "unreadable", &e.to_string()).await);
            }
            Err(SendError::Transport(e)) => {
                let queued = on_buffer(&self.args.buffer, |b| Ok(b.len())).await?;
                UplinkFailed {
                    error: &e,
                    queued: usize::try_from(queued).unwrap_or(usize::MAX),
                }
                .emit(&self.args.metrics);
                return Ok(Verdict::Later(None));
            }
        };
        match ack.status {
            AckStatus::Accepted {
                samples_stored,
                samples_duplicate,
                events_stored,
                events_duplicate,
                ..
            } => {
                BatchAnswered {
                    seq: ack.seq,
                    samples: (samples_stored + samples_duplicate) as usize,
                    events: (events_stored + events_duplicate) as usize,
                    rejected: None,
                }
                .emit(&self.args.metrics);
                self.backoff = BACKOFF_MIN;
                self.retry_at = None;
                self.strikes = None;
                Ok(Verdict::Done)
            }
            AckStatus::Rejected {
                code,
                message,
                retry_after_ms,
            } => {
                BatchAnswered {
                    seq: ack.seq,
                    samples: 0,
                    events: 0,
                    rejected: Some((code.as_str(), &message)),
                }
                .emit(&self.args.metrics);
                self.rejected(id, &bytes, code, &message, retry_after_ms)
                    .await
            }
        }
    }

    async fn rejected(
        &mut self,
        id: RecordId,
        bytes: &[u8],
        code: RejectCode,
        message: &str,
        retry_after_ms: Option<u64>,
    ) -> Result<Verdict, BufferTaskError> {
        match code {
            RejectCode::Overloaded => Ok(Verdict::Later(Some(
                Duration::from_millis(retry_after_ms.unwrap_or(0))
                    .clamp(BACKOFF_MIN, RETRY_AFTER_MAX),
            ))),
            RejectCode::Internal => {
                let strikes = match self.strikes {
                    Some((same, n)) if same == id => n + 1,
                    _ => 1,
                };
                self.strikes = Some((id, strikes));
                if strikes < self.args.poison_after.max(1) {
                    return Ok(Verdict::Later(None));
                }
                self.strikes = None;
                let reason = format!("{strikes} internal errors in a row; last: {message}");
                Ok(self.set_aside(bytes, "internal_repeated", &reason).await)
            }
            RejectCode::SeqReused => self.renumber(bytes, message).await,
            _ => Ok(self.set_aside(bytes, code.as_str(), message).await),
        }
    }

    /// Buffers the batch again under a number the server cannot have seen; the old
    /// record may then leave the buffer.
    async fn renumber(&mut self, bytes: &[u8], message: &str) -> Result<Verdict, BufferTaskError> {
        let mut batch = match decode(bytes) {
            Ok(b) => b,
            Err(e) => {
                return Ok(self.set_aside(bytes, "unreadable", &e.to_string()).await);
            }
        };
        let old = batch.seq;
        let fresh = {
            let mut seq = self.args.seq.lock().unwrap_or_else(|p| p.into_inner());
            seq.take_fresh().map_err(|e| (seq.path().to_owned(), e))
        };
        let new = match fresh {
            Ok(n) => n,
            Err((file, error)) => {
                SeqNotPersisted {
                    file: &file,
                    error: &error,
                }
                .emit(&self.args.metrics);
                return Ok(Verdict::Later(None));
            }
        };
        batch.seq = new;
        let Ok(record) = to_bincode(&batch) else {
            return Ok(self.set_aside(bytes, "seq_reused", message).await);
        };
        on_buffer(&self.args.buffer, move |b| {
            b.append(&record)?;
            b.sync()
        })
        .await?;
        SeqRenumbered { old, new }.emit(&self.args.metrics);
        Ok(Verdict::Done)
    }

    /// Puts the record in the quarantine file (durably, before it leaves the buffer).
    /// `Later` when the file cannot be written: the record stays in the buffer rather
    /// than be lost to a disk error.
    async fn set_aside(&mut self, bytes: &[u8], reason: &'static str, message: &str) -> Verdict {
        let seq = batch_seq(bytes);
        let at = now_ms();
        let outcome = self.args.quarantine.put(at, seq, reason, message, bytes);
        let kept = match outcome {
            Ok(Outcome::Kept) => true,
            Ok(Outcome::Full) => false,
            Err(e) => {
                tracing::error!(error = %e, file = %self.args.quarantine.path().display(), seq, "cannot write the quarantine file; the batch stays buffered");
                return Verdict::Later(None);
            }
        };
        BatchQuarantined {
            seq,
            reason,
            message,
            kept,
        }
        .emit(&self.args.metrics);
        self.publish_quarantine(Some(QuarantineNote {
            at_ms: at,
            seq,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }));
        Verdict::Done
    }

    fn publish_quarantine(&self, last: Option<QuarantineNote>) {
        let q = &self.args.quarantine;
        self.args.state.update_quarantine(|s| {
            s.batches = q.entries();
            s.bytes = q.bytes();
            s.file = q.path().display().to_string();
            if last.is_some() {
                s.last = last;
            }
        });
    }

    fn back_off(&mut self, hint: Option<Duration>) {
        let base = hint.unwrap_or(self.backoff);
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 4);
        self.retry_at = Some(Instant::now() + base + Duration::from_millis(jitter));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Sends one encoded batch: QUIC, or HTTPS while QUIC keeps failing.
    async fn send(&mut self, bytes: &[u8]) -> Result<Ack, SendError> {
        let use_https = self.args.fallback.is_some()
            && self.quic_failures >= FALLBACK_AFTER
            && self.since_quic < QUIC_RETRY_EVERY;
        if !use_https {
            self.since_quic = 0;
            match self.args.transport.send_bytes(bytes).await {
                Ok(ack) => {
                    self.quic_failures = 0;
                    return Ok(ack);
                }
                Err(e) => {
                    self.quic_failures = self.quic_failures.saturating_add(1);
                    if self.args.fallback.is_none() || self.quic_failures < FALLBACK_AFTER {
                        return Err(SendError::Transport(e));
                    }
                    tracing::warn!(error = %e, "QUIC uplink failing; trying HTTPS");
                }
            }
        }
        let Some(https) = &self.args.fallback else {
            return Err(SendError::Transport(UplinkError::NoFallback));
        };
        self.since_quic += 1;
        let batch = decode(bytes).map_err(SendError::Unreadable)?;
        https.send(&batch).await.map_err(SendError::Transport)
    }
}

/// Why a record could not be sent.
enum SendError {
    /// The server could not be reached or answered nothing usable: try again later.
    Transport(UplinkError),
    /// The buffered bytes are no batch (written by a broken build, or damaged in a way
    /// the checksums missed): no retry can help.
    Unreadable(DecodeError),
}

/// Reads a buffered record. The agent's own limits bound what it buffers, so the only
/// limit applied here is the codec's allocation ceiling.
fn decode(bytes: &[u8]) -> Result<Batch, DecodeError> {
    let limits = Limits {
        max_bytes: usize::MAX,
        ..Limits::default()
    };
    from_bincode::<Batch>(bytes, &limits)
}
