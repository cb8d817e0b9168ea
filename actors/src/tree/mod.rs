//! The server's actor tree: root → one supervisor per tenant → a RouterActor,
//! ProbeTargetActor and LinkActor per entity, plus the alert engine.
//!
//! [`MonitorTree`] is the handle the server holds: ingest hands it each stored batch,
//! the API asks it for live state and alerts.

pub mod correlator_actor;
pub mod engine_actor;
pub mod events;
pub mod link;
pub mod ports;
pub mod probe;
pub mod root;
pub mod router;
pub mod tenant;

pub use correlator_actor::IncidentHook;
pub use engine_actor::{AlertView, CycleHook, CycleReport};
pub use events::{EntityActor, EventHook, TreeEvent};
pub use link::{LinkStatus, LinkView};
pub use ports::{
    Clock, DisplayNames, DomainStore, LinkSpec, PortError, StoredIncidents, StoredPoint,
    SystemClock,
};
pub use probe::ProbeView;
pub use router::RouterView;
pub use tenant::ChildKey;

use crate::alert::{CycleStats, Notification, Schedule};
use ispvm_proto::Batch;
use ractor::{Actor, ActorRef, RpcReplyPort};
use root::{RootActor, RootArgs, RootMsg};
use std::sync::Arc;
use std::time::Duration;
use tenant::TenantMsg;
use tokio::sync::mpsc::UnboundedSender;

/// How long an API question to the tree may take before it is answered as unavailable.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the tree did not answer.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("actor tree failed to start: {0}")]
    Start(String),
    #[error("actor tree did not answer: {0}")]
    Ask(String),
}

/// The running tree.
#[derive(Clone)]
pub struct MonitorTree {
    root: ActorRef<RootMsg>,
}

impl std::fmt::Debug for MonitorTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorTree")
            .field("root", &self.root.get_id())
            .finish()
    }
}

/// How many entity actors one tenant may hold, and when an idle one is stopped.
///
/// Every entity an agent names (a device in a sample, a probe target) gets an actor;
/// without bounds one tenant's agents could make the shared server hold any number of
/// them, for ever. An entity beyond the cap is stored but not watched live (its samples
/// still reach the alert engine); an actor that heard nothing for `idle_after_ms` is
/// stopped, and started again by the entity's next data.
///
/// The server's `[actors]` section sets them for every tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ActorLimits {
    /// Router actors per tenant.
    pub max_routers: usize,
    /// Probe-target actors per tenant.
    pub max_probes: usize,
    /// An entity actor that heard nothing for this long is stopped.
    pub idle_after_ms: i64,
}

impl ActorLimits {
    /// The least idle time accepted: below a minute an actor would be stopped between
    /// two polls of a slow profile and rebuilt from the store at every sample.
    pub const MIN_IDLE_AFTER_MS: i64 = 60_000;

    /// Why these limits cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.max_routers == 0 || self.max_probes == 0 {
            return Some("max_routers and max_probes must be at least 1".into());
        }
        if self.idle_after_ms < Self::MIN_IDLE_AFTER_MS {
            return Some(format!(
                "idle_after_ms must be at least {}",
                Self::MIN_IDLE_AFTER_MS
            ));
        }
        None
    }
}

impl Default for ActorLimits {
    fn default() -> Self {
        ActorLimits {
            // Twice the default device quota: room for devices seen in samples before
            // their inventory, never without bound.
            max_routers: 20_000,
            max_probes: 20_000,
            // An hour without a sample: the device is no longer polled (a down device
            // still reports device.up = 0 every poll).
            idle_after_ms: 3_600_000,
        }
    }
}

/// How the tree runs.
pub struct TreeOptions {
    /// Evaluate alerts on the 10 s / 60 s / 5 min timers (tests drive cycles instead).
    pub timers: bool,
    pub notify: Option<UnboundedSender<Notification>>,
    /// Called after every evaluation cycle (telemetry).
    pub on_cycle: Option<CycleHook>,
    /// Called for every entity the tree cannot watch live (telemetry).
    pub on_event: Option<EventHook>,
    pub limits: ActorLimits,
    pub correlation: CorrelationOptions,
}

/// How often the tree evaluates: the alert engine's three schedules and the
/// correlator's cycle (with the fast schedule). Production intervals by default; a
/// simulation running faster than real time shortens them in proportion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulePeriods {
    pub fast_ms: u64,
    pub medium_ms: u64,
    pub slow_ms: u64,
}

impl Default for SchedulePeriods {
    fn default() -> Self {
        let ms = |s: Schedule| u64::try_from(s.period_ms()).unwrap_or(10_000);
        SchedulePeriods {
            fast_ms: ms(Schedule::Fast),
            medium_ms: ms(Schedule::Medium),
            slow_ms: ms(Schedule::Slow),
        }
    }
}

impl SchedulePeriods {
    /// The period of one schedule, at least 50 ms.
    pub fn of(&self, s: Schedule) -> Duration {
        let ms = match s {
            Schedule::Fast => self.fast_ms,
            Schedule::Medium => self.medium_ms,
            Schedule::Slow => self.slow_ms,
        };
        Duration::from_millis(ms.max(50))
    }

    /// Production periods divided by `speed`.
    pub fn scaled(speed: f64) -> Self {
        let d = SchedulePeriods::default();
        let s = |ms: u64| {
            if speed.is_finite() && speed > 0.0 {
                (ms as f64 / speed).round() as u64
            } else {
                ms
            }
        };
        SchedulePeriods {
            fast_ms: s(d.fast_ms),
            medium_ms: s(d.medium_ms),
            slow_ms: s(d.slow_ms),
        }
    }
}

