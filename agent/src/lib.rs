//! The ISPVisualMonitor PoP agent.
//!
//! It runs next to the routers of one PoP: polls them over the RouterOS API ([`routeros`])
//! and SNMP ([`snmp`]), probes targets by ICMP and TCP ([`probe`]), takes syslog
//! ([`syslog`]), turns what they report into canonical metrics and events, keeps them in a
//! crash-safe disk buffer ([`buffer`]) and delivers them to the server in numbered
//! batches over QUIC with mutual TLS, HTTPS as the fallback ([`uplink`]). With other
//! agents of its tenant it forms a gossip cluster that shares liveness, router ownership
//! and reachability ([`cluster`]). Every router and probe target is a supervised actor;
//! see [`actors`].

pub mod actors;
pub mod breaker;
pub mod buffer;
pub mod cluster;
pub mod config;
pub mod data_dir;
pub mod http;
pub mod internal_events;
pub mod probe;
pub mod rates;
pub mod routeros;
pub mod snmp;
pub mod source_address;
pub mod state;
pub mod syslog;
#[cfg(feature = "testsuite")]
pub mod testing;
pub mod uplink;

use actors::{AgentSupervisor, SupervisorArgs, SupervisorMsg};
use config::{AgentConfig, RouterConfig};
use internal_events::AgentMetrics;
use ispvm_transport::{TlsError, TlsMaterial};
use ractor::{Actor, ActorRef};
use state::AgentState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("TLS material: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the supervision tree: {0}")]
    Spawn(#[source] ractor::SpawnErr),
    #[error(transparent)]
    DataDir(#[from] data_dir::LockError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot join the agent cluster: {0}")]
    Cluster(#[from] ispvm_cluster::gossip::GossipError),
}

/// A started agent; stop it with [`RunningAgent::shutdown`].
pub struct RunningAgent {
    pub agent_id: String,
    /// Released when the agent is gone (shut down or dropped).
    _data_dir_lock: data_dir::DataDirLock,
    /// The agent's own metrics (also served on `/metrics`).
    pub metrics: Arc<AgentMetrics>,
    /// Where `/healthz`, `/metrics` and `/v1/state` answer.
    pub http_addr: SocketAddr,
    /// Membership of the agents' cluster, when `[cluster] enabled = true`.
    pub cluster: Option<Arc<cluster::ClusterHandle>>,
    site: String,
    supervisor: ActorRef<SupervisorMsg>,
    supervisor_task: JoinHandle<()>,
    http_stop: oneshot::Sender<()>,
    http_task: JoinHandle<()>,
}

/// Starts the agent: supervision tree, pollers, uplink and HTTP endpoint.
pub async fn start(config: AgentConfig) -> Result<RunningAgent, AgentError> {
    let tls = TlsMaterial::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    start_with_tls(config, tls).await
}

/// Starts the agent with TLS material already in memory.
pub async fn start_with_tls(
    config: AgentConfig,
    tls: TlsMaterial,
) -> Result<RunningAgent, AgentError> {
    config.validate()?;
    // Before anything touches the buffer: one agent per data directory.
    let data_dir_lock = data_dir::DataDir::new(&config.data_dir).lock()?;
    let internal_events::AllMetrics {
        agent: metrics,
        syslog: syslog_metrics,
        probes: probe_metrics,
        cluster: cluster_metrics,
    } = internal_events::AllMetrics::new();
    let state = Arc::new(AgentState::default());
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| AgentError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| AgentError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let http_state = http::HttpState {
        agent_id: config.agent_id.clone(),
        tenant_id: config.tenant_id.clone(),
        site: config.site.clone(),
        metrics: metrics.clone(),
        state: state.clone(),
        supervisor: None,
        cluster: None,
    };
    let agent_id = config.agent_id.clone();
    let site = config.site.clone();
    // In a cluster the supervisor starts with no routers: ownership hands them out.
    let mut config = config;
    let clustered = config.cluster.enabled.then(|| {
        (
            config.clone(),
            std::mem::take(&mut config.routers),
            tls.clone(),
        )
    });
    let agent_metrics = metrics.clone();
    let agent_state = state.clone();
    let (supervisor, handle) = Actor::spawn(
        None,
        AgentSupervisor,
        SupervisorArgs {
            config,
            tls,
            metrics,
            syslog_metrics,
            probe_metrics,
            state,
        },
    )
    .await
    .map_err(AgentError::Spawn)?;
    let supervisor_task = tokio::spawn(async move {
        let _ = handle.await;
    });
    let cluster = match clustered {
        Some((agent_config, routers, tls)) => {
            let joined = cluster::ClusterHandle::start(
                &agent_config,
                routers,
                tls,
                supervisor.clone(),
                agent_state,
                cluster_metrics,
            )
            .await;
            match joined {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    supervisor.stop(None);
                    return Err(e.into());
                }
            }
        }
        None => None,
    };
    let app = http::router(http::HttpState {
        supervisor: Some(supervisor.clone()),
        cluster: cluster.clone(),
        ..http_state
    });
    let (http_stop, stopped) = oneshot::channel::<()>();
    let http_task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "agent HTTP server failed");
        }
    });
    tracing::info!(agent = %agent_id, http = %http_addr, "agent started");
    Ok(RunningAgent {
        agent_id,
        _data_dir_lock: data_dir_lock,
        metrics: agent_metrics,
        http_addr,
        cluster,
        site,
        supervisor,
        supervisor_task,
        http_stop,
        http_task,
    })
}

