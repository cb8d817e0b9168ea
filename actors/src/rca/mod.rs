//! Root-cause analysis (ARCHITECTURE §3, RCA v1 with multi-vantage localisation).
//!
//! Given the topology and what every vantage observed — each agent's pings, API polls
//! and gossip, the server hearing agents, the routers' own reports of links and BGP
//! sessions — find the fewest failures that explain everything observed lost while
//! staying consistent with everything observed working, and say what kind of fault
//! each is. That is what tells apart a dead router (nothing reaches it and its
//! neighbours lost their links to it), a broken path (some vantages reach it, others
//! do not), a management-plane failure (the API is silent, pings answer), an agent
//! death (the agent is silent, its routers answer the agent that took them over), an
//! isolated site (every link into it down), an upstream loss, a lost BGP session,
//! congestion and a ring cut that only degrades redundancy.
//!
//! - [`observations`]: the input, plain observations with timestamps.
//! - `net`: the graph searched (topology, observers, management planes) and the
//!   dominator trees that say what a failure cuts off from a vantage.
//! - `search`: facts, then greedy weighted set cover in rounds.
//! - `classify`: kinds, impact, confidence and evidence of each finding.
//! - [`finding`]: the output.

mod classify;
pub mod finding;
mod net;
pub mod observations;
mod search;
#[cfg(test)]
mod tests;

pub use finding::{Analysis, Cause, CauseEntity, CauseKind, Evidence, Finding, Impact, RunnerUp};
pub use observations::{
    BgpDown, BgpPeer, Congestion, LinkDown, LinkEvidence, LinkUp, Observations, PathObservation,
    PathTarget, SERVER_VANTAGE, UplinkCollapse, Vantage,
};

use crate::topology::Topology;

/// Explains `observations` over `topology`.
pub fn analyse(topology: &mut Topology, observations: &Observations) -> Analysis {
    if observations.is_quiet() {
        return Analysis::default();
    }
    let net = net::Net::build(topology, &observations.vantages);
    let problem = search::Problem::new(&net, observations);
    let solution = problem.solve(&net);
    classify::classify(topology, &net, &problem, solution, observations)
}
