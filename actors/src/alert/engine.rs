//! The alert engine: rules evaluated over recent samples on fixed schedules.
//!
//! Ingest feeds it samples and events; each cycle (fast, medium, slow) evaluates the
//! rules of that schedule over every entity they select and steps each (rule, entity)
//! state machine. The engine is plain data and synchronous so it can be benchmarked and
//! tested with a fake clock; the actor around it owns timers and persistence.

use super::entity::{EntityAttrs, EntityRef, MaintenanceWindow, scope_matches};
use super::reachability::{self, DeviceSignals};
use super::rule::{EntityKind, Rule, RuleKind, Schedule, Threshold, WindowFunc};
use super::state::{AlertState, Explanation, Level, NotificationKind, Phase, Timing, Verdict};
use super::window::{Aggregate, Point, SeriesWindow, level_breached};
use ispvm_proto::{Event, EventKind, MetricName, MetricSample};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Samples older than this are not kept for evaluation whatever the rules say.
const MAX_HORIZON_MS: i64 = 86_400_000;
/// How long a syslog message from a device counts as "the device is alive".
const SYSLOG_ALIVE_MS: i64 = 120_000;
/// Most recent events kept per device for reachability.
const MAX_EVENTS_PER_DEVICE: usize = 32;

type EntityIdx = u32;
type RuleIdx = u32;

struct Entity {
    key: EntityRef,
    attrs: EntityAttrs,
    parent: Option<EntityIdx>,
    last_heard_ms: i64,
    /// Interfaces: seen running at least once. A port that never ran (unused, nothing
    /// plugged in) is not "down"; only uplinks are watched from the start.
    seen_running: bool,
}

struct CompiledRule {
    rule: Arc<Rule>,
    timing: Timing,
    targets: Vec<EntityIdx>,
}

/// A notification the engine wants sent, with everything a message needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub level: Level,
    pub rule_id: String,
    pub rule_name: String,
    pub entity: EntityRef,
    pub ts_ms: i64,
    pub explanation: Explanation,
}

/// A (rule, entity) whose state changed in a cycle: persist `state`, send `notifications`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertChange {
    pub rule_id: String,
    pub rule_name: String,
    pub entity: EntityRef,
    pub state: AlertState,
    pub notifications: Vec<Notification>,
}

/// Counts of one evaluation cycle, for telemetry and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleStats {
    pub rules: usize,
    pub evaluations: usize,
    pub changes: usize,
    pub notifications: usize,
}

/// The engine of one tenant.
#[derive(Default)]
pub struct Engine {
    entities: Vec<Entity>,
    index: HashMap<EntityRef, EntityIdx>,
    series: HashMap<(EntityIdx, MetricName), u32>,
    windows: Vec<SeriesWindow>,
    vantages: Vec<String>,
    vantage_index: HashMap<String, u16>,
    rules: Vec<CompiledRule>,
    rule_index: HashMap<String, RuleIdx>,
    targets_dirty: bool,
    states: HashMap<(RuleIdx, EntityIdx), AlertState>,
    /// States restored for rules not loaded (yet): kept so a later rule load finds them.
    orphan_states: HashMap<(String, EntityRef), AlertState>,
    maintenance: Vec<MaintenanceWindow>,
    /// Upstream root causes muting an entity (set by the correlator).
    upstream: HashMap<EntityIdx, String>,
    /// Probe targets that check a device.
    device_probes: HashMap<EntityIdx, Vec<EntityIdx>>,
    events: HashMap<EntityIdx, VecDeque<(i64, EventKind)>>,
    horizon_ms: i64,
    /// Metrics some loaded rule reads: only their points are kept.
    needed: HashSet<MetricName>,
}

impl Engine {
    pub fn new() -> Self {
        Engine {
            horizon_ms: 3_600_000,
            ..Engine::default()
        }
    }

