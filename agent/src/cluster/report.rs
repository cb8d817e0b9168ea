//! The cluster report this agent sends the server with its batches: its view of the
//! members, the routers it polls, and the reachability verdicts it relays.
//!
//! Every agent reports itself (its own member view and its row of verdicts), and each
//! other member is reported by [`RELAY_FANOUT`] live peers chosen by rendezvous hashing
//! on that member's id: their view of it (live, dead, phi) and the verdicts they learnt
//! from it by gossip. So a dead agent is reported dead by two peers, the row of an agent
//! that cannot reach the server still arrives, and the server receives about
//! `1 + RELAY_FANOUT` views of each member rather than one per agent: what the server
//! takes in grows with the cluster, not with its square (1,000 agents each reporting all
//! 1,000 would be a million member views every 5 s).

use ispvm_cluster::gossip::{Member, Membership};
use ispvm_cluster::ownership::{Capability, score};
use ispvm_proto::{ClusterReport, MemberState, MemberView, ReachCell};
use std::time::Duration;

/// Peers that relay each vantage's verdicts besides the vantage itself.
pub const RELAY_FANOUT: usize = 2;

/// How often a report is handed to the uplink (it rides with the next batch).
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What the report says about the agent's own settings.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub site: String,
    pub gossip_interval_ms: u32,
    pub phi_threshold: f32,
    pub replication: u8,
}

/// Whether `me` relays the verdicts of `vantage`: it is the vantage, or one of the
/// [`RELAY_FANOUT`] best-scored live members other than the vantage.
pub fn relays(me: &str, vantage: &str, live: &[&str]) -> bool {
    if me == vantage {
        return true;
    }
    let mut ranked: Vec<(u64, &str)> = live
        .iter()
        .filter(|a| **a != vantage)
        .map(|a| (score(vantage, a), *a))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    ranked.iter().take(RELAY_FANOUT).any(|(_, a)| *a == me)
}

fn member_view(m: &Member) -> MemberView {
    let state = if m.leaving {
        MemberState::Leaving
    } else if m.live {
        MemberState::Live
    } else {
        MemberState::Dead
    };
    let load = m.load.unwrap_or_default();
    MemberView {
        agent: m.agent.clone(),
        generation: m.generation,
        site: m.site.clone().unwrap_or_default(),
        version: m.version.clone().unwrap_or_default(),
        capabilities: Capability::ALL
            .iter()
            .filter(|c| m.can(**c))
            .map(|c| c.as_str().to_owned())
            .collect(),
        state,
        heartbeat: m.heartbeat,
        phi: m.phi.map(|p| p as f32).filter(|p| p.is_finite()),
        live_for_ms: u64::try_from(m.live_for.as_millis()).unwrap_or(u64::MAX),
        cert_expiry_s: m.cert_expiry_s,
        routers: load.routers,
        probes: load.probes,
        buffer_bytes: load.buffer_bytes,
        health: m
            .health
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |h| h.encode()),
    }
}

