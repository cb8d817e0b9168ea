//! The uplink actor: gathers what pollers collected, cuts it into numbered batches, puts
//! each batch in the crash-safe disk buffer, and delivers the buffer in order, retrying
//! with backoff while the server is away.
//!
//! A batch is on disk before delivery is attempted and leaves the buffer only when the
//! server acknowledged it or refused it for good, so an outage, a crash or a restart
//! loses nothing that was buffered (the buffer's size cap is the only exception, and it
//! is reported as a `buffer_overflow` event). Replays after a crash are safe: the server
//! stores a batch once. Sequence numbers survive restarts through a small state file.

use crate::buffer::{BufferConfig, DiskBuffer, RecordId};
use crate::config::UplinkConfig;
use crate::routeros::PollOutput;
use crate::state::AgentState;
use crate::telemetry::{
    AgentMetrics, BatchAnswered, BatchBuffered, BatchesDropped, QueueDepth, UplinkFailed,
};
use crate::uplink::{HttpsUplink, QuicUplink, UplinkError};
use ispvm_proto::codec::{from_bincode, to_bincode};
use ispvm_proto::time::now_ms;
use ispvm_proto::{AckStatus, Batch, ClusterReport, EntityKey, Event, EventKind, Severity};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::Rng;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Records read from the buffer per delivery round.
const DELIVER_CHUNK: usize = 32;
/// Consecutive QUIC failures after which batches go over HTTPS (when configured).
const FALLBACK_AFTER: u32 = 2;
/// While on HTTPS, one batch in this many tries QUIC again.
const QUIC_RETRY_EVERY: u32 = 10;

pub enum UplinkMsg {
    /// Data from a poller.
    Collected(PollOutput),
    /// An event from the agent itself (restarts, degradation).
    Event(Event),
    /// The agent's newest view of the cluster: rides with the next batch, replacing any
    /// report not sent yet (it is state, only the newest matters).
    Cluster(Box<ClusterReport>),
    /// Periodic: cut a batch and try to deliver.
    Flush,
    /// Deliver everything now, ignoring backoff; answers with the batches still buffered.
    Drain(RpcReplyPort<u64>),
}

pub struct UplinkArgs {
    pub agent_id: String,
    pub tenant_id: String,
    pub config: UplinkConfig,
    pub transport: QuicUplink,
    /// HTTPS+JSON, for networks that drop UDP.
    pub fallback: Option<HttpsUplink>,
    pub seq_file: PathBuf,
    pub buffer_dir: PathBuf,
    pub buffer: BufferConfig,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
}

pub struct UplinkState {
    args: UplinkArgs,
    pending: PollOutput,
    pending_cluster: Option<Box<ClusterReport>>,
    /// `None` only while a blocking buffer operation runs.
    buffer: Option<DiskBuffer>,
    next_seq: u64,
    backoff: Duration,
    retry_at: Option<Instant>,
    timer: Option<tokio::task::JoinHandle<()>>,
    /// Consecutive QUIC transport failures.
    quic_failures: u32,
    /// Batches sent over HTTPS since QUIC was last tried.
    since_quic: u32,
}

pub struct Uplink;

/// Reads the next sequence number. A missing or unreadable file starts at the current
/// Unix time in ms, which is above any number a previous life of this agent used (it
/// cannot have sent more than one batch per millisecond), so a wiped agent never reuses
/// a sequence number the server would take for a replay.
fn load_next_seq(path: &PathBuf) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| u64::try_from(now_ms()).unwrap_or(1).max(1))
}

fn store_next_seq(path: &PathBuf, next: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, next.to_string())?;
    std::fs::rename(&tmp, path)
}