    /// Replaces the rule set. Alert states of rules that remain are kept; states of
    /// removed rules are dropped (the caller deletes them from storage).
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        let mut old_states: HashMap<(String, EntityRef), AlertState> =
            std::mem::take(&mut self.orphan_states);
        for ((r, e), st) in self.states.drain() {
            let rid = self.rules[r as usize].rule.id.clone();
            old_states.insert((rid, self.entities[e as usize].key.clone()), st);
        }
        self.rules.clear();
        self.rule_index.clear();
        self.needed.clear();
        let mut horizon = 600_000i64;
        for rule in rules.into_iter().filter(|r| r.enabled) {
            let idx = self.rules.len() as RuleIdx;
            let ms = |s: u64| i64::try_from(s.saturating_mul(1_000)).unwrap_or(i64::MAX);
            horizon = horizon
                .max(rule.window.duration_ms())
                .max(ms(rule.flap.window_s));
            if let RuleKind::BgpNotEstablished { flap_rate: Some(f) } = &rule.kind {
                horizon = horizon.max(ms(f.window_s));
            }
            let timing = Timing {
                for_ms: ms(rule.for_s),
                cooldown_ms: ms(rule.cooldown_s),
                flap_transitions: rule.flap.transitions,
                flap_window_ms: ms(rule.flap.window_s),
            };
            self.needed.extend(metrics_read(&rule.kind));
            self.rule_index.insert(rule.id.clone(), idx);
            self.rules.push(CompiledRule {
                rule: Arc::new(rule),
                timing,
                targets: Vec::new(),
            });
        }
        self.horizon_ms = horizon.min(MAX_HORIZON_MS);
        for ((rid, key), st) in old_states {
            self.restore(&rid, key, st);
        }
        self.targets_dirty = true;
    }

    /// The loaded (enabled) rules.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| r.rule.as_ref())
    }

    /// Puts back a persisted state (after a restart).
    pub fn restore(&mut self, rule_id: &str, entity: EntityRef, state: AlertState) {
        match self.rule_index.get(rule_id) {
            Some(&r) => {
                let e = self.entity(&entity);
                self.states.insert((r, e), state);
            }
            None => {
                self.orphan_states
                    .insert((rule_id.to_owned(), entity), state);
            }
        }
    }

    /// Creates or updates an entity's attributes (from inventory).
    pub fn upsert_entity(&mut self, key: EntityRef, attrs: EntityAttrs) {
        let idx = self.entity(&key);
        let old_device = self.entities[idx as usize].attrs.device.clone();
        if old_device != attrs.device {
            if let Some(d) = old_device.and_then(|d| self.index.get(&EntityRef::device(d)).copied())
                && let Some(list) = self.device_probes.get_mut(&d)
            {
                list.retain(|&p| p != idx);
            }
            if let Some(d) = &attrs.device {
                let d = self.entity(&EntityRef::device(d.clone()));
                self.device_probes.entry(d).or_default().push(idx);
            }
        }
        self.entities[idx as usize].attrs = attrs;
        self.targets_dirty = true;
    }

    /// Replaces the maintenance windows.
    pub fn set_maintenance(&mut self, windows: Vec<MaintenanceWindow>) {
        self.maintenance = windows;
    }

    /// Mutes an entity's alerts because an upstream root cause explains them, or
    /// unmutes it with `None`.
    pub fn set_upstream_suppression(&mut self, entity: &EntityRef, reason: Option<String>) {
        let idx = self.entity(entity);
        match reason {
            Some(r) => {
                self.upstream.insert(idx, r);
            }
            None => {
                self.upstream.remove(&idx);
            }
        }
    }

    /// Feeds one sample reported by `vantage` (the agent that measured it).
    pub fn observe(&mut self, sample: &MetricSample, vantage: &str) {
        let key = EntityRef::from(&sample.entity);
        self.observe_point(&key, sample.metric, sample.ts_ms, sample.value, vantage);
    }

    /// Feeds one point of one series.
    pub fn observe_point(
        &mut self,
        entity: &EntityRef,
        metric: MetricName,
        ts_ms: i64,
        value: f64,
        vantage: &str,
    ) {
        let e = self.entity(entity);
        let entity = &mut self.entities[e as usize];
        entity.last_heard_ms = entity.last_heard_ms.max(ts_ms);
        if metric == MetricName::InterfaceRunning && value >= 0.5 {
            entity.seen_running = true;
        }
        if let Some(p) = entity.parent {
            let heard = &mut self.entities[p as usize].last_heard_ms;
            *heard = (*heard).max(ts_ms);
        }
        if !self.needed.contains(&metric) {
            return;
        }
        let v = self.vantage(vantage);
        let series = match self.series.get(&(e, metric)) {
            Some(&s) => s,
            None => {
                let s = self.windows.len() as u32;
                self.windows.push(SeriesWindow::default());
                self.series.insert((e, metric), s);
                s
            }
        };
        self.windows[series as usize].push(Point {
            ts_ms,
            value,
            vantage: v,
        });
    }

    /// How far back the loaded rules look, ms: what a restart must reload.
    pub fn horizon_ms(&self) -> i64 {
        self.horizon_ms
    }

    /// Feeds one event (syslog and agent events count as reachability evidence).
    pub fn observe_event(&mut self, event: &Event) {
        let Some(device) = event.entity.device() else {
            return;
        };
        let e = self.entity(&EntityRef::device(device));
        let list = self.events.entry(e).or_default();
        list.push_back((event.ts_ms, event.kind));
        while list.len() > MAX_EVENTS_PER_DEVICE {
            list.pop_front();
        }
    }

    /// How many series and points the engine holds (for memory accounting).
    pub fn footprint(&self) -> (usize, usize) {
        (
            self.windows.len(),
            self.windows.iter().map(SeriesWindow::len).sum(),
        )
    }

    /// The current state of one (rule, entity), if it is not idle.
    pub fn state(&self, rule_id: &str, entity: &EntityRef) -> Option<&AlertState> {
        let r = self.rule_index.get(rule_id)?;
        let e = self.index.get(entity)?;
        self.states.get(&(*r, *e))
    }

    /// Every non-idle alert state.
    pub fn states(&self) -> impl Iterator<Item = (&str, &EntityRef, &AlertState)> {
        self.states.iter().map(|((r, e), s)| {
            (
                self.rules[*r as usize].rule.id.as_str(),
                &self.entities[*e as usize].key,
                s,
            )
        })
    }

    /// Runs one cycle of `schedule` at `now_ms`; returns the changes to persist and
    /// notify, in a stable order.
    pub fn evaluate(&mut self, schedule: Schedule, now_ms: i64) -> (Vec<AlertChange>, CycleStats) {
        if self.targets_dirty {
            self.compute_targets();
        }
        self.prune(now_ms);
        let mut stats = CycleStats::default();
        let mut changes = Vec::new();
        for r in 0..self.rules.len() {
            if self.rules[r].rule.schedule() != schedule {
                continue;
            }
            stats.rules += 1;
            let rule = Arc::clone(&self.rules[r].rule);
            let timing = self.rules[r].timing;
            for i in 0..self.rules[r].targets.len() {
                let e = self.rules[r].targets[i];
                stats.evaluations += 1;
                let key = (r as RuleIdx, e);
                let current = self.states.get(&key);
                let Some(verdict) = self.verdict(&rule, e, current, now_ms) else {
                    continue;
                };
                if current.is_none() && verdict.level.is_none() {
                    continue;
                }
                let suppression = self.suppression(e, now_ms);
                let mut timing = timing;
                if matches!(rule.kind, RuleKind::InterfaceDown)
                    && self.entities[e as usize].attrs.uplink
                {
                    timing.for_ms = 0;
                }
                let state = self.states.entry(key).or_default();
                let step = state.step(verdict, suppression.as_deref(), now_ms, &timing);
                if !step.changed {
                    if state.is_idle() {
                        self.states.remove(&key);
                    }
                    continue;
                }
                let entity = self.entities[e as usize].key.clone();
                let notifications: Vec<Notification> = step
                    .notify
                    .iter()
                    .map(|(kind, level)| Notification {
                        kind: *kind,
                        level: *level,
                        rule_id: rule.id.clone(),
                        rule_name: rule.name.clone(),
                        entity: entity.clone(),
                        ts_ms: now_ms,
                        explanation: state.explanation.clone(),
                    })
                    .collect();
                stats.changes += 1;
                stats.notifications += notifications.len();
                changes.push(AlertChange {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    entity,
                    state: state.clone(),
                    notifications,
                });
                if state.is_idle() {
                    self.states.remove(&key);
                }
            }
        }
        (changes, stats)
    }

    fn entity(&mut self, key: &EntityRef) -> EntityIdx {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let parent = match key.kind {
            EntityKind::Interface | EntityKind::Peer => key
                .device_id()
                .map(|d| self.entity(&EntityRef::device(d.to_owned()))),
            _ => None,
        };
        let i = self.entities.len() as EntityIdx;
        self.entities.push(Entity {
            key: key.clone(),
            attrs: EntityAttrs::default(),
            parent,
            last_heard_ms: i64::MIN,
            seen_running: false,
        });
        self.index.insert(key.clone(), i);
        self.targets_dirty = true;
        i
    }

    fn vantage(&mut self, name: &str) -> u16 {
        if let Some(&v) = self.vantage_index.get(name) {
            return v;
        }
        let v = u16::try_from(self.vantages.len()).unwrap_or(u16::MAX);
        if v < u16::MAX {
            self.vantages.push(name.to_owned());
            self.vantage_index.insert(name.to_owned(), v);
        }
        v
    }

    fn compute_targets(&mut self) {
        for r in &mut self.rules {
            let kind = r.rule.kind.entity_kind();
            r.targets = self
                .entities
                .iter()
                .enumerate()
                .filter(|(_, e)| e.key.kind == kind)
                .filter(|(_, e)| {
                    let parent = e.parent.map(|p| &self.entities[p as usize].attrs);
                    scope_matches(&r.rule.scope, &e.key, &e.attrs, parent)
                })
                .map(|(i, _)| i as EntityIdx)
                .collect();
        }
        self.targets_dirty = false;
    }

    fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.horizon_ms);
        for w in &mut self.windows {
            w.prune(horizon);
        }
    }

    fn suppression(&self, e: EntityIdx, now_ms: i64) -> Option<String> {
        let entity = &self.entities[e as usize];
        let parent = entity.parent.map(|p| &self.entities[p as usize].attrs);
        if let Some(mw) = self.maintenance.iter().find(|m| {
            m.active_at(now_ms) && scope_matches(&m.scope, &entity.key, &entity.attrs, parent)
        }) {
            return Some(format!("maintenance window {}", mw.id));
        }
        self.upstream
            .get(&e)
            .or_else(|| entity.parent.and_then(|p| self.upstream.get(&p)))
            .map(|r| format!("upstream: {r}"))
    }

    fn window_of(&self, e: EntityIdx, metric: MetricName) -> Option<&SeriesWindow> {
        self.series
            .get(&(e, metric))
            .map(|&s| &self.windows[s as usize])
    }

    /// The rule's verdict for one entity, `None` when there is no data to judge by (an
    /// unknown is not a recovery).
    fn verdict(
        &self,
        rule: &Rule,
        e: EntityIdx,
        current: Option<&AlertState>,
        now_ms: i64,
    ) -> Option<Verdict> {
        let active = current
            .filter(|s| s.phase != Phase::Ok)
            .and_then(|s| s.level);
        match &rule.kind {
            RuleKind::Reachability => self.reachability(rule, e, now_ms),
            RuleKind::InterfaceDown => {
                let attrs = &self.entities[e as usize].attrs;
                if attrs.disabled {
                    return Some(clear("interface is administratively disabled"));
                }
                if !attrs.uplink && !self.entities[e as usize].seen_running {
                    // Never seen running: an unused port, unknown rather than down.
                    return None;
                }
                let level = rule.severity.unwrap_or(if attrs.uplink {
                    Level::Critical
                } else {
                    Level::Warning
                });
                self.boolean(
                    rule,
                    e,
                    MetricName::InterfaceRunning,
                    level,
                    "interface not running",
                    now_ms,
                )
            }
            RuleKind::BgpNotEstablished { flap_rate } => {
                let level = rule.severity.unwrap_or(Level::Critical);
                let down = self.boolean(
                    rule,
                    e,
                    MetricName::BgpSessionState,
                    level,
                    "BGP session not established",
                    now_ms,
                )?;
                if down.level.is_some() {
                    return Some(down);
                }
                let Some(f) = flap_rate else {
                    return Some(down);
                };
                let w = self.window_of(e, MetricName::BgpSessionState)?;
                let window_ms = i64::try_from(f.window_s.saturating_mul(1_000)).unwrap_or(i64::MAX);
                let mut changes = 0u32;
                let mut prev: Option<bool> = None;
                for p in w.within(now_ms, window_ms) {
                    let up = p.value >= 0.5;
                    if prev.is_some_and(|q| q != up) {
                        changes += 1;
                    }
                    prev = Some(up);
                }
                // Hysteresis: once flapping, it clears only below half the rate. Only a
                // flap verdict holds itself: one outage and its recovery are two changes,
                // not a flap.
                let flapping = current.is_some_and(|s| {
                    s.phase != Phase::Ok && s.explanation.func.as_deref() == Some("state_changes")
                });
                let needed = if flapping {
                    f.transitions.div_ceil(2)
                } else {
                    f.transitions
                };
                if changes >= needed.max(1) {
                    Some(Verdict {
                        level: Some(Level::Warning),
                        explanation: Explanation {
                            summary: format!(
                                "BGP session changed state {changes} times in {} s (flap rate {} per {} s)",
                                f.window_s, f.transitions, f.window_s
                            ),
                            metric: Some(MetricName::BgpSessionState.as_str().into()),
                            func: Some("state_changes".into()),
                            window_s: Some(f.window_s),
                            value: Some(f64::from(changes)),
                            threshold: Some(format!(">= {}", f.transitions)),
                            ..Explanation::default()
                        },
                    })
                } else {
                    Some(down)
                }
            }
            RuleKind::Utilisation => {
                let capacity = self.entities[e as usize]
                    .attrs
                    .capacity_bps
                    .filter(|c| *c > 0.0)?;
                let pct = move |v: f64| v * 100.0 / capacity;
                let rx = self.window_of(e, MetricName::InterfaceRxBps);
                let tx = self.window_of(e, MetricName::InterfaceTxBps);
                self.threshold_verdict(rule, active, now_ms, "utilisation %", &[rx, tx], pct)
            }
            kind => {
                let metric = kind.metric()?;
                let w = self.window_of(e, metric);
                self.threshold_verdict(rule, active, now_ms, metric.as_str(), &[w], |v| v)
            }
        }
    }

    fn boolean(
        &self,
        rule: &Rule,
        e: EntityIdx,
        metric: MetricName,
        level: Level,
        what: &str,
        now_ms: i64,
    ) -> Option<Verdict> {
        let w = self.window_of(e, metric)?;
        let failing = |v: f64| v < 0.5;
        let agg = w.aggregate(&rule.window, now_ms, failing)?;
        let func = rule.window.func;
        let down = match func {
            WindowFunc::PercentFailing => agg.value >= rule.window.min_percent(),
            WindowFunc::ConsecutiveFailures => agg.value >= f64::from(rule.window.min_count()),
            // For a 0/1 metric: "min" is down if it was down at all, "avg"/"max"/"last"
            // read as down when the value is below one half.
            _ => failing(agg.value),
        };
        let mut explanation = explain(rule, metric.as_str(), &agg, None, None);
        if down {
            explanation.summary = format!("{what}: {}", explanation.summary);
        }
        Some(Verdict {
            level: down.then_some(level),
            explanation,
        })
    }

    fn threshold_verdict(
        &self,
        rule: &Rule,
        active: Option<Level>,
        now_ms: i64,
        what: &str,
        windows: &[Option<&SeriesWindow>],
        map: impl Fn(f64) -> f64 + Copy,
    ) -> Option<Verdict> {
        let mut clear_agg: Option<Aggregate> = None;
        for (level, t) in [
            (Level::Critical, rule.levels.critical),
            (Level::Warning, rule.levels.warn),
        ] {
            let Some(t) = t else { continue };
            let is_active = active.is_some_and(|a| a >= level);
            let counting = matches!(
                rule.window.func,
                WindowFunc::PercentFailing | WindowFunc::ConsecutiveFailures
            );
            // Several windows (rx and tx): the worst one decides.
            let mut worst: Option<Aggregate> = None;
            for w in windows.iter().flatten() {
                let failing = |v: f64| t.op.holds(map(v), t.value);
                let Some(mut agg) = w.aggregate(&rule.window, now_ms, failing) else {
                    continue;
                };
                if !counting {
                    agg.value = map(agg.value);
                }
                let higher_is_worse = counting || t.op.rising();
                let worse = worst.is_none_or(|b| {
                    if higher_is_worse {
                        agg.value > b.value
                    } else {
                        agg.value < b.value
                    }
                });
                if worse {
                    worst = Some(agg);
                }
            }
            let agg = worst?;
            if level_breached(&rule.window, &agg, &t, is_active) {
                return Some(Verdict {
                    level: Some(level),
                    explanation: explain(rule, what, &agg, Some(&t), Some(level)),
                });
            }
            clear_agg = Some(agg);
        }
        let agg = clear_agg?;
        Some(Verdict {
            level: None,
            explanation: explain(rule, what, &agg, None, None),
        })
    }

    fn reachability(&self, rule: &Rule, e: EntityIdx, now_ms: i64) -> Option<Verdict> {
        let window_ms = rule.window.duration_ms();
        let api = self
            .window_of(e, MetricName::DeviceUp)
            .and_then(|w| {
                w.latest_per_vantage(now_ms, window_ms)
                    .into_iter()
                    .max_by_key(|p| p.ts_ms)
            })
            .map(|p| p.value >= 0.5);
        let mut ping = Vec::new();
        for &t in self.device_probes.get(&e).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(w) = self.window_of(t, MetricName::PingLossPct) {
                for p in w.latest_per_vantage(now_ms, window_ms) {
                    let vantage = self
                        .vantages
                        .get(usize::from(p.vantage))
                        .cloned()
                        .unwrap_or_default();
                    ping.push((vantage, p.value));
                }
            }
        }
        let syslog_alive = self.events.get(&e).is_some_and(|list| {
            list.iter().any(|(ts, kind)| {
                *kind == EventKind::Syslog && now_ms.saturating_sub(*ts) <= SYSLOG_ALIVE_MS
            })
        });
        let last_heard = self.entities[e as usize].last_heard_ms;
        let signals = DeviceSignals {
            api_up: api,
            ping_loss_by_vantage: ping,
            syslog_alive,
            last_heard_ms: (last_heard != i64::MIN).then_some(last_heard),
        };
        reachability::judge(&signals, rule.severity.unwrap_or(Level::Critical), now_ms)
    }
}

