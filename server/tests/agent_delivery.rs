//! An agent delivering to a real server: through a server outage under load (every
//! sample and event stored exactly once), over HTTPS when UDP is blocked, and syslog
//! events from the routers.

use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, RouterConfig, ServerConfig as AgentServer, TlsPaths,
    UplinkConfig,
};
use ispvm_cluster::TlsMaterial;
use ispvm_server::app::{RunningServer, start_with};
use ispvm_server::config::{HttpConfig as ServerHttp, QuicConfig, ServerConfig};
use ispvm_server::demo::router_config;
use ispvm_server::pki::{CertKind, Pki};
use ispvm_server::store::Store;
use ispvm_sim::{Topology, VirtualIsp};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn server(dir: &Path, quic: SocketAddr) -> RunningServer {
    server_with_rate(dir, quic, Default::default()).await
}

async fn server_with_rate(
    dir: &Path,
    quic: SocketAddr,
    rate: ispvm_server::ingest::rate::RateLimit,
) -> RunningServer {
    let config = ServerConfig {
        rate,
        data_dir: dir.to_owned(),
        http: ServerHttp {
            listen: SocketAddr::new(LOCAL, 0),
        },
        quic: QuicConfig { listen: quic },
        https: ispvm_server::config::HttpsIngestConfig {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
        ..ServerConfig::default()
    };
    let store = Store::connect(&config.database_url()).await.expect("store");
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    let tls = TlsMaterial::load_from_pki_dir(&dir.join("pki"), "server").expect("tls");
    start_with(&config, store, tls).await.expect("server")
}

/// An agent polling `routers` every 250 ms and delivering to `quic` (and `https`).
fn agent_config(
    pki: &Pki,
    dir: &Path,
    quic: SocketAddr,
    https: Option<SocketAddr>,
    routers: Vec<RouterConfig>,
) -> AgentConfig {
    let cert = pki.paths("agent-lis1");
    AgentConfig {
        agent_id: "agent-lis1".into(),
        tenant_id: "acme".into(),
        site: "lis1".into(),
        data_dir: dir.join("agent"),
        server: AgentServer {
            addr: quic,
            server_name: "localhost".into(),
            https_addr: https,
        },
        tls: TlsPaths {
            ca: pki.ca_cert_path(),
            cert: cert.cert,
            key: cert.key,
        },
        http: HttpConfig {
            listen: SocketAddr::new(LOCAL, 0),
        },
        poll: PollConfig {
            interval_ms: 250,
            jitter_ms: 100,
            ..PollConfig::default()
        },
        uplink: UplinkConfig {
            flush_interval_ms: 200,
            connect_timeout_ms: 1_000,
            exchange_timeout_ms: 2_000,
            ..UplinkConfig::default()
        },
        buffer: Default::default(),
        syslog: Default::default(),
        probes: Default::default(),
        cluster: Default::default(),
        routers,
    }
}

/// A deployment CA with the server's certificate and agent-lis1's (tenant acme).
fn pki(dir: &Path) -> Pki {
    let pki = Pki::new(dir.join("pki"));
    pki.init("test CA", 30).expect("CA");
    pki.issue(
        CertKind::Server,
        "server",
        None,
        &["localhost".into()],
        &[LOCAL],
        30,
    )
    .expect("server cert");
    pki.issue(CertKind::Agent, "agent-lis1", Some("acme"), &[], &[], 30)
        .expect("agent cert");
    pki
}

/// Stops the agent (it delivers what it holds) and returns its final metrics, checking
/// that nothing was left in its buffer: only then can stored and buffered counts agree.
async fn stop_drained(agent: ispvm_agent::RunningAgent) -> String {
    let metrics = agent.metrics.clone();
    agent.shutdown().await;
    let text = metrics.encode();
    assert_eq!(
        counter(&text, "ispvm_agent_uplink_queue_batches"),
        0,
        "drained:\n{text}"
    );
    text
}

/// Reads one counter from a Prometheus text exposition.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("{name} not in\n{text}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outage_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    // A fixed port, so the restarted server is where the agent keeps looking.
    let quic = UdpSocket::bind((LOCAL, 0))
        .and_then(|s| s.local_addr())
        .expect("free port");

    let isp = VirtualIsp::start(Topology::demo(), LOCAL)
        .await
        .expect("ISP");
    let routers: Vec<RouterConfig> = isp.routers().iter().map(router_config).collect();
    let first = server(dir.path(), quic).await;
    let agent = ispvm_agent::start(agent_config(&pki, dir.path(), quic, None, routers))
        .await
        .expect("agent");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = first.store.tenant("acme").counts().await.expect("counts");
    assert!(before.samples > 0, "data flows before the outage");
    first.shutdown().await;

    // The agent keeps polling and buffers to disk while nobody answers; a link cut
    // meanwhile makes events too.
    let link = isp.topology().links.first().expect("a link").clone();
    isp.apply(ispvm_sim::Fault::LinkCut {
        a: link.a,
        b: link.b,
    })
    .expect("cut");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = agent.metrics.encode();
    assert!(
        counter(&during, "ispvm_agent_uplink_queue_batches") > 0,
        "batches wait in the buffer:\n{during}"
    );

    let second = server(dir.path(), quic).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while counter(&agent.metrics.encode(), "ispvm_agent_uplink_queue_batches") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the buffer did not drain after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = stop_drained(agent).await;
    let buffered_samples = counter(&text, "ispvm_agent_buffered_samples_total");
    let buffered_events = counter(&text, "ispvm_agent_buffered_events_total");
    assert!(
        buffered_events >= 2,
        "the link cut gave events on both ends:\n{text}"
    );
    let stored = second.store.tenant("acme").counts().await.expect("counts");
    assert_eq!(
        stored.samples as u64, buffered_samples,
        "every sample stored exactly once"
    );
    assert_eq!(
        stored.events as u64, buffered_events,
        "every event stored exactly once"
    );
    second.shutdown().await;
    isp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_udp_blocked_batches_arrive_over_https_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    // A UDP port that swallows everything: QUIC never gets an answer, as behind a
    // firewall that drops UDP.
    let black_hole = UdpSocket::bind((LOCAL, 0)).expect("udp");
    let quic = black_hole.local_addr().expect("addr");

    let isp = VirtualIsp::start(Topology::demo(), LOCAL)
        .await
        .expect("ISP");
    let routers: Vec<RouterConfig> = isp.routers().iter().take(4).map(router_config).collect();
    let agent = ispvm_agent::start(agent_config(
        &pki,
        dir.path(),
        quic,
        server.https_addr,
        routers,
    ))
    .await
    .expect("agent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server
        .store
        .tenant("acme")
        .counts()
        .await
        .expect("counts")
        .samples
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived over HTTPS"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = stop_drained(agent).await;
    let stored = server.store.tenant("acme").counts().await.expect("counts");
    assert_eq!(
        stored.samples as u64,
        counter(&text, "ispvm_agent_buffered_samples_total")
    );
    server.shutdown().await;
    isp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routeros_syslog_line_becomes_a_stored_link_down_event() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    let isp = VirtualIsp::start(Topology::demo(), LOCAL)
        .await
        .expect("ISP");
    let r = isp.router("lis1-core1").expect("router");
    let router = router_config(r);
    let mut config = agent_config(&pki, dir.path(), server.quic_addr, None, vec![router]);
    config.syslog.enabled = true;
    config.syslog.bind = LOCAL;
    config.syslog.udp_port = 0;
    config.syslog.tcp_port = 0;
    let agent = ispvm_agent::start(config).await.expect("agent");
    let addrs = agent.syslog_addrs().await.expect("syslog running");
    let udp = addrs.udp.expect("UDP receiver");
    // What a RouterOS router sends for a port going down (BSD syslog, topics as the tag).
    let line = b"<30>Nov 24 06:50:01 LIS1-CORE1 interface,info sfp28-1 link down";
    let sender = UdpSocket::bind((LOCAL, 0)).expect("udp");
    sender.send_to(line, udp).expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = server
            .store
            .tenant("acme")
            .recent_events(Some("link_down"), 10)
            .await
            .expect("events");
        let stored = events
            .iter()
            .filter(|e| e.entity_id == "lis1-core1/sfp28-1")
            .count();
        if stored == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the syslog event did not reach the store"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent.shutdown().await;
    server.shutdown().await;
    isp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_target_reaches_the_store_as_ping_samples() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    let mut config = agent_config(&pki, dir.path(), server.quic_addr, None, Vec::new());
    let mut target = ispvm_agent::probe::config::ProbeTargetConfig::icmp("loopback", "127.0.0.1");
    target.interval_ms = 2_000;
    config.probes.targets.push(target);
    let agent = ispvm_agent::start(config).await.expect("agent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let latest = server
            .store
            .tenant("acme")
            .latest_values()
            .await
            .expect("latest");
        let ping: Vec<_> = latest
            .iter()
            .filter(|l| l.entity_kind == "probe_target" && l.entity_id == "loopback")
            .collect();
        if let Some(loss) = ping.iter().find(|l| l.metric == "ping.loss_pct") {
            assert_eq!(loss.value, 0.0, "loopback answers");
            if let Some(rtt) = ping.iter().find(|l| l.metric == "ping.rtt_ms") {
                assert!(rtt.value > 0.0 && rtt.value < 100.0, "{}", rtt.value);
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ping samples stored; stored {latest:?}; events {:?}",
            server
                .store
                .tenant("acme")
                .recent_events(None, 5)
                .await
                .expect("events")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    agent.shutdown().await;
    server.shutdown().await;
}

/// The server answers a replay burst with `overloaded` and a retry time; the agent waits as
/// told and still delivers everything exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_honours_server_backpressure() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let quic = UdpSocket::bind((LOCAL, 0))
        .and_then(|s| s.local_addr())
        .expect("free port");
    let isp = VirtualIsp::start(Topology::demo(), LOCAL)
        .await
        .expect("ISP");
    let routers: Vec<RouterConfig> = isp.routers().iter().take(3).map(router_config).collect();
    let mut config = agent_config(&pki, dir.path(), quic, None, routers);
    config.uplink.flush_interval_ms = 1_000;
    // The agent runs before the server: batches pile up in its buffer.
    let agent = ispvm_agent::start(config).await.expect("agent");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rate = ispvm_server::ingest::rate::RateLimit {
        batches_per_s: 2.0,
        burst: 2,
    };
    let server = server_with_rate(dir.path(), quic, rate).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while counter(&agent.metrics.encode(), "ispvm_agent_uplink_queue_batches") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog did not drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the agent's bucket refill so the last batch at shutdown is not pushed back.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let text = stop_drained(agent).await;
    assert!(
        text.contains("ispvm_agent_uplink_batches_total{result=\"rejected\"}"),
        "the server pushed back:\n{text}"
    );
    let server_text = server.metrics.encode();
    assert!(
        server_text.contains("ispvm_server_ingest_batches_total{outcome=\"overloaded\"}"),
        "{server_text}"
    );
    let stored = server.store.tenant("acme").counts().await.expect("counts");
    assert_eq!(
        stored.samples as u64,
        counter(&text, "ispvm_agent_buffered_samples_total"),
        "exactly once"
    );
    server.shutdown().await;
    isp.shutdown().await;
}
