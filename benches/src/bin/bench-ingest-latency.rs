//! Benchmark: ingest acknowledgement latency at a steady offered load, over the real
//! ingest path.
//!
//! A whole server (`app::start_with`: QUIC ingest with mutual TLS, the store on
//! PostgreSQL, the actor tree, the time-series maintenance task) and N agents in one
//! process. Each agent holds a `QuicUplink` (the agent's own client, with a certificate
//! of a freshly made deployment CA) and sends a batch every `batch / (rate / agents)`
//! seconds on a fixed schedule, as agents flushing their collectors do. Latency is from
//! the moment a batch was *due* to the moment its acknowledgement arrived, so a server
//! falling behind shows as latency instead of as a slower sender (no coordinated
//! omission). Every series gets one sample per `--interval-s`, as routers polled at that
//! interval would. Before the schedule starts, each agent sends one round of all its
//! series as fast as it is acknowledged (creating the series, a one-time cost reported
//! apart); the first 5 s of the schedule are left out too.
//!
//! Uses a fresh database (dropped at the end) on the server of `ISPVM_TEST_PG_URL`
//! (default `postgres://ispvm:ispvm@127.0.0.1:5432/ispvm_test`; the role needs CREATEDB).
//!
//! `cargo run --release -p ispvm-server --bin bench-ingest-latency -- --rate 50000 --agents 20 --batch 1000 --seconds 60`

use ispvm_agent::uplink::QuicUplink;
use ispvm_proto::{AckStatus, Batch, EntityKey, MetricName, MetricSample};
use ispvm_server::app::start_with;
use ispvm_server::config::{HttpConfig, HttpsIngestConfig, QuicConfig, ServerConfig};
use ispvm_server::pki::{CertKind, Pki};
use ispvm_server::store::Store;
use ispvm_transport::TlsMaterial;
use sqlx::Connection;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Series `s` of an agent: interface `ether{k/2}` of device `a{agent}-d{s/100}`, rx for
/// even k, tx for odd.
fn series_key(agent: u64, s: u64) -> (EntityKey, MetricName) {
    let k = s % 100;
    let entity = EntityKey::Interface {
        device: format!("a{agent}-d{}", s / 100),
        name: format!("ether{}", k / 2),
    };
    let metric = if k.is_multiple_of(2) {
        MetricName::InterfaceRxBps
    } else {
        MetricName::InterfaceTxBps
    };
    (entity, metric)
}

/// One acknowledged (or refused) batch.
struct Sample {
    due: Instant,
    latency_ms: f64,
    accepted: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=info shows the server's own log (maintenance runs among them).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let rate = arg("--rate", 50_000);
    let agents = arg("--agents", 20).max(1);
    let batch = arg("--batch", 1_000).max(1);
    let seconds = arg("--seconds", 60);
    let interval_s = arg("--interval-s", 10).max(1);
    let maintenance_s = arg("--maintenance-s", 60);

