//! What a notification says: the JSON a webhook receives and the same facts as email
//! text. It carries what an on-call engineer needs before opening the UI: what
//! happened, how sure the analysis is, what it takes down, the evidence, and what to do
//! first.

use ispvm_actors::alert::Level;
use ispvm_actors::incident::{Incident, IncidentState, Transition};
use ispvm_actors::rca::{CauseEntity, CauseKind};
use serde::Serialize;
use std::fmt::Write;

/// Payload format version; a receiver checks it before reading further.
pub const PAYLOAD_VERSION: u32 = 1;
/// Evidence items carried (the strongest).
const TOP_EVIDENCE: usize = 5;

/// A cause as a notification names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseView {
    pub kind: CauseKind,
    /// The entity as people read it (`link c-x`, `core`, `site:b`).
    pub entity: String,
    pub confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactView {
    pub devices: Vec<String>,
    pub sites: Vec<String>,
    pub services: Vec<String>,
    /// PPPoE sessions on impacted concentrators just before the fault.
    pub pppoe_subscribers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceView {
    pub at_ms: i64,
    pub text: String,
    pub weight: f64,
}

/// The JSON body of a webhook (docs/notifications.md shows one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload {
    pub version: u32,
    /// `tenant:incident:seq:channel`, as in `X-ISPVM-Delivery`.
    pub delivery_id: String,
    pub tenant: String,
    pub incident_id: u64,
    pub transition: Transition,
    /// The transition's number within the incident (1 is `opened`).
    pub seq: i64,
    /// When the transition happened.
    pub at_ms: i64,
    pub title: String,
    pub severity: Level,
    pub kind: CauseKind,
    pub state: IncidentState,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    pub root_cause: CauseView,
    pub runner_ups: Vec<CauseView>,
    pub impact: ImpactView,
    pub evidence: Vec<EvidenceView>,
    /// What an ISP engineer would do first for this kind of fault.
    pub next_step: &'static str,
    /// Where the whole incident is in the API.
    pub incident_path: String,
    /// Whether an operator acknowledged it.
    pub acknowledged: bool,
}

/// What to do first about a kind of fault.
pub fn next_step(kind: CauseKind) -> &'static str {
    match kind {
        CauseKind::LinkDown => {
            "Check optics and light levels (Rx/Tx dBm) at both ends, the patching, and the carrier if the link is leased."
        }
        CauseKind::DeviceDown => {
            "Check power and reach the router's console (out-of-band); look for a reboot loop before dispatching someone."
        }
        CauseKind::ManagementPlane => {
            "The router still forwards: check its API/SNMP service and the firewall rules on the management address; do not reboot it."
        }
        CauseKind::UpstreamLost => {
            "Contact the upstream provider's NOC and check the BGP session and the uplink; shift traffic to another upstream if there is one."
        }
        CauseKind::BgpDown => {
            "Check the BGP session: peer configuration, authentication, prefix limits and the peer's logs; the path between the ends is up."
        }
        CauseKind::AgentLost => {
            "Check the monitoring agent's host (power, network, the ispvm-agent service); the routers it polled are fine."
        }
        CauseKind::SiteIsolated => {
            "Every path into the site is down: check the transport into the site (fibre, microwave, the carrier) and its power."
        }
        CauseKind::Congestion => {
            "Reroute traffic or raise capacity on the link; check for a traffic anomaly (DDoS, a backup run) first."
        }
        CauseKind::RedundancyDegraded => {
            "No outage: redundancy carries the traffic. Schedule the repair; the next failure here would cut service."
        }
    }
}

fn cause_text(entity: &CauseEntity) -> String {
    entity.to_string()
}

