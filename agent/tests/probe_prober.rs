//! The prober actor with real ICMP and TCP: each round sends `ping.*` samples for its
//! `ProbeTarget` entity to the uplink, on schedule; the last round and traceroute can be
//! asked for; the probe metrics count what happened; a bad configuration does not start.

use ispvm_agent::actors::prober::{Prober, ProberArgs, ProberMsg};
use ispvm_agent::internal_events::probe::{RoundDropped, RoundFinished, TracerouteFinished};
use ispvm_agent::probe::{IcmpPinger, IcmpSocketMode, ProbeMetrics, ProbeTargetConfig};
use ispvm_agent::routeros::PollOutput;
use ispvm_agent::testing::UplinkRecorder;
use ispvm_proto::{EntityKey, MetricName};
use ractor::Actor;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn fast(config: ProbeTargetConfig) -> ProbeTargetConfig {
    ProbeTargetConfig {
        interval_ms: 1_000,
        count: 4,
        spacing_ms: 20,
        timeout_ms: 500,
        ..config
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<PollOutput>) -> PollOutput {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a round within 5 s")
        .expect("sink running")
}

fn value(out: &PollOutput, metric: MetricName) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.metric == metric)
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probers_report_ping_samples_every_interval() {
    let (sink, mut rx) = UplinkRecorder::spawn().await;
    let pinger = Arc::new(IcmpPinger::new(IcmpSocketMode::Auto));
    let metrics = ProbeMetrics::new();

    let args = |target| ProberArgs {
        target,
        pinger: pinger.clone(),
        uplink: sink.clone(),
        metrics: metrics.clone(),
        start_jitter_ms: 0,
    };
    let (v4, _) = Actor::spawn(
        None,
        Prober,
        args(fast(ProbeTargetConfig::icmp("lo4", "127.0.0.1"))),
    )
    .await
    .expect("prober spawns");
    let (v6, _) = Actor::spawn(
        None,
        Prober,
        args(fast(ProbeTargetConfig::icmp("lo6", "::1"))),
    )
    .await
    .expect("prober spawns");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        l.local_addr().expect("local address").port()
    };
    let (tcp, _) = Actor::spawn(
        None,
        Prober,
        args(fast(ProbeTargetConfig::tcp("shut", "127.0.0.1", closed))),
    )
    .await
    .expect("prober spawns");
    assert_eq!(metrics.targets(), 3);

    // Two rounds of each target: 6 outputs, each for one target entity.
    let mut seen: std::collections::HashMap<String, Vec<PollOutput>> = Default::default();
    while seen.values().map(Vec::len).sum::<usize>() < 6 {
        let out = next(&mut rx).await;
        let EntityKey::ProbeTarget(key) = &out.samples[0].entity else {
            panic!("not a probe target: {:?}", out.samples[0].entity);
        };
        assert!(
            out.samples
                .iter()
                .all(|s| s.entity == out.samples[0].entity)
        );
        assert!(out.events.is_empty());
        seen.entry(key.clone()).or_default().push(out);
    }
    for key in ["lo4", "lo6"] {
        let rounds = &seen[key];
        assert!(rounds.len() >= 2, "{key}: {} rounds", rounds.len());
        for out in rounds {
            assert_eq!(out.samples.len(), 3, "{key}: {:?}", out.samples);
            assert_eq!(value(out, MetricName::PingLossPct), Some(0.0));
            assert!(value(out, MetricName::PingRttMs).expect("sample present") > 0.0);
            assert!(value(out, MetricName::PingJitterMs).expect("sample present") >= 0.0);
        }
        // One round per interval: timestamps a second apart, not bunched.
        let gap = rounds[1].samples[0].ts_ms - rounds[0].samples[0].ts_ms;
        assert!((900..=1_500).contains(&gap), "{key}: rounds {gap} ms apart");
    }
    for out in &seen["shut"] {
        assert_eq!(out.samples.len(), 1, "loss only: {:?}", out.samples);
        assert_eq!(value(out, MetricName::PingLossPct), Some(100.0));
    }

    // The last round, for /v1/state.
    let last = ractor::call_t!(v4, ProberMsg::LastRound, 1_000)
        .expect("prober answers")
        .expect("a round ran");
    assert_eq!(
        last.address,
        Some("127.0.0.1".parse::<IpAddr>().expect("IP literal"))
    );
    assert_eq!(last.stats.as_ref().map(|s| s.received), Some(4));
    assert!(last.error.is_none());

    // Traceroute on demand, answered while rounds go on.
    let hops = v6
        .call(
            |reply| ProberMsg::Traceroute {
                max_hops: 5,
                timeout: Duration::from_millis(500),
                reply,
            },
            Some(Duration::from_secs(5)),
        )
        .await
        .expect("prober reachable")
        .expect("answered in time")
        .expect("traceroute runs");
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].address, Some("::1".parse().expect("IP literal")));

    assert!(metrics.rounds("icmp", "ok") >= 4);
    assert!(metrics.rounds("tcp", "lost") >= 2);
    assert!(metrics.echoes_sent("icmp") >= 16);
    assert!(metrics.echoes_received("icmp") >= 16);
    assert_eq!(metrics.echoes_received("tcp"), 0);
    // Each round and the traceroute went through their event, which counted them.
    let log = metrics.events();
    assert!(log.count::<RoundFinished>() >= 4 + 2);
    assert_eq!(log.count::<TracerouteFinished>(), 1);
    assert_eq!(log.count::<RoundDropped>(), 0);

    for actor in [v4, v6, tcp] {
        actor.stop_and_wait(None, None).await.expect("prober stops");
    }
    assert_eq!(metrics.targets(), 0);
    sink.stop(None);
}

