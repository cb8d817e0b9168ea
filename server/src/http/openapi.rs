//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! Paths, methods, parameters and the role each operation needs come from the route
//! table itself ([`super::route_specs`]), so the document lists exactly what is served.
//! Schemas are written here by hand (each resource's fields once; its create, patch and
//! list forms are derived), which keeps the build free of a schema generator.

use super::auth::Access;
use super::routes::{RouteSpec, route_specs};
use serde_json::{Map, Value, json};

fn id_schema() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$" })
}

fn s(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn int(description: &str) -> Value {
    json!({ "type": "integer", "format": "int64", "description": description })
}

fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

fn one_of(values: &[&str], description: &str) -> Value {
    json!({ "type": "string", "enum": values, "description": description })
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Adds `{Name}`, `{Name}Create`, `{Name}Patch` and `{Name}List` for a resource whose
/// writable fields are `spec` and whose stored form adds `extra`.
fn resource(
    schemas: &mut Map<String, Value>,
    name: &str,
    item: &str,
    spec: Value,
    required: &[&str],
    extra: Value,
) {
    let mut create_props = spec.as_object().cloned().unwrap_or_default();
    create_props.insert(
        "id".into(),
        json!({ "allOf": [id_schema()], "description": "Optional: a UUID is assigned when absent" }),
    );
    schemas.insert(
        format!("{name}Create"),
        obj(Value::Object(create_props), required),
    );
    let mut patch = obj(spec.clone(), &[]);
    patch["description"] = json!(
        "JSON merge patch (RFC 7396): given members replace, null resets a member to its default"
    );
    schemas.insert(format!("{name}Patch"), patch);
    let mut item_props = spec.as_object().cloned().unwrap_or_default();
    item_props.insert("id".into(), id_schema());
    if let Value::Object(e) = extra {
        item_props.extend(e);
    }
    let mut item_required: Vec<String> = required.iter().map(|r| (*r).to_owned()).collect();
    item_required.push("id".into());
    schemas.insert(
        item.to_owned(),
        json!({ "type": "object", "properties": item_props, "required": item_required }),
    );
    list(schemas, name, item);
}

fn list(schemas: &mut Map<String, Value>, name: &str, item: &str) {
    schemas.insert(
        format!("{name}List"),
        json!({
            "type": "object",
            "required": ["items", "next_cursor"],
            "properties": {
                "items": { "type": "array", "items": reference(item) },
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last page",
                },
            },
        }),
    );
}

fn timestamps() -> Value {
    json!({ "created_ms": int("Unix ms"), "updated_ms": int("Unix ms") })
}

fn schemas() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "Error".into(),
        json!({
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": s("What went wrong, for people"),
                "code": s("What went wrong, for programs: bad_request, invalid, unauthorized, forbidden, not_found, conflict, quota_exceeded, too_large, too_many_attempts, no_master_key, store_unavailable"),
                "field": s("The offending input field, for `invalid`"),
            },
        }),
    );
    m.insert(
        "Health".into(),
        json!({ "type": "object", "properties": { "status": one_of(&["ok", "degraded"], ""), "store": s("sqlite or postgres") } }),
    );
    m.insert(
        "PrometheusText".into(),
        json!({ "type": "string", "description": "Prometheus text exposition format" }),
    );
    m.insert(
        "OpenApiDocument".into(),
        json!({ "type": "object", "description": "This document" }),
    );
    m.insert(
        "LoginRequest".into(),
        obj(
            json!({ "tenant": id_schema(), "username": id_schema(), "password": json!({ "type": "string", "format": "password" }) }),
            &["tenant", "username", "password"],
        ),
    );
    let role = one_of(
        &["admin", "noc", "read_only"],
        "admin ⊃ noc ⊃ read_only (read-only is accepted on input)",
    );
    m.insert(
        "LoginResponse".into(),
        json!({ "type": "object", "properties": {
            "token": s("Bearer token: send `Authorization: Bearer <token>`"),
            "token_type": one_of(&["Bearer"], ""),
            "expires_ms": int("Unix ms"),
            "tenant": id_schema(), "username": id_schema(), "role": role.clone(),
            "platform_admin": { "type": "boolean" },
        } }),
    );
    m.insert(
        "Me".into(),
        json!({ "type": "object", "properties": {
            "tenant": id_schema(), "username": id_schema(), "display_name": s(""),
            "role": role.clone(), "platform_admin": { "type": "boolean" }, "expires_ms": int("Unix ms"),
        } }),
    );
    m.insert(
        "PasswordChange".into(),
        obj(
            json!({ "current_password": { "type": "string", "format": "password" }, "new_password": { "type": "string", "format": "password", "minLength": 10 } }),
            &["current_password", "new_password"],
        ),
    );
    m.insert(
        "Tenant".into(),
        json!({ "type": "object", "properties": { "id": id_schema(), "name": s(""), "created_ms": int("Unix ms") } }),
    );
    list(&mut m, "Tenant", "Tenant");
    m.insert(
        "TenantCreate".into(),
        obj(
            json!({
                "id": id_schema(), "name": s("Display name"),
                "admin": obj(json!({ "username": id_schema(), "password": { "type": "string", "format": "password", "minLength": 10 } }), &["username", "password"]),
            }),
            &["id", "name"],
        ),
    );
    m.insert(
        "TenantPatch".into(),
        obj(json!({ "name": s("Display name") }), &[]),
    );

    // Users are keyed by username rather than id.
    let user_spec = json!({
        "role": role,
        "display_name": s(""),
        "disabled": { "type": "boolean", "description": "Cannot log in; sessions end" },
    });
    let mut user_create = user_spec.as_object().cloned().unwrap_or_default();
    user_create.insert("username".into(), id_schema());
    user_create.insert(
        "password".into(),
        json!({ "type": "string", "format": "password", "minLength": 10, "writeOnly": true }),
    );
    m.insert(
        "UserCreate".into(),
        obj(
            Value::Object(user_create),
            &["username", "password", "role"],
        ),
    );
    let mut user_patch = user_spec.as_object().cloned().unwrap_or_default();
    user_patch.insert(
        "password".into(),
        json!({ "type": "string", "format": "password", "minLength": 10, "writeOnly": true }),
    );
    m.insert("UserPatch".into(), obj(Value::Object(user_patch), &[]));
    let mut user = user_spec.as_object().cloned().unwrap_or_default();
    user.insert("username".into(), id_schema());
    user.insert(
        "platform_admin".into(),
        json!({ "type": "boolean", "readOnly": true }),
    );
    user.insert(
        "last_login_ms".into(),
        json!({ "type": ["integer", "null"] }),
    );
    if let Value::Object(t) = timestamps() {
        user.extend(t);
    }
    m.insert(
        "User".into(),
        json!({ "type": "object", "properties": user }),
    );
    list(&mut m, "User", "User");

    resource(
        &mut m,
        "Site",
        "Site",
        json!({ "name": s("Display name"), "lat": { "type": ["number", "null"], "minimum": -90, "maximum": 90 }, "lon": { "type": ["number", "null"], "minimum": -180, "maximum": 180 } }),
        &["name"],
        json!({}),
    );
    let device_roles = &[
        "core",
        "agg",
        "access",
        "edge",
        "customer_edge",
        "upstream",
        "route_reflector",
        "pppoe_concentrator",
    ];
    let metric_map = json!({ "type": "object", "additionalProperties": { "type": "object", "properties": { "value": { "type": "number" }, "ts_ms": int("Unix ms") } } });
    resource(
        &mut m,
        "Device",
        "DeviceView",
        json!({
            "name": s("Display name"), "site_id": id_schema(), "role": one_of(device_roles, ""),
            "mgmt_addr": s("host:port the agent polls"),
            "tags": { "type": "array", "items": { "type": "string", "pattern": "^[A-Za-z0-9._:=/-]{1,64}$" }, "maxItems": 32 },
            "polling_profile": { "type": ["string", "null"], "description": "Polling profile id" },
            "credential_set": { "type": ["string", "null"], "description": "Credential set id" },
        }),
        &["name", "site_id", "role"],
        json!({
            "model": s("As discovered"), "os_version": s("As discovered"),
            "agent_id": s("Agent that last reported the device; empty if none"),
            "first_seen_ms": int("Unix ms"), "last_seen_ms": int("Unix ms; 0 until reported"),
            "status": one_of(&["up", "down", "unknown"], "From the freshest device.up report (list and get only)"),
            "metrics": metric_map.clone(),
            "interfaces": { "type": "array", "items": { "type": "object", "properties": {
                "name": s(""), "kind": s(""), "disabled": { "type": "boolean" }, "uplink": { "type": "boolean" },
                "last_seen_ms": int("Unix ms"), "metrics": metric_map,
            } } },
        }),
    );
    m.insert(
        "Interface".into(),
        json!({ "type": "object", "properties": {
            "device_id": id_schema(), "name": s("As the router names it"), "kind": s("RouterOS interface type"),
            "disabled": { "type": "boolean" }, "uplink": { "type": "boolean" }, "last_seen_ms": int("Unix ms"),
        } }),
    );
    list(&mut m, "Interface", "Interface");
    m.insert(
        "InterfacePatch".into(),
        obj(json!({ "uplink": { "type": "boolean" } }), &["uplink"]),
    );
    let endpoint = obj(
        json!({ "device": id_schema(), "interface": s("Interface name; may be empty") }),
        &["device"],
    );
    resource(
        &mut m,
        "Link",
        "Link",
        json!({
            "name": s(""), "a": endpoint.clone(), "b": endpoint,
            "capacity_bps": { "type": ["integer", "null"], "minimum": 1, "maximum": 100_000_000_000_000_i64 },
            "provider": s(""),
            "medium": one_of(&["fiber", "copper", "wireless", "microwave", "satellite", "lte", "leased_line", "virtual", "other"], "Default fiber"),
        }),
        &["a", "b"],
        timestamps(),
    );
    let entity = obj(
        json!({ "kind": one_of(&["device", "link", "site", "service"], ""), "id": id_schema() }),
        &["kind", "id"],
    );
    let mut edge_extra = timestamps();
    edge_extra["source"] = one_of(&["operator", "inferred"], "Who made the edge");
    resource(
        &mut m,
        "TopologyEdge",
        "TopologyEdge",
        json!({
            "type": one_of(&["depends_on", "connected_to", "bgp_peer", "ospf_neighbor"], ""),
            "from": entity.clone(), "to": entity,
            "group": one_of(&["all", "any"], "depends_on edges of one `from` with group any: at least one must be up"),
            "state": one_of(&["proposed", "accepted", "rejected"], "Default accepted"),
            "note": s(""),
        }),
        &["type", "from", "to"],
        edge_extra,
    );
    resource(
        &mut m,
        "Service",
        "Service",
        json!({ "name": s(""), "kind": s("e.g. internet, pppoe, enterprise"), "description": s(""), "devices": strings("Member device ids") }),
        &["name"],
        timestamps(),
    );
    m.insert(
        "Agent".into(),
        json!({ "type": "object", "properties": {
            "id": id_schema(), "first_seen_ms": int("Unix ms"), "last_seen_ms": int("Unix ms"),
            "last_seq": int("Highest batch sequence number"), "batches": int(""), "seq_gaps": int("Sequence numbers never received"),
        } }),
    );
    list(&mut m, "Agent", "Agent");
    m.insert(
        "Event".into(),
        json!({ "type": "object", "properties": {
            "id": s("UUID"), "ts_ms": int("Unix ms"), "entity_kind": s(""), "entity_id": s(""), "kind": s(""),
            "severity": s(""), "message": s(""), "attrs": s("JSON object"), "agent_id": s(""),
        } }),
    );
    list(&mut m, "Event", "Event");
    cluster_schemas(&mut m);
    m.insert(
        "Alert".into(),
        json!({ "type": "object", "properties": {
            "rule_id": s(""), "entity_kind": s("device, interface, probe_target or peer"), "entity_id": s(""),
            "phase": s("pending, firing, recovering or suppressed"), "level": s("warning or critical"),
            "since_ms": int("Unix ms of the last phase change"), "summary": s("Why: values, window and threshold"),
            "state": { "type": "object", "description": "The persisted state machine, with the explanation" },
        } }),
    );
    list(&mut m, "Alert", "Alert");
    m.insert(
        "AlertNotification".into(),
        json!({ "type": "object", "properties": {
            "id": int("Feed position"), "ts_ms": int("Unix ms"), "rule_id": s(""), "rule_name": s(""),
            "entity_kind": s(""), "entity_id": s(""), "kind": s("firing, escalated, resolved or flapping"),
            "level": s(""), "summary": s(""), "details": { "type": "object", "description": "The explanation" },
            "delivered_ms": int("When the notifier delivered it, or null"),
        } }),
    );
    list(&mut m, "AlertNotification", "AlertNotification");
    let mut cred_extra = timestamps();
    cred_extra["has_secret"] = json!({ "type": "boolean", "readOnly": true });
    cred_extra["secret_fields"] =
        json!({ "type": "array", "items": { "type": "string" }, "readOnly": true });
    resource(
        &mut m,
        "CredentialSet",
        "CredentialSet",
        json!({
            "name": s(""), "kind": one_of(&["routeros", "snmp_v2c", "snmp_v3"], ""),
            "username": s("RouterOS user or SNMPv3 security name; empty for v2c"),
            "auth_protocol": { "type": ["string", "null"], "enum": ["md5", "sha1", "sha224", "sha256", "sha384", "sha512", null] },
            "priv_protocol": { "type": ["string", "null"], "enum": ["des", "aes128", "aes192", "aes256", null] },
            "secret": {
                "type": "object", "writeOnly": true, "additionalProperties": false,
                "description": "Write-only; sealed under the master key; never returned. routeros: password; snmp_v2c: community; snmp_v3: auth_password, priv_password. Omit in a patch to keep the stored secret.",
                "properties": { "password": { "type": "string" }, "community": { "type": "string" }, "auth_password": { "type": "string" }, "priv_password": { "type": "string" } },
            },
        }),
        &["name", "kind"],
        cred_extra,
    );
    resource(
        &mut m,
        "PollingProfile",
        "PollingProfile",
        json!({
            "name": s(""),
            "fast_s": { "type": "integer", "minimum": 10, "maximum": 300, "default": 30 },
            "medium_s": { "type": "integer", "minimum": 30, "maximum": 1800, "default": 60 },
            "slow_s": { "type": "integer", "minimum": 60, "maximum": 86400, "default": 300 },
            "max_jobs": { "type": "integer", "minimum": 1, "maximum": 3, "default": 2 },
        }),
        &["name"],
        timestamps(),
    );
    let mut window_extra = timestamps();
    window_extra["created_by"] = s("Username");
    resource(
        &mut m,
        "MaintenanceWindow",
        "MaintenanceWindow",
        json!({
            "name": s(""), "starts_ms": int("Unix ms"), "ends_ms": int("Unix ms; after starts_ms, at most 31 days later"),
            "scope": obj(json!({
                "all": { "type": "boolean" }, "sites": strings(""), "devices": strings(""), "links": strings(""),
                "roles": strings("Device roles"), "tags": strings("Device tags"),
            }), &[]),
            "comment": s(""),
        }),
        &["name", "starts_ms", "ends_ms", "scope"],
        window_extra,
    );
    let rule_doc = json!({
        "type": "object",
        "description": "An alert rule document in the alert engine's format (docs/api.md); must have id, name and type",
        "required": ["id", "name", "type"],
        "properties": { "id": id_schema(), "name": s(""), "type": s("reachability, interface_down, bgp_not_established, sla_loss, sla_rtt, sla_jitter, utilisation, error_rate, metric") },
    });
    m.insert("AlertRuleBody".into(), rule_doc.clone());
    m.insert(
        "AlertRulePatch".into(),
        json!({ "type": "object", "description": "JSON merge patch of the rule document" }),
    );
    m.insert(
        "AlertRule".into(),
        json!({ "type": "object", "properties": {
            "id": id_schema(), "name": s(""), "type": s(""), "enabled": { "type": "boolean" },
            "revision": int("Bumped on every stored change"), "created_ms": int("Unix ms"), "updated_ms": int("Unix ms"),
            "rule": rule_doc.clone(),
        } }),
    );
    list(&mut m, "AlertRule", "AlertRule");
    m.insert(
        "AlertRuleDocument".into(),
        json!({ "type": "object", "required": ["rules"], "properties": {
            "version": { "type": "integer", "enum": [1] }, "rules": { "type": "array", "items": rule_doc, "maxItems": 2000 },
        } }),
    );
    m.insert(
        "ImportOutcome".into(),
        json!({ "type": "object", "properties": {
            "created": strings("Rule ids"), "updated": strings("Rule ids"), "unchanged": strings("Rule ids"), "deleted": strings("Rule ids (mode=replace)"),
        } }),
    );
    m.insert(
        "AuditEntry".into(),
        json!({ "type": "object", "properties": {
            "id": int("Newest first; the cursor"), "ts_ms": int("Unix ms"), "username": s(""),
            "action": s("create, update, delete, import, login, login_failed, logout"),
            "resource": s(""), "resource_id": s(""), "details": { "type": "object" }, "remote_addr": s(""),
        } }),
    );
    list(&mut m, "Audit", "AuditEntry");
    m
}

