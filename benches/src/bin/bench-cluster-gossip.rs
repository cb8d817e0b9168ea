//! Cluster-scale gossip: 100 and 1,000 agents' chitchat nodes in one process (issue 6).
//!
//! Every node runs the project's own gossip settings (`GossipConfig::chitchat_config`:
//! cluster id, phi 8 failure detector, sampling window) and publishes the keys a real
//! agent publishes (tenant, site, version, caps, cert_expiry_s, health, load), over
//! chitchat's in-memory `ChannelTransport`, which serializes and deserializes every
//! message, enforces the 65,507-byte UDP limit and counts bytes and messages.
//!
//! Time is **virtual**: a current-thread tokio runtime with a paused clock that jumps
//! ahead only when every task is idle. The figures are the protocol's (how many gossip
//! rounds a change or a death takes to reach everyone) with zero network latency and no
//! loss other than chitchat's own (full per-node queues of 100 messages drop), not how
//! fast one machine can play 1,000 agents; chitchat reads `tokio::time::Instant`
//! everywhere, its failure detector included. The wall-clock run time and the CPU
//! microseconds per node per virtual second (wall time ÷ (virtual seconds × nodes),
//! serialization of every message included) are printed beside them.
//!
//! For each cluster size:
//! 1. join: nodes start at random phases within one gossip interval, seeded by the
//!    first three; time until every node counts every node live;
//! 2. key propagation: `--changes` times a random node sets `bench:change`; time until
//!    each other node's listener sees the value (p50, p99, max over all pairs);
//! 3. traffic: bytes and messages sent per node per second over a steady window;
//! 4. failure detection: one random non-seed node is aborted (its task and socket go
//!    away, so it sends nothing and receives nothing); time until each other node's
//!    `live_nodes()` excludes it.
//!
//! `cargo run --release -p ispvm-sim --bin bench-cluster-gossip -- [--nodes 100,1000]
//! [--interval-ms 100] [--changes 5] [--seed 1] [--window-s 5]`

use chitchat::transport::ChannelTransport;
use chitchat::{ChitchatHandle, ChitchatId, NodeState, Serializable, spawn_chitchat};
use ispvm_cluster::gossip::GossipConfig;
use ispvm_cluster::node_state::{self, Health, Load, LocalInfo};
use ispvm_cluster::ownership::{Capabilities, Capability};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::{Instant, sleep, sleep_until};

/// chitchat's limit on one message (a UDP datagram's payload).
const MTU: usize = 65_507;
const TENANT: &str = "acme";
const CHANGE_KEY: &str = "bench:change";
const JOIN_TIMEOUT: Duration = Duration::from_secs(300);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
const DETECT_TIMEOUT: Duration = Duration::from_secs(120);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When each observer first saw each change: change number → per node.
type Seen = Arc<Mutex<HashMap<u64, Vec<Option<Instant>>>>>;

struct Node {
    id: ChitchatId,
    handle: ChitchatHandle,
}

#[derive(Default)]
struct Spread {
    sorted: Vec<Duration>,
    missing: usize,
}

impl Spread {
    fn new(mut v: Vec<Duration>, missing: usize) -> Self {
        v.sort();
        Spread { sorted: v, missing }
    }

    fn pct(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let i = ((q * self.sorted.len() as f64).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[i - 1]
    }

    fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    fn show(&self) -> String {
        let mut s = format!(
            "p50 {:.3} s   p99 {:.3} s   max {:.3} s   ({} samples)",
            self.pct(0.50).as_secs_f64(),
            self.pct(0.99).as_secs_f64(),
            self.max().as_secs_f64(),
            self.sorted.len()
        );
        if self.missing > 0 {
            s.push_str(&format!("   {} NEVER SAW IT (timed out)", self.missing));
        }
        s
    }
}

struct Report {
    nodes: usize,
    join: Option<Duration>,
    propagation: Spread,
    detection: Spread,
    bytes_per_node_s: f64,
    msgs_per_node_s: f64,
    syn_bytes: usize,
    virtual_s: f64,
    wall_s: f64,
    peak_rss_mb: Option<u64>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20_000 + i as u16)
}

/// The key values a PoP agent publishes when it starts, plus its load.
fn agent_key_values(site: &str, i: usize) -> Vec<(String, String)> {
    let mut state = NodeState::for_test();
    let info = LocalInfo {
        tenant: TENANT.to_owned(),
        site: site.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        capabilities: Capabilities::of(&Capability::ALL),
        cert_expiry_s: 1_830_000_000 + i as i64,
    };
    node_state::publish_local(&mut state, &info).expect("agent keys within bounds");
    node_state::publish_health(&mut state, &Health::Ok).expect("health within bounds");
    node_state::publish_load(
        &mut state,
        &Load {
            routers: 40 + (i % 20) as u32,
            probes: 200,
            buffer_bytes: 0,
        },
    );
    state
        .key_values()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn live_counts(nodes: &[Node], skip: Option<usize>) -> Vec<usize> {
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        if Some(i) == skip {
            out.push(0);
            continue;
        }
        out.push(n.handle.with_chitchat(|c| c.live_nodes().count()).await);
    }
    out
}

