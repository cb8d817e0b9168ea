//! The correlator of one tenant, as plain data: the topology, the evidence board and
//! the incidents, brought together once per cycle (the actor around it owns the timer,
//! the store and the engine).
//!
//! - [`board`]: the latest evidence from the agents' batches.
//! - [`Correlator`]: inventory in, batches in, alerts in; incidents, transitions and the
//!   alerts to mute out.

pub mod board;
#[cfg(test)]
mod tests;

pub use board::{Board, BoardPolicy};

use crate::alert::{EntityAttrs, EntityKind, EntityRef, Phase};
use crate::incident::{
    AlertFact, AlertKey, CycleOutcome, IncidentContext, IncidentPolicy, Incidents,
};
use crate::rca::{self, Analysis, CauseKind};
use crate::topology::Topology;
use crate::tree::{AlertView, LinkSpec};
use ispvm_proto::{Batch, DeviceRole, EntityKey, MetricName};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// PPPoE session counts kept per concentrator, to know the impact "just before".
const SESSION_POINTS: usize = 64;

/// What the inventory says, for titles and impact.
#[derive(Debug, Default)]
struct Inventory {
    devices: HashMap<String, (String, DeviceRole, Option<String>)>,
    links: HashMap<String, [(String, String); 2]>,
    /// `(device, interface)` → the device at the other end of its link.
    far_ends: HashMap<(String, String), String>,
    sites: HashMap<String, String>,
    probe_device: HashMap<String, String>,
    sessions: HashMap<String, VecDeque<(i64, f64)>>,
}

impl IncidentContext for Inventory {
    fn device(&self, id: &str) -> Option<(String, DeviceRole)> {
        self.devices.get(id).map(|(n, r, _)| (n.clone(), *r))
    }
    fn link(&self, id: &str) -> Option<[(String, String); 2]> {
        self.links.get(id).cloned()
    }
    fn far_end(&self, device: &str, interface: &str) -> Option<String> {
        self.far_ends
            .get(&(device.to_owned(), interface.to_owned()))
            .cloned()
    }
    fn site(&self, id: &str) -> Option<String> {
        self.sites.get(id).cloned()
    }
    fn subscribers_before(&self, device: &str, before_ms: i64) -> Option<u64> {
        let points = self.sessions.get(device)?;
        points
            .iter()
            .rev()
            .find(|(t, _)| *t < before_ms)
            .or_else(|| points.front())
            .map(|(_, v)| v.max(0.0) as u64)
    }
}

/// The correlator of one tenant.
#[derive(Debug)]
pub struct Correlator {
    topology: Topology,
    board: Board,
    incidents: Incidents,
    inventory: Inventory,
    last: Analysis,
}

impl Correlator {
    pub fn new(board: BoardPolicy, incidents: IncidentPolicy) -> Self {
        Correlator {
            topology: Topology::new(),
            board: Board::new(board),
            incidents: Incidents::new(incidents),
            inventory: Inventory::default(),
            last: Analysis::default(),
        }
    }

    /// Takes the inventory; the topology is edited in place (what vanished is removed).
    pub fn set_inventory(
        &mut self,
        entities: &[(EntityRef, EntityAttrs)],
        links: &[LinkSpec],
        names: &crate::tree::DisplayNames,
    ) {
        let device_names: HashMap<&str, &str> = names
            .devices
            .iter()
            .map(|(id, n)| (id.as_str(), n.as_str()))
            .collect();
        let mut devices = BTreeSet::new();
        for (e, a) in entities {
            match e.kind {
                EntityKind::Device => {
                    let role = a.role.unwrap_or(DeviceRole::Access);
                    self.topology.upsert_device(&e.id, role, a.site.as_deref());
                    // The operator's name, else the router's identity once an agent
                    // reported it, else the id.
                    let name = device_names.get(e.id.as_str()).map_or_else(
                        || {
                            self.inventory
                                .devices
                                .get(&e.id)
                                .map_or_else(|| e.id.clone(), |d| d.0.clone())
                        },
                        |n| (*n).to_owned(),
                    );
                    self.inventory
                        .devices
                        .insert(e.id.clone(), (name, role, a.site.clone()));
                    devices.insert(e.id.clone());
                }
                EntityKind::ProbeTarget => {
                    if let Some(d) = &a.device {
                        self.inventory.probe_device.insert(e.id.clone(), d.clone());
                    }
                }
                _ => {}
            }
        }
        let gone: Vec<String> = self
            .topology
            .devices()
            .map(|(d, _, _)| d.to_owned())
            .filter(|d| !devices.contains(d))
            .collect();
        for d in gone {
            self.topology.remove_device(&d);
            self.inventory.devices.remove(&d);
        }
        let wanted: BTreeSet<&str> = links.iter().map(|l| l.id.as_str()).collect();
        let stale: Vec<String> = self
            .topology
            .links()
            .map(|(l, _, _)| l.to_owned())
            .filter(|l| !wanted.contains(l.as_str()))
            .collect();
        for l in stale {
            self.topology.remove_link(&l);
        }
        self.inventory.links.clear();
        self.inventory.far_ends.clear();
        for l in links {
            // A link to a device the inventory does not have is left out, not fatal.
            if self.topology.upsert_link(&l.id, &l.a.0, &l.b.0).is_ok() {
                self.inventory
                    .links
                    .insert(l.id.clone(), [l.a.clone(), l.b.clone()]);
                self.inventory.far_ends.insert(l.a.clone(), l.b.0.clone());
                self.inventory.far_ends.insert(l.b.clone(), l.a.0.clone());
            }
        }
        self.inventory.sites = names.sites.iter().cloned().collect();
        self.board.set_inventory(entities, links);
    }