fn query_param(name: &str) -> Value {
    let (schema, description) = match name {
        "limit" => (
            json!({ "type": "integer", "minimum": 1, "maximum": crate::store::catalog::MAX_LIMIT, "default": crate::store::catalog::DEFAULT_LIMIT }),
            "Rows per page",
        ),
        "cursor" => (
            json!({ "type": "string" }),
            "next_cursor of the previous page",
        ),
        "q" => (
            json!({ "type": "string" }),
            "Case-insensitive substring of id or name",
        ),
        "uplink" | "enabled" => (json!({ "type": "boolean" }), "Filter"),
        "active_at" => (
            json!({ "type": "integer" }),
            "Windows active at this Unix ms",
        ),
        "ends_after" => (
            json!({ "type": "integer" }),
            "Windows ending after this Unix ms",
        ),
        "mode" => (
            json!({ "type": "string", "enum": ["merge", "replace"], "default": "merge" }),
            "replace deletes stored rules the document lacks",
        ),
        "device" => (json!({ "type": "string" }), "Rows that involve this device"),
        _ => (json!({ "type": "string" }), "Exact match"),
    };
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

fn operation(r: &RouteSpec) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    params.extend(r.query.iter().map(|q| query_param(q)));
    let error = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": reference("Error") } } });
    let mut responses = Map::new();
    let ok = match r.response {
        Some(schema) => {
            let media = if schema == "PrometheusText" {
                "application/openmetrics-text"
            } else {
                "application/json"
            };
            json!({ "description": "Success", "content": { media: { "schema": reference(schema) } } })
        }
        None => json!({ "description": "Success, no content" }),
    };
    responses.insert(r.status.to_string(), ok);
    if !r.query.is_empty() || r.body.is_some() {
        responses.insert("400".into(), error("Malformed request"));
    }
    if r.access != Access::Public {
        responses.insert("401".into(), error("No valid bearer token"));
        responses.insert("403".into(), error("The user's role does not allow this"));
    }
    if r.path.contains('{') {
        responses.insert("404".into(), error("No such row in the caller's tenant"));
    }
    if r.body.is_some() {
        responses.insert("413".into(), error("Body over the route's limit"));
        responses.insert("422".into(), error("Invalid input; nothing was changed"));
        if r.method != "GET" {
            responses.insert("409".into(), error("Conflicts with stored rows"));
        }
    }
    if r.path == "/api/v1/auth/login" {
        responses.insert(
            "401".into(),
            error("Invalid tenant, username or password (which one is not told)"),
        );
        responses.insert("429".into(), error("Too many attempts from this address"));
    }
    let mut op = json!({
        "tags": [r.tag],
        "summary": r.summary,
        "operationId": format!("{} {}", r.method, r.path),
        "parameters": params,
        "responses": responses,
        "x-required-role": r.access.describe(),
        "security": if r.access == Access::Public { json!([]) } else { json!([{ "bearer": [] }]) },
    });
    if let Some(body) = r.body {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": reference(body) } },
        });
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in route_specs() {
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.to_lowercase()] = operation(&r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ISPVisualMonitor API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Inventory, users and audit of ISPVisualMonitor. Log in with POST /api/v1/auth/login and send the token as `Authorization: Bearer <token>`. Every operation states the least role it needs in `x-required-role` (read_only < noc < admin; platform_admin for tenant management). See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        },
    })
}

