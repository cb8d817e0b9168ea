//! Notification channels (secrets write-only) and the deliveries made through them.

use super::AppState;
use super::auth::Principal;
use super::common::{
    ApiError, JsonObject, Params, created, encode_cursor, merge_patch, missing, no_content,
    parse_value, take_new_id,
};
use crate::notify::channel::{ChannelSecret, ChannelSpec};
use crate::notify::delivery::{DeliveryFilter, DeliveryRow};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

pub(super) const CHANNEL_PARAMS: &[&str] = &["limit", "cursor", "kind", "q"];
pub(super) const DELIVERY_PARAMS: &[&str] = &["limit", "cursor", "state", "incident", "channel"];

/// What a channel body carries beside the spec: the write-only secret.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSecretField {
    /// Write-only; sealed under the master key; never returned. webhook:
    /// webhook_secret (required, 16 or more characters); email: smtp_password (with
    /// email.username). Omit in a patch to keep the stored secret.
    #[serde(default)]
    secret: Option<ChannelSecret>,
}

fn take_secret(body: &mut JsonObject) -> Result<Option<ChannelSecret>, ApiError> {
    let field: ChannelSecretField =
        parse_value(serde_json::Value::Object(body.split_off(&["secret"]).0))
            // Never echo what was sent: serde's messages quote values.
            .map_err(|_| {
                ApiError::invalid(
                    "secret",
                    "secret: expected an object of strings with webhook_secret or smtp_password",
                )
            })?;
    Ok(field.secret)
}

pub(super) async fn list_channels(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let kind = q.word("kind")?;
    let search = q.short("q")?;
    q.finish(CHANNEL_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .channels_page(kind, search.as_deref(), &page)
        .await?;
    Ok(super::common::list(page, |x| json!(x.id)))
}

pub(super) async fn get_channel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = p
        .tenant_store(&s.store)
        .channel(&id)
        .await?
        .ok_or_else(|| missing("notification channel", &id))?;
    Ok(Json(c).into_response())
}

pub(super) async fn create_channel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let id = take_new_id(&mut body)?;
    let secret = take_secret(&mut body)?.unwrap_or_default();
    let spec: ChannelSpec = body.parse()?;
    let c = p
        .tenant_store(&s.store)
        .create_channel(&p.actor(), s.master_key.as_ref(), &id, &spec, &secret)
        .await?;
    Ok(created(c))
}

pub(super) async fn patch_channel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .channel(&id)
        .await?
        .ok_or_else(|| missing("notification channel", &id))?;
    let secret = take_secret(&mut body)?;
    let spec: ChannelSpec = merge_patch(&current.spec, body, "id", &id)?;
    let c = ts
        .update_channel(
            &p.actor(),
            s.master_key.as_ref(),
            &id,
            &spec,
            secret.as_ref(),
        )
        .await?;
    Ok(Json(c).into_response())
}

pub(super) async fn delete_channel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    p.tenant_store(&s.store)
        .delete_channel(&p.actor(), &id)
        .await?;
    Ok(no_content())
}

pub(super) async fn list_deliveries(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let (limit, cursor) = q.page()?;
    let after = match cursor {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<(i64, i64, String)>(v)
                .map_err(|_| ApiError::bad_request("the cursor is not valid here"))?,
        ),
    };
    let filter = DeliveryFilter {
        state: q.word("state")?,
        incident: q.int("incident")?,
        channel: q.short("channel")?,
    };
    q.finish(DELIVERY_PARAMS)?;
    let mut rows = p
        .tenant_store(&s.store)
        .deliveries_page(&filter, after.as_ref(), i64::from(limit) + 1)
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last()
            .map(|r: &DeliveryRow| encode_cursor(&json!([r.incident_id, r.seq, r.channel_id])))
    } else {
        None
    };
    Ok(Json(super::common::ListBody {
        items: rows,
        next_cursor,
    })
    .into_response())
}
