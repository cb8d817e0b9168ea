//! Daily partitions of `samples` on PostgreSQL.
//!
//! One partition per UTC day, named `samples_pYYYYMMDD`, plus `samples_default` for rows
//! whose day has none. Maintenance creates partitions a few days ahead; ingest creates
//! the partition of a recent day on demand (an agent replaying yesterday's buffer); old
//! days are dropped whole by retention, which costs nothing per row.
//!
//! A partition is built detached and then attached: `ATTACH PARTITION` takes only a
//! SHARE UPDATE EXCLUSIVE lock on `samples`, so concurrent ingest keeps writing, where
//! `CREATE TABLE … PARTITION OF` would block it. Rows of that day already sitting in the
//! default partition are moved in first. Creation is serialised by an advisory lock, so
//! concurrent writers needing the same day do not race.

use super::samples::IngestCache;
use super::timeseries::DAY_MS;
use serde::Serialize;
use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

/// Advisory lock key serialising partition DDL ("ispvmpar").
const PARTITION_LOCK: i64 = 0x6973_7076_6d70_6172;

/// How long partition DDL waits for a lock before giving up until the next attempt;
/// short, because ingest queues behind a waiting exclusive lock.
const DDL_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '1s'";

/// One daily partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub name: String,
    /// First millisecond of the day (UTC) it holds.
    pub start_ms: i64,
}

/// (year, month, day) of a day number (days since 1970-01-01), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a date; the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day number holding `ts_ms`.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// The partition name of a day number.
pub fn partition_name(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("samples_p{y:04}{m:02}{d:02}")
}

/// The day number of a partition name, `None` for any other table.
fn day_of_name(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("samples_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = digits[0..4].parse().ok()?;
    let m: i64 = digits[4..6].parse().ok()?;
    let d: i64 = digits[6..8].parse().ok()?;
    let day = days_from_civil(y, m, d);
    (partition_name(day) == name).then_some(day)
}

/// The day numbers that have a partition, oldest first.
pub(crate) async fn list_days(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'samples'::regclass",
    )
    .fetch_all(conn)
    .await?;
    let mut days: Vec<i64> = names.iter().filter_map(|n| day_of_name(n)).collect();
    days.sort_unstable();
    Ok(days)
}

/// The partitions that exist, oldest first.
pub(crate) async fn list(pool: &PgPool) -> Result<Vec<PartitionInfo>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(list_days(&mut conn)
        .await?
        .into_iter()
        .map(|day| PartitionInfo {
            name: partition_name(day),
            start_ms: day * DAY_MS,
        })
        .collect())
}

/// Creates the partition of `day` unless it exists; returns whether it was created.
pub(crate) async fn ensure(conn: &mut PgConnection, day: i64) -> Result<bool, sqlx::Error> {
    let name = partition_name(day);
    let (lo, hi) = (day * DAY_MS, (day + 1) * DAY_MS);
    let mut tx = conn.begin().await?;
    sqlx::query(DDL_LOCK_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    if list_days(&mut tx).await?.contains(&day) {
        tx.commit().await?;
        return Ok(false);
    }
    // The CHECK constraint lets ATTACH skip scanning the new table.
    sqlx::query(&format!(
        "CREATE TABLE {name} (series_id BIGINT NOT NULL, ts_ms BIGINT NOT NULL, \
         value DOUBLE PRECISION NOT NULL, CONSTRAINT {name}_range CHECK (ts_ms >= {lo} AND ts_ms < {hi}))"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("LOCK TABLE samples_default IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "WITH moved AS (DELETE FROM samples_default WHERE ts_ms >= {lo} AND ts_ms < {hi} \
           RETURNING series_id, ts_ms, value) \
         INSERT INTO {name} (series_id, ts_ms, value) SELECT series_id, ts_ms, value FROM moved"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (series_id, ts_ms)"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "ALTER TABLE samples ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Drops every partition whose whole day ends at or before `cutoff_ms`; returns the
/// names dropped.
pub(crate) async fn drop_older(pool: &PgPool, cutoff_ms: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut dropped = Vec::new();
    for day in list_days(&mut conn).await? {
        if (day + 1) * DAY_MS > cutoff_ms {
            break;
        }
        let name = partition_name(day);
        let mut tx = conn.begin().await?;
        sqlx::query(DDL_LOCK_TIMEOUT).execute(&mut *tx).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        dropped.push(name);
    }
    Ok(dropped)
}

/// Before a batch transaction: makes sure the days of its samples have partitions.
///
/// Best effort: a day whose partition cannot be created now (a lock held too long)
/// lands in the default partition, from which the partition's creation later moves it.
pub(crate) async fn prepare(pool: &PgPool, days: &[i64], cache: Option<&IngestCache>) {
    let result = async {
        let mut conn = pool.acquire().await?;
        let existing = list_days(&mut conn).await?;
        if let Some(cache) = cache {
            cache.remember_days(existing.iter().copied());
        }
        for &day in days {
            if existing.binary_search(&day).is_ok() {
                continue;
            }
            if ensure(&mut conn, day).await? {
                tracing::info!(partition = %partition_name(day), "created a samples partition for ingest");
            }
            if let Some(cache) = cache {
                cache.remember_days([day]);
            }
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not create a samples partition; rows go to the default partition");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(partition_name(0), "samples_p19700101");
        // 2026-11-24
        let day = day_of(1_795_478_400_000);
        assert_eq!(partition_name(day), "samples_p20261124");
        assert_eq!(partition_name(day + 37), "samples_p20261231");
        assert_eq!(partition_name(day + 38), "samples_p20270101");
        assert_eq!(partition_name(day_of(951_782_400_000)), "samples_p20000229");
        for d in [-1, 0, 59, 10_000, day, day + 400, 84_000] {
            assert_eq!(day_of_name(&partition_name(d)), Some(d));
        }
        assert_eq!(day_of_name("samples_default"), None);
        assert_eq!(day_of_name("samples_p20261332"), None);
    }
}
