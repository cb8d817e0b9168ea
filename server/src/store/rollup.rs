//! 1-minute and 1-hour rollups, maintained incrementally by the server.
//!
//! A minute bucket holds the count, sum (so the average), min, max and p95 of the raw
//! samples of that minute. An hour bucket is built from its 60 minute buckets: count,
//! sum, min and max are exact; its p95 is the 95th percentile of the hour's minute
//! *averages* — the "95th percentile of short-interval averages" ISPs bill and plan
//! capacity by, and computable without reading an hour of raw samples at once (at
//! 50,000 samples/s an hour is 180 million rows).
//!
//! Each tenant has a watermark per level: buckets before it are computed. A run computes
//! the buckets that ended more than `lateness` ago and are past the watermark, then moves
//! the watermark, so each raw sample is read once. Waiting `lateness` lets the samples
//! agents deliver a little late (flush interval, retries) arrive first. Samples later
//! than that (an agent replaying its buffer) were marked by ingest in `rollup_dirty` per
//! (series, hour); a run recomputes those minutes and that hour and removes the marks it
//! handled. Recomputing is an upsert that leaves equal rows alone, so running twice
//! changes nothing. The UI reads raw samples for recent, short ranges (see
//! `Resolution::Auto`), so buckets younger than `lateness` are not missed there.
//!
//! p95 is `percentile_cont(0.95)`: PostgreSQL computes it in SQL; SQLite has no such
//! function, so its buckets are aggregated in Rust with the same interpolation
//! (`lo + (pos − ⌊pos⌋)·(hi − lo)` at `pos = 0.95·(n − 1)`), and both engines agree.

use super::timeseries::{HOUR_MS, MINUTE_MS, TimeseriesPolicy, floor_to};
use super::{BeginWrite, StoreError, TenantStore, on_pool};
use serde::Serialize;
use sqlx::{PgConnection, SqliteConnection};
use std::collections::BTreeMap;

/// A rollup level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Minute,
    Hour,
}

impl Level {
    pub(crate) const fn table(self) -> &'static str {
        match self {
            Level::Minute => "samples_1m",
            Level::Hour => "samples_1h",
        }
    }

    const fn width(self) -> i64 {
        match self {
            Level::Minute => MINUTE_MS,
            Level::Hour => HOUR_MS,
        }
    }

    const fn key(self) -> &'static str {
        match self {
            Level::Minute => "1m",
            Level::Hour => "1h",
        }
    }
}

/// What one rollup run did for a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollupReport {
    /// 1-minute buckets written (new or changed).
    pub minute_buckets: u64,
    /// 1-hour buckets written (new or changed).
    pub hour_buckets: u64,
    /// (series, hour) marks of late samples handled.
    pub late_marks: u64,
}

/// The statistics of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub series_id: i64,
    pub bucket_ms: i64,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub p95: f64,
}

/// `percentile_cont(0.95)` of `values`, as PostgreSQL computes it. Sorts `values`.
pub(crate) fn p95(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let pos = 0.95 * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor(), pos.ceil());
    let a = values[lo as usize];
    if hi > lo {
        let b = values[hi as usize];
        a + ((pos - lo) * (b - a))
    } else {
        a
    }
}

/// Buckets of `rows` ((series, ts, value), sorted by series then time).
pub(crate) fn aggregate(rows: &[(i64, i64, f64)], width: i64) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut values = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let (series_id, ts, _) = rows[start];
        let bucket_ms = floor_to(ts, width);
        let end = rows[start..]
            .iter()
            .position(|r| r.0 != series_id || floor_to(r.1, width) != bucket_ms)
            .map_or(rows.len(), |n| start + n);
        values.clear();
        values.extend(rows[start..end].iter().map(|r| r.2));
        let sum = values.iter().sum();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.push(Bucket {
            series_id,
            bucket_ms,
            count: (end - start) as i64,
            sum,
            min,
            max,
            p95: p95(&mut values),
        });
        start = end;
    }
    out
}

