//! The live network: every router's model plus the fault log, shared by all API sessions.
//!
//! [`RouterModel`] says what a router reports when nothing goes wrong; [`Network`] combines
//! it with the [`FaultRecord`]s to say what it reports now. Everything is still a function
//! of the request time (the log only grows), so concurrent sessions on different routers
//! always agree: a cut link is not running at either end from the instant of the cut.
//!
//! Counters stay integrals of the traffic curves, taken piecewise: over a span when a
//! link is cut the rate is zero, during congestion it is the congested rate, and so on.
//! A reboot moves the start of the integral, which is why counters restart from zero.

use crate::faults::{Fault, FaultError, FaultId, FaultRecord, Span, covered, outages_started};
use crate::router_state::{InterfaceCounters, RouterModel, unix_seconds};
use crate::topology::Topology;
use crate::traffic::TrafficCurve;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Share of an upstream's normal traffic left when it is lost (stray packets, ARP, BFD).
const UPSTREAM_LOSS_RESIDUE: f64 = 0.002;

/// One end of a link, seen from a router interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEnd {
    pub link: usize,
    /// 0 for end `a`, 1 for end `b`.
    pub side: usize,
}

/// A link between two simulated interfaces, by index.
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// Index of the link in the topology's `links`.
    pub spec: usize,
    /// `(router index, interface index)` of ends `a` and `b`.
    pub ends: [(usize, usize); 2],
    /// The rate a congested link runs at, at utilisation 1.
    pub capacity_bps: f64,
    pub ospf_area: Option<String>,
}

/// How the traffic of an interface is changed over a span.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RateMode {
    /// Nothing flows (link down).
    Zero,
    /// A share of the normal curve (upstream loss).
    Scale(f64),
    /// A fixed rate (congestion), which also fills the transmit queue.
    Fixed(f64),
}

impl RateMode {
    /// When modes overlap, the one that removes most traffic wins.
    fn strength(self) -> u8 {
        match self {
            RateMode::Zero => 3,
            RateMode::Scale(_) => 2,
            RateMode::Fixed(_) => 1,
        }
    }
}

/// What an interface reports at one instant, faults included.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InterfaceLive {
    pub running: bool,
    pub counters: InterfaceCounters,
    pub link_downs: u64,
    /// Unix time of the last link-up.
    pub last_link_up_s: f64,
    pub rx_bps: f64,
    pub tx_bps: f64,
}

/// Whether and how the API of a router answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiState {
    /// Answers, each reply after `delay`, cut mid-reply with `drop_per_mille` / 1000.
    Up {
        delay: Duration,
        drop_per_mille: u32,
    },
    /// Refuses connections (router off, rebooting, or management plane down).
    Unreachable,
}

/// The shared, live state of a virtual ISP.
#[derive(Debug)]
pub struct Network {
    pub(crate) topology: Topology,
    pub(crate) models: Vec<RouterModel>,
    by_id: HashMap<String, usize>,
    pub(crate) links: Vec<LinkModel>,
    /// Per router, per interface: the link it is an end of.
    pub(crate) iface_links: Vec<Vec<Option<LinkEnd>>>,
    pub(crate) routing: crate::routing::RoutingTables,
    log: RwLock<Vec<FaultRecord>>,
    /// Bumped under the log's write lock on every apply and clear, so a reader holding
    /// the read lock sees the version of exactly the log it reads (the path cache keys
    /// on it).
    version: AtomicU64,
    next_id: AtomicU64,
    /// Shortest paths between routers, rebuilt when the log changes.
    pub(crate) paths: crate::paths::PathCache,
    /// Which source addresses stand at which router.
    pub(crate) attachments: crate::attach::Attachments,
    changes: watch::Sender<u64>,
}

