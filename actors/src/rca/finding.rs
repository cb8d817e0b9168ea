//! What root-cause analysis concludes: causes, each with its kind, confidence, the
//! runner-up explanations, the evidence behind it and what it impacts.

use serde::{Deserialize, Serialize};

ispvm_proto::text_enum! {
    /// What kind of fault a cause is. The words are those of the scenario format.
    #[derive(utoipa::ToSchema)]
    pub enum CauseKind {
        /// A router is dead: nothing reaches it and its neighbours lost their links to it.
        DeviceDown = "device_down",
        /// A link is down and devices are cut off by it.
        LinkDown = "link_down",
        /// An upstream provider stopped carrying traffic.
        UpstreamLost = "upstream_lost",
        /// A BGP session is down while the path between its ends is fine.
        BgpDown = "bgp_down",
        /// The router forwards and answers pings, its API or SNMP does not.
        ManagementPlane = "management_plane",
        /// A monitoring agent died; its routers are fine (another agent took them over).
        AgentLost = "agent_lost",
        /// Every path into a site is lost.
        SiteIsolated = "site_isolated",
        /// A link runs at or near its capacity.
        Congestion = "congestion",
        /// A link is down but redundancy carries the traffic: nothing is cut off.
        RedundancyDegraded = "redundancy_degraded",
    }
}

/// The entity a cause names.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CauseEntity {
    Device {
        id: String,
    },
    Link {
        id: String,
    },
    /// An interface of a device (an uplink to an outside provider).
    Interface {
        device: String,
        interface: String,
    },
    /// A BGP session of a device.
    BgpSession {
        device: String,
        session: String,
        peer: String,
    },
    Site {
        id: String,
    },
    Agent {
        id: String,
    },
}

impl CauseEntity {
    /// The devices the entity names (both ends of a link need the topology instead).
    pub fn device(&self) -> Option<&str> {
        match self {
            CauseEntity::Device { id } => Some(id),
            CauseEntity::Interface { device, .. } | CauseEntity::BgpSession { device, .. } => {
                Some(device)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for CauseEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CauseEntity::Device { id } => write!(f, "{id}"),
            CauseEntity::Link { id } => write!(f, "link {id}"),
            CauseEntity::Interface { device, interface } => write!(f, "{device}:{interface}"),
            CauseEntity::BgpSession { device, peer, .. } => write!(f, "BGP {device} → {peer}"),
            CauseEntity::Site { id } => write!(f, "site:{id}"),
            CauseEntity::Agent { id } => write!(f, "agent:{id}"),
        }
    }
}

/// A cause: what failed and how.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Cause {
    pub kind: CauseKind,
    pub entity: CauseEntity,
}

/// One observation a cause explains, for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub at_ms: i64,
    /// Its weight in the score (ARCHITECTURE §3: an uplink interface down 10, ...).
    pub weight: f64,
    pub text: String,
}

/// Another explanation of (part of) the same observations, with its confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunnerUp {
    pub cause: Cause,
    pub confidence: f64,
}

/// What a cause takes down with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Impact {
    /// Devices cut off (the cause's own device included), sorted.
    pub devices: Vec<String>,
    /// Sites with at least one device cut off, sorted.
    pub sites: Vec<String>,
    /// Services that depend on what failed (declared `depends_on`), sorted.
    pub services: Vec<String>,
}

/// One root cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub cause: Cause,
    /// Coverage plus evidence weights, less contradictions.
    pub score: f64,
    /// The score over itself plus its best competitors', 0..=1.
    pub confidence: f64,
    pub runner_ups: Vec<RunnerUp>,
    /// Newest first is not promised: in the order the analysis found them.
    pub evidence: Vec<Evidence>,
    pub impact: Impact,
    /// Earliest observation it explains (the fault began no later).
    pub since_ms: i64,
    /// The entities that failed together, when the cause is made of several (the
    /// links into an isolated site).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<CauseEntity>,
    /// Devices some vantage lost because of this cause, impacted or not (a router the
    /// server still reaches but a cut-off agent did not), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_devices: Vec<String>,
    /// BGP sessions found down that this cause takes down, as `device/peer` (the
    /// entity id of their alerts): a dead route reflector's sessions on other routers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
}

/// The result of one analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    /// Observations no cause explains (each a short text).
    pub unexplained: Vec<String>,
}

impl Analysis {
    /// The finding whose impact holds `device` (the cause of its trouble), if any.
    pub fn explaining_device(&self, device: &str) -> Option<&Finding> {
        self.findings
            .iter()
            .find(|f| f.impact.devices.iter().any(|d| d == device))
    }
}
