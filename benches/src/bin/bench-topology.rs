//! The topology model at ISP scale: how long one inventory change takes to be read
//! again, and how long the impact of one cause and of many takes.
//!
//! The network is [`ispvm_benches::isp_topology`]. Prints the node count and each figure.

use anyhow::Result;
use clap::Parser;
use ispvm_actors::topology::NodeKey;
use ispvm_benches::{IspShape, isp_topology};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    pops: usize,
    #[arg(long, default_value_t = 8)]
    ring: usize,
    #[arg(long, default_value_t = 6)]
    access: usize,
    /// Causes failing together in the many-causes figure.
    #[arg(long, default_value_t = 1000)]
    causes: usize,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let started = Instant::now();
    let mut t = isp_topology(&IspShape {
        pops: a.pops,
        ring: a.ring,
        access: a.access,
    })?;
    let (devices, links) = t.counts();
    println!(
        "topology: {devices} devices, {links} links ({} nodes), built in {:.1} ms",
        devices + links,
        started.elapsed().as_secs_f64() * 1e3
    );
    // First reading computes the dependency tree.
    let cause = NodeKey::Device("pop0-core1".into());
    let s = Instant::now();
    let first = t.impact_of(&cause);
    println!(
        "first impact query (dependency tree computed): {:.2} ms, {} entities impacted",
        s.elapsed().as_secs_f64() * 1e3,
        first.len()
    );
    // One inventory change, then the next question: the update figure.
    let mut samples = Vec::new();
    for round in 0..20 {
        let s = Instant::now();
        if round % 2 == 0 {
            t.upsert_link("extra", "pop1-agg0-acc0", "pop1-agg3")?;
        } else {
            t.remove_link("extra");
        }
        let _ = t.impact_of(&cause);
        samples.push(s.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "one inventory change, then an impact query: median {:.2} ms, max {:.2} ms (20 changes)",
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
    // Single causes on an unchanged model.
    let s = Instant::now();
    let mut total = 0;
    for p in 0..a.pops {
        total += t.impact_of(&NodeKey::Device(format!("pop{p}-agg2"))).len();
    }
    println!(
        "impact of one cause, unchanged model: {:.3} ms each ({} queries, {} entities)",
        s.elapsed().as_secs_f64() * 1e3 / a.pops as f64,
        a.pops,
        total
    );
    // Many causes together: every access router's first uplink on the first PoPs.
    let causes: Vec<NodeKey> = (0..a.pops)
        .flat_map(|p| (0..a.ring).map(move |i| (p, i)))
        .flat_map(|(p, i)| {
            (0..a.access).map(move |k| NodeKey::Link(format!("pop{p}-agg{i}~pop{p}-agg{i}-acc{k}")))
        })
        .take(a.causes)
        .collect();
    let s = Instant::now();
    let many = t.impact_of_all(&causes);
    println!(
        "impact of {} causes together: {:.2} ms, {} entities impacted",
        causes.len(),
        s.elapsed().as_secs_f64() * 1e3,
        many.len()
    );
    Ok(())
}
