//! Per-tenant retention and quotas.
//!
//! Each tenant may override any of the server's defaults (config `[tenant_defaults]`);
//! a value it did not override follows the default, so raising a default reaches every
//! tenant that never asked for something else. The row lives in `tenant_settings`, read
//! through [`TenantStore`] like every other tenant-owned row.

use super::{StoreError, TenantStore, on_pool};
use serde::{Deserialize, Serialize};

/// The retention and quotas in force for a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    /// Days raw samples are kept (at day granularity: up to one day more).
    pub raw_retention_days: u32,
    /// Days 1-minute rollups are kept.
    pub minute_retention_days: u32,
    /// Days 1-hour rollups are kept.
    pub hour_retention_days: u32,
    /// Devices the inventory may hold; a batch adding one more is refused.
    pub max_devices: u64,
    /// Agents that may deliver; a batch from one more is refused.
    pub max_agents: u64,
    /// Samples per second the tenant's agents may deliver together (429 beyond).
    pub max_samples_per_s: u64,
    /// Series (entity × metric) the tenant may hold: every entity key an agent names
    /// creates rows, so this bounds what one tenant's agents can make the server keep.
    /// Samples of a series beyond it are dropped and counted; the rest of the batch is
    /// stored.
    pub max_series: u64,
    /// Days events are kept.
    pub event_retention_days: u32,
    /// Days audit log entries are kept.
    pub audit_retention_days: u32,
    /// Days alert notifications are kept.
    pub notification_retention_days: u32,
    /// Days an address or discovery neighbour no longer reported is kept.
    pub discovery_retention_days: u32,
}

impl Default for TenantSettings {
    fn default() -> Self {
        // A month of 10-second samples, a quarter of minutes, two years of hours: what
        // an operator looks at when chasing a fault, a trend and a capacity plan.
        TenantSettings {
            raw_retention_days: 30,
            minute_retention_days: 90,
            hour_retention_days: 730,
            max_devices: 10_000,
            max_agents: 200,
            max_samples_per_s: 100_000,
            // 10,000 devices at 200 series each (40 ports × 5 counters).
            max_series: 2_000_000,
            // A quarter of events, a year of who changed what (what an audit asks
            // for), a quarter of notifications, and a week for a neighbour or an
            // address to come back before it is forgotten.
            event_retention_days: 90,
            audit_retention_days: 365,
            notification_retention_days: 90,
            discovery_retention_days: 7,
        }
    }
}

/// What a tenant overrides; `None` follows the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantOverrides {
    pub raw_retention_days: Option<u32>,
    pub minute_retention_days: Option<u32>,
    pub hour_retention_days: Option<u32>,
    pub max_devices: Option<u64>,
    pub max_agents: Option<u64>,
    pub max_samples_per_s: Option<u64>,
    pub max_series: Option<u64>,
    pub event_retention_days: Option<u32>,
    pub audit_retention_days: Option<u32>,
    pub notification_retention_days: Option<u32>,
    pub discovery_retention_days: Option<u32>,
}

impl TenantOverrides {
    /// The settings in force given the server's defaults.
    pub fn resolve(&self, defaults: &TenantSettings) -> TenantSettings {
        TenantSettings {
            raw_retention_days: self
                .raw_retention_days
                .unwrap_or(defaults.raw_retention_days),
            minute_retention_days: self
                .minute_retention_days
                .unwrap_or(defaults.minute_retention_days),
            hour_retention_days: self
                .hour_retention_days
                .unwrap_or(defaults.hour_retention_days),
            max_devices: self.max_devices.unwrap_or(defaults.max_devices),
            max_agents: self.max_agents.unwrap_or(defaults.max_agents),
            max_samples_per_s: self.max_samples_per_s.unwrap_or(defaults.max_samples_per_s),
            max_series: self.max_series.unwrap_or(defaults.max_series),
            event_retention_days: self
                .event_retention_days
                .unwrap_or(defaults.event_retention_days),
            audit_retention_days: self
                .audit_retention_days
                .unwrap_or(defaults.audit_retention_days),
            notification_retention_days: self
                .notification_retention_days
                .unwrap_or(defaults.notification_retention_days),
            discovery_retention_days: self
                .discovery_retention_days
                .unwrap_or(defaults.discovery_retention_days),
        }
    }

    /// Refuses values the store cannot honour (a retention of zero days would delete
    /// data as it arrives).
    fn validate(&self) -> Result<(), StoreError> {
        for (name, days) in [
            ("raw_retention_days", self.raw_retention_days),
            ("minute_retention_days", self.minute_retention_days),
            ("hour_retention_days", self.hour_retention_days),
            ("event_retention_days", self.event_retention_days),
            ("audit_retention_days", self.audit_retention_days),
            (
                "notification_retention_days",
                self.notification_retention_days,
            ),
            ("discovery_retention_days", self.discovery_retention_days),
        ] {
            if days == Some(0) {
                return Err(StoreError::InvalidSettings(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

/// A quota of the inventory a batch can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    Devices,
    Agents,
    Series,
}

impl QuotaKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Devices => "devices",
            QuotaKind::Agents => "agents",
            QuotaKind::Series => "series",
        }
    }
}

impl std::fmt::Display for QuotaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch refused because storing it would take the tenant over a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the tenant's quota of {limit} {kind} is reached: {current} stored, this batch would add {adding}"
)]
pub struct QuotaExceeded {
    pub kind: QuotaKind,
    pub limit: u64,
    pub current: u64,
    pub adding: u64,
}