    // The deployment: a CA, the server's certificate, one per agent.
    let dir = std::env::temp_dir().join(format!("ispvm-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let pki = Pki::new(dir.join("pki"));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    pki.init("bench CA", 30)?;
    pki.issue(
        CertKind::Server,
        "server",
        None,
        &["localhost".into()],
        &[local],
        30,
    )?;
    for a in 0..agents {
        pki.issue(
            CertKind::Agent,
            &format!("agent-{a}"),
            Some("bench"),
            &[],
            &[],
            30,
        )?;
    }

    // A fresh PostgreSQL database.
    let admin_url = std::env::var("ISPVM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://ispvm:ispvm@127.0.0.1:5432/ispvm_test".into());
    let name = format!("ispvm_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .ok_or_else(|| anyhow::anyhow!("the URL names no database"))?;
    let url = format!("{base}/{name}");
    let store = Store::connect(&url).await?;
    store.ensure_tenant("bench", "Bench").await?;

    let mut config = ServerConfig {
        data_dir: dir.clone(),
        database_url: Some(url),
        http: HttpConfig {
            listen: SocketAddr::new(local, 0),
            ..Default::default()
        },
        quic: QuicConfig {
            listen: SocketAddr::new(local, 0),
            ..Default::default()
        },
        https: HttpsIngestConfig { listen: None },
        ..ServerConfig::default()
    };
    config.timeseries.maintenance_interval_s = maintenance_s;
    let tls = TlsMaterial::load_from_pki_dir(pki.dir(), "server")?;
    let server = start_with(&config, store.clone(), tls).await?;
    let addr = server.quic_addr;

    let per_agent_rate = rate as f64 / agents as f64;
    let every = Duration::from_secs_f64(batch as f64 / per_agent_rate);
    let series_per_agent = (per_agent_rate * interval_s as f64).ceil() as u64;
    let warmup = Duration::from_secs(5);
    println!(
        "offered {rate} samples/s: {agents} agents × a batch of {batch} every {:.0} ms; \
         {} series (one sample each per {interval_s} s); {seconds} s measured after {} s warm-up; \
         maintenance every {maintenance_s} s",
        every.as_secs_f64() * 1e3,
        series_per_agent * agents,
        warmup.as_secs()
    );

    let mut uplinks = Vec::new();
    let mut all_series = Vec::new();
    for a in 0..agents {
        let material = TlsMaterial::load(
            &pki.ca_cert_path(),
            &pki.paths(&format!("agent-{a}")).cert,
            &pki.paths(&format!("agent-{a}")).key,
        )?;
        let uplink = QuicUplink::new(
            addr,
            "localhost".into(),
            &material,
            Duration::from_secs(5),
            Duration::from_secs(30),
        )?;
        let series: Vec<(EntityKey, MetricName)> =
            (0..series_per_agent).map(|s| series_key(a, s)).collect();
        uplinks.push(uplink);
        all_series.push(series);
    }

    // Round zero: every series once, as fast as acknowledged.
    let created = Instant::now();
    let mut tasks = Vec::new();
    for (a, (mut uplink, series)) in uplinks.into_iter().zip(all_series).enumerate() {
        tasks.push(tokio::spawn(async move {
            let now_ms = ispvm_proto::time::now_ms() - 10_000;
            for (n, chunk) in series.chunks(batch as usize).enumerate() {
                let mut b = Batch::new(format!("agent-{a}"), "bench", n as u64 + 1);
                b.samples = chunk
                    .iter()
                    .map(|(entity, metric)| MetricSample {
                        entity: entity.clone(),
                        metric: *metric,
                        ts_ms: now_ms,
                        value: 0.0,
                    })
                    .collect();
                uplink.send(&b).await?;
            }
            Ok::<_, anyhow::Error>((uplink, series))
        }));
    }
    let mut ready = Vec::new();
    for t in tasks {
        ready.push(t.await??);
    }
    println!(
        "round zero (creates the series): {:.1} s",
        created.elapsed().as_secs_f64()
    );

    let start = Instant::now() + Duration::from_millis(500);
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (a, (mut uplink, series)) in ready.into_iter().enumerate() {
        let a = a as u64;
        let first_seq = series.len().div_ceil(batch as usize) as u64;
        tasks.push(tokio::spawn(async move {
            let phase = every.mul_f64(a as f64 / agents as f64);
            let mut due = start + phase;
            let mut seq = first_seq;
            let mut next = 0usize;
            let mut out = Vec::new();
            let mut errors = 0u64;
            while due < end {
                tokio::time::sleep_until(due).await;
                seq += 1;
                let mut b = Batch::new(format!("agent-{a}"), "bench", seq);
                let now_ms = ispvm_proto::time::now_ms();
                for _ in 0..batch {
                    let (entity, metric) = &series[next];
                    b.samples.push(MetricSample {
                        entity: entity.clone(),
                        metric: *metric,
                        ts_ms: now_ms,
                        value: (seq * 7 + next as u64) as f64,
                    });
                    next = (next + 1) % series.len();
                }
                match uplink.send(&b).await {
                    Ok(ack) => out.push(Sample {
                        due,
                        latency_ms: due.elapsed().as_secs_f64() * 1e3,
                        accepted: matches!(ack.status, AckStatus::Accepted { .. }),
                    }),
                    Err(e) => {
                        errors += 1;
                        eprintln!("agent-{a}: {e}");
                    }
                }
                due += every;
            }
            uplink.close().await;
            (out, errors)
        }));
    }

    let mut latencies = Vec::new();
    let (mut refused, mut errors, mut batches) = (0u64, 0u64, 0u64);
    for t in tasks {
        let (out, e) = t.await?;
        errors += e;
        for s in out.into_iter().filter(|s| s.due >= measure_from) {
            batches += 1;
            if s.accepted {
                latencies.push(s.latency_ms);
            } else {
                refused += 1;
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let measured = end.saturating_duration_since(measure_from).as_secs_f64();
    println!(
        "{batches} batches due in the measured {measured:.0} s ({:.0} samples/s acknowledged); \
         refused {refused}, failed {errors}",
        latencies.len() as f64 * batch as f64 / measured
    );
    println!(
        "acknowledgement latency: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    println!(
        "rows in samples: {} (machine load average: {})",
        store.tenant("bench").counts().await?.samples,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    if let Store::Postgres(pool) = &store {
        let (minutes, hours): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM samples_1m), (SELECT COUNT(*) FROM samples_1h)",
        )
        .fetch_one(pool)
        .await?;
        println!(
            "rollup rows written by the maintenance task: {minutes} minute, {hours} hour buckets"
        );
    }
    // The server's own view: time from a decoded batch to its stored outcome.
    let stored_hist: Vec<String> = server
        .metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("ispvm_server_ingest_duration_seconds"))
        .map(str::to_owned)
        .collect();
    println!(
        "server-side store time (histogram): {}",
        stored_hist.join("; ")
    );
    server.shutdown().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
