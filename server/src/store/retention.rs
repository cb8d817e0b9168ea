//! Retention and the store's periodic maintenance.
//!
//! One maintenance run (the server runs it on a timer, see `app.rs`): create the daily
//! partitions of the coming days (PostgreSQL), bring every tenant's rollups up to date,
//! then delete what is past retention. Whole partitions older than the longest raw
//! retention of any tenant are dropped; tenants keeping raw samples for less have their
//! older rows deleted, so one tenant's retention never touches another's rows. Cutoffs
//! are whole UTC days: data is kept at least as long as configured and at most a day more.

use super::partitions::{self, PartitionInfo};
use super::rollup::Level;
use super::settings::{
    OverrideRow, TenantSettings, override_columns_of, override_row, overrides_from_row,
};
use super::timeseries::{DAY_MS, TimeseriesPolicy, floor_to};
use super::{Store, StoreError, TenantStore, on_pool};
use serde::Serialize;
use sqlx::Row;

/// Rows one retention pass deleted for a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub samples: u64,
    pub minute_buckets: u64,
    pub hour_buckets: u64,
    /// Batch claims (replay detection) as old as the raw samples they stood for.
    pub batch_claims: u64,
    pub events: u64,
    pub audit_entries: u64,
    pub notifications: u64,
    /// Addresses and discovery neighbours no longer reported.
    pub discovery_rows: u64,
    /// Series silent for longer than every retention: nothing of them is left.
    pub series: u64,
}

impl RetentionReport {
    fn add(&mut self, o: &RetentionReport) {
        self.samples += o.samples;
        self.minute_buckets += o.minute_buckets;
        self.hour_buckets += o.hour_buckets;
        self.batch_claims += o.batch_claims;
        self.events += o.events;
        self.audit_entries += o.audit_entries;
        self.notifications += o.notifications;
        self.discovery_rows += o.discovery_rows;
        self.series += o.series;
    }
}

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    pub partitions_created: Vec<String>,
    pub partitions_dropped: Vec<String>,
    /// Rows of the default partition past every retention (PostgreSQL).
    pub default_rows_deleted: u64,
    pub tenants: usize,
    /// Tenants whose rollups or retention failed this run (logged; retried next run).
    pub tenant_failures: usize,
    pub retention: RetentionReport,
    /// Tenants some of whose series were deleted (their cached series ids are stale).
    pub series_deleted_in: Vec<String>,
    pub minute_buckets: u64,
    pub hour_buckets: u64,
    pub late_marks: u64,
}

/// The first millisecond still kept under a retention of `days` at `now_ms`.
pub fn retention_cutoff(now_ms: i64, days: u32) -> i64 {
    floor_to(
        now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS)),
        DAY_MS,
    )
}

impl TenantStore<'_> {
    /// Deletes the tenant's rows older than its retention at `now_ms`. Raw samples are
    /// skipped when `raw` is false (PostgreSQL drops them with their partition).
    pub async fn apply_retention(
        &self,
        settings: &TenantSettings,
        now_ms: i64,
        raw: bool,
    ) -> Result<RetentionReport, StoreError> {
        let t = self.tenant;
        let raw_cutoff = retention_cutoff(now_ms, settings.raw_retention_days);
        let mut report = RetentionReport::default();
        on_pool!(self.store, pool => {
            if raw {
                report.samples = sqlx::query(
                    "DELETE FROM samples WHERE ts_ms < $2 AND series_id IN (SELECT id FROM series WHERE tenant_id = $1)",
                )
                .bind(t).bind(raw_cutoff).execute(pool).await?.rows_affected();
            }
            for (level, days) in [
                (Level::Minute, settings.minute_retention_days),
                (Level::Hour, settings.hour_retention_days),
            ] {
                let deleted = sqlx::query(&format!(
                    "DELETE FROM {} WHERE bucket_ms < $2 AND series_id IN (SELECT id FROM series WHERE tenant_id = $1)",
                    level.table()
                ))
                .bind(t).bind(retention_cutoff(now_ms, days)).execute(pool).await?.rows_affected();
                match level {
                    Level::Minute => report.minute_buckets = deleted,
                    Level::Hour => report.hour_buckets = deleted,
                }
            }
            sqlx::query("DELETE FROM rollup_dirty WHERE tenant_id = $1 AND hour_ms < $2")
                .bind(t).bind(raw_cutoff).execute(pool).await?;
            report.batch_claims = sqlx::query("DELETE FROM ingested_batches WHERE tenant_id = $1 AND received_ms < $2")
                .bind(t).bind(raw_cutoff).execute(pool).await?.rows_affected();
            for (table, column, days, counter) in [
                ("events", "ts_ms", settings.event_retention_days, &mut report.events),
                ("audit_log", "ts_ms", settings.audit_retention_days, &mut report.audit_entries),
                ("alert_notifications", "ts_ms", settings.notification_retention_days, &mut report.notifications),
            ] {
                *counter = sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND {column} < $2"))
                    .bind(t).bind(retention_cutoff(now_ms, days)).execute(pool).await?.rows_affected();
            }
            let discovery_cutoff = retention_cutoff(now_ms, settings.discovery_retention_days);
            for table in ["interface_addresses", "discovered_neighbors"] {
                report.discovery_rows += sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND last_seen_ms < $2"))
                    .bind(t).bind(discovery_cutoff).execute(pool).await?.rows_affected();
            }
            // A series whose newest sample is older than the longest of its retentions
            // has no rows left anywhere (or loses its last ones in this run), and frees
            // its place in the quota. One that reappears gets a new row; the ingest
            // cache forgets the tenant's ids after a run that deleted any.
            let longest = settings.raw_retention_days
                .max(settings.minute_retention_days)
                .max(settings.hour_retention_days);
            report.series = sqlx::query(
                "DELETE FROM series WHERE tenant_id = $1 AND COALESCE(last_ts_ms, 0) < $2",
            )
            .bind(t).bind(retention_cutoff(now_ms, longest)).execute(pool).await?.rows_affected();
        });
        Ok(report)
    }
}