impl UplinkState {
    /// Sends one encoded batch: QUIC, or HTTPS while QUIC keeps failing.
    async fn send(&mut self, bytes: &[u8]) -> Result<ispvm_proto::Ack, UplinkError> {
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
                        return Err(e);
                    }
                    tracing::warn!(error = %e, "QUIC uplink failing; trying HTTPS");
                }
            }
        }
        let Some(https) = &self.args.fallback else {
            return Err(UplinkError::Stream("no HTTPS fallback".into()));
        };
        self.since_quic += 1;
        let batch = from_bincode::<Batch>(bytes, &ispvm_proto::Limits::default())
            .map_err(|e| UplinkError::Encode(format!("buffered batch unreadable: {e}")))?;
        https.send(&batch).await
    }

    /// Runs a blocking buffer operation off the async workers.
    async fn on_buffer<R, F>(&mut self, f: F) -> Result<R, ActorProcessingErr>
    where
        R: Send + 'static,
        F: FnOnce(&mut DiskBuffer) -> R + Send + 'static,
    {
        let mut buffer = self
            .buffer
            .take()
            .ok_or("the disk buffer was lost by an earlier failure")?;
        let (buffer, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut buffer);
            (buffer, r)
        })
        .await?;
        self.buffer = Some(buffer);
        Ok(result)
    }

    fn buffered(&self) -> u64 {
        self.buffer.as_ref().map_or(0, DiskBuffer::len)
    }

    fn report_depth(&self) {
        let records = self.buffered();
        QueueDepth(usize::try_from(records).unwrap_or(usize::MAX)).emit(&self.args.metrics);
        self.args
            .state
            .set_uplink(usize::try_from(records).unwrap_or(usize::MAX), None);
        self.args
            .state
            .set_buffer_bytes(self.buffer.as_ref().map_or(0, DiskBuffer::bytes));
    }

    /// Cuts pending data into batches and appends them to the buffer.
    async fn cut(&mut self) -> Result<(), ActorProcessingErr> {
        let pending = std::mem::take(&mut self.pending);
        let mut cluster = self.pending_cluster.take();
        if pending.samples.is_empty()
            && pending.events.is_empty()
            && pending.inventory.is_empty()
            && cluster.is_none()
        {
            return Ok(());
        }
        let max = self.args.config.max_batch_samples.max(1);
        let mut records = Vec::new();
        let mut samples = pending.samples.into_iter().peekable();
        let mut first = Some((pending.events, pending.inventory));
        while first.is_some() || samples.peek().is_some() {
            let mut batch = Batch::new(&self.args.agent_id, &self.args.tenant_id, self.next_seq);
            batch.samples = samples.by_ref().take(max).collect();
            if let Some((events, inventory)) = first.take() {
                batch.events = events;
                batch.inventory = inventory;
                batch.cluster = cluster.take().map(|c| *c);
            }
            self.next_seq += 1;
            records.push((
                to_bincode(&batch)?,
                batch.seq,
                batch.samples.len(),
                batch.events.len(),
            ));
        }
        if let Err(e) = store_next_seq(&self.args.seq_file, self.next_seq) {
            tracing::error!(error = %e, file = %self.args.seq_file.display(), "cannot persist uplink sequence number");
        }
        let counts: Vec<BatchBuffered> = records
            .iter()
            .map(|(_, seq, samples, events)| BatchBuffered {
                seq: *seq,
                samples: *samples,
                events: *events,
            })
            .collect();
        let dropped = self
            .on_buffer(move |b| {
                let mut dropped = (0u64, 0u64);
                for (bytes, ..) in records {
                    let outcome = b.append(&bytes)?;
                    dropped.0 += outcome.dropped_records;
                    dropped.1 += outcome.dropped_bytes;
                }
                Ok::<_, crate::buffer::BufferError>(dropped)
            })
            .await??;
        for c in counts {
            c.emit(&self.args.metrics);
        }
        if dropped.0 > 0 {
            BatchesDropped {
                count: usize::try_from(dropped.0).unwrap_or(usize::MAX),
                reason: "disk buffer full",
            }
            .emit(&self.args.metrics);
            let mut e = Event::new(
                EntityKey::Device(self.args.agent_id.clone()),
                EventKind::BufferOverflow,
                Severity::Error,
                format!(
                    "agent {} dropped its {} oldest undelivered batches ({} bytes) to stay within its disk buffer cap",
                    self.args.agent_id, dropped.0, dropped.1
                ),
            );
            e.attrs
                .insert("dropped_batches".into(), dropped.0.to_string());
            e.attrs
                .insert("dropped_bytes".into(), dropped.1.to_string());
            self.pending.events.push(e);
        }
        self.report_depth();
        Ok(())
    }

    fn back_off(&mut self, hint: Option<Duration>) {
        let base = hint.unwrap_or(self.backoff);
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 4);
        self.retry_at = Some(Instant::now() + base + Duration::from_millis(jitter));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Sends buffered batches oldest first until the buffer is empty or the server fails.
    async fn deliver(&mut self, ignore_backoff: bool) -> Result<(), ActorProcessingErr> {
        if !ignore_backoff && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let mut after: Option<RecordId> = None;
        'rounds: loop {
            let chunk = self
                .on_buffer(move |b| b.peek_after(after, DELIVER_CHUNK, 16 << 20))
                .await??;
            if chunk.is_empty() {
                break;
            }
            let mut done: Option<RecordId> = None;
            let mut stop = false;
            for (id, bytes) in &chunk {
                match self.send(bytes).await {
                    Ok(ack) => match ack.status {
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
                            done = Some(*id);
                            self.backoff = BACKOFF_MIN;
                            self.retry_at = None;
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
                            if code.is_retryable() {
                                self.back_off(retry_after_ms.map(Duration::from_millis));
                                stop = true;
                                break;
                            }
                            // Refused for good: resending cannot help.
                            BatchesDropped {
                                count: 1,
                                reason: code.as_str(),
                            }
                            .emit(&self.args.metrics);
                            done = Some(*id);
                        }
                    },
                    Err(e) => {
                        UplinkFailed {
                            error: &e,
                            queued: usize::try_from(self.buffered()).unwrap_or(usize::MAX),
                        }
                        .emit(&self.args.metrics);
                        self.back_off(None);
                        stop = true;
                        break;
                    }
                }
            }
            if let Some(upto) = done {
                self.on_buffer(move |b| b.ack(upto)).await??;
                self.args.state.set_uplink(
                    usize::try_from(self.buffered()).unwrap_or(usize::MAX),
                    Some(now_ms()),
                );
                after = Some(upto);
            }
            if stop {
                break 'rounds;
            }
        }
        self.report_depth();
        Ok(())
    }
}

