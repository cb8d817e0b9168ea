//! Reading time series for the UI, and the policy the time-series store runs under.
//!
//! A series is one (tenant, entity, metric); its samples are narrow rows keyed by the
//! series id. The UI asks for a range at a resolution: raw samples, 1-minute or 1-hour
//! rollups, or `Auto`, which picks the coarsest resolution that still gives a useful
//! number of points for the span, so a month-long chart reads hours, not millions of rows.

use super::settings::TenantSettings;
use super::{StoreError, TenantStore, on_pool};
use ispvm_proto::{EntityKey, MetricName};
use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// At most this many points are returned by one read; a caller that wants more asks
/// for a coarser resolution or a shorter range.
pub const MAX_POINTS: usize = 100_000;

/// `ts` rounded down to a multiple of `width`. Saturates at the ends of the range: the
/// rollup passes `i64::MIN` for "no bound yet", whose floor is not representable (and
/// overflowed, which a debug build of the demo hit on its first maintenance run).
pub fn floor_to(ts_ms: i64, width_ms: i64) -> i64 {
    ts_ms.div_euclid(width_ms).saturating_mul(width_ms)
}

/// How the store runs: defaults for tenants, partition lead, rollup lateness and
/// the timestamps it accepts. One value serves ingest and maintenance alike, so both
/// agree on what "late" means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeseriesPolicy {
    /// Retention and quotas of a tenant that overrides nothing.
    pub tenant_defaults: TenantSettings,
    /// Daily partitions created ahead of today (PostgreSQL).
    pub partitions_ahead_days: u32,
    /// A rollup bucket is computed once it ended this long ago, so samples arriving up
    /// to this late are in it without any bookkeeping. Samples received more than half
    /// of it after their time mark their (series, hour) for recomputation instead (the
    /// other half is the margin for a batch transaction still committing).
    pub rollup_lateness_ms: i64,
    /// The most raw time one rollup run covers per level, so a backlog (first start,
    /// long outage) is worked off in bounded steps.
    pub rollup_max_catchup_ms: i64,
    /// Samples stamped further than this ahead of the server's clock are dropped
    /// (counted, not stored): a skewed agent clock must not pin a series' latest value
    /// in the future or create partitions for years to come.
    pub max_future_ms: i64,
}

impl Default for TimeseriesPolicy {
    fn default() -> Self {
        TimeseriesPolicy {
            tenant_defaults: TenantSettings::default(),
            partitions_ahead_days: 3,
            rollup_lateness_ms: 2 * MINUTE_MS,
            rollup_max_catchup_ms: 6 * HOUR_MS,
            max_future_ms: HOUR_MS,
        }
    }
}

impl TimeseriesPolicy {
    /// Samples older than this at receipt mark their hour for re-rollup (see
    /// [`TimeseriesPolicy::rollup_lateness_ms`]).
    pub fn late_after_ms(&self) -> i64 {
        (self.rollup_lateness_ms / 2).max(1)
    }
}

/// The resolution of a range read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
    /// Raw up to 6 hours, minutes up to 7 days, hours beyond.
    Auto,
}

impl Resolution {
    /// The resolution `Auto` picks for a span: about 2,000 raw points at a 10 s
    /// interval, at most 10,080 minutes, then hours.
    pub fn for_span(span_ms: i64) -> Resolution {
        if span_ms <= 6 * HOUR_MS {
            Resolution::Raw
        } else if span_ms <= 7 * DAY_MS {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }

    /// The concrete resolution for a span (`Auto` resolved, others as they are).
    pub fn resolve(self, span_ms: i64) -> Resolution {
        match self {
            Resolution::Auto => Resolution::for_span(span_ms),
            other => other,
        }
    }
}

/// One point of a series: a raw sample (count 1, all statistics equal to the value) or
/// a rollup bucket starting at `ts_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub ts_ms: i64,
    pub count: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub p95: f64,
}

/// A range read: the resolution actually used and its points, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesRange {
    pub resolution: Resolution,
    pub points: Vec<SeriesPoint>,
    /// More points existed than [`MAX_POINTS`]; the newest were left out.
    pub truncated: bool,
}

