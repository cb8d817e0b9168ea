//! Writing the samples of a batch: series ids, sample rows, latest values, late marks.
//!
//! The batch is first shaped in memory (samples too far in the future dropped, series
//! keys collected in a fixed order, duplicates within the batch removed), then written
//! with a few set-based statements per batch rather than statements per sample.
//! PostgreSQL receives the sample rows with `COPY` (binary) into a temporary staging
//! table and moves them into `samples` with one `INSERT … ON CONFLICT DO NOTHING`, so
//! the batch stays one transaction and a sample stays unique per (series, time).
//! SQLite, in-process, takes multi-row `INSERT`s chunked below its variable limit.

use super::timeseries::{HOUR_MS, TimeseriesPolicy, floor_to};
use ispvm_proto::{EntityKey, MetricName, MetricSample};
use sqlx::{Executor, PgConnection, SqliteConnection};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// A series as it is stored: entity kind, entity id, metric.
pub(crate) type SeriesKey = (&'static str, String, &'static str);

/// A series as a batch names it (borrowed from the batch: no allocation per sample).
pub(crate) type BatchSeries<'b> = (&'b EntityKey, MetricName);

/// A tenant's known series ids, by metric then entity (so a lookup borrows the batch's
/// entity instead of building a key).
#[derive(Debug, Default)]
struct TenantIds {
    by_metric: HashMap<MetricName, HashMap<EntityKey, i64>>,
    len: usize,
}

/// Series ids and partition days already known, shared by the writers of one store.
///
/// A series id never changes once committed, so after the first batch of a series its
/// id costs a hash lookup instead of a database round trip. Ids are added only after
/// the transaction that resolved them committed. Bounded: a tenant whose map grows past
/// the cap starts afresh.
#[derive(Debug)]
pub struct IngestCache {
    series: Mutex<HashMap<String, TenantIds>>,
    days: Mutex<BTreeSet<i64>>,
    cap: usize,
}

impl Default for IngestCache {
    fn default() -> Self {
        IngestCache::with_capacity(2_000_000)
    }
}

impl IngestCache {
    /// A cache holding at most `cap` series ids per tenant.
    pub fn with_capacity(cap: usize) -> Self {
        IngestCache {
            series: Mutex::new(HashMap::new()),
            days: Mutex::new(BTreeSet::new()),
            cap: cap.max(1),
        }
    }

    fn lookup(&self, tenant: &str, keys: &[BatchSeries<'_>], ids: &mut [Option<i64>]) {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = series.get(tenant) {
            for ((entity, metric), id) in keys.iter().zip(ids.iter_mut()) {
                *id = known
                    .by_metric
                    .get(metric)
                    .and_then(|m| m.get(*entity))
                    .copied();
            }
        }
    }

    fn remember(&self, tenant: &str, keys: &[BatchSeries<'_>], ids: &[i64]) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let known = series.entry(tenant.to_owned()).or_default();
        if known.len + keys.len() > self.cap {
            *known = TenantIds::default();
        }
        for ((entity, metric), id) in keys.iter().zip(ids) {
            let by_entity = known.by_metric.entry(*metric).or_default();
            if by_entity.insert((*entity).clone(), *id).is_none() {
                known.len += 1;
            }
        }
    }

    /// Forgets the tenant's series ids (after retention deleted some of its series).
    pub fn forget_tenant(&self, tenant: &str) {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    pub(crate) fn knows_day(&self, day: i64) -> bool {
        self.days
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&day)
    }

    pub(crate) fn remember_days(&self, days: impl IntoIterator<Item = i64>) {
        self.days
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(days);
    }
}

/// The samples of a batch, shaped for writing.
#[derive(Debug, Default)]
pub(crate) struct Shaped<'b> {
    /// Distinct series of the batch, in order of first appearance.
    pub keys: Vec<BatchSeries<'b>>,
    /// (index into `keys`, ts, value) of every sample kept.
    pub samples: Vec<(usize, i64, f64)>,
    /// Samples dropped for being too far in the future.
    pub future: u32,
    /// Devices the kept samples are about, with their newest sample time.
    pub device_seen: BTreeMap<&'b str, i64>,
}

