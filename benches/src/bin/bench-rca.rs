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
use ispvm_actors::rca::{CauseEntity, CauseKind, analyse};
use ispvm_benches::{FailureWorld, failure_world};
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

fn main() -> Result<()> {
    let a = Args::parse();
    let FailureWorld {
        mut topology,
        observations: obs,
        dead,
        down,
        observable,
        neighbours,
    } = failure_world(a.pops, a.agents, a.down)?;
    let (devices, links) = topology.counts();
    let down = down.len();
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
            neighbours
                .get(d.as_str())
                .is_some_and(|n| n.iter().any(|x| observable.contains(x)))
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
