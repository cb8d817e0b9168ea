//! The route table: every route the server answers, with the access it needs and what
//! the OpenAPI document says of it. [`build`] turns it into the router; nothing is
//! routed any other way.

use super::auth::{self, Access};
use super::openapi::schema::ApiSchema;
use super::{
    AppState, admin, alerts, cluster, devices, incidents, inventory, notifications, openapi, rules,
    settings,
};
use crate::cluster_view::{Convergence, MemberSummary, OwnershipSummary, ReachSummary};
use crate::notify::channel::ChannelSpec;
use crate::notify::delivery::DeliveryRow;
use crate::store::audit::AuditEntry;
use crate::store::catalog::{
    AlertRule, Channel, CredentialSet, CredentialSpec, DeviceSpec, EdgeSpec, ImportOutcome, Link,
    LinkSpec, MaintenanceSpec, MaintenanceWindow, PollingProfile, ProfileSpec, RuleDocument,
    Service, ServiceSpec, Site, SiteSpec, TopologyEdge,
};
use crate::store::tenants::{Tenant, TenantSpec};
use crate::store::users::{User, UserSpec};
use crate::store::{AgentRow, AlertRow, EventRow, IncidentRow, InterfaceRow, NotificationRow};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum::{Json, middleware};
use ispvm_actors::alert::Rule;
use ispvm_actors::incident::Incident;
use utoipa::ToSchema;

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
    /// The type of the request body, if it takes one.
    pub body: Option<ApiSchema>,
    /// The type of a successful answer; `None` with status 204.
    pub response: Option<ApiSchema>,
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
    fn takes(mut self, schema: ApiSchema) -> Self {
        self.spec.body = Some(schema);
        self
    }
    fn returns(mut self, schema: ApiSchema) -> Self {
        self.spec.response = Some(schema);
        self
    }
    fn created(mut self, schema: ApiSchema) -> Self {
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
    schema: Crud,
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
    let Crud {
        item,
        list,
        create,
        patch,
    } = schema;
    let (l, g, c, p, d) = handlers;
    vec![
        route("GET", base, read, tag, "List, filtered and paginated", l)
            .query(query)
            .returns(list),
        route("POST", base, write, tag, "Create", c)
            .takes(create)
            .created(item.clone()),
        route("GET", one, read, tag, "Get one", g).returns(item.clone()),
        route("PATCH", one, write, tag, "Change (JSON merge patch)", p)
            .takes(patch)
            .returns(item),
        route("DELETE", one, write, tag, "Delete", d),
    ]
}

/// The schemas of an id-keyed resource: what it is, a page of them, and what creates
/// and changes one.
struct Crud {
    item: ApiSchema,
    list: ApiSchema,
    create: ApiSchema,
    patch: ApiSchema,
}