/// Drops samples stamped more than `max_future_ms` after `received_ms` and names the
/// series of the rest.
pub(crate) fn shape<'b>(
    samples: &'b [MetricSample],
    received_ms: i64,
    policy: &TimeseriesPolicy,
) -> Shaped<'b> {
    let newest_allowed = received_ms.saturating_add(policy.max_future_ms);
    let mut index: HashMap<BatchSeries<'b>, usize> = HashMap::with_capacity(samples.len());
    let mut out = Shaped {
        samples: Vec::with_capacity(samples.len()),
        ..Shaped::default()
    };
    for s in samples {
        if s.ts_ms > newest_allowed {
            out.future = out.future.saturating_add(1);
            continue;
        }
        let next = out.keys.len();
        let i = *index.entry((&s.entity, s.metric)).or_insert(next);
        if i == next {
            out.keys.push((&s.entity, s.metric));
        }
        out.samples.push((i, s.ts_ms, s.value));
        if let Some(d) = s.entity.device() {
            let t = out.device_seen.entry(d).or_insert(s.ts_ms);
            *t = (*t).max(s.ts_ms);
        }
    }
    out
}

/// Sample rows ready to write: unique per (series, ts), sorted, with what follows
/// from them.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// (series id, ts, value), sorted by series and time; the first of duplicates kept.
    pub rows: Vec<(i64, i64, f64)>,
    /// The newest (series id, ts, value) of each series.
    pub latest: Vec<(i64, i64, f64)>,
    /// (series id, hour) of samples late enough to need a rollup recomputation.
    pub late_hours: Vec<(i64, i64)>,
    /// Samples left out: their series would take the tenant over its series quota.
    pub over_quota: u32,
}

/// Rows of the samples whose series has an id (the others are over the series quota
/// and counted in [`Rows::over_quota`]).
pub(crate) fn rows(
    shaped: &Shaped<'_>,
    ids: &[Option<i64>],
    received_ms: i64,
    policy: &TimeseriesPolicy,
) -> Rows {
    let mut over_quota = 0u32;
    let mut rows: Vec<(i64, i64, f64)> = shaped
        .samples
        .iter()
        .filter_map(|&(i, ts, v)| match ids.get(i).copied().flatten() {
            Some(id) => Some((id, ts, v)),
            None => {
                over_quota = over_quota.saturating_add(1);
                None
            }
        })
        .collect();
    // Stable sort: of samples repeating a (series, ts) within the batch, the first wins.
    rows.sort_by_key(|&(id, ts, _)| (id, ts));
    rows.dedup_by_key(|&mut (id, ts, _)| (id, ts));
    let mut out = Rows::default();
    let late_before = received_ms.saturating_sub(policy.late_after_ms());
    let mut late = BTreeSet::new();
    for (n, &(id, ts, v)) in rows.iter().enumerate() {
        if rows.get(n + 1).is_none_or(|next| next.0 != id) {
            out.latest.push((id, ts, v));
        }
        if ts < late_before {
            late.insert((id, floor_to(ts, HOUR_MS)));
        }
    }
    out.late_hours = late.into_iter().collect();
    out.rows = rows;
    out.over_quota = over_quota;
    out
}