/// The metrics a rule of this kind reads.
fn metrics_read(kind: &RuleKind) -> Vec<MetricName> {
    match kind {
        RuleKind::Reachability => vec![MetricName::DeviceUp, MetricName::PingLossPct],
        RuleKind::Utilisation => vec![MetricName::InterfaceRxBps, MetricName::InterfaceTxBps],
        other => other.metric().into_iter().collect(),
    }
}

fn clear(why: &str) -> Verdict {
    Verdict {
        level: None,
        explanation: Explanation {
            summary: why.to_owned(),
            ..Explanation::default()
        },
    }
}

fn explain(
    rule: &Rule,
    what: &str,
    agg: &Aggregate,
    t: Option<&Threshold>,
    level: Option<Level>,
) -> Explanation {
    let func = rule.window.func;
    let value = (agg.value * 100.0).round() / 100.0;
    let threshold = t.map(|t| match func {
        WindowFunc::PercentFailing => format!(
            ">= {}% of samples {} {}",
            rule.window.min_percent(),
            t.op.as_str(),
            t.value
        ),
        WindowFunc::ConsecutiveFailures => format!(
            ">= {} samples in a row {} {}",
            rule.window.min_count(),
            t.op.as_str(),
            t.value
        ),
        _ => format!("{} {}", t.op.as_str(), t.value),
    });
    let summary = match (&threshold, level) {
        (Some(th), Some(l)) => format!(
            "{} {what} over {} s = {value} ({th}, {}; {} samples)",
            func.as_str(),
            rule.window.duration_s,
            l.as_str(),
            agg.samples
        ),
        _ => format!(
            "{} {what} over {} s = {value} ({} samples)",
            func.as_str(),
            rule.window.duration_s,
            agg.samples
        ),
    };
    Explanation {
        summary,
        metric: Some(what.to_owned()),
        func: Some(func.as_str().to_owned()),
        window_s: Some(rule.window.duration_s),
        value: Some(value),
        threshold,
        samples: agg.samples,
        from_ms: Some(agg.from_ms),
        to_ms: Some(agg.to_ms),
        signals: Vec::new(),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
