//! The evidence board: the latest of everything root-cause analysis looks at, kept from
//! the batches agents deliver, and read back as [`Observations`] at a time.
//!
//! Each fact keeps when it was measured; a fact older than the freshness window is not
//! read, so a vantage that went silent stops testifying instead of testifying to the
//! past. What comes from where:
//!
//! - `device.up` from the agent polling the device: that vantage's verdict on the
//!   device's management plane;
//! - `ping.loss_pct` of a probe target that checks a device, and the reachability cells
//!   of cluster reports: a vantage's verdict on the device's data plane;
//! - a batch from an agent: the server hears it; a cluster report's member states: one
//!   agent's verdict on the others;
//! - `interface.running` at an end of a monitored link, and link-down events: the link;
//! - `bgp.session_state` of a peer (mapped to a device when an inventory address
//!   matches it);
//! - `interface.rx_bps` of uplinks with no monitored link (traffic from a provider) and
//!   utilisation of link ends against their capacity.

use crate::alert::{EntityAttrs, EntityKind, EntityRef};
use crate::rca::{
    BgpDown, BgpPeer, Congestion, LinkDown, LinkEvidence, LinkUp, Observations, PathObservation,
    PathTarget, SERVER_VANTAGE, UplinkCollapse, Vantage,
};
use crate::tree::LinkSpec;
use ispvm_proto::{Batch, EntityKey, EventKind, MemberState, MetricName};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// How the board reads its facts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoardPolicy {
    /// Facts older than this are not read.
    pub fresh_ms: i64,
    /// An agent the server has not heard from for this long is lost to it.
    pub agent_silent_ms: i64,
    /// Utilisation from which a link is congested.
    pub congested_at: f64,
    /// Utilisation from which a rising trend is forecast to saturation.
    pub forecast_from: f64,
    /// A forecast saturation within this long is reported, seconds.
    pub forecast_within_s: f64,
    /// Traffic below this share of its normal on a running uplink: the provider is lost.
    pub collapse_ratio: f64,
    /// Normal traffic below this (bit/s) is too little to judge a collapse.
    pub collapse_min_bps: f64,
}

impl Default for BoardPolicy {
    fn default() -> Self {
        BoardPolicy {
            // Three fast-tier polls.
            fresh_ms: 30_000,
            agent_silent_ms: 30_000,
            congested_at: 0.9,
            forecast_from: 0.7,
            forecast_within_s: 900.0,
            collapse_ratio: 0.05,
            collapse_min_bps: 1_000_000.0,
        }
    }
}

/// Points of a utilisation trend kept per interface.
const TREND_POINTS: usize = 12;
/// Weight of a new sample in an uplink's normal traffic.
const BASELINE_ALPHA: f64 = 0.1;

#[derive(Debug, Clone, Default)]
struct Traffic {
    baseline: Option<f64>,
    last: f64,
    at_ms: i64,
}

/// The evidence of one tenant.
#[derive(Debug, Default)]
pub struct Board {
    policy: BoardPolicy,
    /// `(device, interface)` → link.
    link_at: HashMap<(String, String), String>,
    interfaces: HashMap<(String, String), EntityAttrs>,
    /// Probe target → the device it checks.
    probe_device: HashMap<String, String>,
    /// Address without prefix → device.
    address_device: HashMap<String, String>,
    /// Device → the subnets of its interfaces (point-to-point and LAN, not host
    /// routes): an eBGP neighbour is on one of them, which says what the session rides.
    subnets: HashMap<String, Vec<(ipnet::IpNet, String)>>,
    agent_site: HashMap<String, String>,
    paths: HashMap<(String, PathTarget), (bool, i64)>,
    running: HashMap<(String, String), (bool, i64)>,
    syslog_down: HashMap<(String, String), i64>,
    bgp: HashMap<(String, String), (bool, i64)>,
    traffic: HashMap<(String, String), Traffic>,
    utilisation: HashMap<(String, String), VecDeque<(i64, f64)>>,
    heard: HashMap<String, i64>,
}

impl Board {
    pub fn new(policy: BoardPolicy) -> Self {
        Board {
            policy,
            ..Board::default()
        }
    }