/// A stored count as the unsigned figure it stands for; a negative (hand-edited) value
/// is treated as "not set".
fn unsigned<T: TryFrom<i64>>(v: Option<i64>) -> Option<T> {
    v.and_then(|v| T::try_from(v).ok())
}

fn signed<T: Into<u64>>(v: Option<T>) -> Option<i64> {
    v.map(|v| i64::try_from(v.into()).unwrap_or(i64::MAX))
}

/// The override columns of `tenant_settings` as read, in [`OVERRIDE_COLUMNS`] order.
pub(crate) type OverrideRow = [Option<i64>; OVERRIDE_COUNT];

const OVERRIDE_COUNT: usize = 11;

pub(crate) fn overrides_from_row(row: OverrideRow) -> TenantOverrides {
    TenantOverrides {
        raw_retention_days: unsigned(row[0]),
        minute_retention_days: unsigned(row[1]),
        hour_retention_days: unsigned(row[2]),
        max_devices: unsigned(row[3]),
        max_agents: unsigned(row[4]),
        max_samples_per_s: unsigned(row[5]),
        max_series: unsigned(row[6]),
        event_retention_days: unsigned(row[7]),
        audit_retention_days: unsigned(row[8]),
        notification_retention_days: unsigned(row[9]),
        discovery_retention_days: unsigned(row[10]),
    }
}

fn row_of_overrides(o: &TenantOverrides) -> OverrideRow {
    [
        signed(o.raw_retention_days),
        signed(o.minute_retention_days),
        signed(o.hour_retention_days),
        signed(o.max_devices),
        signed(o.max_agents),
        signed(o.max_samples_per_s),
        signed(o.max_series),
        signed(o.event_retention_days),
        signed(o.audit_retention_days),
        signed(o.notification_retention_days),
        signed(o.discovery_retention_days),
    ]
}

/// The columns of `tenant_settings` in [`OverrideRow`] order.
const OVERRIDE_COLUMNS: [&str; OVERRIDE_COUNT] = [
    "raw_retention_days",
    "minute_retention_days",
    "hour_retention_days",
    "max_devices",
    "max_agents",
    "max_samples_per_s",
    "max_series",
    "event_retention_days",
    "audit_retention_days",
    "notification_retention_days",
    "discovery_retention_days",
];

/// Reads the override columns from `row`, starting at column `first`.
pub(crate) fn override_row<'r, R>(row: &'r R, first: usize) -> Result<OverrideRow, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut out: OverrideRow = [None; OVERRIDE_COUNT];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = row.try_get(first + i)?;
    }
    Ok(out)
}

/// The override columns qualified by a table alias, for a select list.
pub(crate) fn override_columns_of(alias: &str) -> String {
    OVERRIDE_COLUMNS
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TenantStore<'_> {
    /// What the tenant overrides (all `None` when it has no settings row).
    pub async fn overrides(&self) -> Result<TenantOverrides, StoreError> {
        let sql = format!(
            "SELECT {} FROM tenant_settings s WHERE s.tenant_id = $1",
            override_columns_of("s")
        );
        let row = on_pool!(self.store, pool => {
            match sqlx::query(&sql).bind(self.tenant).fetch_optional(pool).await? {
                Some(r) => Some(override_row(&r, 0)?),
                None => None,
            }
        });
        Ok(row.map(overrides_from_row).unwrap_or_default())
    }

    /// The retention and quotas in force for the tenant.
    pub async fn settings(&self, defaults: &TenantSettings) -> Result<TenantSettings, StoreError> {
        Ok(self.overrides().await?.resolve(defaults))
    }

    /// Replaces the tenant's overrides (`None` returns a value to the default).
    pub async fn set_overrides(&self, o: &TenantOverrides) -> Result<(), StoreError> {
        o.validate()?;
        if !self.exists().await? {
            return Err(StoreError::UnknownTenant(self.tenant.to_owned()));
        }
        let now = ispvm_proto::time::now_ms();
        let columns = OVERRIDE_COLUMNS.join(", ");
        let params = (0..OVERRIDE_COUNT)
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let updates = OVERRIDE_COLUMNS
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO tenant_settings (tenant_id, updated_ms, {columns}) VALUES ($1, $2, {params}) \
             ON CONFLICT (tenant_id) DO UPDATE SET {updates}, updated_ms = excluded.updated_ms"
        );
        let values = row_of_overrides(o);
        on_pool!(self.store, pool => {
            let mut q = sqlx::query(&sql).bind(self.tenant).bind(now);
            for v in values {
                q = q.bind(v);
            }
            q.execute(pool).await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_fall_back_to_defaults() {
        let d = TenantSettings::default();
        let o = TenantOverrides {
            raw_retention_days: Some(7),
            max_devices: Some(5),
            ..TenantOverrides::default()
        };
        let s = o.resolve(&d);
        assert_eq!((s.raw_retention_days, s.max_devices), (7, 5));
        assert_eq!(s.hour_retention_days, d.hour_retention_days);
        assert!(
            TenantOverrides {
                minute_retention_days: Some(0),
                ..TenantOverrides::default()
            }
            .validate()
            .is_err()
        );
    }
}
