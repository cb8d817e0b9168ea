//! A real agent placed in the virtual ISP by its `source_address`: its UDP echo probe
//! and its RouterOS session toward a router of another PoP work while the path is up,
//! and fail when that PoP is partitioned from the agent's router, through the agent's
//! own sockets (nothing of the agent is short-circuited).

#[path = "support/agent_kit.rs"]
mod agent_kit;

use agent_kit::{get_json, tls};
use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, RouterConfig, ServerConfig, TlsPaths,
};
use ispvm_agent::probe::ProbeTargetConfig;
use ispvm_proto::time::now_ms;
use ispvm_sim::{Fault, Topology, VirtualIsp};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TARGET: &str = "evr1-acc1";

fn config(isp: &VirtualIsp, source: IpAddr, dir: &std::path::Path) -> AgentConfig {
    let r = isp.router(TARGET).expect("router");
    let mut probe = ProbeTargetConfig::udp_echo(
        "echo-evr1-acc1",
        r.echo_addr.ip().to_string(),
        r.echo_addr.port(),
    );
    probe.interval_ms = 1_000;
    probe.count = 5;
    probe.spacing_ms = 50;
    probe.timeout_ms = 300;
    let mut config = AgentConfig {
        agent_id: "agent-lis".into(),
        tenant_id: "t".into(),
        site: "lis1".into(),
        data_dir: dir.to_owned(),
        source_address: Some(source),
        // Nothing listens there: the uplink keeps retrying, which is fine here.
        server: ServerConfig {
            addr: SocketAddr::new(LOCALHOST, 9).into(),
            server_name: "localhost".into(),
            https_addr: None,
        },
        tls: TlsPaths {
            ca: "unused".into(),
            cert: "unused".into(),
            key: "unused".into(),
        },
        http: HttpConfig {
            listen: SocketAddr::new(LOCALHOST, 0),
        },
        poll: PollConfig {
            interval_ms: 500,
            jitter_ms: 0,
            connect_timeout_ms: 400,
            command_timeout_ms: 400,
            // Keep polling through the outage so recovery shows at once.
            breaker_failures: 1_000,
            ..PollConfig::default()
        },
        uplink: Default::default(),
        buffer: Default::default(),
        probes: Default::default(),
        cluster: Default::default(),
        syslog: Default::default(),
        routers: vec![RouterConfig {
            key: TARGET.into(),
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
        }],
    };
    config.probes.targets.push(probe);
    config
}

/// Waits for a probe round that started after `after_ms` and returns its loss.
async fn loss_of_a_round_after(http: SocketAddr, after_ms: i64) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let state = get_json(http, "/v1/state").await;
        let round = &state["probe_targets"]["echo-evr1-acc1"];
        if round["ts_ms"].as_i64().is_some_and(|ts| ts > after_ms)
            && let Some(loss) = round["stats"]["loss_pct"].as_f64()
        {
            return loss;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no round after {after_ms}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the router's poll state satisfies `ok`.
async fn router_state_until(
    http: SocketAddr,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let state = get_json(http, "/v1/state").await;
        let router = &state["routers"][TARGET];
        if ok(router) {
            return router.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_a_partitioned_pop_through_its_own_probes_and_polls() {
    let isp = VirtualIsp::start(Topology::demo(), LOCALHOST)
        .await
        .expect("ISP");
    let source = isp.attach("agent-lis", "lis1-core1").expect("attach");
    let dir = tempfile::tempdir().expect("dir");
    let agent = ispvm_agent::start_with_tls(config(&isp, source, dir.path()), tls())
        .await
        .expect("agent");
    let http = agent.http_addr;

    let started = now_ms();
    assert_eq!(loss_of_a_round_after(http, started).await, 0.0);
    router_state_until(http, "a first good poll", |r| r["last_ok_ms"].is_i64()).await;

    let cut_at = now_ms();
    let partition = isp
        .apply(Fault::SitePartition {
            site: "evr1".into(),
        })
        .expect("partition");
    assert_eq!(loss_of_a_round_after(http, cut_at).await, 100.0);
    let failing = router_state_until(http, "polls failing behind the partition", |r| {
        r["consecutive_failures"].as_u64().is_some_and(|n| n >= 2)
    })
    .await;
    assert!(
        failing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out") || e.contains("timeout")),
        "silence, not a reset: {failing}"
    );

    // The same probe from outside the model still gets its answers: it is the agent's
    // source address that placed it behind the partition.
    let outside = ispvm_agent::probe::udp_echo::udp_echo_round(
        isp.router(TARGET).expect("router").echo_addr,
        None,
        &ProbeTargetConfig::udp_echo("x", "127.0.0.1", 7).plan(),
    )
    .await
    .expect("round");
    assert_eq!(outside.loss_pct, 0.0);

    isp.clear(partition).expect("clear");
    let healed = now_ms();
    assert_eq!(loss_of_a_round_after(http, healed).await, 0.0);
    router_state_until(http, "polls back after the heal", |r| {
        r["last_ok_ms"].as_i64().is_some_and(|t| t > healed)
    })
    .await;
    agent.shutdown().await;
    isp.shutdown().await;
}
