//! Judging a scenario's `[[expect]]` blocks against what the monitoring concluded: the
//! incidents, their transitions and the alerts, read from the store.

use ispvm_actors::incident::Incident;
use ispvm_actors::rca::{CauseEntity, CauseKind};
use ispvm_sim::Topology;
use ispvm_sim::scenario::{ExpectSpec, RootCauseSpec};
use serde::Serialize;
use std::collections::HashSet;

/// What happened during the run, in scenario milliseconds from time zero.
pub struct Outcome {
    /// Every incident, with its opening time in scenario ms.
    pub incidents: Vec<(i64, Incident)>,
    /// Notifications that went out to the pager: `(incident, scenario ms of the
    /// transition they announce)`; held ones (maintenance, ack) are not here.
    pub notifications: Vec<(u64, i64)>,
    /// Device-down alerts that fired unsuppressed at the outage level: `(device,
    /// scenario ms)`.
    pub device_down_alerts: Vec<(String, i64)>,
    /// Alerts that fired to people (not muted), with the scenario ms they fired.
    pub alert_firings: Vec<(ispvm_actors::incident::AlertKey, i64)>,
}

/// The verdict on one `[[expect]]`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    pub detected: bool,
    /// Scenario seconds from the fault to the incident.
    pub latency_s: Option<f64>,
    pub incident: Option<u64>,
    pub title: Option<String>,
    pub root_cause: Option<String>,
    pub kind: Option<CauseKind>,
    pub confidence: Option<f64>,
    pub suppressed_alerts: usize,
    /// Alerts that fired to people in the window and are no incident's own (members):
    /// children the incidents failed to suppress.
    pub unsuppressed_alerts: usize,
    /// Whether the expectation wants an incident (a fault to find).
    pub expects_incident: bool,
    /// Whether the incident judged names the expected root cause and kind.
    pub cause_right: bool,
    pub incidents_in_window: usize,
    pub notifications: usize,
    pub impacted_subscribers: Option<u64>,
    pub pass: bool,
    /// Why it failed (empty when it passed).
    pub reasons: Vec<String>,
}

/// Whether an incident's root cause is the one expected.
fn matches(spec: &RootCauseSpec, entity: &CauseEntity, topology: &Topology) -> bool {
    let link_has = |id: &str, router: &str, interface: Option<&str>| {
        let Some(i) = id
            .strip_prefix("link-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return false;
        };
        topology.links.get(i).is_some_and(|l| {
            [l.endpoint_a(), l.endpoint_b()]
                .into_iter()
                .flatten()
                .any(|(r, f)| r == router && interface.is_none_or(|x| x == f))
        })
    };
    match (spec, entity) {
        (RootCauseSpec::Router(r), CauseEntity::Device { id }) => r == id,
        (RootCauseSpec::Router(r), CauseEntity::Interface { device, .. }) => r == device,
        (RootCauseSpec::Router(r), CauseEntity::BgpSession { device, peer, .. }) => {
            r == device || r == peer
        }
        (RootCauseSpec::Router(r), CauseEntity::Link { id }) => link_has(id, r, None),
        (RootCauseSpec::Interface { router, interface }, CauseEntity::Link { id }) => {
            link_has(id, router, Some(interface))
        }
        (
            RootCauseSpec::Interface { router, interface },
            CauseEntity::Interface {
                device,
                interface: i,
            },
        ) => router == device && interface == i,
        (RootCauseSpec::Site(s), CauseEntity::Site { id }) => s == id,
        (RootCauseSpec::Agent(a), CauseEntity::Agent { id }) => a == id,
        _ => false,
    }
}

