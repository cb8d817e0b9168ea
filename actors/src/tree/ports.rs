//! What the actor tree needs from the outside, as traits: storage and time.
//!
//! The domain knows neither SQL nor HTTP; the server implements [`DomainStore`] over its
//! database and tests implement it in memory. A restarted actor rebuilds itself from
//! these reads, which is what makes "restart from stored state" true.

use crate::alert::{AlertChange, AlertState, EntityAttrs, EntityRef, MaintenanceWindow, Rule};
use crate::incident::{ActionBy, Incident, IncidentAction, IncidentChange};
use ispvm_proto::MetricName;
use std::future::Future;

/// A storage failure, as text: the tree logs it and retries, it never interprets it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// A link between two interfaces, as inventory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    pub id: String,
    /// `(device, interface)` at each end.
    pub a: (String, String),
    pub b: (String, String),
}

/// A stored point: the newest or a recent value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    pub entity: EntityRef,
    pub metric: MetricName,
    pub ts_ms: i64,
    pub value: f64,
}

/// The incidents a correlator resumes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredIncidents {
    /// Open incidents and those resolved recently enough to reopen.
    pub incidents: Vec<Incident>,
    /// The next incident number (never reused, even after deletions).
    pub next_id: u64,
}

/// Sites and devices by id → the name people know them by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DisplayNames {
    pub sites: Vec<(String, String)>,
    pub devices: Vec<(String, String)>,
}

/// Reads and writes of the monitoring domain.
pub trait DomainStore: Send + Sync + 'static {
    /// Tenants to start supervisors for.
    fn tenants(&self) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// The tenant's alert rules (enabled or not).
    fn rules(&self, tenant: &str) -> impl Future<Output = Result<Vec<Rule>, PortError>> + Send;
    /// Persisted alert states.
    fn alert_states(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<(String, EntityRef, AlertState)>, PortError>> + Send;
    /// Persists state changes and their notifications atomically: a notification is
    /// recorded exactly when the state saying "notified" is.
    fn save_alert_changes(
        &self,
        tenant: &str,
        changes: &[AlertChange],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Entity attributes from inventory (sites, roles, tags, uplinks, capacities).
    fn entities(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<(EntityRef, EntityAttrs)>, PortError>> + Send;
    fn maintenance_windows(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<MaintenanceWindow>, PortError>> + Send;
    fn links(&self, tenant: &str) -> impl Future<Output = Result<Vec<LinkSpec>, PortError>> + Send;
    /// Samples since `since_ms`, to refill evaluation windows after a restart.
    fn recent_points(
        &self,
        tenant: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<StoredPoint>, PortError>> + Send;
    /// The names people know sites and devices by, for incident titles.
    fn display_names(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<DisplayNames, PortError>> + Send;
    /// Incidents open or resolved since `since_ms`, and the next incident number.
    fn incidents(
        &self,
        tenant: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<StoredIncidents, PortError>> + Send;
    /// Persists incidents and their transitions atomically: a transition is recorded
    /// exactly once (by incident and number), so the notifier sends it exactly once.
    fn save_incidents(
        &self,
        tenant: &str,
        incidents: &[Incident],
        changes: &[IncidentChange],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Persists an incident an operator acted on, with the audit record of the action,
    /// in one transaction.
    fn save_incident_action(
        &self,
        tenant: &str,
        incident: &Incident,
        by: &ActionBy,
        action: &IncidentAction,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The newest value of every series of one device (its interfaces and peers too).
    fn device_latest(
        &self,
        tenant: &str,
        device: &str,
    ) -> impl Future<Output = Result<Vec<StoredPoint>, PortError>> + Send;
}

/// Time, behind a trait so tests can drive evaluation with a fake clock.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        ispvm_proto::time::now_ms()
    }
}
