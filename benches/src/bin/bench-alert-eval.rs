//! How long one alert evaluation cycle takes for a large tenant.
//!
//! 10,000 routers (a device, four interfaces of which one uplink, two BGP peers and a
//! probe target each) with ten minutes of samples, and 50 rules: the starter pack plus
//! site-scoped variants of the threshold rules. One cycle evaluates every rule once
//! (the fast, medium and slow schedules back to back). Prints the time per cycle.
//!
//! `cargo run --release -p ispvm-sim --bin bench-alert-eval -- [--routers N] [--rules N]`

use ispvm_actors::alert::{
    Engine, EntityAttrs, EntityKind, EntityRef, Rule, Schedule, Scope, starter_pack,
};
use ispvm_proto::{EntityKey, MetricName, MetricSample};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rules(n: usize, sites: usize) -> Vec<Rule> {
    let mut out = starter_pack();
    let base: Vec<Rule> = out
        .iter()
        .filter(|r| !r.kind.is_boolean())
        .cloned()
        .collect();
    let mut i = 0;
    while out.len() < n {
        let mut r = base[i % base.len()].clone();
        r.id = format!("{}-site{}", r.id, i);
        r.scope = Scope {
            sites: vec![format!("pop-{}", i % sites)],
            ..Scope::default()
        };
        out.push(r);
        i += 1;
    }
    out.truncate(n);
    out
}

fn main() {
    let routers = arg("--routers", 10_000);
    let n_rules = arg("--rules", 50);
    let sites = 50;
    let mut engine = Engine::new();
    engine.set_rules(rules(n_rules, sites));
    let now = 1_700_000_000_000i64;
    let start = Instant::now();
    let mut samples = 0usize;
    for r in 0..routers {
        let dev = format!("r{r}");
        let site = format!("pop-{}", r % sites);
        engine.upsert_entity(
            EntityRef::device(dev.clone()),
            EntityAttrs {
                site: Some(site.clone()),
                role: Some(ispvm_proto::DeviceRole::Access),
                ..EntityAttrs::default()
            },
        );
        engine.upsert_entity(
            EntityRef::new(EntityKind::ProbeTarget, dev.clone()),
            EntityAttrs {
                device: Some(dev.clone()),
                site: Some(site),
                ..EntityAttrs::default()
            },
        );
        for i in 0..4 {
            engine.upsert_entity(
                EntityRef::new(EntityKind::Interface, format!("{dev}/ether{i}")),
                EntityAttrs {
                    uplink: i == 0,
                    capacity_bps: Some(1e9),
                    ..EntityAttrs::default()
                },
            );
        }
        // Ten minutes of samples: fast metrics every 30 s, counters every 60 s.
        for k in 0..20i64 {
            let ts = now - 600_000 + k * 30_000;
            let mut push = |entity: EntityKey, metric: MetricName, value: f64| {
                engine.observe(
                    &MetricSample {
                        entity,
                        metric,
                        ts_ms: ts,
                        value,
                    },
                    "agent-a",
                );
                samples += 1;
            };
            push(EntityKey::Device(dev.clone()), MetricName::DeviceUp, 1.0);
            push(
                EntityKey::ProbeTarget(dev.clone()),
                MetricName::PingLossPct,
                0.0,
            );
            push(
                EntityKey::ProbeTarget(dev.clone()),
                MetricName::PingRttMs,
                12.0,
            );
            push(
                EntityKey::ProbeTarget(dev.clone()),
                MetricName::PingJitterMs,
                1.0,
            );
            for i in 0..4 {
                let itf = || EntityKey::Interface {
                    device: dev.clone(),
                    name: format!("ether{i}"),
                };
                push(itf(), MetricName::InterfaceRunning, 1.0);
                if k % 2 == 0 {
                    push(itf(), MetricName::InterfaceRxBps, 3e8);
                    push(itf(), MetricName::InterfaceTxBps, 2e8);
                    push(itf(), MetricName::InterfaceErrors, 0.0);
                }
            }
            for p in 0..2 {
                let peer = EntityKey::Peer {
                    device: dev.clone(),
                    peer: format!("10.0.{p}.1"),
                };
                push(peer, MetricName::BgpSessionState, 1.0);
            }
            if k % 2 == 0 {
                push(
                    EntityKey::Device(dev.clone()),
                    MetricName::DeviceCpuPct,
                    20.0,
                );
                push(
                    EntityKey::Device(dev.clone()),
                    MetricName::DeviceMemUsedPct,
                    40.0,
                );
                push(
                    EntityKey::Device(dev.clone()),
                    MetricName::DeviceTemperatureC,
                    45.0,
                );
            }
        }
    }
    let load = start.elapsed();
    let (series, points) = engine.footprint();
    println!(
        "loaded {routers} routers, {series} series, {points} points ({samples} samples) in {:.2} s",
        load.as_secs_f64()
    );
    let mut times = Vec::new();
    let mut evaluations = 0;
    for i in 0..7 {
        let t = Instant::now();
        evaluations = 0;
        for s in Schedule::ALL {
            let (_, stats) = engine.evaluate(s, now + i * 1_000);
            evaluations += stats.evaluations;
        }
        times.push(t.elapsed().as_secs_f64() * 1_000.0);
    }
    let first = times[0];
    let mut steady = times[1..].to_vec();
    steady.sort_by(f64::total_cmp);
    println!(
        "one cycle of {n_rules} rules x {routers} routers ({evaluations} rule-entity evaluations): \
         first {first:.1} ms (computes rule targets), steady median {:.1} ms, max {:.1} ms",
        steady[steady.len() / 2],
        steady[steady.len() - 1]
    );
}
