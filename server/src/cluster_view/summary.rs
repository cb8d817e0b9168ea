//! The documents of `/api/v1/cluster/…`, computed from a tenant's merged reports.

use super::{REPORT_STALE_AFTER_MS, TenantCluster};
use crate::store::{DeviceRow, EventRow, StoredReport};
use ispvm_actors::reach::TargetView;
use ispvm_proto::{MemberState, MemberView};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Most members listed as disagreed upon in the convergence document.
const MAX_DISAGREEMENTS: usize = 50;

/// How recent an agent's own report is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportFreshness {
    /// The agent's clock when it built the report, Unix ms.
    pub generated_ms: i64,
    /// The server's clock when it stored it, Unix ms.
    pub received_ms: i64,
    pub age_s: f64,
    /// Younger than the staleness limit: the agent's views count.
    pub fresh: bool,
}

impl ReportFreshness {
    fn of(r: &StoredReport, now_ms: i64) -> Self {
        let age = now_ms.saturating_sub(r.received_ms);
        ReportFreshness {
            generated_ms: r.report.at_ms,
            received_ms: r.received_ms,
            age_s: age as f64 / 1000.0,
            fresh: age <= REPORT_STALE_AFTER_MS,
        }
    }
}

/// One member as the cluster as a whole sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberSummary {
    pub agent: String,
    pub site: String,
    pub version: String,
    pub capabilities: Vec<String>,
    pub generation: u64,
    /// `live` if any fresh reporter sees it live, else `leaving` if one saw it leave,
    /// `dead` if fresh reporters see it and all say dead, `unknown` without fresh views.
    pub state: &'static str,
    /// Fresh reporters disagree on whether it is live (a partition, or a detection in
    /// progress).
    pub split_view: bool,
    pub seen_live_by: usize,
    pub seen_leaving_by: usize,
    pub seen_dead_by: usize,
    /// Highest failure-detector suspicion among the fresh reporters that see it.
    pub phi_max: Option<f32>,
    pub heartbeat: u64,
    pub live_for_s: f64,
    pub cert_expiry_s: Option<i64>,
    pub routers: u32,
    pub probes: u32,
    pub buffer_bytes: u64,
    pub health: String,
    /// The member's own report, when it sent one.
    pub report: Option<ReportFreshness>,
}

/// The best description of a member: the view with the newest generation and highest
/// heartbeat, the member's own view winning a tie.
fn best_view<'a>(views: &[(&'a str, &'a MemberView)]) -> Option<&'a MemberView> {
    views
        .iter()
        .max_by_key(|(by, v)| (v.generation, v.heartbeat, *by == v.agent.as_str()))
        .map(|(_, v)| *v)
}

