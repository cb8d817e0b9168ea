//! The route table: every route the server answers, with the access it needs and what
//! the OpenAPI document says of it. [`build`] turns it into the router; nothing is
//! routed any other way.

use super::auth::{self, Access};
use super::{AppState, admin, alerts, cluster, devices, inventory, openapi, rules, settings};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Json, middleware};
use serde_json::json;

/// Body limit of ordinary routes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Body limit of an alert rule import.
pub const IMPORT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// What the table says of a route.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// With `{name}` path parameters.
    pub path: &'static str,
    pub access: Access,
    /// OpenAPI tag (one per resource).
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters it takes.
    pub query: &'static [&'static str],
    /// OpenAPI schema of the request body, if it takes one.
    pub body: Option<&'static str>,
    /// OpenAPI schema of a successful response; `None` with status 204.
    pub response: Option<&'static str>,
    /// Status of success.
    pub status: u16,
    pub body_limit: usize,
}

struct Route {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

impl Route {
    fn query(mut self, q: &'static [&'static str]) -> Self {
        self.spec.query = q;
        self
    }
    fn body(mut self, schema: &'static str) -> Self {
        self.spec.body = Some(schema);
        self
    }
    fn returns(mut self, schema: &'static str) -> Self {
        self.spec.response = Some(schema);
        self
    }
    fn created(mut self, schema: &'static str) -> Self {
        self.spec.response = Some(schema);
        self.spec.status = 201;
        self
    }
    fn limit(mut self, bytes: usize) -> Self {
        self.spec.body_limit = bytes;
        self
    }
}

fn route<H, T>(
    method: &'static str,
    path: &'static str,
    access: Access,
    tag: &'static str,
    summary: &'static str,
    handler: H,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = match method {
        "POST" => post(handler),
        "PATCH" => patch(handler),
        "DELETE" => delete(handler),
        _ => get(handler),
    };
    Route {
        spec: RouteSpec {
            method,
            path,
            access,
            tag,
            summary,
            query: &[],
            body: None,
            response: None,
            status: if method == "DELETE" { 204 } else { 200 },
            body_limit: BODY_LIMIT,
        },
        handler,
    }
}

/// The standard five routes of an id-keyed resource; `read` may list and get, `write`
/// may create, patch and delete.
#[allow(clippy::too_many_arguments)]
fn resource<L, LT, G, GT, C, CT, P, PT, D, DT>(
    base: &'static str,
    one: &'static str,
    tag: &'static str,
    schema: (&'static str, &'static str, &'static str, &'static str),
    query: &'static [&'static str],
    read: Access,
    write: Access,
    handlers: (L, G, C, P, D),
) -> Vec<Route>
where
    L: Handler<LT, AppState>,
    G: Handler<GT, AppState>,
    C: Handler<CT, AppState>,
    P: Handler<PT, AppState>,
    D: Handler<DT, AppState>,
    LT: 'static,
    GT: 'static,
    CT: 'static,
    PT: 'static,
    DT: 'static,
{
    let (item, list, create, patch) = schema;
    let (l, g, c, p, d) = handlers;
    vec![
        route("GET", base, read, tag, "List, filtered and paginated", l)
            .query(query)
            .returns(list),
        route("POST", base, write, tag, "Create", c)
            .body(create)
            .created(item),
        route("GET", one, read, tag, "Get one", g).returns(item),
        route("PATCH", one, write, tag, "Change (JSON merge patch)", p)
            .body(patch)
            .returns(item),
        route("DELETE", one, write, tag, "Delete", d),
    ]
}

use Access::{Platform, Public};
const READ: Access = Access::READ;
const NOC: Access = Access::NOC;
const ADMIN: Access = Access::ADMIN;

