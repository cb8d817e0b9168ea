//! Storing one batch, atomically and idempotently.
//!
//! A batch is stored in one transaction or not at all. The first statement claims
//! `(tenant, agent, seq)` in `ingested_batches`; if it was claimed before, the batch is
//! a replay and nothing else is written. Within a new batch, samples are unique per
//! series and timestamp and events per UUID, so overlapping replays store each item once.

use super::{BeginWrite, StoreError, TenantStore, on_pool};
use ispvm_proto::{Batch, MetricSample};
use std::collections::{BTreeMap, BTreeSet};

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// The batch had been stored before; nothing was written.
    pub duplicate_batch: bool,
    pub samples_stored: u32,
    pub samples_duplicate: u32,
    pub events_stored: u32,
    pub events_duplicate: u32,
    /// Sequence numbers skipped between the agent's previous batch and this one.
    pub seq_gap: u64,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Devices a batch has samples for, with the newest sample time of each.
fn device_last_seen(samples: &[MetricSample]) -> BTreeMap<&str, i64> {
    let mut seen = BTreeMap::new();
    for s in samples {
        if let Some(d) = s.entity.device() {
            let t = seen.entry(d).or_insert(s.ts_ms);
            *t = (*t).max(s.ts_ms);
        }
    }
    seen
}

