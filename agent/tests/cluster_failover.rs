//! Five agent processes in one gossip cluster (QUIC, mutual TLS, loopback) share the
//! routers of the virtual ISP; one is killed with SIGKILL and the survivors poll its
//! routers again. The detection and re-poll times are printed (`--nocapture`).

use ispvm_agent::cluster::ClusterConfig;
use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, RouterConfig, ServerConfig, TlsPaths,
};
use ispvm_sim::{Topology, VirtualIsp};
use ispvm_transport::pki::{CertKind, Pki};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const GOSSIP_MS: u64 = 200;
const POLL_MS: u64 = 1_000;
const AGENTS: [(&str, &str); 5] = [
    ("agent-1", "lis1"),
    ("agent-2", "lis1"),
    ("agent-3", "cbr1"),
    ("agent-4", "cbr1"),
    ("agent-5", "evr1"),
];

struct Agent {
    id: String,
    http: SocketAddr,
    child: Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(client: &reqwest::Client, agent: &Agent, path: &str) -> Option<Value> {
    let url = format!("http://{}{path}", agent.http);
    client.get(url).send().await.ok()?.json().await.ok()
}

/// Routers each agent says it owns.
async fn mine(client: &reqwest::Client, agents: &[Agent]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for a in agents {
        let owned = get(client, a, "/v1/cluster/ownership")
            .await
            .and_then(|v| {
                v["mine"].as_array().map(|m| {
                    m.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default();
        out.insert(a.id.clone(), owned);
    }
    out
}

/// Routers with a successful poll after `since_ms`, across `agents`.
async fn polled_since(
    client: &reqwest::Client,
    agents: &[Agent],
    since_ms: i64,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in agents {
        if let Some(state) = get(client, a, "/v1/state").await
            && let Some(routers) = state["routers"].as_object()
        {
            for (key, st) in routers {
                if st["last_ok_ms"].as_i64().is_some_and(|t| t > since_ms) {
                    out.insert(key.clone());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_agent_routers_are_polled_again_by_the_survivors() {
    let dir = tempfile::tempdir().expect("dir");
    let isp = VirtualIsp::start(Topology::demo(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("virtual isp");
    let routers: Vec<RouterConfig> = isp
        .routers()
        .iter()
        .map(|r| RouterConfig {
            key: r.spec.id.clone(),
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
        })
        .collect();
    let all: BTreeSet<String> = routers.iter().map(|r| r.key.clone()).collect();

    let pki = Pki::new(dir.path().join("pki"));
    pki.init("test CA", 30).expect("ca");
    let gossip: Vec<SocketAddr> = AGENTS
        .iter()
        .map(|_| ispvm_cluster::testing::free_udp_addr().expect("udp port"))
        .collect();
    let mut agents = Vec::new();
    for (i, (id, site)) in AGENTS.iter().enumerate() {
        let issued = pki
            .issue(CertKind::Agent, id, Some("acme"), &[], &[], 30)
            .expect("cert");
        let http = SocketAddr::from(([127, 0, 0, 1], ispvm_testkit::free_tcp_port()));
        let config = AgentConfig {
            agent_id: (*id).into(),
            tenant_id: "acme".into(),
            site: (*site).into(),
            data_dir: dir.path().join(id),
            source_address: None,
            // No server answers: batches wait in the disk buffer, polling goes on.
            server: ServerConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 9)).into(),
                server_name: "localhost".into(),
                https_addr: None,
            },
            tls: TlsPaths {
                ca: pki.ca_cert_path(),
                cert: issued.cert,
                key: issued.key,
            },
            http: HttpConfig { listen: http },
            poll: PollConfig {
                interval_ms: POLL_MS,
                jitter_ms: 0,
                ..PollConfig::default()
            },
            uplink: Default::default(),
            buffer: Default::default(),
            syslog: Default::default(),
            probes: Default::default(),
            cluster: ClusterConfig {
                enabled: true,
                listen: gossip[i],
                seeds: gossip.iter().take(2).map(|a| a.to_string()).collect(),
                gossip_interval_ms: GOSSIP_MS,
                ..ClusterConfig::default()
            },
            routers: routers.clone(),
        };
        let path = dir.path().join(format!("{id}.toml"));
        std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write");
        let child = Command::new(env!("CARGO_BIN_EXE_ispvm-agent"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent");
        agents.push(Agent {
            id: (*id).into(),
            http,
            child,
        });
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");

    // Converged: every router owned by exactly one agent, and all of them polled.
    let start = Instant::now();
    let mut owners = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(60) {
        owners = mine(&client, &agents).await;
        let mut count: BTreeMap<&String, usize> = BTreeMap::new();
        for owned in owners.values() {
            for r in owned {
                *count.entry(r).or_default() += 1;
            }
        }
        if count.len() == all.len() && count.values().all(|n| *n == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("converged after {:?}: {owners:?}", start.elapsed());
    // The victim: whichever lis1 agent polls more; the other must take its routers.
    let (victim, heir) = if owners["agent-1"].len() >= owners["agent-2"].len() {
        ("agent-1", "agent-2")
    } else {
        ("agent-2", "agent-1")
    };
    let orphans: BTreeSet<String> = owners[victim].iter().cloned().collect();
    assert!(!orphans.is_empty(), "{victim} owns nothing: {owners:?}");
    for (agent, owned) in &owners {
        let site = AGENTS
            .iter()
            .find(|(a, _)| a == agent)
            .map(|(_, s)| *s)
            .expect("site");
        for r in owned {
            assert!(r.starts_with(site), "{agent} ({site}) owns {r}");
        }
    }
    let settled = Instant::now();
    while polled_since(&client, &agents, 0).await != all {
        assert!(
            settled.elapsed() < Duration::from_secs(30),
            "not every router polled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGKILL the victim.
    let at = agents.iter().position(|a| a.id == victim).expect("victim");
    let mut victim_agent = agents.remove(at);
    let killed_ms = ispvm_proto::time::now_ms();
    let killed = Instant::now();
    victim_agent.child.kill().expect("SIGKILL");
    let _ = victim_agent.child.wait();

    let mut detected = None;
    let mut repolled = None;
    while killed.elapsed() < Duration::from_secs(30) && (detected.is_none() || repolled.is_none()) {
        if detected.is_none() {
            let mut all_see_dead = true;
            for a in &agents {
                let dead = get(&client, a, "/v1/cluster/members")
                    .await
                    .is_some_and(|v| {
                        v["members"].as_array().is_some_and(|ms| {
                            ms.iter()
                                .any(|m| m["agent"] == victim && m["state"] == "dead")
                        })
                    });
                all_see_dead &= dead;
            }
            if all_see_dead {
                detected = Some(killed.elapsed());
            }
        }
        if repolled.is_none() {
            let polled = polled_since(&client, &agents, killed_ms).await;
            if orphans.iter().all(|r| polled.contains(r)) {
                repolled = Some(killed.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detected = detected.expect("survivors never declared the victim dead");
    let repolled = repolled.expect("the victim's routers were not polled again");
    println!(
        "SIGKILL of {victim}: declared dead by every survivor after {detected:?}; its {} routers \
         ({orphans:?}) polled again by survivors after {repolled:?} (gossip {GOSSIP_MS} ms, \
         phi 8, poll interval {POLL_MS} ms)",
        orphans.len()
    );
    // A survivor starts polling as soon as it declares the victim dead; the first poll
    // of a new poller follows within one poll interval (plus the connect and the poll).
    assert!(
        repolled <= detected + Duration::from_millis(POLL_MS * 2 + 1_000),
        "re-poll {repolled:?} too long after detection {detected:?}"
    );
    // The orphans went to the other lis1 agent (site affinity).
    let after = mine(&client, &agents).await;
    for r in &orphans {
        assert!(
            after[heir].contains(r),
            "{r} not taken by {heir}: {after:?}"
        );
    }
    isp.shutdown().await;
}
