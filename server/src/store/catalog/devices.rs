//! Devices (operator fields and what discovery reported) and their interfaces.
//!
//! Ingest upserts the devices agents poll (name, site, role, model, ...); operators add
//! devices ahead of discovery and own tags, polling profile and credential set, which
//! ingest never writes.

use super::{CatalogError, Page, PageRequest, like_pattern, stored, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, InterfaceRow, LatestValue, TenantStore, on_pool};
use ispvm_proto::DeviceRole;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// What an operator sets on a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub name: String,
    pub site_id: String,
    pub role: DeviceRole,
    /// `host:port` the agent polls; empty until known.
    #[serde(default)]
    pub mgmt_addr: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub polling_profile: Option<String>,
    #[serde(default)]
    pub credential_set: Option<String>,
}

impl DeviceSpec {
    /// Checks the fields and normalises the tag list (sorted, no duplicates).
    pub fn validate(&mut self) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        validate::id("site_id", &self.site_id)?;
        validate::text("mgmt_addr", &self.mgmt_addr, 255)?;
        validate::tags("tags", &mut self.tags)?;
        if let Some(p) = &self.polling_profile {
            validate::id("polling_profile", p)?;
        }
        if let Some(c) = &self.credential_set {
            validate::id("credential_set", c)?;
        }
        Ok(())
    }
}

/// A device as stored: the operator's fields and what its agent reported.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub id: String,
    #[serde(flatten)]
    pub spec: DeviceSpec,
    pub model: String,
    pub os_version: String,
    /// The agent that last reported the device; empty if none has.
    pub agent_id: String,
    pub first_seen_ms: i64,
    /// 0 until an agent reports the device.
    pub last_seen_ms: i64,
}

/// Filters of the device list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub site: Option<String>,
    pub role: Option<DeviceRole>,
    pub tag: Option<String>,
    pub agent: Option<String>,
    /// Substring of id or name, case-insensitive.
    pub q: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DeviceRaw {
    id: String,
    name: String,
    site_id: String,
    role: String,
    mgmt_addr: String,
    model: String,
    os_version: String,
    agent_id: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    polling_profile_id: Option<String>,
    credential_set_id: Option<String>,
}

impl DeviceRaw {
    fn into_device(self, tags: Vec<String>) -> Result<Device, CatalogError> {
        Ok(Device {
            id: self.id,
            spec: DeviceSpec {
                name: self.name,
                site_id: self.site_id,
                role: stored("role", &self.role)?,
                mgmt_addr: self.mgmt_addr,
                tags,
                polling_profile: self.polling_profile_id,
                credential_set: self.credential_set_id,
            },
            model: self.model,
            os_version: self.os_version,
            agent_id: self.agent_id,
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
        })
    }
}

const COLUMNS: &str = "id, name, site_id, role, mgmt_addr, model, os_version, agent_id, first_seen_ms, \
     last_seen_ms, polling_profile_id, credential_set_id";
const RESOURCE: &str = "device";