/// Builds the report from the agent's current view.
pub fn build(
    at_ms: i64,
    membership: &Membership,
    owned: Vec<String>,
    settings: &ReportSettings,
) -> ClusterReport {
    let me = membership.self_agent.as_str();
    let live: Vec<&str> = membership
        .members
        .iter()
        .filter(|m| m.live && !m.leaving)
        .map(|m| m.agent.as_str())
        .collect();
    let reported: Vec<&Member> = membership
        .members
        .iter()
        .filter(|m| relays(me, &m.agent, &live))
        .collect();
    let reach = reported
        .iter()
        .flat_map(|m| {
            m.reach.iter().map(|(target, r)| ReachCell {
                vantage: m.agent.clone(),
                target: target.clone(),
                loss_pct: r.loss_pct,
                rtt_us: r.rtt_us,
                at_s: r.at_s,
            })
        })
        .collect();
    ClusterReport {
        at_ms,
        generation: membership.member(me).map_or(0, |m| m.generation),
        site: settings.site.clone(),
        gossip_interval_ms: settings.gossip_interval_ms,
        phi_threshold: settings.phi_threshold,
        replication: settings.replication,
        members: reported.iter().map(|m| member_view(m)).collect(),
        owned,
        reach,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_cluster::node_state::Reach;
    use ispvm_cluster::ownership::Capabilities;

    fn member(agent: &str, live: bool, reach: &[(&str, f32)]) -> Member {
        Member {
            agent: agent.into(),
            generation: 7,
            gossip_addr: "127.0.0.1:1".parse().expect("addr"),
            tenant: Some("acme".into()),
            site: Some("lis1".into()),
            version: Some("0.1.0".into()),
            capabilities: Capabilities::of(&[Capability::RouterOs, Capability::Icmp]),
            live,
            leaving: false,
            heartbeat: 3,
            phi: Some(0.5),
            live_for: Duration::from_secs(9),
            load: None,
            health: None,
            cert_expiry_s: None,
            reach: reach
                .iter()
                .map(|(t, loss)| {
                    (
                        (*t).to_owned(),
                        Reach {
                            loss_pct: *loss,
                            rtt_us: None,
                            at_s: 1_790_000_000,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn every_row_is_relayed_by_its_vantage_and_exactly_the_fanout() {
        let names: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
        let live: Vec<&str> = names.iter().map(String::as_str).collect();
        for vantage in &live {
            let relayers = live.iter().filter(|me| relays(me, vantage, &live)).count();
            assert_eq!(relayers, 1 + RELAY_FANOUT, "row of {vantage}");
        }
        // A dead vantage (not in `live`) is still relayed by the fanout.
        assert_eq!(
            live.iter().filter(|me| relays(me, "gone", &live)).count(),
            RELAY_FANOUT
        );
    }

    #[test]
    fn in_a_large_cluster_each_member_is_reported_three_times() {
        let settings = ReportSettings {
            site: "lis1".into(),
            gossip_interval_ms: 250,
            phi_threshold: 8.0,
            replication: 1,
        };
        let names: Vec<String> = (0..50).map(|i| format!("a{i}")).collect();
        let mut members: Vec<Member> = names
            .iter()
            .map(|n| member(n, true, &[("dns", 0.0)]))
            .collect();
        members[7].live = false;
        let mut views: std::collections::BTreeMap<String, usize> = Default::default();
        let mut total = 0;
        for me in names.iter().filter(|n| *n != "a7") {
            let membership = Membership {
                self_agent: me.clone(),
                members: members.clone(),
            };
            let r = build(1_790_000_000_000, &membership, Vec::new(), &settings);
            total += r.members.len();
            for m in r.members {
                *views.entry(m.agent).or_default() += 1;
            }
        }
        // Each live member by itself and two peers; the dead one by two peers.
        assert_eq!(views.len(), 50);
        assert!(
            views
                .iter()
                .all(|(a, n)| *n == if a == "a7" { 2 } else { 3 }),
            "{views:?}"
        );
        assert_eq!(total, 49 * 3 + 2);
    }

    #[test]
    fn report_carries_views_owned_routers_and_relayed_rows() {
        let settings = ReportSettings {
            site: "lis1".into(),
            gossip_interval_ms: 250,
            phi_threshold: 8.0,
            replication: 1,
        };
        let membership = Membership {
            self_agent: "a0".into(),
            members: vec![
                member("a0", true, &[("dns", 0.0)]),
                member("a1", true, &[("dns", 100.0)]),
                member("a2", false, &[]),
            ],
        };
        let r = build(1_790_000_000_000, &membership, vec!["r1".into()], &settings);
        assert_eq!(r.generation, 7);
        assert_eq!(r.members.len(), 3);
        assert_eq!(r.members[2].state, MemberState::Dead);
        assert_eq!(r.members[0].capabilities, vec!["routeros", "icmp"]);
        // Two live agents: each reports the other (fanout 2 > peers available).
        assert_eq!(r.reach.len(), 2);
        assert!(
            r.reach
                .iter()
                .any(|c| c.vantage == "a1" && c.loss_pct == 100.0)
        );
        assert_eq!(r.owned, vec!["r1".to_owned()]);
    }
}
