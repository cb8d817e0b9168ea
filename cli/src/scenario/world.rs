//! The world a scenario runs in: the virtual ISP, the server on a temporary store, and
//! the real agents, every connection following the live network.
//!
//! Each agent gets its own loopback source address attached to its router; the server
//! sits behind a relay attached to its router; each agent's gossip port sits behind a
//! relay attached to the agent's router. Routers answer the agent's API sessions and
//! UDP echoes only along a path of up links and routers (`ispvm_sim::paths`). Nothing of
//! the agent's or the server's own code is short-circuited.
//!
//! Time runs `speed` times faster than real time where the code allows it: the
//! simulator's hold, convergence and reboot times, the agents' poll and probe intervals,
//! the alert rules' windows, `for` and cool-down, the evaluation periods, the evidence
//! freshness, and the timeline. Everything reported is in scenario seconds.

use crate::demo::{ensure_pki, router_config};
use anyhow::Context;
use ispvm_agent::RunningAgent;
use ispvm_agent::cluster::ClusterConfig;
use ispvm_agent::config::{
    AgentConfig, HttpConfig, PollConfig, ServerConfig as AgentServer, TlsPaths,
};
use ispvm_agent::probe::{ProbeTargetConfig, ProbesConfig};
use ispvm_server::app::{RunningServer, start_with};
use ispvm_server::config::ServerConfig;
use ispvm_server::pki::Pki;
use ispvm_server::store::catalog::{
    DeviceSpec, Endpoint, ImportMode, LinkSpec, MaintenanceSpec, Scope, SiteSpec,
};
use ispvm_server::store::{Actor, Store};
use ispvm_sim::scenario::PlacedAgent;
use ispvm_sim::{Topology, VirtualIsp};
use ispvm_transport::TlsMaterial;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// The tenant a scenario's data belongs to.
pub const TENANT: &str = "scenario";

/// A running scenario world.
pub struct World {
    pub isp: VirtualIsp,
    pub server: RunningServer,
    pub store: Store,
    /// Agents still running, by id.
    pub agents: Vec<(String, RunningAgent)>,
    /// The notification channel the incidents page.
    pub pager: super::pager::Pager,
    pub speed: f64,
}

/// `ms` of scenario time in real time, at least `floor_ms`.
pub fn real_ms(ms: u64, speed: f64, floor_ms: u64) -> u64 {
    ((ms as f64 / speed).round() as u64).max(floor_ms)
}

/// The simulator's control-plane timers in real time.
fn scale_settings(topology: &mut Topology, speed: f64) {
    let s = &mut topology.settings;
    s.bgp_hold_time_s /= speed;
    s.converge_s /= speed;
    s.reboot_s /= speed;
}

