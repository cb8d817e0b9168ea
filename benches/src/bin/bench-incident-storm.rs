//! An alert storm becomes the right incidents: 10,000 alerts from a failure of 1,000
//! devices in a 10,000-node network, through root-cause analysis and the incident
//! manager, as the correlator runs them.
//!
//! The failure is [`ispvm_benches::failure_world`]. Every device that is down gets a
//! critical device-down alert and loss alerts from each of several probes, and every
//! live end of a link to a down device an interface-down alert, until `--alerts`
//! alerts exist. Two correlation cycles run (a finding opens an incident only when two
//! analyses in a row found it); the figure is the time of both. Prints how many
//! incidents opened, how many alerts ended up suppressed, and whether every down device
//! is explained by an incident whose root cause really failed.

use anyhow::Result;
use clap::Parser;
use ispvm_actors::alert::{EntityKind, EntityRef, Level, Phase};
use ispvm_actors::incident::{AlertFact, AlertKey, IncidentContext, IncidentPolicy, Incidents};
use ispvm_actors::rca::{CauseEntity, CauseKind, analyse};
use ispvm_benches::{FailureWorld, failure_world};
use ispvm_proto::DeviceRole;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 60)]
    pops: usize,
    #[arg(long, default_value_t = 10)]
    agents: usize,
    #[arg(long, default_value_t = 1000)]
    down: usize,
    #[arg(long, default_value_t = 10_000)]
    alerts: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

struct Names {
    roles: HashMap<String, (DeviceRole, Option<String>)>,
    links: HashMap<String, [(String, String); 2]>,
    far: HashMap<(String, String), String>,
}

impl IncidentContext for Names {
    fn device(&self, id: &str) -> Option<(String, DeviceRole)> {
        self.roles.get(id).map(|(r, _)| (id.to_uppercase(), *r))
    }
    fn link(&self, id: &str) -> Option<[(String, String); 2]> {
        self.links.get(id).cloned()
    }
    fn far_end(&self, device: &str, interface: &str) -> Option<String> {
        self.far
            .get(&(device.to_owned(), interface.to_owned()))
            .cloned()
    }
    fn site(&self, id: &str) -> Option<String> {
        Some(id.to_owned())
    }
    fn subscribers_before(&self, _: &str, _: i64) -> Option<u64> {
        None
    }
}

fn fact(kind: EntityKind, id: String, rule: &str, level: Level, site: Option<String>) -> AlertFact {
    let device = id.split('/').next().map(str::to_owned);
    AlertFact {
        key: AlertKey {
            rule_id: rule.into(),
            entity: EntityRef::new(kind, id),
        },
        level,
        phase: Phase::Firing,
        since_ms: 1_000,
        site,
        device,
        meaning: CauseKind::DeviceDown,
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    let FailureWorld {
        mut topology,
        observations,
        dead,
        down,
        observable,
        neighbours,
    } = failure_world(a.pops, a.agents, a.down)?;
    let roles: HashMap<String, (DeviceRole, Option<String>)> = topology
        .devices()
        .map(|(d, r, s)| (d.to_owned(), (r, s.map(str::to_owned))))
        .collect();
    let links: HashMap<String, [(String, String); 2]> = topology
        .links()
        .map(|(l, x, y)| {
            (
                l.to_owned(),
                [
                    (x.to_owned(), format!("to-{l}")),
                    (y.to_owned(), format!("to-{l}")),
                ],
            )
        })
        .collect();
    let site = |d: &str| roles.get(d).and_then(|(_, s)| s.clone());
    // The storm.
    let mut alerts = Vec::new();
    let mut down_sorted: Vec<&String> = down.iter().collect();
    down_sorted.sort();
    'storm: for probe in 0.. {
        for d in &down_sorted {
            let f = if probe == 0 {
                fact(
                    EntityKind::Device,
                    (*d).clone(),
                    "device-down",
                    Level::Critical,
                    site(d),
                )
            } else {
                fact(
                    EntityKind::ProbeTarget,
                    (*d).clone(),
                    &format!("sla-loss-{probe}"),
                    Level::Warning,
                    site(d),
                )
            };
            alerts.push(f);
            if alerts.len() >= a.alerts {
                break 'storm;
            }
        }
        if probe == 0 {
            // Interface alerts at the live ends of links to down devices.
            for (l, ends) in &links {
                let [(x, xi), (y, yi)] = ends;
                for (me, iface, other) in [(x, xi, y), (y, yi, x)] {
                    if down.contains(other) && observable.contains(me) {
                        alerts.push(fact(
                            EntityKind::Interface,
                            format!("{me}/{iface}"),
                            "interface-down",
                            Level::Warning,
                            site(me),
                        ));
                        let _ = l;
                    }
                }
            }
        }
    }
    let far = links
        .values()
        .flat_map(|[a, b]| [(a.clone(), b.0.clone()), (b.clone(), a.0.clone())])
        .collect();
    let names = Names { roles, links, far };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..a.runs {
        let mut incidents = Incidents::new(IncidentPolicy::default());
        let s = Instant::now();
        for cycle in 0..2 {
            let analysis = analyse(&mut topology, &observations);
            incidents.update(2_000 + cycle * 5_000, &analysis, &alerts, &names);
        }
        times.push(s.elapsed().as_secs_f64() * 1e3);
        last = Some(incidents);
    }
    times.sort_by(f64::total_cmp);
    let Some(incidents) = last else {
        return Ok(());
    };
    let open: Vec<_> = incidents.all().filter(|i| i.is_open()).collect();
    let suppressed: usize = open.iter().map(|i| i.suppressed.len()).sum();
    let members: usize = open.iter().map(|i| i.members.len()).sum();
    let wrong_root = open
        .iter()
        .filter(|i| match &i.root_cause.entity {
            CauseEntity::Device { id } => !dead.contains(id),
            CauseEntity::Link { id } => topology
                .link_ends(id)
                .is_none_or(|(x, y)| !dead.contains(x) && !dead.contains(y)),
            _ => true,
        })
        .count();
    let explained: HashSet<&String> = open.iter().flat_map(|i| i.impact.devices.iter()).collect();
    let unexplained = down.iter().filter(|d| !explained.contains(d)).count();
    let _ = neighbours;
    println!(
        "storm: {} alerts on {} down devices; two correlation cycles: median {:.1} ms, max {:.1} ms ({} runs)",
        alerts.len(),
        down.len(),
        times[times.len() / 2],
        times[times.len() - 1],
        a.runs
    );
    println!(
        "incidents: {} opened, {} alerts as members, {} suppressed ({:.1} % of the storm), {} with a root cause that did not fail, {} down devices in no incident's impact",
        open.len(),
        members,
        suppressed,
        100.0 * suppressed as f64 / alerts.len() as f64,
        wrong_root,
        unexplained
    );
    Ok(())
}