impl Crud {
    /// A resource whose operator-set fields are `Spec` and whose stored form is `Item`.
    fn of<Spec: ToSchema, Item: ToSchema>() -> Self {
        Crud {
            item: ApiSchema::of::<Item>(),
            list: ApiSchema::list_of::<Item>(),
            create: ApiSchema::create_of::<Spec>(),
            patch: ApiSchema::patch_of::<Spec>(),
        }
    }
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
        .returns(ApiSchema::of::<Health>()),
        route(
            "GET",
            "/livez",
            Public,
            "system",
            "Liveness: the process serves requests (never fails for the store's sake, so an orchestrator does not restart a server because PostgreSQL is down)",
            livez,
        )
        .returns(ApiSchema::of::<Health>()),
        route(
            "GET",
            "/readyz",
            Public,
            "system",
            "Readiness: the store answers (503 otherwise; a load balancer sends no traffic)",
            healthz,
        )
        .returns(ApiSchema::of::<Health>()),
        route(
            "GET",
            "/metrics",
            Public,
            "system",
            "Prometheus metrics of the server",
            metrics,
        )
        .returns(ApiSchema::served_as::<PrometheusText>(ispvm_proto::OPENMETRICS_CONTENT_TYPE)),
        route(
            "GET",
            "/api/v1/openapi.json",
            Public,
            "system",
            "This document",
            openapi_json,
        )
        .returns(ApiSchema::of::<OpenApiDocument>()),
        route(
            "POST",
            "/api/v1/auth/login",
            Public,
            "auth",
            "Log in: a bearer token",
            auth::login,
        )
        .takes(ApiSchema::of::<auth::LoginRequest>())
        .returns(ApiSchema::of::<auth::LoginResponse>()),
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
        .returns(ApiSchema::of::<auth::Me>()),
        route(
            "POST",
            "/api/v1/auth/password",
            READ,
            "auth",
            "Change one's own password (ends every session of the user)",
            auth::change_password,
        )
        .takes(ApiSchema::of::<auth::PasswordChange>()),
        route(
            "GET",
            "/api/v1/tenants",
            READ,
            "tenants",
            "Tenants (platform admins: all; others: their own)",
            admin::list_tenants,
        )
        .query(admin::TENANT_PARAMS)
        .returns(ApiSchema::list_of::<Tenant>()),
        route(
            "POST",
            "/api/v1/tenants",
            Platform,
            "tenants",
            "Create a tenant, optionally with its first admin",
            admin::create_tenant,
        )
        .takes(ApiSchema::create_with::<TenantSpec, admin::NewTenant>())
        .created(ApiSchema::of::<Tenant>()),
        route(
            "GET",
            "/api/v1/tenants/{id}",
            READ,
            "tenants",
            "Get a tenant (one's own, or any for platform admins)",
            admin::get_tenant,
        )
        .returns(ApiSchema::of::<Tenant>()),
        route(
            "PATCH",
            "/api/v1/tenants/{id}",
            Platform,
            "tenants",
            "Rename a tenant",
            admin::patch_tenant,
        )
        .takes(ApiSchema::patch_of::<TenantSpec>())
        .returns(ApiSchema::of::<Tenant>()),
    ];
    r.extend(resource(
        "/api/v1/users",
        "/api/v1/users/{id}",
        "users",
        Crud {
            create: ApiSchema::create_with::<UserSpec, admin::NewUser>(),
            patch: ApiSchema::patch_with::<UserSpec, admin::NewPassword>(),
            ..Crud::of::<UserSpec, User>()
        },
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
        Crud::of::<SiteSpec, Site>(),
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
        Crud::of::<DeviceSpec, devices::DeviceView>(),
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
        .returns(ApiSchema::list_of::<InterfaceRow>()),
        route(
            "GET",
            "/api/v1/devices/{id}/interfaces/{name}",
            READ,
            "interfaces",
            "One interface",
            devices::get_interface,
        )
        .returns(ApiSchema::of::<InterfaceRow>()),
        route(
            "PATCH",
            "/api/v1/devices/{id}/interfaces/{name}",
            NOC,
            "interfaces",
            "Set the uplink flag",
            devices::patch_interface,
        )
        .takes(ApiSchema::of::<devices::InterfacePatch>())
        .returns(ApiSchema::of::<InterfaceRow>()),
        route(
            "GET",
            "/api/v1/interfaces",
            READ,
            "interfaces",
            "Interfaces of every device",
            devices::list_interfaces,
        )
        .query(devices::INTERFACE_PARAMS)
        .returns(ApiSchema::list_of::<InterfaceRow>()),
    ]);
    r.extend(resource(
        "/api/v1/links",
        "/api/v1/links/{id}",
        "links",
        Crud::of::<LinkSpec, Link>(),
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
        Crud::of::<EdgeSpec, TopologyEdge>(),
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
        Crud::of::<ServiceSpec, Service>(),
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
        .returns(ApiSchema::list_of::<AgentRow>()),
        route(
            "GET",
            "/api/v1/agents/{id}",
            READ,
            "agents",
            "One agent",
            inventory::get_agent,
        )
        .returns(ApiSchema::of::<AgentRow>()),
        route(
            "GET",
            "/api/v1/events",
            READ,
            "events",
            "The newest events",
            inventory::list_events,
        )
        .query(inventory::EVENT_PARAMS)
        .returns(ApiSchema::list_of::<EventRow>()),
        route(
            "GET",
            "/api/v1/cluster",
            READ,
            "cluster",
            "The agent cluster: convergence figures and members, merged from every agent's report",
            cluster::summary,
        )
        .returns(ApiSchema::of::<cluster::ClusterSummary>()),
        route(
            "GET",
            "/api/v1/cluster/members",
            READ,
            "cluster",
            "Cluster members: state, failure-detector phi, heartbeat, version, certificate expiry",
            cluster::members,
        )
        .returns(ApiSchema::list_of::<MemberSummary>()),
        route(
            "GET",
            "/api/v1/cluster/ownership",
            READ,
            "cluster",
            "Which agents poll which router; unowned and over-replicated routers; recent handovers",
            cluster::ownership,
        )
        .returns(ApiSchema::of::<OwnershipSummary>()),
        route(
            "GET",
            "/api/v1/cluster/reachability",
            READ,
            "cluster",
            "The multi-vantage reachability matrix (vantage agent × probe target)",
            cluster::reachability,
        )
        .returns(ApiSchema::of::<ReachSummary>()),
        route(
            "GET",
            "/api/v1/cluster/convergence",
            READ,
            "cluster",
            "Whether the agents' views agree, ownership settled, detection timing",
            cluster::convergence,
        )
        .returns(ApiSchema::of::<Convergence>()),
        route(
            "GET",
            "/api/v1/alerts",
            READ,
            "alerts",
            "Alerts that are not OK (pending, firing, recovering, suppressed), with their explanations",
            alerts::list_alerts,
        )
        .query(alerts::ALERT_PARAMS)
        .returns(ApiSchema::list_of::<AlertRow>()),
        route(
            "GET",
            "/api/v1/alerts/notifications",
            READ,
            "alerts",
            "Alert notifications after an id, oldest first",
            alerts::list_notifications,
        )
        .query(alerts::NOTIFICATION_PARAMS)
        .returns(ApiSchema::list_of::<NotificationRow>()),
        route(
            "GET",
            "/api/v1/incidents",
            READ,
            "incidents",
            "Incidents newest first: one per real fault, with its root cause and confidence",
            incidents::list_incidents,
        )
        .query(incidents::LIST_PARAMS)
        .returns(ApiSchema::list_of::<IncidentRow>()),
        route(
            "GET",
            "/api/v1/incidents/{id}",
            READ,
            "incidents",
            "One incident: root cause, runner-ups, evidence, impact, member and suppressed alerts, timeline",
            incidents::get_incident,
        )
        .returns(ApiSchema::of::<Incident>()),
        route(
            "POST",
            "/api/v1/incidents/{id}/ack",
            NOC,
            "incidents",
            "Acknowledge, optionally silencing notifications, optionally until a time",
            incidents::ack_incident,
        )
        .takes(ApiSchema::of::<incidents::AckBody>())
        .returns(ApiSchema::of::<Incident>()),
        route(
            "DELETE",
            "/api/v1/incidents/{id}/ack",
            NOC,
            "incidents",
            "Withdraw the acknowledgement",
            incidents::unack_incident,
        )
        .returns(ApiSchema::of::<Incident>()),
        route(
            "POST",
            "/api/v1/incidents/{id}/assign",
            NOC,
            "incidents",
            "Assign to a user (null: to nobody)",
            incidents::assign_incident,
        )
        .takes(ApiSchema::of::<incidents::AssignBody>())
        .returns(ApiSchema::of::<Incident>()),
        route(
            "POST",
            "/api/v1/incidents/{id}/notes",
            NOC,
            "incidents",
            "Add a note",
            incidents::note_incident,
        )
        .takes(ApiSchema::of::<incidents::NoteBody>())
        .returns(ApiSchema::of::<Incident>()),
    ]);
    r.extend(resource(
        "/api/v1/credential-sets",
        "/api/v1/credential-sets/{id}",
        "credential-sets",
        Crud {
            create: ApiSchema::create_with::<CredentialSpec, settings::SecretField>(),
            patch: ApiSchema::patch_with::<CredentialSpec, settings::SecretField>(),
            ..Crud::of::<CredentialSpec, CredentialSet>()
        },
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
        Crud::of::<ProfileSpec, PollingProfile>(),
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
        Crud::of::<MaintenanceSpec, MaintenanceWindow>(),
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
        .returns(ApiSchema::of::<RuleDocument>()),
        route(
            "POST",
            "/api/v1/alert-rules/import",
            ADMIN,
            "alert-rules",
            "Import a document: all rules valid, or nothing changes",
            rules::import_rules,
        )
        .query(rules::IMPORT_PARAMS)
        .takes(ApiSchema::of::<RuleDocument>())
        .returns(ApiSchema::of::<ImportOutcome>())
        .limit(IMPORT_BODY_LIMIT),
    ]);
    r.extend(resource(
        "/api/v1/alert-rules",
        "/api/v1/alert-rules/{id}",
        "alert-rules",
        Crud {
            create: ApiSchema::of::<Rule>(),
            patch: ApiSchema::patch_of::<Rule>(),
            ..Crud::of::<Rule, AlertRule>()
        },
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
    r.extend(resource(
        "/api/v1/notification-channels",
        "/api/v1/notification-channels/{id}",
        "notifications",
        Crud {
            create: ApiSchema::create_with::<ChannelSpec, notifications::ChannelSecretField>(),
            patch: ApiSchema::patch_with::<ChannelSpec, notifications::ChannelSecretField>(),
            ..Crud::of::<ChannelSpec, Channel>()
        },
        notifications::CHANNEL_PARAMS,
        ADMIN,
        ADMIN,
        (
            notifications::list_channels,
            notifications::get_channel,
            notifications::create_channel,
            notifications::patch_channel,
            notifications::delete_channel,
        ),
    ));
    r.push(
        route(
            "GET",
            "/api/v1/notification-deliveries",
            READ,
            "notifications",
            "Incident notifications: one per transition and channel, with state (pending, sent, failed, silenced, maintenance), attempts and the last error; newest incident first",
            notifications::list_deliveries,
        )
        .query(notifications::DELIVERY_PARAMS)
        .returns(ApiSchema::list_of::<DeliveryRow>()),
    );
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
        .returns(ApiSchema::list_of::<AuditEntry>()),
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
        Json(super::common::ErrorBody {
            error: "no such route".into(),
            code: super::common::ErrorCode::NotFound,
            field: None,
        }),
    )
        .into_response()
}

ispvm_proto::text_enum! {
    /// Whether the server can do its work.
    #[derive(utoipa::ToSchema)]
    pub enum HealthStatus {
        Ok = "ok",
        /// It runs, but the store does not answer.
        Degraded = "degraded",
    }
}

/// The answer of `/healthz`, `/livez` and `/readyz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    status: HealthStatus,
    /// `sqlite` or `postgres`; absent from `/livez`, which does not ask the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    /// What is wrong, without the store's own words (they may name hosts and users).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// The OpenMetrics text exposition.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PrometheusText(String);

/// An OpenAPI 3.1 document: this one.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OpenApiDocument(serde_json::Map<String, serde_json::Value>);

async fn livez() -> Response {
    Json(Health {
        status: HealthStatus::Ok,
        store: None,
        error: None,
    })
    .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(Health {
            status: HealthStatus::Ok,
            store: Some(s.store.engine()),
            error: None,
        })
        .into_response(),
        Err(e) => {
            // The error (host names, user names, paths) goes to the log, not to whoever
            // asks: this endpoint needs no login.
            tracing::warn!(error = %e, "health check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: HealthStatus::Degraded,
                    store: Some(s.store.engine()),
                    error: Some("the store does not answer"),
                }),
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
