//! The store as the actor tree's [`DomainStore`]: the domain asks in its own terms and
//! this adapter answers from the database.

use crate::internal_events::{ServerMetrics, StoredRowUnreadable};
use crate::store::{Readable, Store, StoreError};
use ispvm_actors::alert::{
    AlertChange, AlertState, EntityAttrs, EntityRef, MaintenanceWindow, Rule,
};
use ispvm_actors::incident::{ActionBy, Incident, IncidentAction, IncidentChange};
use ispvm_actors::tree::{
    DisplayNames, DomainStore, LinkSpec, PortError, StoredIncidents, StoredPoint,
};
use std::sync::Arc;

/// The server's store behind the domain's port.
#[derive(Debug, Clone)]
pub struct StoreDomain {
    pub store: Store,
    /// Where stored rows the domain cannot use are counted.
    pub metrics: Arc<ServerMetrics>,
}

impl StoreDomain {
    /// The rows read, reporting those that could not be.
    fn usable<T>(&self, tenant: &str, read: Readable<T>) -> Vec<T> {
        StoredRowUnreadable::report(tenant, read, &self.metrics)
    }
}

fn port(e: StoreError) -> PortError {
    PortError(e.to_string())
}

impl DomainStore for StoreDomain {
    async fn display_names(&self, tenant: &str) -> Result<DisplayNames, PortError> {
        let (sites, devices) = self
            .store
            .tenant(tenant)
            .display_names()
            .await
            .map_err(port)?;
        Ok(DisplayNames { sites, devices })
    }
    async fn incidents(&self, tenant: &str, since_ms: i64) -> Result<StoredIncidents, PortError> {
        let t = self.store.tenant(tenant);
        let read = t.incidents_to_resume(since_ms).await.map_err(port)?;
        let next_id = t.next_incident_id().await.map_err(port)?;
        Ok(StoredIncidents {
            incidents: self.usable(tenant, read),
            next_id,
        })
    }
    async fn save_incident_action(
        &self,
        tenant: &str,
        incident: &Incident,
        by: &ActionBy,
        action: &IncidentAction,
    ) -> Result<(), PortError> {
        let actor = crate::store::Actor {
            username: by.username.clone(),
            remote: by.remote.clone(),
        };
        self.store
            .tenant(tenant)
            .save_incident_action(incident, &actor, action)
            .await
            .map_err(port)
    }
    async fn save_incidents(
        &self,
        tenant: &str,
        incidents: &[Incident],
        changes: &[IncidentChange],
    ) -> Result<(), PortError> {
        self.store
            .tenant(tenant)
            .save_incidents(incidents, changes)
            .await
            .map_err(port)
    }
    async fn tenants(&self) -> Result<Vec<String>, PortError> {
        self.store.tenant_ids().await.map_err(port)
    }
    async fn rules(&self, tenant: &str) -> Result<Vec<Rule>, PortError> {
        let read = self
            .store
            .tenant(tenant)
            .alert_rules()
            .await
            .map_err(port)?;
        Ok(self.usable(tenant, read))
    }
    async fn alert_states(
        &self,
        tenant: &str,
    ) -> Result<Vec<(String, EntityRef, AlertState)>, PortError> {
        let read = self
            .store
            .tenant(tenant)
            .alert_states()
            .await
            .map_err(port)?;
        Ok(self.usable(tenant, read))
    }
    async fn save_alert_changes(
        &self,
        tenant: &str,
        changes: &[AlertChange],
    ) -> Result<(), PortError> {
        self.store
            .tenant(tenant)
            .save_alert_changes(changes)
            .await
            .map_err(port)
    }
    async fn entities(&self, tenant: &str) -> Result<Vec<(EntityRef, EntityAttrs)>, PortError> {
        self.store
            .tenant(tenant)
            .alert_entities()
            .await
            .map_err(port)
    }
    async fn maintenance_windows(&self, tenant: &str) -> Result<Vec<MaintenanceWindow>, PortError> {
        self.store
            .tenant(tenant)
            .alert_maintenance()
            .await
            .map_err(port)
    }
    async fn links(&self, tenant: &str) -> Result<Vec<LinkSpec>, PortError> {
        self.store
            .tenant(tenant)
            .links_for_engine()
            .await
            .map_err(port)
    }
    async fn recent_points(
        &self,
        tenant: &str,
        since_ms: i64,
    ) -> Result<Vec<StoredPoint>, PortError> {
        self.store
            .tenant(tenant)
            .recent_points(since_ms)
            .await
            .map_err(port)
    }
    async fn device_latest(
        &self,
        tenant: &str,
        device: &str,
    ) -> Result<Vec<StoredPoint>, PortError> {
        self.store
            .tenant(tenant)
            .device_latest(device)
            .await
            .map_err(port)
    }
}
