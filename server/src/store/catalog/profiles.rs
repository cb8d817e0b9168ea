//! Polling profiles: how often and how hard agents poll the devices that use them. The
//! bounds keep the monitor from harming routers (ARCHITECTURE §3, agent safety).

use super::{CatalogError, Page, PageRequest, like_pattern, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an operator sets on a polling profile; intervals in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    /// Reachability, BGP state, uplink running: 10..=300 s.
    #[serde(default = "default_fast")]
    pub fast_s: i64,
    /// Counters, errors, PPPoE counts: 30..=1800 s.
    #[serde(default = "default_medium")]
    pub medium_s: i64,
    /// Inventory and sensors: 60..=86400 s.
    #[serde(default = "default_slow")]
    pub slow_s: i64,
    /// Concurrent jobs per router: 1..=3.
    #[serde(default = "default_jobs")]
    pub max_jobs: i64,
}

fn default_fast() -> i64 {
    30
}
fn default_medium() -> i64 {
    60
}
fn default_slow() -> i64 {
    300
}
fn default_jobs() -> i64 {
    2
}

fn within(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), CatalogError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(CatalogError::invalid(
            field,
            format!("is {v}; must be within {lo}..={hi}"),
        ))
    }
}

impl ProfileSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        within("fast_s", self.fast_s, 10, 300)?;
        within("medium_s", self.medium_s, 30, 1800)?;
        within("slow_s", self.slow_s, 60, 86_400)?;
        within("max_jobs", self.max_jobs, 1, 3)?;
        if !(self.fast_s <= self.medium_s && self.medium_s <= self.slow_s) {
            return Err(CatalogError::invalid(
                "medium_s",
                "intervals must satisfy fast_s <= medium_s <= slow_s",
            ));
        }
        Ok(())
    }
}

/// A polling profile as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PollingProfile {
    pub id: String,
    #[serde(flatten)]
    pub spec: ProfileSpec,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ProfileRaw {
    id: String,
    name: String,
    fast_s: i64,
    medium_s: i64,
    slow_s: i64,
    max_jobs: i64,
    created_ms: i64,
    updated_ms: i64,
}

impl From<ProfileRaw> for PollingProfile {
    fn from(r: ProfileRaw) -> Self {
        PollingProfile {
            id: r.id,
            spec: ProfileSpec {
                name: r.name,
                fast_s: r.fast_s,
                medium_s: r.medium_s,
                slow_s: r.slow_s,
                max_jobs: r.max_jobs,
            },
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        }
    }
}

const COLUMNS: &str = "id, name, fast_s, medium_s, slow_s, max_jobs, created_ms, updated_ms";
const RESOURCE: &str = "polling_profile";

impl TenantStore<'_> {
    pub async fn profiles_page(
        &self,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<PollingProfile>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM polling_profiles WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR LOWER(id) LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE $3 ESCAPE '\\') \
             ORDER BY id LIMIT $4"
        );
        let rows: Vec<ProfileRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit).map(PollingProfile::from))
    }

    pub async fn profile(&self, id: &str) -> Result<Option<PollingProfile>, CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM polling_profiles WHERE tenant_id = $1 AND id = $2");
        let row: Option<ProfileRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(PollingProfile::from))
    }

    pub async fn create_profile(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ProfileSpec,
    ) -> Result<PollingProfile, CatalogError> {
        validate::id("id", id)?;
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM polling_profiles WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("polling profile {id:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO polling_profiles (tenant_id, id, name, fast_s, medium_s, slow_s, max_jobs, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.fast_s).bind(spec.medium_s)
            .bind(spec.slow_s).bind(spec.max_jobs).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(PollingProfile {
            id: id.to_owned(),
            spec: spec.clone(),
            created_ms: now,
            updated_ms: now,
        })
    }

    pub async fn update_profile(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ProfileSpec,
    ) -> Result<PollingProfile, CatalogError> {
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        let sql =
            format!("SELECT {COLUMNS} FROM polling_profiles WHERE tenant_id = $1 AND id = $2");
        let before: PollingProfile = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<ProfileRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            sqlx::query(
                "UPDATE polling_profiles SET name = $3, fast_s = $4, medium_s = $5, slow_s = $6, max_jobs = $7, \
                   updated_ms = $8 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.fast_s).bind(spec.medium_s)
            .bind(spec.slow_s).bind(spec.max_jobs).bind(now)
            .execute(&mut *tx).await?;
            let before = PollingProfile::from(before);
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
            before
        });
        Ok(PollingProfile {
            spec: spec.clone(),
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a profile no device uses.
    pub async fn delete_profile(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM polling_profiles WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<ProfileRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND polling_profile_id = $2")
                .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if users > 0 {
                return Err(CatalogError::Conflict(format!(
                    "polling profile {id:?} is used by {users} devices; change them first"
                )));
            }
            sqlx::query("DELETE FROM polling_profiles WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": PollingProfile::from(before).spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
