//! What root-cause analysis is given: where the vantages sit and what each saw, plus the
//! signals the routers report about their own links and sessions.
//!
//! Everything here is an observation at a time, never a conclusion: "agent-lis1 got no
//! ping reply from lis1-core2", "lis1-core1 says sfp28-1 is not running". The analysis
//! decides what they mean together. Only fresh observations belong here; the caller
//! drops what is older than its freshness window, because a stale "reachable" from an
//! agent that has since been cut off would contradict the truth.

use serde::{Deserialize, Serialize};

/// The id of the server as a vantage (it hears agents; agents hear routers).
pub const SERVER_VANTAGE: &str = "server";

/// Where an observer sits in the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vantage {
    /// An agent id, or [`SERVER_VANTAGE`].
    pub id: String,
    /// The devices it is plugged into, when known.
    #[serde(default)]
    pub attached_to: Vec<String>,
    /// Its site: with no `attached_to`, it is taken to hang off every device of the site.
    #[serde(default)]
    pub site: Option<String>,
}

/// What a path observation tried to reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum PathTarget {
    /// The device's data plane (ICMP or UDP echo to it).
    Device(String),
    /// The device's management plane (RouterOS API or SNMP).
    Management(String),
    /// An agent (gossip liveness, or batches reaching the server).
    Agent(String),
}

/// One vantage's latest verdict on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathObservation {
    pub vantage: String,
    pub target: PathTarget,
    pub reached: bool,
    pub at_ms: i64,
}

/// Why a link is believed down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkEvidence {
    /// An end reports its interface not running.
    InterfaceDown {
        device: String,
        interface: String,
        uplink: bool,
    },
    /// An end reports the OSPF neighbour over the link lost.
    OspfDown { device: String },
    /// An end logged the link going down.
    SyslogDown { device: String },
}

impl LinkEvidence {
    /// The device that reported it (alive when it did).
    pub fn reporter(&self) -> &str {
        match self {
            LinkEvidence::InterfaceDown { device, .. }
            | LinkEvidence::OspfDown { device }
            | LinkEvidence::SyslogDown { device } => device,
        }
    }
}

/// A link reported down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkDown {
    pub link: String,
    pub evidence: LinkEvidence,
    pub at_ms: i64,
}

/// An end of a link reports it running: neither the link nor the other end is dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUp {
    pub link: String,
    pub reported_by: String,
}

/// The other end of a BGP session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum BgpPeer {
    /// A monitored device.
    Device(String),
    /// Something outside the inventory (an upstream, an IX peer), by address or name.
    External(String),
}

/// A BGP session that is not established.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgpDown {
    pub device: String,
    /// The session's name on the device.
    pub session: String,
    pub peer: BgpPeer,
    /// The device's interface the session runs over, when known (an eBGP uplink).
    #[serde(default)]
    pub interface: Option<String>,
    /// The monitored link that interface is an end of, when it is one.
    #[serde(default)]
    pub via_link: Option<String>,
    pub at_ms: i64,
}

/// An uplink to the outside still running while its traffic collapsed: the provider
/// stopped carrying traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UplinkCollapse {
    pub device: String,
    pub interface: String,
    /// Traffic now as a share of its recent normal.
    pub ratio: f64,
    pub at_ms: i64,
}

/// A link running at or near its capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Congestion {
    pub link: String,
    /// Share of the capacity in use, 0..=1.
    pub utilisation: f64,
    /// Seconds until it saturates at the current trend, when it is rising.
    #[serde(default)]
    pub saturation_in_s: Option<f64>,
    pub at_ms: i64,
}

/// Everything one analysis looks at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub vantages: Vec<Vantage>,
    pub paths: Vec<PathObservation>,
    pub links_down: Vec<LinkDown>,
    pub links_up: Vec<LinkUp>,
    pub bgp_down: Vec<BgpDown>,
    pub uplink_collapses: Vec<UplinkCollapse>,
    pub congestion: Vec<Congestion>,
}

impl Observations {
    /// Whether anything at all is wrong.
    pub fn is_quiet(&self) -> bool {
        self.paths.iter().all(|p| p.reached)
            && self.links_down.is_empty()
            && self.bgp_down.is_empty()
            && self.uplink_collapses.is_empty()
            && self.congestion.is_empty()
    }
}