fn num(description: &str) -> Value {
    json!({ "type": "number", "description": description })
}

fn nullable_num(description: &str) -> Value {
    json!({ "type": ["number", "null"], "description": description })
}

/// The documents of `/api/v1/cluster/…` (server/src/cluster_view/summary.rs).
fn cluster_schemas(m: &mut Map<String, Value>) {
    m.insert(
        "ClusterMember".into(),
        json!({ "type": "object", "properties": {
            "agent": s("Agent id"), "site": s("PoP"), "version": s(""), "capabilities": strings("routeros, snmp, syslog, icmp"),
            "generation": int("Changes when the agent restarts"),
            "state": one_of(&["live", "leaving", "dead", "unknown"], "live if any agent with a fresh report sees it live; unknown without fresh views"),
            "split_view": { "type": "boolean", "description": "Fresh reporters disagree on whether it is live (partition or detection in progress)" },
            "seen_live_by": int(""), "seen_leaving_by": int(""), "seen_dead_by": int(""),
            "phi_max": nullable_num("Highest failure-detector suspicion among fresh reporters"),
            "heartbeat": int(""), "live_for_s": num(""), "cert_expiry_s": int("Unix s; null if unknown"),
            "routers": int("Routers it polls"), "probes": int("Probe targets it probes"), "buffer_bytes": int("Undelivered data in its disk buffer"),
            "health": s("ok or a reason"),
            "report": { "type": ["object", "null"], "description": "The member's own newest report", "properties": {
                "generated_ms": int("Agent clock, Unix ms"), "received_ms": int("Server clock, Unix ms"), "age_s": num(""), "fresh": { "type": "boolean" },
            } },
        } }),
    );
    m.insert(
        "ClusterMemberList".into(),
        json!({ "type": "object", "properties": { "items": { "type": "array", "items": reference("ClusterMember") } } }),
    );
    m.insert(
        "ClusterOwnership".into(),
        json!({ "type": "object", "properties": {
            "replication": int("1 or 2"),
            "owners": { "type": "object", "additionalProperties": strings(""), "description": "Router → agents that poll it (fresh reports)" },
            "by_agent": { "type": "object", "additionalProperties": { "type": "integer" }, "description": "Agent → routers it polls" },
            "unowned": strings("Routers of clustered agents that no fresh reporter polls"),
            "over_replicated": strings("Routers polled by more agents than the replication factor"),
            "stale_reporters": strings("Agents whose last report is stale; their routers are not counted"),
            "recent_handovers": { "type": "array", "description": "ownership_change events, newest first", "items": { "type": "object", "properties": {
                "ts_ms": int("Unix ms"), "router": s(""), "agent": s(""), "change": one_of(&["acquired", "released"], ""), "owners": strings("Owners after the change"),
            } } },
        } }),
    );
    m.insert(
        "ClusterReachability".into(),
        json!({ "type": "object", "properties": {
            "vantages": strings("Agents with verdicts"), "targets": strings("Probe targets"),
            "target_views": { "type": "object", "additionalProperties": one_of(&["reachable", "partial", "unreachable", "unknown"], ""), "description": "Per target, from the fresh verdicts of every vantage" },
            "isolated_vantages": strings("Vantages that reach none of their targets: cut off themselves"),
            "cells": { "type": "array", "items": { "type": "object", "properties": {
                "vantage": s(""), "target": s(""), "loss_pct": num(""), "rtt_ms": nullable_num("null when nothing came back"),
                "at_s": int("Unix s"), "age_s": int(""), "fresh": { "type": "boolean" }, "relayed_by": s("Agent whose report delivered it"),
            } } },
        } }),
    );
    m.insert(
        "ClusterConvergence".into(),
        json!({ "type": "object", "properties": {
            "stale_after_s": int("A report older than this no longer counts"),
            "reporters_fresh": int(""), "reporters_stale": int(""),
            "members_live": int(""), "members_leaving": int(""), "members_dead": int(""), "members_unknown": int(""),
            "views_agree": { "type": "boolean", "description": "Every member's fresh views give it the same state" },
            "disagreements": strings("Members some fresh reporters see live and others do not (at most 50)"),
            "gossip_interval_ms": int(""), "phi_threshold": nullable_num(""),
            "expected_detection_ms": nullable_num("interval × phi: about how long a death takes to be declared"),
            "max_phi_of_live_members": nullable_num(""),
            "routers_owned": int(""), "routers_unowned": int(""), "routers_over_replicated": int(""),
            "ownership_settled": { "type": "boolean", "description": "No router unowned or over-replicated" },
            "last_handover_ms": int("Unix ms"), "reach_cells": int(""),
        } }),
    );
    m.insert(
        "ClusterSummary".into(),
        json!({ "type": "object", "properties": {
            "convergence": reference("ClusterConvergence"),
            "members": { "type": "array", "items": reference("ClusterMember") },
        } }),
    );
}
