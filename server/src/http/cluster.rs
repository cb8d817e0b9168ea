//! `/api/v1/cluster/…`: the tenant's agent cluster as the server merges it from every
//! agent's report (each agent serves its own view under `/v1/cluster/…`).

use super::AppState;
use super::auth::Principal;
use super::common::{ApiError, ListBody, Params};
use crate::cluster_view::{Convergence, MemberSummary, TenantCluster};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ispvm_proto::time::now_ms;
use std::sync::Arc;

pub(super) const NO_PARAMS: &[&str] = &[];

/// Handovers listed by the ownership document.
const RECENT_HANDOVERS: i64 = 100;

async fn view(s: &AppState, p: &Principal, q: Params) -> Result<Arc<TenantCluster>, ApiError> {
    q.finish(NO_PARAMS)?;
    Ok(s.cluster.tenant(&p.tenant).await?)
}

/// How far the cluster agrees, and its members.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ClusterSummary {
    convergence: Convergence,
    members: Vec<MemberSummary>,
}

/// Summary: convergence plus the member list.
pub(super) async fn summary(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Params,
) -> Result<Response, ApiError> {
    let view = view(&s, &p, q).await?;
    let now = now_ms();
    Ok(Json(ClusterSummary {
        convergence: convergence_of(&s, &p, &view, now).await?,
        members: view.members(now),
    })
    .into_response())
}

pub(super) async fn members(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Params,
) -> Result<Response, ApiError> {
    let view = view(&s, &p, q).await?;
    Ok(ListBody::all(view.members(now_ms())))
}

async fn ownership_of(
    s: &AppState,
    p: &Principal,
    view: &TenantCluster,
    now: i64,
) -> Result<crate::cluster_view::OwnershipSummary, ApiError> {
    let store = p.tenant_store(&s.store);
    let devices = store.devices().await?;
    let handovers = store
        .recent_events(
            Some(ispvm_proto::EventKind::OwnershipChange),
            RECENT_HANDOVERS,
        )
        .await?;
    Ok(view.ownership(now, &devices, &handovers))
}

pub(super) async fn ownership(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Params,
) -> Result<Response, ApiError> {
    let view = view(&s, &p, q).await?;
    Ok(Json(ownership_of(&s, &p, &view, now_ms()).await?).into_response())
}

pub(super) async fn reachability(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Params,
) -> Result<Response, ApiError> {
    let view = view(&s, &p, q).await?;
    Ok(Json(view.reachability(now_ms())).into_response())
}

pub(super) async fn convergence(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    q: Params,
) -> Result<Response, ApiError> {
    let view = view(&s, &p, q).await?;
    Ok(Json(convergence_of(&s, &p, &view, now_ms()).await?).into_response())
}

async fn convergence_of(
    s: &AppState,
    p: &Principal,
    view: &TenantCluster,
    now: i64,
) -> Result<crate::cluster_view::Convergence, ApiError> {
    let ownership = ownership_of(s, p, view, now).await?;
    Ok(view.convergence(now, &ownership))
}
