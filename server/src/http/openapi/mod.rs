//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! Paths, methods, parameters and the role each operation needs come from the route
//! table itself ([`super::route_specs`]), so the document lists exactly what is served;
//! the schemas come from the Rust types each route reads and writes ([`schema`]), so it
//! says exactly what they hold.

pub mod schema;

use super::auth::Access;
use super::routes::{RouteSpec, route_specs};
use serde_json::{Map, Value, json};

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
    let error_schema = schema::ApiSchema::of::<super::common::ErrorBody>().reference();
    let error = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": error_schema } } });
    let mut responses = Map::new();
    let ok = match &r.response {
        Some(schema) => {
            json!({ "description": "Success", "content": { schema.media_type: { "schema": schema.reference() } } })
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
    if let Some(body) = &r.body {
        op["requestBody"] = json!({
            "required": true,
            "content": { body.media_type: { "schema": body.reference() } },
        });
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schema::ApiSchema::of::<super::common::ErrorBody>().add_to(&mut schemas);
    for r in route_specs() {
        let item = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        item[r.method.to_lowercase()] = operation(&r);
        for s in r.body.iter().chain(r.response.iter()) {
            s.add_to(&mut schemas);
        }
    }
    loosen_composed(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ISPVisualMonitor API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Inventory, users and audit of ISPVisualMonitor. Log in with POST /api/v1/auth/login and send the token as `Authorization: Bearer <token>`. Every operation states the least role it needs in `x-required-role` (read_only < noc < admin; platform_admin for tenant management). See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        },
    })
}

/// A body type that refuses unknown fields (`deny_unknown_fields`) says
/// `additionalProperties: false`, right where it is the whole body. Where a stored form
/// flattens it (`allOf` of it and more fields), that would refuse the other members, so
/// a schema used inside an `allOf` leaves the check to the standalone create and patch
/// forms, which keep it.
fn loosen_composed(schemas: &mut Map<String, Value>) {
    fn composed_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(parts)) = o.get("allOf") {
                    for p in parts {
                        if let Some(r) = p.get("$ref").and_then(Value::as_str)
                            && let Some(name) = r.strip_prefix("#/components/schemas/")
                        {
                            out.push(name.to_owned());
                        }
                    }
                }
                o.values().for_each(|x| composed_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| composed_refs(x, out)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    for v in schemas.values() {
        composed_refs(v, &mut names);
    }
    for name in names {
        if let Some(Value::Object(o)) = schemas.get_mut(&name)
            && o.get("additionalProperties") == Some(&Value::Bool(false))
        {
            o.remove("additionalProperties");
        }
    }
}