/// `$start, $start+1, ...` for `n` parameters.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fetches `SELECT ... IN (ids)` rows; the query's `$1` is the tenant and `{in}` marks
/// where the id list goes (repeated as often as the text has it).
macro_rules! fetch_in {
    ($store:expr, $tenant:expr, $sql:expr, $ids:expr) => {{
        let ids: &[String] = $ids;
        if ids.is_empty() {
            Vec::new()
        } else {
            let sql = $sql.replace("{in}", &placeholders(2, ids.len()));
            on_pool!($store, pool => {
                let mut q = sqlx::query_as(&sql).bind($tenant);
                for id in ids {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await?
            })
        }
    }};
}
pub(crate) use fetch_in;

impl TenantStore<'_> {
    /// Devices in id order, filtered.
    pub async fn devices_page(
        &self,
        filter: &DeviceFilter,
        page: &PageRequest,
    ) -> Result<Page<Device>, CatalogError> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM devices d WHERE d.tenant_id = $1 AND ($2 IS NULL OR d.id > $2) \
             AND ($3 IS NULL OR d.site_id = $3) AND ($4 IS NULL OR d.role = $4) \
             AND ($5 IS NULL OR EXISTS (SELECT 1 FROM device_tags t WHERE t.tenant_id = d.tenant_id AND t.device_id = d.id AND t.tag = $5)) \
             AND ($6 IS NULL OR LOWER(d.id) LIKE $6 ESCAPE '\\' OR LOWER(d.name) LIKE $6 ESCAPE '\\') \
             AND ($7 IS NULL OR d.agent_id = $7) ORDER BY d.id LIMIT $8"
        );
        let rows: Vec<DeviceRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(filter.site.as_deref())
                .bind(filter.role.map(DeviceRole::as_str)).bind(filter.tag.as_deref()).bind(pattern.as_deref())
                .bind(filter.agent.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        let page = Page::from_rows(rows, page.limit);
        let ids: Vec<String> = page.items.iter().map(|d| d.id.clone()).collect();
        let mut tags = self.tags_of(&ids).await?;
        page.try_map(|d| {
            let t = tags.remove(&d.id).unwrap_or_default();
            d.into_device(t)
        })
    }

    pub async fn device(&self, id: &str) -> Result<Option<Device>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM devices WHERE tenant_id = $1 AND id = $2");
        let row: Option<DeviceRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        let Some(row) = row else {
            return Ok(None);
        };
        let ids = [row.id.clone()];
        let tags = self.tags_of(&ids).await?.remove(id).unwrap_or_default();
        row.into_device(tags).map(Some)
    }

    async fn tags_of(&self, ids: &[String]) -> Result<BTreeMap<String, Vec<String>>, CatalogError> {
        let rows: Vec<(String, String)> = fetch_in!(
            self.store,
            self.tenant,
            "SELECT device_id, tag FROM device_tags WHERE tenant_id = $1 AND device_id IN ({in}) ORDER BY device_id, tag",
            ids
        );
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (d, t) in rows {
            map.entry(d).or_default().push(t);
        }
        Ok(map)
    }

    /// Interfaces of the given devices.
    pub async fn interfaces_of(&self, ids: &[String]) -> Result<Vec<InterfaceRow>, CatalogError> {
        Ok(fetch_in!(
            self.store,
            self.tenant,
            "SELECT device_id, name, kind, disabled, uplink, last_seen_ms FROM interfaces \
             WHERE tenant_id = $1 AND device_id IN ({in}) ORDER BY device_id, name",
            ids
        ))
    }

    /// Latest values of the given devices and of their interfaces.
    pub async fn latest_values_of(&self, ids: &[String]) -> Result<Vec<LatestValue>, CatalogError> {
        Ok(fetch_in!(
            self.store,
            self.tenant,
            "SELECT entity_kind, entity_id, metric, last_ts_ms AS ts_ms, last_value AS value FROM series \
             WHERE tenant_id = $1 AND entity_kind = 'device' AND entity_id IN ({in}) \
               AND last_ts_ms IS NOT NULL AND last_value IS NOT NULL \
             UNION ALL \
             SELECT s.entity_kind, s.entity_id, s.metric, s.last_ts_ms AS ts_ms, s.last_value AS value \
             FROM interfaces i JOIN series s ON s.tenant_id = i.tenant_id AND s.entity_kind = 'interface' \
               AND s.entity_id = i.device_id || '/' || i.name \
             WHERE i.tenant_id = $1 AND i.device_id IN ({in}) \
               AND s.last_ts_ms IS NOT NULL AND s.last_value IS NOT NULL",
            ids
        ))
    }

    /// Adds a device ahead of discovery; the agent's first report fills in the rest.
    /// Refused when the tenant already holds `max_devices` devices.
    pub async fn create_device(
        &self,
        actor: &Actor,
        id: &str,
        spec: &DeviceSpec,
        max_devices: u64,
    ) -> Result<Device, CatalogError> {
        validate::id("id", id)?;
        let mut spec = spec.clone();
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM devices WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("device {id:?} already exists")));
            }
            // References are checked in the transaction's snapshot on PostgreSQL and
            // under the write lock on SQLite.
            let (site, profile, creds): (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM sites WHERE tenant_id = $1 AND id = $2), \
                        (SELECT COUNT(*) FROM polling_profiles WHERE tenant_id = $1 AND id = $3), \
                        (SELECT COUNT(*) FROM credential_sets WHERE tenant_id = $1 AND id = $4)",
            )
            .bind(self.tenant).bind(&spec.site_id).bind(spec.polling_profile.as_deref()).bind(spec.credential_set.as_deref())
            .fetch_one(&mut *tx).await?;
            refs_exist(&spec, site, profile, creds)?;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE tenant_id = $1")
                .bind(self.tenant).fetch_one(&mut *tx).await?;
            if u64::try_from(count).unwrap_or(0) >= max_devices {
                return Err(CatalogError::QuotaExceeded { limit: max_devices });
            }
            sqlx::query(
                "INSERT INTO devices (tenant_id, id, name, site_id, role, mgmt_addr, model, os_version, agent_id, \
                   first_seen_ms, last_seen_ms, polling_profile_id, credential_set_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, '', '', '', $7, 0, $8, $9)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.site_id).bind(spec.role.as_str())
            .bind(&spec.mgmt_addr).bind(now).bind(spec.polling_profile.as_deref()).bind(spec.credential_set.as_deref())
            .execute(&mut *tx).await?;
            for tag in &spec.tags {
                sqlx::query("INSERT INTO device_tags (tenant_id, device_id, tag) VALUES ($1, $2, $3)")
                    .bind(self.tenant).bind(id).bind(tag).execute(&mut *tx).await?;
            }
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(Device {
            id: id.to_owned(),
            spec,
            model: String::new(),
            os_version: String::new(),
            agent_id: String::new(),
            first_seen_ms: now,
            last_seen_ms: 0,
        })
    }

    pub async fn update_device(
        &self,
        actor: &Actor,
        id: &str,
        spec: &DeviceSpec,
    ) -> Result<Device, CatalogError> {
        let mut spec = spec.clone();
        spec.validate()?;
        let Some(before) = self.device(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let (site, profile, creds): (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM sites WHERE tenant_id = $1 AND id = $2), \
                        (SELECT COUNT(*) FROM polling_profiles WHERE tenant_id = $1 AND id = $3), \
                        (SELECT COUNT(*) FROM credential_sets WHERE tenant_id = $1 AND id = $4)",
            )
            .bind(self.tenant).bind(&spec.site_id).bind(spec.polling_profile.as_deref()).bind(spec.credential_set.as_deref())
            .fetch_one(&mut *tx).await?;
            refs_exist(&spec, site, profile, creds)?;
            let changed = sqlx::query(
                "UPDATE devices SET name = $3, site_id = $4, role = $5, mgmt_addr = $6, polling_profile_id = $7, \
                   credential_set_id = $8 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.site_id).bind(spec.role.as_str())
            .bind(&spec.mgmt_addr).bind(spec.polling_profile.as_deref()).bind(spec.credential_set.as_deref())
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            sqlx::query("DELETE FROM device_tags WHERE tenant_id = $1 AND device_id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            for tag in &spec.tags {
                sqlx::query("INSERT INTO device_tags (tenant_id, device_id, tag) VALUES ($1, $2, $3)")
                    .bind(self.tenant).bind(id).bind(tag).execute(&mut *tx).await?;
            }
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
        });
        Ok(Device { spec, ..before })
    }

    /// Deletes a device and its interfaces, addresses, neighbours, tags and service
    /// memberships. Refused while links or topology edges name it. Its metric history
    /// stays; an agent that still polls it adds it again.
    pub async fn delete_device(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let Some(before) = self.device(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let (links, edges): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM links WHERE tenant_id = $1 AND (a_device = $2 OR b_device = $2)), \
                        (SELECT COUNT(*) FROM topology_edges WHERE tenant_id = $1 AND \
                           ((from_kind = 'device' AND from_id = $2) OR (to_kind = 'device' AND to_id = $2)))",
            )
            .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if links > 0 || edges > 0 {
                return Err(CatalogError::Conflict(format!(
                    "device {id:?} is an endpoint of {links} links and {edges} topology edges; delete them first"
                )));
            }
            for table in ["service_devices", "device_tags", "interface_addresses", "discovered_neighbors", "interfaces"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1 AND device_id = $2"))
                    .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            }
            let deleted = sqlx::query("DELETE FROM devices WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": before.spec }));
            tx.commit().await?;
        });
        Ok(())
    }

    /// Interfaces in (device, name) order after the key `after`.
    pub async fn interfaces_page(
        &self,
        device: Option<&str>,
        uplink: Option<bool>,
        q: Option<&str>,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Page<InterfaceRow>, CatalogError> {
        let limit = limit.clamp(1, super::MAX_LIMIT);
        let pattern = q.map(like_pattern);
        let (after_device, after_name) = after.unzip();
        let rows: Vec<InterfaceRow> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT device_id, name, kind, disabled, uplink, last_seen_ms FROM interfaces \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR device_id > $2 OR (device_id = $2 AND name > $3)) \
                 AND ($4 IS NULL OR device_id = $4) AND ($5 IS NULL OR uplink = $5) \
                 AND ($6 IS NULL OR LOWER(name) LIKE $6 ESCAPE '\\') \
                 ORDER BY device_id, name LIMIT $7",
            )
            .bind(self.tenant).bind(after_device).bind(after_name).bind(device).bind(uplink)
            .bind(pattern.as_deref()).bind(i64::from(limit) + 1)
            .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, limit))
    }

    pub async fn interface(
        &self,
        device: &str,
        name: &str,
    ) -> Result<Option<InterfaceRow>, CatalogError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT device_id, name, kind, disabled, uplink, last_seen_ms FROM interfaces \
                 WHERE tenant_id = $1 AND device_id = $2 AND name = $3",
            )
            .bind(self.tenant).bind(device).bind(name).fetch_optional(pool).await?
        }))
    }

    /// Marks an interface as an uplink (or not): uplink-down alerts fire immediately and
    /// weigh most in root-cause analysis.
    pub async fn set_interface_uplink(
        &self,
        actor: &Actor,
        device: &str,
        name: &str,
        uplink: bool,
    ) -> Result<InterfaceRow, CatalogError> {
        let key = format!("{device}/{name}");
        let row: Option<InterfaceRow> = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<bool> = sqlx::query_scalar(
                "SELECT uplink FROM interfaces WHERE tenant_id = $1 AND device_id = $2 AND name = $3",
            )
            .bind(self.tenant).bind(device).bind(name).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found("interface", &key));
            };
            sqlx::query("UPDATE interfaces SET uplink = $4 WHERE tenant_id = $1 AND device_id = $2 AND name = $3")
                .bind(self.tenant).bind(device).bind(name).bind(uplink).execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "update", "interface", key.as_str(),
                json!({ "before": { "uplink": before }, "after": { "uplink": uplink } }));
            let row = sqlx::query_as(
                "SELECT device_id, name, kind, disabled, uplink, last_seen_ms FROM interfaces \
                 WHERE tenant_id = $1 AND device_id = $2 AND name = $3",
            )
            .bind(self.tenant).bind(device).bind(name).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row
        });
        row.ok_or_else(|| CatalogError::not_found("interface", &key))
    }
}

fn refs_exist(spec: &DeviceSpec, site: i64, profile: i64, creds: i64) -> Result<(), CatalogError> {
    if site == 0 {
        return Err(CatalogError::invalid(
            "site_id",
            format!("site {:?} does not exist", spec.site_id),
        ));
    }
    if let Some(p) = &spec.polling_profile
        && profile == 0
    {
        return Err(CatalogError::invalid(
            "polling_profile",
            format!("polling profile {p:?} does not exist"),
        ));
    }
    if let Some(c) = &spec.credential_set
        && creds == 0
    {
        return Err(CatalogError::invalid(
            "credential_set",
            format!("credential set {c:?} does not exist"),
        ));
    }
    Ok(())
}
