//! The supervisor of one tenant: a RouterActor per device, a ProbeTargetActor per
//! probe target, a LinkActor per link and the alert engine. It routes each batch to the
//! actors it concerns and restarts a child that fails, which then rebuilds itself from
//! the store.

use super::correlator_actor::{CorrelatorActor, CorrelatorArgs, CorrelatorMsg};
use super::engine_actor::{AlertView, CycleHook, EngineActor, EngineArgs, EngineMsg};
use super::events::{EntityActor, TreeEvent};
use super::link::{LinkActor, LinkMsg, LinkView};
use super::ports::{Clock, DomainStore};
use super::probe::{ProbeMsg, ProbeTargetActor, ProbeView};
use super::router::{RouterActor, RouterArgs, RouterMsg, RouterView};
use crate::alert::{CycleStats, Notification, Schedule};
use ispvm_proto::{Batch, EntityKey, Event, MetricName, MetricSample};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Longest wait before restarting a failed child.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often idle entity actors are looked for (with timers on).
const REAP_EVERY: Duration = Duration::from_secs(60);

/// A child of the tenant supervisor, by what it watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKey {
    Engine,
    Correlator,
    Router(String),
    Probe(String),
    Link(String),
}

pub enum TenantMsg {
    Ingest(Arc<Batch>),
    /// Inventory, rules or maintenance changed: links are re-read, the engine reloads.
    Reload,
    Alerts(RpcReplyPort<Vec<AlertView>>),
    Incidents(RpcReplyPort<Vec<crate::incident::Incident>>),
    Analysis(RpcReplyPort<crate::rca::Analysis>),
    CorrelateNow(RpcReplyPort<Vec<crate::incident::IncidentChange>>),
    IncidentAction {
        id: u64,
        by: crate::incident::ActionBy,
        action: crate::incident::IncidentAction,
        reply: RpcReplyPort<Result<crate::incident::Incident, crate::incident::ActionError>>,
    },
    EvaluateNow(Schedule, RpcReplyPort<CycleStats>),
    Router(String, RpcReplyPort<Option<RouterView>>),
    Probe(String, RpcReplyPort<Option<ProbeView>>),
    Link(String, RpcReplyPort<Option<LinkView>>),
    /// Live children by key, for supervision tests and the cluster-state API.
    Children(RpcReplyPort<Vec<ChildKey>>),
    /// Makes a child fail as a defect would (supervision tests).
    CrashChild(ChildKey),
    EngineFootprint(RpcReplyPort<(usize, usize)>),
    Respawn(ChildKey),
    /// Stop entity actors idle beyond the limit; answers how many (timer or test).
    Reap(RpcReplyPort<usize>),
    ReapTick,
}

pub struct TenantArgs<S, C> {
    pub tenant: String,
    pub store: Arc<S>,
    pub clock: Arc<C>,
    pub timers: bool,
    pub notify: Option<UnboundedSender<Notification>>,
    pub on_cycle: Option<CycleHook>,
    pub on_event: Option<super::EventHook>,
    pub limits: super::ActorLimits,
    pub correlation: super::CorrelationOptions,
}

impl<S, C> Clone for TenantArgs<S, C> {
    fn clone(&self) -> Self {
        TenantArgs {
            tenant: self.tenant.clone(),
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            timers: self.timers,
            notify: self.notify.clone(),
            on_cycle: self.on_cycle.clone(),
            on_event: self.on_event.clone(),
            limits: self.limits,
            correlation: self.correlation.clone(),
        }
    }
}

pub struct TenantSupervisor<S, C>(std::marker::PhantomData<fn() -> (S, C)>);

impl<S, C> Default for TenantSupervisor<S, C> {
    fn default() -> Self {
        TenantSupervisor(std::marker::PhantomData)
    }
}

pub struct TenantState<S, C> {
    args: TenantArgs<S, C>,
    engine: Option<ActorRef<EngineMsg>>,
    correlator: Option<ActorRef<CorrelatorMsg>>,
    routers: HashMap<String, ActorRef<RouterMsg>>,
    probes: HashMap<String, ActorRef<ProbeMsg>>,
    links: HashMap<String, ActorRef<LinkMsg>>,
    link_specs: HashMap<String, super::ports::LinkSpec>,
    /// `(device, interface)` → links ending there.
    link_ends: HashMap<(String, String), Vec<String>>,
    by_id: HashMap<ActorId, ChildKey>,
    restarts: HashMap<ChildKey, u32>,
    /// When each router and probe actor last had data (clock ms).
    last_heard: HashMap<ChildKey, i64>,
    /// Entities not given an actor since the last reap (over the cap), by kind.
    over_cap: HashMap<EntityActor, u64>,
}