impl Payload {
    /// The payload of transition `seq` of `incident` for the delivery `delivery_id`.
    pub fn new(
        tenant: &str,
        incident: &Incident,
        transition: Transition,
        seq: i64,
        at_ms: i64,
        delivery_id: String,
    ) -> Self {
        let mut evidence: Vec<EvidenceView> = incident
            .evidence
            .iter()
            .map(|e| EvidenceView {
                at_ms: e.at_ms,
                text: e.text.clone(),
                weight: e.weight,
            })
            .collect();
        evidence.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.at_ms.cmp(&b.at_ms)));
        evidence.truncate(TOP_EVIDENCE);
        Payload {
            version: PAYLOAD_VERSION,
            delivery_id,
            tenant: tenant.to_owned(),
            incident_id: incident.id,
            transition,
            seq,
            at_ms,
            title: incident.title.clone(),
            severity: incident.severity,
            kind: incident.kind,
            state: incident.state,
            opened_ms: incident.opened_ms,
            resolved_ms: incident.resolved_ms,
            root_cause: CauseView {
                kind: incident.root_cause.kind,
                entity: cause_text(&incident.root_cause.entity),
                confidence: incident.confidence,
            },
            runner_ups: incident
                .runner_ups
                .iter()
                .map(|r| CauseView {
                    kind: r.cause.kind,
                    entity: cause_text(&r.cause.entity),
                    confidence: r.confidence,
                })
                .collect(),
            impact: ImpactView {
                devices: incident.impact.devices.clone(),
                sites: incident.impact.sites.clone(),
                services: incident.impact.services.clone(),
                pppoe_subscribers: incident.impacted_subscribers,
            },
            evidence,
            next_step: next_step(incident.kind),
            incident_path: format!("/api/v1/incidents/{}", incident.id),
            acknowledged: incident.ack.is_some(),
        }
    }

    /// The email subject: severity, transition, title and number.
    pub fn subject(&self) -> String {
        format!(
            "[ISPVM {}] {} #{}: {}",
            self.severity, self.transition, self.incident_id, self.title
        )
    }

    /// The same facts as the JSON, as plain text for email.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let pct = |c: f64| (c * 100.0).round();
        // Writing to a String cannot fail.
        let _ = writeln!(t, "{}", self.title);
        let _ = writeln!(
            t,
            "Incident #{} ({}), transition {} #{} at {} (ms since epoch)",
            self.incident_id, self.tenant, self.transition, self.seq, self.at_ms
        );
        let _ = writeln!(
            t,
            "Severity: {}   Kind: {}   State: {}",
            self.severity, self.kind, self.state
        );
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Likely root cause: {} ({}), confidence {}%",
            self.root_cause.entity,
            self.root_cause.kind,
            pct(self.root_cause.confidence)
        );
        for r in &self.runner_ups {
            let _ = writeln!(
                t,
                "  runner-up: {} ({}), confidence {}%",
                r.entity,
                r.kind,
                pct(r.confidence)
            );
        }
        let _ = writeln!(t);
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let _ = writeln!(t, "Impact:");
        let _ = writeln!(t, "  devices: {}", list(&self.impact.devices));
        let _ = writeln!(t, "  sites: {}", list(&self.impact.sites));
        let _ = writeln!(t, "  services: {}", list(&self.impact.services));
        let _ = writeln!(t, "  PPPoE subscribers: {}", self.impact.pppoe_subscribers);
        let _ = writeln!(t);
        let _ = writeln!(t, "Evidence:");
        for e in &self.evidence {
            let _ = writeln!(t, "  [{}] {}", e.at_ms, e.text);
        }
        let _ = writeln!(t);
        let _ = writeln!(t, "Next step: {}", self.next_step);
        let _ = writeln!(t, "Incident: {}", self.incident_path);
        let _ = writeln!(t, "Delivery: {}", self.delivery_id);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_next_step_of_its_own() {
        let kinds = [
            CauseKind::DeviceDown,
            CauseKind::LinkDown,
            CauseKind::UpstreamLost,
            CauseKind::BgpDown,
            CauseKind::ManagementPlane,
            CauseKind::AgentLost,
            CauseKind::SiteIsolated,
            CauseKind::Congestion,
            CauseKind::RedundancyDegraded,
        ];
        let steps: std::collections::BTreeSet<_> = kinds.iter().map(|k| next_step(*k)).collect();
        assert_eq!(steps.len(), kinds.len());
        assert!(next_step(CauseKind::ManagementPlane).contains("still forwards"));
        assert!(next_step(CauseKind::LinkDown).contains("optics"));
    }
}