/// How each tenant's correlator judges and whom it tells.
#[derive(Clone, Default)]
pub struct CorrelationOptions {
    pub periods: SchedulePeriods,
    pub board: crate::correlate::BoardPolicy,
    pub incidents: crate::incident::IncidentPolicy,
    /// Called with every persisted incident transition (the notifier).
    pub on_incident: Option<IncidentHook>,
}

impl MonitorTree {
    /// Starts the root, which starts a supervisor for every stored tenant.
    pub async fn start<S: DomainStore, C: Clock>(
        store: Arc<S>,
        clock: Arc<C>,
        options: TreeOptions,
    ) -> Result<Self, TreeError> {
        let args = RootArgs {
            store,
            clock,
            timers: options.timers,
            notify: options.notify,
            on_cycle: options.on_cycle,
            on_event: options.on_event,
            limits: options.limits,
            correlation: options.correlation,
        };
        let (root, _) = Actor::spawn(None, RootActor::<S, C>::default(), args)
            .await
            .map_err(|e| TreeError::Start(e.to_string()))?;
        Ok(MonitorTree { root })
    }

    fn tell(&self, tenant: &str, msg: TenantMsg) {
        let _ = self.root.cast(RootMsg::Tenant {
            tenant: tenant.to_owned(),
            msg,
        });
    }

    async fn ask<T: Send + 'static>(
        &self,
        tenant: &str,
        msg: impl FnOnce(RpcReplyPort<T>) -> TenantMsg,
    ) -> Result<T, TreeError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tell(tenant, msg(tx.into()));
        match tokio::time::timeout(ASK_TIMEOUT, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(TreeError::Ask("reply dropped".into())),
            Err(_) => Err(TreeError::Ask("timed out".into())),
        }
    }

    /// Hands a stored batch to the tenant's actors. Never blocks ingest.
    pub fn ingest(&self, tenant: &str, batch: Arc<Batch>) {
        self.tell(tenant, TenantMsg::Ingest(batch));
    }

    /// Inventory, rules or maintenance windows of the tenant changed.
    pub fn reload(&self, tenant: &str) {
        self.tell(tenant, TenantMsg::Reload);
    }

    pub async fn alerts(&self, tenant: &str) -> Result<Vec<AlertView>, TreeError> {
        self.ask(tenant, TenantMsg::Alerts).await
    }

    /// Runs one evaluation cycle now; answers once its changes are persisted.
    pub async fn evaluate_now(&self, tenant: &str, s: Schedule) -> Result<CycleStats, TreeError> {
        self.ask(tenant, |r| TenantMsg::EvaluateNow(s, r)).await
    }

    pub async fn router(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Option<RouterView>, TreeError> {
        let d = device.to_owned();
        self.ask(tenant, |r| TenantMsg::Router(d, r)).await
    }

    pub async fn probe(&self, tenant: &str, target: &str) -> Result<Option<ProbeView>, TreeError> {
        let t = target.to_owned();
        self.ask(tenant, |r| TenantMsg::Probe(t, r)).await
    }

    pub async fn link(&self, tenant: &str, id: &str) -> Result<Option<LinkView>, TreeError> {
        let l = id.to_owned();
        self.ask(tenant, |r| TenantMsg::Link(l, r)).await
    }

    pub async fn children(&self, tenant: &str) -> Result<Vec<ChildKey>, TreeError> {
        self.ask(tenant, TenantMsg::Children).await
    }

    /// Series and points the tenant's engine holds.
    pub async fn engine_footprint(&self, tenant: &str) -> Result<(usize, usize), TreeError> {
        self.ask(tenant, TenantMsg::EngineFootprint).await
    }

    /// Stops the tenant's entity actors idle for longer than the limit now (the tree
    /// does it every minute on its timers); answers how many were stopped.
    pub async fn reap_now(&self, tenant: &str) -> Result<usize, TreeError> {
        self.ask(tenant, TenantMsg::Reap).await
    }

    /// The tenant's incidents as its correlator holds them (open and recent).
    pub async fn incidents(
        &self,
        tenant: &str,
    ) -> Result<Vec<crate::incident::Incident>, TreeError> {
        self.ask(tenant, TenantMsg::Incidents).await
    }

    /// The correlator's latest root-cause analysis.
    pub async fn analysis(&self, tenant: &str) -> Result<crate::rca::Analysis, TreeError> {
        self.ask(tenant, TenantMsg::Analysis).await
    }

    /// An operator's action on an incident, applied by the tenant's correlator and
    /// stored with its audit record.
    pub async fn incident_action(
        &self,
        tenant: &str,
        id: u64,
        by: crate::incident::ActionBy,
        action: crate::incident::IncidentAction,
    ) -> Result<Result<crate::incident::Incident, crate::incident::ActionError>, TreeError> {
        self.ask(tenant, |reply| TenantMsg::IncidentAction {
            id,
            by,
            action,
            reply,
        })
        .await
    }

    /// Runs one correlation cycle now; answers with the transitions it persisted.
    pub async fn correlate_now(
        &self,
        tenant: &str,
    ) -> Result<Vec<crate::incident::IncidentChange>, TreeError> {
        self.ask(tenant, TenantMsg::CorrelateNow).await
    }

    /// Makes a child fail (supervision tests and chaos drills).
    pub fn crash_child(&self, tenant: &str, key: ChildKey) {
        self.tell(tenant, TenantMsg::CrashChild(key));
    }

    /// Stops the whole tree and waits for it.
    pub async fn stop(&self) {
        let _ = self
            .root
            .stop_and_wait(Some("server stopping".into()), Some(Duration::from_secs(5)))
            .await;
    }
}
