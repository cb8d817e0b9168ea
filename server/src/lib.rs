//! The ISPVisualMonitor server: ingest of agent batches over QUIC and HTTPS with mutual
//! TLS, the store (SQLite embedded, PostgreSQL in production), the per-tenant actor tree
//! fed by ingest, the HTTP API with its auth and /metrics, cluster views merged from the
//! agents' reports. [`app::start`] composes them; the `ispvm` command (crate
//! `ispvm-cli`) is where the server meets the agent and the simulator for the demo.

pub mod app;
pub mod cluster_view;
pub mod config;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod internal_events;
pub mod notify;
pub mod pki;
pub mod store;
