//! A virtual ISP for ISPVisualMonitor: simulated MikroTik routers that speak the real
//! RouterOS API (the binary word/sentence protocol of TCP 8728, and API-SSL on TLS), each
//! on its own loopback ports, with values that move like a real network's and faults
//! that change what every router reports, consistently.
//!
//! `ispvm demo` runs [`Topology::demo`] so the product has something to watch without any
//! hardware, and the agent's RouterOS client is tested against it over real TCP.
//!
//! - [`topology`]: the TOML description of sites, routers, links, BGP, timeline.
//! - [`isp`]: [`VirtualIsp`], which binds and serves every router.
//! - [`network`]: the live state shared by all routers (models plus fault log).
//! - [`faults`]: what can go wrong, and the log of what did.
//! - [`attach`]: which router each endpoint stands on, by its source address.
//! - [`paths`]: whether two routers reach each other now, with what loss and delay.
//! - [`echo`]: the UDP echo service of every router (path-aware pings).
//! - [`relay`]: UDP and TCP relays that carry other services' traffic along paths.
//! - [`routing`]: BGP sessions, OSPF adjacencies, neighbour discovery.
//! - [`router_state`]: what a healthy router reports, as a pure function of time.
//! - [`traffic`]: the diurnal traffic curves behind interface counters.
//! - [`api_session`]: one API connection (login, tags, dispatch, listens, `!fatal`).
//! - [`commands`], [`menus`], [`routing_menus`]: the command paths a router answers.
//! - [`legacy_login`], [`listen`], [`tls`]: pre-6.43 login, streaming, API-SSL.
//! - [`generated`]: large generated topologies for scale tests.
//!
//! Production code must not need this crate (`ispvm` links it behind its `sim` feature).

pub mod api_session;
pub mod attach;
pub mod boards;
pub mod commands;
pub mod echo;
pub mod faults;
pub mod generated;
pub mod isp;
pub mod legacy_login;
pub mod listen;
pub mod menus;
pub mod network;
pub mod paths;
pub mod relay;
pub mod ros_format;
pub mod router_state;
pub mod routing;
pub mod routing_menus;
pub mod scenario;
pub mod seed;
pub mod tls;
pub mod topology;
pub mod traffic;

pub use attach::{AttachError, Attachment};
pub use faults::{Fault, FaultError, FaultId, FaultRecord};
pub use isp::{RunningRouter, VirtualIsp};
pub use network::Network;
pub use paths::{PathQuality, Reach};
pub use topology::{
    BgpKind, BgpSpec, Credentials, InterfaceSpec, LinkSpec, ProbeTarget, RosVersion, RouterSpec,
    Settings, Site, TimelineEntry, Topology, TopologyError,
};
