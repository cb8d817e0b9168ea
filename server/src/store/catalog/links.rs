//! Links between two device interfaces: capacity for utilisation, provider and medium
//! for the operator, endpoints for the topology.

use super::{CatalogError, Page, PageRequest, like_pattern, stored, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

ispvm_proto::text_enum! {
    /// What a link is built of.
    #[derive(Default, utoipa::ToSchema)]
    pub enum Medium {
        #[default]
        Fiber = "fiber",
        Copper = "copper",
        Wireless = "wireless",
        Microwave = "microwave",
        Satellite = "satellite",
        Lte = "lte",
        LeasedLine = "leased_line",
        Virtual = "virtual",
        Other = "other",
    }
}
/// Largest capacity accepted (100 Tbit/s): anything above is a typo.
pub const MAX_CAPACITY_BPS: i64 = 100_000_000_000_000;

/// One end of a link: a device and, when known, its interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub device: String,
    /// Interface name; may name one discovery has not reported yet, or be empty.
    #[serde(default)]
    pub interface: String,
}

/// What an operator sets on a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    #[serde(default)]
    pub name: String,
    pub a: Endpoint,
    pub b: Endpoint,
    #[serde(default)]
    pub capacity_bps: Option<i64>,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub medium: Medium,
}

impl LinkSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::text("name", &self.name, validate::MAX_NAME_LEN)?;
        for (field, e) in [("a", &self.a), ("b", &self.b)] {
            validate::id(&format!("{field}.device"), &e.device)?;
            if !e.interface.is_empty() {
                validate::router_name(&format!("{field}.interface"), &e.interface)?;
            }
        }
        if self.a == self.b {
            return Err(CatalogError::invalid(
                "b",
                "a link joins two different endpoints",
            ));
        }
        if let Some(c) = self.capacity_bps
            && !(1..=MAX_CAPACITY_BPS).contains(&c)
        {
            return Err(CatalogError::invalid(
                "capacity_bps",
                format!("must be within 1..{MAX_CAPACITY_BPS}"),
            ));
        }
        validate::text("provider", &self.provider, validate::MAX_NAME_LEN)
    }
}

/// A link as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Link {
    pub id: String,
    #[serde(flatten)]
    pub spec: LinkSpec,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Filters of the link list.
#[derive(Debug, Clone, Default)]
pub struct LinkFilter {
    /// Either end is this device.
    pub device: Option<String>,
    pub provider: Option<String>,
    pub medium: Option<Medium>,
    pub q: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LinkRaw {
    id: String,
    name: String,
    a_device: String,
    a_interface: String,
    b_device: String,
    b_interface: String,
    capacity_bps: Option<i64>,
    provider: String,
    medium: String,
    created_ms: i64,
    updated_ms: i64,
}

impl TryFrom<LinkRaw> for Link {
    type Error = CatalogError;