impl TenantCluster {
    /// Every member any report mentions, merged.
    pub fn members(&self, now_ms: i64) -> Vec<MemberSummary> {
        let fresh: BTreeSet<&str> = self.fresh(now_ms).map(|r| r.agent.as_str()).collect();
        let mut views: BTreeMap<&str, Vec<(&str, &MemberView)>> = BTreeMap::new();
        for r in self.reports.values() {
            for m in &r.report.members {
                views
                    .entry(m.agent.as_str())
                    .or_default()
                    .push((r.agent.as_str(), m));
            }
        }
        views
            .into_iter()
            .filter_map(|(agent, views)| {
                let best = best_view(&views)?;
                let fresh_views: Vec<&MemberView> = views
                    .iter()
                    .filter(|(by, _)| fresh.contains(by))
                    .map(|(_, v)| *v)
                    .collect();
                let by_state = |s: MemberState| fresh_views.iter().filter(|v| v.state == s).count();
                let (live, leaving, dead) = (
                    by_state(MemberState::Live),
                    by_state(MemberState::Leaving),
                    by_state(MemberState::Dead),
                );
                let state = if live > 0 {
                    "live"
                } else if leaving > 0 {
                    "leaving"
                } else if dead > 0 {
                    "dead"
                } else {
                    "unknown"
                };
                let phi_max = fresh_views
                    .iter()
                    .filter_map(|v| v.phi)
                    .fold(None, |acc: Option<f32>, p| {
                        Some(acc.map_or(p, |a| a.max(p)))
                    });
                Some(MemberSummary {
                    agent: agent.to_owned(),
                    site: best.site.clone(),
                    version: best.version.clone(),
                    capabilities: best.capabilities.clone(),
                    generation: best.generation,
                    state,
                    split_view: live > 0 && dead > 0,
                    seen_live_by: live,
                    seen_leaving_by: leaving,
                    seen_dead_by: dead,
                    phi_max,
                    heartbeat: views.iter().map(|(_, v)| v.heartbeat).max().unwrap_or(0),
                    live_for_s: best.live_for_ms as f64 / 1000.0,
                    cert_expiry_s: best.cert_expiry_s,
                    routers: best.routers,
                    probes: best.probes,
                    buffer_bytes: best.buffer_bytes,
                    health: best.health.clone(),
                    report: self
                        .reports
                        .get(agent)
                        .map(|r| ReportFreshness::of(r, now_ms)),
                })
            })
            .collect()
    }

    /// Who polls which router, by the fresh reports; `devices` are the tenant's
    /// inventory, `handovers` its newest `ownership_change` events.
    pub fn ownership(
        &self,
        now_ms: i64,
        devices: &[DeviceRow],
        handovers: &[EventRow],
    ) -> OwnershipSummary {
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut by_agent = BTreeMap::new();
        let mut replication = 1;
        for r in self.fresh(now_ms) {
            replication = replication.max(r.report.replication);
            by_agent.insert(r.agent.clone(), r.report.owned.len());
            for router in &r.report.owned {
                owners
                    .entry(router.clone())
                    .or_default()
                    .push(r.agent.clone());
            }
        }
        let stale: Vec<String> = self
            .reports
            .values()
            .filter(|r| now_ms.saturating_sub(r.received_ms) > REPORT_STALE_AFTER_MS)
            .map(|r| r.agent.clone())
            .collect();
        // A device is expected to be owned when the agent that last polled it belongs
        // to the cluster; devices of unclustered agents are not the cluster's business.
        let unowned = devices
            .iter()
            .filter(|d| self.reports.contains_key(&d.agent_id) && !owners.contains_key(&d.id))
            .map(|d| d.id.clone())
            .collect();
        let over_replicated = owners
            .iter()
            .filter(|(_, o)| o.len() > usize::from(replication))
            .map(|(r, _)| r.clone())
            .collect();
        OwnershipSummary {
            replication,
            owners,
            by_agent,
            unowned,
            over_replicated,
            stale_reporters: stale,
            recent_handovers: handovers.iter().map(HandoverSummary::from).collect(),
        }
    }

    /// The merged reachability matrix with, per target, how it looks from all
    /// vantages.
    pub fn reachability(&self, now_ms: i64) -> ReachSummary {
        let fresh_since_s = (now_ms - REPORT_STALE_AFTER_MS) / 1000;
        let targets: Vec<String> = self
            .matrix
            .targets()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let target_views = targets
            .iter()
            .map(|t| (t.clone(), self.matrix.target_view(t, fresh_since_s)))
            .collect();
        ReachSummary {
            vantages: self
                .matrix
                .vantages()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            isolated_vantages: self
                .matrix
                .isolated_vantages(fresh_since_s)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            targets,
            target_views,
            cells: self
                .matrix
                .cells()
                .map(|(vantage, target, v)| ReachCellSummary {
                    vantage: vantage.to_owned(),
                    target: target.to_owned(),
                    loss_pct: v.loss_pct,
                    rtt_ms: v.rtt_us.map(|us| f64::from(us) / 1000.0),
                    at_s: v.at_s,
                    age_s: (now_ms / 1000).saturating_sub(v.at_s),
                    fresh: v.at_s >= fresh_since_s,
                    relayed_by: v.relayed_by.clone(),
                })
                .collect(),
        }
    }