    /// Takes what one batch says.
    pub fn observe(&mut self, batch: &Batch) {
        self.board.observe(batch);
        for d in &batch.inventory.devices {
            if let Some(entry) = self.inventory.devices.get_mut(&d.key) {
                entry.0 = d.name.clone();
            }
        }
        for s in &batch.samples {
            if let (EntityKey::Device(d), MetricName::PppoeActiveSessions) = (&s.entity, s.metric) {
                let points = self.inventory.sessions.entry(d.clone()).or_default();
                points.push_back((s.ts_ms, s.value));
                if points.len() > SESSION_POINTS {
                    points.pop_front();
                }
            }
        }
    }

    fn fact(&self, v: &AlertView) -> AlertFact {
        let device = match v.entity.kind {
            EntityKind::ProbeTarget => self.inventory.probe_device.get(&v.entity.id).cloned(),
            _ => v.entity.device_id().map(str::to_owned),
        };
        let site = device
            .as_ref()
            .and_then(|d| self.inventory.devices.get(d))
            .and_then(|(_, _, s)| s.clone());
        let meaning = match v.entity.kind {
            EntityKind::Interface => CauseKind::LinkDown,
            EntityKind::Peer => CauseKind::BgpDown,
            EntityKind::Device | EntityKind::ProbeTarget => CauseKind::DeviceDown,
        };
        let s = &v.state;
        // A muted alert whose condition has cleared is over, whatever its phase says.
        let phase = if s.phase == Phase::Suppressed && s.level.is_none() {
            Phase::Ok
        } else {
            s.phase
        };
        AlertFact {
            key: AlertKey {
                rule_id: v.rule_id.clone(),
                entity: v.entity.clone(),
            },
            level: s.level.unwrap_or(crate::alert::Level::Warning),
            phase,
            since_ms: s
                .fired_ms
                .or(s.pending_since_ms)
                .unwrap_or(s.last_change_ms),
            site,
            device,
            meaning,
        }
    }

    /// One cycle: analyse the fresh evidence, bring the incidents up to date.
    pub fn cycle(&mut self, now_ms: i64, alerts: &[AlertView]) -> CycleOutcome {
        let observations = self.board.observations(now_ms);
        // What the analysis saw, for whoever must tell why it concluded what it did.
        tracing::trace!(
            observations = %serde_json::to_string(&observations).unwrap_or_default(),
            "correlation input"
        );
        self.last = rca::analyse(&mut self.topology, &observations);
        let facts: Vec<AlertFact> = alerts
            .iter()
            .filter(|a| a.state.phase != Phase::Ok)
            .map(|a| self.fact(a))
            .collect();
        let out = self
            .incidents
            .update(now_ms, &self.last, &facts, &self.inventory);
        self.board.prune(now_ms);
        out
    }

    /// The latest analysis.
    pub fn analysis(&self) -> &Analysis {
        &self.last
    }

    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    pub fn incidents_mut(&mut self) -> &mut Incidents {
        &mut self.incidents
    }

    pub fn topology_mut(&mut self) -> &mut Topology {
        &mut self.topology
    }
}
