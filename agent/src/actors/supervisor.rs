//! The agent supervisor: starts the uplink and one poller per router, restarts a child
//! that fails (with exponential backoff), and changes the set of pollers live when the
//! router list changes, without restarting the agent.

use super::poller::{Poller, PollerArgs, PollerMsg};
use super::prober::{Prober, ProberArgs, ProberMsg};
use super::syslog::{SyslogArgs, SyslogMsg, SyslogReceiver};
use super::uplink::{Uplink, UplinkArgs, UplinkMsg};
use crate::config::{AgentConfig, RouterConfig};
use crate::data_dir::DataDir;
use crate::internal_events::{ActorRestarted, AgentMetrics, InternalEvent, RoutersOwned};
use crate::state::AgentState;
use crate::uplink::QuicUplink;
use ispvm_proto::{EntityKey, Event, EventKind, Severity};
use ispvm_transport::TlsMaterial;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A restart more than this long after the previous one starts the backoff afresh.
const RESTART_WINDOW: Duration = Duration::from_secs(60);
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(200);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// This many restarts within [`RESTART_WINDOW`] is a crash loop: a poller is parked for
/// [`CRASH_LOOP_PARK`] (one broken router must not cost the agent), the uplink escalates
/// (the supervisor stops, the process exits non-zero and its service manager restarts it:
/// without an uplink the agent is useless).
const CRASH_LOOP_RESTARTS: u32 = 5;
const CRASH_LOOP_PARK: Duration = Duration::from_secs(300);
/// How long a graceful stop waits for the last batches to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKey {
    Uplink,
    Poller(String),
    Prober(String),
    Syslog,
}

pub enum SupervisorMsg {
    /// Replace the set of polled routers (config reload, ownership change).
    SetRouters(Vec<RouterConfig>),
    /// Replace the set of probe targets, live.
    SetTargets(Vec<crate::probe::config::ProbeTargetConfig>),
    /// The prober of a target, to ask it for a traceroute.
    Prober(String, RpcReplyPort<Option<ActorRef<ProberMsg>>>),
    /// The last round of every probe target, for `/v1/state`.
    ProbeRounds(RpcReplyPort<BTreeMap<String, Option<crate::probe::RoundReport>>>),
    /// Restart a child after its backoff.
    Restart(ChildKey),
    /// Stop pollers, drain the uplink, stop it; then answer.
    Shutdown(RpcReplyPort<()>),
    /// The running children, for observability and tests.
    Children(RpcReplyPort<Vec<(ChildKey, ActorCell)>>),
    /// Hands a message to the uplink, whichever incarnation runs (dropped while it
    /// restarts: callers send state that is sent again).
    ToUplink(UplinkMsg),
}

pub struct SupervisorArgs {
    pub config: AgentConfig,
    pub tls: TlsMaterial,
    pub metrics: Arc<AgentMetrics>,
    pub syslog_metrics: Arc<crate::syslog::SyslogMetrics>,
    pub probe_metrics: Arc<crate::probe::ProbeMetrics>,
    pub state: Arc<AgentState>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    desired: BTreeMap<String, RouterConfig>,
    pollers: BTreeMap<String, ActorRef<PollerMsg>>,
    uplink: Option<ActorRef<UplinkMsg>>,
    syslog: Option<ActorRef<SyslogMsg>>,
    probers: BTreeMap<String, ActorRef<ProberMsg>>,
    /// One set of ICMP sockets for every probe target of the agent.
    pinger: Arc<crate::probe::icmp::IcmpPinger>,
    children: HashMap<ActorId, ChildKey>,
    restarts: HashMap<ChildKey, (u32, Instant)>,
    stopping: bool,
    /// Shared by all pollers: the cap on polls at once.
    limiter: Arc<tokio::sync::Semaphore>,
}

pub struct AgentSupervisor;

