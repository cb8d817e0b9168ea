//! 200 loopback targets (127.0.0.1 … 127.0.0.200) probed at once through one shared
//! socket: every target gets all of its own replies, from its own address, and the
//! process holds one ICMP socket for all of them, not one per target.
//!
//! One test function, alone in its test binary: the socket count of the process must not
//! be disturbed by other tests, and a second raw socket in the process would receive a
//! copy of all this traffic too (raw sockets see every ICMP packet of the host) and
//! compete for the same kernel work.

use ispvm_agent::probe::{EchoOutcome, Family, IcmpPinger, IcmpSocketMode, RoundPlan};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

const TARGETS: u8 = 200;

/// Sockets the process holds, read from /proc/self/fd.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| link.to_string_lossy().starts_with("socket:"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_targets_share_one_socket_and_get_their_own_replies() {
    let pinger = Arc::new(IcmpPinger::new(IcmpSocketMode::Auto));
    let before = open_sockets();
    pinger.open(Family::V4).expect("ICMP socket opens");
    let plan = RoundPlan {
        count: 5,
        spacing: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        payload_size: 56,
    };

    let mut tasks = Vec::new();
    for i in 1..=TARGETS {
        let pinger = pinger.clone();
        tasks.push(tokio::spawn(async move {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, i));
            let mut session = pinger.session();
            let stats = pinger
                .round(ip, &plan, &mut session)
                .await
                .expect("round runs");
            let mut froms = Vec::new();
            for _ in 0..3 {
                match pinger
                    .echo(ip, &mut session, Duration::from_secs(2), b"mine")
                    .await
                    .expect("echo runs")
                {
                    EchoOutcome::Reply { from, .. } => froms.push(from),
                    other => panic!("{ip}: {other:?}"),
                }
            }
            (ip, stats, froms)
        }));
    }
    let during = open_sockets();
    for task in tasks {
        let (ip, stats, froms) = task.await.expect("task finished");
        assert_eq!((stats.sent, stats.received), (5, 5), "{ip}: {stats:?}");
        assert_eq!(stats.loss_pct, 0.0);
        assert!(
            froms.iter().all(|f| *f == ip),
            "{ip} got replies from {froms:?}"
        );
    }
    assert_eq!(
        during - before,
        1,
        "one IPv4 ICMP socket for {TARGETS} targets"
    );

    burst_of_a_thousand_echoes_loses_none(&pinger).await;
}

/// A thousand echoes to a thousand loopback addresses released at the same instant:
/// loopback answers faster than the receive task runs, and without the send window the
/// socket's receive buffer overflowed after ~128 echoes and replies were counted as loss.
async fn burst_of_a_thousand_echoes_loses_none(pinger: &Arc<IcmpPinger>) {
    let tasks: Vec<_> = (0..1_000u32)
        .map(|i| {
            let pinger = pinger.clone();
            tokio::spawn(async move {
                let [_, _, b, c] = (i + 1).to_be_bytes();
                let ip = IpAddr::V4(Ipv4Addr::new(127, 1, b, c));
                let mut session = pinger.session();
                (
                    ip,
                    pinger
                        .echo(ip, &mut session, Duration::from_secs(2), &[0; 56])
                        .await
                        .expect("echo runs"),
                )
            })
        })
        .collect();
    let mut lost = Vec::new();
    for t in tasks {
        let (ip, outcome) = t.await.expect("task finished");
        match outcome {
            EchoOutcome::Reply { from, .. } => assert_eq!(from, ip),
            other => lost.push((ip, other)),
        }
    }
    assert!(
        lost.is_empty(),
        "{} lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
