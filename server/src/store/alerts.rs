//! Alert rules, alert states and notifications, and the reads the alert engine and the
//! actor tree rebuild themselves from.

use super::{BeginWrite, Readable, StoreError, TenantStore, Unreadable, on_pool, stored_word};
use ispvm_actors::alert::{
    AlertChange, AlertState, EntityAttrs, EntityKind, EntityRef, Level, MaintenanceWindow,
    NotificationKind, Phase, Rule, Scope,
};
use ispvm_actors::tree::{LinkSpec, StoredPoint};
use ispvm_proto::time::now_ms;
use ispvm_proto::{DeviceRole, MetricName};
use std::collections::HashMap;

/// Most points one window refill reads; beyond it the oldest are left out (the engine
/// judges on the newest it has, and fresh samples fill the rest within a cycle).
const MAX_REFILL_POINTS: i64 = 2_000_000;

/// A stored alert notification (the notifier's outbox and the alert history).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationRow {
    pub id: i64,
    pub ts_ms: i64,
    pub rule_id: String,
    pub rule_name: String,
    pub entity_kind: EntityKind,
    pub entity_id: String,
    pub kind: NotificationKind,
    pub level: Level,
    pub summary: String,
    pub details: serde_json::Value,
    pub delivered_ms: Option<i64>,
}

/// A stored alert, as the API lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AlertRow {
    pub rule_id: String,
    pub entity_kind: EntityKind,
    pub entity_id: String,
    pub phase: Phase,
    pub level: Option<Level>,
    pub since_ms: i64,
    pub summary: String,
    pub state: serde_json::Value,
}

type AlertTuple = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
);
type PointTuple = (String, String, String, i64, f64);
type LinkEnds = (String, String, String, String, Option<i64>);

fn entity(kind: &str, id: String) -> Option<EntityRef> {
    EntityKind::parse(kind).map(|k| EntityRef::new(k, id))
}