    /// Whether the fresh views of every member agree, and what the cluster's timing is.
    pub fn convergence(&self, now_ms: i64, ownership: &OwnershipSummary) -> Convergence {
        let fresh: Vec<&StoredReport> = self.fresh(now_ms).collect();
        let members = self.members(now_ms);
        // Agents report themselves and the members they relay (each member is seen by
        // itself and a few peers), so agreement is judged per member: its fresh views
        // must all give it the same state.
        let disagreements: Vec<String> = members
            .iter()
            .filter(|m| {
                [m.seen_live_by, m.seen_leaving_by, m.seen_dead_by]
                    .iter()
                    .filter(|n| **n > 0)
                    .count()
                    > 1
            })
            .take(MAX_DISAGREEMENTS)
            .map(|m| m.agent.clone())
            .collect();
        let interval = fresh.iter().map(|r| r.report.gossip_interval_ms).max();
        let phi = fresh
            .iter()
            .map(|r| r.report.phi_threshold)
            .fold(None, |acc: Option<f32>, p| {
                Some(acc.map_or(p, |a| a.max(p)))
            });
        let count = |s: &str| members.iter().filter(|m| m.state == s).count();
        let max_phi = members
            .iter()
            .filter(|m| m.state == "live")
            .filter_map(|m| m.phi_max)
            .fold(None, |acc: Option<f32>, p| {
                Some(acc.map_or(p, |a| a.max(p)))
            });
        Convergence {
            stale_after_s: REPORT_STALE_AFTER_MS / 1000,
            reporters_fresh: fresh.len(),
            reporters_stale: self.reports.len() - fresh.len(),
            members_live: count("live"),
            members_leaving: count("leaving"),
            members_dead: count("dead"),
            members_unknown: count("unknown"),
            views_agree: disagreements.is_empty(),
            disagreements,
            gossip_interval_ms: interval,
            phi_threshold: phi,
            expected_detection_ms: interval
                .zip(phi)
                .map(|(i, p)| (f64::from(i) * f64::from(p)).round()),
            max_phi_of_live_members: max_phi,
            routers_owned: ownership.owners.len(),
            routers_unowned: ownership.unowned.len(),
            routers_over_replicated: ownership.over_replicated.len(),
            ownership_settled: ownership.unowned.is_empty() && ownership.over_replicated.is_empty(),
            last_handover_ms: ownership.recent_handovers.first().map(|h| h.ts_ms),
            reach_cells: self.matrix.len(),
        }
    }
}

/// `/api/v1/cluster/ownership`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnershipSummary {
    pub replication: u8,
    /// Router → the fresh reporters that poll it.
    pub owners: BTreeMap<String, Vec<String>>,
    /// Agent → how many routers it polls.
    pub by_agent: BTreeMap<String, usize>,
    /// Routers of clustered agents that no fresh reporter polls.
    pub unowned: Vec<String>,
    /// Routers polled by more agents than the replication factor.
    pub over_replicated: Vec<String>,
    /// Agents whose last report is stale: their routers are not counted.
    pub stale_reporters: Vec<String>,
    /// Newest first.
    pub recent_handovers: Vec<HandoverSummary>,
}

/// One `ownership_change` event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HandoverSummary {
    pub ts_ms: i64,
    pub router: String,
    pub agent: String,
    /// `acquired` or `released`.
    pub change: String,
    /// The router's owners after the change, as the agent computed them.
    pub owners: Vec<String>,
}

