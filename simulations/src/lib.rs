//! A virtual ISP for ISPVisualMonitor: simulated MikroTik routers that speak the real
//! RouterOS API (the binary word/sentence protocol of TCP 8728), each on its own loopback
//! port, with values that move like a real network's.
//!
//! `ispvm demo` runs [`Topology::demo`] so the product has something to watch without any
//! hardware, and the agent's RouterOS client is tested against it over real TCP.
//!
//! - [`topology`]: the TOML description of sites, routers, interfaces and links.
//! - [`isp`]: [`VirtualIsp`], which binds and serves every router.
//! - [`router_state`]: what a router reports, as a pure function of time.
//! - [`traffic`]: the diurnal traffic curves behind interface counters.
//! - [`api_session`]: one API connection (login, tags, dispatch, `!fatal`).
//! - [`commands`]: the table of command paths a router answers.
//!
//! Production code must not need this crate (`ispvm` links it behind its `sim` feature).

pub mod api_session;
pub mod boards;
pub mod commands;
pub mod isp;
pub mod ros_format;
pub mod router_state;
pub mod seed;
pub mod topology;
pub mod traffic;

pub use isp::{RunningRouter, VirtualIsp};
pub use topology::{
    Credentials, InterfaceSpec, LinkSpec, RosVersion, RouterSpec, Site, Topology, TopologyError,
};
