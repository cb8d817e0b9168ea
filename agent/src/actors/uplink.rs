//! The uplink actor: gathers what pollers collected, cuts it into numbered batches and
//! delivers them in order, retrying with backoff while the server is away.
//!
//! Batches wait in memory (bounded; the crash-safe disk buffer replaces this queue) and
//! are sent oldest first; a batch leaves the queue only when the server acknowledged it
//! or refused it for good. Sequence numbers survive restarts through a small state file.

use crate::config::UplinkConfig;
use crate::routeros::PollOutput;
use crate::state::AgentState;
use crate::telemetry::{AgentMetrics, BatchAnswered, BatchesDropped, QueueDepth, UplinkFailed};
use crate::uplink::QuicUplink;
use ispvm_proto::time::now_ms;
use ispvm_proto::{AckStatus, Batch, Event};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::Rng;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub enum UplinkMsg {
    /// Data from a poller.
    Collected(PollOutput),
    /// An event from the agent itself (restarts, degradation).
    Event(Event),
    /// Periodic: cut a batch and try to deliver.
    Flush,
    /// Deliver everything now, ignoring backoff; answers with the batches still queued.
    Drain(RpcReplyPort<usize>),
}

/// The transport the uplink actor sends through; the QUIC uplink in production.
pub struct UplinkArgs {
    pub agent_id: String,
    pub tenant_id: String,
    pub config: UplinkConfig,
    pub transport: QuicUplink,
    pub seq_file: PathBuf,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
}

pub struct UplinkState {
    args: UplinkArgs,
    pending: PollOutput,
    queue: VecDeque<Batch>,
    next_seq: u64,
    backoff: Duration,
    retry_at: Option<Instant>,
    timer: Option<tokio::task::JoinHandle<()>>,
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
    /// Cuts pending data into batches and queues them.
    fn cut(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        if pending.samples.is_empty() && pending.events.is_empty() && pending.inventory.is_empty() {
            return;
        }
        let max = self.args.config.max_batch_samples.max(1);
        let mut samples = pending.samples.into_iter().peekable();
        let mut first = true;
        while first || samples.peek().is_some() {
            let mut batch = Batch::new(&self.args.agent_id, &self.args.tenant_id, self.next_seq);
            batch.samples = samples.by_ref().take(max).collect();
            if first {
                batch.events = pending.events.clone();
                batch.inventory = pending.inventory.clone();
                first = false;
            }
            self.next_seq += 1;
            self.queue.push_back(batch);
        }
        if let Err(e) = store_next_seq(&self.args.seq_file, self.next_seq) {
            tracing::error!(error = %e, file = %self.args.seq_file.display(), "cannot persist uplink sequence number");
        }
        let over = self
            .queue
            .len()
            .saturating_sub(self.args.config.max_queued_batches);
        if over > 0 {
            self.queue.drain(..over);
            BatchesDropped {
                count: over,
                reason: "uplink queue full",
            }
            .emit(&self.args.metrics);
        }
        QueueDepth(self.queue.len()).emit(&self.args.metrics);
    }

    fn back_off(&mut self, hint: Option<Duration>) {
        let base = hint.unwrap_or(self.backoff);
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 4);
        self.retry_at = Some(Instant::now() + base + Duration::from_millis(jitter));
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Sends queued batches oldest first until the queue is empty or the server fails.
    async fn deliver(&mut self, ignore_backoff: bool) {
        if !ignore_backoff && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while let Some(batch) = self.queue.front() {
            match self.args.transport.send(batch).await {
                Ok(ack) => match ack.status {
                    AckStatus::Accepted { .. } => {
                        BatchAnswered {
                            seq: batch.seq,
                            samples: batch.samples.len(),
                            events: batch.events.len(),
                            rejected: None,
                        }
                        .emit(&self.args.metrics);
                        self.queue.pop_front();
                        self.backoff = BACKOFF_MIN;
                        self.retry_at = None;
                        self.args.state.set_uplink(self.queue.len(), Some(now_ms()));
                    }
                    AckStatus::Rejected {
                        code,
                        message,
                        retry_after_ms,
                    } => {
                        BatchAnswered {
                            seq: batch.seq,
                            samples: batch.samples.len(),
                            events: batch.events.len(),
                            rejected: Some((code.as_str(), &message)),
                        }
                        .emit(&self.args.metrics);
                        if code.is_retryable() {
                            self.back_off(retry_after_ms.map(Duration::from_millis));
                            break;
                        }
                        self.queue.pop_front();
                        BatchesDropped {
                            count: 1,
                            reason: code.as_str(),
                        }
                        .emit(&self.args.metrics);
                    }
                },
                Err(e) => {
                    UplinkFailed {
                        error: &e,
                        queued: self.queue.len(),
                    }
                    .emit(&self.args.metrics);
                    self.back_off(None);
                    break;
                }
            }
        }
        QueueDepth(self.queue.len()).emit(&self.args.metrics);
        self.args.state.set_uplink(self.queue.len(), None);
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
        let period = Duration::from_millis(args.config.flush_interval_ms.max(10));
        let timer = myself.send_interval(period, || UplinkMsg::Flush);
        Ok(UplinkState {
            args,
            pending: PollOutput::default(),
            queue: VecDeque::new(),
            next_seq,
            backoff: BACKOFF_MIN,
            retry_at: None,
            timer: Some(timer),
        })
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
            UplinkMsg::Flush => {
                state.cut();
                state.deliver(false).await;
            }
            UplinkMsg::Drain(reply) => {
                state.cut();
                state.deliver(true).await;
                let _ = reply.send(state.queue.len());
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
        if !state.queue.is_empty() {
            BatchesDropped {
                count: state.queue.len(),
                reason: "agent stopped with batches undelivered",
            }
            .emit(&state.args.metrics);
        }
        state.args.transport.close().await;
        Ok(())
    }
}