impl Network {
    /// Models every router of a validated topology, as if started at `started`.
    pub fn new(topology: Topology, started: SystemTime) -> Network {
        let models: Vec<RouterModel> = topology
            .routers
            .iter()
            .filter_map(|r| RouterModel::from_topology(&topology, &r.id, started))
            .collect();
        let by_id: HashMap<String, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.spec.id.clone(), i))
            .collect();
        let iface_index = |endpoint: Option<(&str, &str)>| {
            let (r, i) = endpoint?;
            let ri = *by_id.get(r)?;
            let ii = models.get(ri)?.interface_index(i)?;
            Some((ri, ii))
        };
        let mut iface_links: Vec<Vec<Option<LinkEnd>>> = models
            .iter()
            .map(|m| vec![None; m.interfaces.len()])
            .collect();
        let mut links = Vec::with_capacity(topology.links.len());
        for (k, spec) in topology.links.iter().enumerate() {
            let (Some(a), Some(b)) = (
                iface_index(spec.endpoint_a()),
                iface_index(spec.endpoint_b()),
            ) else {
                continue;
            };
            let mut capacity_bps = spec.capacity_mbps as f64 * 1e6;
            for (side, (r, i)) in [a, b].into_iter().enumerate() {
                if let Some(slot) = iface_links.get_mut(r).and_then(|v| v.get_mut(i)) {
                    *slot = Some(LinkEnd {
                        link: links.len(),
                        side,
                    });
                }
                let speed = models
                    .get(r)
                    .and_then(|m| m.interfaces.get(i))
                    .map_or(0, |f| f.spec.speed_mbps);
                if speed > 0 {
                    capacity_bps = capacity_bps.min(speed as f64 * 1e6);
                }
            }
            links.push(LinkModel {
                spec: k,
                ends: [a, b],
                capacity_bps,
                ospf_area: spec.ospf_area.clone(),
            });
        }
        let routing = crate::routing::RoutingTables::build(&topology, &models, &by_id, &links);
        let (changes, _) = watch::channel(0);
        Network {
            topology,
            models,
            by_id,
            links,
            iface_links,
            routing,
            log: RwLock::new(Vec::new()),
            version: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            paths: crate::paths::PathCache::default(),
            attachments: crate::attach::Attachments::default(),
            changes,
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The model of router `index` (topology order).
    pub fn model(&self, index: usize) -> Option<&RouterModel> {
        self.models.get(index)
    }

    /// Index of the router with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The number of routers.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// A receiver that changes whenever a fault is applied or cleared.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Runs `f` on the fault log.
    pub(crate) fn with_log<T>(&self, f: impl FnOnce(&[FaultRecord]) -> T) -> T {
        let log = self.log.read().unwrap_or_else(PoisonError::into_inner);
        f(&log)
    }

    /// Runs `f` on the fault log and its version (which changes with every apply and
    /// clear).
    pub(crate) fn with_versioned_log<T>(&self, f: impl FnOnce(u64, &[FaultRecord]) -> T) -> T {
        let log = self.log.read().unwrap_or_else(PoisonError::into_inner);
        f(self.version.load(Ordering::Acquire), &log)
    }

    /// Applies a fault from `now_s` on.
    pub fn apply_at(&self, fault: Fault, now_s: f64) -> Result<FaultId, FaultError> {
        fault.check(&self.topology)?;
        let id = FaultId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let record = FaultRecord {
            id,
            fault,
            from_s: now_s,
            to_s: None,
        };
        tracing::info!(%id, fault = ?record.fault, "fault applied");
        {
            let mut log = self.log.write().unwrap_or_else(PoisonError::into_inner);
            log.push(record);
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(id)
    }

    /// Applies a fault now.
    pub fn apply(&self, fault: Fault) -> Result<FaultId, FaultError> {
        self.apply_at(fault, unix_seconds(SystemTime::now()))
    }

    /// Ends a fault at `now_s`.
    pub fn clear_at(&self, id: FaultId, now_s: f64) -> Result<(), FaultError> {
        {
            let mut log = self.log.write().unwrap_or_else(PoisonError::into_inner);
            let record = log
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or(FaultError::UnknownFault(id))?;
            if record.to_s.is_some() {
                return Err(FaultError::AlreadyCleared(id));
            }
            record.to_s = Some(now_s.max(record.from_s));
            self.version.fetch_add(1, Ordering::AcqRel);
        }
        tracing::info!(%id, "fault cleared");
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// Ends a fault now.
    pub fn clear(&self, id: FaultId) -> Result<(), FaultError> {
        self.clear_at(id, unix_seconds(SystemTime::now()))
    }

    /// Faults in force at `now_s` (a reboot is in force while the router is down).
    pub fn active_faults_at(&self, now_s: f64) -> Vec<FaultRecord> {
        let reboot_s = self.topology.settings.reboot_s;
        self.with_log(|log| {
            log.iter()
                .filter(|r| match r.fault {
                    Fault::Reboot { .. } => r.active_at(now_s) && now_s < r.from_s + reboot_s,
                    _ => r.active_at(now_s),
                })
                .cloned()
                .collect()
        })
    }

    /// Every fault ever applied, in order.
    pub fn fault_log(&self) -> Vec<FaultRecord> {
        self.with_log(<[FaultRecord]>::to_vec)
    }

    fn router_named(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Spans when router `r` is off (down, or rebooting).
    pub(crate) fn offline_spans(&self, log: &[FaultRecord], r: usize) -> Vec<Span> {
        let reboot_s = self.topology.settings.reboot_s;
        log.iter()
            .filter_map(|rec| match &rec.fault {
                Fault::RouterDown { router } if self.router_named(router) == Some(r) => {
                    Some(rec.span())
                }
                Fault::Reboot { router } if self.router_named(router) == Some(r) => {
                    Some(Span::new(rec.from_s, rec.from_s + reboot_s))
                }
                _ => None,
            })
            .collect()
    }

    /// When router `r` last booted, as of `now_s`: a reboot boots it when it starts, a
    /// power cut when it is cleared.
    pub fn boot_s(&self, log: &[FaultRecord], r: usize, now_s: f64) -> f64 {
        let base = self.models.get(r).map_or(0.0, |m| m.boot_s);
        log.iter()
            .filter_map(|rec| match &rec.fault {
                Fault::Reboot { router } if self.router_named(router) == Some(r) => {
                    Some(rec.from_s)
                }
                Fault::RouterDown { router } if self.router_named(router) == Some(r) => rec.to_s,
                _ => None,
            })
            .filter(|t| *t <= now_s)
            .fold(base, f64::max)
    }

    /// The interface at the other end of router `r`'s interface `i`.
    pub fn link_partner(&self, r: usize, i: usize) -> Option<(usize, usize, usize)> {
        let end = (*self.iface_links.get(r)?.get(i)?)?;
        let link = self.links.get(end.link)?;
        let (pr, pi) = *link.ends.get(1 - end.side)?;
        Some((end.link, pr, pi))
    }

    /// Spans when interface `i` of router `r` has no link: cut, or either router off.
    pub(crate) fn iface_down_spans(&self, log: &[FaultRecord], r: usize, i: usize) -> Vec<Span> {
        let mut spans = self.offline_spans(log, r);
        if let Some((link, pr, _)) = self.link_partner(r, i) {
            spans.extend(self.offline_spans(log, pr));
            for rec in log {
                if self.cuts_link(&rec.fault, link) {
                    spans.push(rec.span());
                }
            }
        }
        spans
    }

    /// Whether `fault` cuts link model `link`: a `link_cut` of it, or a `site_partition`
    /// of a site that holds exactly one of its ends.
    pub(crate) fn cuts_link(&self, fault: &Fault, link: usize) -> bool {
        match fault {
            Fault::LinkCut { a, b } => {
                self.topology.link_between(a, b).map(|(k, _)| k) == self.link_spec_index(link)
            }
            Fault::SitePartition { site } => self.links.get(link).is_some_and(|l| {
                l.ends
                    .iter()
                    .filter(|(r, _)| self.models.get(*r).is_some_and(|m| m.spec.site == *site))
                    .count()
                    == 1
            }),
            _ => false,
        }
    }

    /// The topology index of link model `link`.
    fn link_spec_index(&self, link: usize) -> Option<usize> {
        self.links.get(link).map(|l| l.spec)
    }

    /// Spans when upstream loss hits interface `i` of `r` (or its link partner).
    pub(crate) fn upstream_loss_spans(&self, log: &[FaultRecord], r: usize, i: usize) -> Vec<Span> {
        let partner = self.link_partner(r, i).map(|(_, pr, pi)| (pr, pi));
        log.iter()
            .filter_map(|rec| match &rec.fault {
                Fault::UpstreamLoss { router, interface } => {
                    let ri = self.router_named(router)?;
                    let ii = self.models.get(ri)?.interface_index(interface)?;
                    ((ri, ii) == (r, i) || Some((ri, ii)) == partner).then(|| rec.span())
                }
                _ => None,
            })
            .collect()
    }

    fn rate_overrides(&self, log: &[FaultRecord], r: usize, i: usize) -> Vec<(Span, RateMode)> {
        let mut out: Vec<(Span, RateMode)> = self
            .iface_down_spans(log, r, i)
            .into_iter()
            .map(|s| (s, RateMode::Zero))
            .collect();
        out.extend(
            self.upstream_loss_spans(log, r, i)
                .into_iter()
                .map(|s| (s, RateMode::Scale(UPSTREAM_LOSS_RESIDUE))),
        );
        if let Some((link, _, _)) = self.link_partner(r, i) {
            let capacity = self.links.get(link).map_or(0.0, |l| l.capacity_bps);
            let spec_index = self.link_spec_index(link);
            for rec in log {
                if let Fault::Congestion { a, b, utilisation } = &rec.fault
                    && self.topology.link_between(a, b).map(|(k, _)| k) == spec_index
                {
                    out.push((rec.span(), RateMode::Fixed(capacity * utilisation)));
                }
            }
        }
        out
    }

    /// Interface `i` of router `r` at `now_s`, faults included.
    pub fn interface_live(
        &self,
        log: &[FaultRecord],
        r: usize,
        i: usize,
        now_s: f64,
    ) -> InterfaceLive {
        let Some(model) = self.models.get(r) else {
            return InterfaceLive::default();
        };
        let Some(iface) = model.interfaces.get(i) else {
            return InterfaceLive::default();
        };
        let boot = self.boot_s(log, r, now_s);
        let rebooted = boot > model.boot_s;
        let overrides = self.rate_overrides(log, r, i);
        let (rx_bytes, _) = integrate(&iface.rx, boot, now_s, &overrides);
        let (tx_bytes, congested) = integrate(&iface.tx, boot, now_s, &overrides);
        let counters = model
            .counters_from_bytes(i, rx_bytes, tx_bytes, congested)
            .unwrap_or_default();
        let mut down: Vec<Span> = self.iface_down_spans(log, r, i);
        // Its own router being off is not a link-down it could count.
        let own = self.offline_spans(log, r);
        down.retain(|s| !own.contains(s));
        let running = !covered(&down, now_s);
        let base_downs = if rebooted { 0 } else { iface.link_downs };
        let base_up = if rebooted {
            boot + 3.0
        } else {
            iface.last_link_up_s
        };
        let last_link_up_s = down
            .iter()
            .filter(|s| s.to <= now_s && s.to > boot)
            .map(|s| s.to)
            .fold(base_up, f64::max);
        let (rx_bps, tx_bps) = (
            rate_at(&iface.rx, now_s, &overrides),
            rate_at(&iface.tx, now_s, &overrides),
        );
        InterfaceLive {
            running,
            counters,
            link_downs: base_downs + outages_started(&down, boot, now_s),
            last_link_up_s,
            rx_bps,
            tx_bps,
        }
    }

    /// Whether the API of router `r` answers at `now_s`, and how.
    pub fn api_state(&self, r: usize, now_s: f64) -> ApiState {
        self.with_log(|log| {
            if covered(&self.offline_spans(log, r), now_s) {
                return ApiState::Unreachable;
            }
            let mut delay_ms = 0u64;
            let mut drop = 0u32;
            for rec in log.iter().filter(|rec| rec.active_at(now_s)) {
                if rec.fault.router().and_then(|id| self.router_named(id)) != Some(r) {
                    continue;
                }
                match &rec.fault {
                    Fault::ManagementDown { .. } => return ApiState::Unreachable,
                    Fault::SlowApi { delay_ms: d, .. } => delay_ms = delay_ms.saturating_add(*d),
                    Fault::FlakyApi { drop_per_mille, .. } => drop = drop.max(*drop_per_mille),
                    _ => {}
                }
            }
            ApiState::Up {
                delay: Duration::from_millis(delay_ms),
                drop_per_mille: drop.min(1000),
            }
        })
    }
}

/// The rate of `curve` at `t` under the strongest override covering `t`.
fn rate_at(curve: &TrafficCurve, t: f64, overrides: &[(Span, RateMode)]) -> f64 {
    match strongest(overrides, t) {
        None => curve.rate_bps(t),
        Some(RateMode::Zero) => 0.0,
        Some(RateMode::Scale(k)) => curve.rate_bps(t) * k,
        Some(RateMode::Fixed(bps)) => bps,
    }
}

fn strongest(overrides: &[(Span, RateMode)], t: f64) -> Option<RateMode> {
    overrides
        .iter()
        .filter(|(s, _)| s.contains(t))
        .map(|(_, m)| *m)
        .max_by_key(|m| m.strength())
}

/// Bytes `curve` carries over `[from, to]` with the overrides applied, and how many of
/// them were carried at a fixed (congested) rate.
fn integrate(
    curve: &TrafficCurve,
    from: f64,
    to: f64,
    overrides: &[(Span, RateMode)],
) -> (f64, f64) {
    if !(from.is_finite() && to.is_finite()) || to <= from {
        return (0.0, 0.0);
    }
    let mut cuts: Vec<f64> = vec![from, to];
    for (s, _) in overrides {
        for t in [s.from, s.to] {
            if t > from && t < to {
                cuts.push(t);
            }
        }
    }
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let mut total = 0.0;
    let mut congested = 0.0;
    for pair in cuts.windows(2) {
        let (t0, t1) = (pair[0], pair[1]);
        let mid = t0 + (t1 - t0) / 2.0;
        match strongest(overrides, mid) {
            None => total += curve.bytes_between(t0, t1),
            Some(RateMode::Zero) => {}
            Some(RateMode::Scale(k)) => total += k * curve.bytes_between(t0, t1),
            Some(RateMode::Fixed(bps)) => {
                let bytes = bps * (t1 - t0) / 8.0;
                total += bytes;
                congested += bytes;
            }
        }
    }
    (total, congested)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_honours_overrides() {
        let curve = TrafficCurve::new(7, 1e9, 0.5, 0.0);
        let t0 = 1_732_000_000.0;
        let plain = curve.bytes_between(t0, t0 + 100.0);
        assert!((integrate(&curve, t0, t0 + 100.0, &[]).0 - plain).abs() < 1.0);
        let cut = [(Span::new(t0 + 10.0, t0 + 20.0), RateMode::Zero)];
        let (bytes, _) = integrate(&curve, t0, t0 + 100.0, &cut);
        let expected = plain - curve.bytes_between(t0 + 10.0, t0 + 20.0);
        assert!((bytes - expected).abs() < 1.0);
        let fixed = [(Span::new(t0, f64::INFINITY), RateMode::Fixed(8e8))];
        let (bytes, congested) = integrate(&curve, t0, t0 + 10.0, &fixed);
        assert!((bytes - 1e9).abs() < 1.0 && (congested - 1e9).abs() < 1.0);
        // A cut inside congestion still carries nothing.
        let both = [fixed[0], cut[0]];
        assert_eq!(rate_at(&curve, t0 + 15.0, &both), 0.0);
        assert_eq!(rate_at(&curve, t0 + 25.0, &both), 8e8);
        assert_eq!(integrate(&curve, t0, t0 - 1.0, &both), (0.0, 0.0));
    }
}
