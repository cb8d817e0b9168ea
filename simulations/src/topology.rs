//! The description of a virtual ISP: sites (PoPs), routers, their interfaces and the links
//! between them, read from a TOML file.
//!
//! A topology is data only; [`crate::VirtualIsp::start`] turns it into listening routers.
//! It is validated as a whole when parsed so that a typo in a scenario file is reported
//! as one clear error instead of a router that silently answers with nonsense.
//!
//! # File format
//!
//! Unknown fields are rejected everywhere (a misspelt `speed_mpbs` is an error, not a
//! silently ignored line).
//!
//! ```toml
//! # Free text, shown by `ispvm demo` and in logs.                         (required)
//! name = "Demo ISP"
//!
//! # Login every router accepts unless it sets its own `credentials`.      (optional)
//! # Defaults to username "monitor", password "monitor-secret".
//! [credentials]
//! username = "monitor"
//! password = "monitor-secret"
//!
//! # One table per point of presence.                                       (0 or more)
//! [[sites]]
//! id = "lis1"            # unique among sites; referenced by routers       (required)
//! name = "Lisbon"        # human name                                      (required)
//! lat = 38.7369          # WGS84 degrees, north positive                   (required)
//! lon = -9.1426          # WGS84 degrees, east positive; also sets the     (required)
//!                        # local solar time that drives the diurnal traffic curve
//!
//! # One table per simulated MikroTik router.                               (0 or more)
//! [[routers]]
//! id = "lis1-core1"      # unique among routers, must not contain ':'     (required)
//! identity = "LIS1-CORE1"  # answered by /system/identity/print            (required)
//! site = "lis1"          # id of an existing site                          (required)
//! role = "core"          # core | agg | access | edge | customer_edge |    (required)
//!                        # upstream | route_reflector | pppoe_concentrator
//!                        # (the role shapes CPU load and PPPoE sessions)
//! ros_version = "7.16.1" # RouterOS version, MAJOR.MINOR[.PATCH]; 6.x and  (required)
//!                        # 7.x change formats of dates and health sensors
//! board = "CCR2216-1G-12XS-2XQ"  # RouterBOARD model; known models get     (required)
//!                        # their real CPU, memory and storage, others a generic profile
//!                        # (a version below 6.43 also switches /login to the MD5
//!                        # challenge flow; 7.18 and later answer an empty print `!empty`)
//! # Per-router login, overriding the top-level one.                        (optional)
//! credentials = { username = "api-ro", password = "s3cret" }
//! pppoe_subscribers = 1850  # PPPoE sessions at the evening peak          (optional)
//!                        # (/ppp/active); default: a PPPoE concentrator picks 700..1900
//!                        # from its id, other roles have none
//! dhcp_leases = 180      # leases of its DHCP server (/ip/dhcp-server/lease); (optional)
//!                        # default: no DHCP server
//!
//! # Interfaces in the order /interface/print lists them (`.id` *1, *2, ...). (0 or more)
//! [[routers.interfaces]]
//! name = "sfp28-1"       # unique within the router, as RouterOS names it  (required)
//! kind = "ether"         # RouterOS `type`: ether, vlan, bridge, bond,     (required)
//!                        # pppoe-in, loopback, ...
//! speed_mbps = 25000     # line rate; traffic is a fraction of it. 0 means  (required)
//!                        # a virtual interface, modelled as 1 Gbit/s
//! uplink = true          # faces the upstream / the core (default false);  (optional)
//!                        # interfaces with no link and `uplink = true` get a
//!                        # public transit address and download-heavy traffic
//!
//! # Point-to-point links between two router interfaces.                    (0 or more)
//! [[links]]
//! a = "lis1-core1:sfp28-1"   # "router_id:interface_name" of an existing    (required)
//! b = "lis1-core2:sfp-sfpplus1"  # interface; an interface is in at most one link
//! capacity_mbps = 10000      # > 0; the traffic on the link never exceeds   (required)
//!                            # it nor the speed of either end
//! ospf_area = "0"            # OSPF adjacency over the link while it is up  (optional)
//!                            # ("0" prints as `backbone` on RouterOS 7); default none
//!
//! # Control-plane timers, in seconds.                                       (optional)
//! [settings]
//! bgp_hold_time_s = 90   # a BGP session survives losing its path or peer   (default 90)
//!                        # this long; longer outages take it down
//! converge_s = 5         # OSPF and BGP come back this long after the cause  (default 5)
//! reboot_s = 60          # a rebooting router is unreachable this long       (default 60)
//!
//! # BGP sessions.                                                           (0 or more)
//! [[bgp]]
//! router = "lis1-edge1"      # the router it is configured on               (required)
//! peer_router = "lis1-rr1"   # the other end if simulated (the session then  (one of
//!                            # shows on both routers), or                    these two)
//! peer_address = "203.0.113.1"  # the other end's IPv4 address if not simulated
//! peer_as = 64496            # remote AS                                     (required)
//! local_as = 64500           # local AS                                      (required)
//! kind = "ebgp"              # "ibgp" | "ebgp"                                (required)
//! via = "lis1-edge1:sfp-sfpplus2"  # "router:interface" the session depends (optional)
//!                            # on: down (cut, upstream lost, neighbour off) for longer
//!                            # than the hold time takes the session down. An eBGP
//!                            # session's addresses are those of the link (an external
//!                            # peer's /30 is numbered from `peer_address`); otherwise
//!                            # the routers' loopbacks
//! prefixes = 950000          # prefixes `router` receives when established  (default 0)
//! peer_prefixes = 40         # prefixes `peer_router` receives (only with    (optional)
//!                            # peer_router); default 12..400 from the ids
//! name = "transit-a"         # session name; default "to-<peer>"             (optional)
//!
//! # Addresses the monitoring should probe; data only (no ICMP is answered). (0 or more)
//! [[probe_targets]]
//! id = "transit-a"           # unique, non-empty                             (required)
//! address = "203.0.113.1"    # IPv4 or IPv6                                  (required)
//! site = "lis1"              # an existing site                              (optional)
//!
//! # Faults applied by `VirtualIsp::start`, relative to its start.           (0 or more)
//! [[timeline]]
//! at_s = 30                  # seconds after start, >= 0                     (required)
//! duration_s = 120           # cleared this long after; default: never      (optional)
//! fault = { kind = "link_cut", a = "lis1-core1:sfp28-6", b = "cbr1-agg1:sfp28-1" }
//! # kinds and their fields (see `crate::faults::Fault`):
//! #   link_cut { a, b }              router_down { router }
//! #   bgp_shut { router, peer }      (peer: router id or address)
//! #   upstream_loss { router, interface }
//! #   congestion { a, b, utilisation }  (0..=1 of the link's capacity)
//! #   management_down { router }     slow_api { router, delay_ms }
//! #   flaky_api { router, drop_per_mille }   reboot { router }
//! #   site_partition { site }        (every link with exactly one end in the
//! #                                   site is cut at once; an unknown site is an error)
//! ```
//!
//! Both ends of a link see the same traffic (what one end transmits the other receives),
//! and each link gets a `/30` from `10.255.0.0/16` in `/ip/address/print`.