    fn try_from(r: LinkRaw) -> Result<Self, CatalogError> {
        Ok(Link {
            id: r.id,
            spec: LinkSpec {
                name: r.name,
                a: Endpoint {
                    device: r.a_device,
                    interface: r.a_interface,
                },
                b: Endpoint {
                    device: r.b_device,
                    interface: r.b_interface,
                },
                capacity_bps: r.capacity_bps,
                provider: r.provider,
                medium: stored("medium", &r.medium)?,
            },
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

const COLUMNS: &str = "id, name, a_device, a_interface, b_device, b_interface, capacity_bps, provider, medium, created_ms, updated_ms";
const RESOURCE: &str = "link";

/// Refuses endpoints on devices the tenant does not have.
fn endpoints_exist(spec: &LinkSpec, a: i64, b: i64) -> Result<(), CatalogError> {
    for (field, n, e) in [("a.device", a, &spec.a), ("b.device", b, &spec.b)] {
        if n == 0 {
            return Err(CatalogError::invalid(
                field,
                format!("device {:?} does not exist", e.device),
            ));
        }
    }
    Ok(())
}

impl TenantStore<'_> {
    pub async fn links_page(
        &self,
        filter: &LinkFilter,
        page: &PageRequest,
    ) -> Result<Page<Link>, CatalogError> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR a_device = $3 OR b_device = $3) AND ($4 IS NULL OR provider = $4) \
             AND ($5 IS NULL OR medium = $5) \
             AND ($6 IS NULL OR LOWER(id) LIKE $6 ESCAPE '\\' OR LOWER(name) LIKE $6 ESCAPE '\\' OR LOWER(provider) LIKE $6 ESCAPE '\\') \
             ORDER BY id LIMIT $7"
        );
        let rows: Vec<LinkRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(filter.device.as_deref())
                .bind(filter.provider.as_deref()).bind(filter.medium.map(Medium::as_str)).bind(pattern.as_deref())
                .bind(page.fetch())
                .fetch_all(pool).await?
        });
        Page::from_rows(rows, page.limit).try_map(Link::try_from)
    }

    pub async fn link(&self, id: &str) -> Result<Option<Link>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2");
        let row: Option<LinkRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        row.map(Link::try_from).transpose()
    }

    pub async fn create_link(
        &self,
        actor: &Actor,
        id: &str,
        spec: &LinkSpec,
    ) -> Result<Link, CatalogError> {
        validate::id("id", id)?;
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM links WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("link {id:?} already exists")));
            }
            let (a, b): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND id = $2), \
                        (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND id = $3)",
            )
            .bind(self.tenant).bind(&spec.a.device).bind(&spec.b.device).fetch_one(&mut *tx).await?;
            endpoints_exist(spec, a, b)?;
            sqlx::query(
                "INSERT INTO links (tenant_id, id, name, a_device, a_interface, b_device, b_interface, capacity_bps, \
                   provider, medium, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.a.device).bind(&spec.a.interface)
            .bind(&spec.b.device).bind(&spec.b.interface).bind(spec.capacity_bps).bind(&spec.provider)
            .bind(spec.medium.as_str()).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(Link {
            id: id.to_owned(),
            spec: spec.clone(),
            created_ms: now,
            updated_ms: now,
        })
    }

    pub async fn update_link(
        &self,
        actor: &Actor,
        id: &str,
        spec: &LinkSpec,
    ) -> Result<Link, CatalogError> {
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        let sql = format!("SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2");
        let before: Link = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<LinkRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            let (a, b): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND id = $2), \
                        (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND id = $3)",
            )
            .bind(self.tenant).bind(&spec.a.device).bind(&spec.b.device).fetch_one(&mut *tx).await?;
            endpoints_exist(spec, a, b)?;
            sqlx::query(
                "UPDATE links SET name = $3, a_device = $4, a_interface = $5, b_device = $6, b_interface = $7, \
                   capacity_bps = $8, provider = $9, medium = $10, updated_ms = $11 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(&spec.a.device).bind(&spec.a.interface)
            .bind(&spec.b.device).bind(&spec.b.interface).bind(spec.capacity_bps).bind(&spec.provider)
            .bind(spec.medium.as_str()).bind(now)
            .execute(&mut *tx).await?;
            let before = Link::try_from(before)?;
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
            before
        });
        Ok(Link {
            spec: spec.clone(),
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a link no topology edge names.
    pub async fn delete_link(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM links WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<LinkRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            let edges: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM topology_edges WHERE tenant_id = $1 AND \
                   ((from_kind = 'link' AND from_id = $2) OR (to_kind = 'link' AND to_id = $2))",
            )
            .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if edges > 0 {
                return Err(CatalogError::Conflict(format!(
                    "link {id:?} is an endpoint of {edges} topology edges; delete them first"
                )));
            }
            sqlx::query("DELETE FROM links WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": Link::try_from(before)?.spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