/// Series ids of `keys` (in key order) the cache knows, and the stored names of those it
/// does not with their indices, sorted by name: concurrent writers create series in one
/// order, so they cannot deadlock on each other's new rows.
pub(crate) fn cached_ids(
    tenant: &str,
    keys: &[BatchSeries<'_>],
    cache: Option<&IngestCache>,
) -> (Vec<Option<i64>>, Vec<(usize, SeriesKey)>) {
    let mut ids = vec![None; keys.len()];
    if let Some(cache) = cache {
        cache.lookup(tenant, keys, &mut ids);
    }
    let mut missing: Vec<(usize, SeriesKey)> = (0..keys.len())
        .filter(|&i| ids[i].is_none())
        .map(|i| {
            let (entity, metric) = keys[i];
            let (kind, id) = entity.storage_parts();
            (i, (kind, id, metric.as_str()))
        })
        .collect();
    missing.sort_by(|a, b| a.1.cmp(&b.1));
    (ids, missing)
}

/// Fills the ids found in the database into the cached ones; a key still without one
/// is over the tenant's series quota.
pub(crate) fn complete(
    mut ids: Vec<Option<i64>>,
    missing: &[(usize, SeriesKey)],
    found: &[Option<i64>],
) -> Vec<Option<i64>> {
    for ((i, _), id) in missing.iter().zip(found) {
        ids[*i] = *id;
    }
    ids
}

/// After commit: the ids resolved are safe to reuse (keys over the quota have none).
pub(crate) fn remember(
    cache: Option<&IngestCache>,
    tenant: &str,
    keys: &[BatchSeries<'_>],
    ids: &[Option<i64>],
) {
    if let Some(cache) = cache {
        let (keys, ids): (Vec<BatchSeries<'_>>, Vec<i64>) = keys
            .iter()
            .zip(ids)
            .filter_map(|(k, id)| id.map(|id| (*k, id)))
            .unzip();
        cache.remember(tenant, &keys, &ids);
    }
}

/// The engine-specific statements of the sample write path.
pub(crate) trait SampleWrite {
    /// Creates missing series and returns the ids of `keys`, in order.
    /// The ids of `keys` (in order), creating missing series while the tenant holds
    /// fewer than `max_series`; a key left without an id is over the quota.
    fn resolve_series(
        &mut self,
        tenant: &str,
        keys: &[&SeriesKey],
        max_series: u64,
    ) -> impl std::future::Future<Output = Result<Vec<Option<i64>>, sqlx::Error>> + Send;
    /// Inserts sample rows, skipping any already stored; returns how many were new.
    fn insert_samples(
        &mut self,
        rows: &[(i64, i64, f64)],
    ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send;
    /// Moves each series' latest value forward (never back in time).
    fn update_latest(
        &mut self,
        tenant: &str,
        latest: &[(i64, i64, f64)],
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
    /// Marks (series, hour) pairs for rollup recomputation.
    fn mark_late(
        &mut self,
        tenant: &str,
        marks: &[(i64, i64)],
        generation: i64,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
    /// Moves devices' last-seen time forward.
    fn touch_devices(
        &mut self,
        tenant: &str,
        seen: &BTreeMap<&str, i64>,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The columns of `keys`, as the arrays `unnest` takes.
fn kinds<'k>(keys: &[&'k SeriesKey]) -> Vec<&'k str> {
    keys.iter().map(|k| k.0).collect()
}

fn entities<'k>(keys: &[&'k SeriesKey]) -> Vec<&'k str> {
    keys.iter().map(|k| k.1.as_str()).collect()
}

fn metrics<'k>(keys: &[&'k SeriesKey]) -> Vec<&'k str> {
    keys.iter().map(|k| k.2).collect()
}

/// The stored ids of `keys`, in order; `None` for a series not stored.
async fn pg_series_ids(
    conn: &mut PgConnection,
    tenant: &str,
    keys: &[&SeriesKey],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let found: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT k.ord, s.id FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS k(kind, eid, metric, ord) \
         JOIN series s ON s.tenant_id = $1 AND s.entity_kind = k.kind AND s.entity_id = k.eid AND s.metric = k.metric",
    )
    .bind(tenant)
    .bind(kinds(keys))
    .bind(entities(keys))
    .bind(metrics(keys))
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = vec![None; keys.len()];
    for (ord, id) in found {
        if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| ids.get_mut(i)) {
            *slot = Some(id);
        }
    }
    Ok(ids)
}