impl<S: DomainStore, C: Clock> TenantState<S, C> {
    fn report(&self, event: TreeEvent) {
        event.report(self.args.on_event.as_ref());
    }

    /// The actor of `key` did not start.
    fn not_started(&self, key: &ChildKey, error: &dyn std::fmt::Display) {
        let (kind, entity) = match key {
            ChildKey::Router(d) => (EntityActor::Router, d),
            ChildKey::Probe(t) => (EntityActor::Probe, t),
            ChildKey::Link(l) => (EntityActor::Link, l),
            ChildKey::Engine | ChildKey::Correlator => return,
        };
        self.report(TreeEvent::NotStarted {
            tenant: self.args.tenant.clone(),
            kind,
            entity: entity.clone(),
            error: error.to_string(),
        });
    }

    async fn spawn(&mut self, myself: &ActorCell, key: ChildKey) -> Result<(), ActorProcessingErr> {
        let a = &self.args;
        let cell = match &key {
            ChildKey::Engine => {
                let args = EngineArgs {
                    tenant: a.tenant.clone(),
                    store: Arc::clone(&a.store),
                    clock: Arc::clone(&a.clock),
                    timers: a.timers,
                    notify: a.notify.clone(),
                    on_cycle: a.on_cycle.clone(),
                    periods: a.correlation.periods,
                };
                let (r, _) =
                    Actor::spawn_linked(None, EngineActor::<S, C>::default(), args, myself.clone())
                        .await?;
                let cell = r.get_cell();
                if let Some(c) = &self.correlator {
                    let _ = c.cast(CorrelatorMsg::Engine(r.clone()));
                }
                self.engine = Some(r);
                cell
            }
            ChildKey::Correlator => {
                let args = CorrelatorArgs {
                    tenant: a.tenant.clone(),
                    store: Arc::clone(&a.store),
                    clock: Arc::clone(&a.clock),
                    timers: a.timers,
                    board: a.correlation.board,
                    incidents: a.correlation.incidents,
                    on_incident: a.correlation.on_incident.clone(),
                    periods: a.correlation.periods,
                };
                let (r, _) = Actor::spawn_linked(
                    None,
                    CorrelatorActor::<S, C>::default(),
                    args,
                    myself.clone(),
                )
                .await?;
                if let Some(e) = &self.engine {
                    let _ = r.cast(CorrelatorMsg::Engine(e.clone()));
                }
                let cell = r.get_cell();
                self.correlator = Some(r);
                cell
            }
            ChildKey::Router(d) => {
                let args = RouterArgs {
                    tenant: a.tenant.clone(),
                    device: d.clone(),
                    store: Arc::clone(&a.store),
                    on_event: a.on_event.clone(),
                };
                let (r, _) =
                    Actor::spawn_linked(None, RouterActor::<S>::default(), args, myself.clone())
                        .await?;
                let cell = r.get_cell();
                self.routers.insert(d.clone(), r);
                cell
            }
            ChildKey::Probe(t) => {
                let (r, _) =
                    Actor::spawn_linked(None, ProbeTargetActor, t.clone(), myself.clone()).await?;
                let cell = r.get_cell();
                self.probes.insert(t.clone(), r);
                cell
            }
            ChildKey::Link(id) => {
                let Some(spec) = self.link_specs.get(id).cloned() else {
                    return Ok(());
                };
                let (r, _) = Actor::spawn_linked(None, LinkActor, spec, myself.clone()).await?;
                let cell = r.get_cell();
                self.links.insert(id.clone(), r);
                cell
            }
        };
        self.by_id.insert(cell.get_id(), key);
        Ok(())
    }

