//! The agent's supervision tree: a killed poller is restarted with backoff, a poller that
//! keeps dying is parked as a crash loop, and the router set changes live.

#[path = "support/agent_kit.rs"]
mod agent_kit;

use agent_kit::{get_json, tls};
use ispvm_agent::actors::supervisor::ChildKey;
use ispvm_agent::actors::{AgentSupervisor, SupervisorArgs, SupervisorMsg};
use ispvm_agent::config::{AgentConfig, PollConfig, RouterConfig, ServerConfig, TlsPaths};
use ispvm_agent::internal_events::{ActorRestarted, AgentMetrics};
use ispvm_agent::state::AgentState;
use ispvm_sim::{Topology, VirtualIsp};
use ractor::{Actor, ActorCell, ActorRef};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

fn router(isp: &VirtualIsp, id: &str) -> RouterConfig {
    let r = isp.router(id).expect("router");
    RouterConfig {
        key: id.into(),
        address: r.addr,
        username: r.credentials.username.clone(),
        password: r.credentials.password.clone(),
        role: r.spec.role,
        site: Some(r.spec.site.clone()),
        tls: None,
        tags: Vec::new(),
        profile: None,
        collector: Default::default(),
        snmp: None,
    }
}

async fn start(
    isp: &VirtualIsp,
    routers: Vec<RouterConfig>,
    dir: &std::path::Path,
) -> (ActorRef<SupervisorMsg>, Arc<AgentMetrics>) {
    let config = AgentConfig {
        agent_id: "agent-t".into(),
        tenant_id: "t".into(),
        site: "lis1".into(),
        data_dir: dir.to_owned(),
        source_address: None,
        // Nothing listens there: the uplink keeps retrying, which is fine here.
        server: ServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9).into(),
            server_name: "localhost".into(),
            https_addr: None,
        },
        tls: TlsPaths {
            ca: "unused".into(),
            cert: "unused".into(),
            key: "unused".into(),
        },
        http: Default::default(),
        poll: PollConfig {
            interval_ms: 500,
            jitter_ms: 0,
            ..PollConfig::default()
        },
        uplink: Default::default(),
        buffer: Default::default(),
        syslog: Default::default(),
        probes: Default::default(),
        cluster: Default::default(),
        routers,
    };
    let _ = isp;
    let metrics = AgentMetrics::new();
    let args = SupervisorArgs {
        config,
        tls: tls(),
        metrics: metrics.clone(),
        syslog_metrics: ispvm_agent::syslog::SyslogMetrics::new(),
        probe_metrics: ispvm_agent::probe::ProbeMetrics::new(),
        state: Arc::new(AgentState::default()),
    };
    let (sup, _) = Actor::spawn(None, AgentSupervisor, args)
        .await
        .expect("supervisor");
    (sup, metrics)
}

async fn children(sup: &ActorRef<SupervisorMsg>) -> Vec<(ChildKey, ActorCell)> {
    ractor::call_t!(sup, SupervisorMsg::Children, 2_000).expect("children")
}

async fn poller(sup: &ActorRef<SupervisorMsg>, key: &str) -> Option<ActorCell> {
    children(sup)
        .await
        .into_iter()
        .find(|(k, _)| *k == ChildKey::Poller(key.into()))
        .map(|(_, c)| c)
}

