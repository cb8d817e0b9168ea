//! Sites (PoPs) with coordinates for the map.

use super::{CatalogError, Page, PageRequest, like_pattern, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an operator sets on a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub name: String,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
}

impl SiteSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        match (self.lat, self.lon) {
            (None, None) => {}
            (Some(lat), Some(lon)) => {
                if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                    return Err(CatalogError::invalid("lat", "must be within -90..90"));
                }
                if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                    return Err(CatalogError::invalid("lon", "must be within -180..180"));
                }
            }
            _ => {
                return Err(CatalogError::invalid(
                    "lat",
                    "lat and lon are given together or not at all",
                ));
            }
        }
        Ok(())
    }
}

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Site {
    pub id: String,
    #[serde(flatten)]
    pub spec: SiteSpec,
}

#[derive(sqlx::FromRow)]
struct SiteRaw {
    id: String,
    name: String,
    lat: Option<f64>,
    lon: Option<f64>,
}

impl From<SiteRaw> for Site {
    fn from(r: SiteRaw) -> Self {
        Site {
            id: r.id,
            spec: SiteSpec {
                name: r.name,
                lat: r.lat,
                lon: r.lon,
            },
        }
    }
}

const RESOURCE: &str = "site";

impl TenantStore<'_> {
    /// Sites in id order; `q` searches id and name.
    pub async fn sites_page(
        &self,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Site>, CatalogError> {
        let pattern = q.map(like_pattern);
        let rows: Vec<SiteRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, name, lat, lon FROM sites WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
                 AND ($3 IS NULL OR LOWER(id) LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE $3 ESCAPE '\\') \
                 ORDER BY id LIMIT $4",
            )
            .bind(self.tenant).bind(page.after.as_deref()).bind(pattern.as_deref()).bind(page.fetch())
            .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit).map(Site::from))
    }

    pub async fn site(&self, id: &str) -> Result<Option<Site>, CatalogError> {
        let row: Option<SiteRaw> = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, name, lat, lon FROM sites WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(Site::from))
    }

    pub async fn create_site(
        &self,
        actor: &Actor,
        id: &str,
        spec: &SiteSpec,
    ) -> Result<Site, CatalogError> {
        validate::id("id", id)?;
        spec.validate()?;
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM sites WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("site {id:?} already exists")));
            }
            sqlx::query("INSERT INTO sites (tenant_id, id, name, lat, lon) VALUES ($1, $2, $3, $4, $5)")
                .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.lat).bind(spec.lon)
                .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(Site {
            id: id.to_owned(),
            spec: spec.clone(),
        })
    }

    pub async fn update_site(
        &self,
        actor: &Actor,
        id: &str,
        spec: &SiteSpec,
    ) -> Result<Site, CatalogError> {
        spec.validate()?;
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<SiteRaw> = sqlx::query_as("SELECT id, name, lat, lon FROM sites WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            sqlx::query("UPDATE sites SET name = $3, lat = $4, lon = $5 WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.lat).bind(spec.lon)
                .execute(&mut *tx).await?;
            let before = Site::from(before).spec;
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before, "after": spec }));
            tx.commit().await?;
        });
        Ok(Site {
            id: id.to_owned(),
            spec: spec.clone(),
        })
    }

    /// Deletes a site no device is in and no topology edge names.
    pub async fn delete_site(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<SiteRaw> = sqlx::query_as("SELECT id, name, lat, lon FROM sites WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            let (devices, edges): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND site_id = $2), \
                        (SELECT COUNT(*) FROM topology_edges WHERE tenant_id = $1 AND \
                           ((from_kind = 'site' AND from_id = $2) OR (to_kind = 'site' AND to_id = $2)))",
            )
            .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if devices > 0 || edges > 0 {
                return Err(CatalogError::Conflict(format!(
                    "site {id:?} still has {devices} devices and {edges} topology edges; move or delete them first"
                )));
            }
            sqlx::query("DELETE FROM sites WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            let before = Site::from(before).spec;
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": before }));
            tx.commit().await?;
        });
        Ok(())
    }
}