/// Hour buckets of minute buckets (sorted by series then time): sums of counts and sums,
/// min of mins, max of maxes, p95 of the minute averages.
pub(crate) fn aggregate_minutes(minutes: &[Bucket]) -> Vec<Bucket> {
    let mut out = Vec::new();
    let mut averages = Vec::new();
    let mut start = 0;
    while start < minutes.len() {
        let first = minutes[start];
        let hour = floor_to(first.bucket_ms, HOUR_MS);
        let end = minutes[start..]
            .iter()
            .position(|m| m.series_id != first.series_id || floor_to(m.bucket_ms, HOUR_MS) != hour)
            .map_or(minutes.len(), |n| start + n);
        let group = &minutes[start..end];
        averages.clear();
        averages.extend(group.iter().map(|m| m.sum / m.count as f64));
        out.push(Bucket {
            series_id: first.series_id,
            bucket_ms: hour,
            count: group.iter().map(|m| m.count).sum(),
            sum: group.iter().map(|m| m.sum).sum(),
            min: group.iter().map(|m| m.min).fold(f64::INFINITY, f64::min),
            max: group
                .iter()
                .map(|m| m.max)
                .fold(f64::NEG_INFINITY, f64::max),
            p95: p95(&mut averages),
        });
        start = end;
    }
    out
}

/// Computing buckets, per engine.
pub(crate) trait RollupWrite {
    /// Recomputes the `level` buckets of the tenant in `[from, to)` (both aligned to the
    /// level) — minutes from raw samples, hours from minutes — limited to `series` when
    /// given; returns buckets written.
    fn roll(
        &mut self,
        tenant: &str,
        level: Level,
        from: i64,
        to: i64,
        series: Option<&[i64]>,
    ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send;
}

impl RollupWrite for PgConnection {
    async fn roll(
        &mut self,
        tenant: &str,
        level: Level,
        from: i64,
        to: i64,
        series: Option<&[i64]>,
    ) -> Result<u64, sqlx::Error> {
        let table = level.table();
        let filter = if series.is_some() {
            "AND s.series_id = ANY($4::int8[])"
        } else {
            ""
        };
        let select = match level {
            Level::Minute => format!(
                "SELECT s.series_id, s.ts_ms - (s.ts_ms % {MINUTE_MS}) AS bucket, COUNT(*), SUM(s.value), \
                   MIN(s.value), MAX(s.value), percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value) \
                 FROM samples s JOIN series r ON r.id = s.series_id \
                 WHERE r.tenant_id = $1 AND s.ts_ms >= $2 AND s.ts_ms < $3 {filter} \
                 GROUP BY s.series_id, bucket"
            ),
            Level::Hour => format!(
                "SELECT s.series_id, s.bucket_ms - (s.bucket_ms % {HOUR_MS}) AS bucket, SUM(s.sample_count), \
                   SUM(s.value_sum), MIN(s.value_min), MAX(s.value_max), \
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value_sum / s.sample_count) \
                 FROM samples_1m s JOIN series r ON r.id = s.series_id \
                 WHERE r.tenant_id = $1 AND s.bucket_ms >= $2 AND s.bucket_ms < $3 {filter} \
                 GROUP BY s.series_id, bucket"
            ),
        };
        let sql = format!(
            "INSERT INTO {table} AS b (series_id, bucket_ms, sample_count, value_sum, value_min, value_max, value_p95) \
             {select} \
             ON CONFLICT (series_id, bucket_ms) DO UPDATE SET sample_count = excluded.sample_count, \
               value_sum = excluded.value_sum, value_min = excluded.value_min, \
               value_max = excluded.value_max, value_p95 = excluded.value_p95 \
             WHERE (b.sample_count, b.value_sum, b.value_min, b.value_max, b.value_p95) \
               IS DISTINCT FROM (excluded.sample_count, excluded.value_sum, excluded.value_min, \
                 excluded.value_max, excluded.value_p95)"
        );
        let mut q = sqlx::query(&sql).bind(tenant).bind(from).bind(to);
        if let Some(series) = series {
            q = q.bind(series);
        }
        Ok(q.execute(&mut *self).await?.rows_affected())
    }
}

/// Series ids per `IN (…)` list on SQLite.
const SQLITE_IDS: usize = 500;
/// Buckets per multi-row upsert on SQLite (7 variables each).
const SQLITE_BUCKETS: usize = 500;

/// Raw rows of the tenant in `[from, to)`, sorted by series then time.
async fn sqlite_rows(
    conn: &mut SqliteConnection,
    tenant: &str,
    from: i64,
    to: i64,
    series: Option<&[i64]>,
) -> Result<Vec<(i64, i64, f64)>, sqlx::Error> {
    const BASE: &str = "SELECT s.series_id, s.ts_ms, s.value FROM samples s JOIN series r ON r.id = s.series_id \
             WHERE r.tenant_id = ? AND s.ts_ms >= ? AND s.ts_ms < ?";
    let Some(series) = series else {
        return sqlx::query_as(&format!("{BASE} ORDER BY s.series_id, s.ts_ms"))
            .bind(tenant)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *conn)
            .await;
    };
    let mut rows = Vec::new();
    for chunk in series.chunks(SQLITE_IDS) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("{BASE} AND s.series_id IN ({marks}) ORDER BY s.series_id, s.ts_ms");
        let mut q = sqlx::query_as(&sql).bind(tenant).bind(from).bind(to);
        for id in chunk {
            q = q.bind(*id);
        }
        let part: Vec<(i64, i64, f64)> = q.fetch_all(&mut *conn).await?;
        rows.extend(part);
    }
    // Chunks are each sorted; the whole must be sorted by series for `aggregate`.
    rows.sort_by_key(|r| (r.0, r.1));
    Ok(rows)
}