use crate::faults::{Fault, FaultError};
use ispvm_proto::DeviceRole;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

/// A user name and password a router accepts on its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Default for Credentials {
    /// The read-only API account the demo and the agent's tests use.
    fn default() -> Self {
        Credentials {
            username: "monitor".to_owned(),
            password: "monitor-secret".to_owned(),
        }
    }
}

/// A point of presence: where routers stand on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

/// One simulated MikroTik router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSpec {
    pub id: String,
    /// The RouterOS system identity (`/system/identity`), often upper case on real routers.
    pub identity: String,
    /// Id of the [`Site`] the router stands in.
    pub site: String,
    pub role: DeviceRole,
    /// RouterOS version, e.g. `7.16.1` or `6.49.15`.
    pub ros_version: String,
    /// RouterBOARD model, e.g. `CCR2216-1G-12XS-2XQ`.
    pub board: String,
    /// Login for this router only; `None` means the topology's [`Topology::credentials`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// PPPoE subscribers online at the evening peak; `None` lets a PPPoE concentrator pick
    /// a plausible number from its id (and every other role have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pppoe_subscribers: Option<u32>,
    /// DHCP leases the router's DHCP server holds; `None` means no DHCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_leases: Option<u32>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceSpec>,
}

/// One interface of a router, listed by `/interface/print` in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSpec {
    pub name: String,
    /// RouterOS interface type: `ether`, `vlan`, `bridge`, `pppoe-in`, ...
    pub kind: String,
    /// Line rate; 0 for a virtual interface (modelled as 1 Gbit/s).
    pub speed_mbps: u64,
    /// Faces the upstream or the core; monitoring rules may scope to uplinks only.
    #[serde(default)]
    pub uplink: bool,
}