    /// Takes the inventory: links, interface attributes, probe targets.
    pub fn set_inventory(&mut self, entities: &[(EntityRef, EntityAttrs)], links: &[LinkSpec]) {
        self.link_at.clear();
        for l in links {
            self.link_at.insert(l.a.clone(), l.id.clone());
            self.link_at.insert(l.b.clone(), l.id.clone());
        }
        self.interfaces.clear();
        self.probe_device.clear();
        for (e, attrs) in entities {
            match e.kind {
                EntityKind::Interface => {
                    if let Some((d, i)) = e.id.split_once('/') {
                        self.interfaces
                            .insert((d.to_owned(), i.to_owned()), attrs.clone());
                    }
                }
                EntityKind::ProbeTarget => {
                    if let Some(d) = &attrs.device {
                        self.probe_device.insert(e.id.clone(), d.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// The interface of `device` whose subnet holds `peer` (the most specific one): a
    /// session to a directly connected neighbour rides it; a session between loopbacks
    /// has none.
    fn interface_towards(&self, device: &str, peer: &str) -> Option<String> {
        let peer: std::net::IpAddr = peer.parse().ok()?;
        self.subnets
            .get(device)?
            .iter()
            .filter(|(net, _)| net.contains(&peer))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, i)| i.clone())
    }

    fn path(&mut self, vantage: &str, target: PathTarget, reached: bool, at_ms: i64) {
        let slot = self
            .paths
            .entry((vantage.to_owned(), target))
            .or_insert((reached, at_ms));
        if at_ms >= slot.1 {
            *slot = (reached, at_ms);
        }
    }

    fn newer<K: std::hash::Hash + Eq>(map: &mut HashMap<K, (bool, i64)>, k: K, v: bool, at: i64) {
        let slot = map.entry(k).or_insert((v, at));
        if at >= slot.1 {
            *slot = (v, at);
        }
    }

    /// Takes what one batch says.
    pub fn observe(&mut self, batch: &Batch) {
        let agent = batch.agent_id.as_str();
        let heard = self
            .heard
            .entry(agent.to_owned())
            .or_insert(batch.sent_at_ms);
        *heard = (*heard).max(batch.sent_at_ms);
        for a in &batch.inventory.addresses {
            let bare = a.address.split('/').next().unwrap_or(&a.address);
            self.address_device
                .insert(bare.to_owned(), a.device.clone());
        }
        // A batch that lists a device's addresses lists all of them: it replaces what
        // the board knew (an address moved to another interface leaves no ghost).
        let mut subnets: HashMap<&str, Vec<(ipnet::IpNet, String)>> = HashMap::new();
        for a in &batch.inventory.addresses {
            let nets = subnets.entry(a.device.as_str()).or_default();
            if let Ok(net) = a.address.parse::<ipnet::IpNet>()
                && net.prefix_len() < net.max_prefix_len()
            {
                nets.push((net.trunc(), a.interface.clone()));
            }
        }
        for (device, nets) in subnets {
            self.subnets.insert(device.to_owned(), nets);
        }
        for s in &batch.samples {
            match (&s.entity, s.metric) {
                (EntityKey::Device(d), MetricName::DeviceUp) => {
                    self.path(
                        agent,
                        PathTarget::Management(d.clone()),
                        s.value >= 0.5,
                        s.ts_ms,
                    );
                }
                (EntityKey::ProbeTarget(t), MetricName::PingLossPct) => {
                    if let Some(d) = self.probe_device.get(t).cloned() {
                        self.path(agent, PathTarget::Device(d), s.value < 100.0, s.ts_ms);
                    }
                }
                (EntityKey::Interface { device, name }, MetricName::InterfaceRunning) => {
                    let k = (device.clone(), name.clone());
                    Self::newer(&mut self.running, k, s.value >= 0.5, s.ts_ms);
                }
                (EntityKey::Interface { device, name }, MetricName::InterfaceRxBps) => {
                    self.rate(device, name, s.value, s.ts_ms, true);
                }
                (EntityKey::Interface { device, name }, MetricName::InterfaceTxBps) => {
                    self.rate(device, name, s.value, s.ts_ms, false);
                }
                (EntityKey::Peer { device, peer }, MetricName::BgpSessionState) => {
                    let k = (device.clone(), peer.clone());
                    Self::newer(&mut self.bgp, k, s.value >= 0.5, s.ts_ms);
                }
                _ => {}
            }
        }
        for e in &batch.events {
            if let EntityKey::Interface { device, name } = &e.entity {
                let k = (device.clone(), name.clone());
                match e.kind {
                    EventKind::LinkDown => {
                        self.syslog_down.insert(k, e.ts_ms);
                    }
                    EventKind::LinkUp => {
                        self.syslog_down.remove(&k);
                    }
                    _ => {}
                }
            }
        }
        if let Some(report) = &batch.cluster {
            self.agent_site
                .insert(agent.to_owned(), report.site.clone());
            for m in &report.members {
                if m.agent == agent {
                    continue;
                }
                if !m.site.is_empty() {
                    self.agent_site
                        .entry(m.agent.clone())
                        .or_insert_with(|| m.site.clone());
                }
                let live = m.state == MemberState::Live;
                self.path(
                    agent,
                    PathTarget::Agent(m.agent.clone()),
                    live,
                    report.at_ms,
                );
            }
            for c in &report.reach {
                if let Some(d) = self.probe_device.get(&c.target).cloned() {
                    let at_ms = c.at_s.saturating_mul(1_000);
                    self.path(&c.vantage, PathTarget::Device(d), c.loss_pct < 100.0, at_ms);
                }
            }
        }
    }

    fn rate(&mut self, device: &str, name: &str, bps: f64, at_ms: i64, rx: bool) {
        let k = (device.to_owned(), name.to_owned());
        let linked = self.link_at.contains_key(&k);
        let attrs = self.interfaces.get(&k);
        if rx && !linked && attrs.is_some_and(|a| a.uplink) {
            let t = self.traffic.entry(k.clone()).or_default();
            let collapsed = t
                .baseline
                .is_some_and(|b| bps < b * self.policy.collapse_ratio);
            // A collapse does not become the new normal.
            if !collapsed {
                t.baseline = Some(match t.baseline {
                    Some(b) => b + BASELINE_ALPHA * (bps - b),
                    None => bps,
                });
            }
            t.last = bps;
            t.at_ms = at_ms;
        }
        if let (true, Some(cap)) = (linked, attrs.and_then(|a| a.capacity_bps))
            && cap > 0.0
        {
            let trend = self.utilisation.entry(k).or_default();
            let u = bps / cap;
            match trend.back_mut() {
                // rx and tx of one poll: the busier direction counts.
                Some(last) if last.0 == at_ms => last.1 = last.1.max(u),
                _ => {
                    trend.push_back((at_ms, u));
                    if trend.len() > TREND_POINTS {
                        trend.pop_front();
                    }
                }
            }
        }
    }

    /// Seconds until utilisation reaches 1 at the trend of `points`, when rising.
    fn saturation_in_s(points: &VecDeque<(i64, f64)>) -> Option<f64> {
        let n = points.len();
        if n < 3 {
            return None;
        }
        let (t0, _) = points[0];
        let xs: Vec<f64> = points.iter().map(|(t, _)| (t - t0) as f64 / 1e3).collect();
        let mx = xs.iter().sum::<f64>() / n as f64;
        let my = points.iter().map(|(_, u)| u).sum::<f64>() / n as f64;
        let sxy: f64 = xs
            .iter()
            .zip(points)
            .map(|(x, (_, y))| (x - mx) * (y - my))
            .sum();
        let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let last = points[n - 1].1;
        (slope > 0.0 && last < 1.0).then(|| (1.0 - last) / slope)
    }

    /// The observations fresh at `now_ms`.
    pub fn observations(&self, now_ms: i64) -> Observations {
        let fresh = |at: i64| now_ms - at <= self.policy.fresh_ms;
        let mut obs = Observations::default();
        let mut agents: Vec<&String> = self.heard.keys().collect();
        agents.sort();
        for a in &agents {
            obs.vantages.push(Vantage {
                id: (*a).clone(),
                attached_to: Vec::new(),
                site: self.agent_site.get(*a).cloned(),
            });
            let at = self.heard.get(*a).copied().unwrap_or(0);
            obs.paths.push(PathObservation {
                vantage: SERVER_VANTAGE.into(),
                target: PathTarget::Agent((*a).clone()),
                reached: now_ms - at <= self.policy.agent_silent_ms,
                at_ms: at.max(now_ms - self.policy.agent_silent_ms),
            });
        }
        // One agent polls a device's management plane at a time (ownership moves on
        // failover and back): the newest verdict on it is the one that counts, not the
        // last word of an agent that has since handed the device back.
        let mut newest_poll: HashMap<&String, i64> = HashMap::new();
        for ((_, target), (_, at)) in &self.paths {
            if let PathTarget::Management(d) = target {
                let n = newest_poll.entry(d).or_insert(*at);
                *n = (*n).max(*at);
            }
        }
        // A ping that answered before the management plane stopped answering says
        // nothing about the device now: until a probe round after the failure reports,
        // "API down, ping fine" would be a guess from old news.
        let mut api_lost_at: HashMap<&String, i64> = HashMap::new();
        for ((_, target), (reached, at)) in &self.paths {
            if let (PathTarget::Management(d), false) = (target, reached) {
                let n = api_lost_at.entry(d).or_insert(*at);
                *n = (*n).max(*at);
            }
        }
        for ((vantage, target), (reached, at)) in &self.paths {
            if let PathTarget::Management(d) = target
                && newest_poll.get(d).is_some_and(|n| n > at)
            {
                continue;
            }
            if let (PathTarget::Device(d), true) = (target, reached)
                && api_lost_at.get(d).is_some_and(|lost| lost > at)
            {
                continue;
            }
            // A vantage the server no longer hears testifies to nothing new.
            if fresh(*at) && self.heard.get(vantage).is_some_and(|h| fresh(*h)) {
                obs.paths.push(PathObservation {
                    vantage: vantage.clone(),
                    target: target.clone(),
                    reached: *reached,
                    at_ms: *at,
                });
            }
        }
        for ((device, iface), (running, at)) in &self.running {
            if !fresh(*at) {
                continue;
            }
            let Some(link) = self.link_at.get(&(device.clone(), iface.clone())) else {
                continue;
            };
            let attrs = self.interfaces.get(&(device.clone(), iface.clone()));
            if attrs.is_some_and(|a| a.disabled) {
                continue;
            }
            if *running {
                obs.links_up.push(LinkUp {
                    link: link.clone(),
                    reported_by: device.clone(),
                });
            } else {
                obs.links_down.push(LinkDown {
                    link: link.clone(),
                    evidence: LinkEvidence::InterfaceDown {
                        device: device.clone(),
                        interface: iface.clone(),
                        uplink: attrs.is_some_and(|a| a.uplink),
                    },
                    at_ms: *at,
                });
            }
        }
        for ((device, iface), at) in &self.syslog_down {
            if let (true, Some(link)) = (
                fresh(*at),
                self.link_at.get(&(device.clone(), iface.clone())),
            ) {
                obs.links_down.push(LinkDown {
                    link: link.clone(),
                    evidence: LinkEvidence::SyslogDown {
                        device: device.clone(),
                    },
                    at_ms: *at,
                });
            }
        }
        for ((device, peer), (up, at)) in &self.bgp {
            if *up || !fresh(*at) {
                continue;
            }
            let peer_device = self.address_device.get(peer).cloned();
            let interface = self.interface_towards(device, peer);
            let via_link = interface
                .as_ref()
                .and_then(|i| self.link_at.get(&(device.clone(), i.clone())))
                .cloned();
            obs.bgp_down.push(BgpDown {
                device: device.clone(),
                session: peer.clone(),
                peer: match peer_device {
                    Some(d) if d != *device => BgpPeer::Device(d),
                    _ => BgpPeer::External(peer.clone()),
                },
                interface,
                via_link,
                at_ms: *at,
            });
        }
        for ((device, iface), t) in &self.traffic {
            let running = self
                .running
                .get(&(device.clone(), iface.clone()))
                .is_none_or(|(r, _)| *r);
            if let Some(b) = t.baseline
                && running
                && fresh(t.at_ms)
                && b >= self.policy.collapse_min_bps
                && t.last < b * self.policy.collapse_ratio
            {
                obs.uplink_collapses.push(UplinkCollapse {
                    device: device.clone(),
                    interface: iface.clone(),
                    ratio: t.last / b,
                    at_ms: t.at_ms,
                });
            }
        }
        let mut congested: HashMap<&String, Congestion> = HashMap::new();
        for (k, trend) in &self.utilisation {
            let Some(&(at, u)) = trend.back() else {
                continue;
            };
            if !fresh(at) {
                continue;
            }
            let Some(link) = self.link_at.get(k) else {
                continue;
            };
            let forecast = Self::saturation_in_s(trend);
            let soon = u >= self.policy.forecast_from
                && forecast.is_some_and(|s| s <= self.policy.forecast_within_s);
            if u >= self.policy.congested_at || soon {
                let c = Congestion {
                    link: link.clone(),
                    utilisation: u.min(1.0),
                    saturation_in_s: forecast,
                    at_ms: at,
                };
                match congested.get(link) {
                    Some(other) if other.utilisation >= c.utilisation => {}
                    _ => {
                        congested.insert(link, c);
                    }
                }
            }
        }
        obs.congestion.extend(congested.into_values());
        // Deterministic order: the analysis is then too.
        obs.paths
            .sort_by(|a, b| (&a.vantage, &a.target).cmp(&(&b.vantage, &b.target)));
        obs.links_down.sort_by(|a, b| a.link.cmp(&b.link));
        obs.links_up
            .sort_by(|a, b| (&a.link, &a.reported_by).cmp(&(&b.link, &b.reported_by)));
        obs.bgp_down
            .sort_by(|a, b| (&a.device, &a.session).cmp(&(&b.device, &b.session)));
        obs.congestion.sort_by(|a, b| a.link.cmp(&b.link));
        obs.uplink_collapses
            .sort_by(|a, b| (&a.device, &a.interface).cmp(&(&b.device, &b.interface)));
        obs
    }

    /// Forgets facts so old no reading will use them again.
    pub fn prune(&mut self, now_ms: i64) {
        let keep = self.policy.fresh_ms.max(self.policy.agent_silent_ms) * 10;
        let old = |at: i64| now_ms - at > keep;
        self.paths.retain(|_, (_, at)| !old(*at));
        self.running.retain(|_, (_, at)| !old(*at));
        self.syslog_down.retain(|_, at| !old(*at));
        self.bgp.retain(|_, (_, at)| !old(*at));
    }
}