/// Minute buckets of the tenant in `[from, to)`, sorted by series then time.
async fn sqlite_minutes(
    conn: &mut SqliteConnection,
    tenant: &str,
    from: i64,
    to: i64,
    series: Option<&[i64]>,
) -> Result<Vec<Bucket>, sqlx::Error> {
    const BASE: &str = "SELECT s.series_id, s.bucket_ms, s.sample_count, s.value_sum, s.value_min, s.value_max, \
         s.value_p95 FROM samples_1m s JOIN series r ON r.id = s.series_id \
         WHERE r.tenant_id = ? AND s.bucket_ms >= ? AND s.bucket_ms < ?";
    type Row = (i64, i64, i64, f64, f64, f64, f64);
    let mut rows: Vec<Row> = Vec::new();
    match series {
        None => {
            rows = sqlx::query_as(&format!("{BASE} ORDER BY s.series_id, s.bucket_ms"))
                .bind(tenant)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *conn)
                .await?;
        }
        Some(series) => {
            for chunk in series.chunks(SQLITE_IDS) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = format!("{BASE} AND s.series_id IN ({marks})");
                let mut q = sqlx::query_as(&sql).bind(tenant).bind(from).bind(to);
                for id in chunk {
                    q = q.bind(*id);
                }
                let part: Vec<Row> = q.fetch_all(&mut *conn).await?;
                rows.extend(part);
            }
            rows.sort_by_key(|r| (r.0, r.1));
        }
    }
    Ok(rows
        .into_iter()
        .map(|(series_id, bucket_ms, count, sum, min, max, p95)| Bucket {
            series_id,
            bucket_ms,
            count,
            sum,
            min,
            max,
            p95,
        })
        .collect())
}

