//! Incidents as the store holds them: the list (filters, newest first, paged) and one
//! incident whole (root cause, confidence and runner-ups, evidence, impact, member and
//! suppressed alerts, timeline).
//!
//! Read from the store, like alerts: the answer says exactly what was persisted, and is
//! there while a correlator restarts. Acknowledge, assign and notes go to the tenant's
//! correlator, which owns the incident, and are audited.

use super::AppState;
use super::auth::Principal;
use super::common::{ApiError, JsonObject, ListBody, Params, encode_cursor, missing};
use crate::store::IncidentFilter;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ispvm_actors::incident::{ActionBy, ActionError, IncidentAction};
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

/// `POST /api/v1/incidents/{id}/ack`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// Stop notifications about the incident while acknowledged.
    #[serde(default)]
    pub silence: bool,
    /// When the acknowledgement lapses (Unix ms); never when absent.
    #[serde(default)]
    pub until_ms: Option<i64>,
}

/// `POST /api/v1/incidents/{id}/assign`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A user name; `null` to unassign.
    pub assignee: Option<String>,
}

/// `POST /api/v1/incidents/{id}/notes`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
}

fn action_error(e: ActionError, id: &str) -> ApiError {
    match e {
        ActionError::Unknown(_) => missing("open or recent incident", id),
        ActionError::BadNote => ApiError::invalid("text", e.to_string()),
        ActionError::BadAssignee => ApiError::invalid("assignee", e.to_string()),
        ActionError::ExpiryPast => ApiError::invalid("until_ms", e.to_string()),
        ActionError::Resolved => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            super::common::ErrorCode::Conflict,
            e.to_string(),
        ),
        ActionError::Store(_) | ActionError::Unavailable => ApiError::unavailable(),
    }
}

/// Hands an action to the tenant's correlator, which owns the incident: it applies it,
/// stores it with the audit row in one transaction, and answers with the incident.
async fn act(
    s: &AppState,
    p: &Principal,
    id: &str,
    action: IncidentAction,
) -> Result<Response, ApiError> {
    let number: u64 = id.parse().map_err(|_| missing("incident", id))?;
    let tree = s.tree.as_ref().ok_or_else(ApiError::unavailable)?;
    let actor = p.actor();
    let by = ActionBy {
        username: actor.username,
        remote: actor.remote,
    };
    let tenant = p.tenant.as_str();
    match tree.incident_action(tenant, number, by, action).await {
        Ok(Ok(incident)) => Ok(Json(incident).into_response()),
        Ok(Err(e)) => Err(action_error(e, id)),
        Err(_) => Err(ApiError::unavailable()),
    }
}

pub(super) async fn ack_incident(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let b: AckBody = body.parse()?;
    let action = IncidentAction::Acknowledge {
        silence: b.silence,
        until_ms: b.until_ms,
    };
    act(&s, &p, &id, action).await
}

pub(super) async fn unack_incident(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    act(&s, &p, &id, IncidentAction::Unacknowledge).await
}

pub(super) async fn assign_incident(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let b: AssignBody = body.parse()?;
    act(
        &s,
        &p,
        &id,
        IncidentAction::Assign {
            assignee: b.assignee,
        },
    )
    .await
}

pub(super) async fn note_incident(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let b: NoteBody = body.parse()?;
    act(&s, &p, &id, IncidentAction::AddNote { text: b.text }).await
}
