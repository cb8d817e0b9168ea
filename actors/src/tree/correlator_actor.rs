//! The correlator of one tenant as an actor: it takes every batch, keeps the topology
//! from the inventory, and once per fast cycle asks the alert engine for its alerts,
//! runs root-cause analysis, brings the incidents up to date, persists them with their
//! transitions, hands each persisted transition on, and tells the engine which alerts
//! an upstream root cause silences.
//!
//! It asks the engine directly (the supervisor hands it the engine's address whenever
//! the engine starts), never the supervisor, so no two actors ever wait on each other.

use super::engine_actor::{AlertView, EngineMsg};
use super::ports::{Clock, DomainStore};
use crate::alert::Schedule;
use crate::correlate::{BoardPolicy, Correlator};
use crate::incident::{
    ActionBy, ActionError, Incident, IncidentAction, IncidentChange, IncidentPolicy,
};
use crate::rca::Analysis;
use ispvm_proto::Batch;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the correlator waits for the engine's alerts.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);
/// Resolved incidents older than this are not resumed after a restart (nor kept in
/// memory): past it, a fault that comes back is a new incident.
const KEEP_RESOLVED_MS: i64 = 86_400_000;

/// Called with every persisted transition (the notifier).
pub type IncidentHook = Arc<dyn Fn(&str, &Incident, &IncidentChange) + Send + Sync>;

pub enum CorrelatorMsg {
    Observe(Arc<Batch>),
    /// Inventory changed.
    Reload,
    /// The engine (re)started at this address.
    Engine(ActorRef<EngineMsg>),
    Tick,
    /// Runs one cycle now; answers with the transitions it persisted.
    CycleNow(RpcReplyPort<Vec<IncidentChange>>),
    Incidents(RpcReplyPort<Vec<Incident>>),
    Analysis(RpcReplyPort<Analysis>),
    /// An operator acts on an incident; answers with it as stored.
    Act {
        id: u64,
        by: ActionBy,
        action: IncidentAction,
        reply: RpcReplyPort<Result<Incident, ActionError>>,
    },
    Crash,
}

pub struct CorrelatorArgs<S, C> {
    pub tenant: String,
    pub store: Arc<S>,
    pub clock: Arc<C>,
    pub timers: bool,
    pub board: BoardPolicy,
    pub incidents: IncidentPolicy,
    pub on_incident: Option<IncidentHook>,
    pub periods: super::SchedulePeriods,
}

pub struct CorrelatorActor<S, C>(std::marker::PhantomData<fn() -> (S, C)>);

impl<S, C> Default for CorrelatorActor<S, C> {
    fn default() -> Self {
        CorrelatorActor(std::marker::PhantomData)
    }
}

pub struct CorrelatorState<S, C> {
    args: CorrelatorArgs<S, C>,
    correlator: Correlator,
    engine: Option<ActorRef<EngineMsg>>,
    /// Incidents and transitions not yet persisted (the store failed): retried first.
    unsaved: (BTreeMap<u64, Incident>, Vec<IncidentChange>),
    timer: Option<JoinHandle<()>>,
}

impl<S: DomainStore, C: Clock> CorrelatorState<S, C> {
    async fn load_inventory(&mut self) -> Result<(), ActorProcessingErr> {
        let t = self.args.tenant.as_str();
        let store = &self.args.store;
        let entities = store.entities(t).await?;
        let links = store.links(t).await?;
        let names = store.display_names(t).await?;
        self.correlator.set_inventory(&entities, &links, &names);
        Ok(())
    }

    async fn alerts(&self) -> Vec<AlertView> {
        let Some(engine) = &self.engine else {
            return Vec::new();
        };
        match engine.call(EngineMsg::Alerts, Some(ENGINE_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success(v)) => v,
            _ => {
                tracing::warn!(tenant = %self.args.tenant, "alert engine did not answer the correlator");
                Vec::new()
            }
        }
    }

    /// Applies an operator's action to a copy, stores it with its audit record, and
    /// only then takes it: a refused or unstored action changes nothing.
    async fn act(
        &mut self,
        id: u64,
        by: &ActionBy,
        action: &IncidentAction,
    ) -> Result<Incident, ActionError> {
        let now = self.args.clock.now_ms();
        let mut copy = self
            .correlator
            .incidents()
            .get(id)
            .cloned()
            .ok_or(ActionError::Unknown(id))?;
        copy.act(&by.username, action, now)?;
        self.args
            .store
            .save_incident_action(&self.args.tenant, &copy, by, action)
            .await
            .map_err(|e| ActionError::Store(e.to_string()))?;
        if let Some(i) = self.correlator.incidents_mut().get_mut(id) {
            *i = copy.clone();
        }
        self.unsaved.0.remove(&id);
        Ok(copy)
    }