#[tokio::test]
async fn a_target_that_cannot_be_resolved_reports_nothing() {
    let (sink, mut rx) = UplinkRecorder::spawn().await;
    let pinger = Arc::new(IcmpPinger::new(IcmpSocketMode::Auto));
    let metrics = ProbeMetrics::new();
    let (prober, _) = Actor::spawn(
        None,
        Prober,
        ProberArgs {
            target: fast(ProbeTargetConfig::icmp("ghost", "no-such-host.invalid")),
            pinger,
            uplink: sink.clone(),
            metrics: metrics.clone(),
            start_jitter_ms: 0,
        },
    )
    .await
    .expect("prober spawns");
    // The round runs and fails to resolve: no sample (a loss the network never had would
    // raise false alarms), the error is kept for /v1/state and counted.
    let mut last = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = ractor::call_t!(prober, ProberMsg::LastRound, 1_000).expect("prober answers");
        if last.is_some() {
            break;
        }
    }
    let last = last.expect("a round ran");
    assert!(last.stats.is_none());
    assert!(
        last.error
            .expect("error kept")
            .contains("no-such-host.invalid")
    );
    assert!(rx.try_recv().is_err());
    assert_eq!(metrics.rounds("icmp", "error"), 1);
    prober.stop(None);
    sink.stop(None);
}

#[tokio::test]
async fn an_invalid_target_does_not_start() {
    let (sink, _rx) = UplinkRecorder::spawn().await;
    let metrics = ProbeMetrics::new();
    let spawned = Actor::spawn(
        None,
        Prober,
        ProberArgs {
            target: ProbeTargetConfig {
                interval_ms: 500,
                ..ProbeTargetConfig::icmp("too-fast", "127.0.0.1")
            },
            pinger: Arc::new(IcmpPinger::new(IcmpSocketMode::Auto)),
            uplink: sink.clone(),
            metrics: metrics.clone(),
            start_jitter_ms: 0,
        },
    )
    .await;
    let err = spawned.expect_err("refused").to_string();
    assert!(err.contains("interval_ms 500"), "{err}");
    assert_eq!(metrics.targets(), 0);
    sink.stop(None);
}
