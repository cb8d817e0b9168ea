//! An agent delivering to a real server: through a server outage under load (every
//! sample and event stored exactly once), over HTTPS when UDP is blocked, and syslog
//! events from the routers.

use ispvm_testkit as common;

use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, RouterConfig, ServerConfig as AgentServer, TlsPaths,
    UplinkConfig,
};
use ispvm_agent::internal_events::{AgentMetrics, BatchQuarantined, ItemsCleaned, SeqRenumbered};
use ispvm_cli::demo::router_config;
use ispvm_server::app::{RunningServer, start_with};
use ispvm_server::config::{HttpConfig as ServerHttp, QuicConfig, ServerConfig};
use ispvm_server::pki::{CertKind, Pki};
use ispvm_server::store::Store;
use ispvm_sim::{Topology, VirtualIsp};
use ispvm_transport::TlsMaterial;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
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
            ..Default::default()
        },
        quic: QuicConfig {
            listen: quic,
            ..Default::default()
        },
        https: ispvm_server::config::HttpsIngestConfig {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
        ..ServerConfig::default()
    };
    let store = Store::connect(&config.database_url()).await.expect("store");
    start_on(&config, store).await
}

/// Starts a server of `config` on `store`, with tenant acme and the PKI's server
/// certificate.
async fn start_on(config: &ServerConfig, store: Store) -> RunningServer {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    let tls = TlsMaterial::load_from_pki_dir(&config.data_dir.join("pki"), "server").expect("tls");
    start_with(config, store, tls).await.expect("server")
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
        source_address: None,
        server: AgentServer {
            addr: quic.into(),
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
/// Stops the agent once its buffer is empty; its metrics, to read what happened.
async fn stop_drained(agent: ispvm_agent::RunningAgent) -> Arc<AgentMetrics> {
    let metrics = agent.metrics.clone();
    agent.shutdown().await;
    let text = metrics.encode();
    assert_eq!(
        counter(&text, "ispvm_agent_uplink_queue_batches"),
        0,
        "drained:\n{text}"
    );
    metrics
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
    // The running agent holds its data directory: a second one (or an offline tool)
    // on it is refused.
    assert!(matches!(
        ispvm_agent::data_dir::DataDir::new(dir.path().join("agent")).lock(),
        Err(ispvm_agent::data_dir::LockError::Held { .. })
    ));
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
    let text = stop_drained(agent).await.encode();
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
    let text = stop_drained(agent).await.encode();
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
            .recent_events(Some(ispvm_proto::EventKind::LinkDown), 10)
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
    let text = stop_drained(agent).await.encode();
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

/// Three routers in one PoP: a healthy one, one whose board name holds a NUL, and one
/// whose identity (what the healthy one sees as its neighbour's) is 4 KB.
fn odd_topology() -> Topology {
    let mut t = Topology::from_toml(
        r#"
        name = "odd"
        [[sites]]
        id = "lis1"
        name = "Lisbon"
        lat = 38.7
        lon = -9.1
        [[routers]]
        id = "healthy"
        identity = "HEALTHY"
        site = "lis1"
        role = "core"
        ros_version = "7.16.1"
        board = "CCR2116-12G-4S+"
        [[routers.interfaces]]
        name = "ether1"
        kind = "ether"
        speed_mbps = 1000
        [[routers]]
        id = "odd"
        identity = "ODD"
        site = "lis1"
        role = "agg"
        ros_version = "7.16.1"
        board = "CCR2116-12G-4S+"
        [[routers.interfaces]]
        name = "ether1"
        kind = "ether"
        speed_mbps = 1000
        [[routers]]
        id = "big"
        identity = "BIG"
        site = "lis1"
        role = "agg"
        ros_version = "7.16.1"
        board = "CCR2116-12G-4S+"
        [[routers.interfaces]]
        name = "ether1"
        kind = "ether"
        speed_mbps = 1000
        [[links]]
        a = "healthy:ether1"
        b = "big:ether1"
        capacity_mbps = 1000
        "#,
    )
    .expect("topology");
    t.routers[1].board = "CCR2116\u{0}-12G-4S+".into();
    // Incompressible, as a real announcement would be: PostgreSQL compresses index keys
    // before it checks their size.
    t.routers[2].identity = (0..128)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    t
}

/// The report that opened issue 12, on PostgreSQL: one router's odd text blinded the
/// whole PoP (the batch was refused as `internal` and retried forever). Now the text is
/// cleaned before buffering, every router shows, and nothing is set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_router_text_blinds_nothing_on_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let (store, db) = common::pg_store().await;
    let config = ServerConfig {
        data_dir: dir.path().to_owned(),
        http: ServerHttp {
            listen: SocketAddr::new(LOCAL, 0),
            ..Default::default()
        },
        quic: QuicConfig {
            listen: SocketAddr::new(LOCAL, 0),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let server = start_on(&config, store.clone()).await;
    let isp = VirtualIsp::start(odd_topology(), LOCAL).await.expect("ISP");
    let routers: Vec<RouterConfig> = isp.routers().iter().map(router_config).collect();
    let agent = ispvm_agent::start(agent_config(
        &pki,
        dir.path(),
        server.quic_addr,
        None,
        routers,
    ))
    .await
    .expect("agent");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let tenant = store.tenant("acme");
    let (devices, neighbors) = loop {
        let devices = tenant.devices().await.expect("devices");
        let neighbors = tenant.neighbors().await.expect("neighbours");
        let seen = |id: &str| devices.iter().any(|d| d.id == id);
        if seen("healthy") && seen("odd") && seen("big") && !neighbors.is_empty() {
            break (devices, neighbors);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "every router should show within 20 s; devices {:?}\nagent:\n{}",
            devices.iter().map(|d| &d.id).collect::<Vec<_>>(),
            agent.metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let odd = devices.iter().find(|d| d.id == "odd").expect("odd");
    assert_eq!(odd.model, "CCR2116\u{FFFD}-12G-4S+");
    let big = neighbors
        .iter()
        .find(|n| n.device_id == "healthy")
        .expect("the healthy router's neighbour");
    assert!(big.identity.len() <= 128 && big.identity.ends_with('…'));
    let latest = tenant.latest_values().await.expect("latest");
    assert!(
        latest
            .iter()
            .any(|v| v.entity_id == "healthy" && v.metric == "device.up" && v.value == 1.0)
    );

    let metrics = stop_drained(agent).await;
    let text = metrics.encode();
    assert!(
        counter(&text, "ispvm_agent_uplink_fields_cleaned_total") >= 2,
        "{text}"
    );
    assert!(metrics.events().count::<ItemsCleaned>() >= 1);
    assert_eq!(
        metrics.events().count::<BatchQuarantined>(),
        0,
        "nothing set aside"
    );
    server.shutdown().await;
    db.drop_db(store).await;
}

/// Appends `batches` to the disk buffer the agent of `config` will open, as an earlier
/// life of the agent (or an older version of it) would have left them.
fn plant(config: &AgentConfig, batches: &[ispvm_proto::Batch]) {
    let mut buffer = ispvm_agent::buffer::DiskBuffer::open(
        config.data_dir.join("buffer"),
        config.buffer.buffer_config(),
    )
    .expect("buffer");
    for b in batches {
        buffer
            .append(&ispvm_proto::codec::to_bincode(b).expect("encode"))
            .expect("append");
    }
    buffer.close().expect("close");
}

/// A batch the server refuses for good sits between two good ones in the buffer (an
/// older agent buffered it before text was cleaned): it is set aside in the quarantine
/// file, visible in the agent's state and metrics, and the uplink goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_is_set_aside_and_the_uplink_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    let config = agent_config(&pki, dir.path(), server.quic_addr, None, Vec::new());
    let mut poison = common::batch("agent-lis1", "acme", 2, "odd");
    poison.inventory.devices[0].model = "CCR\u{0}2116".into();
    plant(
        &config,
        &[
            common::batch("agent-lis1", "acme", 1, "core1"),
            poison,
            common::batch("agent-lis1", "acme", 3, "core3"),
        ],
    );
    let agent = ispvm_agent::start(config.clone()).await.expect("agent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while server
        .store
        .tenant("acme")
        .counts()
        .await
        .expect("counts")
        .batches
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the batch after the refused one was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state: serde_json::Value = reqwest::get(format!("http://{}/v1/state", agent.http_addr))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["quarantine"]["batches"], 1, "{state}");
    assert_eq!(state["quarantine"]["last"]["seq"], 2, "{state}");
    assert_eq!(state["quarantine"]["last"]["reason"], "invalid", "{state}");
    let metrics = stop_drained(agent).await;
    assert_eq!(metrics.events().count::<BatchQuarantined>(), 1);
    let text = metrics.encode();
    assert!(
        text.contains("ispvm_agent_uplink_batches_quarantined_total{reason=\"invalid\"} 1"),
        "{text}"
    );
    let entries = ispvm_agent::uplink::quarantine::Quarantine::read_all(
        &config.data_dir.join("quarantine.jsonl"),
    )
    .expect("quarantine file");
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].reason.contains("inventory.devices[0].model"),
        "{:?}",
        entries[0]
    );
    // The file holds the refused batch whole: its bytes are still refused as they were.
    let again = ispvm_proto::codec::from_bincode::<ispvm_proto::Batch>(
        &entries[0].record().expect("base64"),
        &ispvm_proto::Limits::default(),
    );
    assert!(
        matches!(again, Err(ispvm_proto::DecodeError::Invalid { .. })),
        "{again:?}"
    );
    let devices = server
        .store
        .tenant("acme")
        .devices()
        .await
        .expect("devices");
    let mut ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["core1", "core3"]);
    server.shutdown().await;
}

/// A long replay does not keep new data out of the disk buffer: while a backlog of
/// heavy batches is delivered, what the pollers collect keeps being cut and buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_data_reaches_the_disk_during_a_long_replay() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    let isp = VirtualIsp::start(Topology::demo(), LOCAL)
        .await
        .expect("ISP");
    let routers: Vec<RouterConfig> = isp.routers().iter().take(2).map(router_config).collect();
    let config = agent_config(&pki, dir.path(), server.quic_addr, None, routers);
    let backlog: Vec<ispvm_proto::Batch> = (1..=600)
        .map(|seq| {
            let mut b = ispvm_proto::Batch::new("agent-lis1", "acme", seq);
            for i in 0..2_000u32 {
                b.samples.push(ispvm_proto::MetricSample {
                    entity: ispvm_proto::EntityKey::Device(format!("old{}", i % 50)),
                    metric: ispvm_proto::MetricName::DeviceCpuPct,
                    ts_ms: common::T0 + i64::try_from(seq).expect("seq") * 100_000 + i64::from(i),
                    value: f64::from(i),
                });
            }
            b
        })
        .collect();
    plant(&config, &backlog);
    let agent = ispvm_agent::start(config).await.expect("agent");
    let buffered = |text: &str| counter(text, "ispvm_agent_buffered_samples_total");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let early = agent.metrics.encode();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = agent.metrics.encode();
    assert!(
        counter(&later, "ispvm_agent_uplink_queue_batches") > 0,
        "the replay is still going (make the backlog heavier if this machine is fast):\n{later}"
    );
    assert!(
        buffered(&later) > buffered(&early),
        "polled samples were buffered during the replay:\n{early}\n{later}"
    );
    agent.shutdown().await;
    server.shutdown().await;
}

/// The agent's state was rolled back (a restored snapshot): its buffer holds a batch
/// under a number the server already stored with other content. The server refuses it
/// instead of acknowledging it as a replay, and the agent numbers it anew: nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_number_is_renumbered_not_lost() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let server = server(dir.path(), SocketAddr::new(LOCAL, 0)).await;
    server
        .store
        .tenant("acme")
        .ingest(&common::batch("agent-lis1", "acme", 1, "core1"), common::T0)
        .await
        .expect("first life's batch");
    let config = agent_config(&pki, dir.path(), server.quic_addr, None, Vec::new());
    plant(&config, &[common::batch("agent-lis1", "acme", 1, "core2")]);
    let agent = ispvm_agent::start(config).await.expect("agent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let devices = server
            .store
            .tenant("acme")
            .devices()
            .await
            .expect("devices");
        if devices.iter().any(|d| d.id == "core2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renumbered batch was not stored:\n{}",
            agent.metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = stop_drained(agent).await;
    assert_eq!(metrics.events().count::<SeqRenumbered>(), 1);
    let agents = server.store.tenant("acme").agents().await.expect("agents");
    assert!(
        agents[0].last_seq > 1_000_000_000_000,
        "numbered from the clock"
    );
    server.shutdown().await;
}