impl From<&EventRow> for HandoverSummary {
    fn from(e: &EventRow) -> Self {
        let attrs: BTreeMap<String, String> = serde_json::from_str(&e.attrs).unwrap_or_default();
        HandoverSummary {
            ts_ms: e.ts_ms,
            router: e.entity_id.clone(),
            agent: e.agent_id.clone(),
            change: attrs.get("change").cloned().unwrap_or_default(),
            owners: attrs
                .get("owners")
                .map(|o| {
                    o.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// `/api/v1/cluster/reachability`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReachSummary {
    pub vantages: Vec<String>,
    pub targets: Vec<String>,
    /// Per target: reachable, partial, unreachable or unknown from the fresh verdicts.
    pub target_views: BTreeMap<String, TargetView>,
    /// Vantages whose fresh verdicts all say unreachable: cut off themselves.
    pub isolated_vantages: Vec<String>,
    pub cells: Vec<ReachCellSummary>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReachCellSummary {
    pub vantage: String,
    pub target: String,
    pub loss_pct: f32,
    pub rtt_ms: Option<f64>,
    pub at_s: i64,
    pub age_s: i64,
    pub fresh: bool,
    pub relayed_by: String,
}

/// `/api/v1/cluster/convergence`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Convergence {
    pub stale_after_s: i64,
    pub reporters_fresh: usize,
    pub reporters_stale: usize,
    pub members_live: usize,
    pub members_leaving: usize,
    pub members_dead: usize,
    pub members_unknown: usize,
    /// Every member's fresh views give it the same state.
    pub views_agree: bool,
    /// Members whose fresh views differ (at most 50).
    pub disagreements: Vec<String>,
    pub gossip_interval_ms: Option<u32>,
    pub phi_threshold: Option<f32>,
    /// About how long a dead agent takes to be declared dead: interval × phi.
    pub expected_detection_ms: Option<f64>,
    pub max_phi_of_live_members: Option<f32>,
    pub routers_owned: usize,
    pub routers_unowned: usize,
    pub routers_over_replicated: usize,
    /// No router unowned and none over-replicated.
    pub ownership_settled: bool,
    pub last_handover_ms: Option<i64>,
    pub reach_cells: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_proto::{ClusterReport, ReachCell};

    const NOW: i64 = 1_790_000_000_000;

    fn member(agent: &str, state: MemberState, heartbeat: u64) -> MemberView {
        MemberView {
            agent: agent.into(),
            generation: 1,
            site: "lis1".into(),
            version: "0.1.0".into(),
            capabilities: vec!["routeros".into()],
            state,
            heartbeat,
            phi: Some(0.5),
            live_for_ms: 10_000,
            cert_expiry_s: None,
            routers: 1,
            probes: 0,
            buffer_bytes: 0,
            health: "ok".into(),
        }
    }

    fn report(agent: &str, age_ms: i64, members: Vec<MemberView>, owned: &[&str]) -> StoredReport {
        StoredReport {
            agent: agent.into(),
            received_ms: NOW - age_ms,
            report: ClusterReport {
                at_ms: NOW - age_ms,
                generation: 1,
                site: "lis1".into(),
                gossip_interval_ms: 250,
                phi_threshold: 8.0,
                replication: 1,
                members,
                owned: owned.iter().map(|s| (*s).to_owned()).collect(),
                reach: vec![ReachCell {
                    vantage: agent.into(),
                    target: "dns".into(),
                    loss_pct: 0.0,
                    rtt_us: Some(900),
                    at_s: (NOW - age_ms) / 1000,
                }],
            },
        }
    }

    fn device(id: &str, agent: &str) -> DeviceRow {
        DeviceRow {
            id: id.into(),
            name: id.into(),
            site_id: "lis1".into(),
            role: "access".into(),
            mgmt_addr: "127.0.0.1:8728".into(),
            model: String::new(),
            os_version: String::new(),
            agent_id: agent.into(),
            first_seen_ms: NOW,
            last_seen_ms: NOW,
        }
    }

    #[test]
    fn a_partition_shows_as_split_views_and_disagreement() {
        // a1 and a2 see each other; a3 is cut off from a2 but still reports.
        let live = MemberState::Live;
        let cluster = TenantCluster::from_reports(vec![
            report(
                "a1",
                1_000,
                vec![
                    member("a1", live, 50),
                    member("a2", live, 40),
                    member("a3", live, 30),
                ],
                &["r1"],
            ),
            report(
                "a2",
                1_000,
                vec![
                    member("a1", live, 50),
                    member("a2", live, 41),
                    member("a3", MemberState::Dead, 20),
                ],
                &["r2"],
            ),
            report(
                "a3",
                1_000,
                vec![
                    member("a1", live, 45),
                    member("a2", MemberState::Dead, 35),
                    member("a3", live, 31),
                ],
                &["r3", "r2"],
            ),
        ]);
        let members = cluster.members(NOW);
        let a3 = members.iter().find(|m| m.agent == "a3").expect("a3");
        assert_eq!(
            (a3.state, a3.split_view, a3.seen_live_by, a3.seen_dead_by),
            ("live", true, 2, 1)
        );
        assert_eq!(a3.heartbeat, 31);
        let devices = [
            device("r1", "a1"),
            device("r2", "a2"),
            device("r3", "a3"),
            device("r4", "a1"),
            device("x", "solo"),
        ];
        let own = cluster.ownership(NOW, &devices, &[]);
        assert_eq!(own.owners["r2"], vec!["a2".to_owned(), "a3".to_owned()]);
        assert_eq!(own.over_replicated, vec!["r2".to_owned()]);
        assert_eq!(
            own.unowned,
            vec!["r4".to_owned()],
            "devices of unclustered agents are not counted"
        );
        let conv = cluster.convergence(NOW, &own);
        assert!(!conv.views_agree);
        assert_eq!(conv.disagreements, vec!["a2".to_owned(), "a3".to_owned()]);
        assert_eq!(conv.expected_detection_ms, Some(2000.0));
        assert!(!conv.ownership_settled);
    }

    #[test]
    fn stale_reports_stop_counting() {
        let live = MemberState::Live;
        let cluster = TenantCluster::from_reports(vec![
            report(
                "a1",
                1_000,
                vec![member("a1", live, 50), member("a2", MemberState::Dead, 40)],
                &["r1", "r2"],
            ),
            // a2 died a minute ago: its last report still says it is live and owns r2.
            report(
                "a2",
                60_000,
                vec![member("a1", live, 10), member("a2", live, 40)],
                &["r2"],
            ),
        ]);
        let a2 = cluster
            .members(NOW)
            .into_iter()
            .find(|m| m.agent == "a2")
            .expect("a2");
        assert_eq!(a2.state, "dead");
        assert!(a2.report.as_ref().is_some_and(|r| !r.fresh));
        let own = cluster.ownership(NOW, &[], &[]);
        assert_eq!(own.owners["r2"], vec!["a1".to_owned()]);
        assert_eq!(own.stale_reporters, vec!["a2".to_owned()]);
        let conv = cluster.convergence(NOW, &own);
        assert!(conv.views_agree);
        assert_eq!((conv.reporters_fresh, conv.reporters_stale), (1, 1));
        let reach = cluster.reachability(NOW);
        let stale_cell = reach
            .cells
            .iter()
            .find(|c| c.vantage == "a2")
            .expect("a2 cell");
        assert!(!stale_cell.fresh);
        assert_eq!(reach.target_views["dns"], TargetView::Reachable);
    }

    #[test]
    fn an_older_report_never_replaces_a_newer_one() {
        let live = MemberState::Live;
        let mut cluster = TenantCluster::from_reports(vec![report(
            "a1",
            1_000,
            vec![member("a1", live, 50)],
            &["r1"],
        )]);
        cluster.add(report("a1", 9_000, vec![member("a1", live, 10)], &["r9"]));
        assert_eq!(cluster.reports["a1"].report.owned, vec!["r1".to_owned()]);
    }
}
