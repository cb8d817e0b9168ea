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
        }
    }

    /// Refuses values the store cannot honour (a retention of zero days would delete
    /// data as it arrives).
    fn validate(&self) -> Result<(), StoreError> {
        for (name, days) in [
            ("raw_retention_days", self.raw_retention_days),
            ("minute_retention_days", self.minute_retention_days),
            ("hour_retention_days", self.hour_retention_days),
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
}

impl QuotaKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Devices => "devices",
            QuotaKind::Agents => "agents",
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

type OverrideRow = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

pub(crate) fn overrides_from_row(row: OverrideRow) -> TenantOverrides {
    TenantOverrides {
        raw_retention_days: unsigned(row.0),
        minute_retention_days: unsigned(row.1),
        hour_retention_days: unsigned(row.2),
        max_devices: unsigned(row.3),
        max_agents: unsigned(row.4),
        max_samples_per_s: unsigned(row.5),
    }
}

/// The columns of `tenant_settings` in [`OverrideRow`] order.
const OVERRIDE_COLUMNS: [&str; 6] = [
    "raw_retention_days",
    "minute_retention_days",
    "hour_retention_days",
    "max_devices",
    "max_agents",
    "max_samples_per_s",
];

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
        let row: Option<OverrideRow> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).fetch_optional(pool).await?
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
        on_pool!(self.store, pool => {
            sqlx::query(
                "INSERT INTO tenant_settings (tenant_id, raw_retention_days, minute_retention_days, \
                   hour_retention_days, max_devices, max_agents, max_samples_per_s, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant_id) DO UPDATE SET raw_retention_days = excluded.raw_retention_days, \
                   minute_retention_days = excluded.minute_retention_days, \
                   hour_retention_days = excluded.hour_retention_days, max_devices = excluded.max_devices, \
                   max_agents = excluded.max_agents, max_samples_per_s = excluded.max_samples_per_s, \
                   updated_ms = excluded.updated_ms",
            )
            .bind(self.tenant)
            .bind(signed(o.raw_retention_days))
            .bind(signed(o.minute_retention_days))
            .bind(signed(o.hour_retention_days))
            .bind(signed(o.max_devices))
            .bind(signed(o.max_agents))
            .bind(signed(o.max_samples_per_s))
            .bind(now)
            .execute(pool).await?;
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