impl RunningAgent {
    /// Where the syslog receiver listens, when it runs (ports may be chosen by the OS).
    pub async fn syslog_addrs(&self) -> Option<actors::syslog::SyslogAddrs> {
        let children = ractor::call_t!(self.supervisor, SupervisorMsg::Children, 5_000).ok()?;
        let (_, cell) = children
            .into_iter()
            .find(|(k, _)| *k == actors::supervisor::ChildKey::Syslog)?;
        let syslog: ractor::ActorRef<actors::syslog::SyslogMsg> = cell.into();
        ractor::call_t!(syslog, actors::syslog::SyslogMsg::Addrs, 5_000).ok()
    }

    /// Replaces the set of routers this agent polls (in a cluster: may poll, as
    /// ownership decides), live.
    pub fn set_routers(&self, routers: Vec<RouterConfig>) {
        match &self.cluster {
            Some(c) => c.set_routers(&self.site, routers),
            None => {
                let _ = self.supervisor.cast(SupervisorMsg::SetRouters(routers));
            }
        }
    }

    /// Applies a reloaded configuration: routers and probe targets change live (pollers
    /// and probers start and stop); other settings need a restart and are reported.
    pub fn reload(&self, config: AgentConfig) -> Result<(), AgentError> {
        config.validate()?;
        self.set_routers(config.routers);
        let _ = self
            .supervisor
            .cast(SupervisorMsg::SetTargets(config.probes.targets));
        tracing::info!("configuration reloaded: routers and probe targets applied");
        Ok(())
    }

    /// Completes if the supervision tree stops on its own (an escalated crash loop); the
    /// binary then exits non-zero so its service manager restarts it.
    pub async fn failed(&mut self) {
        let _ = (&mut self.supervisor_task).await;
    }

    /// Dies as a crashed process does: no leave message, nothing flushed or delivered
    /// (the disk buffer keeps what it held). For failure drills and the scenario
    /// runner's `agent_down`.
    pub async fn kill(self) {
        if let Some(c) = &self.cluster {
            c.abort();
        }
        self.supervisor.kill();
        self.supervisor_task.abort();
        let _ = self.http_stop.send(());
        self.http_task.abort();
        tracing::warn!(agent = %self.agent_id, "agent killed");
    }

    /// Stops polling, delivers what is queued (bounded wait), and stops. In a cluster the
    /// agent first announces its leave so its routers move without waiting for the
    /// failure detector.
    pub async fn shutdown(self) {
        if let Some(c) = &self.cluster {
            c.leave().await;
        }
        let stopped = ractor::call_t!(self.supervisor, SupervisorMsg::Shutdown, 15_000);
        if let Err(e) = stopped {
            tracing::warn!(error = %e, "agent supervisor did not stop cleanly");
        }
        self.supervisor.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.supervisor_task).await;
        let _ = self.http_stop.send(());
        let _ = self.http_task.await;
        tracing::info!(agent = %self.agent_id, "agent stopped");
    }
}