type BucketRow = (i64, i64, f64, f64, f64, f64);

impl TenantStore<'_> {
    /// The points of one series of this tenant in `[from_ms, to_ms)`. A series of
    /// another tenant, or one that does not exist, reads as no points.
    pub async fn series_range(
        &self,
        entity: &EntityKey,
        metric: MetricName,
        from_ms: i64,
        to_ms: i64,
        resolution: Resolution,
    ) -> Result<SeriesRange, StoreError> {
        let resolution = resolution.resolve(to_ms.saturating_sub(from_ms));
        let mut range = SeriesRange {
            resolution,
            points: Vec::new(),
            truncated: false,
        };
        if to_ms <= from_ms {
            return Ok(range);
        }
        let (kind, id) = entity.storage_parts();
        let limit = i64::try_from(MAX_POINTS + 1).unwrap_or(i64::MAX);
        let t = self.tenant;
        let metric = metric.as_str();
        match resolution {
            Resolution::Raw | Resolution::Auto => {
                let rows: Vec<(i64, f64)> = on_pool!(self.store, pool => {
                    sqlx::query_as(
                        "SELECT s.ts_ms, s.value FROM samples s JOIN series r ON r.id = s.series_id \
                         WHERE r.tenant_id = $1 AND r.entity_kind = $2 AND r.entity_id = $3 AND r.metric = $4 \
                           AND s.ts_ms >= $5 AND s.ts_ms < $6 \
                         ORDER BY s.ts_ms LIMIT $7",
                    )
                    .bind(t).bind(kind).bind(&id).bind(metric).bind(from_ms).bind(to_ms).bind(limit)
                    .fetch_all(pool).await?
                });
                range.points = rows
                    .into_iter()
                    .map(|(ts_ms, v)| SeriesPoint {
                        ts_ms,
                        count: 1,
                        avg: v,
                        min: v,
                        max: v,
                        p95: v,
                    })
                    .collect();
            }
            Resolution::Minute | Resolution::Hour => {
                let (table, width) = if resolution == Resolution::Minute {
                    ("samples_1m", MINUTE_MS)
                } else {
                    ("samples_1h", HOUR_MS)
                };
                let sql = format!(
                    "SELECT b.bucket_ms, b.sample_count, b.value_sum, b.value_min, b.value_max, b.value_p95 \
                     FROM {table} b JOIN series r ON r.id = b.series_id \
                     WHERE r.tenant_id = $1 AND r.entity_kind = $2 AND r.entity_id = $3 AND r.metric = $4 \
                       AND b.bucket_ms >= $5 AND b.bucket_ms < $6 \
                     ORDER BY b.bucket_ms LIMIT $7"
                );
                let rows: Vec<BucketRow> = on_pool!(self.store, pool => {
                    sqlx::query_as(&sql)
                        .bind(t).bind(kind).bind(&id).bind(metric)
                        .bind(floor_to(from_ms, width)).bind(to_ms).bind(limit)
                        .fetch_all(pool).await?
                });
                range.points = rows
                    .into_iter()
                    .map(|(ts_ms, count, sum, min, max, p95)| SeriesPoint {
                        ts_ms,
                        count,
                        avg: if count > 0 { sum / count as f64 } else { 0.0 },
                        min,
                        max,
                        p95,
                    })
                    .collect();
            }
        }
        if range.points.len() > MAX_POINTS {
            range.points.truncate(MAX_POINTS);
            range.truncated = true;
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_by_span() {
        assert_eq!(Resolution::Auto.resolve(HOUR_MS), Resolution::Raw);
        assert_eq!(Resolution::Auto.resolve(DAY_MS), Resolution::Minute);
        assert_eq!(Resolution::Auto.resolve(30 * DAY_MS), Resolution::Hour);
        assert_eq!(Resolution::Raw.resolve(30 * DAY_MS), Resolution::Raw);
        assert_eq!(floor_to(-1, MINUTE_MS), -MINUTE_MS);
        assert_eq!(floor_to(125_000, MINUTE_MS), 120_000);
        assert_eq!(
            floor_to(i64::MIN, HOUR_MS),
            i64::MIN,
            "no bound stays no bound"
        );
    }
}
