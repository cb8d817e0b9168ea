//! The syslog receiver actor: owns the UDP socket, the TCP listener and the normaliser
//! task of [`crate::syslog`], and forwards the events it makes to the uplink as
//! [`UplinkMsg::Event`].
//!
//! ```text
//! UDP task ─┐                        ┌─ pipeline task: parse, normalise, filter,
//! TCP task ─┴─ gate ─ bounded queue ─┘  suppress; every 250 ms: summaries, reports ─▶ uplink
//!  (+ one task per connection, in the TCP task's set)
//! ```
//!
//! Sockets are bound in `pre_start`, so a port in use fails the spawn. If a socket task
//! or the pipeline task ends on its own, the actor fails and its supervisor restarts it
//! (rebinding the sockets). Stopping the actor stops the sockets first, then lets the
//! pipeline hand over what it held back (open repeat summaries, a pending BGP entry).

use super::uplink::UplinkMsg;
use crate::internal_events::InternalEvent;
use crate::internal_events::syslog::{Dropped, SyslogEvent, SyslogMetrics};
use crate::syslog::SyslogConfig;
use crate::syslog::pipeline::{CONTINUATION_WAIT, Gate, Pipeline, RawMessage};
use crate::syslog::receiver::{self, TcpLimits};
use ispvm_proto::Event;
use ispvm_proto::time::now_ms;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How long a stop waits for the pipeline to hand over what it held back.
const STOP_WAIT: Duration = Duration::from_secs(2);

pub struct SyslogArgs {
    pub config: SyslogConfig,
    /// Source address → device key; build it with
    /// [`SyslogConfig::source_map`](crate::syslog::SyslogConfig::source_map).
    pub sources: HashMap<IpAddr, String>,
    pub uplink: ActorRef<UplinkMsg>,
    pub metrics: Arc<SyslogMetrics>,
}

pub enum SyslogMsg {
    /// The uplink was restarted: send events to the new one.
    SetUplink(ActorRef<UplinkMsg>),
    /// Routers were added or removed: the new source map, effective at once.
    SetSources(HashMap<IpAddr, String>),
    /// The addresses the sockets are bound to (the ports when 0 was configured).
    Addrs(RpcReplyPort<SyslogAddrs>),
    /// A socket or pipeline task ended on its own (internal).
    TaskEnded(&'static str),
}

/// Where the receiver listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogAddrs {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

enum Control {
    SetUplink(ActorRef<UplinkMsg>),
    Stop(oneshot::Sender<()>),
}

/// The tasks of one actor life; dropping it aborts them (a failed actor's sockets are
/// released before its restart binds them again).
#[derive(Default)]
struct Tasks {
    sockets: Vec<JoinHandle<()>>,
    pipeline: Option<JoinHandle<()>>,
}

impl Tasks {
    fn stop_sockets(&mut self) {
        for t in &self.sockets {
            t.abort();
        }
    }

