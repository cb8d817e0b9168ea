//! `ispvm demo`: a virtual ISP monitored end to end, in one process.
//!
//! It starts the ready-made ISP topology of the simulator (every router answering the
//! RouterOS API on its own loopback port), one agent per PoP (each its own supervision
//! tree, polling its PoP's routers), and the server on the embedded SQLite store. Agents
//! reach the server over QUIC with mutual TLS, with certificates the dev PKI makes in the
//! data directory on first start; a second start reuses the directory.
//!
//! The agents form one gossip cluster: each is given every router and polls the ones
//! of its own PoP (another PoP's agent takes them over if it dies), and each probes the
//! RouterOS API of the core and edge routers over TCP, so `/api/v1/cluster/reachability`
//! shows a matrix seen from three vantages.

use anyhow::Context;
use ispvm_agent::RunningAgent;
use ispvm_agent::cluster::ClusterConfig;
use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, RouterConfig, ServerConfig as AgentServer, TlsPaths,
};
use ispvm_agent::probe::{ProbeKind, ProbeTargetConfig, ProbesConfig};
use ispvm_proto::DeviceRole;
use ispvm_server::app::{RunningServer, start_with};
use ispvm_server::config::ServerConfig;
use ispvm_server::pki::{CertKind, Pki};
use ispvm_server::store::{MasterKey, Store};
use ispvm_sim::{RunningRouter, Topology, VirtualIsp};
use ispvm_transport::TlsMaterial;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The tenant the demo's data belongs to.
pub const DEMO_TENANT: &str = "demo";
/// The name agents expect on the server certificate.
pub(crate) const SERVER_NAME: &str = "localhost";

/// What the demo runs with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// HTTP address of the server's API.
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Fast-tier poll interval of the demo agents.
    pub poll_interval_ms: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("demo-data"),
            poll_interval_ms: 5_000,
        }
    }
}

/// A running demo; stop it with [`RunningDemo::shutdown`].
pub struct RunningDemo {
    pub server: RunningServer,
    pub agents: Vec<RunningAgent>,
    pub isp: VirtualIsp,
    /// Where the administrator's password is, for the banner.
    pub admin_password_file: PathBuf,
}