impl SupervisorState {
    async fn start_uplink(&mut self, myself: &ActorCell) -> Result<(), ActorProcessingErr> {
        let c = &self.args.config;
        let transport = QuicUplink::to_any(
            c.server.addr.0.clone(),
            c.server.server_name.clone(),
            &self.args.tls,
            Duration::from_millis(c.uplink.connect_timeout_ms),
            Duration::from_millis(c.uplink.exchange_timeout_ms),
        )?
        .with_source(c.source_address);
        let fallback = match c.server.https_addr {
            Some(addr) => Some(
                crate::uplink::HttpsUplink::new(
                    addr,
                    c.server.server_name.clone(),
                    &self.args.tls,
                    Duration::from_millis(c.uplink.exchange_timeout_ms),
                )?
                .with_source(c.source_address),
            ),
            None => None,
        };
        let args = UplinkArgs {
            fallback,
            agent_id: c.agent_id.clone(),
            tenant_id: c.tenant_id.clone(),
            config: c.uplink.clone(),
            transport,
            seq_file: DataDir::new(&c.data_dir).seq_file(),
            quarantine_file: DataDir::new(&c.data_dir).quarantine_file(),
            buffer_dir: DataDir::new(&c.data_dir).buffer(),
            buffer: c.buffer.buffer_config(),
            metrics: self.args.metrics.clone(),
            state: self.args.state.clone(),
        };
        let (uplink, _) = Actor::spawn_linked(None, Uplink, args, myself.clone()).await?;
        self.children.insert(uplink.get_id(), ChildKey::Uplink);
        for p in self.pollers.values() {
            let _ = p.cast(PollerMsg::SetUplink(uplink.clone()));
        }
        if let Some(s) = &self.syslog {
            let _ = s.cast(SyslogMsg::SetUplink(uplink.clone()));
        }
        for p in self.probers.values() {
            let _ = p.cast(ProberMsg::SetUplink(uplink.clone()));
        }
        self.uplink = Some(uplink);
        Ok(())
    }