    /// Stops the socket tasks and waits until they are gone (their sockets closed).
    async fn close_sockets(&mut self) {
        self.stop_sockets();
        for t in self.sockets.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stop_sockets();
        if let Some(p) = self.pipeline.take() {
            p.abort();
        }
    }
}

pub struct SyslogState {
    gate: Arc<Gate>,
    control: mpsc::Sender<Control>,
    addrs: SyslogAddrs,
    tasks: Tasks,
}

pub struct SyslogReceiver;

/// Runs `task`, then tells the actor it ended (unless the actor aborted it).
fn supervised<F>(myself: &ActorRef<SyslogMsg>, name: &'static str, task: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let myself = myself.clone();
    tokio::spawn(async move {
        task.await;
        let _ = myself.cast(SyslogMsg::TaskEnded(name));
    })
}

/// Period of the pipeline's housekeeping: fine enough for the suppression window and
/// the BGP continuation wait.
fn tick_period(config: &SyslogConfig) -> Duration {
    let mut p = CONTINUATION_WAIT / 4;
    if !config.dedup_window().is_zero() {
        p = p.min(config.dedup_window() / 4);
    }
    p.max(Duration::from_millis(20))
}

fn deliver(uplink: &ActorRef<UplinkMsg>, out: &mut Vec<Event>, metrics: &SyslogMetrics) {
    let mut lost = 0u64;
    for e in out.drain(..) {
        if uplink.cast(UplinkMsg::Event(e)).is_err() {
            lost += 1;
        }
    }
    if lost > 0 {
        SyslogEvent::Dropped {
            reason: Dropped::UplinkDown,
            count: lost,
        }
        .emit(metrics);
    }
}

async fn run_pipeline(
    mut pipeline: Pipeline,
    mut queue: mpsc::Receiver<RawMessage>,
    mut control: mpsc::Receiver<Control>,
    mut uplink: ActorRef<UplinkMsg>,
    metrics: Arc<SyslogMetrics>,
    period: Duration,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = Vec::new();
    loop {
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::SetUplink(u)) => uplink = u,
                Some(Control::Stop(done)) => {
                    while let Ok(raw) = queue.try_recv() {
                        pipeline.process(raw, &mut out);
                    }
                    pipeline.flush(now_ms(), &mut out);
                    deliver(&uplink, &mut out, &metrics);
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            _ = ticks.tick() => pipeline.tick(Instant::now(), now_ms(), &mut out),
            raw = queue.recv() => match raw {
                Some(raw) => pipeline.process(raw, &mut out),
                None => return,
            },
        }
        deliver(&uplink, &mut out, &metrics);
    }
}

impl Actor for SyslogReceiver {
    type Msg = SyslogMsg;
    type State = SyslogState;
    type Arguments = SyslogArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let config = args.config;
        config.validate()?;
        let bound = receiver::bind(&config).await?;
        let addrs = SyslogAddrs {
            udp: bound.udp_addr(),
            tcp: bound.tcp_addr(),
        };
        let metrics = args.metrics;
        let gate = Arc::new(Gate::new(&config, args.sources, metrics.clone()));
        let (queue_tx, queue_rx) = mpsc::channel(config.queue_capacity);
        let (control_tx, control_rx) = mpsc::channel(16);
        let pipeline = Pipeline::new(&config, gate.clone(), metrics.clone());
        let mut tasks = Tasks::default();
        tasks.pipeline = Some(supervised(
            &myself,
            "pipeline",
            run_pipeline(
                pipeline,
                queue_rx,
                control_rx,
                args.uplink,
                metrics.clone(),
                tick_period(&config),
            ),
        ));
        if let Some(socket) = bound.udp {
            tasks.sockets.push(supervised(
                &myself,
                "udp",
                receiver::run_udp(
                    socket,
                    config.max_udp_bytes,
                    gate.clone(),
                    queue_tx.clone(),
                    metrics.clone(),
                ),
            ));
        }
        if let Some(listener) = bound.tcp {
            tasks.sockets.push(supervised(
                &myself,
                "tcp",
                receiver::run_tcp(
                    listener,
                    TcpLimits::from_config(&config),
                    gate.clone(),
                    queue_tx,
                    metrics,
                ),
            ));
        }
        tracing::info!(udp = ?addrs.udp, tcp = ?addrs.tcp, "syslog receiver listening");
        Ok(SyslogState {
            gate,
            control: control_tx,
            addrs,
            tasks,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SyslogMsg::SetUplink(uplink) => {
                state
                    .control
                    .send(Control::SetUplink(uplink))
                    .await
                    .map_err(|_| "the syslog pipeline task is gone")?;
            }
            SyslogMsg::SetSources(sources) => state.gate.set_sources(sources),
            SyslogMsg::Addrs(reply) => {
                let _ = reply.send(state.addrs);
            }
            SyslogMsg::TaskEnded(task) => {
                return Err(format!("the syslog {task} task ended").into());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.tasks.close_sockets().await;
        let (done, stopped) = oneshot::channel();
        if state.control.send(Control::Stop(done)).await.is_ok()
            && tokio::time::timeout(STOP_WAIT, stopped).await.is_err()
        {
            tracing::warn!("syslog pipeline did not stop in time");
        }
        Ok(())
    }
}
