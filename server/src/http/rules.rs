//! Alert rules: CRUD of JSON rule documents, and import/export of whole documents.

use super::AppState;
use super::auth::Principal;
use super::common::{
    ApiError, JsonObject, JsonValue, Params, created, list, merge, missing, no_content,
};
use crate::store::catalog::{ImportMode, parse_import};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

pub(super) const RULE_PARAMS: &[&str] = &["limit", "cursor", "type", "enabled", "q"];
pub(super) const IMPORT_PARAMS: &[&str] = &["mode"];

pub(super) async fn list_rules(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let kind = q.short("type")?;
    let enabled = q.bool("enabled")?;
    let search = q.short("q")?;
    q.finish(RULE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .alert_rules_page(kind.as_deref(), enabled, search.as_deref(), &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

pub(super) async fn get_rule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rule = p
        .tenant_store(&s.store)
        .alert_rule(&id)
        .await?
        .ok_or_else(|| missing("alert rule", &id))?;
    Ok(Json(rule).into_response())
}

/// The body is the rule document itself.
pub(super) async fn create_rule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let rule = p
        .tenant_store(&s.store)
        .create_alert_rule(&p.actor(), Value::Object(body.0))
        .await?;
    Ok(created(rule))
}

/// A merge patch of the rule document.
pub(super) async fn patch_rule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .alert_rule(&id)
        .await?
        .ok_or_else(|| missing("alert rule", &id))?;
    let mut doc = current.rule;
    merge(&mut doc, Value::Object(body.0));
    let rule = ts.update_alert_rule(&p.actor(), &id, doc).await?;
    Ok(Json(rule).into_response())
}

pub(super) async fn delete_rule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    p.tenant_store(&s.store)
        .delete_alert_rule(&p.actor(), &id)
        .await?;
    Ok(no_content())
}

/// `{"version": 1, "rules": [...]}` of every rule, in id order.
pub(super) async fn export_rules(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let doc = p.tenant_store(&s.store).export_alert_rules().await?;
    Ok(Json(doc).into_response())
}

/// Imports a document: every rule valid, or nothing changes.
pub(super) async fn import_rules(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
    JsonValue(doc): JsonValue,
) -> Result<Response, ApiError> {
    let mode = match q.string("mode").as_deref() {
        None | Some("merge") => ImportMode::Merge,
        Some("replace") => ImportMode::Replace,
        Some(_) => return Err(ApiError::bad_request("mode must be merge or replace")),
    };
    q.finish(IMPORT_PARAMS)?;
    let rules = parse_import(doc)?;
    let outcome = p
        .tenant_store(&s.store)
        .import_alert_rules(&p.actor(), &rules, mode)
        .await?;
    Ok(Json(outcome).into_response())
}
