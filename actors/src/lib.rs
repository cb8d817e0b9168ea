//! The monitoring domain of ISPVisualMonitor.
//!
//! Domain decisions live here, free of HTTP and SQL, so they can be tested with plain
//! values: device status, reachability, the alert engine and its rules ([`alert`]), and
//! the server's actor tree ([`tree`]: a supervisor per tenant, router, probe-target and
//! link actors, the alert engine as an actor), which reaches the store only through the
//! [`tree::DomainStore`] port; the topology model ([`topology`]: what depends on what,
//! and what a fault impacts), on which the correlator of issue 13 (root cause,
//! incidents) is being built.

pub mod alert;
pub mod correlate;
pub mod incident;
pub mod rca;
pub mod reach;
pub mod status;
pub mod topology;
pub mod tree;

pub use status::{DeviceStatus, StatusPolicy};
