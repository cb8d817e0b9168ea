//! Real ICMP through the shared pinger: loopback targets on IPv4 and IPv6, traceroute to
//! loopback, and an unreachable target. Needs root or CAP_NET_RAW (raw sockets) or a
//! `ping_group_range` covering the test's group (datagram sockets); the agent's tests run
//! as root.
//!
//! Unreachable targets and multi-hop paths are tested inside network namespaces in
//! `probe_netns.rs`; the TEST-NET test here is the fallback that needs no namespace.

use ispvm_agent::probe::{
    EchoOutcome, Family, IcmpPinger, IcmpSocketMode, ProbeTarget, ProbeTargetConfig, RoundPlan,
    SocketKind, traceroute,
};
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn plan(count: u16, spacing_ms: u64, timeout_ms: u64) -> RoundPlan {
    RoundPlan {
        count,
        spacing: Duration::from_millis(spacing_ms),
        timeout: Duration::from_millis(timeout_ms),
        payload_size: 56,
    }
}

async fn loopback_round(target: &str) {
    let pinger = IcmpPinger::new(IcmpSocketMode::Auto);
    let ip: IpAddr = target.parse().expect("IP literal");
    let kind = pinger.open(Family::of(&ip)).expect("ICMP socket opens");
    eprintln!("{target}: {kind:?} socket");
    let mut session = pinger.session();
    let stats = pinger
        .round(ip, &plan(5, 20, 1_000), &mut session)
        .await
        .expect("round runs");
    assert_eq!((stats.sent, stats.received), (5, 5), "{stats:?}");
    assert_eq!(stats.loss_pct, 0.0);
    let (min, avg, max) = (
        stats.min_ms.expect("answered"),
        stats.avg_ms.expect("answered"),
        stats.max_ms.expect("answered"),
    );
    assert!(min > 0.0 && min <= avg && avg <= max, "{stats:?}");
    assert!(max < 100.0, "loopback RTT {max} ms");
    assert!(stats.jitter_ms.expect("two answers") >= 0.0);

    // Single echoes answer from the address asked.
    for _ in 0..3 {
        match pinger
            .echo(ip, &mut session, Duration::from_secs(1), b"hello")
            .await
            .expect("echo runs")
        {
            EchoOutcome::Reply { rtt, from } => {
                assert_eq!(from, ip);
                assert!(rtt > Duration::ZERO);
            }
            other => panic!("{target}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn ipv4_loopback_answers_every_echo() {
    loopback_round("127.0.0.1").await;
}

#[tokio::test]
async fn ipv6_loopback_answers_every_echo() {
    loopback_round("::1").await;
}

#[tokio::test]
async fn raw_mode_opens_raw_sockets() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Raw);
    assert_eq!(
        pinger.open(Family::V4).expect("ICMP socket opens"),
        SocketKind::Raw
    );
    assert_eq!(
        pinger.open(Family::V6).expect("ICMP socket opens"),
        SocketKind::Raw
    );
    let mut session = pinger.session();
    let stats = pinger
        .round(
            "127.0.0.2".parse().expect("IP literal"),
            &plan(3, 10, 500),
            &mut session,
        )
        .await
        .expect("round runs");
    assert_eq!(stats.received, 3);
}

#[tokio::test]
async fn large_payload_round_trips() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Auto);
    let mut session = pinger.session();
    let mut p = plan(2, 10, 1_000);
    p.payload_size = 1_400;
    let stats = pinger
        .round("127.0.0.1".parse().expect("IP literal"), &p, &mut session)
        .await
        .expect("round runs");
    assert_eq!(stats.received, 2, "{stats:?}");
}

#[tokio::test]
async fn probe_target_rounds_give_ping_samples() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Auto);
    let config = ProbeTargetConfig {
        interval_ms: 1_000,
        count: 4,
        spacing_ms: 20,
        timeout_ms: 500,
        ..ProbeTargetConfig::icmp("lo-v4", "localhost")
    };
    let mut target = ProbeTarget::new(config, &pinger).expect("valid target");
    let (ip, stats) = target.round(&pinger).await.expect("round runs");
    assert!(ip.is_loopback());
    assert_eq!(stats.received, 4);
    let samples = target.samples(1_000, &stats);
    assert_eq!(samples.len(), 3);
}

#[tokio::test]
async fn traceroute_to_loopback_is_one_hop() {
    for target in ["127.0.0.1", "::1"] {
        let ip: IpAddr = target.parse().expect("IP literal");
        let hops = traceroute(ip, 30, Duration::from_millis(500))
            .await
            .expect("traceroute runs");
        assert_eq!(hops.len(), 1, "{target}: {hops:?}");
        assert_eq!(hops[0].ttl, 1);
        assert_eq!(hops[0].address, Some(ip));
        assert!(hops[0].rtt_ms.expect("hop answered") > 0.0);
    }
}

/// Without a namespace: an address of TEST-NET-2 never answers (it is routed away, or
/// has no route at all); every echo is lost, and the round ends within its time budget.
#[tokio::test]
async fn test_net_address_loses_everything_within_the_timeout() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Auto);
    let mut session = pinger.session();
    let started = Instant::now();
    let stats = pinger
        .round(
            "198.51.100.77".parse().expect("IP literal"),
            &plan(3, 50, 300),
            &mut session,
        )
        .await
        .expect("round runs");
    let took = started.elapsed();
    assert_eq!((stats.sent, stats.received), (3, 0), "{stats:?}");
    assert_eq!(stats.loss_pct, 100.0);
    assert_eq!(stats.avg_ms, None);
    assert!(took < Duration::from_millis(2 * 50 + 300 + 500), "{took:?}");
}
