//! The cluster-state API of one agent (`/v1/cluster…`): what this agent sees of the
//! cluster. The server aggregates the same documents per tenant.

use crate::http::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ispvm_cluster::gossip::members::MemberJson;
use serde_json::json;

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/cluster", get(summary))
        .route("/v1/cluster/members", get(members))
        .route("/v1/cluster/ownership", get(ownership))
        .route("/v1/cluster/reachability", get(reachability))
}

fn disabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "clustering is off on this agent ([cluster] enabled = false)" })),
    )
        .into_response()
}

async fn summary(State(s): State<HttpState>) -> Response {
    let Some(c) = &s.cluster else {
        return disabled();
    };
    let m = c.membership();
    let count = |f: &dyn Fn(&ispvm_cluster::gossip::Member) -> bool| {
        m.members.iter().filter(|x| f(x)).count()
    };
    let max_phi = m
        .members
        .iter()
        .filter(|x| x.live && x.agent != m.self_agent)
        .filter_map(|x| x.phi)
        .fold(None, |acc: Option<f64>, p| {
            Some(acc.map_or(p, |a| a.max(p)))
        });
    let last_handover = c
        .handovers
        .lock()
        .ok()
        .and_then(|l| l.back().map(|h| h.at_ms));
    let cfg = c.config();
    Json(json!({
        "agent": m.self_agent,
        "gossip_addr": c.node.gossip_addr().to_string(),
        "members": {
            "live": count(&|x| x.live && !x.leaving),
            "leaving": count(&|x| x.leaving),
            "dead": count(&|x| !x.live && !x.leaving),
        },
        "owned_routers": c.assignment.lock().map(|a| a.owned().count()).unwrap_or(0),
        "convergence": {
            "gossip_interval_ms": cfg.gossip_interval_ms,
            "phi_threshold": cfg.phi_threshold,
            "expected_detection_ms": (cfg.phi_threshold * cfg.gossip_interval_ms as f64).round(),
            "settle_ms": cfg.settle().as_millis() as u64,
            "max_phi_of_live_members": max_phi,
            "last_handover_at_ms": last_handover,
        },
        "transport": c.node.transport_stats().snapshot(),
    }))
    .into_response()
}

async fn members(State(s): State<HttpState>) -> Response {
    let Some(c) = &s.cluster else {
        return disabled();
    };
    let m = c.membership();
    let list: Vec<MemberJson> = m.members.iter().map(MemberJson::from).collect();
    Json(json!({ "agent": m.self_agent, "members": list })).into_response()
}

async fn ownership(State(s): State<HttpState>) -> Response {
    let Some(c) = &s.cluster else {
        return disabled();
    };
    let (owners, mine) = match c.assignment.lock() {
        Ok(a) => (
            a.owners().clone(),
            a.owned().map(str::to_owned).collect::<Vec<_>>(),
        ),
        Err(_) => Default::default(),
    };
    let recent: Vec<_> = c
        .handovers
        .lock()
        .map(|l| l.iter().rev().take(100).cloned().collect())
        .unwrap_or_default();
    Json(json!({
        "agent": s.agent_id,
        "replication": c.config().replication,
        "owners": owners,
        "mine": mine,
        "recent_handovers": recent,
    }))
    .into_response()
}

async fn reachability(State(s): State<HttpState>) -> Response {
    let Some(c) = &s.cluster else {
        return disabled();
    };
    let m = c.membership();
    let mut targets = std::collections::BTreeSet::new();
    let mut cells = Vec::new();
    for member in &m.members {
        for (target, r) in &member.reach {
            targets.insert(target.clone());
            cells.push(json!({
                "vantage": member.agent,
                "vantage_site": member.site,
                "vantage_live": member.live,
                "target": target,
                "loss_pct": r.loss_pct,
                "rtt_ms": r.rtt_us.map(|us| f64::from(us) / 1_000.0),
                "at_s": r.at_s,
            }));
        }
    }
    Json(json!({
        "agent": m.self_agent,
        "vantages": m.members.iter().map(|x| &x.agent).collect::<Vec<_>>(),
        "targets": targets,
        "cells": cells,
    }))
    .into_response()
}
