//! Credential sets (secrets write-only), polling profiles and maintenance windows.

use super::AppState;
use super::auth::Principal;
use super::common::{
    ApiError, JsonObject, Params, created, crud, list, merge_patch, missing, no_content,
    parse_value, take_new_id,
};
use crate::store::catalog::{
    CredentialSecret, CredentialSpec, MaintenanceFilter, MaintenanceSpec, ProfileSpec,
};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

pub(super) const CREDENTIAL_PARAMS: &[&str] = &["limit", "cursor", "kind", "q"];
pub(super) const PROFILE_PARAMS: &[&str] = &["limit", "cursor", "q"];
pub(super) const MAINTENANCE_PARAMS: &[&str] = &["limit", "cursor", "active_at", "ends_after", "q"];

pub(super) async fn list_credentials(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let kind = q.word("kind")?;
    let search = q.short("q")?;
    q.finish(CREDENTIAL_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .credentials_page(kind, search.as_deref(), &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

pub(super) async fn get_credential(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let set = p
        .tenant_store(&s.store)
        .credential_set(&id)
        .await?
        .ok_or_else(|| missing("credential set", &id))?;
    Ok(Json(set).into_response())
}

/// Takes the write-only `secret` member out of a body.
/// What a credential-set body carries beside the spec: the write-only secret.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretField {
    /// Write-only; sealed under the master key; never returned. routeros: password;
    /// snmp_v2c: community; snmp_v3: auth_password, priv_password. Omit in a patch to
    /// keep the stored secret.
    #[serde(default)]
    secret: Option<CredentialSecret>,
}

fn take_secret(body: &mut JsonObject) -> Result<Option<CredentialSecret>, ApiError> {
    let field: SecretField = parse_value(serde_json::Value::Object(body.split_off(&["secret"]).0))
        // Never echo what was sent: serde's messages quote values, and this one may
        // hold the secret itself.
        .map_err(|_| {
            ApiError::invalid(
                "secret",
                "secret: expected an object of strings with some of password, community, auth_password, priv_password",
            )
        })?;
    Ok(field.secret)
}

pub(super) async fn create_credential(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let id = take_new_id(&mut body)?;
    let secret = take_secret(&mut body)?.unwrap_or_default();
    let spec: CredentialSpec = body.parse()?;
    let set = p
        .tenant_store(&s.store)
        .create_credential_set(&p.actor(), s.master_key.as_ref(), &id, &spec, &secret)
        .await?;
    Ok(created(set))
}

pub(super) async fn patch_credential(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .credential_set(&id)
        .await?
        .ok_or_else(|| missing("credential set", &id))?;
    let secret = take_secret(&mut body)?;
    let spec: CredentialSpec = merge_patch(&current.spec, body, "id", &id)?;
    let set = ts
        .update_credential_set(
            &p.actor(),
            s.master_key.as_ref(),
            &id,
            &spec,
            secret.as_ref(),
        )
        .await?;
    Ok(Json(set).into_response())
}

pub(super) async fn delete_credential(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    p.tenant_store(&s.store)
        .delete_credential_set(&p.actor(), &id)
        .await?;
    Ok(no_content())
}

pub(super) async fn list_profiles(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let search = q.short("q")?;
    q.finish(PROFILE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .profiles_page(search.as_deref(), &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "polling profile", spec: ProfileSpec,
    get: get_profile => profile,
    create: create_profile => create_profile,
    patch: patch_profile => update_profile,
    delete: delete_profile => delete_profile,
}

pub(super) async fn list_maintenance(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let filter = MaintenanceFilter {
        active_at: q.int("active_at")?,
        ends_after: q.int("ends_after")?,
        q: q.short("q")?,
    };
    q.finish(MAINTENANCE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .maintenance_page(&filter, &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "maintenance window", spec: MaintenanceSpec,
    get: get_maintenance => maintenance_window,
    create: create_maintenance => create_maintenance,
    patch: patch_maintenance => update_maintenance,
    delete: delete_maintenance => delete_maintenance,
}
