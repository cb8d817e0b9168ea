//! What an agent tells the server about the gossip cluster: its view of the members, the
//! routers it polls, and the reachability verdicts it relays.
//!
//! The report is *state*, not history: the server keeps the newest one per agent (by
//! [`ClusterReport::at_ms`]), so a batch replayed from an agent's disk buffer cannot
//! roll the view back. Verdicts carry their own time, and the server keeps the freshest
//! verdict per (vantage, target), whichever agent relayed it: an agent that cannot reach
//! the server still has its row of the matrix delivered by the peers that gossip with it.

use serde::{Deserialize, Serialize};

/// One agent's report, carried by at most one batch at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// When the agent built the report, Unix ms.
    pub at_ms: i64,
    /// The reporting agent's gossip generation (changes when it restarts).
    pub generation: u64,
    /// The reporting agent's PoP.
    pub site: String,
    /// Gossip interval and failure-detector threshold in force on the agent: the
    /// server derives the expected detection time from them.
    pub gossip_interval_ms: u32,
    pub phi_threshold: f32,
    /// Replication factor of router ownership (1 or 2).
    pub replication: u8,
    /// Every member the agent knows, itself included.
    pub members: Vec<MemberView>,
    /// Routers this agent polls now (device keys).
    pub owned: Vec<String>,
    /// Reachability verdicts the agent relays (its own row and rows it relays for peers).
    pub reach: Vec<ReachCell>,
}

impl ClusterReport {
    /// Items the report adds to a batch, for the batch's item limits.
    pub fn item_count(&self) -> usize {
        self.members.len() + self.owned.len() + self.reach.len()
    }
}

/// Liveness of a member as one agent's failure detector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Live,
    /// Announced a graceful leave.
    Leaving,
    Dead,
}

impl MemberState {
    pub const fn as_str(self) -> &'static str {
        match self {
            MemberState::Live => "live",
            MemberState::Leaving => "leaving",
            MemberState::Dead => "dead",
        }
    }
}

/// One member as the reporting agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    pub agent: String,
    pub generation: u64,
    /// Empty when the member has not published it yet.
    pub site: String,
    pub version: String,
    /// Capability names (`routeros`, `snmp`, `syslog`, `icmp`).
    pub capabilities: Vec<String>,
    pub state: MemberState,
    pub heartbeat: u64,
    /// Failure-detector suspicion; `None` for the reporter itself or before samples.
    pub phi: Option<f32>,
    /// How long the member has been live without a break, ms.
    pub live_for_ms: u64,
    /// When the member's certificate expires, Unix s.
    pub cert_expiry_s: Option<i64>,
    pub routers: u32,
    pub probes: u32,
    pub buffer_bytes: u64,
    /// `ok`, or a short reason the member is degraded.
    pub health: String,
}

/// One vantage's verdict on one probe target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReachCell {
    pub vantage: String,
    pub target: String,
    /// Loss of the last round, percent.
    pub loss_pct: f32,
    /// Round-trip time, µs; `None` when nothing came back.
    pub rtt_us: Option<u32>,
    /// When the round ended, Unix s.
    pub at_s: i64,
}
