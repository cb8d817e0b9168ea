//! Maintenance windows: while one is active, alerts of the entities its scope selects
//! are suppressed (with the window as the reason) instead of notified.

use super::{CatalogError, Page, PageRequest, json_text, like_pattern, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Longest window: a month. Longer "maintenance" is a disabled rule, not a window.
pub const MAX_WINDOW_MS: i64 = 31 * 24 * 3_600_000;
/// Most entries in one selector list.
const MAX_SELECTOR: usize = 1000;

/// Which entities a window covers: everything (`all`), or the union of the lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WindowScope)]
pub struct Scope {
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub sites: Vec<String>,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub roles: Vec<ispvm_proto::DeviceRole>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Scope {
    fn validate(&mut self) -> Result<(), CatalogError> {
        validate::ids("scope.sites", &mut self.sites, MAX_SELECTOR)?;
        validate::ids("scope.devices", &mut self.devices, MAX_SELECTOR)?;
        validate::ids("scope.links", &mut self.links, MAX_SELECTOR)?;
        self.roles.sort();
        self.roles.dedup();
        for t in &self.tags {
            validate::tag("scope.tags", t)?;
        }
        self.tags.sort();
        self.tags.dedup();
        let lists = self.sites.len()
            + self.devices.len()
            + self.links.len()
            + self.roles.len()
            + self.tags.len();
        if self.all && lists > 0 {
            return Err(CatalogError::invalid(
                "scope",
                "`all` covers everything; give no lists with it",
            ));
        }
        if !self.all && lists == 0 {
            return Err(CatalogError::invalid(
                "scope",
                "selects nothing: set `all` or list sites, devices, links, roles or tags",
            ));
        }
        Ok(())
    }
}

/// What an operator sets on a maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub name: String,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub scope: Scope,
    #[serde(default)]
    pub comment: String,
}

impl MaintenanceSpec {
    /// Checks the fields and normalises the scope lists.
    pub fn validate(&mut self) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        if self.starts_ms < 0 {
            return Err(CatalogError::invalid("starts_ms", "must not be negative"));
        }
        if self.ends_ms <= self.starts_ms {
            return Err(CatalogError::invalid("ends_ms", "must be after starts_ms"));
        }
        if self.ends_ms - self.starts_ms > MAX_WINDOW_MS {
            return Err(CatalogError::invalid(
                "ends_ms",
                "a window lasts at most 31 days",
            ));
        }
        validate::text("comment", &self.comment, validate::MAX_TEXT_LEN)?;
        self.scope.validate()
    }
}

/// A maintenance window as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MaintenanceWindow {
    pub id: String,
    #[serde(flatten)]
    pub spec: MaintenanceSpec,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Filters of the window list.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceFilter {
    /// Windows active at this time (`starts_ms <= t < ends_ms`).
    pub active_at: Option<i64>,
    /// Windows that end after this time (current and future ones).
    pub ends_after: Option<i64>,
    pub q: Option<String>,
}

#[derive(sqlx::FromRow)]
struct WindowRaw {
    id: String,
    name: String,
    starts_ms: i64,
    ends_ms: i64,
    scope: String,
    comment: String,
    created_by: String,
    created_ms: i64,
    updated_ms: i64,
}

impl From<WindowRaw> for MaintenanceWindow {
    fn from(r: WindowRaw) -> Self {
        MaintenanceWindow {
            id: r.id,
            spec: MaintenanceSpec {
                name: r.name,
                starts_ms: r.starts_ms,
                ends_ms: r.ends_ms,
                // Written by this module from a validated scope.
                scope: serde_json::from_str(&r.scope).unwrap_or_default(),
                comment: r.comment,
            },
            created_by: r.created_by,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        }
    }
}

const COLUMNS: &str =
    "id, name, starts_ms, ends_ms, scope, comment, created_by, created_ms, updated_ms";
const RESOURCE: &str = "maintenance_window";

impl TenantStore<'_> {
    pub async fn maintenance_page(
        &self,
        filter: &MaintenanceFilter,
        page: &PageRequest,
    ) -> Result<Page<MaintenanceWindow>, CatalogError> {
        let pattern = filter.q.as_deref().map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR (starts_ms <= $3 AND ends_ms > $3)) AND ($4 IS NULL OR ends_ms > $4) \
             AND ($5 IS NULL OR LOWER(id) LIKE $5 ESCAPE '\\' OR LOWER(name) LIKE $5 ESCAPE '\\') \
             ORDER BY id LIMIT $6"
        );
        let rows: Vec<WindowRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(filter.active_at)
                .bind(filter.ends_after).bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit).map(MaintenanceWindow::from))
    }

    pub async fn maintenance_window(
        &self,
        id: &str,
    ) -> Result<Option<MaintenanceWindow>, CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 AND id = $2");
        let row: Option<WindowRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(MaintenanceWindow::from))
    }

    pub async fn create_maintenance(
        &self,
        actor: &Actor,
        id: &str,
        spec: &MaintenanceSpec,
    ) -> Result<MaintenanceWindow, CatalogError> {
        validate::id("id", id)?;
        let mut spec = spec.clone();
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM maintenance_windows WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("maintenance window {id:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO maintenance_windows (tenant_id, id, name, starts_ms, ends_ms, scope, comment, created_by, \
                   created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.starts_ms).bind(spec.ends_ms)
            .bind(json_text(&spec.scope)).bind(&spec.comment).bind(actor.username.as_str()).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec }));
            tx.commit().await?;
        });
        Ok(MaintenanceWindow {
            id: id.to_owned(),
            spec,
            created_by: actor.username.clone(),
            created_ms: now,
            updated_ms: now,
        })
    }

    pub async fn update_maintenance(
        &self,
        actor: &Actor,
        id: &str,
        spec: &MaintenanceSpec,
    ) -> Result<MaintenanceWindow, CatalogError> {
        let mut spec = spec.clone();
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        let sql =
            format!("SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 AND id = $2");
        let before: MaintenanceWindow = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<WindowRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            sqlx::query(
                "UPDATE maintenance_windows SET name = $3, starts_ms = $4, ends_ms = $5, scope = $6, comment = $7, \
                   updated_ms = $8 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.starts_ms).bind(spec.ends_ms)
            .bind(json_text(&spec.scope)).bind(&spec.comment).bind(now)
            .execute(&mut *tx).await?;
            let before = MaintenanceWindow::from(before);
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
            before
        });
        Ok(MaintenanceWindow {
            spec,
            updated_ms: now,
            ..before
        })
    }

    pub async fn delete_maintenance(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM maintenance_windows WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<WindowRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            sqlx::query("DELETE FROM maintenance_windows WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": MaintenanceWindow::from(before).spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
