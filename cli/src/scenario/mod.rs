//! `ispvm scenario run FILE... [--json] [--speed N]`: each scenario end to end in this
//! process — the virtual ISP with every connection following the live network, the real
//! agents in a gossip cluster, the server on a temporary store with its alert engine,
//! correlator and incidents — then every `[[expect]]` judged (docs/scenarios.md).

pub mod judge;
pub mod pager;
pub mod world;

use anyhow::Context;
use ispvm_actors::incident::Incident;
use ispvm_actors::rca::CauseKind;
use ispvm_server::store::IncidentFilter;
use ispvm_sim::Topology;
use ispvm_sim::scenario::{line_of, line_of_table};
use judge::{Outcome, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use world::{TENANT, World};

/// How scenarios run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Scenario seconds per real second.
    pub speed: f64,
}

/// The report of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub name: Option<String>,
    pub speed: f64,
    /// Why the file could not run at all.
    pub error: Option<String>,
    pub expectations: Vec<Verdict>,
    pub pass: bool,
}

/// Real time the world gets to settle before scenario time zero: agents connected,
/// gossip converged, first polls and probes in.
fn warm_up(speed: f64) -> Duration {
    Duration::from_millis(world::real_ms(30_000, speed, 8_000))
}

/// Checks what the simulator cannot: the words of `kind`.
fn check_kinds(topology: &Topology, text: &str) -> anyhow::Result<()> {
    for (n, e) in topology.expect.iter().enumerate() {
        if let Some(k) = &e.kind
            && k.parse::<CauseKind>().is_err()
        {
            let line = line_of(text, k).or_else(|| line_of_table(text, "[[expect]]", n));
            let words: Vec<&str> = CauseKind::ALL.iter().map(|c| c.as_str()).collect();
            anyhow::bail!(
                "{}expect {:?}: kind {k:?} is not one of {}",
                line.map(|l| format!("line {l}: ")).unwrap_or_default(),
                e.name,
                words.join(", ")
            );
        }
    }
    if topology.scenario.is_none() {
        anyhow::bail!("the file has no [scenario] table (duration_s is required)");
    }
    Ok(())
}

/// Reads, validates and runs one file.
pub async fn run_file(path: &Path, options: Options) -> FileReport {
    let mut report = FileReport {
        file: path.display().to_string(),
        name: None,
        speed: options.speed,
        error: None,
        expectations: Vec::new(),
        pass: false,
    };
    let loaded = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .and_then(|text| {
            let t = Topology::from_scenario_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            check_kinds(&t, &text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(t)
        });
    let topology = match loaded {
        Ok(t) => t,
        Err(e) => {
            report.error = Some(format!("{e:#}"));
            return report;
        }
    };
    report.name = Some(topology.name.clone());
    match run_topology(&topology, options).await {
        Ok(verdicts) => {
            report.pass = verdicts.iter().all(|v| v.pass);
            report.expectations = verdicts;
        }
        Err(e) => report.error = Some(format!("{e:#}")),
    }
    report
}

async fn run_topology(topology: &Topology, options: Options) -> anyhow::Result<Vec<Verdict>> {
    let speed = options.speed;
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let scenario = topology
        .scenario
        .as_ref()
        .context("the file has no [scenario] table")?;
    let mut world = World::start(topology.clone(), dir.path(), speed).await?;
    tokio::time::sleep(warm_up(speed)).await;
    let t0 = ispvm_proto::time::now_ms();
    world.prepare(topology, t0).await?;
    let real = |s: f64| Duration::from_secs_f64((s / speed).max(0.0));
    // (scenario s, index, apply?)
    let mut events: Vec<(f64, usize, bool)> = Vec::new();
    for (i, t) in topology.timeline.iter().enumerate() {
        events.push((t.at_s, i, true));
        if let Some(d) = t.duration_s {
            events.push((t.at_s + d, i, false));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.cmp(&a.2)));
    let start = tokio::time::Instant::now();
    let watch = debugging().then(|| watch_findings(world.server.tree.clone(), t0, speed));
    let mut applied = vec![None; topology.timeline.len()];
    for (at, i, apply) in events {
        if at > scenario.duration_s {
            break;
        }
        tokio::time::sleep_until(start + real(at)).await;
        let Some(entry) = topology.timeline.get(i) else {
            continue;
        };
        match (&entry.fault, apply) {
            (ispvm_sim::Fault::AgentDown { agent }, true) => {
                world.kill_agent(agent).await;
            }
            (ispvm_sim::Fault::AgentDown { .. }, false) => {}
            (fault, true) => match world.isp.apply(fault.clone()) {
                Ok(id) => applied[i] = Some(id),
                Err(e) => tracing::warn!(index = i, error = %e, "fault not applied"),
            },
            (_, false) => {
                if let Some(id) = applied[i].take() {
                    let _ = world.isp.clear(id);
                }
            }
        }
    }
    tokio::time::sleep_until(start + real(scenario.duration_s)).await;
    let outcome = outcome(&world, t0, speed).await?;
    if let Some(w) = watch {
        w.abort();
    }
    if debugging() {
        let analysis = world.server.tree.analysis(TENANT).await;
        if let Ok(a) = &analysis {
            for f in &a.findings {
                eprintln!(
                    "finding at the end: {} {} ({:.2})",
                    f.cause.kind, f.cause.entity, f.confidence
                );
            }
        }
        for i in world
            .server
            .tree
            .incidents(TENANT)
            .await
            .unwrap_or_default()
        {
            eprintln!(
                "incident {} {} opened at {} s: {} (confidence {:.2})",
                i.id,
                i.state,
                scenario_ms(i.opened_ms, t0, speed) / 1_000,
                i.title,
                i.confidence
            );
            for e in &i.evidence {
                eprintln!(
                    "    {:>5} s  {}",
                    scenario_ms(e.at_ms, t0, speed) / 1_000,
                    e.text
                );
            }
        }
        let alerts = world.server.tree.alerts(TENANT).await.unwrap_or_default();
        for a in alerts {
            eprintln!(
                "alert {} {} {:?} {:?}",
                a.rule_id, a.entity, a.state.phase, a.state.level
            );
        }
    }
    world.shutdown().await;
    Ok(judge::judge(&topology.expect, &outcome, topology))
}

/// `ISPVM_SCENARIO_DEBUG` set: the run prints how its findings changed, and at the end
/// the findings, incidents with their evidence and the alerts.
fn debugging() -> bool {
    std::env::var_os("ISPVM_SCENARIO_DEBUG").is_some()
}

/// Prints each change of the correlator's findings, in scenario seconds.
fn watch_findings(
    tree: ispvm_actors::tree::MonitorTree,
    t0: i64,
    speed: f64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(a) = tree.analysis(TENANT).await else {
                continue;
            };
            let now: Vec<String> = a
                .findings
                .iter()
                .map(|f| format!("{} {} ({:.2})", f.cause.kind, f.cause.entity, f.confidence))
                .chain(a.unexplained.iter().map(|u| format!("unexplained: {u}")))
                .collect();
            if now != last {
                let at = scenario_ms(ispvm_proto::time::now_ms(), t0, speed) / 1_000;
                eprintln!("{at:>5} s findings: {}", now.join("; "));
                last = now;
            }
        }
    })
}

