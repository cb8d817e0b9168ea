//! The root of the server's actor tree: one [`TenantSupervisor`] per tenant, started
//! for every stored tenant and on the first batch of a new one, restarted if it fails.

use super::engine_actor::CycleHook;
use super::ports::{Clock, DomainStore};
use super::tenant::{TenantArgs, TenantMsg, TenantSupervisor};
use crate::alert::Notification;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub enum RootMsg {
    /// A message for one tenant's supervisor (started if needed).
    Tenant {
        tenant: String,
        msg: TenantMsg,
    },
    Restart(String),
}

pub struct RootArgs<S, C> {
    pub store: Arc<S>,
    pub clock: Arc<C>,
    pub timers: bool,
    pub notify: Option<UnboundedSender<Notification>>,
    pub on_cycle: Option<CycleHook>,
    pub on_event: Option<super::EventHook>,
    pub limits: super::ActorLimits,
    pub correlation: super::CorrelationOptions,
}

pub struct RootActor<S, C>(std::marker::PhantomData<fn() -> (S, C)>);

impl<S, C> Default for RootActor<S, C> {
    fn default() -> Self {
        RootActor(std::marker::PhantomData)
    }
}

pub struct RootState<S, C> {
    args: RootArgs<S, C>,
    tenants: HashMap<String, ActorRef<TenantMsg>>,
    by_id: HashMap<ActorId, String>,
}

impl<S: DomainStore, C: Clock> RootState<S, C> {
    async fn tenant(
        &mut self,
        myself: &ActorRef<RootMsg>,
        tenant: &str,
    ) -> Result<ActorRef<TenantMsg>, ActorProcessingErr> {
        if let Some(t) = self.tenants.get(tenant) {
            return Ok(t.clone());
        }
        let args = TenantArgs {
            tenant: tenant.to_owned(),
            store: Arc::clone(&self.args.store),
            clock: Arc::clone(&self.args.clock),
            timers: self.args.timers,
            notify: self.args.notify.clone(),
            on_cycle: self.args.on_cycle.clone(),
            on_event: self.args.on_event.clone(),
            limits: self.args.limits,
            correlation: self.args.correlation.clone(),
        };
        let (t, _) = Actor::spawn_linked(
            None,
            TenantSupervisor::<S, C>::default(),
            args,
            myself.get_cell(),
        )
        .await?;
        self.by_id.insert(t.get_id(), tenant.to_owned());
        self.tenants.insert(tenant.to_owned(), t.clone());
        Ok(t)
    }
}

impl<S: DomainStore, C: Clock> Actor for RootActor<S, C> {
    type Msg = RootMsg;
    type State = RootState<S, C>;
    type Arguments = RootArgs<S, C>;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs<S, C>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RootState {
            args,
            tenants: HashMap::new(),
            by_id: HashMap::new(),
        };
        for t in state.args.store.tenants().await? {
            state.tenant(&myself, &t).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Tenant { tenant, msg } => match state.tenant(&myself, &tenant).await {
                Ok(t) => {
                    let _ = t.cast(msg);
                }
                Err(e) => tracing::error!(%tenant, error = %e, "tenant supervisor not started"),
            },
            RootMsg::Restart(tenant) => {
                if let Err(e) = state.tenant(&myself, &tenant).await {
                    tracing::error!(%tenant, error = %e, "tenant supervisor restart failed; retrying");
                    myself.send_after(Duration::from_secs(1), move || RootMsg::Restart(tenant));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let cell = match evt {
            SupervisionEvent::ActorFailed(cell, _)
            | SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            _ => return Ok(()),
        };
        if let Some(tenant) = state.by_id.remove(&cell.get_id()) {
            state.tenants.remove(&tenant);
            tracing::warn!(%tenant, "tenant supervisor stopped; restarting");
            myself.send_after(Duration::from_millis(200), move || RootMsg::Restart(tenant));
        }
        Ok(())
    }
}
