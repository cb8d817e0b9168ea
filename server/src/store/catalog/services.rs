//! Services and customer groups: a named set of devices whose health is the customer's
//! experience (blast radius and SLA reports count them).

use super::devices::{fetch_in, placeholders};
use super::{CatalogError, Page, PageRequest, like_pattern, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Most member devices of one service.
pub const MAX_MEMBERS: usize = 5000;
/// Ids checked per query when verifying members exist.
const CHUNK: usize = 500;

/// What an operator sets on a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    /// Free classification, e.g. `internet`, `pppoe`, `enterprise`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// Member device ids.
    #[serde(default)]
    pub devices: Vec<String>,
}

impl ServiceSpec {
    /// Checks the fields and normalises the member list (sorted, no duplicates).
    pub fn validate(&mut self) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        validate::text("kind", &self.kind, 64)?;
        validate::text("description", &self.description, validate::MAX_TEXT_LEN)?;
        validate::ids("devices", &mut self.devices, MAX_MEMBERS)
    }
}

/// A service as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Service {
    pub id: String,
    #[serde(flatten)]
    pub spec: ServiceSpec,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Filters of the service list.
#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    /// Services this device is a member of.
    pub device: Option<String>,
    pub kind: Option<String>,
    pub q: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ServiceRaw {
    id: String,
    name: String,
    kind: String,
    description: String,
    created_ms: i64,
    updated_ms: i64,
}

impl ServiceRaw {
    fn into_service(self, devices: Vec<String>) -> Service {
        Service {
            id: self.id,
            spec: ServiceSpec {
                name: self.name,
                kind: self.kind,
                description: self.description,
                devices,
            },
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }
}

const COLUMNS: &str = "id, name, kind, description, created_ms, updated_ms";
const RESOURCE: &str = "service";

/// Refuses member ids the tenant has no device for, and writes the member rows; inside
/// the transaction `$tx`.
macro_rules! write_members {
    ($tx:ident, $tenant:expr, $id:expr, $devices:expr) => {{
        for chunk in $devices.chunks(CHUNK) {
            let sql = format!(
                "SELECT id FROM devices WHERE tenant_id = $1 AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query_scalar(&sql).bind($tenant);
            for d in chunk {
                q = q.bind(d);
            }
            let found: Vec<String> = q.fetch_all(&mut *$tx).await?;
            if let Some(missing) = chunk.iter().find(|d| !found.contains(d)) {
                return Err(CatalogError::invalid(
                    "devices",
                    format!("device {missing:?} does not exist"),
                ));
            }
        }
        sqlx::query("DELETE FROM service_devices WHERE tenant_id = $1 AND service_id = $2")
            .bind($tenant).bind($id).execute(&mut *$tx).await?;
        for d in $devices {
            sqlx::query("INSERT INTO service_devices (tenant_id, service_id, device_id) VALUES ($1, $2, $3)")
                .bind($tenant).bind($id).bind(d).execute(&mut *$tx).await?;
        }
    }};
}

impl TenantStore<'_> {
    pub async fn services_page(
        &self,
        filter: &ServiceFilter,
        page: &PageRequest,
    ) -> Result<Page<Service>, CatalogError> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM services s WHERE s.tenant_id = $1 AND ($2 IS NULL OR s.id > $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM service_devices m WHERE m.tenant_id = s.tenant_id \
                  AND m.service_id = s.id AND m.device_id = $3)) \
             AND ($4 IS NULL OR s.kind = $4) \
             AND ($5 IS NULL OR LOWER(s.id) LIKE $5 ESCAPE '\\' OR LOWER(s.name) LIKE $5 ESCAPE '\\') \
             ORDER BY s.id LIMIT $6"
        );
        let rows: Vec<ServiceRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(filter.device.as_deref())
                .bind(filter.kind.as_deref()).bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        let page = Page::from_rows(rows, page.limit);
        let ids: Vec<String> = page.items.iter().map(|s| s.id.clone()).collect();
        let mut members = self.members_of(&ids).await?;
        Ok(page.map(|s| {
            let m = members.remove(&s.id).unwrap_or_default();
            s.into_service(m)
        }))
    }

    async fn members_of(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, CatalogError> {
        let rows: Vec<(String, String)> = fetch_in!(
            self.store,
            self.tenant,
            "SELECT service_id, device_id FROM service_devices WHERE tenant_id = $1 AND service_id IN ({in}) \
             ORDER BY service_id, device_id",
            ids
        );
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (s, d) in rows {
            map.entry(s).or_default().push(d);
        }
        Ok(map)
    }

    pub async fn service(&self, id: &str) -> Result<Option<Service>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM services WHERE tenant_id = $1 AND id = $2");
        let row: Option<ServiceRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        let Some(row) = row else {
            return Ok(None);
        };
        let members = self
            .members_of(&[id.to_owned()])
            .await?
            .remove(id)
            .unwrap_or_default();
        Ok(Some(row.into_service(members)))
    }

    pub async fn create_service(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ServiceSpec,
    ) -> Result<Service, CatalogError> {
        validate::id("id", id)?;
        let mut spec = spec.clone();
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM services WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("service {id:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO services (tenant_id, id, name, kind, description, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.kind).bind(&spec.description).bind(now)
            .execute(&mut *tx).await?;
            write_members!(tx, self.tenant, id, &spec.devices);
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(Service {
            id: id.to_owned(),
            spec,
            created_ms: now,
            updated_ms: now,
        })
    }

    pub async fn update_service(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ServiceSpec,
    ) -> Result<Service, CatalogError> {
        let mut spec = spec.clone();
        spec.validate()?;
        let Some(before) = self.service(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE services SET name = $3, kind = $4, description = $5, updated_ms = $6 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.kind).bind(&spec.description).bind(now)
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            write_members!(tx, self.tenant, id, &spec.devices);
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
        });
        Ok(Service {
            spec,
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a service (and its memberships) no topology edge names.
    pub async fn delete_service(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let Some(before) = self.service(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let edges: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM topology_edges WHERE tenant_id = $1 AND \
                   ((from_kind = 'service' AND from_id = $2) OR (to_kind = 'service' AND to_id = $2))",
            )
            .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if edges > 0 {
                return Err(CatalogError::Conflict(format!(
                    "service {id:?} is an endpoint of {edges} topology edges; delete them first"
                )));
            }
            sqlx::query("DELETE FROM service_devices WHERE tenant_id = $1 AND service_id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            let deleted = sqlx::query("DELETE FROM services WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": before.spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