impl RollupWrite for SqliteConnection {
    async fn roll(
        &mut self,
        tenant: &str,
        level: Level,
        from: i64,
        to: i64,
        series: Option<&[i64]>,
    ) -> Result<u64, sqlx::Error> {
        let buckets = match level {
            Level::Minute => {
                let rows = sqlite_rows(self, tenant, from, to, series).await?;
                aggregate(&rows, MINUTE_MS)
            }
            Level::Hour => {
                let minutes = sqlite_minutes(self, tenant, from, to, series).await?;
                aggregate_minutes(&minutes)
            }
        };
        let table = level.table();
        let mut written = 0;
        for chunk in buckets.chunks(SQLITE_BUCKETS) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO {table} AS b (series_id, bucket_ms, sample_count, value_sum, value_min, value_max, value_p95) \
                 VALUES {values} \
                 ON CONFLICT (series_id, bucket_ms) DO UPDATE SET sample_count = excluded.sample_count, \
                   value_sum = excluded.value_sum, value_min = excluded.value_min, \
                   value_max = excluded.value_max, value_p95 = excluded.value_p95 \
                 WHERE b.sample_count IS NOT excluded.sample_count OR b.value_sum IS NOT excluded.value_sum \
                   OR b.value_min IS NOT excluded.value_min OR b.value_max IS NOT excluded.value_max \
                   OR b.value_p95 IS NOT excluded.value_p95"
            );
            let mut q = sqlx::query(&sql);
            for b in chunk {
                q = q
                    .bind(b.series_id)
                    .bind(b.bucket_ms)
                    .bind(b.count)
                    .bind(b.sum)
                    .bind(b.min)
                    .bind(b.max)
                    .bind(b.p95);
            }
            written += q.execute(&mut *self).await?.rows_affected();
        }
        Ok(written)
    }
}

/// Most late marks handled per run; the rest wait for the next.
const MARKS_PER_RUN: i64 = 5_000;