    async fn start_poller(
        &mut self,
        myself: &ActorCell,
        key: &str,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(router), Some(uplink)) = (self.desired.get(key), self.uplink.clone()) else {
            return Ok(());
        };
        let args = PollerArgs {
            router: router.clone(),
            site: self.args.config.site.clone(),
            poll: self.args.config.poll.clone(),
            uplink,
            metrics: self.args.metrics.clone(),
            state: self.args.state.clone(),
            limiter: self.limiter.clone(),
            source_address: self.args.config.source_address,
        };
        let (poller, _) = Actor::spawn_linked(None, Poller, args, myself.clone()).await?;
        self.children
            .insert(poller.get_id(), ChildKey::Poller(key.to_owned()));
        self.pollers.insert(key.to_owned(), poller);
        Ok(())
    }

    async fn stop_poller(&mut self, key: &str) {
        if let Some(p) = self.pollers.remove(key) {
            self.children.remove(&p.get_id());
            let _ = p
                .stop_and_wait(Some("router removed".into()), Some(Duration::from_secs(5)))
                .await;
        }
        self.args.state.remove_router(key);
    }

    async fn set_routers(&mut self, myself: &ActorRef<SupervisorMsg>, routers: Vec<RouterConfig>) {
        let new: BTreeMap<String, RouterConfig> =
            routers.into_iter().map(|r| (r.key.clone(), r)).collect();
        let stale: Vec<String> = self
            .desired
            .iter()
            .filter(|(k, cfg)| new.get(*k) != Some(cfg))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &stale {
            self.stop_poller(key).await;
        }
        self.desired = new;
        let missing: Vec<String> = self
            .desired
            .keys()
            .filter(|k| !self.pollers.contains_key(*k))
            .cloned()
            .collect();
        for key in missing {
            self.try_start_poller(myself, &key).await;
        }
        if let Some(s) = &self.syslog {
            let routers: Vec<RouterConfig> = self.desired.values().cloned().collect();
            let _ = s.cast(SyslogMsg::SetSources(
                self.args.config.syslog.source_map(&routers),
            ));
        }
        RoutersOwned(self.pollers.len()).emit(&self.args.metrics);
    }

    /// Starts the prober of a configured target.
    async fn start_prober(
        &mut self,
        myself: &ActorCell,
        key: &str,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(target), Some(uplink)) = (
            self.args
                .config
                .probes
                .targets
                .iter()
                .find(|t| t.key == key)
                .cloned(),
            self.uplink.clone(),
        ) else {
            return Ok(());
        };
        let args = ProberArgs {
            start_jitter_ms: target.interval_ms,
            target,
            pinger: self.pinger.clone(),
            uplink,
            metrics: self.args.probe_metrics.clone(),
        };
        let (prober, _) = Actor::spawn_linked(None, Prober, args, myself.clone()).await?;
        self.children
            .insert(prober.get_id(), ChildKey::Prober(key.to_owned()));
        self.probers.insert(key.to_owned(), prober);
        Ok(())
    }

    /// Replaces the probe targets: changed or removed targets' probers stop, new and
    /// changed ones start; untouched ones keep running.
    async fn set_targets(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        targets: Vec<crate::probe::config::ProbeTargetConfig>,
    ) {
        let old = std::mem::replace(&mut self.args.config.probes.targets, targets);
        let keep: Vec<String> = old
            .iter()
            .filter(|t| self.args.config.probes.targets.contains(t))
            .map(|t| t.key.clone())
            .collect();
        let stale: Vec<String> = self
            .probers
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for key in stale {
            if let Some(p) = self.probers.remove(&key) {
                self.children.remove(&p.get_id());
                let _ = p
                    .stop_and_wait(Some("target removed".into()), Some(Duration::from_secs(5)))
                    .await;
            }
        }
        let missing: Vec<String> = self
            .args
            .config
            .probes
            .targets
            .iter()
            .filter(|t| !self.probers.contains_key(&t.key))
            .map(|t| t.key.clone())
            .collect();
        for key in missing {
            if let Err(e) = self.start_prober(&myself.get_cell(), &key).await {
                self.schedule_restart(myself, ChildKey::Prober(key), &format!("cannot start: {e}"));
            }
        }
    }

    /// Starts every prober; one that cannot start is retried like one that crashed.
    async fn start_probers(&mut self, myself: &ActorRef<SupervisorMsg>) {
        let keys: Vec<String> = self
            .args
            .config
            .probes
            .targets
            .iter()
            .map(|t| t.key.clone())
            .collect();
        for key in keys {
            if let Err(e) = self.start_prober(&myself.get_cell(), &key).await {
                self.schedule_restart(myself, ChildKey::Prober(key), &format!("cannot start: {e}"));
            }
        }
    }

    /// Starts the syslog receiver when it is enabled.
    async fn start_syslog(&mut self, myself: &ActorCell) -> Result<(), ActorProcessingErr> {
        let config = &self.args.config.syslog;
        let Some(uplink) = self.uplink.clone().filter(|_| config.enabled) else {
            return Ok(());
        };
        let routers: Vec<RouterConfig> = self.desired.values().cloned().collect();
        let args = SyslogArgs {
            config: config.clone(),
            sources: config.source_map(&routers),
            uplink,
            metrics: self.args.syslog_metrics.clone(),
        };
        let (syslog, _) = Actor::spawn_linked(None, SyslogReceiver, args, myself.clone()).await?;
        self.children.insert(syslog.get_id(), ChildKey::Syslog);
        self.syslog = Some(syslog);
        Ok(())
    }

    /// Starts a poller; one that cannot start is retried like one that crashed, so one
    /// bad router never takes the supervisor down.
    async fn try_start_poller(&mut self, myself: &ActorRef<SupervisorMsg>, key: &str) {
        if let Err(e) = self.start_poller(&myself.get_cell(), key).await {
            self.schedule_restart(
                myself,
                ChildKey::Poller(key.to_owned()),
                &format!("cannot start: {e}"),
            );
        }
    }

    /// Schedules the restart of a child that stopped unexpectedly.
    fn schedule_restart(&mut self, myself: &ActorRef<SupervisorMsg>, key: ChildKey, reason: &str) {
        match &key {
            ChildKey::Uplink => self.uplink = None,
            ChildKey::Syslog => self.syslog = None,
            ChildKey::Prober(k) => {
                self.probers.remove(k);
            }
            ChildKey::Poller(k) => {
                self.pollers.remove(k);
            }
        }
        let now = Instant::now();
        let attempt = match self.restarts.get(&key) {
            Some((n, at)) if now.duration_since(*at) < RESTART_WINDOW => n + 1,
            _ => 1,
        };
        self.restarts.insert(key.clone(), (attempt, now));
        let crash_loop = attempt >= CRASH_LOOP_RESTARTS;
        let backoff = if crash_loop {
            CRASH_LOOP_PARK
        } else {
            RESTART_BACKOFF_MIN
                .saturating_mul(1u32 << attempt.min(16))
                .min(RESTART_BACKOFF_MAX)
        };
        let (actor, name) = match &key {
            ChildKey::Uplink => ("uplink", "uplink".to_owned()),
            ChildKey::Syslog => ("syslog", "syslog".to_owned()),
            ChildKey::Prober(k) => ("prober", k.clone()),
            ChildKey::Poller(k) => ("poller", k.clone()),
        };
        ActorRestarted {
            actor,
            name: &name,
            reason,
            attempt,
            crash_loop,
        }
        .emit(&self.args.metrics);
        if let Some(uplink) = &self.uplink {
            let entity = match &key {
                ChildKey::Poller(k) => EntityKey::Device(k.clone()),
                ChildKey::Uplink | ChildKey::Syslog => {
                    EntityKey::Device(self.args.config.agent_id.clone())
                }
                ChildKey::Prober(k) => EntityKey::ProbeTarget(k.clone()),
            };
            let mut event = Event::new(
                entity,
                EventKind::ActorRestart,
                Severity::Warning,
                format!(
                    "agent {} restarts its {actor} {name}: {reason}",
                    self.args.config.agent_id
                ),
            );
            if crash_loop {
                event.severity = Severity::Error;
                event.kind = EventKind::MonitoringDegraded;
                event.message = format!(
                    "agent {}: {actor} {name} is crash-looping ({attempt} restarts within {} s); next attempt in {} s: {reason}",
                    self.args.config.agent_id,
                    RESTART_WINDOW.as_secs(),
                    CRASH_LOOP_PARK.as_secs()
                );
                event.attrs.insert("crash_loop".into(), "true".into());
            }
            event.attrs.insert("attempt".into(), attempt.to_string());
            event
                .attrs
                .insert("agent".into(), self.args.config.agent_id.clone());
            let _ = uplink.cast(UplinkMsg::Event(event));
        }
        if crash_loop && key == ChildKey::Uplink {
            tracing::error!(
                reason,
                "the uplink is crash-looping; the agent stops so its service manager restarts it"
            );
            myself.stop(Some(format!("uplink crash loop: {reason}")));
            return;
        }
        myself.send_after(backoff, move || SupervisorMsg::Restart(key));
    }
}

