//! Alerts as the store holds them: the ones not OK, and the notification history.
//!
//! Read from the store rather than from the engine actor, so the list is there even
//! while an engine restarts, and says exactly what was persisted.

use super::AppState;
use super::auth::Principal;
use super::common::{ApiError, ListBody, Params};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ispvm_actors::alert::{Level, Phase};

pub(super) const ALERT_PARAMS: &[&str] = &["phase", "level"];
pub(super) const NOTIFICATION_PARAMS: &[&str] = &["after", "limit"];

/// Alerts that are pending, firing, recovering or suppressed, newest change first.
pub(super) async fn list_alerts(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let phase: Option<Phase> = q.word("phase")?;
    let level: Option<Level> = q.word("level")?;
    q.finish(ALERT_PARAMS)?;
    let alerts: Vec<_> = p
        .tenant_store(&s.store)
        .alerts()
        .await?
        .into_iter()
        .filter(|a| phase.is_none_or(|x| a.phase == x))
        .filter(|a| level.is_none_or(|x| a.level == Some(x)))
        .collect();
    Ok(ListBody::all(alerts))
}

/// Notifications after the id `after`, oldest first: a feed a client can follow.
pub(super) async fn list_notifications(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let after = q.int("after")?.unwrap_or(0);
    let limit = q.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be within 1..=1000"));
    }
    q.finish(NOTIFICATION_PARAMS)?;
    let items = p
        .tenant_store(&s.store)
        .alert_notifications(after, limit)
        .await?;
    let next_cursor = items.last().map(|n| n.id.to_string());
    Ok(Json(ListBody { items, next_cursor }).into_response())
}