/// A point-to-point link between two router interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// `router_id:interface_name`.
    pub a: String,
    /// `router_id:interface_name`.
    pub b: String,
    pub capacity_mbps: u64,
    /// OSPF area of the adjacency over this link (`"0"` is the backbone); `None` means no
    /// OSPF on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ospf_area: Option<String>,
}

impl LinkSpec {
    /// The `(router_id, interface_name)` of end `a`, if the endpoint is well formed.
    pub fn endpoint_a(&self) -> Option<(&str, &str)> {
        split_endpoint(&self.a)
    }

    /// The `(router_id, interface_name)` of end `b`, if the endpoint is well formed.
    pub fn endpoint_b(&self) -> Option<(&str, &str)> {
        split_endpoint(&self.b)
    }
}

fn split_endpoint(endpoint: &str) -> Option<(&str, &str)> {
    endpoint
        .split_once(':')
        .filter(|(router, iface)| !router.is_empty() && !iface.is_empty())
}

/// A whole virtual ISP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub name: String,
    /// Login every router accepts unless it sets its own.
    #[serde(default)]
    pub credentials: Credentials,
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub routers: Vec<RouterSpec>,
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// Timers of the simulated control plane.
    #[serde(default)]
    pub settings: Settings,
    /// BGP sessions, configured on `router` (and mirrored on `peer_router` if simulated).
    #[serde(default)]
    pub bgp: Vec<BgpSpec>,
    /// Addresses the agents should probe (data only: the simulator does not answer ICMP).
    #[serde(default)]
    pub probe_targets: Vec<ProbeTarget>,
    /// Faults applied at fixed times after [`crate::VirtualIsp::start`].
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// How `ispvm scenario run` runs the file (see [`crate::scenario`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<crate::scenario::ScenarioSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<crate::scenario::MaintenanceSpec>,
    /// What the monitoring must conclude about the timeline's faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<crate::scenario::ExpectSpec>,
}

/// Timers of the simulated control plane, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How long a BGP session survives losing its path (RouterOS default 180 s; many
    /// ISPs use 90). A session whose path comes back sooner never goes down.
    pub bgp_hold_time_s: f64,
    /// How long OSPF and BGP take to come back once their cause clears.
    pub converge_s: f64,
    /// How long a rebooting router is unreachable before it answers again.
    pub reboot_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bgp_hold_time_s: 90.0,
            converge_s: 5.0,
            reboot_s: 60.0,
        }
    }
}

/// Internal or external BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BgpKind {
    Ibgp,
    Ebgp,
}

/// One BGP session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpSpec {
    /// The router the session is configured on.
    pub router: String,
    /// The other end when it is simulated too (the session then shows on both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_router: Option<String>,
    /// The other end's address when it is not simulated (an upstream, an IX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<Ipv4Addr>,
    pub peer_as: u32,
    pub local_as: u32,
    pub kind: BgpKind,
    /// `router:interface` the session's path depends on: when it is down for longer
    /// than the hold time, the session goes down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Prefixes `router` receives over the session when established.
    #[serde(default)]
    pub prefixes: u32,
    /// Prefixes `peer_router` receives (only with `peer_router`); `None` picks a small
    /// number from the ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_prefixes: Option<u32>,
    /// Session name; `None` derives one from the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An address the monitoring should probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTarget {
    pub id: String,
    pub address: IpAddr,
    /// Site the target belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The router whose address this is: a scenario probes that router (its echo
    /// endpoint) and the monitoring knows which device the probe checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<String>,
}

