//! The incidents of one tenant: opened, grown, re-rooted and resolved from the alerts
//! and the root-cause analysis of each correlation cycle.
//!
//! - **Open** on a critical alert, or on `warnings_to_open` warnings within
//!   `warning_window_ms` in one site, that a finding explains (or, with no finding,
//!   that sit in one site); or on a finding alone once it has held two analyses and
//!   either is critical with an alert behind it, or has stood `finding_alone_ms`
//!   (critical; a lesser one with the alert it explains; a lost agent; congestion).
//! - **Group**: an alert joins the incident whose root cause explains it; a finding
//!   joins the open incident with the same root cause, or the one whose alerts it
//!   explains (a link-down that turns out to be a site isolation stays one incident).
//! - **Members and suppressed**: alerts on the root cause itself are members; every
//!   other alert the cause explains is suppressed, with the upstream entity and the
//!   evidence that silenced it.
//! - **Resolve** when every member alert is back to OK (past its cool-down, which the
//!   alert state machine holds) and no finding names the cause any more. A cause that
//!   comes back within `reopen_within_ms` reopens its incident: a flapping link is one
//!   incident, not twenty.

use super::model::{
    AlertKey, Incident, IncidentChange, IncidentState, Suppressed, TimelineKind, Transition,
};
use super::title::title;
use crate::alert::{EntityKind, Level, Phase};
use crate::rca::{Analysis, Cause, CauseEntity, CauseKind, Finding};
use ispvm_proto::DeviceRole;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What the manager needs to know about the inventory.
pub trait IncidentContext {
    /// Display name (identity) and role of a device.
    fn device(&self, id: &str) -> Option<(String, DeviceRole)>;
    /// The two ends of a link, `(device, interface)`.
    fn link(&self, id: &str) -> Option<[(String, String); 2]>;
    /// The device at the other end of the link `device:interface` is an end of.
    fn far_end(&self, device: &str, interface: &str) -> Option<String>;
    /// Display name of a site.
    fn site(&self, id: &str) -> Option<String>;
    /// PPPoE sessions active on a device just before `before_ms`.
    fn subscribers_before(&self, device: &str, before_ms: i64) -> Option<u64>;
}

/// When incidents open and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentPolicy {
    pub warnings_to_open: usize,
    pub warning_window_ms: i64,
    pub reopen_within_ms: i64,
    /// A finding that has stood this long opens an incident on its own: a critical
    /// one with no alert behind it (an upstream that stopped carrying traffic has no
    /// alert rule, its BGP session drops only after the hold time), a lesser one with
    /// the one warning it explains.
    pub finding_alone_ms: i64,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            warnings_to_open: 2,
            warning_window_ms: 300_000,
            reopen_within_ms: 600_000,
            finding_alone_ms: 10_000,
        }
    }
}

/// An alert as the manager sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFact {
    pub key: AlertKey,
    pub level: Level,
    pub phase: Phase,
    /// When it started firing (or pending).
    pub since_ms: i64,
    pub site: Option<String>,
    /// The device the alert is about (a probe target's device, when it checks one).
    pub device: Option<String>,
    /// What the alert would mean as a cause when no finding explains it.
    pub meaning: CauseKind,
}

impl AlertFact {
    fn active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Firing | Phase::Recovering | Phase::Suppressed
        )
    }

    fn device(&self) -> Option<&str> {
        self.device
            .as_deref()
            .or_else(|| self.key.entity.device_id())
    }

    /// `(device, interface)` of an interface alert.
    fn interface(&self) -> Option<(&str, &str)> {
        (self.key.entity.kind == EntityKind::Interface)
            .then(|| self.key.entity.id.split_once('/'))
            .flatten()
    }
}

/// What a cycle changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleOutcome {
    /// Transitions to announce.
    pub changes: Vec<IncidentChange>,
    /// Incidents to persist.
    pub touched: BTreeSet<u64>,
    /// Entities to mute, with the reason (an entity absent here is unmuted).
    pub suppress: BTreeMap<crate::alert::EntityRef, String>,
}

