//! Storing one batch, atomically and idempotently.
//!
//! A batch is stored in one transaction or not at all. The first statement claims
//! `(tenant, agent, seq)` in `ingested_batches`; if it was claimed before, the batch is
//! a replay and nothing else is written. Within a new batch, samples are unique per
//! series and timestamp and events per UUID, so overlapping replays store each item once.
//! The tenant's device and agent quotas are checked inside the same transaction: a batch
//! that would exceed one is refused whole and leaves nothing behind. The series quota
//! costs only the samples of the series it has no room for (counted); the rest of the
//! batch is stored.

use super::samples::{self, IngestCache, SampleWrite};
use super::settings::{
    QuotaExceeded, QuotaKind, TenantSettings, override_columns_of, override_row, overrides_from_row,
};
use super::timeseries::TimeseriesPolicy;
use super::{BeginWrite, Store, StoreError, TenantStore, on_pool, partitions};
use ispvm_proto::Batch;
use std::collections::BTreeSet;

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// The batch had been stored before; nothing was written.
    pub duplicate_batch: bool,
    pub samples_stored: u32,
    pub samples_duplicate: u32,
    /// Samples stamped too far ahead of the server's clock, dropped (not stored).
    pub samples_future: u32,
    /// Samples of series the tenant's series quota had no room for, dropped.
    pub samples_over_quota: u32,
    pub events_stored: u32,
    pub events_duplicate: u32,
    /// Sequence numbers skipped between the agent's previous batch and this one.
    pub seq_gap: u64,
    /// The batch's cluster report became the agent's newest (a replayed or
    /// out-of-order older one is not kept).
    pub cluster_report_kept: bool,
    /// Inventory rows (interfaces, addresses, neighbours) of devices the tenant does not
    /// have, skipped: the rest of the batch is stored.
    pub inventory_skipped: u32,
}