impl TenantStore<'_> {
    async fn watermark(&self, level: Level) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT watermark_ms FROM rollup_state WHERE tenant_id = $1 AND level = $2")
                .bind(self.tenant).bind(level.key()).fetch_optional(pool).await?
        }))
    }

    /// The oldest sample of the tenant (one index probe per series).
    async fn earliest_sample(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_scalar(
                "SELECT MIN((SELECT MIN(s.ts_ms) FROM samples s WHERE s.series_id = r.id)) \
                 FROM series r WHERE r.tenant_id = $1",
            )
            .bind(self.tenant).fetch_one(pool).await?
        }))
    }

    /// Computes `[from, to)` at `level` and moves the watermark to `to`, atomically.
    async fn roll_range(&self, level: Level, from: i64, to: i64) -> Result<u64, StoreError> {
        let t = self.tenant;
        Ok(on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let written = (*tx).roll(t, level, from, to, None).await?;
            sqlx::query(
                "INSERT INTO rollup_state (tenant_id, level, watermark_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, level) DO UPDATE SET watermark_ms = excluded.watermark_ms",
            )
            .bind(t).bind(level.key()).bind(to)
            .execute(&mut *tx).await?;
            tx.commit().await?;
            written
        }))
    }

    /// Brings the tenant's rollups up to `now_ms`: see the module documentation.
    pub async fn roll_up(
        &self,
        now_ms: i64,
        policy: &TimeseriesPolicy,
    ) -> Result<RollupReport, StoreError> {
        let mut report = RollupReport::default();
        let lateness = policy.rollup_lateness_ms.max(0);
        let catchup = policy.rollup_max_catchup_ms.max(MINUTE_MS);
        let minute_mark = self.watermark(Level::Minute).await?;
        let hour_mark = self.watermark(Level::Hour).await?;
        let earliest = if minute_mark.is_none() || hour_mark.is_none() {
            self.earliest_sample().await?
        } else {
            None
        };

        // Each level: from its watermark (or the first sample) to the last bucket that
        // ended `lateness` ago, at most `catchup` at a time; hours only as far as their
        // minutes are done.
        let mut minutes_done = minute_mark;
        for (level, mark) in [(Level::Minute, minute_mark), (Level::Hour, hour_mark)] {
            let width = level.width();
            let Some(from) = mark.or(earliest.map(|e| floor_to(e, width))) else {
                continue;
            };
            let mut to =
                floor_to(now_ms - lateness, width).min(floor_to(from + catchup.max(width), width));
            if level == Level::Hour {
                to = to.min(floor_to(minutes_done.unwrap_or(i64::MIN), HOUR_MS));
            }
            if to <= from {
                if mark.is_none() {
                    // Remember where this tenant's data starts, so later runs need not
                    // look for its first sample again.
                    self.roll_range(level, from, from).await?;
                }
            } else {
                let written = self.roll_range(level, from, to).await?;
                match level {
                    Level::Minute => {
                        report.minute_buckets = written;
                        minutes_done = Some(to);
                    }
                    Level::Hour => report.hour_buckets = written,
                }
            }
        }

        report.late_marks = self.roll_late_marks().await?;
        Ok(report)
    }

    /// Recomputes the hours that late samples marked, and removes the marks that did
    /// not change meanwhile.
    async fn roll_late_marks(&self) -> Result<u64, StoreError> {
        let t = self.tenant;
        let marks: Vec<(i64, i64, i64)> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT series_id, hour_ms, gen FROM rollup_dirty WHERE tenant_id = $1 \
                 ORDER BY hour_ms, series_id LIMIT $2",
            )
            .bind(t).bind(MARKS_PER_RUN).fetch_all(pool).await?
        });
        let mut by_hour: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
        for (series, hour, generation) in &marks {
            by_hour
                .entry(*hour)
                .or_default()
                .push((*series, *generation));
        }
        for (hour, group) in by_hour {
            let ids: Vec<i64> = group.iter().map(|g| g.0).collect();
            on_pool!(self.store, pool => {
                let mut tx = pool.begin_write().await?;
                (*tx).roll(t, Level::Minute, hour, hour + HOUR_MS, Some(&ids)).await?;
                (*tx).roll(t, Level::Hour, hour, hour + HOUR_MS, Some(&ids)).await?;
                for (series, generation) in &group {
                    sqlx::query(
                        "DELETE FROM rollup_dirty WHERE tenant_id = $1 AND series_id = $2 AND hour_ms = $3 AND gen = $4",
                    )
                    .bind(t).bind(*series).bind(hour).bind(*generation)
                    .execute(&mut *tx).await?;
                }
                tx.commit().await?;
            });
        }
        Ok(marks.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_interpolates_like_percentile_cont() {
        assert_eq!(p95(&mut [5.0]), 5.0);
        // 0.95 × 19 = 18.05: 19 + 0.05 × (20 − 19)
        let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert!((p95(&mut v) - 19.05).abs() < 1e-12);
        // 0.95 × 4 = 3.8: 4 + 0.8 × (100 − 4)
        assert!((p95(&mut [1.0, 100.0, 2.0, 3.0, 4.0]) - 80.8).abs() < 1e-9);
    }

    #[test]
    fn hours_combine_minutes() {
        let m = |series_id, bucket_ms, count, sum, min, max| Bucket {
            series_id,
            bucket_ms,
            count,
            sum,
            min,
            max,
            p95: f64::NAN,
        };
        let minutes = [
            m(1, 0, 2, 4.0, 1.0, 3.0),
            m(1, MINUTE_MS, 1, 10.0, 10.0, 10.0),
            m(1, HOUR_MS, 1, 7.0, 7.0, 7.0),
            m(2, 0, 4, 4.0, 0.0, 2.0),
        ];
        let h = aggregate_minutes(&minutes);
        assert_eq!(h.len(), 3);
        assert_eq!(
            (h[0].count, h[0].sum, h[0].min, h[0].max),
            (3, 14.0, 1.0, 10.0)
        );
        // Minute averages 2 and 10: 2 + 0.95 × 8.
        assert!((h[0].p95 - 9.6).abs() < 1e-12);
        assert_eq!((h[1].bucket_ms, h[1].count), (HOUR_MS, 1));
        assert_eq!((h[2].series_id, h[2].p95), (2, 1.0));
    }

    #[test]
    fn buckets_split_by_series_and_time() {
        let rows = [
            (1, 0, 1.0),
            (1, 59_999, 3.0),
            (1, 60_000, 5.0),
            (2, 10, 7.0),
        ];
        let b = aggregate(&rows, MINUTE_MS);
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].count, b[0].sum, b[0].min, b[0].max),
            (2, 4.0, 1.0, 3.0)
        );
        assert_eq!((b[1].bucket_ms, b[1].count), (60_000, 1));
        assert_eq!((b[2].series_id, b[2].p95), (2, 7.0));
    }
}