/// File in the data directory holding the demo's master key.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The master key: `ISPVM_MASTER_KEY`, else the one in the data directory, made on the
/// first start.
fn demo_master_key(data_dir: &std::path::Path) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var("ISPVM_MASTER_KEY") {
        return MasterKey::from_base64(&text).context("ISPVM_MASTER_KEY");
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    if path.exists() {
        return MasterKey::from_file(&path).with_context(|| format!("{}", path.display()));
    }
    let (key, text) = MasterKey::generate();
    ispvm_server::app::write_private(&path, &text)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// How an agent polls a simulated router: its RouterOS API address and login.
pub fn router_config(r: &RunningRouter) -> RouterConfig {
    RouterConfig {
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
    }
}

/// The probe targets every demo agent watches: the RouterOS API port of each core and
/// edge router (TCP, so no ICMP privilege is needed).
fn demo_probe_targets(isp: &VirtualIsp) -> Vec<ProbeTargetConfig> {
    isp.routers()
        .iter()
        .filter(|r| matches!(r.spec.role, DeviceRole::Core | DeviceRole::Edge))
        .map(|r| ProbeTargetConfig {
            key: format!("api-{}", r.spec.id),
            address: r.addr.ip().to_string(),
            kind: ProbeKind::Tcp {
                port: r.addr.port(),
            },
            interval_ms: 5_000,
            count: 3,
            spacing_ms: 200,
            timeout_ms: 1_000,
            payload_size: 56,
        })
        .collect()
}

/// Makes the CA, the server certificate and one agent certificate per site, unless the
/// data directory has them from an earlier start.
pub(crate) fn ensure_pki(pki: &Pki, tenant: &str, agent_ids: &[String]) -> anyhow::Result<()> {
    if !pki.has_ca() {
        pki.init("ISPVisualMonitor demo CA", 3650)
            .context("creating the demo CA")?;
    } else if !pki.crl_path().exists() {
        // A data directory from before `init` wrote an empty list.
        pki.refresh_crl()
            .context("writing the demo CA's revocation list")?;
    }
    pki.ensure(
        CertKind::Server,
        "server",
        None,
        &[SERVER_NAME.to_owned()],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )
    .context("issuing the server certificate")?;
    for id in agent_ids {
        pki.ensure(
            CertKind::Agent,
            id,
            Some(tenant),
            std::slice::from_ref(id),
            &[],
        )
        .with_context(|| format!("issuing the certificate of {id}"))?;
    }
    Ok(())
}

/// Starts the virtual ISP, the server and the agents.
pub async fn start(options: &DemoOptions) -> anyhow::Result<RunningDemo> {
    let data_dir = &options.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let topology = Topology::demo();
    let sites: Vec<String> = topology
        .sites
        .iter()
        .filter(|s| topology.routers.iter().any(|r| r.site == s.id))
        .map(|s| s.id.clone())
        .collect();
    let agent_ids: Vec<String> = sites.iter().map(|s| format!("agent-{s}")).collect();
    let pki = Pki::new(data_dir.join("pki"));
    ensure_pki(&pki, DEMO_TENANT, &agent_ids)?;

    let config = ServerConfig {
        data_dir: data_dir.clone(),
        default_tenant: DEMO_TENANT.into(),
        http: ispvm_server::config::HttpConfig {
            listen: options.listen,
            ..Default::default()
        },
        quic: ispvm_server::config::QuicConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Default::default()
        },
        // Three missed demo polls.
        stale_after_ms: i64::try_from(options.poll_interval_ms.saturating_mul(3))
            .unwrap_or(i64::MAX),
        https: ispvm_server::config::HttpsIngestConfig {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
        master_key: Some(demo_master_key(data_dir)?),
        ..ServerConfig::default()
    };
    let store = Store::connect(&config.database_url())
        .await
        .context("opening the demo store")?;
    if store.ensure_tenant(DEMO_TENANT, "Demo ISP").await? {
        store.tenant(DEMO_TENANT).seed_starter_rules().await?;
    }
    ispvm_server::app::bootstrap_admin(&store, &config, std::env::var("ISPVM_ADMIN_PASSWORD").ok())
        .await
        .context("creating the demo administrator")?;
    for s in &topology.sites {
        store
            .tenant(DEMO_TENANT)
            .upsert_site(&s.id, &s.name, Some(s.lat), Some(s.lon))
            .await?;
    }
    let paths = config.tls_paths();
    let tls = TlsMaterial::load(&paths.ca, &paths.cert, &paths.key)?;
    let server = start_with(&config, store, tls)
        .await
        .context("starting the server")?;

    let isp = VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .context("starting the virtual ISP")?;
    let mut agents = Vec::new();
    let gossip: Vec<SocketAddr> = agent_ids
        .iter()
        .map(|_| unused_udp_addr())
        .collect::<std::io::Result<_>>()
        .context("finding free UDP ports for gossip")?;
    let routers: Vec<RouterConfig> = isp.routers().iter().map(router_config).collect();
    let probes = ProbesConfig {
        targets: demo_probe_targets(&isp),
        ..ProbesConfig::default()
    };
    for ((site, agent_id), listen) in sites.iter().zip(&agent_ids).zip(&gossip) {
        let issued = pki.paths(agent_id);
        let agent_config = AgentConfig {
            agent_id: agent_id.clone(),
            tenant_id: DEMO_TENANT.into(),
            site: site.clone(),
            data_dir: data_dir.join("agents").join(agent_id),
            source_address: None,
            server: AgentServer {
                addr: server.quic_addr.into(),
                server_name: SERVER_NAME.into(),
                https_addr: server.https_addr,
            },
            tls: TlsPaths {
                ca: pki.ca_cert_path(),
                cert: issued.cert,
                key: issued.key,
            },
            http: HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            poll: PollConfig {
                interval_ms: options.poll_interval_ms,
                jitter_ms: 1_000,
                ..PollConfig::default()
            },
            uplink: Default::default(),
            buffer: Default::default(),
            syslog: Default::default(),
            probes: probes.clone(),
            cluster: ClusterConfig {
                enabled: true,
                listen: *listen,
                seeds: gossip
                    .iter()
                    .filter(|a| *a != listen)
                    .map(SocketAddr::to_string)
                    .collect(),
                ..ClusterConfig::default()
            },
            routers: routers.clone(),
        };
        agents.push(
            ispvm_agent::start(agent_config)
                .await
                .with_context(|| format!("starting {agent_id}"))?,
        );
    }
    Ok(RunningDemo {
        server,
        agents,
        isp,
        admin_password_file: data_dir.join(ispvm_server::app::ADMIN_PASSWORD_FILE),
    })
}

impl RunningDemo {
    /// A short guide to what is running and where to look.
    pub fn banner(&self) -> String {
        let api = self.server.http_addr;
        let password = if std::env::var("ISPVM_ADMIN_PASSWORD").is_ok_and(|p| !p.is_empty()) {
            "$ISPVM_ADMIN_PASSWORD".to_owned()
        } else {
            format!("$(cat {})", self.admin_password_file.display())
        };
        let mut s = format!(
            "ISPVisualMonitor demo: {} simulated routers in {} sites, {} agents\n\
             \x20 log in    TOKEN=$(curl -s http://{api}/api/v1/auth/login -H 'content-type: application/json' \\\n\
             \x20             -d \"{{\\\"tenant\\\":\\\"{DEMO_TENANT}\\\",\\\"username\\\":\\\"admin\\\",\\\"password\\\":\\\"{password}\\\"}}\" | jq -r .token)\n\
             \x20 devices   curl -s -H \"Authorization: Bearer $TOKEN\" http://{api}/api/v1/devices\n\
             \x20 also      /api/v1/sites /api/v1/agents /api/v1/links /api/v1/alert-rules  (API: http://{api}/api/v1/openapi.json)\n\
             \x20 cluster   /api/v1/cluster /api/v1/cluster/ownership /api/v1/cluster/reachability /api/v1/cluster/convergence\n\
             \x20 metrics   http://{api}/metrics   health http://{api}/healthz\n",
            self.isp.routers().len(),
            self.isp.topology().sites.len(),
            self.agents.len(),
        );
        for a in &self.agents {
            s.push_str(&format!(
                "  {:<16} http://{}/v1/state  http://{}/v1/cluster  http://{}/metrics\n",
                a.agent_id, a.http_addr, a.http_addr, a.http_addr
            ));
        }
        s.push_str("Press Ctrl-C to stop.");
        s
    }

    /// Stops agents first (they deliver what they hold), then the server and the ISP.
    pub async fn shutdown(self) {
        for a in self.agents {
            a.shutdown().await;
        }
        self.server.shutdown().await;
        self.isp.shutdown().await;
    }
}

/// A loopback UDP address nothing listens on right now, for an agent's gossip.
fn unused_udp_addr() -> std::io::Result<SocketAddr> {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}