/// The incidents of one tenant.
#[derive(Debug, Default)]
pub struct Incidents {
    policy: IncidentPolicy,
    incidents: BTreeMap<u64, Incident>,
    next_id: u64,
    /// Causes the previous cycle's analysis found, with when each was first found in
    /// an unbroken run of analyses: a critical finding seen twice in a row is stable
    /// enough to open an incident before any alert has waited out its `for`, and one
    /// that has stood for `finding_alone_ms` is enough on its own.
    found_since: HashMap<Cause, i64>,
    /// When each cause was last found, kept for `warning_window_ms`: a cause that
    /// comes back after a gap (a flapping link, found for one analysis per flap) is
    /// as stable as one found twice in a row.
    last_found: HashMap<Cause, i64>,
}

fn severity_of(kind: CauseKind, alerts: &[&AlertFact]) -> Level {
    let critical_kind = matches!(
        kind,
        CauseKind::DeviceDown
            | CauseKind::LinkDown
            | CauseKind::SiteIsolated
            | CauseKind::UpstreamLost
    );
    if critical_kind || alerts.iter().any(|a| a.level == Level::Critical) {
        Level::Critical
    } else {
        Level::Warning
    }
}

/// Whether `alert` is on a link's interface at either end.
fn on_link(alert: &AlertFact, link: &str, ctx: &dyn IncidentContext) -> bool {
    ctx.link(link).is_some_and(|ends| {
        ends.iter()
            .any(|(d, i)| alert.interface() == Some((d.as_str(), i.as_str())))
    })
}

/// Whether `alert` sits on the cause itself (a member) rather than downstream of it.
fn on_cause(alert: &AlertFact, f: &Finding, ctx: &dyn IncidentContext) -> bool {
    match &f.cause.entity {
        // A silent management plane explains the device's own reachability alerts,
        // not its interfaces, sessions or probes (those still work).
        CauseEntity::Device { id } if f.cause.kind == CauseKind::ManagementPlane => {
            alert.key.entity.kind == EntityKind::Device && alert.device() == Some(id.as_str())
        }
        CauseEntity::Device { id } => alert.device() == Some(id.as_str()),
        CauseEntity::Link { id } => on_link(alert, id, ctx),
        CauseEntity::Interface { device, interface } => {
            alert.interface() == Some((device.as_str(), interface.as_str()))
                || (alert.key.entity.kind == EntityKind::Peer
                    && alert.device() == Some(device.as_str()))
        }
        CauseEntity::BgpSession { device, peer, .. } => {
            alert.key.entity.kind == EntityKind::Peer
                && (alert.device() == Some(device.as_str()) || alert.device() == Some(peer))
        }
        // The live ends of the links into the site.
        CauseEntity::Site { .. } => f.parts.iter().any(|p| match p {
            CauseEntity::Link { id } => on_link(alert, id, ctx),
            _ => false,
        }),
        CauseEntity::Agent { .. } => false,
    }
}

/// Whether the finding explains `alert` at all: it is on the cause, on a device the
/// cause cut off, on a port facing one (a live neighbour's link to a dead router), or
/// on a BGP session the cause took down.
fn explains(f: &Finding, alert: &AlertFact, ctx: &dyn IncidentContext) -> bool {
    let impacted = |d: &str| f.impact.devices.iter().any(|x| x == d);
    on_cause(alert, f, ctx)
        || alert.device().is_some_and(impacted)
        || alert
            .interface()
            .and_then(|(d, i)| ctx.far_end(d, i))
            .is_some_and(|d| impacted(&d))
        || (alert.key.entity.kind == EntityKind::Peer && f.sessions.contains(&alert.key.entity.id))
}

impl Incidents {
    pub fn new(policy: IncidentPolicy) -> Self {
        Incidents {
            policy,
            incidents: BTreeMap::new(),
            next_id: 1,
            found_since: HashMap::new(),
            last_found: HashMap::new(),
        }
    }

