//! Incidents as the store holds them: the list (filters, newest first, paged) and one
//! incident whole (root cause, confidence and runner-ups, evidence, impact, member and
//! suppressed alerts, timeline).
//!
//! Read from the store, like alerts: the answer says exactly what was persisted, and is
//! there while a correlator restarts.

use super::AppState;
use super::auth::Principal;
use super::common::{ApiError, ListBody, Params, encode_cursor, missing};
use crate::store::IncidentFilter;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

pub(super) const LIST_PARAMS: &[&str] = &["state", "severity", "kind", "limit", "cursor"];

/// Incidents newest first.
pub(super) async fn list_incidents(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let filter = IncidentFilter {
        state: q.word("state")?,
        severity: q.word("severity")?,
        kind: q.word("kind")?,
    };
    let (limit, cursor) = q.page()?;
    let before = match cursor {
        None => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| ApiError::bad_request("the cursor is not valid here"))?,
        ),
        Some(_) => return Err(ApiError::bad_request("the cursor is not valid here")),
    };
    q.finish(LIST_PARAMS)?;
    let limit = i64::from(limit);
    // One more than asked tells whether a next page exists.
    let mut items = p
        .tenant_store(&s.store)
        .incidents_page(filter, before, limit + 1)
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = more
        .then(|| items.last().map(|i| encode_cursor(&json!(i.id))))
        .flatten();
    Ok(Json(ListBody { items, next_cursor }).into_response())
}

/// One incident whole.
pub(super) async fn get_incident(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let number: i64 = id.parse().map_err(|_| missing("incident", &id))?;
    let incident = p
        .tenant_store(&s.store)
        .incident(number)
        .await?
        .ok_or_else(|| missing("incident", &id))?;
    Ok(Json(incident).into_response())
}
