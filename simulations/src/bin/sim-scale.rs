//! Scale benchmark: how many simulated routers one process holds, and at what memory.
//!
//! `cargo run --release -p ispvm-sim --bin sim-scale -- --routers 1000 [--sample 50]`
//!
//! Builds [`Topology::generated`] of N routers, starts them all (API and API-SSL
//! listeners), logs in to a sample over TCP and reads their identity to prove they
//! answer, and prints resident memory (VmRSS) before and after, per router, and the
//! startup time.

use ispvm_proto::routeros::{
    Command, FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence,
};
use ispvm_sim::{RunningRouter, Topology, VirtualIsp};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Resident memory of this process in KiB, from `/proc/self/status` (Linux).
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

/// Logs in and reads the identity; returns it.
async fn probe(router: &RunningRouter) -> Result<String, String> {
    let mut stream = TcpStream::connect(router.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut call = async |command: Command| -> Result<Vec<Reply>, String> {
        let mut wire = Vec::new();
        encode_sentence(&command.to_sentence(), &mut wire);
        stream.write_all(&wire).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        loop {
            match decode_sentence(&buf, &FrameLimits::default()).map_err(|e| e.to_string())? {
                Some((sentence, used)) => {
                    buf.drain(..used);
                    let reply = Reply::from_sentence(&sentence).map_err(|e| e.to_string())?;
                    let done = reply.kind.is_final();
                    out.push(reply);
                    if done {
                        return Ok(out);
                    }
                }
                None => {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("closed".into());
                    }
                    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
            }
        }
    };
    let login = call(
        Command::new("/login")
            .with_attr("name", &router.credentials.username)
            .with_attr("password", &router.credentials.password),
    )
    .await?;
    if login.first().map(|r| r.kind) != Some(ReplyKind::Done) {
        return Err(format!("login refused: {login:?}"));
    }
    let id = call(Command::new("/system/identity/print")).await?;
    id.first()
        .and_then(|r| r.get("name"))
        .map(str::to_owned)
        .ok_or_else(|| "no identity".to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (routers, sample) = match (arg(&args, "--routers", 1000), arg(&args, "--sample", 50)) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}\nusage: sim-scale [--routers N] [--sample K]");
            return ExitCode::FAILURE;
        }
    };
    let rss_before = vm_rss_kib().unwrap_or(0);
    let started = Instant::now();
    let topology = Topology::generated(routers);
    let links = topology.links.len();
    let isp = match VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST)).await {
        Ok(isp) => isp,
        Err(e) => {
            eprintln!("start failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let startup = started.elapsed();
    // Let the listener tasks settle before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after = vm_rss_kib().unwrap_or(0);

    let step = (isp.routers().len() / sample.max(1)).max(1);
    let probe_start = Instant::now();
    let mut answered = 0usize;
    let mut failed = 0usize;
    for r in isp.routers().iter().step_by(step) {
        match probe(r).await {
            Ok(identity) if identity == r.spec.identity => answered += 1,
            Ok(other) => {
                eprintln!("{}: identity {other:?}", r.spec.id);
                failed += 1;
            }
            Err(e) => {
                eprintln!("{}: {e}", r.spec.id);
                failed += 1;
            }
        }
    }
    let probe_time = probe_start.elapsed();
    let rss_end = vm_rss_kib().unwrap_or(0);
    let grown = rss_after.saturating_sub(rss_before);
    println!("routers:            {}", isp.routers().len());
    println!("links:              {links}");
    println!("startup:            {:.2} s", startup.as_secs_f64());
    println!("RSS before:         {:.1} MiB", rss_before as f64 / 1024.0);
    println!("RSS after start:    {:.1} MiB", rss_after as f64 / 1024.0);
    println!("RSS after probes:   {:.1} MiB", rss_end as f64 / 1024.0);
    println!(
        "per router:         {:.1} KiB",
        grown as f64 / isp.routers().len().max(1) as f64
    );
    println!(
        "probed:             {answered} answered, {failed} failed, {:.1} ms per login+print",
        probe_time.as_secs_f64() * 1000.0 / (answered + failed).max(1) as f64
    );
    isp.shutdown().await;
    if failed == 0 && answered > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
