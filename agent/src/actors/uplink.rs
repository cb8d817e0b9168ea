//! The uplink actor: gathers what pollers collected, cleans it against the server's
//! limits, cuts it into numbered batches and puts each batch in the crash-safe disk
//! buffer; a delivery task of its own ([`crate::uplink::delivery`]) sends the buffer in
//! order, retrying with backoff while the server is away.
//!
//! A batch is on disk before delivery is attempted and leaves the buffer only when the
//! server acknowledged it, or when it was set aside in the quarantine file because
//! resending cannot help, so an outage, a crash or a restart loses nothing that was
//! buffered (the buffer's size cap is the only exception, and it is reported as a
//! `buffer_overflow` event). Replays after a crash are safe: the server stores a batch
//! once, and batch numbers are durable before they are used ([`crate::uplink::seq`]).

use crate::buffer::{BufferConfig, DiskBuffer, RecordId};
use crate::config::UplinkConfig;
use crate::internal_events::{
    AgentMetrics, BatchBuffered, BatchesDropped, BufferRepaired, InternalEvent, ItemsCleaned,
    SeqNotPersisted,
};
use crate::routeros::PollOutput;
use crate::state::AgentState;
use crate::uplink::delivery::{self, Command, Delivery, DeliveryArgs, SharedBuffer, on_buffer};
use crate::uplink::quarantine::Quarantine;
use crate::uplink::seq::SeqFile;
use crate::uplink::{HttpsUplink, QuicUplink};
use ispvm_proto::clean::{clean_batch, pack};
use ispvm_proto::codec::batch_seq;
use ispvm_proto::{Batch, ClusterReport, EntityKey, Event, EventKind, Limits, Severity};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub enum UplinkMsg {
    /// Data from a poller.
    Collected(PollOutput),
    /// An event from the agent itself (restarts, degradation).
    Event(Event),
    /// The agent's newest view of the cluster: rides with the next batch, replacing any
    /// report not sent yet (it is state, only the newest matters).
    Cluster(Box<ClusterReport>),
    /// Periodic: cut a batch and wake delivery.
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
    pub quarantine_file: PathBuf,
    pub buffer_dir: PathBuf,
    pub buffer: BufferConfig,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
}

pub struct UplinkState {
    agent_id: String,
    tenant_id: String,
    metrics: Arc<AgentMetrics>,
    state: Arc<AgentState>,
    /// What the server accepts: every buffered batch is cleaned and cut to fit.
    limits: Limits,
    pending: PollOutput,
    pending_cluster: Option<Box<ClusterReport>>,
    buffer: SharedBuffer,
    seq: Arc<Mutex<SeqFile>>,
    delivery: mpsc::Sender<Command>,
    delivery_task: Option<tokio::task::JoinHandle<()>>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

pub struct Uplink;

/// The sequence number of the newest batch in the buffer, if any can be read.
fn newest_buffered_seq(b: &mut DiskBuffer) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let newest = b.next_id().0.checked_sub(1)?;
    let after = newest.checked_sub(1).map(RecordId);
    let (_, bytes) = b.peek_after(after, 1, usize::MAX).ok()?.pop()?;
    batch_seq(&bytes)
}

impl UplinkState {
    /// Cleans pending data, cuts it into batches within the server's limits, takes their
    /// numbers durably, and appends them to the buffer.
    async fn cut(&mut self) -> Result<(), ActorProcessingErr> {
        let pending = std::mem::take(&mut self.pending);
        let cluster = self.pending_cluster.take();
        if pending.samples.is_empty()
            && pending.events.is_empty()
            && pending.inventory.is_empty()
            && cluster.is_none()
        {
            return Ok(());
        }
        let mut batch = Batch::new(&self.agent_id, &self.tenant_id, 0);
        batch.samples = pending.samples;
        batch.events = pending.events;
        batch.inventory = pending.inventory;
        batch.cluster = cluster.map(|c| *c);
        let cleaned = clean_batch(&mut batch, &self.limits);
        let (packed, persisted) = {
            let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = seq.next();
            let packed = pack(batch, &self.limits, &mut next)?;
            // Durable before the batches that carry the numbers are.
            let persisted = seq.advance_to(next).map_err(|e| (seq.path().to_owned(), e));
            (packed, persisted)
        };
        if let Err((file, error)) = persisted {
            SeqNotPersisted {
                file: &file,
                error: &error,
            }
            .emit(&self.metrics);
        }
        if cleaned != Default::default() || packed.dropped > 0 {
            ItemsCleaned {
                cleaned: &cleaned,
                oversize: packed.dropped,
            }
            .emit(&self.metrics);
        }
        let counts: Vec<BatchBuffered> = packed
            .batches
            .iter()
            .map(|(b, _)| BatchBuffered {
                seq: b.seq,
                samples: b.samples.len(),
                events: b.events.len(),
            })
            .collect();
        let records: Vec<Vec<u8>> = packed.batches.into_iter().map(|(_, r)| r).collect();
        let dropped = on_buffer(&self.buffer, move |b| {
            let mut dropped = (0u64, 0u64);
            for bytes in records {
                let outcome = b.append(&bytes)?;
                dropped.0 += outcome.dropped_records;
                dropped.1 += outcome.dropped_bytes;
            }
            Ok(dropped)
        })
        .await?;
        for c in counts {
            c.emit(&self.metrics);
        }
        if dropped.0 > 0 {
            BatchesDropped {
                count: usize::try_from(dropped.0).unwrap_or(usize::MAX),
                reason: "disk buffer full",
            }
            .emit(&self.metrics);
            let mut e = Event::new(
                EntityKey::Device(self.agent_id.clone()),
                EventKind::BufferOverflow,
                Severity::Error,
                format!(
                    "agent {} dropped its {} oldest undelivered batches ({} bytes) to stay within its disk buffer cap",
                    self.agent_id, dropped.0, dropped.1
                ),
            );
            e.attrs
                .insert("dropped_batches".into(), dropped.0.to_string());
            e.attrs
                .insert("dropped_bytes".into(), dropped.1.to_string());
            self.pending.events.push(e);
        }
        delivery::report_depth(&self.buffer, &self.metrics, &self.state).await;
        Ok(())
    }

