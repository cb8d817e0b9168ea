//! A typed snapshot of the cluster as one agent sees it, refreshed every gossip round.

use crate::node_state::{Health, Load, NodeView, Reach};
use crate::ownership::{Capabilities, Capability};
use chitchat::{ChitchatId, NodeState};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// One agent of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub agent: String,
    /// Changes when the agent restarts: a restarted agent is a new member.
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    pub tenant: Option<String>,
    pub site: Option<String>,
    pub version: Option<String>,
    pub capabilities: Capabilities,
    /// Alive according to the failure detector (always true for ourselves).
    pub live: bool,
    /// Announced a graceful leave: no longer given work even while still heard.
    pub leaving: bool,
    pub heartbeat: u64,
    /// Suspicion of failure: time since the heartbeat last advanced over the mean time
    /// between advances (the failure detector's definition; it declares a member dead
    /// above its threshold). `None` until two advances were seen.
    pub phi: Option<f64>,
    /// How long the member has been continuously live in our view.
    pub live_for: Duration,
    pub load: Option<Load>,
    pub health: Option<Health>,
    pub cert_expiry_s: Option<i64>,
    pub reach: Vec<(String, Reach)>,
}

impl Member {
    /// Whether the member should be given work: live, not leaving, identified.
    pub fn available(&self) -> bool {
        self.live && !self.leaving && self.site.is_some()
    }

    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.has(c)
    }
}

/// The whole cluster as one agent sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    pub self_agent: String,
    /// Every known member (live or dead), ordered by agent id.
    pub members: Vec<Member>,
}

impl Membership {
    pub fn member(&self, agent: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.agent == agent)
    }

    pub fn available(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.available())
    }
}

/// Serializable form of a member for the cluster-state API.
#[derive(Debug, Clone, Serialize)]
pub struct MemberJson {
    pub agent: String,
    pub generation: u64,
    pub gossip_addr: String,
    pub site: Option<String>,
    pub version: Option<String>,
    pub capabilities: Vec<&'static str>,
    pub state: &'static str,
    pub heartbeat: u64,
    pub phi: Option<f64>,
    pub live_for_s: f64,
    pub load: Option<LoadJson>,
    pub health: Option<String>,
    pub cert_expiry_s: Option<i64>,
    pub reach_targets: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadJson {
    pub routers: u32,
    pub probes: u32,
    pub buffer_bytes: u64,
}

impl From<&Member> for MemberJson {
    fn from(m: &Member) -> Self {
        let state = if m.leaving {
            "leaving"
        } else if m.live {
            "live"
        } else {
            "dead"
        };
        MemberJson {
            agent: m.agent.clone(),
            generation: m.generation,
            gossip_addr: m.gossip_addr.to_string(),
            site: m.site.clone(),
            version: m.version.clone(),
            capabilities: Capability::ALL
                .iter()
                .filter(|c| m.capabilities.has(**c))
                .map(|c| c.as_str())
                .collect(),
            state,
            heartbeat: m.heartbeat,
            phi: m.phi.map(|p| (p * 100.0).round() / 100.0),
            live_for_s: m.live_for.as_secs_f64(),
            load: m.load.as_ref().map(|l| LoadJson {
                routers: l.routers,
                probes: l.probes,
                buffer_bytes: l.buffer_bytes,
            }),
            health: m.health.as_ref().map(|h| match h {
                Health::Ok => "ok".to_owned(),
                Health::Degraded(why) => format!("degraded: {why}"),
            }),
            cert_expiry_s: m.cert_expiry_s,
            reach_targets: m.reach.len(),
        }
    }
}

/// Most heartbeat intervals remembered per member for the phi estimate.
const PHI_WINDOW: usize = 100;

#[derive(Debug)]
struct Beat {
    generation: u64,
    heartbeat: u64,
    changed_at: Instant,
    intervals: std::collections::VecDeque<f64>,
    live_since: Option<Instant>,
}

/// Turns successive chitchat snapshots into [`Membership`]s, tracking what chitchat does
/// not expose: how long each member has been live, and its phi.
#[derive(Debug, Default)]
pub struct Tracker {
    beats: HashMap<String, Beat>,
}

impl Tracker {
    /// Builds the membership from the node states chitchat knows and its live set.
    pub fn observe<'a>(
        &mut self,
        self_agent: &str,
        states: impl Iterator<Item = (&'a ChitchatId, &'a NodeState)>,
        is_live: impl Fn(&ChitchatId) -> bool,
        now: Instant,
    ) -> Membership {
        // When one agent id appears with several generations, the newest wins.
        let mut newest: HashMap<&str, (&ChitchatId, &NodeState)> = HashMap::new();
        for (id, st) in states {
            let e = newest.entry(&id.node_id).or_insert((id, st));
            if id.generation_id > e.0.generation_id {
                *e = (id, st);
            }
        }
        let mut members: Vec<Member> = newest
            .into_values()
            .map(|(id, st)| {
                let live = id.node_id.as_ref() == self_agent || is_live(id);
                let heartbeat = u64::from(st.heartbeat());
                let beat = self
                    .beats
                    .entry(id.node_id.to_string())
                    .or_insert_with(|| Beat {
                        generation: id.generation_id,
                        heartbeat,
                        changed_at: now,
                        intervals: Default::default(),
                        live_since: None,
                    });
                if beat.generation != id.generation_id {
                    *beat = Beat {
                        generation: id.generation_id,
                        heartbeat,
                        changed_at: now,
                        intervals: Default::default(),
                        live_since: None,
                    };
                }
                if heartbeat > beat.heartbeat {
                    let gap = now.duration_since(beat.changed_at).as_secs_f64();
                    if beat.intervals.len() == PHI_WINDOW {
                        beat.intervals.pop_front();
                    }
                    beat.intervals.push_back(gap);
                    beat.heartbeat = heartbeat;
                    beat.changed_at = now;
                }
                beat.live_since = match (live, beat.live_since) {
                    (true, None) => Some(now),
                    (true, since) => since,
                    (false, _) => None,
                };
                let phi = (beat.intervals.len() >= 2).then(|| {
                    let mean = beat.intervals.iter().sum::<f64>() / beat.intervals.len() as f64;
                    let elapsed = now.duration_since(beat.changed_at).as_secs_f64();
                    if mean > 0.0 { elapsed / mean } else { 0.0 }
                });
                let view = NodeView(st);
                Member {
                    agent: id.node_id.to_string(),
                    generation: id.generation_id,
                    gossip_addr: id.gossip_advertise_addr,
                    tenant: view.tenant().map(str::to_owned),
                    site: view.site().map(str::to_owned),
                    version: view.version().map(str::to_owned),
                    capabilities: view.capabilities(),
                    live,
                    leaving: view.leaving(),
                    heartbeat,
                    phi,
                    live_for: beat
                        .live_since
                        .map(|s| now.duration_since(s))
                        .unwrap_or_default(),
                    load: view.load(),
                    health: view.health(),
                    cert_expiry_s: view.cert_expiry_s(),
                    reach: view
                        .reachability()
                        .map(|(t, r)| (t.to_owned(), r))
                        .collect(),
                }
            })
            .collect();
        members.sort_by(|a, b| a.agent.cmp(&b.agent));
        // Forget members chitchat forgot.
        self.beats
            .retain(|agent, _| members.iter().any(|m| &m.agent == agent));
        Membership {
            self_agent: self_agent.to_owned(),
            members,
        }
    }
}
