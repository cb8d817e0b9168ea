//! The alert engine as an actor: timers for the three schedules, persistence of every
//! state change before anyone is told, and a restart that resumes from the store.

use super::ports::{Clock, DomainStore};
use crate::alert::{
    AlertChange, AlertState, CycleStats, Engine, EntityRef, Notification, Schedule,
};
use ispvm_proto::Batch;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// One alert as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub rule_id: String,
    pub entity: EntityRef,
    pub state: AlertState,
}

pub enum EngineMsg {
    Observe(Arc<Batch>),
    Tick(Schedule),
    /// Rules, inventory attributes or maintenance windows changed in the store.
    Reload,
    Alerts(RpcReplyPort<Vec<AlertView>>),
    /// Runs one cycle now and answers when its changes are persisted.
    EvaluateNow(Schedule, RpcReplyPort<CycleStats>),
    /// Series and points held, for memory accounting.
    Footprint(RpcReplyPort<(usize, usize)>),
    /// The alerts an upstream root cause silences now (the correlator), with why; every
    /// entity muted before and absent now is unmuted.
    Suppress(std::collections::BTreeMap<crate::alert::EntityRef, String>),
    Crash,
}

/// What one evaluation cycle did, for telemetry.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    pub tenant: String,
    pub schedule: Schedule,
    pub stats: CycleStats,
    pub took: Duration,
    /// Changes still waiting to be persisted after the cycle (the store failed).
    pub unsaved: usize,
}

/// Called after every cycle (the server counts and times cycles with it).
pub type CycleHook = Arc<dyn Fn(&CycleReport) + Send + Sync>;

pub struct EngineArgs<S, C> {
    pub tenant: String,
    pub store: Arc<S>,
    pub clock: Arc<C>,
    /// Run the schedules on timers (off in tests that drive cycles themselves).
    pub timers: bool,
    /// Where notifications go once persisted (the notifier).
    pub notify: Option<UnboundedSender<Notification>>,
    pub on_cycle: Option<CycleHook>,
    pub periods: super::SchedulePeriods,
}

pub struct EngineActor<S, C>(std::marker::PhantomData<fn() -> (S, C)>);

impl<S, C> Default for EngineActor<S, C> {
    fn default() -> Self {
        EngineActor(std::marker::PhantomData)
    }
}

pub struct EngineState<S, C> {
    args: EngineArgs<S, C>,
    engine: Engine,
    /// Changes not yet persisted (the store failed): retried before the next cycle's.
    unsaved: Vec<AlertChange>,
    timers: Vec<JoinHandle<()>>,
    /// Entities the correlator muted.
    muted: std::collections::BTreeSet<crate::alert::EntityRef>,
}

impl<S: DomainStore, C: Clock> EngineState<S, C> {
    async fn load(&mut self) -> Result<(), ActorProcessingErr> {
        let t = self.args.tenant.as_str();
        let store = &self.args.store;
        let rules = store.rules(t).await?;
        self.engine.set_rules(rules);
        for (key, attrs) in store.entities(t).await? {
            self.engine.upsert_entity(key, attrs);
        }
        self.engine
            .set_maintenance(store.maintenance_windows(t).await?);
        Ok(())
    }

    async fn cycle(&mut self, schedule: Schedule) -> CycleStats {
        let started = std::time::Instant::now();
        let stats = self.evaluate_and_persist(schedule).await;
        if let Some(hook) = &self.args.on_cycle {
            hook(&CycleReport {
                tenant: self.args.tenant.clone(),
                schedule,
                stats,
                took: started.elapsed(),
                unsaved: self.unsaved.len(),
            });
        }
        stats
    }

    async fn evaluate_and_persist(&mut self, schedule: Schedule) -> CycleStats {
        let now = self.args.clock.now_ms();
        let (changes, stats) = self.engine.evaluate(schedule, now);
        self.unsaved.extend(changes);
        if self.unsaved.is_empty() {
            return stats;
        }
        match self
            .args
            .store
            .save_alert_changes(&self.args.tenant, &self.unsaved)
            .await
        {
            Ok(()) => {
                for change in self.unsaved.drain(..) {
                    for n in change.notifications {
                        tracing::debug!(
                            tenant = %self.args.tenant,
                            rule = %n.rule_id,
                            entity = %n.entity,
                            kind = n.kind.as_str(),
                            level = n.level.as_str(),
                            why = %n.explanation.summary,
                            "alert notification"
                        );
                        if let Some(tx) = &self.args.notify {
                            let _ = tx.send(n);
                        }
                    }
                }
            }
            Err(e) => tracing::error!(
                tenant = %self.args.tenant,
                pending = self.unsaved.len(),
                error = %e,
                "alert state not persisted; retrying next cycle"
            ),
        }
        stats
    }
}

