//! Benchmark: router polls per second and memory per poller actor, against the virtual
//! ISP (issue 4's done-when figures).
//!
//! The simulated routers run in a child process (this binary with `--serve`), so the
//! resident memory measured in the parent is the agent's alone: N poller actors with
//! their RouterOS sessions, collectors and timers.
//!
//! `cargo run --release -p ispvm-server --bin bench-agent-polls -- --routers 1000 --seconds 20`

use ispvm_agent::actors::poller::{Poller, PollerArgs, PollerMsg};
use ispvm_agent::actors::uplink::UplinkMsg;
use ispvm_agent::config::{PollConfig, RouterConfig};
use ispvm_agent::internal_events::AgentMetrics;
use ispvm_agent::state::AgentState;
use ispvm_proto::{DeviceRole, MetricName};
use ispvm_sim::{Topology, VirtualIsp};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts successful polls (a `device.up` of 1) and drops the data.
struct Counter;

impl Actor for Counter {
    type Msg = UplinkMsg;
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _: ActorRef<UplinkMsg>,
        n: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(n)
    }

    async fn handle(
        &self,
        _: ActorRef<UplinkMsg>,
        msg: UplinkMsg,
        n: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let UplinkMsg::Collected(out) = msg
            && out
                .samples
                .iter()
                .any(|s| s.metric == MetricName::DeviceUp && s.value == 1.0)
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Child mode: serve N routers and print `id addr username password` per line.
async fn serve(n: usize) -> anyhow::Result<()> {
    let isp = VirtualIsp::start(Topology::generated(n), IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
    let mut out = std::io::stdout().lock();
    for r in isp.routers() {
        writeln!(
            out,
            "{} {} {} {}",
            r.spec.id, r.addr, r.credentials.username, r.credentials.password
        )?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    isp.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let routers = arg("--routers", 1000) as usize;
    if std::env::args().any(|a| a == "--serve") {
        return serve(routers).await;
    }
    let seconds = arg("--seconds", 20);
    let interval_ms = arg("--interval-ms", 1000);

    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", "--routers", &routers.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no child stdout"))?;
    let mut configs = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line == "ready" {
            break;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        if let [id, addr, user, pass] = parts.as_slice() {
            configs.push(RouterConfig {
                key: (*id).to_owned(),
                address: addr.parse::<SocketAddr>()?,
                username: (*user).to_owned(),
                password: (*pass).to_owned(),
                role: DeviceRole::Access,
                site: None,
                tls: None,
                tags: Vec::new(),
                profile: None,
                collector: Default::default(),
                snmp: None,
            });
        }
    }
    anyhow::ensure!(
        configs.len() == routers,
        "the simulator started {} routers",
        configs.len()
    );

    let polls = Arc::new(AtomicU64::new(0));
    let (sink, _) = Actor::spawn(None, Counter, polls.clone()).await?;
    let metrics = AgentMetrics::new();
    let state = Arc::new(AgentState::default());
    let poll = PollConfig {
        interval_ms,
        jitter_ms: interval_ms,
        max_concurrent_polls: 256,
        ..PollConfig::default()
    };
    let limiter = Arc::new(tokio::sync::Semaphore::new(poll.max_concurrent_polls));
    let rss_before = rss_kib();
    let mut pollers: Vec<ActorRef<PollerMsg>> = Vec::new();
    for router in configs {
        let args = PollerArgs {
            router,
            site: "bench".into(),
            poll: poll.clone(),
            uplink: sink.clone(),
            metrics: metrics.clone(),
            state: state.clone(),
            limiter: limiter.clone(),
            source_address: None,
        };
        pollers.push(Actor::spawn(None, Poller, args).await?.0);
    }
    // Warm up: every router connected and polled at least once.
    tokio::time::sleep(Duration::from_millis(interval_ms * 3)).await;
    let rss_after = rss_kib();
    let start_count = polls.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let done = polls.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed().as_secs_f64();
    println!("routers                 {routers}");
    println!("poll interval           {interval_ms} ms");
    println!("successful polls        {done} in {elapsed:.1} s");
    println!("polls per second        {:.0}", done as f64 / elapsed);
    println!("agent RSS before/after  {rss_before} KiB / {rss_after} KiB");
    println!(
        "memory per poller actor {:.1} KiB (session, collector state, timer; after warm-up)",
        rss_after.saturating_sub(rss_before) as f64 / routers as f64
    );
    for p in pollers {
        p.stop(None);
    }
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}