fn table() -> Vec<Route> {
    let mut r = vec![
        route(
            "GET",
            "/healthz",
            Public,
            "system",
            "Liveness and store health",
            healthz,
        )
        .returns("Health"),
        route(
            "GET",
            "/livez",
            Public,
            "system",
            "Liveness: the process serves requests (never fails for the store's sake, so an orchestrator does not restart a server because PostgreSQL is down)",
            livez,
        )
        .returns("Health"),
        route(
            "GET",
            "/readyz",
            Public,
            "system",
            "Readiness: the store answers (503 otherwise; a load balancer sends no traffic)",
            healthz,
        )
        .returns("Health"),
        route(
            "GET",
            "/metrics",
            Public,
            "system",
            "Prometheus metrics of the server",
            metrics,
        )
        .returns("PrometheusText"),
        route(
            "GET",
            "/api/v1/openapi.json",
            Public,
            "system",
            "This document",
            openapi_json,
        )
        .returns("OpenApiDocument"),
        route(
            "POST",
            "/api/v1/auth/login",
            Public,
            "auth",
            "Log in: a bearer token",
            auth::login,
        )
        .body("LoginRequest")
        .returns("LoginResponse"),
        route(
            "POST",
            "/api/v1/auth/logout",
            READ,
            "auth",
            "End this token's session",
            auth::logout,
        ),
        route(
            "GET",
            "/api/v1/auth/me",
            READ,
            "auth",
            "Who the token belongs to",
            auth::me,
        )
        .returns("Me"),
        route(
            "POST",
            "/api/v1/auth/password",
            READ,
            "auth",
            "Change one's own password (ends every session of the user)",
            auth::change_password,
        )
        .body("PasswordChange"),
        route(
            "GET",
            "/api/v1/tenants",
            READ,
            "tenants",
            "Tenants (platform admins: all; others: their own)",
            admin::list_tenants,
        )
        .query(admin::TENANT_PARAMS)
        .returns("TenantList"),
        route(
            "POST",
            "/api/v1/tenants",
            Platform,
            "tenants",
            "Create a tenant, optionally with its first admin",
            admin::create_tenant,
        )
        .body("TenantCreate")
        .created("Tenant"),
        route(
            "GET",
            "/api/v1/tenants/{id}",
            READ,
            "tenants",
            "Get a tenant (one's own, or any for platform admins)",
            admin::get_tenant,
        )
        .returns("Tenant"),
        route(
            "PATCH",
            "/api/v1/tenants/{id}",
            Platform,
            "tenants",
            "Rename a tenant",
            admin::patch_tenant,
        )
        .body("TenantPatch")
        .returns("Tenant"),
    ];
    r.extend(resource(
        "/api/v1/users",
        "/api/v1/users/{id}",
        "users",
        ("User", "UserList", "UserCreate", "UserPatch"),
        admin::USER_PARAMS,
        ADMIN,
        ADMIN,
        (
            admin::list_users,
            admin::get_user,
            admin::create_user,
            admin::patch_user,
            admin::delete_user,
        ),
    ));
    r.extend(resource(
        "/api/v1/sites",
        "/api/v1/sites/{id}",
        "sites",
        ("Site", "SiteList", "SiteCreate", "SitePatch"),
        inventory::SITE_PARAMS,
        READ,
        NOC,
        (
            inventory::list_sites,
            inventory::get_site,
            inventory::create_site,
            inventory::patch_site,
            inventory::delete_site,
        ),
    ));
    r.extend(resource(
        "/api/v1/devices",
        "/api/v1/devices/{id}",
        "devices",
        ("DeviceView", "DeviceList", "DeviceCreate", "DevicePatch"),
        devices::LIST_PARAMS,
        READ,
        NOC,
        (
            devices::list_devices,
            devices::get_device,
            devices::create_device,
            devices::patch_device,
            devices::delete_device,
        ),
    ));
    r.extend([
        route(
            "GET",
            "/api/v1/devices/{id}/interfaces",
            READ,
            "interfaces",
            "A device's interfaces",
            devices::list_device_interfaces,
        )
        .query(devices::DEVICE_INTERFACE_PARAMS)
        .returns("InterfaceList"),
        route(
            "GET",
            "/api/v1/devices/{id}/interfaces/{name}",
            READ,
            "interfaces",
            "One interface",
            devices::get_interface,
        )
        .returns("Interface"),
        route(
            "PATCH",
            "/api/v1/devices/{id}/interfaces/{name}",
            NOC,
            "interfaces",
            "Set the uplink flag",
            devices::patch_interface,
        )
        .body("InterfacePatch")
        .returns("Interface"),
        route(
            "GET",
            "/api/v1/interfaces",
            READ,
            "interfaces",
            "Interfaces of every device",
            devices::list_interfaces,
        )
        .query(devices::INTERFACE_PARAMS)
        .returns("InterfaceList"),
    ]);
    r.extend(resource(
        "/api/v1/links",
        "/api/v1/links/{id}",
        "links",
        ("Link", "LinkList", "LinkCreate", "LinkPatch"),
        inventory::LINK_PARAMS,
        READ,
        NOC,
        (
            inventory::list_links,
            inventory::get_link,
            inventory::create_link,
            inventory::patch_link,
            inventory::delete_link,
        ),
    ));
    r.extend(resource(
        "/api/v1/topology/edges",
        "/api/v1/topology/edges/{id}",
        "topology",
        (
            "TopologyEdge",
            "TopologyEdgeList",
            "TopologyEdgeCreate",
            "TopologyEdgePatch",
        ),
        inventory::EDGE_PARAMS,
        READ,
        NOC,
        (
            inventory::list_edges,
            inventory::get_edge,
            inventory::create_edge,
            inventory::patch_edge,
            inventory::delete_edge,
        ),
    ));
    r.extend(resource(
        "/api/v1/services",
        "/api/v1/services/{id}",
        "services",
        ("Service", "ServiceList", "ServiceCreate", "ServicePatch"),
        inventory::SERVICE_PARAMS,
        READ,
        NOC,
        (
            inventory::list_services,
            inventory::get_service,
            inventory::create_service,
            inventory::patch_service,
            inventory::delete_service,
        ),
    ));
    r.extend([
        route(
            "GET",
            "/api/v1/agents",
            READ,
            "agents",
            "Agents as ingest knows them",
            inventory::list_agents,
        )
        .query(inventory::AGENT_PARAMS)
        .returns("AgentList"),
        route(
            "GET",
            "/api/v1/agents/{id}",
            READ,
            "agents",
            "One agent",
            inventory::get_agent,
        )
        .returns("Agent"),
        route(
            "GET",
            "/api/v1/events",
            READ,
            "events",
            "The newest events",
            inventory::list_events,
        )
        .query(inventory::EVENT_PARAMS)
        .returns("EventList"),
        route(
            "GET",
            "/api/v1/cluster",
            READ,
            "cluster",
            "The agent cluster: convergence figures and members, merged from every agent's report",
            cluster::summary,
        )
        .returns("ClusterSummary"),
        route(
            "GET",
            "/api/v1/cluster/members",
            READ,
            "cluster",
            "Cluster members: state, failure-detector phi, heartbeat, version, certificate expiry",
            cluster::members,
        )
        .returns("ClusterMemberList"),
        route(
            "GET",
            "/api/v1/cluster/ownership",
            READ,
            "cluster",
            "Which agents poll which router; unowned and over-replicated routers; recent handovers",
            cluster::ownership,
        )
        .returns("ClusterOwnership"),
        route(
            "GET",
            "/api/v1/cluster/reachability",
            READ,
            "cluster",
            "The multi-vantage reachability matrix (vantage agent × probe target)",
            cluster::reachability,
        )
        .returns("ClusterReachability"),
        route(
            "GET",
            "/api/v1/cluster/convergence",
            READ,
            "cluster",
            "Whether the agents' views agree, ownership settled, detection timing",
            cluster::convergence,
        )
        .returns("ClusterConvergence"),
        route(
            "GET",
            "/api/v1/alerts",
            READ,
            "alerts",
            "Alerts that are not OK (pending, firing, recovering, suppressed), with their explanations",
            alerts::list_alerts,
        )
        .query(alerts::ALERT_PARAMS)
        .returns("AlertList"),
        route(
            "GET",
            "/api/v1/alerts/notifications",
            READ,
            "alerts",
            "Alert notifications after an id, oldest first",
            alerts::list_notifications,
        )
        .query(alerts::NOTIFICATION_PARAMS)
        .returns("AlertNotificationList"),
    ]);
    r.extend(resource(
        "/api/v1/credential-sets",
        "/api/v1/credential-sets/{id}",
        "credential-sets",
        (
            "CredentialSet",
            "CredentialSetList",
            "CredentialSetCreate",
            "CredentialSetPatch",
        ),
        settings::CREDENTIAL_PARAMS,
        READ,
        ADMIN,
        (
            settings::list_credentials,
            settings::get_credential,
            settings::create_credential,
            settings::patch_credential,
            settings::delete_credential,
        ),
    ));
    r.extend(resource(
        "/api/v1/polling-profiles",
        "/api/v1/polling-profiles/{id}",
        "polling-profiles",
        (
            "PollingProfile",
            "PollingProfileList",
            "PollingProfileCreate",
            "PollingProfilePatch",
        ),
        settings::PROFILE_PARAMS,
        READ,
        ADMIN,
        (
            settings::list_profiles,
            settings::get_profile,
            settings::create_profile,
            settings::patch_profile,
            settings::delete_profile,
        ),
    ));
    r.extend(resource(
        "/api/v1/maintenance-windows",
        "/api/v1/maintenance-windows/{id}",
        "maintenance-windows",
        (
            "MaintenanceWindow",
            "MaintenanceWindowList",
            "MaintenanceWindowCreate",
            "MaintenanceWindowPatch",
        ),
        settings::MAINTENANCE_PARAMS,
        READ,
        NOC,
        (
            settings::list_maintenance,
            settings::get_maintenance,
            settings::create_maintenance,
            settings::patch_maintenance,
            settings::delete_maintenance,
        ),
    ));
    r.extend([
        route(
            "GET",
            "/api/v1/alert-rules/export",
            READ,
            "alert-rules",
            "Every rule as one document",
            rules::export_rules,
        )
        .returns("AlertRuleDocument"),
        route(
            "POST",
            "/api/v1/alert-rules/import",
            ADMIN,
            "alert-rules",
            "Import a document: all rules valid, or nothing changes",
            rules::import_rules,
        )
        .query(rules::IMPORT_PARAMS)
        .body("AlertRuleDocument")
        .returns("ImportOutcome")
        .limit(IMPORT_BODY_LIMIT),
    ]);
    r.extend(resource(
        "/api/v1/alert-rules",
        "/api/v1/alert-rules/{id}",
        "alert-rules",
        (
            "AlertRule",
            "AlertRuleList",
            "AlertRuleBody",
            "AlertRulePatch",
        ),
        rules::RULE_PARAMS,
        READ,
        ADMIN,
        (
            rules::list_rules,
            rules::get_rule,
            rules::create_rule,
            rules::patch_rule,
            rules::delete_rule,
        ),
    ));
    r.push(
        route(
            "GET",
            "/api/v1/audit",
            ADMIN,
            "audit",
            "The audit log, newest first",
            admin::list_audit,
        )
        .query(admin::AUDIT_PARAMS)
        .returns("AuditList"),
    );
    r
}

