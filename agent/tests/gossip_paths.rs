//! Gossip between agents of three PoPs, each agent at a router of the virtual ISP and
//! reached through a UDP relay in front of its gossip port: real QUIC with mutual TLS
//! over the relays. A partitioned PoP's agent is declared dead by the others (and sees
//! them dead), and everyone is live again after the heal.

use ispvm_cluster::testing::{TENANT, TestCluster};
use ispvm_sim::{Fault, Topology, VirtualIsp};
use ispvm_transport::pki::CertKind;
use ispvm_transport::tls::TlsMaterial;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// (agent, site, router it stands on)
const AGENTS: [(&str, &str, &str); 3] = [
    ("agent-lis", "lis1", "lis1-core1"),
    ("agent-cbr", "cbr1", "cbr1-agg1"),
    ("agent-evr", "evr1", "evr1-agg1"),
];

/// Whether node `i` sees `agent` live.
fn sees_live(cluster: &TestCluster, i: usize, agent: &str) -> bool {
    cluster.nodes[i]
        .membership()
        .and_then(|m| m.member(agent).map(|x| x.live))
        .unwrap_or(false)
}

async fn until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_over_relays_follows_the_paths_between_pops() {
    let isp = VirtualIsp::start(Topology::demo(), LOCALHOST)
        .await
        .expect("ISP");
    let dir = tempfile::tempdir().expect("dir");
    let mut cluster =
        TestCluster::new(dir.path(), Duration::from_millis(200), Vec::new()).expect("CA");
    let mut relays: Vec<SocketAddr> = Vec::new();
    for (agent, site, router) in AGENTS {
        let ip = isp.attach(agent, router).expect("attach");
        // A port free on the agent's own address: gossip binds it for real.
        let listen = std::net::UdpSocket::bind((ip, 0))
            .and_then(|s| s.local_addr())
            .expect("a free port");
        let relay = isp.relay_udp(listen, router).await.expect("relay");
        let mut config = cluster.config(agent, site, listen);
        config.advertise = Some(relay);
        config.seeds = relays.iter().map(ToString::to_string).collect();
        cluster
            .pki
            .issue(CertKind::Agent, agent, Some(TENANT), &[], &[], 30)
            .expect("certificate");
        let material = TlsMaterial::load_from_pki_dir(cluster.pki.dir(), agent).expect("TLS");
        cluster.start_with(config, material).await.expect("node");
        relays.push(relay);
    }
    let all_live = |c: &TestCluster| {
        (0..AGENTS.len()).all(|i| AGENTS.iter().all(|(a, _, _)| sees_live(c, i, a)))
    };
    until(
        "every agent sees every agent live",
        Duration::from_secs(20),
        || all_live(&cluster),
    )
    .await;

    let partition = isp
        .apply(Fault::SitePartition {
            site: "evr1".into(),
        })
        .expect("partition");
    until(
        "the partitioned agent is dead to the others, and they to it",
        Duration::from_secs(20),
        || {
            !sees_live(&cluster, 0, "agent-evr")
                && !sees_live(&cluster, 1, "agent-evr")
                && !sees_live(&cluster, 2, "agent-lis")
                && !sees_live(&cluster, 2, "agent-cbr")
        },
    )
    .await;
    assert!(
        sees_live(&cluster, 0, "agent-cbr") && sees_live(&cluster, 1, "agent-lis"),
        "the rest of the ring still gossips"
    );

    isp.clear(partition).expect("clear");
    until(
        "everyone live after the heal",
        Duration::from_secs(20),
        || all_live(&cluster),
    )
    .await;
    isp.shutdown().await;
}
