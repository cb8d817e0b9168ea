//! The agent's HTTP endpoint: `/healthz`, Prometheus `/metrics`, `/v1/state` (the
//! routers it polls and how their last polls went) and the cluster state under
//! `/v1/cluster` (see [`crate::cluster::http`]).

use crate::internal_events::AgentMetrics;
use crate::state::AgentState;
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
    /// The agent's cluster membership, when clustering is on.
    pub cluster: Option<Arc<crate::cluster::ClusterHandle>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        // The agent depends on nothing outside it to do its work (the buffer absorbs a
        // server outage): alive is ready.
        .route("/livez", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/state", get(agent_state))
        .route("/v1/traceroute/{target}", get(traceroute))
        .merge(crate::cluster::http::routes())
        .with_state(state)
}

async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "agent_id": s.agent_id }))
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, ispvm_proto::OPENMETRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
}

#[derive(Debug, serde::Deserialize)]
struct TracerouteQuery {
    max_hops: Option<u8>,
    timeout_ms: Option<u64>,
}

/// A traceroute to a configured probe target, from this agent's vantage point (the NOC
/// asks the agent of the PoP it suspects).
async fn traceroute(
    State(s): State<HttpState>,
    axum::extract::Path(target): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<TracerouteQuery>,
) -> axum::response::Response {
    use crate::actors::SupervisorMsg;
    use crate::actors::prober::ProberMsg;
    use axum::http::StatusCode;
    let error = |status: StatusCode, message: String| {
        (status, Json(json!({ "error": message }))).into_response()
    };
    let Some(sup) = &s.supervisor else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is starting".into(),
        );
    };
    let prober = match ractor::call_t!(
        sup,
        |reply| SupervisorMsg::Prober(target.clone(), reply),
        5_000
    ) {
        Ok(Some(p)) => p,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no probe target {target:?}")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let max_hops = q.max_hops.unwrap_or(30).clamp(1, 64);
    let timeout = std::time::Duration::from_millis(q.timeout_ms.unwrap_or(1_000).clamp(100, 5_000));
    let budget = timeout.as_millis() as u64 * u64::from(max_hops) + 5_000;
    let asked = ractor::call_t!(
        prober,
        |reply| ProberMsg::Traceroute {
            max_hops,
            timeout,
            reply
        },
        budget
    );
    match asked {
        Ok(Ok(hops)) => Json(json!({ "target": target, "hops": hops })).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        Err(e) => error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
    }
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
            "buffer_bytes": snap.buffer_bytes,
            "last_ack_ms": snap.last_ack_ms,
        },
        // Batches set aside instead of sent again: someone should look at them.
        "quarantine": snap.quarantine,
    }))
}