/// A fault to apply `at_s` seconds after start, cleared `duration_s` later (if given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    pub at_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    pub fault: Fault,
}

/// Why a topology file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("topology is not valid TOML for this format: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("a site has an empty id")]
    EmptySiteId,
    #[error("site id {0:?} is used twice")]
    DuplicateSite(String),
    #[error("a router has an empty id")]
    EmptyRouterId,
    #[error("router id {0:?} contains ':', which separates router and interface in links")]
    ColonInRouterId(String),
    #[error("router id {0:?} is used twice")]
    DuplicateRouter(String),
    #[error("router {router:?} is in site {site:?}, which is not defined in [[sites]]")]
    UnknownSite { router: String, site: String },
    #[error("router {router:?} has RouterOS version {version:?}; expected MAJOR.MINOR[.PATCH]")]
    BadVersion { router: String, version: String },
    #[error("router {router:?} has an interface with an empty name")]
    EmptyInterfaceName { router: String },
    #[error("router {router:?} has interface {interface:?} twice")]
    DuplicateInterface { router: String, interface: String },
    #[error("link endpoint {0:?} is not of the form \"router_id:interface_name\"")]
    BadEndpoint(String),
    #[error("link endpoint {endpoint:?} names router {router:?}, which is not defined")]
    UnknownRouter { endpoint: String, router: String },
    #[error("link endpoint {endpoint:?}: router {router:?} has no interface {interface:?}")]
    UnknownInterface {
        endpoint: String,
        router: String,
        interface: String,
    },
    #[error("interface {0:?} is an endpoint of more than one link")]
    InterfaceInTwoLinks(String),
    #[error("link {a:?} - {b:?} connects an interface to itself")]
    SelfLink { a: String, b: String },
    #[error("link {a:?} - {b:?} has a capacity of 0 Mbit/s")]
    ZeroCapacity { a: String, b: String },
    #[error("BGP session {index} (on {router:?}): {reason}")]
    BadBgp {
        index: usize,
        router: String,
        reason: String,
    },
    #[error("probe target {id:?}: {reason}")]
    BadProbeTarget { id: String, reason: String },
    #[error("settings: {0} must be a finite number >= 0")]
    BadSetting(&'static str),
    #[error("timeline entry {index}: {reason}")]
    BadTimeline { index: usize, reason: String },
    #[error("timeline entry {index}: {source}")]
    TimelineFault {
        index: usize,
        #[source]
        source: FaultError,
    },
}

/// A RouterOS version as numbers, for version-dependent behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RosVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl RosVersion {
    /// Parses `7.16.1`, `6.49` (patch 0); anything else is `None`.
    pub fn parse(text: &str) -> Option<RosVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RosVersion {
            major,
            minor,
            patch,
        })
    }
}

impl Topology {
    /// Parses and validates a topology file (format in the module documentation).
    pub fn from_toml(text: &str) -> Result<Topology, TopologyError> {
        let topology: Topology = toml::from_str(text)?;
        topology.validate()?;
        Ok(topology)
    }

    /// The ready-made small ISP of `topologies/demo-isp.toml` used by `ispvm demo`.
    pub fn demo() -> Topology {
        // The file is compiled in and parsed by a unit test, so failing here is a bug in
        // this crate, never a condition a caller could handle.
        Topology::from_toml(include_str!("../topologies/demo-isp.toml"))
            .expect("the built-in demo topology is valid (checked by tests)")
    }

    /// Ids of all sites, in file order.
    pub fn site_ids(&self) -> Vec<String> {
        self.sites.iter().map(|s| s.id.clone()).collect()
    }

    /// The site with this id.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    /// The router with this id.
    pub fn router(&self, id: &str) -> Option<&RouterSpec> {
        self.routers.iter().find(|r| r.id == id)
    }

