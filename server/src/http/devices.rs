//! Devices with their live status and latest values, and their interfaces.

use super::AppState;
use super::auth::Principal;
use super::common::{
    ApiError, JsonObject, Params, created, list, merge_patch, missing, no_content, take_new_id,
};
use crate::store::catalog::{Device, DeviceFilter, DeviceSpec, Page};
use crate::store::{InterfaceRow, LatestValue, TenantStore};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ispvm_actors::{DeviceStatus, StatusPolicy};
use ispvm_proto::time::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

pub(super) const LIST_PARAMS: &[&str] = &["limit", "cursor", "site", "role", "tag", "agent", "q"];
pub(super) const INTERFACE_PARAMS: &[&str] = &["limit", "cursor", "device", "uplink", "q"];
pub(super) const DEVICE_INTERFACE_PARAMS: &[&str] = &["limit", "cursor", "uplink", "q"];

/// A metric's latest value as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricValue {
    value: f64,
    ts_ms: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterfaceView {
    name: String,
    kind: String,
    disabled: bool,
    uplink: bool,
    last_seen_ms: i64,
    metrics: BTreeMap<String, MetricValue>,
}

/// A device as the API shows it: its row, its status and the newest values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    #[serde(flatten)]
    device: Device,
    status: DeviceStatus,
    metrics: BTreeMap<String, MetricValue>,
    interfaces: Vec<InterfaceView>,
}

fn device_views(
    devices: Vec<Device>,
    interfaces: Vec<InterfaceRow>,
    latest: Vec<LatestValue>,
    policy: &StatusPolicy,
    now: i64,
) -> Vec<DeviceView> {
    let mut values: HashMap<(String, String), BTreeMap<String, MetricValue>> = HashMap::new();
    for l in latest {
        values
            .entry((l.entity_kind, l.entity_id))
            .or_default()
            .insert(
                l.metric,
                MetricValue {
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
                last_seen_ms: i.last_seen_ms,
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

async fn views(
    ts: &TenantStore<'_>,
    page: Page<Device>,
    policy: &StatusPolicy,
) -> Result<Page<DeviceView>, ApiError> {
    let ids: Vec<String> = page.items.iter().map(|d| d.id.clone()).collect();
    let interfaces = ts.interfaces_of(&ids).await?;
    let latest = ts.latest_values_of(&ids).await?;
    Ok(Page {
        items: device_views(page.items, interfaces, latest, policy, now_ms()),
        more: page.more,
    })
}

async fn one_view(
    ts: &TenantStore<'_>,
    device: Device,
    policy: &StatusPolicy,
) -> Result<Response, ApiError> {
    let page = views(
        ts,
        Page {
            items: vec![device],
            more: false,
        },
        policy,
    )
    .await?;
    Ok(Json(page.items.into_iter().next()).into_response())
}

pub(super) async fn list_devices(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let page = q.id_page()?;
    let filter = DeviceFilter {
        site: q.short("site")?,
        role: q.word("role")?,
        tag: q.short("tag")?,
        agent: q.short("agent")?,
        q: q.short("q")?,
    };
    q.finish(LIST_PARAMS)?;
    let ts = p.tenant_store(&s.store);
    let page = ts.devices_page(&filter, &page).await?;
    let page = views(&ts, page, &s.status).await?;
    Ok(list(page, |d| json!(d.device.id)))
}

pub(super) async fn get_device(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let device = ts
        .device(&id)
        .await?
        .ok_or_else(|| missing("device", &id))?;
    one_view(&ts, device, &s.status).await
}

pub(super) async fn create_device(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut body: JsonObject,
) -> Result<Response, ApiError> {
    let id = take_new_id(&mut body)?;
    let spec: DeviceSpec = body.parse()?;
    let ts = p.tenant_store(&s.store);
    let quota = ts.settings(&s.tenant_defaults).await?.max_devices;
    let device = ts.create_device(&p.actor(), &id, &spec, quota).await?;
    Ok(created(device))
}

pub(super) async fn patch_device(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let ts = p.tenant_store(&s.store);
    let current = ts
        .device(&id)
        .await?
        .ok_or_else(|| missing("device", &id))?;
    let spec: DeviceSpec = merge_patch(&current.spec, body, "id", &id)?;
    let device = ts.update_device(&p.actor(), &id, &spec).await?;
    Ok(Json(device).into_response())
}

pub(super) async fn delete_device(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    p.tenant_store(&s.store)
        .delete_device(&p.actor(), &id)
        .await?;
    Ok(no_content())
}

/// The `[device, name]` key of an interface cursor.
fn interface_after(
    cursor: Option<serde_json::Value>,
) -> Result<Option<(String, String)>, ApiError> {
    match cursor {
        None => Ok(None),
        Some(v) => serde_json::from_value::<(String, String)>(v)
            .map(Some)
            .map_err(|_| ApiError::bad_request("the cursor is not valid here")),
    }
}

pub(super) async fn list_interfaces(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let (limit, cursor) = q.page()?;
    let after = interface_after(cursor)?;
    let device = q.short("device")?;
    let uplink = q.bool("uplink")?;
    let search = q.short("q")?;
    q.finish(INTERFACE_PARAMS)?;
    let page = p
        .tenant_store(&s.store)
        .interfaces_page(
            device.as_deref(),
            uplink,
            search.as_deref(),
            after.as_ref().map(|(d, n)| (d.as_str(), n.as_str())),
            limit,
        )
        .await?;
    Ok(list(page, |i| json!([i.device_id, i.name])))
}

pub(super) async fn list_device_interfaces(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    mut q: Params,
) -> Result<Response, ApiError> {
    let (limit, cursor) = q.page()?;
    let after = interface_after(cursor)?;
    let uplink = q.bool("uplink")?;
    let search = q.short("q")?;
    q.finish(DEVICE_INTERFACE_PARAMS)?;
    let ts = p.tenant_store(&s.store);
    if ts.device(&id).await?.is_none() {
        return Err(missing("device", &id));
    }
    let page = ts
        .interfaces_page(
            Some(&id),
            uplink,
            search.as_deref(),
            after.as_ref().map(|(d, n)| (d.as_str(), n.as_str())),
            limit,
        )
        .await?;
    Ok(list(page, |i| json!([i.device_id, i.name])))
}

pub(super) async fn get_interface(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let row = p
        .tenant_store(&s.store)
        .interface(&id, &name)
        .await?
        .ok_or_else(|| missing("interface", &format!("{id}/{name}")))?;
    Ok(Json(row).into_response())
}

/// What may change on an interface: the rest is what the router reports.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterfacePatch {
    uplink: bool,
}

pub(super) async fn patch_interface(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let patch: InterfacePatch = body.parse()?;
    let row = p
        .tenant_store(&s.store)
        .set_interface_uplink(&p.actor(), &id, &name, patch.uplink)
        .await?;
    Ok(Json(row).into_response())
}
