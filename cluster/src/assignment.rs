//! Which routers this agent polls, kept in step with the membership.
//!
//! [`crate::ownership`] says who *should* own each router for one membership;
//! [`Assignment`] turns successive memberships into acquisitions and releases with
//! make-before-break: a router is taken at once when this agent becomes one of its
//! owners (so a dead agent's routers are polled again as soon as it is declared dead),
//! but released only after every new owner has been continuously live for the settle
//! time. A partition heal or a flapping member therefore causes a short double poll,
//! never a gap and never a release–acquire–release cycle.

use crate::gossip::Membership;
use crate::ownership::{self, Capability, OwnershipPolicy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A router the cluster places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSpec {
    pub id: String,
    pub site: String,
    pub needs: Capability,
}

/// What changed for one router on this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handover {
    pub router: String,
    pub kind: HandoverKind,
    /// The owners by the membership that caused the change.
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverKind {
    /// This agent starts polling the router.
    Acquired,
    /// This agent stops polling it; the owners took over.
    Released,
}

/// The routers this agent polls, and the owners of every router by its latest view.
#[derive(Debug)]
pub struct Assignment {
    self_agent: String,
    policy: OwnershipPolicy,
    settle: Duration,
    owned: std::collections::BTreeSet<String>,
    owners: BTreeMap<String, Vec<String>>,
}

impl Assignment {
    pub fn new(self_agent: &str, policy: OwnershipPolicy, settle: Duration) -> Self {
        Assignment {
            self_agent: self_agent.to_owned(),
            policy,
            settle,
            owned: Default::default(),
            owners: Default::default(),
        }
    }

    /// Routers this agent polls now.
    pub fn owned(&self) -> impl Iterator<Item = &str> {
        self.owned.iter().map(String::as_str)
    }

    pub fn owns(&self, router: &str) -> bool {
        self.owned.contains(router)
    }

    /// Owners of every router by the latest membership (the ownership map of the API).
    pub fn owners(&self) -> &BTreeMap<String, Vec<String>> {
        &self.owners
    }

    /// Applies a new membership and router list; returns what changed, acquisitions
    /// first.
    pub fn update(&mut self, membership: &Membership, routers: &[RouterSpec]) -> Vec<Handover> {
        let me = membership.member(&self.self_agent);
        let leaving = me.is_some_and(|m| m.leaving);
        // Until this agent has been live for the settle time its view may still lack
        // peers it has not heard from yet: it takes its own PoP's routers at once (no
        // gap on a cold start) but takes over another PoP's only once its view has
        // settled. Otherwise every agent of a cluster starting together would grab
        // every router for a moment, and hand most of them back a round later.
        let newcomer = me.is_none_or(|m| m.live_for < self.settle);
        let own_site = me.and_then(|m| m.site.as_deref());
        let available: Vec<ownership::Member<'_>> = membership
            .available()
            .filter_map(|m| {
                Some(ownership::Member {
                    agent: &m.agent,
                    site: m.site.as_deref()?,
                    capabilities: m.capabilities,
                })
            })
            .collect();
        let settled = |agent: &str| {
            membership
                .member(agent)
                .is_some_and(|m| m.available() && m.live_for >= self.settle)
        };
        let mut owners = BTreeMap::new();
        let mut acquired = Vec::new();
        let mut released = Vec::new();
        for r in routers {
            let spec = ownership::Router {
                id: &r.id,
                site: &r.site,
                needs: r.needs,
            };
            let chosen: Vec<String> = ownership::owners(&spec, &available, &self.policy)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let mine = !leaving && chosen.contains(&self.self_agent);
            let have = self.owned.contains(&r.id);
            let deferred = newcomer && own_site != Some(r.site.as_str());
            if mine && !have && !deferred {
                acquired.push(Handover {
                    router: r.id.clone(),
                    kind: HandoverKind::Acquired,
                    owners: chosen.clone(),
                });
            } else if !mine && have {
                let others_ready = !chosen.is_empty() && chosen.iter().all(|a| settled(a));
                if leaving || others_ready {
                    released.push(Handover {
                        router: r.id.clone(),
                        kind: HandoverKind::Released,
                        owners: chosen.clone(),
                    });
                }
            }
            owners.insert(r.id.clone(), chosen);
        }
        // Routers no longer configured are released at once.
        for gone in self
            .owned
            .iter()
            .filter(|id| !owners.contains_key(*id))
            .cloned()
            .collect::<Vec<_>>()
        {
            released.push(Handover {
                router: gone,
                kind: HandoverKind::Released,
                owners: Vec::new(),
            });
        }
        for h in &acquired {
            self.owned.insert(h.router.clone());
        }
        for h in &released {
            self.owned.remove(&h.router);
        }
        self.owners = owners;
        acquired.extend(released);
        acquired
    }
}

/// An assignment shared between the task that keeps it current and its readers (the
/// cluster-state API).
pub type SharedAssignment = std::sync::Arc<std::sync::Mutex<Assignment>>;

/// Keeps `assignment` in step with every membership refresh and router-list change,
/// sending each handover to `events`. Ends when the membership sender goes away.
pub async fn drive(
    mut membership: tokio::sync::watch::Receiver<std::sync::Arc<Membership>>,
    mut routers: tokio::sync::watch::Receiver<std::sync::Arc<Vec<RouterSpec>>>,
    assignment: SharedAssignment,
    events: tokio::sync::mpsc::UnboundedSender<Handover>,
) {
    loop {
        let view = membership.borrow_and_update().clone();
        let list = routers.borrow_and_update().clone();
        // An empty membership is the watcher's placeholder before its first round.
        if !view.members.is_empty() {
            let changes = match assignment.lock() {
                Ok(mut a) => a.update(&view, &list),
                Err(_) => return,
            };
            for h in changes {
                tracing::info!(router = %h.router, kind = ?h.kind, owners = ?h.owners, "router handover");
                if events.send(h).is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            changed = membership.changed() => if changed.is_err() { return },
            changed = routers.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::Member;
    use crate::ownership::Capabilities;

    fn member(agent: &str, site: &str, live: bool, live_for_s: u64) -> Member {
        Member {
            agent: agent.into(),
            generation: 1,
            gossip_addr: ([127, 0, 0, 1], 1).into(),
            tenant: Some("t".into()),
            site: Some(site.into()),
            version: None,
            capabilities: Capabilities::of(&Capability::ALL),
            live,
            leaving: false,
            heartbeat: 1,
            phi: None,
            live_for: Duration::from_secs(if live { live_for_s } else { 0 }),
            load: None,
            health: None,
            cert_expiry_s: None,
            reach: Vec::new(),
        }
    }

    fn routers(n: usize) -> Vec<RouterSpec> {
        (0..n)
            .map(|i| RouterSpec {
                id: format!("r{i}"),
                site: "lis".into(),
                needs: Capability::RouterOs,
            })
            .collect()
    }

    fn view(me: &str, members: Vec<Member>) -> Membership {
        Membership {
            self_agent: me.into(),
            members,
        }
    }

    #[test]
    fn takes_over_at_once_and_hands_back_only_after_settle() {
        let rs = routers(40);
        let settle = Duration::from_secs(5);
        let mut a = Assignment::new("a", OwnershipPolicy::default(), settle);
        let both = |b_live, b_for| {
            view(
                "a",
                vec![
                    member("a", "lis", true, 100),
                    member("b", "lis", b_live, b_for),
                ],
            )
        };
        a.update(&both(true, 100), &rs);
        let mine_before: Vec<String> = a.owned().map(str::to_owned).collect();
        assert!(!mine_before.is_empty() && mine_before.len() < 40);

        // b dies: a acquires everything at once.
        let events = a.update(&both(false, 0), &rs);
        assert_eq!(a.owned().count(), 40);
        assert_eq!(events.len(), 40 - mine_before.len());
        assert!(events.iter().all(|e| e.kind == HandoverKind::Acquired));

        // b is back but not settled: a keeps polling (double poll, no gap).
        assert!(a.update(&both(true, 1), &rs).is_empty());
        assert_eq!(a.owned().count(), 40);

        // b settled: a releases exactly b's routers.
        let events = a.update(&both(true, 6), &rs);
        assert!(events.iter().all(|e| e.kind == HandoverKind::Released));
        let mine_after: Vec<String> = a.owned().map(str::to_owned).collect();
        assert_eq!(mine_after, mine_before);
    }

    #[test]
    fn a_newcomer_takes_its_own_pop_at_once_and_other_pops_only_once_settled() {
        let mut rs = routers(6);
        for r in &mut rs[3..] {
            r.site = "evr".into();
        }
        let settle = Duration::from_secs(2);
        let mut a = Assignment::new("a", OwnershipPolicy::default(), settle);
        // Just started, alone in its view: lis routers now, evr routers (whose PoP has
        // no agent it knows of) not yet.
        let events = a.update(&view("a", vec![member("a", "lis", true, 0)]), &rs);
        assert_eq!(events.len(), 3);
        assert!(a.owned().all(|r| ["r0", "r1", "r2"].contains(&r)));
        // The evr agent shows up before a settled: nothing to take over, no churn.
        let both = |a_for| {
            view(
                "a",
                vec![member("a", "lis", true, a_for), member("e", "evr", true, 1)],
            )
        };
        assert!(a.update(&both(1), &rs).is_empty());
        // Settled and the evr agent dies: a takes its PoP over.
        let alone = view(
            "a",
            vec![member("a", "lis", true, 3), member("e", "evr", false, 0)],
        );
        assert_eq!(a.update(&alone, &rs).len(), 3);
        assert_eq!(a.owned().count(), 6);
    }

    #[test]
    fn leaving_releases_everything_and_removed_routers_are_dropped() {
        let rs = routers(10);
        let mut a = Assignment::new("a", OwnershipPolicy::default(), Duration::from_secs(5));
        a.update(&view("a", vec![member("a", "lis", true, 10)]), &rs);
        assert_eq!(a.owned().count(), 10);
        a.update(&view("a", vec![member("a", "lis", true, 10)]), &rs[..4]);
        assert_eq!(a.owned().count(), 4);
        let mut leaving = member("a", "lis", true, 10);
        leaving.leaving = true;
        let events = a.update(&view("a", vec![leaving]), &rs[..4]);
        assert_eq!(events.len(), 4);
        assert_eq!(a.owned().count(), 0);
    }
}
