//! The agent in the agents' gossip cluster: configuration ([`config`]), the service that
//! keeps router ownership and pollers in step with the membership ([`service`]), its
//! metrics, and the cluster-state API ([`http`]).

pub mod config;
pub mod http;
pub mod report;
pub mod service;

pub use crate::internal_events::cluster::ClusterMetrics;
pub use config::ClusterConfig;
pub use service::ClusterHandle;