impl Actor for Uplink {
    type Msg = UplinkMsg;
    type State = UplinkState;
    type Arguments = UplinkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let next_seq = load_next_seq(&args.seq_file);
        let (dir, config) = (args.buffer_dir.clone(), args.buffer.clone());
        let buffer = tokio::task::spawn_blocking(move || DiskBuffer::open(dir, config)).await??;
        let report = *buffer.open_report();
        if !report.is_clean() {
            tracing::warn!(?report, "the disk buffer was repaired on open");
        }
        if !buffer.is_empty() {
            tracing::info!(batches = buffer.len(), "replaying buffered batches");
        }
        let period = Duration::from_millis(args.config.flush_interval_ms.max(10));
        let timer = myself.send_interval(period, || UplinkMsg::Flush);
        let state = UplinkState {
            args,
            pending: PollOutput::default(),
            pending_cluster: None,
            buffer: Some(buffer),
            next_seq,
            backoff: BACKOFF_MIN,
            retry_at: None,
            timer: Some(timer),
            quic_failures: 0,
            since_quic: 0,
        };
        state.report_depth();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            UplinkMsg::Collected(out) => {
                state.pending.samples.extend(out.samples);
                state.pending.events.extend(out.events);
                state.pending.inventory.extend(out.inventory);
            }
            UplinkMsg::Event(e) => state.pending.events.push(e),
            UplinkMsg::Cluster(report) => state.pending_cluster = Some(report),
            UplinkMsg::Flush => {
                state.cut().await?;
                if state.buffer.as_ref().is_some_and(DiskBuffer::needs_sync) {
                    state.on_buffer(DiskBuffer::sync).await??;
                }
                state.deliver(false).await?;
            }
            UplinkMsg::Drain(reply) => {
                state.cut().await?;
                state.deliver(true).await?;
                let _ = reply.send(state.buffered());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        if state.buffered() > 0 {
            tracing::info!(
                batches = state.buffered(),
                "undelivered batches stay in the disk buffer for the next start"
            );
        }
        if state.buffer.is_some() {
            state.on_buffer(DiskBuffer::sync).await??;
        }
        state.args.transport.close().await;
        Ok(())
    }
}