/// Binary `COPY` rows of (int8, int8, float8). Public for the ingest benchmark, whose
/// baseline copies the same rows into a bare table.
pub fn copy_binary(rows: &[(i64, i64, f64)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(19 + rows.len() * 38 + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for &(id, ts, v) in rows {
        buf.extend_from_slice(&3i16.to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&ts.to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// Runs a `COPY … FROM STDIN` with `data`; returns the rows copied.
async fn copy_in(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<u64, sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("sending the batch failed").await;
        return Err(e);
    }
    copy.finish().await
}

/// Knowing an array's length, the planner prefers hashing every series of the tenant
/// to probing an index once per array element: the former grows with the tenant, the
/// latter only with the batch. For the rest of the batch transaction (whose statements
/// are all keyed by series or device) it gets no choice.
const PG_KEYED_JOINS: &str = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/// The per-connection staging table: created once per connection, emptied at every
/// commit, never logged.
const PG_STAGING: &str = "DO $$ BEGIN \
     IF to_regclass('pg_temp.ingest_samples') IS NULL THEN \
       CREATE TEMP TABLE ingest_samples (series_id BIGINT NOT NULL, ts_ms BIGINT NOT NULL, \
         value DOUBLE PRECISION NOT NULL) ON COMMIT DELETE ROWS; \
     END IF; END $$";

impl SampleWrite for PgConnection {
    async fn resolve_series(
        &mut self,
        tenant: &str,
        keys: &[&SeriesKey],
        max_series: u64,
    ) -> Result<Vec<Option<i64>>, sqlx::Error> {
        // Keyed probes, not a hash of every series of the tenant (see `update_latest`).
        self.execute(PG_KEYED_JOINS).await?;
        let mut ids = pg_series_ids(self, tenant, keys).await?;
        let new: Vec<&SeriesKey> = keys
            .iter()
            .zip(&ids)
            .filter(|(_, id)| id.is_none())
            .map(|(k, _)| *k)
            .collect();
        if new.is_empty() {
            return Ok(ids);
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM series WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *self)
            .await?;
        let room = usize::try_from(max_series.saturating_sub(u64::try_from(held).unwrap_or(0)))
            .unwrap_or(usize::MAX);
        let create = &new[..new.len().min(room)];
        if create.is_empty() {
            return Ok(ids);
        }
        // A concurrent writer creating the same series makes this wait for it; the
        // read after sees both.
        sqlx::query(
            "INSERT INTO series (tenant_id, entity_kind, entity_id, metric) \
             SELECT $1, k.kind, k.eid, k.metric FROM unnest($2::text[], $3::text[], $4::text[]) AS k(kind, eid, metric) \
             ON CONFLICT (tenant_id, entity_kind, entity_id, metric) DO NOTHING",
        )
        .bind(tenant)
        .bind(kinds(create))
        .bind(entities(create))
        .bind(metrics(create))
        .execute(&mut *self)
        .await?;
        let created = pg_series_ids(self, tenant, create).await?;
        let mut filled = create.iter().zip(created);
        for (key, id) in keys.iter().zip(ids.iter_mut()) {
            if id.is_none() {
                match filled.next() {
                    Some((k, c)) if *k == *key => *id = c,
                    _ => break,
                }
            }
        }
        Ok(ids)
    }

    async fn insert_samples(&mut self, rows: &[(i64, i64, f64)]) -> Result<u64, sqlx::Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let data = copy_binary(rows);
        // Fast path: straight into `samples`. A sample stored before makes the COPY fail
        // on the primary key; the savepoint undoes it and the staging path below skips
        // what exists. Replays are rare (a repeated batch is caught by its claim), so
        // nearly every batch costs one COPY.
        self.execute("SAVEPOINT ingest_copy").await?;
        match copy_in(
            self,
            "COPY samples (series_id, ts_ms, value) FROM STDIN (FORMAT binary)",
            &data,
        )
        .await
        {
            Ok(n) => {
                self.execute("RELEASE SAVEPOINT ingest_copy").await?;
                return Ok(n);
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                self.execute("ROLLBACK TO SAVEPOINT ingest_copy; RELEASE SAVEPOINT ingest_copy")
                    .await?;
            }
            Err(e) => return Err(e),
        }
        sqlx::query(PG_STAGING).execute(&mut *self).await?;
        copy_in(
            self,
            "COPY ingest_samples (series_id, ts_ms, value) FROM STDIN (FORMAT binary)",
            &data,
        )
        .await?;
        Ok(sqlx::query(
            "INSERT INTO samples (series_id, ts_ms, value) SELECT series_id, ts_ms, value FROM ingest_samples \
             ON CONFLICT DO NOTHING",
        )
        .execute(&mut *self)
        .await?
        .rows_affected())
    }

    async fn update_latest(
        &mut self,
        tenant: &str,
        latest: &[(i64, i64, f64)],
    ) -> Result<(), sqlx::Error> {
        if latest.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = latest.iter().map(|r| r.0).collect();
        let ts: Vec<i64> = latest.iter().map(|r| r.1).collect();
        let values: Vec<f64> = latest.iter().map(|r| r.2).collect();
        self.execute(PG_KEYED_JOINS).await?;
        sqlx::query(
            "UPDATE series AS s SET last_ts_ms = v.ts, last_value = v.val \
             FROM unnest($2::int8[], $3::int8[], $4::float8[]) AS v(id, ts, val) \
             WHERE s.id = v.id AND s.tenant_id = $1 AND (s.last_ts_ms IS NULL OR s.last_ts_ms < v.ts)",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(&ts)
        .bind(&values)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn mark_late(
        &mut self,
        tenant: &str,
        marks: &[(i64, i64)],
        generation: i64,
    ) -> Result<(), sqlx::Error> {
        if marks.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = marks.iter().map(|m| m.0).collect();
        let hours: Vec<i64> = marks.iter().map(|m| m.1).collect();
        sqlx::query(
            "INSERT INTO rollup_dirty (tenant_id, series_id, hour_ms, gen) \
             SELECT $1, d.sid, d.h, $4 FROM unnest($2::int8[], $3::int8[]) AS d(sid, h) \
             ON CONFLICT (tenant_id, series_id, hour_ms) DO UPDATE SET gen = excluded.gen",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(&hours)
        .bind(generation)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn touch_devices(
        &mut self,
        tenant: &str,
        seen: &BTreeMap<&str, i64>,
    ) -> Result<(), sqlx::Error> {
        if seen.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = seen.keys().copied().collect();
        let ts: Vec<i64> = seen.values().copied().collect();
        sqlx::query(
            "UPDATE devices AS d SET last_seen_ms = v.ts FROM unnest($2::text[], $3::int8[]) AS v(id, ts) \
             WHERE d.tenant_id = $1 AND d.id = v.id AND d.last_seen_ms < v.ts",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(&ts)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

/// Rows per multi-row `INSERT` on SQLite: 3 variables each, far below its limit of
/// 32,766 variables per statement, large enough to amortise the statement.
const SQLITE_CHUNK: usize = 500;

impl SampleWrite for SqliteConnection {
    async fn resolve_series(
        &mut self,
        tenant: &str,
        keys: &[&SeriesKey],
        max_series: u64,
    ) -> Result<Vec<Option<i64>>, sqlx::Error> {
        const FIND: &str = "SELECT id FROM series WHERE tenant_id = $1 AND entity_kind = $2 AND entity_id = $3 AND metric = $4";
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            let id: Option<i64> = sqlx::query_scalar(FIND)
                .bind(tenant)
                .bind(key.0)
                .bind(&key.1)
                .bind(key.2)
                .fetch_optional(&mut *self)
                .await?;
            ids.push(id);
        }
        if ids.iter().all(Option::is_some) {
            return Ok(ids);
        }
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM series WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *self)
            .await?;
        let mut room = max_series.saturating_sub(u64::try_from(held).unwrap_or(0));
        for (key, id) in keys.iter().zip(ids.iter_mut()) {
            if id.is_some() {
                continue;
            }
            if room == 0 {
                break;
            }
            room -= 1;
            *id = Some(
                sqlx::query_scalar(
                    "INSERT INTO series (tenant_id, entity_kind, entity_id, metric) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(tenant)
                .bind(key.0)
                .bind(&key.1)
                .bind(key.2)
                .fetch_one(&mut *self)
                .await?,
            );
        }
        Ok(ids)
    }

    async fn insert_samples(&mut self, rows: &[(i64, i64, f64)]) -> Result<u64, sqlx::Error> {
        let mut stored = 0;
        for chunk in rows.chunks(SQLITE_CHUNK) {
            let mut sql = String::from("INSERT INTO samples (series_id, ts_ms, value) VALUES ");
            for n in 0..chunk.len() {
                sql.push_str(if n == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
            }
            sql.push_str(" ON CONFLICT (series_id, ts_ms) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for &(id, ts, v) in chunk {
                q = q.bind(id).bind(ts).bind(v);
            }
            stored += q.execute(&mut *self).await?.rows_affected();
        }
        Ok(stored)
    }

    async fn update_latest(
        &mut self,
        tenant: &str,
        latest: &[(i64, i64, f64)],
    ) -> Result<(), sqlx::Error> {
        for &(id, ts, v) in latest {
            sqlx::query(
                "UPDATE series SET last_ts_ms = $1, last_value = $2 \
                 WHERE id = $3 AND tenant_id = $4 AND (last_ts_ms IS NULL OR last_ts_ms < $1)",
            )
            .bind(ts)
            .bind(v)
            .bind(id)
            .bind(tenant)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn mark_late(
        &mut self,
        tenant: &str,
        marks: &[(i64, i64)],
        generation: i64,
    ) -> Result<(), sqlx::Error> {
        for &(id, hour) in marks {
            sqlx::query(
                "INSERT INTO rollup_dirty (tenant_id, series_id, hour_ms, gen) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, series_id, hour_ms) DO UPDATE SET gen = excluded.gen",
            )
            .bind(tenant)
            .bind(id)
            .bind(hour)
            .bind(generation)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn touch_devices(
        &mut self,
        tenant: &str,
        seen: &BTreeMap<&str, i64>,
    ) -> Result<(), sqlx::Error> {
        for (device, ts) in seen {
            sqlx::query(
                "UPDATE devices SET last_seen_ms = $3 WHERE tenant_id = $1 AND id = $2 AND last_seen_ms < $3",
            )
            .bind(tenant)
            .bind(*device)
            .bind(*ts)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(device: &str, metric: MetricName, ts_ms: i64, value: f64) -> MetricSample {
        MetricSample {
            entity: EntityKey::Device(device.into()),
            metric,
            ts_ms,
            value,
        }
    }

    #[test]
    fn shaping_orders_keys_and_drops_the_far_future() {
        let policy = TimeseriesPolicy::default();
        let samples = vec![
            sample("b", MetricName::DeviceUp, 1_000, 1.0),
            sample("a", MetricName::DeviceUp, 2_000, 1.0),
            sample("b", MetricName::DeviceUp, 3_000, 0.0),
            sample(
                "a",
                MetricName::DeviceUp,
                10_000 + policy.max_future_ms + 1,
                1.0,
            ),
        ];
        let s = shape(&samples, 10_000, &policy);
        assert_eq!(s.future, 1);
        assert_eq!(
            s.keys
                .iter()
                .map(|k| k.0.storage_parts().1)
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(
            s.samples,
            vec![(0, 1_000, 1.0), (1, 2_000, 1.0), (0, 3_000, 0.0)]
        );
        let (_, missing) = cached_ids("t", &s.keys, None);
        assert_eq!(
            missing.iter().map(|m| m.0).collect::<Vec<_>>(),
            [1, 0],
            "created in key order"
        );
        let cache = IngestCache::default();
        cache.remember("t", &s.keys, &[3, 7]);
        let (ids, missing) = cached_ids("t", &s.keys, Some(&cache));
        assert_eq!((ids, missing.len()), (vec![Some(3), Some(7)], 0));
        assert!(
            cached_ids("u", &s.keys, Some(&cache)).1.len() == 2,
            "per tenant"
        );
        assert_eq!(s.device_seen.get("b"), Some(&3_000));

        let r = rows(
            &s,
            &[Some(3), Some(7)],
            policy.late_after_ms() + 2_500,
            &policy,
        );
        assert_eq!(
            r.rows,
            vec![(3, 1_000, 1.0), (3, 3_000, 0.0), (7, 2_000, 1.0)]
        );
        assert_eq!(r.latest, vec![(3, 3_000, 0.0), (7, 2_000, 1.0)]);
        // Received long after 1 000 and 2 000 (not 3 000): their hour is marked.
        assert_eq!(r.late_hours, vec![(3, 0), (7, 0)]);
    }

    #[test]
    fn duplicates_within_a_batch_keep_the_first() {
        let policy = TimeseriesPolicy::default();
        let samples = vec![
            sample("a", MetricName::DeviceUp, 1_000, 1.0),
            sample("a", MetricName::DeviceUp, 1_000, 0.0),
        ];
        let s = shape(&samples, 1_000, &policy);
        let r = rows(&s, &[Some(5)], 1_000, &policy);
        assert_eq!(r.rows, vec![(5, 1_000, 1.0)]);
    }

    #[test]
    fn binary_copy_layout() {
        let b = copy_binary(&[(1, 2, 0.5)]);
        assert_eq!(&b[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(b.len(), 19 + 38 + 2);
        assert_eq!(&b[b.len() - 2..], &[0xff, 0xff]);
    }
}
