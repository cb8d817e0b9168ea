//! Tenants as platform administrators manage them. The tenants table is the root of
//! tenancy, so these are [`Store`] methods, not [`super::TenantStore`] ones; the API
//! lets only platform administrators reach another tenant's row.

use super::audit::{Actor, audit};
use super::catalog::{CatalogError, Page, PageRequest, validate};
use super::users::{Role, validate_username};
use super::{BeginWrite, Store, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

/// The first administrator of a new tenant (password already hashed).
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub username: String,
    pub password_hash: String,
}

/// What a platform administrator sets on a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub name: String,
}

impl Store {
    /// Tenants in id order.
    pub async fn tenants_page(&self, page: &PageRequest) -> Result<Page<Tenant>, CatalogError> {
        let rows: Vec<Tenant> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name, created_ms FROM tenants WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(page.after.as_deref()).bind(page.fetch()).fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit))
    }

    pub async fn tenant_row(&self, id: &str) -> Result<Option<Tenant>, CatalogError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, created_ms FROM tenants WHERE id = $1")
                .bind(id).fetch_optional(pool).await?
        }))
    }

    /// Creates a tenant, optionally with its first administrator. The change is audited
    /// in the creator's tenant and in the new one.
    pub async fn create_tenant(
        &self,
        actor_tenant: &str,
        actor: &Actor,
        id: &str,
        spec: &TenantSpec,
        admin: Option<&FirstAdmin>,
    ) -> Result<Tenant, CatalogError> {
        validate::id("id", id)?;
        validate::name("name", &spec.name)?;
        if let Some(a) = admin {
            validate_username(&a.username)?;
        }
        let now = ispvm_proto::time::now_ms();
        let details = json!({ "after": spec, "admin": admin.map(|a| a.username.as_str()) });
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM tenants WHERE id = $1")
                .bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("tenant {id:?} already exists")));
            }
            sqlx::query("INSERT INTO tenants (id, name, created_ms) VALUES ($1, $2, $3)")
                .bind(id).bind(&spec.name).bind(now).execute(&mut *tx).await?;
            if let Some(a) = admin {
                sqlx::query(
                    "INSERT INTO users (tenant_id, username, display_name, role, password_hash, platform_admin, disabled, \
                       created_ms, updated_ms) VALUES ($1, $2, '', $3, $4, FALSE, FALSE, $5, $5)",
                )
                .bind(id).bind(&a.username).bind(Role::Admin.as_str()).bind(&a.password_hash).bind(now)
                .execute(&mut *tx).await?;
            }
            audit!(tx, actor_tenant, actor, "create", "tenant", id, details);
            if actor_tenant != id {
                audit!(tx, id, actor, "create", "tenant", id, details);
            }
            tx.commit().await?;
        });
        Ok(Tenant {
            id: id.to_owned(),
            name: spec.name.clone(),
            created_ms: now,
        })
    }

    /// Renames a tenant.
    pub async fn update_tenant(
        &self,
        actor_tenant: &str,
        actor: &Actor,
        id: &str,
        spec: &TenantSpec,
    ) -> Result<Tenant, CatalogError> {
        validate::name("name", &spec.name)?;
        let Some(before) = self.tenant_row(id).await? else {
            return Err(CatalogError::not_found("tenant", id));
        };
        let details = json!({ "before": { "name": before.name }, "after": spec });
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE tenants SET name = $2 WHERE id = $1")
                .bind(id).bind(&spec.name).execute(&mut *tx).await?;
            audit!(tx, actor_tenant, actor, "update", "tenant", id, details);
            if actor_tenant != id {
                audit!(tx, id, actor, "update", "tenant", id, details);
            }
            tx.commit().await?;
        });
        Ok(Tenant {
            name: spec.name.clone(),
            ..before
        })
    }
}
