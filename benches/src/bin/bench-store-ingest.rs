//! Benchmark: sustained samples per second into PostgreSQL through the store's ingest
//! path (`TenantStore::ingest_with`, the call the ingest front door makes: one
//! transaction per batch, series ids from the shared cache, samples by binary `COPY` into
//! a staging table and `INSERT … ON CONFLICT DO NOTHING` into the daily partition).
//!
//! W writers, each an "agent" owning a disjoint slice of the series, send batches of B
//! samples as fast as the store takes them. Every series gets one sample per round, with
//! timestamps 10 s apart, as routers polled every 10 s would. A first round creates every
//! series (and is reported apart); the figure is the steady state after it.
//!
//! Machines differ, so the same run then measures the machine's limit: the same writers
//! send the same rows by plain binary `COPY` into a bare table (no index, no partition,
//! no series lookup) of the same database for the same time, and the bench prints the
//! ratio of the two rates. The ratio is what `docs/benchmarks.md` tracks.
//!
//! Uses a fresh database (dropped at the end) on the server of `ISPVM_TEST_PG_URL`
//! (default `postgres://ispvm:ispvm@127.0.0.1:5432/ispvm_test`; the role needs CREATEDB).
//!
//! `cargo run --release -p ispvm-benches --bin bench-store-ingest -- --writers 2 --batch 10000 --series 100000 --seconds 30`

use ispvm_proto::{Batch, EntityKey, MetricName, MetricSample};
use ispvm_server::store::{IngestCache, Store, TimeseriesPolicy};
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// Series `s`: interface `ether{k/2}` of device `dev{s/100}`, rx for even k, tx for odd.
fn series_key(s: u64) -> (EntityKey, MetricName) {
    let k = s % 100;
    let entity = EntityKey::Interface {
        device: format!("dev{}", s / 100),
        name: format!("ether{}", k / 2),
    };
    let metric = if k.is_multiple_of(2) {
        MetricName::InterfaceRxBps
    } else {
        MetricName::InterfaceTxBps
    };
    (entity, metric)
}

struct Writer {
    agent: String,
    series: Vec<(EntityKey, MetricName)>,
    next: usize,
    round: i64,
    seq: u64,
    start_ms: i64,
}

