//! The composition root of ISPVisualMonitor: what the `ispvm` command wires together.
//!
//! The server, the agent and the simulator are libraries that know nothing of each
//! other; this crate is where they meet: the demo ([`demo`], a virtual ISP monitored end
//! to end by real agents and a real server), the scenario runner ([`scenario`]: the same
//! world, faults on a timeline, the conclusions judged) and the end-to-end tests in
//! `tests/`.

#[cfg(feature = "sim")]
pub mod demo;
#[cfg(feature = "sim")]
pub mod scenario;
