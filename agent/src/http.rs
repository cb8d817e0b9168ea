//! The agent's HTTP endpoint: `/healthz`, Prometheus `/metrics`, and `/v1/state` (the
//! routers it polls and how their last polls went).

use crate::state::AgentState;
use crate::telemetry::AgentMetrics;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub agent_id: String,
    pub tenant_id: String,
    pub site: String,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
    /// Asked for what only actors know (probe rounds).
    pub supervisor: Option<ractor::ActorRef<crate::actors::SupervisorMsg>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/state", get(agent_state))
        .with_state(state)
}

async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "agent_id": s.agent_id }))
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn agent_state(State(s): State<HttpState>) -> impl IntoResponse {
    let snap = s.state.snapshot();
    let targets = match &s.supervisor {
        Some(sup) => ractor::call_t!(sup, crate::actors::SupervisorMsg::ProbeRounds, 5_000)
            .unwrap_or_default(),
        None => Default::default(),
    };
    Json(json!({
        "agent_id": s.agent_id,
        "tenant_id": s.tenant_id,
        "site": s.site,
        "routers": snap.routers,
        "probe_targets": targets,
        "uplink": {
            "queued_batches": snap.uplink_queued_batches,
            "last_ack_ms": snap.last_ack_ms,
        },
    }))
}