/// What identifies a batch's content: SHA-256 of its bincode form (first 16 bytes, hex).
/// The form is the one the server holds (a batch read from JSON or an older format is
/// held in the current layout), so a replay hashes the same over either transport.
fn content_hash(batch: &Batch) -> String {
    use sha2::{Digest, Sha256};
    let digest = match ispvm_proto::codec::to_bincode(batch) {
        Ok(bytes) => Sha256::digest(&bytes),
        // Unreachable for a batch that was decoded; hashing its debug form still tells
        // contents apart.
        Err(_) => Sha256::digest(format!("{batch:?}").as_bytes()),
    };
    hex::encode(&digest[..16])
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How often a batch is retried when PostgreSQL broke a deadlock by aborting it (two
/// agents reporting the same series at once); the retry usually goes straight through.
const DEADLOCK_RETRIES: usize = 3;

fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

impl TenantStore<'_> {
    /// Stores a validated batch whose agent and tenant were authenticated, under the
    /// default [`TimeseriesPolicy`] and without a series cache.
    pub async fn ingest(
        &self,
        batch: &Batch,
        received_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        self.ingest_with(batch, received_ms, &TimeseriesPolicy::default(), None)
            .await
    }

    /// Stores a validated batch: `policy` says which samples are too far in the future
    /// or late, and holds the quota defaults; `cache` (shared by the store's writers)
    /// saves the series lookups of series seen before.
    pub async fn ingest_with(
        &self,
        batch: &Batch,
        received_ms: i64,
        policy: &TimeseriesPolicy,
        cache: Option<&IngestCache>,
    ) -> Result<IngestOutcome, StoreError> {
        let shaped = samples::shape(&batch.samples, received_ms, policy);
        let hash = content_hash(batch);
        if let Store::Postgres(pool) = self.store {
            let days: BTreeSet<i64> = shaped
                .samples
                .iter()
                .map(|s| partitions::day_of(s.1))
                .collect();
            let oldest = received_ms.saturating_sub(
                i64::from(policy.tenant_defaults.raw_retention_days)
                    .saturating_mul(super::timeseries::DAY_MS),
            );
            let window = partitions::day_of(oldest)
                ..=partitions::day_of(received_ms.saturating_add(policy.max_future_ms));
            let wanted: Vec<i64> = days
                .into_iter()
                .filter(|d| window.contains(d))
                .filter(|d| cache.is_none_or(|c| !c.knows_day(*d)))
                .collect();
            if !wanted.is_empty() {
                partitions::prepare(pool, &wanted, cache).await;
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .ingest_once(batch, &hash, &shaped, received_ms, policy, cache)
                .await
            {
                Err(e) if attempt < DEADLOCK_RETRIES && is_retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "batch aborted by the database; retrying");
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn ingest_once(
        &self,
        batch: &Batch,
        hash: &str,
        shaped: &samples::Shaped<'_>,
        received_ms: i64,
        policy: &TimeseriesPolicy,
        cache: Option<&IngestCache>,
    ) -> Result<IngestOutcome, StoreError> {
        let t = self.tenant;
        let seq = i64::try_from(batch.seq).unwrap_or(i64::MAX);
        let agent = batch.agent_id.as_str();
        let mut outcome = IngestOutcome {
            samples_future: shaped.future,
            ..IngestOutcome::default()
        };
        let generation = uuid::Uuid::new_v4().as_u64_pair().0 as i64;
        let tenant_sql = format!(
            "SELECT t.id, {} FROM tenants t LEFT JOIN tenant_settings s ON s.tenant_id = t.id WHERE t.id = $1",
            override_columns_of("s")
        );
        let resolved = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let tenant = sqlx::query(&tenant_sql).bind(t).fetch_optional(&mut *tx).await?;
            let Some(row) = tenant else {
                return Err(StoreError::UnknownTenant(t.to_owned()));
            };
            let settings: TenantSettings = overrides_from_row(override_row(&row, 1)?)
                .resolve(&policy.tenant_defaults);
            let claimed = sqlx::query(
                "INSERT INTO ingested_batches (tenant_id, agent_id, seq, received_ms, samples, events, content_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, agent_id, seq) DO NOTHING",
            )
            .bind(t).bind(agent).bind(seq).bind(received_ms)
            .bind(batch.samples.len() as i64).bind(batch.events.len() as i64).bind(hash)
            .execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                let stored: Option<String> = sqlx::query_scalar(
                    "SELECT content_hash FROM ingested_batches WHERE tenant_id = $1 AND agent_id = $2 AND seq = $3",
                )
                .bind(t).bind(agent).bind(seq).fetch_one(&mut *tx).await?;
                tx.rollback().await?;
                if let Some(stored) = stored.filter(|s| s != hash) {
                    return Err(StoreError::SeqReused {
                        agent: agent.to_owned(),
                        seq: batch.seq,
                        stored,
                        received: hash.to_owned(),
                    });
                }
                outcome.duplicate_batch = true;
                outcome.samples_future = 0;
                outcome.samples_duplicate = count(batch.samples.len());
                outcome.events_duplicate = count(batch.events.len());
                return Ok(outcome);
            }

            // The agent: last seen, highest sequence number, gaps; a new one must fit
            // the tenant's agent quota.
            let last_seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM agents WHERE tenant_id = $1 AND id = $2")
                .bind(t).bind(agent).fetch_optional(&mut *tx).await?;
            if last_seq.is_none() {
                let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE tenant_id = $1")
                    .bind(t).fetch_one(&mut *tx).await?;
                let agents = u64::try_from(agents).unwrap_or(0);
                if agents >= settings.max_agents {
                    return Err(QuotaExceeded { kind: QuotaKind::Agents, limit: settings.max_agents, current: agents, adding: 1 }.into());
                }
            }
            let gap = match last_seq {
                Some(last) if seq > last + 1 => (seq - last - 1) as u64,
                _ => 0,
            };
            outcome.seq_gap = gap;
            sqlx::query(
                "INSERT INTO agents (tenant_id, id, first_seen_ms, last_seen_ms, last_seq, batches, seq_gaps) \
                 VALUES ($1, $2, $3, $3, $4, 1, 0) \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET \
                   last_seen_ms = excluded.last_seen_ms, \
                   last_seq = CASE WHEN excluded.last_seq > agents.last_seq THEN excluded.last_seq ELSE agents.last_seq END, \
                   batches = agents.batches + 1, \
                   seq_gaps = agents.seq_gaps + $5",
            )
            .bind(t).bind(agent).bind(received_ms).bind(seq).bind(gap as i64)
            .execute(&mut *tx).await?;

            // Inventory: sites first (devices reference them), then devices, interfaces.
            let mut known_devices: BTreeSet<&str> = BTreeSet::new();
            let devices_before: i64 = if batch.inventory.devices.is_empty() {
                0
            } else {
                sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE tenant_id = $1")
                    .bind(t).fetch_one(&mut *tx).await?
            };
            for (i, d) in batch.inventory.devices.iter().enumerate() {
                let item = || format!("inventory.devices[{i}] ({})", d.key);
                sqlx::query("INSERT INTO sites (tenant_id, id, name) VALUES ($1, $2, $2) ON CONFLICT (tenant_id, id) DO NOTHING")
                    .bind(t).bind(&d.site).execute(&mut *tx).await.map_err(StoreError::item(item()))?;
                sqlx::query(
                    "INSERT INTO devices (tenant_id, id, name, site_id, role, mgmt_addr, model, os_version, agent_id, first_seen_ms, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, site_id = excluded.site_id, \
                       role = excluded.role, mgmt_addr = excluded.mgmt_addr, model = excluded.model, \
                       os_version = excluded.os_version, agent_id = excluded.agent_id",
                )
                .bind(t).bind(&d.key).bind(&d.name).bind(&d.site).bind(d.role.as_str())
                .bind(&d.mgmt_addr).bind(&d.model).bind(&d.os_version).bind(agent).bind(received_ms)
                .execute(&mut *tx).await.map_err(StoreError::item(item()))?;
                known_devices.insert(d.key.as_str());
            }
            if !batch.inventory.devices.is_empty() {
                let devices_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE tenant_id = $1")
                    .bind(t).fetch_one(&mut *tx).await?;
                let (before, after) = (u64::try_from(devices_before).unwrap_or(0), u64::try_from(devices_after).unwrap_or(0));
                // A tenant already over a lowered quota may still update its devices,
                // but not add one.
                if after > before && after > settings.max_devices {
                    return Err(QuotaExceeded { kind: QuotaKind::Devices, limit: settings.max_devices, current: before, adding: after - before }.into());
                }
            }
            // Interfaces, addresses and neighbours must belong to a device the store
            // knows: one in this patch, or one stored before.
            let inv = &batch.inventory;
            let referenced: BTreeSet<&str> = inv.interfaces.iter().map(|i| i.device.as_str())
                .chain(inv.addresses.iter().map(|a| a.device.as_str()))
                .chain(inv.neighbors.iter().map(|n| n.device.as_str()))
                .collect();
            for device in referenced {
                if known_devices.contains(device) {
                    continue;
                }
                let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM devices WHERE tenant_id = $1 AND id = $2")
                    .bind(t).bind(device).fetch_optional(&mut *tx).await?;
                if exists.is_some() {
                    known_devices.insert(device);
                }
            }
            let skipped = inv.interfaces.iter().map(|i| i.device.as_str())
                .chain(inv.addresses.iter().map(|a| a.device.as_str()))
                .chain(inv.neighbors.iter().map(|n| n.device.as_str()))
                .filter(|d| !known_devices.contains(d))
                .count();
            outcome.inventory_skipped = u32::try_from(skipped).unwrap_or(u32::MAX);
            for (i, itf) in inv.interfaces.iter().enumerate().filter(|(_, i)| known_devices.contains(i.device.as_str())) {
                sqlx::query(
                    "INSERT INTO interfaces (tenant_id, device_id, name, kind, disabled, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, device_id, name) DO UPDATE SET kind = excluded.kind, \
                       disabled = excluded.disabled, last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&itf.device).bind(&itf.name).bind(&itf.kind).bind(itf.disabled).bind(received_ms)
                .execute(&mut *tx).await.map_err(StoreError::item(format!("inventory.interfaces[{i}]")))?;
            }
            for (i, a) in inv.addresses.iter().enumerate().filter(|(_, a)| known_devices.contains(a.device.as_str())) {
                sqlx::query(
                    "INSERT INTO interface_addresses (tenant_id, device_id, interface, address, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, device_id, interface, address) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&a.device).bind(&a.interface).bind(&a.address).bind(received_ms)
                .execute(&mut *tx).await.map_err(StoreError::item(format!("inventory.addresses[{i}]")))?;
            }
            for (i, n) in inv.neighbors.iter().enumerate().filter(|(_, n)| known_devices.contains(n.device.as_str())) {
                sqlx::query(
                    "INSERT INTO discovered_neighbors (tenant_id, device_id, interface, identity, mac, address, platform, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, device_id, interface, identity, mac) DO UPDATE SET \
                       address = excluded.address, platform = excluded.platform, last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&n.device).bind(&n.interface).bind(&n.identity).bind(&n.mac)
                .bind(&n.address).bind(&n.platform).bind(received_ms)
                .execute(&mut *tx).await.map_err(StoreError::item(format!("inventory.neighbors[{i}]")))?;
            }

            // Samples: series ids, then narrow rows written set-wise.
            let mut resolved = None;
            if !shaped.keys.is_empty() {
                let (ids, missing) = samples::cached_ids(t, &shaped.keys, cache);
                let ids = if missing.is_empty() {
                    ids
                } else {
                    let wanted: Vec<&samples::SeriesKey> = missing.iter().map(|m| &m.1).collect();
                    let found = (*tx).resolve_series(t, &wanted, settings.max_series).await?;
                    samples::complete(ids, &missing, &found)
                };
                let from_db = !missing.is_empty();
                let rows = samples::rows(shaped, &ids, received_ms, policy);
                outcome.samples_over_quota = rows.over_quota;
                let stored = (*tx).insert_samples(&rows.rows).await.map_err(StoreError::item("samples"))?;
                outcome.samples_stored = count(usize::try_from(stored).unwrap_or(usize::MAX));
                outcome.samples_duplicate = count(shaped.samples.len()).saturating_sub(outcome.samples_stored);
                (*tx).update_latest(t, &rows.latest).await?;
                (*tx).mark_late(t, &rows.late_hours, generation).await?;
                (*tx).touch_devices(t, &shaped.device_seen).await?;
                if from_db {
                    resolved = Some(ids);
                }
            }

            for (i, e) in batch.events.iter().enumerate() {
                let (kind, id) = e.entity.storage_parts();
                let attrs = serde_json::to_string(&e.attrs).unwrap_or_else(|_| "{}".into());
                let stored = sqlx::query(
                    "INSERT INTO events (tenant_id, id, ts_ms, entity_kind, entity_id, kind, severity, message, attrs, agent_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, id) DO NOTHING",
                )
                .bind(t).bind(e.id.to_string()).bind(e.ts_ms).bind(kind).bind(id)
                .bind(e.kind.as_str()).bind(e.severity.as_str()).bind(&e.message).bind(attrs).bind(agent)
                .execute(&mut *tx).await.map_err(StoreError::item(format!("events[{i}] ({})", e.id)))?.rows_affected();
                if stored == 0 {
                    outcome.events_duplicate += 1;
                } else {
                    outcome.events_stored += 1;
                }
            }
            if let Some(report) = &batch.cluster {
                let json = serde_json::to_string(report)
                    .map_err(|e| StoreError::Db(sqlx::Error::Encode(Box::new(e))))?;
                let kept = sqlx::query(super::cluster::UPSERT_REPORT)
                    .bind(t).bind(agent).bind(report.at_ms).bind(received_ms).bind(json)
                    .execute(&mut *tx).await?.rows_affected();
                outcome.cluster_report_kept = kept > 0;
            }
            tx.commit().await?;
            resolved
        });
        if let Some(ids) = resolved {
            samples::remember(cache, t, &shaped.keys, &ids);
        }
        Ok(outcome)
    }
}