/// What the table says of every route (the OpenAPI document and tests read it).
pub fn route_specs() -> Vec<RouteSpec> {
    table().into_iter().map(|r| r.spec).collect()
}

/// Whether changes to a route's resource are read by the actor tree (rules, inventory,
/// maintenance), so a successful write must make the tenant's actors reload.
fn feeds_the_domain(tag: &str) -> bool {
    matches!(
        tag,
        "alert-rules"
            | "devices"
            | "interfaces"
            | "links"
            | "maintenance-windows"
            | "sites"
            | "tenants"
    )
}

/// The router: each route behind the auth layer with its access rule and body limit.
pub(super) fn build(state: AppState) -> Router {
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for r in table() {
        let guarded = r
            .handler
            .route_layer(DefaultBodyLimit::max(r.spec.body_limit))
            .route_layer(middleware::from_fn_with_state(
                (state.clone(), r.spec.access, feeds_the_domain(r.spec.tag)),
                auth::authorize,
            ));
        match paths.iter_mut().find(|(p, _)| *p == r.spec.path) {
            Some((_, m)) => {
                let prev = std::mem::take(m);
                *m = prev.merge(guarded);
            }
            None => paths.push((r.spec.path, guarded)),
        }
    }
    let mut router = Router::new();
    for (path, m) in paths {
        router = router.route(path, m);
    }
    let edge = std::sync::Arc::clone(&state.edge);
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(edge, super::edge::guard))
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such route", "code": "not_found" })),
    )
        .into_response()
}

async fn livez() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(json!({ "status": "ok", "store": s.store.engine() })).into_response(),
        Err(e) => {
            // The error (host names, user names, paths) goes to the log, not to whoever
            // asks: this endpoint needs no login.
            tracing::warn!(error = %e, "health check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "degraded",
                    "store": s.store.engine(),
                    "error": "the store does not answer",
                })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, ispvm_proto::OPENMETRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
}

async fn openapi_json() -> Response {
    Json(openapi::document()).into_response()
}
