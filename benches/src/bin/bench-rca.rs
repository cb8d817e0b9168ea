//! Root-cause analysis at ISP scale: a 10,000-node network with 1,000 devices down.
//!
//! The network is [`ispvm_benches::isp_topology`] (60 PoPs: 3,484 devices, 6,544 links).
//! Agents sit on the first core of the first `--agents` PoPs, the server on `edge1`.
//! Failures: in PoP after PoP, two pairs of adjacent aggregation routers die (which cuts
//! off the access routers dual-homed to each pair) until `--down` devices are down.
//! The observations every vantage would make are derived from that truth by plain graph
//! search (pings and API polls of every device from every agent, each live end's report
//! of its links), then the analysis runs. Prints the time of the analysis and how many
//! of its device-down findings name a device that really died.

use anyhow::Result;
use clap::Parser;
use ispvm_actors::rca::{
    CauseEntity, CauseKind, LinkDown, LinkEvidence, LinkUp, Observations, PathObservation,
    PathTarget, SERVER_VANTAGE, Vantage, analyse,
};
use ispvm_benches::{IspShape, isp_topology};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 60)]
    pops: usize,
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Devices down (at least).
    #[arg(long, default_value_t = 1000)]
    down: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Devices reachable from `from` over links whose ends are both alive.
fn reach(adj: &HashMap<&str, Vec<&str>>, dead: &HashSet<String>, from: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    if dead.contains(from) {
        return seen;
    }
    seen.insert(from.to_owned());
    let mut q = VecDeque::from([from.to_owned()]);
    while let Some(d) = q.pop_front() {
        for n in adj.get(d.as_str()).into_iter().flatten() {
            if !dead.contains(*n) && seen.insert((*n).to_owned()) {
                q.push_back((*n).to_owned());
            }
        }
    }
    seen
}

fn main() -> Result<()> {
    let a = Args::parse();
    let shape = IspShape {
        pops: a.pops,
        ring: 8,
        access: 6,
    };
    let mut topology = isp_topology(&shape)?;
    let (devices, links) = topology.counts();
    let device_ids: Vec<String> = topology.devices().map(|(d, _, _)| d.to_owned()).collect();
    let link_list: Vec<(String, String, String)> = topology
        .links()
        .map(|(l, x, y)| (l.to_owned(), x.to_owned(), y.to_owned()))
        .collect();
    let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, x, y) in &link_list {
        adj.entry(x).or_default().push(y);
        adj.entry(y).or_default().push(x);
    }
    let agents: Vec<(String, String)> = (0..a.agents.min(a.pops))
        .map(|p| (format!("agent-pop{p}"), format!("pop{p}-core1")))
        .collect();
    // The truth.
    let mut dead: HashSet<String> = HashSet::new();
    let mut down = 0;
    'pops: for p in a.agents..a.pops {
        for pair in [[2, 3], [5, 6]] {
            for i in pair {
                dead.insert(format!("pop{p}-agg{i}"));
            }
            let alive = reach(&adj, &dead, "edge1");
            down = device_ids.len() - alive.len();
            if down >= a.down {
                break 'pops;
            }
        }
    }
    // What the vantages observe.
    let mut obs = Observations::default();
    obs.vantages.push(Vantage {
        id: SERVER_VANTAGE.into(),
        attached_to: vec!["edge1".into()],
        site: None,
    });
    let mut observable = HashSet::new();
    for (agent, at) in &agents {
        obs.vantages.push(Vantage {
            id: agent.clone(),
            attached_to: vec![at.clone()],
            site: None,
        });
        let seen = reach(&adj, &dead, at);
        for d in &device_ids {
            for target in [
                PathTarget::Device(d.clone()),
                PathTarget::Management(d.clone()),
            ] {
                obs.paths.push(PathObservation {
                    vantage: agent.clone(),
                    target,
                    reached: seen.contains(d),
                    at_ms: 1_000,
                });
            }
        }
        observable.extend(seen);
    }
    for (l, x, y) in &link_list {
        let up = !dead.contains(x) && !dead.contains(y);
        for end in [x, y] {
            if !observable.contains(end) {
                continue;
            }
            if up {
                obs.links_up.push(LinkUp {
                    link: l.clone(),
                    reported_by: end.clone(),
                });
            } else {
                obs.links_down.push(LinkDown {
                    link: l.clone(),
                    evidence: LinkEvidence::InterfaceDown {
                        device: end.clone(),
                        interface: format!("to-{l}"),
                        uplink: false,
                    },
                    at_ms: 900,
                });
            }
        }
    }
    println!(
        "network: {devices} devices, {links} links ({} nodes); {} devices dead, {down} down \
         (dead or cut off); {} observations from {} vantages",
        devices + links,
        dead.len(),
        obs.paths.len() + obs.links_down.len() + obs.links_up.len(),
        obs.vantages.len()
    );
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..a.runs {
        let s = Instant::now();
        let analysis = analyse(&mut topology, &obs);
        times.push(s.elapsed().as_secs_f64() * 1e3);
        last = Some(analysis);
    }
    times.sort_by(f64::total_cmp);
    let analysis = last.unwrap_or_default();
    let named: Vec<&str> = analysis
        .findings
        .iter()
        .filter(|f| f.cause.kind == CauseKind::DeviceDown)
        .filter_map(|f| match &f.cause.entity {
            CauseEntity::Device { id } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &analysis.findings {
        *by_kind.entry(f.cause.kind.as_str()).or_default() += 1;
    }
    println!("findings by kind: {by_kind:?}");
    let right = named.iter().filter(|d| dead.contains(**d)).count();
    // A dead device with no live, observable neighbour is indistinguishable from one cut
    // off by the others: nobody can name it.
    let visible = dead
        .iter()
        .filter(|d| {
            adj.get(d.as_str())
                .is_some_and(|n| n.iter().any(|x| observable.contains(*x)))
        })
        .count();
    println!(
        "analysis: median {:.1} ms, max {:.1} ms ({} runs); {} findings, {right} of {} dead \
         devices named device_down ({visible} observable: the others sit behind them), \
         {} device_down findings wrong, {} observations unexplained",
        times[times.len() / 2],
        times[times.len() - 1],
        a.runs,
        analysis.findings.len(),
        dead.len(),
        named.len() - right,
        analysis.unexplained.len()
    );
    Ok(())
}