impl<S: DomainStore, C: Clock> Actor for EngineActor<S, C> {
    type Msg = EngineMsg;
    type State = EngineState<S, C>;
    type Arguments = EngineArgs<S, C>;

    async fn pre_start(
        &self,
        myself: ActorRef<EngineMsg>,
        args: EngineArgs<S, C>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = EngineState {
            args,
            engine: Engine::new(),
            unsaved: Vec::new(),
            timers: Vec::new(),
            muted: Default::default(),
        };
        state.load().await?;
        let t = state.args.tenant.clone();
        for (rule, entity, st) in state.args.store.alert_states(&t).await? {
            state.engine.restore(&rule, entity, st);
        }
        // Refill the windows so a restart does not judge on one cycle of data.
        let since = state
            .args
            .clock
            .now_ms()
            .saturating_sub(state.engine.horizon_ms());
        match state.args.store.recent_points(&t, since).await {
            Ok(points) => {
                for p in points {
                    state
                        .engine
                        .observe_point(&p.entity, p.metric, p.ts_ms, p.value, "stored");
                }
            }
            Err(e) => tracing::warn!(tenant = %t, error = %e, "alert windows not refilled"),
        }
        if state.args.timers {
            for s in Schedule::ALL {
                let period = state.args.periods.of(s);
                state
                    .timers
                    .push(myself.send_interval(period, move || EngineMsg::Tick(s)));
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EngineMsg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for t in state.timers.drain(..) {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<EngineMsg>,
        msg: EngineMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EngineMsg::Observe(batch) => {
                // The engine judges the present. Samples that arrive older than three
                // fast cycles (an agent replaying what it buffered while cut off) are
                // history: stored, shown, but not what alerts fire on now — true then,
                // they would raise alarms about a fault that has already ended.
                let late = state.args.clock.now_ms().saturating_sub(
                    i64::try_from(state.args.periods.of(Schedule::Fast).as_millis() * 3)
                        .unwrap_or(i64::MAX),
                );
                for s in batch.samples.iter().filter(|s| s.ts_ms >= late) {
                    state.engine.observe(s, &batch.agent_id);
                }
                for e in &batch.events {
                    state.engine.observe_event(e);
                }
            }
            EngineMsg::Tick(s) => {
                state.cycle(s).await;
            }
            EngineMsg::Reload => {
                if let Err(e) = state.load().await {
                    tracing::error!(tenant = %state.args.tenant, error = %e, "alert engine reload failed");
                }
            }
            EngineMsg::Alerts(reply) => {
                let mut all: Vec<AlertView> = state
                    .engine
                    .states()
                    .map(|(r, e, s)| AlertView {
                        rule_id: r.to_owned(),
                        entity: e.clone(),
                        state: s.clone(),
                    })
                    .collect();
                all.sort_by(|a, b| (&a.rule_id, &a.entity).cmp(&(&b.rule_id, &b.entity)));
                let _ = reply.send(all);
            }
            EngineMsg::EvaluateNow(s, reply) => {
                let stats = state.cycle(s).await;
                let _ = reply.send(stats);
            }
            EngineMsg::Footprint(reply) => {
                let _ = reply.send(state.engine.footprint());
            }
            EngineMsg::Suppress(now) => {
                for gone in state.muted.iter().filter(|e| !now.contains_key(*e)) {
                    state.engine.set_upstream_suppression(gone, None);
                }
                state.muted = now.keys().cloned().collect();
                for (entity, why) in now {
                    state.engine.set_upstream_suppression(&entity, Some(why));
                }
            }
            EngineMsg::Crash => return Err("alert engine crash requested".into()),
        }
        Ok(())
    }
}
