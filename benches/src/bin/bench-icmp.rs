//! ICMP echoes per second on one core through the agent's shared pinger, side by side
//! with fping on the same loopback targets.
//!
//! The agent side runs on a current-thread Tokio runtime (one thread, the way a small PoP
//! agent would spend one core on probing): one echo loop per target against
//! 127.0.0.1 … 127.0.0.N for a fixed duration, counting answered echoes. Then fping sends
//! the same number of echoes per target to the same targets with its fastest settings
//! (`-i 0 -p 1`, root only), in as many back-to-back runs as its 16-bit sequence space
//! needs (one run holds at most 65 535 / N echoes per target), and the runs are timed
//! together. Pin both to one core with `taskset -c 1 bench-icmp`; fping inherits the
//! affinity. Figures are recorded in docs/benchmarks.md.

use clap::Parser;
use ispvm_agent::probe::{EchoOutcome, Family, IcmpPinger, IcmpSocketMode};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "ICMP echoes per second on one core, against fping")]
struct Args {
    /// Loopback targets 127.0.0.1 … 127.0.0.N (1..=254).
    #[arg(long, default_value_t = 254)]
    targets: u8,
    /// How long the agent's pinger runs.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Echo loops per target (echoes in flight per target).
    #[arg(long, default_value_t = 1)]
    lanes: u16,
    /// ICMP socket kind: auto, raw or dgram.
    #[arg(long, default_value = "auto")]
    mode: String,
    #[arg(long, default_value_t = 1_000)]
    timeout_ms: u64,
    /// ICMP payload bytes (fping's default is 56 too).
    #[arg(long, default_value_t = 56)]
    payload: usize,
    #[arg(long, default_value = "/usr/bin/fping")]
    fping: String,
    /// fping options besides -c, -q and the targets.
    #[arg(long, default_value = "-i 0 -p 1", allow_hyphen_values = true)]
    fping_args: String,
    /// Skip fping.
    #[arg(long)]
    no_fping: bool,
}

struct Figure {
    sent: u64,
    received: u64,
    took: Duration,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.received as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

fn targets(n: u8) -> Vec<IpAddr> {
    (1..=n.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect()
}

/// Echo loops, one per target and lane, until `duration` has passed.
async fn agent_run(
    pinger: Arc<IcmpPinger>,
    targets: &[IpAddr],
    lanes: u16,
    duration: Duration,
    timeout: Duration,
    payload: usize,
) -> Figure {
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let payload: Arc<[u8]> = ispvm_agent::probe::icmp::payload(payload).into();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for &ip in targets {
        for _ in 0..lanes.max(1) {
            let (pinger, sent, received, payload) = (
                pinger.clone(),
                sent.clone(),
                received.clone(),
                payload.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut session = pinger.session();
                while tokio::time::Instant::now() < deadline {
                    let outcome = pinger.echo(ip, &mut session, timeout, &payload).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if matches!(outcome, Ok(EchoOutcome::Reply { .. })) {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    Figure {
        sent: sent.load(Ordering::Relaxed),
        received: received.load(Ordering::Relaxed),
        took: started.elapsed(),
    }
}

/// Sum of fping's `xmt/rcv/%loss = X/Y/Z%` summaries.
fn fping_counts(summary: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for line in summary.lines() {
        let Some((_, stats)) = line.split_once("xmt/rcv/%loss = ") else {
            continue;
        };
        let mut parts = stats.split('/');
        let xmt = parts.next().and_then(|x| x.trim().parse::<u64>().ok());
        let rcv = parts.next().and_then(|x| x.trim().parse::<u64>().ok());
        if let (Some(x), Some(r)) = (xmt, rcv) {
            totals.0 += x;
            totals.1 += r;
        }
    }
    totals
}

/// fping with `per_target` echoes to every target, split into runs that fit its
/// sequence space; the runs are timed together.
fn fping_run(args: &Args, targets: &[IpAddr], per_target: u64) -> Result<Figure, String> {
    let max_per_run = (65_535 / targets.len().max(1) as u64).max(1);
    let mut left = per_target;
    let mut figure = Figure {
        sent: 0,
        received: 0,
        took: Duration::ZERO,
    };
    while left > 0 {
        let count = left.min(max_per_run);
        left -= count;
        let started = Instant::now();
        let out = Command::new(&args.fping)
            .args(["-c", &count.to_string(), "-q"])
            .args(args.fping_args.split_whitespace())
            .args(targets.iter().map(ToString::to_string))
            .output()
            .map_err(|e| format!("{}: {e}", args.fping))?;
        figure.took += started.elapsed();
        // fping exits 1 when some target lost an echo; the counts say how many.
        let (x, r) = fping_counts(&String::from_utf8_lossy(&out.stderr));
        if x == 0 {
            return Err(format!(
                "fping reported nothing: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        figure.sent += x;
        figure.received += r;
    }
    Ok(figure)
}

fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .map(|l| l.trim_start_matches("Cpus_allowed_list:").trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mode = match args.mode.as_str() {
        "auto" => IcmpSocketMode::Auto,
        "raw" => IcmpSocketMode::Raw,
        "dgram" => IcmpSocketMode::Dgram,
        other => {
            eprintln!("unknown --mode {other}: auto, raw or dgram");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let targets = targets(args.targets);
    let pinger = Arc::new(IcmpPinger::new(mode));
    let opened = runtime.block_on(async { pinger.open(Family::V4) });
    let kind = match opened {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "ICMP echoes/s, {} loopback targets, CPUs allowed: {}, agent socket: {}",
        targets.len(),
        cpus_allowed(),
        kind.as_str()
    );
    // Warm-up: opens everything, fills caches, lets ARP-free loopback settle.
    let timeout = Duration::from_millis(args.timeout_ms);
    runtime.block_on(agent_run(
        pinger.clone(),
        &targets,
        args.lanes,
        Duration::from_millis(500),
        timeout,
        args.payload,
    ));
    let agent = runtime.block_on(agent_run(
        pinger.clone(),
        &targets,
        args.lanes,
        Duration::from_secs(args.duration_s.max(1)),
        timeout,
        args.payload,
    ));
    drop(runtime);

    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>10}",
        "tool", "sent", "answered", "seconds", "echoes/s"
    );
    let row = |name: &str, f: &Figure| {
        println!(
            "{:<34} {:>10} {:>10} {:>8.2} {:>10.0}",
            name,
            f.sent,
            f.received,
            f.took.as_secs_f64(),
            f.rate()
        );
    };
    row(
        &format!("ispvm-agent ({}, 1 thread)", kind.as_str()),
        &agent,
    );
    if args.no_fping {
        return ExitCode::SUCCESS;
    }
    let per_target = agent.sent.div_ceil(targets.len() as u64).max(1);
    match fping_run(&args, &targets, per_target) {
        Ok(fping) => {
            row(&format!("fping {}", args.fping_args), &fping);
            println!(
                "ratio agent / fping: {:.2}",
                agent.rate() / fping.rate().max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fping: {e}");
            ExitCode::FAILURE
        }
    }
}
