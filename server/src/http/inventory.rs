//! Sites, links, topology edges, services, agents and events.

use super::AppState;
use super::auth::Principal;
use super::common::{ApiError, ListBody, Params, crud, list, missing};
use crate::store::catalog::{
    EdgeFilter, EdgeSpec, LinkFilter, LinkSpec, ServiceFilter, ServiceSpec, SiteSpec,
};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

pub(super) const SITE_PARAMS: &[&str] = &["limit", "cursor", "q"];
pub(super) const LINK_PARAMS: &[&str] = &["limit", "cursor", "device", "provider", "medium", "q"];
pub(super) const EDGE_PARAMS: &[&str] = &["limit", "cursor", "type", "state", "source", "device"];
pub(super) const SERVICE_PARAMS: &[&str] = &["limit", "cursor", "device", "kind", "q"];
pub(super) const AGENT_PARAMS: &[&str] = &["limit", "cursor", "q"];
pub(super) const EVENT_PARAMS: &[&str] = &["kind", "limit"];

pub(super) async fn list_sites(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let search = q.short("q")?;
    q.finish(SITE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .sites_page(search.as_deref(), &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "site", spec: SiteSpec,
    get: get_site => site,
    create: create_site => create_site,
    patch: patch_site => update_site,
    delete: delete_site => delete_site,
}

pub(super) async fn list_links(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let filter = LinkFilter {
        device: q.short("device")?,
        provider: q.short("provider")?,
        medium: q.word("medium")?,
        q: q.short("q")?,
    };
    q.finish(LINK_PARAMS)?;
    let page = p.tenant_store(&s.store).links_page(&filter, &page).await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "link", spec: LinkSpec,
    get: get_link => link,
    create: create_link => create_link,
    patch: patch_link => update_link,
    delete: delete_link => delete_link,
}

pub(super) async fn list_edges(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let filter = EdgeFilter {
        kind: q.word("type")?,
        state: q.word("state")?,
        source: q.word("source")?,
        device: q.short("device")?,
    };
    q.finish(EDGE_PARAMS)?;
    let page = p.tenant_store(&s.store).edges_page(&filter, &page).await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "topology edge", spec: EdgeSpec,
    get: get_edge => edge,
    create: create_edge => create_operator_edge,
    patch: patch_edge => update_edge,
    delete: delete_edge => delete_edge,
}

pub(super) async fn list_services(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let filter = ServiceFilter {
        device: q.short("device")?,
        kind: q.short("kind")?,
        q: q.short("q")?,
    };
    q.finish(SERVICE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .services_page(&filter, &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

crud! {
    resource: "service", spec: ServiceSpec,
    get: get_service => service,
    create: create_service => create_service,
    patch: patch_service => update_service,
    delete: delete_service => delete_service,
}

pub(super) async fn list_agents(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let search = q.short("q")?;
    q.finish(AGENT_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .agents_page(search.as_deref(), &page)
        .await?;
    Ok(list(page, |x| json!(x.id)))
}

pub(super) async fn get_agent(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let agent = p
        .tenant_store(&s.store)
        .agent(&id)
        .await?
        .ok_or_else(|| missing("agent", &id))?;
    Ok(Json(agent).into_response())
}

/// The newest events, optionally of one kind (no cursor: a tail, not an archive).
pub(super) async fn list_events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let kind = q.word("kind")?;
    let limit = q.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be within 1..=1000"));
    }
    q.finish(EVENT_PARAMS)?;
    let events = p.tenant_store(&s.store).recent_events(kind, limit).await?;
    Ok(ListBody::all(events))
}