impl Actor for AgentSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        std::fs::create_dir_all(&args.config.data_dir)?;
        let routers = args.config.routers.clone();
        let max_polls = args.config.poll.max_concurrent_polls.max(1);
        let icmp_socket = args.config.probes.icmp_socket;
        let source_address = args.config.source_address;
        let mut state = SupervisorState {
            args,
            desired: BTreeMap::new(),
            pollers: BTreeMap::new(),
            uplink: None,
            syslog: None,
            probers: BTreeMap::new(),
            pinger: Arc::new(
                crate::probe::icmp::IcmpPinger::new(icmp_socket).with_source(source_address),
            ),
            children: HashMap::new(),
            restarts: HashMap::new(),
            stopping: false,
            limiter: Arc::new(tokio::sync::Semaphore::new(max_polls)),
        };
        state.start_uplink(&myself.get_cell()).await?;
        state.set_routers(&myself, routers).await;
        state.start_probers(&myself).await;
        // A syslog port in use is a configuration error: the agent does not start.
        state.start_syslog(&myself.get_cell()).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::SetRouters(routers) => {
                if !state.stopping {
                    state.set_routers(&myself, routers).await;
                }
            }
            SupervisorMsg::SetTargets(targets) => {
                if !state.stopping {
                    state.set_targets(&myself, targets).await;
                }
            }
            SupervisorMsg::Prober(key, reply) => {
                let _ = reply.send(state.probers.get(&key).cloned());
            }
            SupervisorMsg::ProbeRounds(reply) => {
                let mut rounds = BTreeMap::new();
                for (key, prober) in &state.probers {
                    let last = ractor::call_t!(prober, ProberMsg::LastRound, 1_000)
                        .ok()
                        .flatten();
                    rounds.insert(key.clone(), last);
                }
                let _ = reply.send(rounds);
            }
            SupervisorMsg::Restart(key) => {
                if state.stopping {
                    return Ok(());
                }
                match key {
                    ChildKey::Prober(k) if !state.probers.contains_key(&k) => {
                        if let Err(e) = state.start_prober(&myself.get_cell(), &k).await {
                            state.schedule_restart(
                                &myself,
                                ChildKey::Prober(k),
                                &format!("cannot start: {e}"),
                            );
                        }
                    }
                    ChildKey::Syslog if state.syslog.is_none() => {
                        if let Err(e) = state.start_syslog(&myself.get_cell()).await {
                            state.schedule_restart(
                                &myself,
                                ChildKey::Syslog,
                                &format!("cannot start: {e}"),
                            );
                        }
                    }
                    ChildKey::Uplink if state.uplink.is_none() => {
                        state.start_uplink(&myself.get_cell()).await?
                    }
                    ChildKey::Poller(k) if !state.pollers.contains_key(&k) => {
                        state.try_start_poller(&myself, &k).await;
                    }
                    _ => {}
                }
            }
            SupervisorMsg::ToUplink(msg) => {
                if let Some(uplink) = &state.uplink {
                    let _ = uplink.cast(msg);
                }
            }
            SupervisorMsg::Children(reply) => {
                let mut children: Vec<(ChildKey, ActorCell)> = state
                    .pollers
                    .iter()
                    .map(|(k, p)| (ChildKey::Poller(k.clone()), p.get_cell()))
                    .collect();
                if let Some(s) = &state.syslog {
                    children.push((ChildKey::Syslog, s.get_cell()));
                }
                children.extend(
                    state
                        .probers
                        .iter()
                        .map(|(k, p)| (ChildKey::Prober(k.clone()), p.get_cell())),
                );
                if let Some(u) = &state.uplink {
                    children.push((ChildKey::Uplink, u.get_cell()));
                }
                let _ = reply.send(children);
            }
            SupervisorMsg::Shutdown(reply) => {
                state.stopping = true;
                for (_, p) in std::mem::take(&mut state.probers) {
                    state.children.remove(&p.get_id());
                    let _ = p
                        .stop_and_wait(Some("agent stopping".into()), Some(DRAIN_TIMEOUT))
                        .await;
                }
                // Syslog first: it hands its pending repeat summaries to the uplink.
                if let Some(s) = state.syslog.take() {
                    state.children.remove(&s.get_id());
                    let _ = s
                        .stop_and_wait(Some("agent stopping".into()), Some(DRAIN_TIMEOUT))
                        .await;
                }
                let keys: Vec<String> = state.pollers.keys().cloned().collect();
                for key in keys {
                    state.stop_poller(&key).await;
                }
                if let Some(uplink) = state.uplink.take() {
                    state.children.remove(&uplink.get_id());
                    match ractor::call_t!(
                        uplink,
                        UplinkMsg::Drain,
                        DRAIN_TIMEOUT.as_millis() as u64
                    ) {
                        Ok(0) => tracing::info!("uplink drained"),
                        Ok(left) => tracing::warn!(left, "stopping with batches undelivered"),
                        Err(e) => tracing::warn!(error = %e, "uplink did not drain in time"),
                    }
                    let _ = uplink
                        .stop_and_wait(Some("agent stopping".into()), Some(DRAIN_TIMEOUT))
                        .await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(key) = state.children.remove(&cell.get_id()) else {
            return Ok(()); // a child we stopped on purpose
        };
        if !state.stopping {
            state.schedule_restart(&myself, key, &reason);
        }
        Ok(())
    }
}
