//! The server's HTTP surface: `/healthz`, `/metrics` and the API under `/api/v1/`.
//!
//! Every route is declared once in [`routes`] with the access it needs; the router, the
//! authorisation layer and the OpenAPI document are all built from that table, so a
//! route cannot be served without a declared access rule or be missing from the
//! document. Handlers only translate between HTTP and the store or the domain; the
//! tenant always comes from the authenticated user, never from the request.

mod admin;
mod alerts;
pub mod auth;
mod cluster;
mod common;
mod devices;
pub mod edge;
mod incidents;
mod inventory;
mod notifications;
pub mod openapi;
mod routes;
mod rules;
mod settings;

pub use auth::{Access, AuthSetupError, Principal, hash_password};
pub use common::ApiError;
pub use routes::{RouteSpec, route_specs};

use crate::config::AuthConfig;
use crate::internal_events::ServerMetrics;
use crate::store::{MasterKey, Store, TenantSettings};
use axum::Router;
use ispvm_actors::StatusPolicy;
use ispvm_actors::tree::MonitorTree;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<ServerMetrics>,
    pub status: StatusPolicy,
    /// Password hashing, sessions, login throttling.
    pub auth: Arc<auth::Auth>,
    /// Seals credential secrets; `None` refuses to store them.
    pub master_key: Option<MasterKey>,
    /// Quotas of tenants without their own settings.
    pub tenant_defaults: TenantSettings,
    /// The actor tree, told to reload a tenant after any change through the API so
    /// rules, inventory and maintenance windows take effect at once.
    pub tree: Option<MonitorTree>,
    /// The tenants' agent clusters, merged from the agents' reports.
    pub cluster: crate::cluster_view::ClusterViews,
    /// Connection and request limits, trusted proxies.
    pub edge: Arc<edge::Edge>,
}

impl AppState {
    pub fn new(
        store: Store,
        metrics: Arc<ServerMetrics>,
        status: StatusPolicy,
        auth: &AuthConfig,
        master_key: Option<MasterKey>,
        tenant_defaults: TenantSettings,
    ) -> Result<Self, AuthSetupError> {
        Ok(AppState {
            cluster: crate::cluster_view::ClusterViews::new(store.clone(), metrics.clone()),
            store,
            metrics,
            status,
            auth: Arc::new(auth::Auth::new(auth)?),
            master_key,
            tenant_defaults,
            tree: None,
            edge: Arc::new(edge::Edge::default()),
        })
    }

    /// Applies `[http]`'s limits and trusted proxies.
    pub fn with_http(mut self, config: &crate::config::HttpConfig) -> Self {
        self.edge = Arc::new(edge::Edge::from_config(config));
        self
    }

    /// Connects the API to the running actor tree.
    pub fn with_tree(mut self, tree: MonitorTree) -> Self {
        self.tree = Some(tree);
        self
    }
}

/// The router of every route in [`routes`], each behind its access check.
pub fn router(state: AppState) -> Router {
    routes::build(state)
}

pub use edge::serve;