impl Store {
    /// The daily partitions of `samples` (PostgreSQL; none on SQLite).
    pub async fn sample_partitions(&self) -> Result<Vec<PartitionInfo>, StoreError> {
        match self {
            Store::Postgres(pool) => Ok(partitions::list(pool).await?),
            Store::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// Creates the partitions of the days from `from_ms` to `to_ms` (inclusive) that do
    /// not exist; returns their names (PostgreSQL; nothing to do on SQLite).
    pub async fn ensure_partitions(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let Store::Postgres(pool) = self else {
            return Ok(Vec::new());
        };
        let mut conn = pool.acquire().await?;
        let mut created = Vec::new();
        for day in partitions::day_of(from_ms)..=partitions::day_of(to_ms) {
            if partitions::ensure(&mut conn, day).await? {
                created.push(partitions::partition_name(day));
            }
        }
        Ok(created)
    }

    /// Every tenant with its settings in force.
    async fn tenant_settings(
        &self,
        defaults: &TenantSettings,
    ) -> Result<Vec<(String, TenantSettings)>, StoreError> {
        let sql = format!(
            "SELECT t.id, {} FROM tenants t LEFT JOIN tenant_settings s ON s.tenant_id = t.id ORDER BY t.id",
            override_columns_of("s")
        );
        let rows: Vec<(String, OverrideRow)> = on_pool!(self, pool => {
            let mut out = Vec::new();
            for r in sqlx::query(&sql).fetch_all(pool).await? {
                out.push((r.try_get(0)?, override_row(&r, 1)?));
            }
            out
        });
        Ok(rows
            .into_iter()
            .map(|(id, r)| (id, overrides_from_row(r).resolve(defaults)))
            .collect())
    }

    /// One maintenance run at `now_ms`: partitions ahead, rollups, retention. A failing
    /// tenant is logged and counted; the others still get their run.
    pub async fn maintain(
        &self,
        policy: &TimeseriesPolicy,
        now_ms: i64,
    ) -> Result<MaintenanceReport, StoreError> {
        let mut report = MaintenanceReport::default();
        let ahead = i64::from(policy.partitions_ahead_days).saturating_mul(DAY_MS);
        report.partitions_created = self.ensure_partitions(now_ms, now_ms + ahead).await?;

        let tenants = self.tenant_settings(&policy.tenant_defaults).await?;
        report.tenants = tenants.len();
        let longest_raw = tenants
            .iter()
            .map(|(_, s)| s.raw_retention_days)
            .chain([policy.tenant_defaults.raw_retention_days])
            .max()
            .unwrap_or(policy.tenant_defaults.raw_retention_days);

        for (tenant, settings) in &tenants {
            let ts = self.tenant(tenant);
            let result = async {
                let r = ts.roll_up(now_ms, policy).await?;
                // PostgreSQL drops raw rows with their partition for the tenants that keep
                // them longest; everyone else has rows deleted.
                let raw =
                    matches!(self, Store::Sqlite(_)) || settings.raw_retention_days < longest_raw;
                let k = ts.apply_retention(settings, now_ms, raw).await?;
                Ok::<_, StoreError>((r, k))
            }
            .await;
            match result {
                Ok((r, k)) => {
                    report.minute_buckets += r.minute_buckets;
                    report.hour_buckets += r.hour_buckets;
                    report.late_marks += r.late_marks;
                    report.retention.add(&k);
                    if k.series > 0 {
                        report.series_deleted_in.push(tenant.clone());
                    }
                }
                Err(e) => {
                    report.tenant_failures += 1;
                    tracing::warn!(tenant = %tenant, error = %e, "time-series maintenance failed for a tenant");
                }
            }
        }

        if let Store::Postgres(pool) = self {
            let cutoff = retention_cutoff(now_ms, longest_raw);
            report.partitions_dropped = partitions::drop_older(pool, cutoff).await?;
            report.default_rows_deleted =
                sqlx::query("DELETE FROM samples_default WHERE ts_ms < $1")
                    .bind(cutoff)
                    .execute(pool)
                    .await?
                    .rows_affected();
        }
        Ok(report)
    }
}
