//! Tenants (platform administrators), users (tenant administrators) and the audit log.

use super::AppState;
use super::auth::Principal;
use super::common::{
    ApiError, JsonObject, Params, created, list, merge_patch, missing, no_content,
};
use crate::store::AuditFilter;
use crate::store::catalog::Page;
use crate::store::tenants::{FirstAdmin, TenantSpec};
use crate::store::users::{Role, UserSpec, validate_password};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

pub(super) const TENANT_PARAMS: &[&str] = &["limit", "cursor"];
pub(super) const USER_PARAMS: &[&str] = &["limit", "cursor", "role", "q"];
pub(super) const AUDIT_PARAMS: &[&str] = &[
    "limit",
    "cursor",
    "resource",
    "action",
    "username",
    "resource_id",
];

/// Platform administrators see every tenant; everyone else sees their own.
pub(super) async fn list_tenants(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    q.finish(TENANT_PARAMS)?;
    let page = if p.platform_admin {
        s.store.tenants_page(&page).await?
    } else {
        Page {
            items: s.store.tenant_row(&p.tenant).await?.into_iter().collect(),
            more: false,
        }
    };
    Ok(list(page, |t| json!(t.id)))
}

pub(super) async fn get_tenant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id != p.tenant && !p.platform_admin {
        return Err(missing("tenant", &id));
    }
    let tenant = s
        .store
        .tenant_row(&id)
        .await?
        .ok_or_else(|| missing("tenant", &id))?;
    Ok(Json(tenant).into_response())
}

/// What a tenant-creating body carries beside the tenant's fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// The new tenant's id.
    id: String,
    /// Its first administrator, if one is to be made now.
    #[serde(default)]
    admin: Option<FirstAdminRequest>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdminRequest {
    username: String,
    /// At least 10 characters.
    #[schema(format = Password, min_length = 10)]
    password: String,
}

/// What a user-creating body carries beside the user's fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    /// At least 10 characters; write-only.
    #[schema(format = Password, min_length = 10, write_only)]
    password: String,
}

/// What a user patch may carry beside the user's fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// A new password (at least 10 characters); write-only.
    #[serde(default)]
    #[schema(format = Password, min_length = 10, write_only)]
    password: Option<String>,
}

/// Creates a tenant, with its first administrator when `admin` is given, and loads the
/// starter alert rules into it.
pub(super) async fn create_tenant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let NewTenant { id, admin } = body.split_off(&["id", "admin"]).parse()?;
    let admin = match admin {
        None => None,
        Some(a) => {
            validate_password(&a.password)?;
            Some(FirstAdmin {
                username: a.username,
                password_hash: s.auth.hash(&a.password).await?,
            })
        }
    };
    let spec: TenantSpec = body.parse()?;
    let tenant = s
        .store
        .create_tenant(&p.tenant, &p.actor(), &id, &spec, admin.as_ref())
        .await?;
    s.store.tenant(&id).seed_starter_rules().await?;
    Ok(created(tenant))
}

pub(super) async fn patch_tenant(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let current = s
        .store
        .tenant_row(&id)
        .await?
        .ok_or_else(|| missing("tenant", &id))?;
    let spec: TenantSpec = merge_patch(&TenantSpec { name: current.name }, body, "id", &id)?;
    let tenant = s
        .store
        .update_tenant(&p.tenant, &p.actor(), &id, &spec)
        .await?;
    Ok(Json(tenant).into_response())
}

pub(super) async fn list_users(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let role = match q.short("role")? {
        None => None,
        Some(r) => Some(
            Role::parse(&r)
                .ok_or_else(|| ApiError::bad_request("role must be admin, noc or read_only"))?,
        ),
    };
    let search = q.short("q")?;
    q.finish(USER_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .users_page(role, search.as_deref(), &page)
        .await?;
    Ok(list(page, |u| json!(u.username)))
}

pub(super) async fn get_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let user = p
        .tenant_store(&s.store)
        .user(&username)
        .await?
        .ok_or_else(|| missing("user", &username))?;
    Ok(Json(user).into_response())
}

pub(super) async fn create_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let NewUser { username, password } = body.split_off(&["username", "password"]).parse()?;
    crate::store::users::validate_username(&username)?;
    let spec: UserSpec = body.parse()?;
    spec.validate()?;
    validate_password(&password)?;
    let hash = s.auth.hash(&password).await?;
    let user = p
        .tenant_store(&s.store)
        .create_user(&p.actor(), &username, &spec, &hash, false)
        .await?;
    Ok(created(user))
}

/// A merge patch of role, display name and disabled; `password` sets a new one.
pub(super) async fn patch_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(username): Path<String>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .user(&username)
        .await?
        .ok_or_else(|| missing("user", &username))?;
    guard_platform_admin(&p, current.platform_admin)?;
    let NewPassword { password } = body.split_off(&["password"]).parse()?;
    let spec: UserSpec = merge_patch(&current.spec, body, "username", &username)?;
    spec.validate()?;
    let hash = match password {
        None => None,
        Some(pw) => {
            validate_password(&pw)?;
            Some(s.auth.hash(&pw).await?)
        }
    };
    let user = ts
        .update_user(&p.actor(), &username, &spec, hash.as_deref())
        .await?;
    Ok(Json(user).into_response())
}

pub(super) async fn delete_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .user(&username)
        .await?
        .ok_or_else(|| missing("user", &username))?;
    guard_platform_admin(&p, current.platform_admin)?;
    ts.delete_user(&p.actor(), &username).await?;
    Ok(no_content())
}

/// A platform admin manages every tenant: an admin of its tenant who is not one must not
/// be able to take the account over (reset its password) or remove it.
fn guard_platform_admin(
    caller: &Principal,
    target_is_platform_admin: bool,
) -> Result<(), ApiError> {
    if target_is_platform_admin && !caller.platform_admin {
        return Err(ApiError::forbidden(
            "only a platform admin may change or delete a platform admin",
        ));
    }
    Ok(())
}

/// The audit log, newest first.
pub(super) async fn list_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let (limit, cursor) = q.page()?;
    let before = match cursor {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::bad_request("the cursor is not valid here"))?,
        ),
    };
    let filter = AuditFilter {
        resource: q.short("resource")?,
        action: q.short("action")?,
        username: q.short("username")?,
        resource_id: q.short("resource_id")?,
    };
    q.finish(AUDIT_PARAMS)?;
    let rows = p
        .tenant_store(&s.store)
        .audit_entries(&filter, before, limit)
        .await?;
    Ok(list(Page::from_rows(rows, limit), |e| json!(e.id)))
}
