//! TCP connect probes against real loopback sockets: a listening port answers every
//! connect, a closed port loses every one (refused), on IPv4 and IPv6.

use ispvm_agent::probe::tcp::{connect_once, tcp_round};
use ispvm_agent::probe::{
    EchoOutcome, IcmpPinger, IcmpSocketMode, ProbeTarget, ProbeTargetConfig, RoundPlan,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

fn plan() -> RoundPlan {
    RoundPlan {
        count: 5,
        spacing: Duration::from_millis(20),
        timeout: Duration::from_secs(1),
        payload_size: 0,
    }
}

/// A listener that accepts and drops every connection.
async fn listening(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind on loopback");
    let local = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    local
}

/// A port nothing listens on: bound once to get a free number, then released.
async fn closed(addr: &str) -> SocketAddr {
    let listener = TcpListener::bind(addr).await.expect("bind on loopback");
    let local = listener.local_addr().expect("local address");
    drop(listener);
    local
}

#[tokio::test]
async fn listening_port_answers_every_connect() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let target = listening(addr).await;
        let stats = tcp_round(target, None, &plan()).await;
        assert_eq!((stats.sent, stats.received), (5, 5), "{target}: {stats:?}");
        assert_eq!(stats.loss_pct, 0.0);
        assert!(stats.min_ms.expect("answered") > 0.0);
        assert!(stats.jitter_ms.is_some());
    }
}

#[tokio::test]
async fn closed_port_loses_every_connect() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let target = closed(addr).await;
        let stats = tcp_round(target, None, &plan()).await;
        assert_eq!((stats.sent, stats.received), (5, 0), "{target}: {stats:?}");
        assert_eq!(stats.unreachable, 5, "refused, not timed out: {stats:?}");
        assert_eq!(stats.loss_pct, 100.0);
        assert_eq!(stats.avg_ms, None);
        assert_eq!(
            connect_once(target, None, Duration::from_secs(1)).await,
            EchoOutcome::Unreachable
        );
    }
}

#[tokio::test]
async fn tcp_target_reports_samples_through_probe_target() {
    let pinger = IcmpPinger::new(IcmpSocketMode::Auto);
    let open = listening("127.0.0.1:0").await;
    let config = ProbeTargetConfig {
        interval_ms: 1_000,
        count: 3,
        spacing_ms: 10,
        timeout_ms: 500,
        ..ProbeTargetConfig::tcp("web", "127.0.0.1", open.port())
    };
    let mut target = ProbeTarget::new(config, &pinger).expect("valid target");
    let (_, stats) = target.round(&pinger).await.expect("round runs");
    assert_eq!(stats.received, 3);
    assert_eq!(target.samples(7, &stats).len(), 3);

    let shut = closed("127.0.0.1:0").await;
    let config = ProbeTargetConfig {
        interval_ms: 1_000,
        count: 3,
        spacing_ms: 10,
        timeout_ms: 500,
        ..ProbeTargetConfig::tcp("web-down", "127.0.0.1", shut.port())
    };
    let mut target = ProbeTarget::new(config, &pinger).expect("valid target");
    let (_, stats) = target.round(&pinger).await.expect("round runs");
    let samples = target.samples(7, &stats);
    assert_eq!(samples.len(), 1, "loss only: {samples:?}");
    assert_eq!(samples[0].value, 100.0);
}