async fn run(n: usize, interval: Duration, changes: u64, window: Duration, seed: u64) -> Report {
    let wall = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(seed ^ n as u64);
    let transport = ChannelTransport::with_mtu(MTU);
    let seeds: Vec<String> = (0..n.min(3)).map(|i| addr(i).to_string()).collect();
    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));

    // Random phases within one gossip interval, as independent agents would have.
    let interval_ms = interval.as_millis().max(1) as u64;
    let mut order: Vec<(u64, usize)> = (0..n)
        .map(|i| (rng.random_range(0..interval_ms), i))
        .collect();
    order.sort();
    let t0 = Instant::now();
    let mut slots: Vec<Option<Node>> = (0..n).map(|_| None).collect();
    for (phase_ms, i) in order {
        sleep_until(t0 + Duration::from_millis(phase_ms)).await;
        let mut config = GossipConfig::new(
            &format!("n{i:04}"),
            TENANT,
            &format!("pop-{}", i % 50),
            addr(i),
        );
        config.gossip_interval = interval;
        config.seeds = seeds.clone();
        let cc = config.chitchat_config(1);
        let id = cc.chitchat_id.clone();
        let handle = spawn_chitchat(cc, agent_key_values(&config.site, i), &transport)
            .await
            .expect("in-memory socket opens");
        let seen_by_me = seen.clone();
        handle
            .with_chitchat(|c| {
                let seen_by_me = seen_by_me.clone();
                c.subscribe_event(CHANGE_KEY, move |evt| {
                    let Ok(change) = evt.value.parse::<u64>() else {
                        return;
                    };
                    let now = Instant::now();
                    let mut seen = lock(&seen_by_me);
                    let row = seen.entry(change).or_insert_with(|| vec![None; n]);
                    if row[i].is_none() {
                        row[i] = Some(now);
                    }
                })
                .forever();
            })
            .await;
        slots[i] = Some(Node { id, handle });
    }
    let nodes: Vec<Node> = slots.into_iter().flatten().collect();
    let progress = |what: &str| {
        eprintln!(
            "  [{n} nodes] {what} ({:.1} virtual s, {:.0} s wall)",
            t0.elapsed().as_secs_f64(),
            wall.elapsed().as_secs_f64()
        );
    };

    // The Syn message every gossip round starts with: the digest of every node.
    let syn_bytes = 1
        + format!("ispvm-{TENANT}").serialized_len()
        + 2
        + nodes
            .iter()
            .map(|nd| nd.id.serialized_len() + 3 * 8)
            .sum::<usize>();

    // 1. Join.
    let join = loop {
        let counts = live_counts(&nodes, None).await;
        if counts.iter().all(|&c| c == n) {
            break Some(t0.elapsed());
        }
        if t0.elapsed() > JOIN_TIMEOUT {
            let min = counts.iter().min().copied().unwrap_or(0);
            eprintln!("  join timed out: the worst node sees {min} of {n} live");
            break None;
        }
        sleep(Duration::from_millis(100)).await;
    };
    progress("joined");
    // Let the failure detectors collect a few samples of steady state.
    sleep(interval * 10).await;

    // 2. Key propagation.
    let mut prop = Vec::new();
    let mut prop_missing = 0;
    for change in 1..=changes {
        let writer = rng.random_range(0..n);
        // Not aligned with anyone's gossip rounds.
        sleep(Duration::from_millis(rng.random_range(0..interval_ms))).await;
        let t_set = Instant::now();
        nodes[writer]
            .handle
            .with_chitchat(|c| c.self_node_state().set(CHANGE_KEY, change))
            .await;
        loop {
            let done = lock(&seen).get(&change).map_or(0, |row| {
                row.iter()
                    .enumerate()
                    .filter(|(j, t)| *j != writer && t.is_some())
                    .count()
            });
            if done == n - 1 || t_set.elapsed() > CHANGE_TIMEOUT {
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
        let seen = lock(&seen);
        let row = seen.get(&change);
        for j in (0..n).filter(|&j| j != writer) {
            match row.and_then(|r| r[j]) {
                Some(t) => prop.push(t.duration_since(t_set)),
                None => prop_missing += 1,
            }
        }
    }

    progress("changes propagated");
    // 3. Traffic in steady state.
    sleep(interval * 5).await;
    let before = transport.statistics();
    sleep(window).await;
    let after = transport.statistics();
    let per = n as f64 * window.as_secs_f64();
    let bytes_per_node_s = (after.num_bytes_total - before.num_bytes_total) as f64 / per;
    let msgs_per_node_s = (after.num_messages_total - before.num_messages_total) as f64 / per;

    progress("traffic measured");
    // 4. Failure detection of one aborted non-seed node.
    let victim = if n > 3 { rng.random_range(3..n) } else { n - 1 };
    let victim_id = nodes[victim].id.clone();
    let t_kill = Instant::now();
    nodes[victim].handle.abort();
    let mut detected: Vec<Option<Duration>> = vec![None; n];
    loop {
        for (j, nd) in nodes.iter().enumerate() {
            if j == victim || detected[j].is_some() {
                continue;
            }
            let alive = nd
                .handle
                .with_chitchat(|c| c.live_nodes().any(|id| *id == victim_id))
                .await;
            if !alive {
                detected[j] = Some(t_kill.elapsed());
            }
        }
        let pending = (0..n)
            .filter(|&j| j != victim && detected[j].is_none())
            .count();
        if pending == 0 || t_kill.elapsed() > DETECT_TIMEOUT {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    let det_missing = (0..n)
        .filter(|&j| j != victim && detected[j].is_none())
        .count();
    let detection = Spread::new(detected.into_iter().flatten().collect(), det_missing);

    let virtual_s = t0.elapsed().as_secs_f64();
    for nd in &nodes {
        nd.handle.abort();
    }
    Report {
        nodes: n,
        join,
        propagation: Spread::new(prop, prop_missing),
        detection,
        bytes_per_node_s,
        msgs_per_node_s,
        syn_bytes,
        virtual_s,
        wall_s: wall.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    }
}

/// Peak resident memory of this process so far (Linux).
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn print(r: &Report, interval: Duration, changes: u64, window: Duration) {
    let ms = interval.as_millis();
    println!();
    println!(
        "== {} nodes, gossip every {ms} ms (virtual time, zero network latency) ==",
        r.nodes
    );
    println!(
        "  join (every node sees {} live)      {}",
        r.nodes,
        r.join.map_or("TIMED OUT".to_owned(), |d| format!(
            "{:.3} s",
            d.as_secs_f64()
        ))
    );
    println!(
        "  key change seen ({changes} changes)        {}",
        r.propagation.show()
    );
    println!(
        "  dead node detected (1 aborted)     {}",
        r.detection.show()
    );
    println!(
        "  traffic sent per node ({} s window) {:.0} B/s ({:.2} MB/s), {:.1} messages/s",
        window.as_secs(),
        r.bytes_per_node_s,
        r.bytes_per_node_s / 1e6,
        r.msgs_per_node_s
    );
    println!(
        "  Syn message (full digest)          {} B of the {MTU} B limit ({:.0} %)",
        r.syn_bytes,
        100.0 * r.syn_bytes as f64 / MTU as f64
    );
    println!(
        "  run                                {:.1} virtual s in {:.1} s wall; {:.0} CPU µs per node per virtual s; peak RSS {}",
        r.virtual_s,
        r.wall_s,
        r.wall_s * 1e6 / (r.virtual_s * r.nodes as f64),
        r.peak_rss_mb
            .map_or("?".to_owned(), |m| format!("{m} MB (process)"))
    );
}

fn main() {
    let sizes: Vec<usize> = arg("--nodes")
        .unwrap_or_else(|| "100,1000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n >= 2)
        .collect();
    let interval = Duration::from_millis(num("--interval-ms", 100).max(1));
    let changes = num("--changes", 5).max(1);
    let seed = num("--seed", 1);
    let window = Duration::from_secs(num("--window-s", 5).max(1));
    println!(
        "bench-cluster-gossip: chitchat 0.11.1 over ChannelTransport (MTU {MTU} B), \
         nodes {sizes:?}, interval {} ms, {changes} changes, seed {seed}",
        interval.as_millis()
    );
    println!(
        "Times are virtual (tokio paused clock): gossip rounds with zero network latency, \
         not this machine's speed; the wall time and CPU per node are printed for that."
    );
    let mut summary = Vec::new();
    for &n in &sizes {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        let report = rt.block_on(run(n, interval, changes, window, seed));
        drop(rt);
        print(&report, interval, changes, window);
        let p99 = report.propagation.pct(0.99);
        summary.push(format!(
            "{n} nodes: change p99 {:.2} s ({}), detection p99 {:.2} s, {:.0} kB/s/node",
            p99.as_secs_f64(),
            if report.propagation.missing > 0 {
                "some never saw it"
            } else if p99 < Duration::from_secs(2) {
                "under the 2 s aim"
            } else {
                "OVER the 2 s aim"
            },
            report.detection.pct(0.99).as_secs_f64(),
            report.bytes_per_node_s / 1e3
        ));
    }
    println!();
    println!(
        "summary ({} ms interval, virtual time): {}",
        interval.as_millis(),
        summary.join("; ")
    );
}