impl Writer {
    fn batch(&mut self, size: usize) -> Batch {
        self.seq += 1;
        let mut b = Batch::new(self.agent.clone(), "bench", self.seq);
        b.samples.reserve(size);
        for _ in 0..size {
            let (entity, metric) = &self.series[self.next];
            b.samples.push(MetricSample {
                entity: entity.clone(),
                metric: *metric,
                ts_ms: self.start_ms + self.round * 10_000,
                value: (self.round * 1_000 + self.next as i64) as f64 * 1.5,
            });
            self.next += 1;
            if self.next == self.series.len() {
                self.next = 0;
                self.round += 1;
            }
        }
        b
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// CPU seconds of this process and of the database's server processes (backends of
/// this database; their pids come from pg_stat_activity).
async fn cpu_now(store: &Store, db: &str) -> anyhow::Result<(f64, f64)> {
    let pids: Vec<i32> = match store {
        Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(db)
                .fetch_all(pool)
                .await?
        }
        Store::Sqlite(_) => Vec::new(),
    };
    let pg = pids
        .into_iter()
        .filter_map(|p| u32::try_from(p).ok())
        .map(cpu_seconds)
        .sum();
    Ok((cpu_seconds(std::process::id()), pg))
}

/// Rows per second `writers` connections reach by binary `COPY` of batches of `batch`
/// (series id, time, value) rows into a bare table, each batch its own transaction as a
/// stored batch is, for `seconds`.
async fn copy_baseline(
    url: &str,
    writers: usize,
    batch: usize,
    series: u64,
    seconds: u64,
) -> anyhow::Result<f64> {
    let mut setup = sqlx::PgConnection::connect(url).await?;
    sqlx::query(
        "CREATE TABLE copy_baseline (series_id BIGINT NOT NULL, ts_ms BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL)",
    )
    .execute(&mut setup)
    .await?;
    let copied = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers as u64 {
        let url = url.to_owned();
        let copied = copied.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            let mut round = 0i64;
            let mut next = w;
            while Instant::now() < deadline {
                let rows: Vec<(i64, i64, f64)> = (0..batch)
                    .map(|i| {
                        let id = i64::try_from(next).unwrap_or(0);
                        next += writers as u64;
                        if next >= series {
                            next = w;
                            round += 1;
                        }
                        (id, round * 10_000, i as f64)
                    })
                    .collect();
                let mut copy = conn
                    .copy_in_raw(
                        "COPY copy_baseline (series_id, ts_ms, value) FROM STDIN (FORMAT binary)",
                    )
                    .await?;
                copy.send(ispvm_server::store::copy_binary(&rows)).await?;
                copied.fetch_add(copy.finish().await?, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(copied.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
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
    let writers = arg("--writers", 4) as usize;
    let batch = arg("--batch", 10_000) as usize;
    let series = arg("--series", 100_000);
    let seconds = arg("--seconds", 30);
    let keep = flag("--keep");

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
    let store = Store::connect(&format!("{base}/{name}")).await?;
    store.ensure_tenant("bench", "Bench").await?;
    let server_version: String = match &store {
        Store::Postgres(pool) => {
            sqlx::query_scalar("SHOW server_version")
                .fetch_one(pool)
                .await?
        }
        Store::Sqlite(_) => "sqlite".into(),
    };
    let sync_commit: String = match &store {
        Store::Postgres(pool) => {
            sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(pool)
                .await?
        }
        Store::Sqlite(_) => "-".into(),
    };
    println!(
        "PostgreSQL {server_version} (synchronous_commit={sync_commit}), database {name}: \
         {writers} writers, batches of {batch}, {series} series, {seconds} s"
    );

    let policy = TimeseriesPolicy::default();
    let cache = Arc::new(IngestCache::default());
    let now = ispvm_proto::time::now_ms();
    // Timestamps start at the present and advance 10 s per round: never late (which
    // would mark hours for re-rollup), never beyond the accepted future.
    let start_ms = now;
    let mut all: Vec<Writer> = (0..writers)
        .map(|w| Writer {
            agent: format!("agent-{w}"),
            series: (0..series)
                .filter(|s| (*s as usize) % writers == w)
                .map(series_key)
                .collect(),
            next: 0,
            round: 0,
            seq: 0,
            start_ms,
        })
        .collect();

    // First round: creates every series.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut w in all.drain(..) {
        let store = store.clone();
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            while w.round == 0 {
                let n = batch.min(w.series.len() - w.next);
                let b = w.batch(n.max(1));
                store
                    .tenant("bench")
                    .ingest_with(&b, ispvm_proto::time::now_ms(), &policy, Some(&cache))
                    .await?;
            }
            Ok::<Writer, anyhow::Error>(w)
        }));
    }
    for t in tasks {
        all.push(t.await??);
    }
    let first = started.elapsed();
    println!(
        "first round (creates {series} series): {:.2} s, {:.0} samples/s",
        first.as_secs_f64(),
        series as f64 / first.as_secs_f64()
    );

    // Steady state.
    let (own_before, pg_before) = cpu_now(&store, &name).await?;
    let stored = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut w in all {
        let store = store.clone();
        let cache = cache.clone();
        let stored = stored.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let b = w.batch(batch);
                let t = Instant::now();
                let out = store
                    .tenant("bench")
                    .ingest_with(&b, ispvm_proto::time::now_ms(), &policy, Some(&cache))
                    .await?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                stored.fetch_add(u64::from(out.samples_stored), Ordering::Relaxed);
            }
            Ok::<Vec<f64>, anyhow::Error>(latencies)
        }));
    }
    let progress = {
        let stored = stored.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = stored.load(Ordering::Relaxed);
                println!(
                    "  {:>6.1} s: {:.0} samples/s",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64 / 5.0
                );
                last = now;
            }
        })
    };
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let (own_after, pg_after) = cpu_now(&store, &name).await?;
    let total = stored.load(Ordering::Relaxed);
    latencies.sort_by(f64::total_cmp);
    println!(
        "steady state: {total} samples stored in {elapsed:.1} s = {:.0} samples/s",
        total as f64 / elapsed
    );
    println!(
        "batch transaction ({} batches): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    let millions = total as f64 / 1e6;
    println!(
        "CPU per million samples: PostgreSQL backends {:.2} s, this process {:.2} s \
         (machine load average at the end: {})",
        (pg_after - pg_before) / millions,
        (own_after - own_before) / millions,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let counted = store.tenant("bench").counts().await?.samples;
    println!("rows in samples: {counted}");
    let store_rate = total as f64 / elapsed;

    // The machine's limit: the same rows by plain COPY into a bare table.
    let db_url = format!("{base}/{name}");
    let copied = copy_baseline(&db_url, writers, batch, series, seconds).await?;
    println!(
        "plain binary COPY into a bare table, {writers} writers, batches of {batch}: {:.0} rows/s",
        copied
    );
    println!(
        "ratio store / plain COPY: {:.2}",
        if copied > 0.0 {
            store_rate / copied
        } else {
            0.0
        }
    );

    store.close().await;
    if keep {
        println!("kept database {name}");
    } else {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}