/// Judges every expectation; incidents are claimed in order so two faults at once are
/// judged against distinct incidents.
pub fn judge(expects: &[ExpectSpec], outcome: &Outcome, topology: &Topology) -> Vec<Verdict> {
    let mut claimed: HashSet<u64> = HashSet::new();
    let mut verdicts = Vec::new();
    for e in expects {
        let from = (e.after_s * 1_000.0) as i64;
        let to = ((e.after_s + e.within_s) * 1_000.0) as i64;
        let in_window: Vec<&(i64, Incident)> = outcome
            .incidents
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .collect();
        let spec = e.root_cause.as_deref().and_then(RootCauseSpec::parse);
        let fits = |i: &Incident| {
            spec.as_ref()
                .is_none_or(|s| matches(s, &i.root_cause.entity, topology))
                && e.kind.as_deref().is_none_or(|k| i.kind.as_str() == k)
        };
        // The best candidate: an unclaimed incident that fits, else any unclaimed one.
        let chosen = in_window
            .iter()
            .find(|(_, i)| !claimed.contains(&i.id) && fits(i))
            .or_else(|| in_window.iter().find(|(_, i)| !claimed.contains(&i.id)))
            .copied();
        let mut reasons = Vec::new();
        let notifications = outcome
            .notifications
            .iter()
            .filter(|(_, at)| *at >= from && *at <= to)
            .count();
        let mut v = Verdict {
            name: e.name.clone(),
            detected: chosen.is_some(),
            latency_s: chosen.map(|(at, _)| (*at - from) as f64 / 1_000.0),
            incident: chosen.map(|(_, i)| i.id),
            title: chosen.map(|(_, i)| i.title.clone()),
            root_cause: chosen.map(|(_, i)| i.root_cause.entity.to_string()),
            kind: chosen.map(|(_, i)| i.kind),
            confidence: chosen.map(|(_, i)| i.confidence),
            suppressed_alerts: chosen.map_or(0, |(_, i)| i.suppressed.len()),
            unsuppressed_alerts: outcome
                .alert_firings
                .iter()
                .filter(|(k, at)| {
                    *at >= from
                        && *at <= to
                        && !in_window.iter().any(|(_, i)| i.members.contains(k))
                })
                .count(),
            expects_incident: e.wants_incident(),
            cause_right: chosen.is_some_and(|(_, i)| fits(i)),
            incidents_in_window: in_window.len(),
            notifications,
            impacted_subscribers: chosen.map(|(_, i)| i.impacted_subscribers),
            pass: false,
            reasons: Vec::new(),
        };
        if e.wants_incident() {
            match chosen {
                None => reasons.push(format!("no incident opened within {} s", e.within_s)),
                Some((_, i)) => {
                    claimed.insert(i.id);
                    if let Some(s) = &spec
                        && !matches(s, &i.root_cause.entity, topology)
                    {
                        reasons.push(format!(
                            "root cause {} is not {}",
                            i.root_cause.entity,
                            e.root_cause.as_deref().unwrap_or_default()
                        ));
                    }
                    if let Some(k) = &e.kind
                        && i.kind.as_str() != k
                    {
                        reasons.push(format!("kind {} is not {k}", i.kind));
                    }
                    if let Some(min) = e.min_impacted_subscribers
                        && i.impacted_subscribers < min
                    {
                        reasons.push(format!(
                            "{} subscribers impacted, expected at least {min}",
                            i.impacted_subscribers
                        ));
                    }
                }
            }
        } else if !in_window.is_empty() {
            reasons.push(format!(
                "{} incident(s) opened where none may: {}",
                in_window.len(),
                in_window
                    .iter()
                    .map(|(_, i)| i.title.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        // Faults that start together are judged against distinct incidents: by
        // default each of them may have its own.
        let together = expects.iter().filter(|x| x.after_s == e.after_s).count() as u32;
        let cap = match e.max_incidents {
            Some(n) => Some(n),
            None => e.incident_cap().map(|n| n * together.max(1)),
        };
        if let Some(cap) = cap
            && in_window.len() > cap as usize
        {
            reasons.push(format!(
                "{} incidents opened, at most {cap} allowed",
                in_window.len()
            ));
        }
        if let Some(cap) = e.max_notifications
            && notifications > cap as usize
        {
            reasons.push(format!(
                "{notifications} notifications, at most {cap} allowed"
            ));
        }
        for d in &e.never_down {
            let down_incident = outcome.incidents.iter().any(|(at, i)| {
                *at >= from
                    && i.kind == CauseKind::DeviceDown
                    && i.root_cause.entity == CauseEntity::Device { id: d.clone() }
            });
            let alert = outcome
                .device_down_alerts
                .iter()
                .any(|(dev, at)| dev == d && *at >= from);
            if down_incident || alert {
                reasons.push(format!("{d} was reported down"));
            }
        }
        v.pass = reasons.is_empty();
        v.reasons = reasons;
        verdicts.push(v);
    }
    verdicts
}