    /// Whether a new entity actor may start; counts and reports the refusal otherwise.
    fn room_for(&mut self, key: &ChildKey) -> bool {
        let (kind, held, max) = match key {
            ChildKey::Router(_) => (
                EntityActor::Router,
                self.routers.len(),
                self.args.limits.max_routers,
            ),
            ChildKey::Probe(_) => (
                EntityActor::Probe,
                self.probes.len(),
                self.args.limits.max_probes,
            ),
            ChildKey::Engine | ChildKey::Correlator | ChildKey::Link(_) => return true,
        };
        if held < max {
            return true;
        }
        let refused = self.over_cap.entry(kind).or_default();
        *refused += 1;
        if *refused == 1 {
            // The first refusal is reported at once; the rest with the next reap.
            self.report(TreeEvent::OverCap {
                tenant: self.args.tenant.clone(),
                kind,
                max,
                refused: 1,
            });
        }
        false
    }

    /// Stops the router and probe actors that heard nothing for the idle limit. They
    /// leave the supervision map first, so their stop is not taken for a failure.
    fn reap(&mut self) -> usize {
        let now = self.args.clock.now_ms();
        let idle: Vec<ChildKey> = self
            .last_heard
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) > self.args.limits.idle_after_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &idle {
            self.last_heard.remove(key);
            let cell = match key {
                ChildKey::Router(d) => self.routers.get(d).map(|r| r.get_cell()),
                ChildKey::Probe(t) => self.probes.get(t).map(|r| r.get_cell()),
                ChildKey::Engine | ChildKey::Correlator | ChildKey::Link(_) => None,
            };
            if let Some(cell) = cell {
                self.by_id.remove(&cell.get_id());
                self.forget(key);
                self.restarts.remove(key);
                cell.stop(Some("idle".into()));
            }
        }
        if !idle.is_empty() {
            tracing::info!(
                tenant = %self.args.tenant,
                stopped = idle.len(),
                "idle entity actors stopped"
            );
        }
        // Refusals after the first of a kind (reported when it happened) are reported
        // in one event per kind and reap.
        for (kind, refused) in std::mem::take(&mut self.over_cap) {
            if refused > 1 {
                let max = match kind {
                    EntityActor::Router => self.args.limits.max_routers,
                    EntityActor::Probe => self.args.limits.max_probes,
                    EntityActor::Link => continue,
                };
                self.report(TreeEvent::OverCap {
                    tenant: self.args.tenant.clone(),
                    kind,
                    max,
                    refused: refused - 1,
                });
            }
        }
        idle.len()
    }

    fn forget(&mut self, key: &ChildKey) {
        match key {
            ChildKey::Engine => self.engine = None,
            ChildKey::Correlator => self.correlator = None,
            ChildKey::Router(d) => {
                self.routers.remove(d);
            }
            ChildKey::Probe(t) => {
                self.probes.remove(t);
            }
            ChildKey::Link(l) => {
                self.links.remove(l);
            }
        }
    }

    async fn reload_links(&mut self, myself: &ActorCell) {
        let specs = match self.args.store.links(&self.args.tenant).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(tenant = %self.args.tenant, error = %e, "links not loaded");
                return;
            }
        };
        self.link_specs = specs.into_iter().map(|s| (s.id.clone(), s)).collect();
        self.link_ends.clear();
        for s in self.link_specs.values() {
            for end in [&s.a, &s.b] {
                self.link_ends
                    .entry(end.clone())
                    .or_default()
                    .push(s.id.clone());
            }
        }
        let gone: Vec<String> = self
            .links
            .keys()
            .filter(|k| !self.link_specs.contains_key(*k))
            .cloned()
            .collect();
        for id in gone {
            if let Some(r) = self.links.remove(&id) {
                self.by_id.remove(&r.get_id());
                r.stop(Some("link removed".into()));
            }
        }
        let missing: Vec<String> = self
            .link_specs
            .keys()
            .filter(|k| !self.links.contains_key(*k))
            .cloned()
            .collect();
        for id in missing {
            if let Err(e) = self.spawn(myself, ChildKey::Link(id.clone())).await {
                self.not_started(&ChildKey::Link(id.clone()), &e);
            }
        }
    }

    async fn ingest(&mut self, myself: &ActorCell, batch: Arc<Batch>) {
        if let Some(engine) = &self.engine {
            let _ = engine.cast(EngineMsg::Observe(Arc::clone(&batch)));
        }
        if let Some(c) = &self.correlator {
            let _ = c.cast(CorrelatorMsg::Observe(Arc::clone(&batch)));
        }
        let mut per_device: BTreeMap<&str, (Vec<MetricSample>, Vec<Event>)> = BTreeMap::new();
        let mut per_probe: BTreeMap<&str, Vec<MetricSample>> = BTreeMap::new();
        for s in &batch.samples {
            match &s.entity {
                EntityKey::ProbeTarget(t) => per_probe.entry(t).or_default().push(s.clone()),
                other => {
                    if let Some(d) = other.device() {
                        per_device.entry(d).or_default().0.push(s.clone());
                    }
                    if let (EntityKey::Interface { device, name }, MetricName::InterfaceRunning) =
                        (other, s.metric)
                        && let Some(ids) = self.link_ends.get(&(device.clone(), name.clone()))
                    {
                        for id in ids {
                            if let Some(l) = self.links.get(id) {
                                let _ = l.cast(LinkMsg::End {
                                    device: device.clone(),
                                    interface: name.clone(),
                                    ts_ms: s.ts_ms,
                                    running: s.value >= 0.5,
                                });
                            }
                        }
                    }
                }
            }
        }
        for e in &batch.events {
            if let Some(d) = e.entity.device() {
                per_device.entry(d).or_default().1.push(e.clone());
            }
        }
        for d in &batch.inventory.devices {
            per_device.entry(d.key.as_str()).or_default();
        }
        let now = self.args.clock.now_ms();
        for (device, (samples, events)) in per_device {
            let key = ChildKey::Router(device.to_owned());
            if !self.routers.contains_key(device) {
                if !self.room_for(&key) {
                    continue;
                }
                if let Err(e) = self.spawn(myself, key.clone()).await {
                    self.not_started(&key, &e);
                    continue;
                }
            }
            self.last_heard.insert(key, now);
            if let Some(r) = self.routers.get(device) {
                let _ = r.cast(RouterMsg::Observe { samples, events });
            }
        }
        for (target, samples) in per_probe {
            let key = ChildKey::Probe(target.to_owned());
            if !self.probes.contains_key(target) {
                if !self.room_for(&key) {
                    continue;
                }
                if let Err(e) = self.spawn(myself, key.clone()).await {
                    self.not_started(&key, &e);
                    continue;
                }
            }
            self.last_heard.insert(key, now);
            if let Some(p) = self.probes.get(target) {
                let _ = p.cast(ProbeMsg::Observe {
                    vantage: batch.agent_id.clone(),
                    samples,
                });
            }
        }
    }
}