/// Scenario ms of a wall-clock time.
fn scenario_ms(at_ms: i64, t0: i64, speed: f64) -> i64 {
    ((at_ms - t0) as f64 * speed) as i64
}

async fn outcome(world: &World, t0: i64, speed: f64) -> anyhow::Result<Outcome> {
    let ts = world.store.tenant(TENANT);
    let rows = ts
        .incidents_page(IncidentFilter::default(), None, 10_000)
        .await?;
    let mut incidents: Vec<(i64, Incident)> = Vec::new();
    for r in rows {
        if let Some(i) = ts.incident(r.id).await? {
            incidents.push((scenario_ms(i.opened_ms, t0, speed), i));
        }
    }
    incidents.sort_by_key(|(at, i)| (*at, i.id));
    let notifications: Vec<(u64, i64)> = pager::sent(&world.store, TENANT)
        .await?
        .into_iter()
        .map(|(id, at)| (id, scenario_ms(at, t0, speed)))
        .collect();
    if (world.pager.received() as usize) < notifications.len() {
        anyhow::bail!(
            "{} notifications recorded as sent, the pager received {}",
            notifications.len(),
            world.pager.received()
        );
    }
    // "Down" is the reachability rule at its outage level: its warnings say a path or
    // the management plane is in trouble while the device is alive.
    let mut device_down_alerts = Vec::new();
    let mut alert_firings = Vec::new();
    let mut after = 0;
    loop {
        let page = ts.alert_notifications(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        alert_firings.extend(
            page.iter()
                .filter(|n| n.kind.as_str() == "firing")
                .map(|n| {
                    let key = ispvm_actors::incident::AlertKey {
                        rule_id: n.rule_id.clone(),
                        entity: ispvm_actors::alert::EntityRef::new(n.entity_kind, &n.entity_id),
                    };
                    (key, scenario_ms(n.ts_ms, t0, speed))
                }),
        );
        device_down_alerts.extend(
            page.into_iter()
                .filter(|n| {
                    n.rule_id == "device-down"
                        && n.kind.as_str() == "firing"
                        && n.level == ispvm_actors::alert::Level::Critical
                })
                .map(|n| (n.entity_id, scenario_ms(n.ts_ms, t0, speed))),
        );
    }
    Ok(Outcome {
        incidents,
        notifications,
        device_down_alerts,
        alert_firings,
    })
}

/// One line per expectation, for people.
pub fn print_human(r: &FileReport) {
    println!(
        "{} — {} (speed {})",
        r.file,
        r.name.as_deref().unwrap_or("?"),
        r.speed
    );
    if let Some(e) = &r.error {
        println!("  ERROR {e}");
        return;
    }
    for v in &r.expectations {
        println!(
            "  {} {:<32} detected={} latency={} incident={} kind={} root_cause={} confidence={} suppressed={} unsuppressed={} incidents={} notifications={}",
            if v.pass { "PASS" } else { "FAIL" },
            v.name,
            v.detected,
            v.latency_s.map_or("-".into(), |l| format!("{l:.1}s")),
            v.title.as_deref().unwrap_or("-"),
            v.kind.map_or("-", |k| k.as_str()),
            v.root_cause.as_deref().unwrap_or("-"),
            v.confidence.map_or("-".into(), |c| format!("{c:.2}")),
            v.suppressed_alerts,
            v.unsuppressed_alerts,
            v.incidents_in_window,
            v.notifications,
        );
        for reason in &v.reasons {
            println!("       because {reason}");
        }
    }
}

/// Runs every file; `true` when every expectation of every file holds.
pub async fn run(files: &[PathBuf], options: Options, json: bool) -> bool {
    let mut reports = Vec::new();
    for f in files {
        let r = run_file(f, options).await;
        if !json {
            print_human(&r);
        }
        reports.push(r);
    }
    let pass = reports.iter().all(|r| r.pass);
    if json {
        let doc = serde_json::json!({ "pass": pass, "files": reports });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    pass
}