    /// The login a router accepts: its own, else the topology's.
    pub fn credentials_for(&self, router: &RouterSpec) -> Credentials {
        router
            .credentials
            .clone()
            .unwrap_or_else(|| self.credentials.clone())
    }

    /// Checks that ids are unique and every reference points at something that exists.
    ///
    /// [`Topology::from_toml`] calls this; call it yourself on a topology built in code.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let mut sites = HashSet::new();
        for site in &self.sites {
            if site.id.is_empty() {
                return Err(TopologyError::EmptySiteId);
            }
            if !sites.insert(site.id.as_str()) {
                return Err(TopologyError::DuplicateSite(site.id.clone()));
            }
        }

        let mut routers: HashMap<&str, HashSet<&str>> = HashMap::new();
        for router in &self.routers {
            if router.id.is_empty() {
                return Err(TopologyError::EmptyRouterId);
            }
            if router.id.contains(':') {
                return Err(TopologyError::ColonInRouterId(router.id.clone()));
            }
            if routers.contains_key(router.id.as_str()) {
                return Err(TopologyError::DuplicateRouter(router.id.clone()));
            }
            if !sites.contains(router.site.as_str()) {
                return Err(TopologyError::UnknownSite {
                    router: router.id.clone(),
                    site: router.site.clone(),
                });
            }
            if RosVersion::parse(&router.ros_version).is_none() {
                return Err(TopologyError::BadVersion {
                    router: router.id.clone(),
                    version: router.ros_version.clone(),
                });
            }
            let mut names = HashSet::new();
            for iface in &router.interfaces {
                if iface.name.is_empty() {
                    return Err(TopologyError::EmptyInterfaceName {
                        router: router.id.clone(),
                    });
                }
                if !names.insert(iface.name.as_str()) {
                    return Err(TopologyError::DuplicateInterface {
                        router: router.id.clone(),
                        interface: iface.name.clone(),
                    });
                }
            }
            routers.insert(router.id.as_str(), names);
        }

