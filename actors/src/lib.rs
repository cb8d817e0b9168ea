//! The monitoring domain of ISPVisualMonitor.
//!
//! Domain decisions live here, free of HTTP and SQL, so they can be tested with plain
//! values and reused by the server's actor tree as it grows (per-tenant supervisors,
//! router / probe-target / link actors, the alert engine and the correlator).

pub mod alert;
pub mod reach;
pub mod status;
pub mod tree;

pub use status::{DeviceStatus, StatusPolicy};