/// Waits until the poller of `key` runs as an actor other than `old`.
async fn restarted(
    sup: &ActorRef<SupervisorMsg>,
    key: &str,
    old: &ActorCell,
    within: Duration,
) -> Option<ActorCell> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if let Some(c) = poller(sup, key).await
            && c.get_id() != old.get_id()
        {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn isp() -> VirtualIsp {
    VirtualIsp::start(Topology::demo(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("ISP")
}

#[tokio::test]
async fn a_killed_poller_restarts_and_the_router_set_changes_live() {
    let isp = isp().await;
    let dir = tempfile::tempdir().expect("dir");
    let (sup, metrics) = start(
        &isp,
        vec![router(&isp, "lis1-core1"), router(&isp, "lis1-core2")],
        dir.path(),
    )
    .await;
    let kids = children(&sup).await;
    assert_eq!(kids.len(), 3, "two pollers and the uplink");

    let old = poller(&sup, "lis1-core1").await.expect("poller");
    old.kill();
    let new = restarted(&sup, "lis1-core1", &old, Duration::from_secs(5))
        .await
        .expect("restarted");
    assert_ne!(new.get_id(), old.get_id());
    assert_eq!(metrics.events().count::<ActorRestarted>(), 1);

    let untouched = poller(&sup, "lis1-core2").await.expect("core2").get_id();
    sup.cast(SupervisorMsg::SetRouters(vec![
        router(&isp, "lis1-core2"),
        router(&isp, "lis1-rr1"),
    ]))
    .expect("cast");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keys: Vec<ChildKey> = children(&sup).await.into_iter().map(|(k, _)| k).collect();
    assert!(
        !keys.contains(&ChildKey::Poller("lis1-core1".into())),
        "{keys:?}"
    );
    assert!(
        keys.contains(&ChildKey::Poller("lis1-rr1".into())),
        "{keys:?}"
    );
    assert_eq!(
        poller(&sup, "lis1-core2").await.expect("core2").get_id(),
        untouched,
        "an unchanged router keeps its poller"
    );
    sup.stop(None);
    isp.shutdown().await;
}

#[tokio::test]
async fn a_poller_that_keeps_dying_is_parked_as_a_crash_loop() {
    let isp = isp().await;
    let dir = tempfile::tempdir().expect("dir");
    let (sup, metrics) = start(&isp, vec![router(&isp, "evr1-agg1")], dir.path()).await;
    let mut current = poller(&sup, "evr1-agg1").await.expect("poller");
    for _ in 0..4 {
        current.kill();
        current = restarted(&sup, "evr1-agg1", &current, Duration::from_secs(10))
            .await
            .expect("restarted");
    }
    current.kill();
    // The fifth death within a minute is a crash loop: no restart for minutes.
    assert!(
        restarted(&sup, "evr1-agg1", &current, Duration::from_secs(2))
            .await
            .is_none(),
        "parked"
    );
    assert_eq!(metrics.events().count_named("ActorCrashLooping"), 1);
    sup.stop(None);
    isp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_targets_change_live_and_show_in_the_state_endpoint() {
    use ispvm_agent::probe::config::ProbeTargetConfig;
    let isp = isp().await;
    let dir = tempfile::tempdir().expect("dir");
    let target = |key: &str, addr: &str| {
        let mut t = ProbeTargetConfig::icmp(key, addr);
        t.interval_ms = 2_000;
        t
    };
    let mut config = AgentConfig {
        agent_id: "agent-t".into(),
        tenant_id: "t".into(),
        site: "lis1".into(),
        data_dir: dir.path().to_owned(),
        source_address: None,
        server: ServerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9).into(),
            server_name: "localhost".into(),
            https_addr: None,
        },
        tls: TlsPaths {
            ca: "unused".into(),
            cert: "unused".into(),
            key: "unused".into(),
        },
        http: ispvm_agent::config::HttpConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        },
        poll: PollConfig::default(),
        uplink: Default::default(),
        buffer: Default::default(),
        probes: Default::default(),
        cluster: Default::default(),
        syslog: Default::default(),
        routers: vec![router(&isp, "lis1-rr1")],
    };
    config.probes.targets.push(target("lo-a", "127.0.0.1"));
    let agent = ispvm_agent::start_with_tls(config.clone(), tls())
        .await
        .expect("agent");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = get_json(agent.http_addr, "/v1/state").await;
        if state["probe_targets"]["lo-a"]["stats"].is_object()
            || state["probe_targets"]["lo-a"].is_object()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no round for lo-a: {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A traceroute on demand from this agent: loopback is one hop away.
    let trace = get_json(
        agent.http_addr,
        "/v1/traceroute/lo-a?max_hops=4&timeout_ms=500",
    )
    .await;
    let hops = trace["hops"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        hops.last().map(|h| h["address"].clone()),
        Some(serde_json::json!("127.0.0.1")),
        "{trace}"
    );
    let missing = get_json(agent.http_addr, "/v1/traceroute/nope").await;
    assert!(
        missing["error"]
            .as_str()
            .is_some_and(|e| e.contains("nope")),
        "{missing}"
    );
    config.probes.targets = vec![target("lo-b", "127.0.0.2")];
    agent.reload(config).expect("reload");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = get_json(agent.http_addr, "/v1/state").await;
        let targets = state["probe_targets"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if targets.contains_key("lo-b") && !targets.contains_key("lo-a") {
            assert!(
                state["routers"].get("lis1-rr1").is_some(),
                "routers untouched: {state}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "targets did not change: {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    agent.shutdown().await;
    isp.shutdown().await;
}