        let mut used = HashSet::new();
        for link in &self.links {
            for endpoint in [&link.a, &link.b] {
                let (router, interface) = split_endpoint(endpoint)
                    .ok_or_else(|| TopologyError::BadEndpoint(endpoint.clone()))?;
                let names = routers
                    .get(router)
                    .ok_or_else(|| TopologyError::UnknownRouter {
                        endpoint: endpoint.clone(),
                        router: router.to_owned(),
                    })?;
                if !names.contains(interface) {
                    return Err(TopologyError::UnknownInterface {
                        endpoint: endpoint.clone(),
                        router: router.to_owned(),
                        interface: interface.to_owned(),
                    });
                }
            }
            if link.a == link.b {
                return Err(TopologyError::SelfLink {
                    a: link.a.clone(),
                    b: link.b.clone(),
                });
            }
            for endpoint in [&link.a, &link.b] {
                if !used.insert(endpoint.as_str()) {
                    return Err(TopologyError::InterfaceInTwoLinks(endpoint.clone()));
                }
            }
            if link.capacity_mbps == 0 {
                return Err(TopologyError::ZeroCapacity {
                    a: link.a.clone(),
                    b: link.b.clone(),
                });
            }
        }
        self.validate_control_plane(&routers, &sites)?;
        Ok(())
    }

    /// Settings, BGP sessions, probe targets and the timeline.
    fn validate_control_plane(
        &self,
        routers: &HashMap<&str, HashSet<&str>>,
        sites: &HashSet<&str>,
    ) -> Result<(), TopologyError> {
        let s = &self.settings;
        for (name, value) in [
            ("bgp_hold_time_s", s.bgp_hold_time_s),
            ("converge_s", s.converge_s),
            ("reboot_s", s.reboot_s),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(TopologyError::BadSetting(name));
            }
        }
        for (index, session) in self.bgp.iter().enumerate() {
            let bad = |reason: String| TopologyError::BadBgp {
                index,
                router: session.router.clone(),
                reason,
            };
            if !routers.contains_key(session.router.as_str()) {
                return Err(bad("no such router".to_owned()));
            }
            match (&session.peer_router, &session.peer_address) {
                (Some(peer), None) => {
                    if !routers.contains_key(peer.as_str()) {
                        return Err(bad(format!("peer_router {peer:?} is not defined")));
                    }
                    if peer == &session.router {
                        return Err(bad("peer_router is the router itself".to_owned()));
                    }
                }
                (None, Some(_)) => {
                    if session.peer_prefixes.is_some() {
                        return Err(bad("peer_prefixes needs peer_router".to_owned()));
                    }
                }
                _ => {
                    return Err(bad(
                        "set exactly one of peer_router and peer_address".to_owned()
                    ));
                }
            }
            if let Some(via) = &session.via {
                let known = split_endpoint(via)
                    .is_some_and(|(r, i)| routers.get(r).is_some_and(|names| names.contains(i)));
                if !known {
                    return Err(bad(format!(
                        "via {via:?} is not an existing router:interface"
                    )));
                }
            }
        }
        for target in &self.probe_targets {
            if target.id.is_empty() {
                return Err(TopologyError::BadProbeTarget {
                    id: String::new(),
                    reason: "empty id".to_owned(),
                });
            }
            if let Some(site) = &target.site
                && !sites.contains(site.as_str())
            {
                return Err(TopologyError::BadProbeTarget {
                    id: target.id.clone(),
                    reason: format!("site {site:?} is not defined"),
                });
            }
            if let Some(router) = &target.router
                && !routers.contains_key(router.as_str())
            {
                return Err(TopologyError::BadProbeTarget {
                    id: target.id.clone(),
                    reason: format!("router {router:?} is not defined"),
                });
            }
        }
        for (index, entry) in self.timeline.iter().enumerate() {
            let finite_positive = |v: f64| v.is_finite() && v >= 0.0;
            if !finite_positive(entry.at_s) || !entry.duration_s.is_none_or(finite_positive) {
                return Err(TopologyError::BadTimeline {
                    index,
                    reason: "at_s and duration_s must be finite numbers >= 0".to_owned(),
                });
            }
            entry
                .fault
                .check(self)
                .map_err(|source| TopologyError::TimelineFault { index, source })?;
        }
        Ok(())
    }

    /// The link with these two endpoints, in either order, and its index.
    pub fn link_between(&self, a: &str, b: &str) -> Option<(usize, &LinkSpec)> {
        self.links
            .iter()
            .enumerate()
            .find(|(_, l)| (l.a == a && l.b == b) || (l.a == b && l.b == a))
    }

    /// Whether `router_id:interface_name` names an existing interface.
    pub fn has_interface(&self, router: &str, interface: &str) -> bool {
        self.router(router)
            .is_some_and(|r| r.interfaces.iter().any(|i| i.name == interface))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        name = "tiny"
        [[sites]]
        id = "a"
        name = "A"
        lat = 1.0
        lon = 2.0
        [[routers]]
        id = "r1"
        identity = "R1"
        site = "a"
        role = "core"
        ros_version = "7.16.1"
        board = "CCR2116-12G-4S+"
        [[routers.interfaces]]
        name = "ether1"
        kind = "ether"
        speed_mbps = 1000
        [[routers]]
        id = "r2"
        identity = "R2"
        site = "a"
        role = "pppoe_concentrator"
        ros_version = "6.49.15"
        board = "CCR1036-8G-2S+"
        credentials = { username = "u", password = "p" }
        [[routers.interfaces]]
        name = "ether1"
        kind = "ether"
        speed_mbps = 1000
        uplink = true
        [[links]]
        a = "r1:ether1"
        b = "r2:ether1"
        capacity_mbps = 1000
    "#;

    #[test]
    fn demo_parses_and_is_a_realistic_isp() {
        let t = Topology::demo();
        assert_eq!(t.sites.len(), 3);
        assert!((10..=14).contains(&t.routers.len()), "{}", t.routers.len());
        let count = |role| t.routers.iter().filter(|r| r.role == role).count();
        assert_eq!(count(DeviceRole::Core), 2);
        assert_eq!(count(DeviceRole::RouteReflector), 1);
        assert_eq!(count(DeviceRole::Edge), 2);
        assert_eq!(count(DeviceRole::PppoeConcentrator), 2);
        assert!(count(DeviceRole::Agg) >= 2);
        assert!(
            t.routers
                .iter()
                .filter(|r| r.ros_version.starts_with("6."))
                .count()
                >= 2
        );
        for r in &t.routers {
            assert!((3..=8).contains(&r.interfaces.len()), "{}", r.id);
        }
        for r in t.routers.iter().filter(|r| r.role == DeviceRole::Edge) {
            assert!(r.interfaces.iter().any(|i| i.uplink), "{}", r.id);
        }
        assert!(!t.links.is_empty());
        assert_eq!(t.site_ids(), vec!["lis1", "cbr1", "evr1"]);
        assert_eq!(t.credentials, Credentials::default());
    }

    #[test]
    fn small_topology_fields() {
        let t = Topology::from_toml(SMALL).expect("valid");
        assert_eq!(t.credentials.username, "monitor");
        assert_eq!(t.routers[1].role, DeviceRole::PppoeConcentrator);
        assert_eq!(t.credentials_for(&t.routers[1]).username, "u");
        assert_eq!(t.credentials_for(&t.routers[0]).password, "monitor-secret");
        assert!(!t.routers[0].interfaces[0].uplink);
        assert!(t.routers[1].interfaces[0].uplink);
        assert_eq!(t.links[0].endpoint_b(), Some(("r2", "ether1")));
    }

    fn err(text: &str) -> TopologyError {
        match Topology::from_toml(text) {
            Ok(_) => panic!("accepted an invalid topology"),
            Err(e) => e,
        }
    }

    #[test]
    fn unknown_site_is_refused() {
        let e = err(&SMALL.replace(
            "site = \"a\"\n        role = \"core\"",
            "site = \"zz\"\n        role = \"core\"",
        ));
        assert!(
            matches!(&e, TopologyError::UnknownSite { router, site } if router == "r1" && site == "zz"),
            "{e}"
        );
        assert!(e.to_string().contains("\"zz\""));
    }

    #[test]
    fn duplicate_router_is_refused() {
        let e = err(&SMALL.replace("id = \"r2\"", "id = \"r1\""));
        assert!(
            matches!(&e, TopologyError::DuplicateRouter(id) if id == "r1"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_site_is_refused() {
        let text = SMALL.replace(
            "[[routers]]\n        id = \"r1\"",
            "[[sites]]\n        id = \"a\"\n        name = \"A2\"\n        lat = 0.0\n        lon = 0.0\n        [[routers]]\n        id = \"r1\"",
        );
        assert!(matches!(err(&text), TopologyError::DuplicateSite(id) if id == "a"));
    }

    #[test]
    fn link_to_missing_interface_is_refused() {
        let e = err(&SMALL.replace("b = \"r2:ether1\"", "b = \"r2:ether9\""));
        assert!(
            matches!(&e, TopologyError::UnknownInterface { router, interface, .. } if router == "r2" && interface == "ether9"),
            "{e}"
        );
        assert!(e.to_string().contains("no interface \"ether9\""), "{e}");
        let e = err(&SMALL.replace("b = \"r2:ether1\"", "b = \"r9:ether1\""));
        assert!(matches!(&e, TopologyError::UnknownRouter { router, .. } if router == "r9"));
        let e = err(&SMALL.replace("b = \"r2:ether1\"", "b = \"r2\""));
        assert!(matches!(&e, TopologyError::BadEndpoint(ep) if ep == "r2"));
    }

    #[test]
    fn other_mistakes_are_refused() {
        assert!(matches!(
            err(&SMALL.replace("b = \"r2:ether1\"", "b = \"r1:ether1\"")),
            TopologyError::SelfLink { .. }
        ));
        assert!(matches!(
            err(&SMALL.replace("capacity_mbps = 1000", "capacity_mbps = 0")),
            TopologyError::ZeroCapacity { .. }
        ));
        assert!(matches!(
            err(&SMALL.replace("\"7.16.1\"", "\"seven\"")),
            TopologyError::BadVersion { .. }
        ));
        assert!(matches!(
            err(&SMALL.replace("speed_mbps = 1000\n        [[routers]]", "speed_mbps = 1000\n        [[routers.interfaces]]\n        name = \"ether1\"\n        kind = \"ether\"\n        speed_mbps = 1\n        [[routers]]")),
            TopologyError::DuplicateInterface { .. }
        ));
        // Typos in field names and unknown roles are parse errors, not silent defaults.
        assert!(matches!(
            err(&SMALL.replace(
                "speed_mbps = 1000\n        uplink",
                "speed_mpbs = 1000\n        uplink"
            )),
            TopologyError::Parse(_)
        ));
        assert!(matches!(
            err(&SMALL.replace("role = \"core\"", "role = \"spine\"")),
            TopologyError::Parse(_)
        ));
    }

    #[test]
    fn control_plane_of_the_demo_and_its_mistakes() {
        let t = Topology::demo();
        assert_eq!(t.settings, Settings::default());
        assert_eq!(t.bgp.iter().filter(|b| b.kind == BgpKind::Ibgp).count(), 6);
        let transit: Vec<_> = t.bgp.iter().filter(|b| b.kind == BgpKind::Ebgp).collect();
        assert!(transit.len() >= 2 && transit.iter().all(|b| b.prefixes > 100_000));
        assert!(t.links.iter().filter(|l| l.ospf_area.is_some()).count() >= 10);
        assert!(t.probe_targets.len() >= 3);
        assert!(t.routers.iter().any(|r| r.ros_version.starts_with("6.40")));
        assert!(t.timeline.is_empty());

        let with = |extra: &str| Topology::from_toml(&format!("{SMALL}\n{extra}"));
        let ok = with(
            "[[bgp]]\nrouter = \"r1\"\npeer_router = \"r2\"\npeer_as = 1\nlocal_as = 1\nkind = \"ibgp\"\nvia = \"r1:ether1\"",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let both = with(
            "[[bgp]]\nrouter = \"r1\"\npeer_router = \"r2\"\npeer_address = \"192.0.2.1\"\npeer_as = 1\nlocal_as = 1\nkind = \"ibgp\"",
        );
        assert!(matches!(both, Err(TopologyError::BadBgp { .. })));
        let bad_via = with(
            "[[bgp]]\nrouter = \"r1\"\npeer_address = \"192.0.2.1\"\npeer_as = 1\nlocal_as = 2\nkind = \"ebgp\"\nvia = \"r1:ether7\"",
        );
        assert!(matches!(bad_via, Err(TopologyError::BadBgp { .. })));
        let bad_site = with("[[probe_targets]]\nid = \"x\"\naddress = \"9.9.9.9\"\nsite = \"zz\"");
        assert!(matches!(
            bad_site,
            Err(TopologyError::BadProbeTarget { .. })
        ));
        let bad_setting = with("[settings]\nbgp_hold_time_s = -1");
        assert!(matches!(bad_setting, Err(TopologyError::BadSetting(_))));
        let bad_fault =
            with("[[timeline]]\nat_s = 1\nfault = { kind = \"reboot\", router = \"r9\" }");
        assert!(matches!(
            bad_fault,
            Err(TopologyError::TimelineFault { index: 0, .. })
        ));
        let bad_partition =
            with("[[timeline]]\nat_s = 1\nfault = { kind = \"site_partition\", site = \"zz\" }");
        assert!(matches!(
            bad_partition,
            Err(TopologyError::TimelineFault { index: 0, .. })
        ));
    }

    #[test]
    fn versions() {
        assert_eq!(
            RosVersion::parse("6.49"),
            Some(RosVersion {
                major: 6,
                minor: 49,
                patch: 0
            })
        );
        assert!(RosVersion::parse("7.16.1").is_some_and(|v| v.major == 7 && v.patch == 1));
        assert_eq!(RosVersion::parse("7"), None);
        assert_eq!(RosVersion::parse("7.1.2.3"), None);
        assert_eq!(RosVersion::parse("7.x"), None);
    }
}