impl TenantStore<'_> {
    /// Loads the starter rule pack into a tenant that has none of its rules yet.
    pub async fn seed_starter_rules(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut added = 0;
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            for rule in ispvm_actors::alert::starter_pack() {
                let doc = serde_json::to_string(&rule).unwrap_or_default();
                added += sqlx::query(
                    "INSERT INTO alert_rules (tenant_id, id, name, kind, enabled, document, revision, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) ON CONFLICT (tenant_id, id) DO NOTHING",
                )
                .bind(self.tenant).bind(&rule.id).bind(&rule.name).bind(rule.kind.type_name())
                .bind(rule.enabled).bind(doc).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(added)
    }

    /// The tenant's rules. A stored document that no longer validates is left out
    /// (and returned as unreadable) rather than stopping every other rule.
    pub async fn alert_rules(&self) -> Result<Readable<Rule>, StoreError> {
        let docs: Vec<(String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, document FROM alert_rules WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        });
        let mut out = Readable {
            items: Vec::with_capacity(docs.len()),
            unreadable: Vec::new(),
        };
        for (id, doc) in docs {
            match Rule::from_json(&doc) {
                Ok(r) => out.items.push(r),
                Err(e) => out.unreadable.push(Unreadable {
                    what: "alert_rule",
                    key: id,
                    error: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    /// Persisted alert states. One that cannot be read is left out (the alert restarts
    /// from OK) and returned as unreadable.
    pub async fn alert_states(
        &self,
    ) -> Result<Readable<(String, EntityRef, AlertState)>, StoreError> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT rule_id, entity_kind, entity_id, state FROM alert_states WHERE tenant_id = $1")
                .bind(self.tenant).fetch_all(pool).await?
        });
        let mut out = Readable {
            items: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
        };
        for (rule, kind, id, state) in rows {
            let parsed = serde_json::from_str::<AlertState>(&state);
            match (entity(&kind, id.clone()), parsed) {
                (Some(e), Ok(st)) => out.items.push((rule, e, st)),
                (e, st) => out.unreadable.push(Unreadable {
                    what: "alert_state",
                    key: format!("{rule} {kind}/{id}"),
                    error: match (e, st) {
                        (None, _) => format!("unknown entity kind {kind:?}"),
                        (_, Err(err)) => err.to_string(),
                        (Some(_), Ok(_)) => String::new(),
                    },
                }),
            }
        }
        Ok(out)
    }

    /// Writes state changes and their notifications in one transaction.
    pub async fn save_alert_changes(&self, changes: &[AlertChange]) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            for c in changes {
                let kind = c.entity.kind.as_str();
                if c.state.is_idle() {
                    sqlx::query("DELETE FROM alert_states WHERE tenant_id = $1 AND rule_id = $2 AND entity_kind = $3 AND entity_id = $4")
                        .bind(self.tenant).bind(&c.rule_id).bind(kind).bind(&c.entity.id)
                        .execute(&mut *tx).await?;
                } else {
                    let state = serde_json::to_string(&c.state).unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO alert_states (tenant_id, rule_id, entity_kind, entity_id, phase, level, since_ms, summary, state, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (tenant_id, rule_id, entity_kind, entity_id) DO UPDATE SET phase = excluded.phase, \
                           level = excluded.level, since_ms = excluded.since_ms, summary = excluded.summary, \
                           state = excluded.state, updated_ms = excluded.updated_ms",
                    )
                    .bind(self.tenant).bind(&c.rule_id).bind(kind).bind(&c.entity.id)
                    .bind(c.state.phase.as_str()).bind(c.state.level.map(|l| l.as_str()))
                    .bind(c.state.last_change_ms).bind(&c.state.explanation.summary).bind(state).bind(now)
                    .execute(&mut *tx).await?;
                }
                for n in &c.notifications {
                    let details = serde_json::to_string(&n.explanation).unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO alert_notifications (tenant_id, ts_ms, rule_id, rule_name, entity_kind, entity_id, kind, level, summary, details) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(self.tenant).bind(n.ts_ms).bind(&n.rule_id).bind(&n.rule_name).bind(kind)
                    .bind(&n.entity.id).bind(n.kind.as_str()).bind(n.level.as_str())
                    .bind(&n.explanation.summary).bind(details)
                    .execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Alerts that are not OK, newest change first.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let rows: Vec<AlertTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT rule_id, entity_kind, entity_id, phase, level, since_ms, summary, state FROM alert_states \
                 WHERE tenant_id = $1 AND phase <> 'ok' ORDER BY since_ms DESC, rule_id, entity_id",
            )
            .bind(self.tenant).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(rule_id, entity_kind, entity_id, phase, level, since_ms, summary, state)| {
                    Ok(AlertRow {
                        rule_id,
                        entity_kind: stored_word("entity_kind", &entity_kind)?,
                        entity_id,
                        phase: stored_word("phase", &phase)?,
                        level: level.map(|l| stored_word("level", &l)).transpose()?,
                        since_ms,
                        summary,
                        state: serde_json::from_str(&state).unwrap_or(serde_json::Value::Null),
                    })
                },
            )
            .collect()
    }

    /// Notifications after `after_id`, oldest first.
    pub async fn alert_notifications(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
        );
        let rows: Vec<Row> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, ts_ms, rule_id, rule_name, entity_kind, entity_id, kind, level, summary, details, delivered_ms \
                 FROM alert_notifications WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(self.tenant).bind(after_id).bind(limit.clamp(1, 1_000))
            .fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(
                    id,
                    ts_ms,
                    rule_id,
                    rule_name,
                    entity_kind,
                    entity_id,
                    kind,
                    level,
                    summary,
                    details,
                    delivered_ms,
                )| {
                    Ok(NotificationRow {
                        id,
                        ts_ms,
                        rule_id,
                        rule_name,
                        entity_kind: stored_word("entity_kind", &entity_kind)?,
                        entity_id,
                        kind: stored_word("kind", &kind)?,
                        level: stored_word("level", &level)?,
                        summary,
                        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                        delivered_ms,
                    })
                },
            )
            .collect()
    }

    /// Inventory attributes the engine's scopes match on: device site, role and tags;
    /// interface uplink and disabled flags; link capacities on both end interfaces;
    /// and, by convention, a probe target named like a device probes that device.
    pub async fn alert_entities(&self) -> Result<Vec<(EntityRef, EntityAttrs)>, StoreError> {
        let t = self.tenant;
        let devices: Vec<(String, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, site_id, role FROM devices WHERE tenant_id = $1").bind(t).fetch_all(pool).await?
        });
        let tags: Vec<(String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT device_id, tag FROM device_tags WHERE tenant_id = $1").bind(t).fetch_all(pool).await?
        });
        let interfaces: Vec<(String, String, bool, bool)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT device_id, name, uplink, disabled FROM interfaces WHERE tenant_id = $1").bind(t).fetch_all(pool).await?
        });
        let links: Vec<LinkEnds> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT a_device, a_interface, b_device, b_interface, capacity_bps FROM links WHERE tenant_id = $1").bind(t).fetch_all(pool).await?
        });
        let mut tag_map: HashMap<String, Vec<String>> = HashMap::new();
        for (d, tag) in tags {
            tag_map.entry(d).or_default().push(tag);
        }
        let mut capacity: HashMap<String, f64> = HashMap::new();
        for (ad, ai, bd, bi, cap) in links {
            if let Some(c) = cap {
                capacity.insert(format!("{ad}/{ai}"), c as f64);
                capacity.insert(format!("{bd}/{bi}"), c as f64);
            }
        }
        let mut out = Vec::with_capacity(devices.len() * 2 + interfaces.len());
        for (id, site, role) in devices {
            out.push((
                EntityRef::new(EntityKind::ProbeTarget, id.clone()),
                EntityAttrs {
                    device: Some(id.clone()),
                    site: Some(site.clone()),
                    ..EntityAttrs::default()
                },
            ));
            let tags = tag_map.remove(&id).unwrap_or_default();
            out.push((
                EntityRef::device(id),
                EntityAttrs {
                    site: Some(site),
                    role: role.parse().ok(),
                    tags,
                    ..EntityAttrs::default()
                },
            ));
        }
        for (device, name, uplink, disabled) in interfaces {
            let id = format!("{device}/{name}");
            let capacity_bps = capacity.get(&id).copied();
            out.push((
                EntityRef::new(EntityKind::Interface, id),
                EntityAttrs {
                    uplink,
                    disabled,
                    capacity_bps,
                    ..EntityAttrs::default()
                },
            ));
        }
        Ok(out)
    }

    /// Maintenance windows that have not ended, as engine scopes. A stored window
    /// selects the union of its lists; the engine's scopes intersect, so each list
    /// becomes its own engine window.
    pub async fn alert_maintenance(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let now = now_ms();
        let rows: Vec<(String, i64, i64, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, starts_ms, ends_ms, scope, comment FROM maintenance_windows WHERE tenant_id = $1 AND ends_ms > $2")
                .bind(self.tenant).bind(now).fetch_all(pool).await?
        });
        let links = self.links_for_engine().await?;
        let mut out = Vec::new();
        for (id, starts_ms, ends_ms, scope, reason) in rows {
            let v: serde_json::Value = serde_json::from_str(&scope).unwrap_or_default();
            let list = |k: &str| -> Vec<String> {
                v.get(k)
                    .and_then(|x| x.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut scopes = Vec::new();
            if v.get("all").and_then(|x| x.as_bool()) == Some(true) {
                scopes.push(Scope::default());
            }
            let sites = list("sites");
            if !sites.is_empty() {
                scopes.push(Scope {
                    sites,
                    ..Scope::default()
                });
            }
            // Written through the checked API: every word parses.
            let roles: Vec<DeviceRole> = list("roles")
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect();
            if !roles.is_empty() {
                scopes.push(Scope {
                    roles,
                    ..Scope::default()
                });
            }
            for tag in list("tags") {
                scopes.push(Scope {
                    tags: vec![tag],
                    ..Scope::default()
                });
            }
            let mut ids = list("devices");
            for l in list("links") {
                if let Some(spec) = links.iter().find(|s| s.id == l) {
                    ids.push(format!("{}/{}", spec.a.0, spec.a.1));
                    ids.push(format!("{}/{}", spec.b.0, spec.b.1));
                }
            }
            if !ids.is_empty() {
                scopes.push(Scope {
                    ids,
                    ..Scope::default()
                });
            }
            for scope in scopes {
                out.push(MaintenanceWindow {
                    id: id.clone(),
                    scope,
                    starts_ms,
                    ends_ms,
                    reason: reason.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Links with their end interfaces.
    pub async fn links_for_engine(&self) -> Result<Vec<LinkSpec>, StoreError> {
        let rows: Vec<(String, String, String, String, String)> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, a_device, a_interface, b_device, b_interface FROM links WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, ad, ai, bd, bi)| LinkSpec {
                id,
                a: (ad, ai),
                b: (bd, bi),
            })
            .collect())
    }

    /// Samples since `since_ms`, oldest first, to refill evaluation windows.
    pub async fn recent_points(&self, since_ms: i64) -> Result<Vec<StoredPoint>, StoreError> {
        let rows: Vec<PointTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT r.entity_kind, r.entity_id, r.metric, s.ts_ms, s.value FROM samples s \
                 JOIN series r ON r.id = s.series_id WHERE r.tenant_id = $1 AND s.ts_ms >= $2 \
                 ORDER BY s.ts_ms DESC LIMIT $3",
            )
            .bind(self.tenant).bind(since_ms).bind(MAX_REFILL_POINTS)
            .fetch_all(pool).await?
        });
        // Newest first so a cut keeps the most recent points; the engine wants them in order.
        let mut out = points(rows);
        out.reverse();
        Ok(out)
    }

    /// The newest value of every series of a device, its interfaces and its peers.
    pub async fn device_latest(&self, device: &str) -> Result<Vec<StoredPoint>, StoreError> {
        let prefix = format!("{device}/");
        let rows: Vec<PointTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT entity_kind, entity_id, metric, last_ts_ms, last_value FROM series \
                 WHERE tenant_id = $1 AND last_ts_ms IS NOT NULL AND last_value IS NOT NULL \
                 AND ((entity_kind = 'device' AND entity_id = $2) \
                   OR (entity_kind IN ('interface', 'peer') AND substr(entity_id, 1, CAST($3 AS INTEGER)) = $4))",
            )
            .bind(self.tenant).bind(device).bind(prefix.len() as i64).bind(&prefix)
            .fetch_all(pool).await?
        });
        Ok(points(rows))
    }
}

fn points(rows: Vec<PointTuple>) -> Vec<StoredPoint> {
    rows.into_iter()
        .filter_map(|(kind, id, metric, ts_ms, value)| {
            Some(StoredPoint {
                entity: entity(&kind, id)?,
                metric: metric.parse::<MetricName>().ok()?,
                ts_ms,
                value,
            })
        })
        .collect()
}

impl super::Store {
    /// Every tenant id, for starting a supervisor per tenant.
    pub async fn tenant_ids(&self) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM tenants ORDER BY id").fetch_all(pool).await?
        });
        Ok(ids)
    }
}
