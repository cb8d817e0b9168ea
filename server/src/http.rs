//! The server's HTTP surface: `/healthz`, `/metrics` and the inventory API under
//! `/api/v1/`. Handlers only translate between HTTP and the store or the domain.

use crate::store::{DeviceRow, InterfaceRow, LatestValue, Store, StoreError};
use crate::telemetry::ServerMetrics;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ispvm_actors::{DeviceStatus, StatusPolicy};
use ispvm_proto::time::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<ServerMetrics>,
    pub default_tenant: String,
    pub status: StatusPolicy,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/events", get(events))
        .with_state(state)
}

/// An API failure as JSON with a status code.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "API query failed");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable".into(),
        )
    }
}

#[derive(Debug, Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
}

impl AppState {
    async fn tenant(&self, q: &TenantQuery) -> Result<String, ApiError> {
        let t = q
            .tenant
            .clone()
            .unwrap_or_else(|| self.default_tenant.clone());
        if !self.store.tenant(&t).exists().await? {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("unknown tenant {t:?}"),
            ));
        }
        Ok(t)
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(json!({ "status": "ok", "store": s.store.engine() })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "degraded", "store": s.store.engine(), "error": e.to_string() }),
            ),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// A metric's latest value as the API shows it.
#[derive(Debug, Serialize)]
struct Value {
    value: f64,
    ts_ms: i64,
}

#[derive(Debug, Serialize)]
struct InterfaceView {
    name: String,
    kind: String,
    disabled: bool,
    uplink: bool,
    metrics: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize)]
struct DeviceView {
    #[serde(flatten)]
    device: DeviceRow,
    status: DeviceStatus,
    metrics: BTreeMap<String, Value>,
    interfaces: Vec<InterfaceView>,
}

fn device_views(
    devices: Vec<DeviceRow>,
    interfaces: Vec<InterfaceRow>,
    latest: Vec<LatestValue>,
    policy: &StatusPolicy,
    now: i64,
) -> Vec<DeviceView> {
    let mut values: HashMap<(String, String), BTreeMap<String, Value>> = HashMap::new();
    for l in latest {
        values
            .entry((l.entity_kind, l.entity_id))
            .or_default()
            .insert(
                l.metric,
                Value {
                    value: l.value,
                    ts_ms: l.ts_ms,
                },
            );
    }
    let mut by_device: HashMap<String, Vec<InterfaceView>> = HashMap::new();
    for i in interfaces {
        let metrics = values
            .remove(&(
                "interface".to_owned(),
                format!("{}/{}", i.device_id, i.name),
            ))
            .unwrap_or_default();
        by_device
            .entry(i.device_id)
            .or_default()
            .push(InterfaceView {
                name: i.name,
                kind: i.kind,
                disabled: i.disabled,
                uplink: i.uplink,
                metrics,
            });
    }
    devices
        .into_iter()
        .map(|d| {
            let metrics = values
                .remove(&("device".to_owned(), d.id.clone()))
                .unwrap_or_default();
            let up = metrics.get("device.up").map(|v| (v.ts_ms, v.value));
            DeviceView {
                status: policy.device_status(up, now),
                interfaces: by_device.remove(&d.id).unwrap_or_default(),
                metrics,
                device: d,
            }
        })
        .collect()
}

async fn devices(
    State(s): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = s.tenant(&q).await?;
    let ts = s.store.tenant(&tenant);
    let views = device_views(
        ts.devices().await?,
        ts.interfaces().await?,
        ts.latest_values().await?,
        &s.status,
        now_ms(),
    );
    Ok(Json(json!({ "tenant": tenant, "total": views.len(), "devices": views })).into_response())
}

async fn sites(
    State(s): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = s.tenant(&q).await?;
    let sites = s.store.tenant(&tenant).sites().await?;
    Ok(Json(json!({ "tenant": tenant, "total": sites.len(), "sites": sites })).into_response())
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    tenant: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
}

async fn events(
    State(s): State<AppState>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let tenant = s
        .tenant(&TenantQuery {
            tenant: q.tenant.clone(),
        })
        .await?;
    let events = s
        .store
        .tenant(&tenant)
        .recent_events(q.kind.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "tenant": tenant, "total": events.len(), "events": events })).into_response())
}

async fn agents(
    State(s): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let tenant = s.tenant(&q).await?;
    let agents = s.store.tenant(&tenant).agents().await?;
    Ok(Json(json!({ "tenant": tenant, "total": agents.len(), "agents": agents })).into_response())
}