    /// Continues from stored incidents (open ones and recently resolved ones).
    pub fn restore(&mut self, stored: Vec<Incident>, next_id: u64) {
        for i in stored {
            self.next_id = self.next_id.max(i.id + 1);
            self.incidents.insert(i.id, i);
        }
        self.next_id = self.next_id.max(next_id);
    }

    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Incident> {
        self.incidents.get_mut(&id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    fn transition(&mut self, id: u64, t: Transition, now_ms: i64, out: &mut CycleOutcome) {
        if let Some(i) = self.incidents.get_mut(&id) {
            i.transitions += 1;
            i.updated_ms = now_ms;
            i.log(now_ms, TimelineKind::Transition, t.as_str());
            out.changes.push(IncidentChange {
                incident: id,
                transition: t,
                seq: i.transitions,
                at_ms: now_ms,
            });
            out.touched.insert(id);
        }
    }

    fn subscribers(f: &Finding, ctx: &dyn IncidentContext) -> u64 {
        f.impact
            .devices
            .iter()
            .filter(|d| {
                ctx.device(d)
                    .is_some_and(|(_, r)| r == DeviceRole::PppoeConcentrator)
            })
            .filter_map(|d| ctx.subscribers_before(d, f.since_ms))
            .sum()
    }

    /// Whether alerts justify an incident.
    fn triggers(&self, alerts: &[&AlertFact], now_ms: i64) -> bool {
        if alerts.iter().any(|a| a.level == Level::Critical) {
            return true;
        }
        let mut by_site: BTreeMap<Option<&str>, usize> = BTreeMap::new();
        for a in alerts {
            if now_ms - a.since_ms <= self.policy.warning_window_ms {
                *by_site.entry(a.site.as_deref()).or_default() += 1;
            }
        }
        by_site.values().any(|n| *n >= self.policy.warnings_to_open)
    }

    /// One correlation cycle.
    pub fn update(
        &mut self,
        now_ms: i64,
        analysis: &Analysis,
        alerts: &[AlertFact],
        ctx: &dyn IncidentContext,
    ) -> CycleOutcome {
        let mut out = CycleOutcome::default();
        let active: Vec<&AlertFact> = alerts.iter().filter(|a| a.active()).collect();
        let mut claimed: HashSet<&AlertKey> = HashSet::new();
        let mut seen: HashSet<u64> = HashSet::new();
        for f in &analysis.findings {
            let explained: Vec<&AlertFact> = active
                .iter()
                .copied()
                .filter(|a| !claimed.contains(&a.key) && explains(f, a, ctx))
                .collect();
            let keys: HashSet<&AlertKey> = explained.iter().map(|a| &a.key).collect();
            // Another finding takes over an open incident (re-roots it) only when it
            // shares its alerts, held for two analyses, and is not a lesser kind of
            // fault: a silent API found in passing does not rename a cut link.
            let stable = self.found_since.contains_key(&f.cause)
                || self
                    .last_found
                    .get(&f.cause)
                    .is_some_and(|t| now_ms - t <= self.policy.warning_window_ms);
            let weight = |k: CauseKind| severity_of(k, &[]);
            let matching = self
                .incidents
                .values()
                .filter(|i| !seen.contains(&i.id))
                .filter(|i| {
                    i.root_cause == f.cause
                        || (i.is_open()
                            && stable
                            && weight(f.cause.kind) >= weight(i.kind)
                            && (i.members.iter().any(|m| keys.contains(m))
                                || i.suppressed.iter().any(|s| keys.contains(&s.alert))))
                })
                .filter(|i| self.current(i, now_ms))
                .map(|i| i.id)
                .max();
            // Evidence arrives at different times (a poll before a probe round): a
            // finding opens an incident only once two analyses in a row found it. Its
            // alerts wait for it meanwhile, rather than opening incidents of their own.
            claimed.extend(keys.iter().copied());
            // Whether the finding opens an incident by itself (held two analyses in a
            // row). A critical one (a dead router, a link or a site cut off, an
            // upstream lost) backed by at least one alert, even one still waiting out
            // its `for`: the analysis has combined several signals already, so waiting
            // for a single-signal alert adds only delay. One that has stood for
            // `finding_alone_ms`: critical with no alert at all (a transit that stopped
            // carrying traffic has no rule of its own), a lesser one with the alert it
            // explains (a silent API is one warning, never the two a site needs), and
            // a monitoring agent nobody hears, which is the monitoring going partly
            // blind, and a link held at or near its capacity (the utilisation rule
            // averages over minutes; the analysis sees the polls and the trend).
            let standing = self
                .found_since
                .get(&f.cause)
                .is_some_and(|since| now_ms - since >= self.policy.finding_alone_ms);
            let opens = if severity_of(f.cause.kind, &[]) == Level::Critical {
                standing
                    || alerts.iter().any(|a| {
                        (a.phase == Phase::Pending && explains(f, a, ctx)) || keys.contains(&a.key)
                    })
            } else {
                standing
                    && (!explained.is_empty()
                        || matches!(f.cause.kind, CauseKind::AgentLost | CauseKind::Congestion))
            };
            // A lesser finding over alerts an open incident already holds is the tail
            // of that fault (a transit's BGP session still re-establishing after its
            // traffic came back): the alerts stay where they are.
            let holder = || {
                self.incidents
                    .values()
                    .filter(|i| i.is_open())
                    .find(|i| {
                        i.members.iter().any(|m| keys.contains(m))
                            || i.suppressed.iter().any(|s| keys.contains(&s.alert))
                    })
                    .map(|i| i.id)
            };
            if matching.is_none()
                && let Some(id) = holder()
            {
                seen.insert(id);
                continue;
            }
            let id = match matching {
                Some(id) => id,
                None if stable && !explained.is_empty() && self.triggers(&explained, now_ms) => {
                    self.open(f, now_ms, ctx, &explained, &mut out)
                }
                None if stable && opens => self.open(f, now_ms, ctx, &explained, &mut out),
                None => continue,
            };
            seen.insert(id);
            self.reopen(id, now_ms, &mut out);
            self.refresh(id, f, &explained, now_ms, ctx, &mut out);
        }
        let before = std::mem::take(&mut self.found_since);
        self.found_since = analysis
            .findings
            .iter()
            .map(|f| {
                let since = before.get(&f.cause).copied().unwrap_or(now_ms);
                (f.cause.clone(), since)
            })
            .collect();
        for f in &analysis.findings {
            self.last_found.insert(f.cause.clone(), now_ms);
        }
        let window = self.policy.warning_window_ms;
        self.last_found.retain(|_, t| now_ms - *t <= window);
        self.unexplained(now_ms, &active, &claimed, &mut seen, ctx, &mut out);
        self.resolve(now_ms, alerts, &seen, &mut out);
        for i in self.incidents.values().filter(|i| i.is_open()) {
            for s in &i.suppressed {
                out.suppress.insert(
                    s.alert.entity.clone(),
                    format!("incident #{}: {} ({})", i.id, s.upstream, s.evidence),
                );
            }
        }
        out
    }

    fn open(
        &mut self,
        f: &Finding,
        now_ms: i64,
        ctx: &dyn IncidentContext,
        alerts: &[&AlertFact],
        out: &mut CycleOutcome,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let incident = Incident {
            id,
            title: title(&f.cause, ctx),
            state: IncidentState::Open,
            severity: severity_of(f.cause.kind, alerts),
            kind: f.cause.kind,
            root_cause: f.cause.clone(),
            confidence: f.confidence,
            runner_ups: f.runner_ups.clone(),
            evidence: f.evidence.clone(),
            impact: f.impact.clone(),
            impacted_subscribers: Self::subscribers(f, ctx),
            opened_ms: now_ms,
            updated_ms: now_ms,
            resolved_ms: None,
            fault_since_ms: f.since_ms,
            members: Vec::new(),
            suppressed: Vec::new(),
            timeline: Vec::new(),
            ack: None,
            assignee: None,
            notes: Vec::new(),
            related_devices: Vec::new(),
            transitions: 0,
            reopened: 0,
        };
        self.incidents.insert(id, incident);
        self.transition(id, Transition::Opened, now_ms, out);
        id
    }

    /// Open, or resolved so recently that the same fault coming back is the same
    /// incident.
    fn current(&self, i: &Incident, now_ms: i64) -> bool {
        i.is_open()
            || i.resolved_ms
                .is_some_and(|r| now_ms - r <= self.policy.reopen_within_ms)
    }

    /// Opens a resolved incident again.
    fn reopen(&mut self, id: u64, now_ms: i64, out: &mut CycleOutcome) {
        let Some(i) = self.incidents.get_mut(&id) else {
            return;
        };
        if i.is_open() {
            return;
        }
        i.state = IncidentState::Open;
        i.resolved_ms = None;
        i.reopened += 1;
        i.log(now_ms, TimelineKind::Evidence, "the fault is back");
        self.transition(id, Transition::Opened, now_ms, out);
    }

    /// Brings an incident up to date with the finding that explains it now.
    fn refresh(
        &mut self,
        id: u64,
        f: &Finding,
        alerts: &[&AlertFact],
        now_ms: i64,
        ctx: &dyn IncidentContext,
        out: &mut CycleOutcome,
    ) {
        let Some(i) = self.incidents.get_mut(&id) else {
            return;
        };
        let mut pending = Vec::new();
        if i.root_cause != f.cause {
            i.log(
                now_ms,
                TimelineKind::Evidence,
                format!(
                    "root cause was {}, now {}",
                    i.root_cause.entity, f.cause.entity
                ),
            );
            i.root_cause = f.cause.clone();
            i.kind = f.cause.kind;
            i.title = title(&f.cause, ctx);
            pending.push(Transition::RootCauseChanged);
        }
        let severity = severity_of(f.cause.kind, alerts).max(i.severity);
        if severity > i.severity {
            i.severity = severity;
            pending.push(Transition::Escalated);
        }
        for e in &f.evidence {
            if !i.evidence.iter().any(|x| x.text == e.text) {
                i.log(e.at_ms, TimelineKind::Evidence, e.text.clone());
                i.evidence.push(e.clone());
            }
        }
        i.confidence = f.confidence;
        i.runner_ups = f.runner_ups.clone();
        if f.impact.devices.len() >= i.impact.devices.len() {
            i.impact = f.impact.clone();
            i.impacted_subscribers = i.impacted_subscribers.max(Self::subscribers(f, ctx));
        }
        i.fault_since_ms = i.fault_since_ms.min(f.since_ms);
        for d in f.impact.devices.iter().chain(&f.observed_devices) {
            if !i.related_devices.contains(d) {
                i.related_devices.push(d.clone());
            }
        }
        let strongest = f
            .evidence
            .iter()
            .max_by(|a, b| a.weight.total_cmp(&b.weight))
            .map(|e| e.text.clone())
            .unwrap_or_default();
        for a in alerts {
            let member = on_cause(a, f, ctx);
            if member {
                if !i.members.contains(&a.key) {
                    i.members.push(a.key.clone());
                    i.log(now_ms, TimelineKind::AlertJoined, a.key.entity.to_string());
                }
            } else if !i.suppressed.iter().any(|s| s.alert == a.key) {
                i.suppressed.push(Suppressed {
                    alert: a.key.clone(),
                    upstream: f.cause.entity.clone(),
                    evidence: strongest.clone(),
                    at_ms: now_ms,
                });
                i.log(
                    now_ms,
                    TimelineKind::AlertSuppressed,
                    a.key.entity.to_string(),
                );
            }
        }
        i.updated_ms = now_ms;
        out.touched.insert(id);
        for t in pending {
            self.transition(id, t, now_ms, out);
        }
    }

    /// Alerts no finding explains: one incident per site when they justify one, with
    /// the alert's own entity as the cause.
    fn unexplained(
        &mut self,
        now_ms: i64,
        active: &[&AlertFact],
        claimed: &HashSet<&AlertKey>,
        seen: &mut HashSet<u64>,
        ctx: &dyn IncidentContext,
        out: &mut CycleOutcome,
    ) {
        // Children of an incident that just resolved lag behind it by a cycle or two
        // (unmuted, then cleared): they are not a new fault unless they fired again.
        let lagging = |a: &AlertFact| {
            self.incidents.values().any(|i| {
                i.resolved_ms.is_some_and(|r| {
                    now_ms - r <= self.policy.reopen_within_ms
                        && a.since_ms < r
                        && i.suppressed.iter().any(|s| s.alert == a.key)
                })
            })
        };
        // An alert on a device the fault was seen to affect belongs to that fault's
        // incident (an SLA window still full of the outage, a vantage's late view),
        // not to a new one: a child while the incident is open, nothing after.
        let related = |a: &AlertFact| {
            let d = a.device()?;
            self.incidents
                .values()
                .filter(|i| self.current(i, now_ms))
                .find(|i| i.related_devices.iter().any(|x| x == d))
                .map(|i| (i.id, i.is_open(), i.root_cause.entity.clone()))
        };
        let mut children: Vec<(u64, AlertKey, CauseEntity)> = Vec::new();
        let mut by_site: BTreeMap<Option<String>, Vec<&AlertFact>> = BTreeMap::new();
        for a in active {
            if claimed.contains(&a.key) {
                continue;
            }
            if let Some((id, open, upstream)) = related(a) {
                if open {
                    children.push((id, a.key.clone(), upstream));
                }
                continue;
            }
            if a.phase != Phase::Suppressed && a.phase != Phase::Recovering && !lagging(a) {
                by_site.entry(a.site.clone()).or_default().push(a);
            }
        }
        for (id, key, upstream) in children {
            seen.insert(id);
            if let Some(i) = self.incidents.get_mut(&id)
                && !i.suppressed.iter().any(|s| s.alert == key)
                && !i.members.contains(&key)
            {
                i.log(
                    now_ms,
                    TimelineKind::AlertSuppressed,
                    key.entity.to_string(),
                );
                i.suppressed.push(Suppressed {
                    alert: key,
                    upstream,
                    evidence: "on a device this fault affected".into(),
                    at_ms: now_ms,
                });
                out.touched.insert(id);
            }
        }
        for (_, alerts) in by_site {
            let open = self
                .incidents
                .values()
                .filter(|i| !seen.contains(&i.id) && self.current(i, now_ms))
                .filter(|i| alerts.iter().any(|a| i.members.contains(&a.key)))
                .map(|i| i.id)
                .max();
            let Some(first) = alerts.first() else {
                continue;
            };
            let cause = Cause {
                kind: first.meaning,
                entity: match first.interface() {
                    Some((d, i)) => CauseEntity::Interface {
                        device: d.to_owned(),
                        interface: i.to_owned(),
                    },
                    None => CauseEntity::Device {
                        id: first.device().unwrap_or(&first.key.entity.id).to_owned(),
                    },
                },
            };
            let finding = Finding {
                cause,
                score: 0.0,
                confidence: 0.5,
                runner_ups: Vec::new(),
                evidence: alerts
                    .iter()
                    .map(|a| crate::rca::Evidence {
                        at_ms: a.since_ms,
                        weight: 1.0,
                        text: format!("alert {} on {}", a.key.rule_id, a.key.entity),
                    })
                    .collect(),
                impact: Default::default(),
                since_ms: alerts.iter().map(|a| a.since_ms).min().unwrap_or(now_ms),
                parts: Vec::new(),
                observed_devices: Vec::new(),
                sessions: Vec::new(),
            };
            let id = match open {
                Some(id) => id,
                None if self.triggers(&alerts, now_ms) => {
                    self.open(&finding, now_ms, ctx, &alerts, out)
                }
                None => continue,
            };
            seen.insert(id);
            self.reopen(id, now_ms, out);
            if let Some(i) = self.incidents.get_mut(&id) {
                for a in &alerts {
                    if !i.members.contains(&a.key) {
                        i.members.push(a.key.clone());
                        i.log(now_ms, TimelineKind::AlertJoined, a.key.entity.to_string());
                        out.touched.insert(id);
                    }
                }
            }
        }
    }

    /// Open incidents no finding named this cycle, whose members are all OK and whose
    /// silenced children's conditions have cleared (a child still down is a fault the
    /// analysis will name again, not a resolution).
    fn resolve(
        &mut self,
        now_ms: i64,
        alerts: &[AlertFact],
        seen: &HashSet<u64>,
        out: &mut CycleOutcome,
    ) {
        let active: HashSet<&AlertKey> = alerts
            .iter()
            .filter(|a| a.phase != Phase::Ok)
            .map(|a| &a.key)
            .collect();
        let still_down: HashSet<&AlertKey> = alerts
            .iter()
            .filter(|a| matches!(a.phase, Phase::Firing | Phase::Suppressed | Phase::Pending))
            .map(|a| &a.key)
            .collect();
        let done: Vec<u64> = self
            .incidents
            .values()
            .filter(|i| i.is_open() && !seen.contains(&i.id))
            .filter(|i| !i.members.iter().any(|m| active.contains(m)))
            .filter(|i| !i.suppressed.iter().any(|s| still_down.contains(&s.alert)))
            .filter(|i| i.reopened == 0 || now_ms - i.updated_ms >= self.policy.reopen_within_ms)
            .map(|i| i.id)
            .collect();
        for id in done {
            if let Some(i) = self.incidents.get_mut(&id) {
                i.state = IncidentState::Resolved;
                i.resolved_ms = Some(now_ms);
            }
            self.transition(id, Transition::Resolved, now_ms, out);
        }
    }

    /// Forgets resolved incidents older than `keep_ms` (they live on in the store).
    pub fn forget_resolved(&mut self, now_ms: i64, keep_ms: i64) {
        self.incidents
            .retain(|_, i| i.is_open() || i.resolved_ms.is_none_or(|r| now_ms - r <= keep_ms));
    }
}
