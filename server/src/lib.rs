//! The ISPVisualMonitor server: ingest of agent batches over QUIC with mutual TLS, the
//! store (SQLite embedded, PostgreSQL in production), the HTTP API and /metrics, the dev
//! PKI, and (with the default `sim` feature) the demo of a virtual ISP.

pub mod app;
pub mod cluster_view;
pub mod config;
#[cfg(feature = "sim")]
pub mod demo;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod pki;
pub mod store;
pub mod telemetry;
