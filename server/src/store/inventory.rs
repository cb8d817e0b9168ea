//! Reading the inventory and the latest values the API shows.

use super::{StoreError, TenantStore, on_pool};
use ispvm_proto::{EventKind, Severity};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub site_id: String,
    pub role: String,
    pub mgmt_addr: String,
    pub model: String,
    pub os_version: String,
    pub agent_id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InterfaceRow {
    pub device_id: String,
    pub name: String,
    pub kind: String,
    pub disabled: bool,
    pub uplink: bool,
    pub last_seen_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SiteRow {
    pub id: String,
    pub name: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AgentRow {
    pub id: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub last_seq: i64,
    pub batches: i64,
    pub seq_gaps: i64,
}

/// The newest value of one series.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LatestValue {
    pub entity_kind: String,
    pub entity_id: String,
    pub metric: String,
    pub ts_ms: i64,
    pub value: f64,
}

impl TenantStore<'_> {
    pub async fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, name, site_id, role, mgmt_addr, model, os_version, agent_id, first_seen_ms, last_seen_ms \
                 FROM devices WHERE tenant_id = $1 ORDER BY site_id, id",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }

    pub async fn interfaces(&self) -> Result<Vec<InterfaceRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT device_id, name, kind, disabled, uplink, last_seen_ms \
                 FROM interfaces WHERE tenant_id = $1 ORDER BY device_id, name",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }

    pub async fn sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, name, lat, lon FROM sites WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        }))
    }

    pub async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, first_seen_ms, last_seen_ms, last_seq, batches, seq_gaps \
                 FROM agents WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }

    /// Latest values of every series of the tenant (devices, interfaces, peers, probe
    /// targets).
    pub async fn latest_values(&self) -> Result<Vec<LatestValue>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT entity_kind, entity_id, metric, last_ts_ms AS ts_ms, last_value AS value \
                 FROM series WHERE tenant_id = $1 AND last_ts_ms IS NOT NULL AND last_value IS NOT NULL",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }
}

/// An address on an interface, as last reported.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AddressRow {
    pub device_id: String,
    pub interface: String,
    pub address: String,
    pub last_seen_ms: i64,
}

/// A discovery neighbour, as last reported.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct NeighborRow {
    pub device_id: String,
    pub interface: String,
    pub identity: String,
    pub mac: String,
    pub address: String,
    pub platform: String,
    pub last_seen_ms: i64,
}

impl TenantStore<'_> {
    pub async fn addresses(&self) -> Result<Vec<AddressRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT device_id, interface, address, last_seen_ms FROM interface_addresses \
                 WHERE tenant_id = $1 ORDER BY device_id, interface, address",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }

    pub async fn neighbors(&self) -> Result<Vec<NeighborRow>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT device_id, interface, identity, mac, address, platform, last_seen_ms FROM discovered_neighbors \
                 WHERE tenant_id = $1 ORDER BY device_id, interface, identity",
            )
            .bind(self.tenant).fetch_all(pool).await?
        }))
    }
}

/// A stored event, newest first in listings.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub id: String,
    pub ts_ms: i64,
    pub entity_kind: String,
    pub entity_id: String,
    pub kind: EventKind,
    pub severity: Severity,
    pub message: String,
    /// JSON object of the event's attributes.
    pub attrs: String,
    pub agent_id: String,
}

type EventTuple = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

impl TenantStore<'_> {
    /// The newest events, up to `limit`, optionally of one kind.
    pub async fn recent_events(
        &self,
        kind: Option<EventKind>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows: Vec<EventTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, ts_ms, entity_kind, entity_id, kind, severity, message, attrs, agent_id FROM events \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR kind = $2) ORDER BY ts_ms DESC, id DESC LIMIT $3",
            )
            .bind(self.tenant).bind(kind.map(EventKind::as_str)).bind(limit.clamp(1, 1000))
            .fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(id, ts_ms, entity_kind, entity_id, kind, severity, message, attrs, agent_id)| {
                    Ok(EventRow {
                        id,
                        ts_ms,
                        entity_kind,
                        entity_id,
                        kind: super::stored_word("kind", &kind)?,
                        severity: super::stored_word("severity", &severity)?,
                        message,
                        attrs,
                        agent_id,
                    })
                },
            )
            .collect()
    }
}