    /// Tells delivery there is something new (a wake already queued is enough).
    fn wake(&self) {
        let _ = self.delivery.try_send(Command::Wake);
    }

    /// Asks delivery to send everything now; the batches left in the buffer.
    async fn drain(&self) -> u64 {
        let (reply, answer) = oneshot::channel();
        if self.delivery.send(Command::Drain(reply)).await.is_err() {
            return on_buffer(&self.buffer, |b| Ok(b.len()))
                .await
                .unwrap_or(u64::MAX);
        }
        answer.await.unwrap_or(u64::MAX)
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
        let (dir, config) = (args.buffer_dir.clone(), args.buffer.clone());
        let (buffer, newest) = tokio::task::spawn_blocking(move || {
            let mut buffer = DiskBuffer::open(dir, config)?;
            let newest = newest_buffered_seq(&mut buffer);
            Ok::<_, crate::buffer::BufferError>((buffer, newest))
        })
        .await??;
        let report = *buffer.open_report();
        if !report.is_clean() {
            BufferRepaired { report: &report }.emit(&args.metrics);
        }
        if !buffer.is_empty() {
            tracing::info!(batches = buffer.len(), "replaying buffered batches");
        }
        let seq = Arc::new(Mutex::new(SeqFile::open(&args.seq_file, newest)));
        let quarantine = Quarantine::open(&args.quarantine_file, args.config.quarantine_max_bytes)?;
        let buffer: SharedBuffer = Arc::new(Mutex::new(buffer));
        let limits = Limits {
            max_samples: args
                .config
                .max_batch_samples
                .clamp(1, Limits::default().max_samples),
            ..Limits::default()
        };
        let (delivery, delivery_task) = Delivery::spawn(DeliveryArgs {
            buffer: Arc::clone(&buffer),
            seq: Arc::clone(&seq),
            quarantine,
            transport: args.transport,
            fallback: args.fallback,
            poison_after: args.config.poison_after,
            metrics: Arc::clone(&args.metrics),
            state: Arc::clone(&args.state),
        });
        let period = Duration::from_millis(args.config.flush_interval_ms.max(10));
        let timer = myself.send_interval(period, || UplinkMsg::Flush);
        let state = UplinkState {
            agent_id: args.agent_id,
            tenant_id: args.tenant_id,
            metrics: args.metrics,
            state: args.state,
            limits,
            pending: PollOutput::default(),
            pending_cluster: None,
            buffer,
            seq,
            delivery,
            delivery_task: Some(delivery_task),
            timer: Some(timer),
        };
        // Whatever a previous life left is sent at once.
        state.wake();
        delivery::report_depth(&state.buffer, &state.metrics, &state.state).await;
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
                on_buffer(&state.buffer, |b| {
                    if b.needs_sync() { b.sync() } else { Ok(()) }
                })
                .await?;
                state.wake();
            }
            UplinkMsg::Drain(reply) => {
                state.cut().await?;
                let left = state.drain().await;
                let _ = reply.send(left);
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
        let (done, stopped) = oneshot::channel();
        if state.delivery.send(Command::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
        if let Some(task) = state.delivery_task.take() {
            let _ = task.await;
        }
        let left = on_buffer(&state.buffer, |b| {
            b.sync()?;
            Ok(b.len())
        })
        .await?;
        if left > 0 {
            tracing::info!(
                batches = left,
                "undelivered batches stay in the disk buffer for the next start"
            );
        }
        Ok(())
    }
}