    async fn cycle(&mut self) -> Vec<IncidentChange> {
        let now = self.args.clock.now_ms();
        let alerts = self.alerts().await;
        let out = self.correlator.cycle(now, &alerts);
        for id in &out.touched {
            if let Some(i) = self.correlator.incidents().get(*id) {
                self.unsaved.0.insert(*id, i.clone());
            }
        }
        self.unsaved.1.extend(out.changes.iter().cloned());
        let mut saved = Vec::new();
        if !self.unsaved.0.is_empty() || !self.unsaved.1.is_empty() {
            let incidents: Vec<Incident> = self.unsaved.0.values().cloned().collect();
            match self
                .args
                .store
                .save_incidents(&self.args.tenant, &incidents, &self.unsaved.1)
                .await
            {
                Ok(()) => {
                    self.unsaved.0.clear();
                    saved = std::mem::take(&mut self.unsaved.1);
                }
                Err(e) => tracing::error!(
                    tenant = %self.args.tenant,
                    incidents = incidents.len(),
                    error = %e,
                    "incidents not persisted; retrying next cycle"
                ),
            }
        }
        // Handed on only once stored: a transition is announced after it is durable.
        for c in &saved {
            if let Some(i) = self.correlator.incidents().get(c.incident) {
                tracing::info!(
                    tenant = %self.args.tenant,
                    incident = c.incident,
                    transition = c.transition.as_str(),
                    title = %i.title,
                    confidence = i.confidence,
                    "incident"
                );
                if let Some(hook) = &self.args.on_incident {
                    hook(&self.args.tenant, i, c);
                }
            }
        }
        if let Some(engine) = &self.engine {
            let _ = engine.cast(EngineMsg::Suppress(out.suppress));
        }
        self.correlator
            .incidents_mut()
            .forget_resolved(now, KEEP_RESOLVED_MS);
        saved
    }
}

impl<S: DomainStore, C: Clock> Actor for CorrelatorActor<S, C> {
    type Msg = CorrelatorMsg;
    type State = CorrelatorState<S, C>;
    type Arguments = CorrelatorArgs<S, C>;

    async fn pre_start(
        &self,
        myself: ActorRef<CorrelatorMsg>,
        args: CorrelatorArgs<S, C>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let correlator = Correlator::new(args.board, args.incidents);
        let mut state = CorrelatorState {
            args,
            correlator,
            engine: None,
            unsaved: (BTreeMap::new(), Vec::new()),
            timer: None,
        };
        state.load_inventory().await?;
        let now = state.args.clock.now_ms();
        let stored = state
            .args
            .store
            .incidents(&state.args.tenant, now - KEEP_RESOLVED_MS)
            .await?;
        state
            .correlator
            .incidents_mut()
            .restore(stored.incidents, stored.next_id);
        if state.args.timers {
            // Twice per fast cycle: a finding must be seen twice before it opens an
            // incident on its own, and the analysis is cheap next to a poll.
            let period = state.args.periods.of(Schedule::Fast) / 2;
            state.timer = Some(myself.send_interval(period, || CorrelatorMsg::Tick));
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<CorrelatorMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<CorrelatorMsg>,
        msg: CorrelatorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CorrelatorMsg::Observe(batch) => state.correlator.observe(&batch),
            CorrelatorMsg::Reload => {
                if let Err(e) = state.load_inventory().await {
                    tracing::error!(tenant = %state.args.tenant, error = %e, "correlator inventory reload failed");
                }
            }
            CorrelatorMsg::Engine(e) => state.engine = Some(e),
            CorrelatorMsg::Tick => {
                state.cycle().await;
            }
            CorrelatorMsg::CycleNow(reply) => {
                let saved = state.cycle().await;
                let _ = reply.send(saved);
            }
            CorrelatorMsg::Incidents(reply) => {
                let _ = reply.send(state.correlator.incidents().all().cloned().collect());
            }
            CorrelatorMsg::Analysis(reply) => {
                let _ = reply.send(state.correlator.analysis().clone());
            }
            CorrelatorMsg::Act {
                id,
                by,
                action,
                reply,
            } => {
                let _ = reply.send(state.act(id, &by, &action).await);
            }
            CorrelatorMsg::Crash => return Err("correlator crash requested".into()),
        }
        Ok(())
    }
}