impl TenantStore<'_> {
    /// Stores a validated batch whose agent and tenant were authenticated.
    pub async fn ingest(
        &self,
        batch: &Batch,
        received_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let t = self.tenant;
        let seq = i64::try_from(batch.seq).unwrap_or(i64::MAX);
        let agent = batch.agent_id.as_str();
        let mut outcome = IngestOutcome::default();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let tenant_known: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM tenants WHERE id = $1")
                .bind(t).fetch_optional(&mut *tx).await?;
            if tenant_known.is_none() {
                return Err(StoreError::UnknownTenant(t.to_owned()));
            }
            let claimed = sqlx::query(
                "INSERT INTO ingested_batches (tenant_id, agent_id, seq, received_ms, samples, events) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, agent_id, seq) DO NOTHING",
            )
            .bind(t).bind(agent).bind(seq).bind(received_ms)
            .bind(batch.samples.len() as i64).bind(batch.events.len() as i64)
            .execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                outcome.duplicate_batch = true;
                outcome.samples_duplicate = count(batch.samples.len());
                outcome.events_duplicate = count(batch.events.len());
                return Ok(outcome);
            }

            // The agent: last seen, highest sequence number, gaps.
            let last_seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM agents WHERE tenant_id = $1 AND id = $2")
                .bind(t).bind(agent).fetch_optional(&mut *tx).await?;
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
            for d in &batch.inventory.devices {
                sqlx::query("INSERT INTO sites (tenant_id, id, name) VALUES ($1, $2, $2) ON CONFLICT (tenant_id, id) DO NOTHING")
                    .bind(t).bind(&d.site).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO devices (tenant_id, id, name, site_id, role, mgmt_addr, model, os_version, agent_id, first_seen_ms, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, site_id = excluded.site_id, \
                       role = excluded.role, mgmt_addr = excluded.mgmt_addr, model = excluded.model, \
                       os_version = excluded.os_version, agent_id = excluded.agent_id",
                )
                .bind(t).bind(&d.key).bind(&d.name).bind(&d.site).bind(d.role.as_str())
                .bind(&d.mgmt_addr).bind(&d.model).bind(&d.os_version).bind(agent).bind(received_ms)
                .execute(&mut *tx).await?;
                known_devices.insert(d.key.as_str());
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
                } else {
                    tracing::warn!(tenant = t, device, "inventory of an unknown device skipped");
                }
            }
            for itf in inv.interfaces.iter().filter(|i| known_devices.contains(i.device.as_str())) {
                sqlx::query(
                    "INSERT INTO interfaces (tenant_id, device_id, name, kind, disabled, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, device_id, name) DO UPDATE SET kind = excluded.kind, \
                       disabled = excluded.disabled, last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&itf.device).bind(&itf.name).bind(&itf.kind).bind(itf.disabled).bind(received_ms)
                .execute(&mut *tx).await?;
            }
            for a in inv.addresses.iter().filter(|a| known_devices.contains(a.device.as_str())) {
                sqlx::query(
                    "INSERT INTO interface_addresses (tenant_id, device_id, interface, address, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, device_id, interface, address) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&a.device).bind(&a.interface).bind(&a.address).bind(received_ms)
                .execute(&mut *tx).await?;
            }
            for n in inv.neighbors.iter().filter(|n| known_devices.contains(n.device.as_str())) {
                sqlx::query(
                    "INSERT INTO discovered_neighbors (tenant_id, device_id, interface, identity, mac, address, platform, last_seen_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (tenant_id, device_id, interface, identity, mac) DO UPDATE SET \
                       address = excluded.address, platform = excluded.platform, last_seen_ms = excluded.last_seen_ms",
                )
                .bind(t).bind(&n.device).bind(&n.interface).bind(&n.identity).bind(&n.mac)
                .bind(&n.address).bind(&n.platform).bind(received_ms)
                .execute(&mut *tx).await?;
            }

            // Samples: one series row per (entity, metric), then narrow sample rows.
            let mut series_ids: BTreeMap<(&'static str, String, &'static str), i64> = BTreeMap::new();
            for s in &batch.samples {
                let (kind, id) = s.entity.storage_parts();
                let key = (kind, id, s.metric.as_str());
                let series_id = match series_ids.get(&key) {
                    Some(id) => *id,
                    None => {
                        let id: i64 = sqlx::query_scalar(
                            "INSERT INTO series (tenant_id, entity_kind, entity_id, metric) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (tenant_id, entity_kind, entity_id, metric) DO UPDATE SET metric = excluded.metric \
                             RETURNING id",
                        )
                        .bind(t).bind(key.0).bind(&key.1).bind(key.2)
                        .fetch_one(&mut *tx).await?;
                        series_ids.insert(key, id);
                        id
                    }
                };
                let stored = sqlx::query("INSERT INTO samples (series_id, ts_ms, value) VALUES ($1, $2, $3) ON CONFLICT (series_id, ts_ms) DO NOTHING")
                    .bind(series_id).bind(s.ts_ms).bind(s.value)
                    .execute(&mut *tx).await?.rows_affected();
                if stored == 0 {
                    outcome.samples_duplicate += 1;
                    continue;
                }
                outcome.samples_stored += 1;
                sqlx::query(
                    "UPDATE series SET last_ts_ms = $1, last_value = $2 \
                     WHERE id = $3 AND (last_ts_ms IS NULL OR last_ts_ms < $1)",
                )
                .bind(s.ts_ms).bind(s.value).bind(series_id)
                .execute(&mut *tx).await?;
            }
            for (device, ts) in device_last_seen(&batch.samples) {
                sqlx::query("UPDATE devices SET last_seen_ms = $3 WHERE tenant_id = $1 AND id = $2 AND last_seen_ms < $3")
                    .bind(t).bind(device).bind(ts)
                    .execute(&mut *tx).await?;
            }

            for e in &batch.events {
                let (kind, id) = e.entity.storage_parts();
                let attrs = serde_json::to_string(&e.attrs).unwrap_or_else(|_| "{}".into());
                let stored = sqlx::query(
                    "INSERT INTO events (tenant_id, id, ts_ms, entity_kind, entity_id, kind, severity, message, attrs, agent_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, id) DO NOTHING",
                )
                .bind(t).bind(e.id.to_string()).bind(e.ts_ms).bind(kind).bind(id)
                .bind(e.kind.as_str()).bind(e.severity.as_str()).bind(&e.message).bind(attrs).bind(agent)
                .execute(&mut *tx).await?.rows_affected();
                if stored == 0 {
                    outcome.events_duplicate += 1;
                } else {
                    outcome.events_stored += 1;
                }
            }
            tx.commit().await?;
        });
        Ok(outcome)
    }
}