impl<S: DomainStore, C: Clock> Actor for TenantSupervisor<S, C> {
    type Msg = TenantMsg;
    type State = TenantState<S, C>;
    type Arguments = TenantArgs<S, C>;

    async fn pre_start(
        &self,
        myself: ActorRef<TenantMsg>,
        args: TenantArgs<S, C>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = TenantState {
            args,
            engine: None,
            correlator: None,
            routers: HashMap::new(),
            probes: HashMap::new(),
            links: HashMap::new(),
            link_specs: HashMap::new(),
            link_ends: HashMap::new(),
            by_id: HashMap::new(),
            restarts: HashMap::new(),
            last_heard: HashMap::new(),
            over_cap: HashMap::new(),
        };
        if state.args.timers {
            myself.send_interval(REAP_EVERY, || TenantMsg::ReapTick);
        }
        state.spawn(&myself.get_cell(), ChildKey::Engine).await?;
        state
            .spawn(&myself.get_cell(), ChildKey::Correlator)
            .await?;
        state.reload_links(&myself.get_cell()).await;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<TenantMsg>,
        msg: TenantMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        match msg {
            TenantMsg::Ingest(batch) => state.ingest(&cell, batch).await,
            TenantMsg::Reload => {
                state.reload_links(&cell).await;
                if let Some(e) = &state.engine {
                    let _ = e.cast(EngineMsg::Reload);
                }
                if let Some(c) = &state.correlator {
                    let _ = c.cast(CorrelatorMsg::Reload);
                }
            }
            TenantMsg::Incidents(reply) => relay(
                state.correlator.clone(),
                CorrelatorMsg::Incidents,
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::Analysis(reply) => relay(
                state.correlator.clone(),
                CorrelatorMsg::Analysis,
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::IncidentAction {
                id,
                by,
                action,
                reply,
            } => relay(
                state.correlator.clone(),
                move |r| CorrelatorMsg::Act {
                    id,
                    by,
                    action,
                    reply: r,
                },
                reply,
                |got| got.unwrap_or(Err(crate::incident::ActionError::Unavailable)),
            ),
            TenantMsg::CorrelateNow(reply) => relay(
                state.correlator.clone(),
                CorrelatorMsg::CycleNow,
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::Alerts(reply) => relay(
                state.engine.clone(),
                EngineMsg::Alerts,
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::EvaluateNow(s, reply) => relay(
                state.engine.clone(),
                move |p| EngineMsg::EvaluateNow(s, p),
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::EngineFootprint(reply) => relay(
                state.engine.clone(),
                EngineMsg::Footprint,
                reply,
                Option::unwrap_or_default,
            ),
            TenantMsg::Router(d, reply) => relay(
                state.routers.get(&d).cloned(),
                RouterMsg::View,
                reply,
                |v| v,
            ),
            TenantMsg::Probe(t, reply) => {
                relay(state.probes.get(&t).cloned(), ProbeMsg::View, reply, |v| v)
            }
            TenantMsg::Link(id, reply) => {
                relay(state.links.get(&id).cloned(), LinkMsg::View, reply, |v| v)
            }
            TenantMsg::Children(reply) => {
                let mut keys: Vec<ChildKey> = state.by_id.values().cloned().collect();
                keys.sort();
                let _ = reply.send(keys);
            }
            TenantMsg::CrashChild(key) => match &key {
                ChildKey::Engine => {
                    if let Some(e) = &state.engine {
                        let _ = e.cast(EngineMsg::Crash);
                    }
                }
                ChildKey::Router(d) => {
                    if let Some(r) = state.routers.get(d) {
                        let _ = r.cast(RouterMsg::Crash);
                    }
                }
                ChildKey::Correlator => {
                    if let Some(c) = &state.correlator {
                        let _ = c.cast(CorrelatorMsg::Crash);
                    }
                }
                ChildKey::Probe(_) | ChildKey::Link(_) => {}
            },
            TenantMsg::Reap(reply) => {
                let _ = reply.send(state.reap());
            }
            TenantMsg::ReapTick => {
                state.reap();
            }
            TenantMsg::Respawn(key) => {
                let present = match &key {
                    ChildKey::Engine => state.engine.is_some(),
                    ChildKey::Correlator => state.correlator.is_some(),
                    ChildKey::Router(d) => state.routers.contains_key(d),
                    ChildKey::Probe(t) => state.probes.contains_key(t),
                    ChildKey::Link(l) => state.links.contains_key(l),
                };
                if !present && let Err(e) = state.spawn(&cell, key.clone()).await {
                    tracing::error!(tenant = %state.args.tenant, child = ?key, error = %e, "restart failed; retrying");
                    schedule_respawn(&myself, state, key);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<TenantMsg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some(key) = state.by_id.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.forget(&key);
        tracing::warn!(tenant = %state.args.tenant, child = ?key, reason = %why, "actor stopped; restarting from stored state");
        schedule_respawn(&myself, state, key);
        Ok(())
    }
}

/// How long a relayed question may wait for the child.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks `child` from a task and sends `answer(its reply)` back, `None` when there is no
/// such child or it does not answer in time. The supervisor never waits on a child, so a
/// slow engine or router cannot hold up the routing of ingest.
fn relay<M, T, U>(
    child: Option<ActorRef<M>>,
    ask: impl FnOnce(RpcReplyPort<T>) -> M + Send + 'static,
    reply: RpcReplyPort<U>,
    answer: impl FnOnce(Option<T>) -> U + Send + 'static,
) where
    M: ractor::Message,
    T: Send + 'static,
    U: Send + 'static,
{
    tokio::spawn(async move {
        let got = match child {
            Some(c) => match c.call(ask, Some(RELAY_TIMEOUT)).await {
                Ok(ractor::rpc::CallResult::Success(v)) => Some(v),
                _ => None,
            },
            None => None,
        };
        let _ = reply.send(answer(got));
    });
}

fn schedule_respawn<S, C>(
    myself: &ActorRef<TenantMsg>,
    state: &mut TenantState<S, C>,
    key: ChildKey,
) {
    let n = state.restarts.entry(key.clone()).or_insert(0);
    *n = n.saturating_add(1);
    let backoff = Duration::from_millis(50u64.saturating_mul(1u64 << (*n).min(8))).min(MAX_BACKOFF);
    myself.send_after(backoff, move || TenantMsg::Respawn(key));
}