async fn inventory(store: &Store, topology: &Topology, speed: f64) -> anyhow::Result<()> {
    let ts = store.tenant(TENANT);
    let sys = Actor::system();
    for s in &topology.sites {
        let spec = SiteSpec {
            name: s.name.clone(),
            lat: Some(s.lat),
            lon: Some(s.lon),
        };
        ts.create_site(&sys, &s.id, &spec)
            .await
            .with_context(|| format!("site {}", s.id))?;
    }
    for r in &topology.routers {
        let spec = DeviceSpec {
            name: r.identity.clone(),
            site_id: r.site.clone(),
            role: r.role,
            mgmt_addr: String::new(),
            tags: Vec::new(),
            polling_profile: None,
            credential_set: None,
        };
        ts.create_device(&sys, &r.id, &spec, u64::MAX)
            .await
            .with_context(|| format!("device {}", r.id))?;
    }
    for (i, l) in topology.links.iter().enumerate() {
        let (Some((ad, ai)), Some((bd, bi))) = (l.endpoint_a(), l.endpoint_b()) else {
            continue;
        };
        let spec = LinkSpec {
            name: format!("{} - {}", l.a, l.b),
            a: Endpoint {
                device: ad.into(),
                interface: ai.into(),
            },
            b: Endpoint {
                device: bd.into(),
                interface: bi.into(),
            },
            capacity_bps: i64::try_from(l.capacity_mbps.saturating_mul(1_000_000)).ok(),
            provider: String::new(),
            medium: Default::default(),
        };
        ts.create_link(&sys, &format!("link-{i}"), &spec)
            .await
            .with_context(|| format!("link {} - {}", l.a, l.b))?;
    }
    let rules = ispvm_actors::alert::starter_pack()
        .into_iter()
        .map(|r| {
            let r = r.time_scaled(speed);
            let v = serde_json::to_value(&r).with_context(|| format!("rule {}", r.id))?;
            Ok((r, v))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ts.import_alert_rules(&sys, &rules, ImportMode::Replace)
        .await
        .context("alert rules")?;
    Ok(())
}

/// The scenario's maintenance windows, placed from time zero `t0_ms`.
async fn maintenance(
    store: &Store,
    topology: &Topology,
    speed: f64,
    t0_ms: i64,
) -> anyhow::Result<()> {
    let ts = store.tenant(TENANT);
    let sys = Actor::system();
    for (i, m) in topology.maintenance.iter().enumerate() {
        let at = |s: f64| t0_ms + (s * 1_000.0 / speed) as i64;
        let scope = match &m.site {
            Some(site) => Scope {
                sites: vec![site.clone()],
                ..Scope::default()
            },
            None => Scope {
                devices: m.devices.clone(),
                ..Scope::default()
            },
        };
        let spec = MaintenanceSpec {
            name: format!("scenario window {i}"),
            starts_ms: at(m.at_s),
            ends_ms: at(m.at_s + m.duration_s),
            scope,
            comment: String::new(),
        };
        ts.create_maintenance(&sys, &format!("mw-{i}"), &spec)
            .await
            .context("maintenance window")?;
    }
    Ok(())
}

impl World {
    /// Starts everything.
    pub async fn start(mut topology: Topology, dir: &Path, speed: f64) -> anyhow::Result<World> {
        scale_settings(&mut topology, speed);
        let placed: Vec<PlacedAgent> = topology.scenario_agents();
        let server_router = topology
            .server_router()
            .context("the scenario has no router for the server")?
            .to_owned();
        let probe_routers: Vec<String> = if topology.probe_targets.is_empty() {
            topology.routers.iter().map(|r| r.id.clone()).collect()
        } else {
            topology
                .probe_targets
                .iter()
                .filter_map(|p| p.router.clone())
                .collect()
        };
        // The runner drives the timeline itself (scaled, and agent_down is its own).
        topology.timeline.clear();
        let pki = Pki::new(dir.join("pki"));
        let ids: Vec<String> = placed.iter().map(|a| a.id.clone()).collect();
        ensure_pki(&pki, TENANT, &ids)?;

        let poll_ms = real_ms(10_000, speed, 500);
        let mut config = ServerConfig {
            data_dir: dir.to_path_buf(),
            default_tenant: TENANT.into(),
            http: ispvm_server::config::HttpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..Default::default()
            },
            quic: ispvm_server::config::QuicConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..Default::default()
            },
            // Agents deliver over QUIC through the relay only; an HTTPS ingest beside it
            // would be a way around the network (and a fixed port).
            https: ispvm_server::config::HttpsIngestConfig { listen: None },
            stale_after_ms: i64::try_from(poll_ms * 3).unwrap_or(i64::MAX),
            evaluation: ispvm_actors::tree::SchedulePeriods::scaled(speed),
            ..ServerConfig::default()
        };
        config.correlation.evidence.fresh_ms = i64::try_from(poll_ms * 3).unwrap_or(30_000);
        config.correlation.evidence.agent_silent_ms = i64::try_from(poll_ms * 3).unwrap_or(30_000);
        config.correlation.incidents.warning_window_ms =
            i64::try_from(real_ms(300_000, speed, 1_000)).unwrap_or(300_000);
        config.correlation.incidents.reopen_within_ms =
            i64::try_from(real_ms(600_000, speed, 1_000)).unwrap_or(600_000);
        config.correlation.incidents.finding_alone_ms =
            i64::try_from(real_ms(10_000, speed, 1_000)).unwrap_or(10_000);
        let key = ispvm_server::store::MasterKey::generate().0;
        config.master_key = Some(key.clone());
        let store = Store::connect(&config.database_url())
            .await
            .context("opening the scenario store")?;
        store.ensure_tenant(TENANT, "Scenario").await?;
        let pager = super::pager::Pager::start(&store, &key, TENANT).await?;
        inventory(&store, &topology, speed).await?;
        let paths = config.tls_paths();
        let tls = TlsMaterial::load(&paths.ca, &paths.cert, &paths.key)?;
        let server = start_with(&config, store.clone(), tls)
            .await
            .context("starting the server")?;

        let isp = VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
            .context("starting the virtual ISP")?;
        isp.attach("server", &server_router)
            .context("attaching the server")?;
        let uplink = isp
            .relay_udp(server.quic_addr, &server_router)
            .await
            .context("relay in front of the server")?;
        let routers: Vec<_> = isp.routers().iter().map(router_config).collect();
        let targets: Vec<ProbeTargetConfig> = isp
            .routers()
            .iter()
            .filter(|r| probe_routers.contains(&r.spec.id))
            .map(|r| {
                let mut t = ProbeTargetConfig::udp_echo(
                    r.spec.id.clone(),
                    r.echo_addr.ip().to_string(),
                    r.echo_addr.port(),
                );
                t.interval_ms = real_ms(5_000, speed, 500);
                t.timeout_ms = real_ms(1_000, speed, 200);
                t.spacing_ms = real_ms(200, speed, 20);
                t
            })
            .collect();
        // Gossip: each agent binds its own address and advertises a relay on its router.
        let mut gossip = Vec::new();
        for a in &placed {
            let ip = isp
                .attach(&a.id, &a.at)
                .with_context(|| format!("attaching {}", a.id))?;
            let port = std::net::UdpSocket::bind((ip, 0))?.local_addr()?.port();
            let listen = SocketAddr::new(ip, port);
            let advertise = isp.relay_udp(listen, &a.at).await?;
            gossip.push((ip, listen, advertise));
        }
        let mut agents = Vec::new();
        for (a, (ip, listen, advertise)) in placed.iter().zip(&gossip) {
            let issued = pki.paths(&a.id);
            let config = AgentConfig {
                agent_id: a.id.clone(),
                tenant_id: TENANT.into(),
                site: a.site.clone(),
                data_dir: dir.join("agents").join(&a.id),
                server: AgentServer {
                    addr: uplink.into(),
                    server_name: crate::demo::SERVER_NAME.into(),
                    https_addr: None,
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
                    interval_ms: poll_ms,
                    jitter_ms: poll_ms / 10,
                    connect_timeout_ms: real_ms(5_000, speed, 500),
                    command_timeout_ms: real_ms(10_000, speed, 1_000),
                    breaker_open_ms: real_ms(30_000, speed, 500),
                    breaker_open_max_ms: real_ms(600_000, speed, 1_000),
                    ..PollConfig::default()
                },
                uplink: Default::default(),
                buffer: Default::default(),
                syslog: Default::default(),
                probes: ProbesConfig {
                    targets: targets.clone(),
                    ..ProbesConfig::default()
                },
                cluster: ClusterConfig {
                    enabled: true,
                    listen: *listen,
                    advertise: Some(*advertise),
                    seeds: gossip
                        .iter()
                        .filter(|g| g.1 != *listen)
                        .map(|g| g.2.to_string())
                        .collect(),
                    ..ClusterConfig::default()
                },
                routers: routers.clone(),
                source_address: Some(*ip),
            };
            let agent = ispvm_agent::start(config)
                .await
                .with_context(|| format!("starting {}", a.id))?;
            agents.push((a.id.clone(), agent));
        }
        Ok(World {
            isp,
            server,
            store,
            agents,
            pager,
            speed,
        })
    }

    /// Once the agents have reported the routers' interfaces: flags the topology's
    /// uplinks (an operator's job in production), places the maintenance windows from
    /// scenario time zero, and has the server take both.
    pub async fn prepare(&self, topology: &Topology, t0_ms: i64) -> anyhow::Result<()> {
        let ts = self.store.tenant(TENANT);
        let sys = Actor::system();
        for r in &topology.routers {
            for i in r.interfaces.iter().filter(|i| i.uplink) {
                if let Err(e) = ts.set_interface_uplink(&sys, &r.id, &i.name, true).await {
                    tracing::warn!(router = %r.id, interface = %i.name, error = %e, "uplink not flagged");
                }
            }
        }
        maintenance(&self.store, topology, self.speed, t0_ms).await?;
        self.server.tree.reload(TENANT);
        Ok(())
    }

    /// Kills an agent as a crash would (no leave message).
    pub async fn kill_agent(&mut self, id: &str) -> bool {
        match self.agents.iter().position(|(a, _)| a == id) {
            Some(i) => {
                let (_, agent) = self.agents.swap_remove(i);
                agent.kill().await;
                true
            }
            None => false,
        }
    }

    pub async fn shutdown(self) {
        for (_, a) in self.agents {
            a.shutdown().await;
        }
        self.server.shutdown().await;
        self.isp.shutdown().await;
    }
}
