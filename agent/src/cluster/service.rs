//! The agent's side of the cluster: joins gossip, keeps the router assignment current,
//! starts and stops pollers as ownership moves (each handover also goes to the server as
//! an `ownership_change` event), publishes its load and probe verdicts for the other
//! agents, and hands the uplink a cluster report every few seconds.

use super::config::ClusterConfig;
use super::report::{self, REPORT_EVERY, ReportSettings};
use crate::actors::SupervisorMsg;
use crate::actors::uplink::UplinkMsg;
use crate::config::{AgentConfig, CollectorKind, RouterConfig};
use crate::internal_events::InternalEvent;
use crate::internal_events::cluster::{ClusterMetrics, ReportEntriesLeftOut};
use crate::state::AgentState;
use ispvm_cluster::assignment::{
    self, Assignment, Handover, HandoverKind, RouterSpec, SharedAssignment,
};
use ispvm_cluster::gossip::{GossipConfig, GossipError, GossipNode, Membership};
use ispvm_cluster::node_state::{Load, Reach};
use ispvm_cluster::ownership::{Capabilities, Capability};
use ispvm_proto::time::now_ms;
use ispvm_proto::{EntityKey, Event, EventKind, Severity};
use ispvm_transport::TlsMaterial;
use ractor::ActorRef;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Handovers kept for the cluster-state API.
const HANDOVER_LOG: usize = 500;
/// How often load and probe verdicts are published to gossip.
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// One handover as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HandoverRecord {
    pub at_ms: i64,
    #[serde(flatten)]
    pub handover: Handover,
}

/// A running cluster membership of this agent.
pub struct ClusterHandle {
    pub node: Arc<GossipNode>,
    pub assignment: SharedAssignment,
    pub handovers: Arc<Mutex<VecDeque<HandoverRecord>>>,
    pub metrics: Arc<ClusterMetrics>,
    config: ClusterConfig,
    configured: Arc<Mutex<Vec<RouterConfig>>>,
    routers_tx: watch::Sender<Arc<Vec<RouterSpec>>>,
    supervisor: ActorRef<SupervisorMsg>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterHandle {
    /// Stops gossiping at once, announcing nothing: what a crashed process looks like
    /// to its peers (their failure detector, not a leave message, must notice).
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the ownership layer needs to know of a configured router.
pub fn router_spec(agent_site: &str, r: &RouterConfig) -> RouterSpec {
    RouterSpec {
        id: r.key.clone(),
        site: r.site.clone().unwrap_or_else(|| agent_site.to_owned()),
        needs: match r.collector {
            CollectorKind::RouterOs => Capability::RouterOs,
            CollectorKind::Snmp => Capability::Snmp,
        },
    }
}

fn specs(agent_site: &str, routers: &[RouterConfig]) -> Arc<Vec<RouterSpec>> {
    Arc::new(routers.iter().map(|r| router_spec(agent_site, r)).collect())
}

/// The configured routers this agent owns now.
fn owned_configs(
    configured: &Mutex<Vec<RouterConfig>>,
    assignment: &SharedAssignment,
) -> Vec<RouterConfig> {
    let Ok(a) = assignment.lock() else {
        return Vec::new();
    };
    configured
        .lock()
        .map(|c| c.iter().filter(|r| a.owns(&r.key)).cloned().collect())
        .unwrap_or_default()
}

impl ClusterHandle {
    /// Joins the cluster. `routers` are every router the agent may be asked to poll;
    /// the supervisor is told which of them to poll as ownership settles.
    pub async fn start(
        agent: &AgentConfig,
        routers: Vec<RouterConfig>,
        tls: TlsMaterial,
        supervisor: ActorRef<SupervisorMsg>,
        state: Arc<AgentState>,
        metrics: Arc<ClusterMetrics>,
    ) -> Result<Self, GossipError> {
        let config = agent.cluster.clone();
        let mut caps = vec![Capability::RouterOs, Capability::Snmp, Capability::Icmp];
        if agent.syslog.enabled {
            caps.push(Capability::Syslog);
        }
        let mut gossip = GossipConfig::new(
            &agent.agent_id,
            &agent.tenant_id,
            &agent.site,
            config.listen,
        );
        gossip.advertise = config.advertise;
        gossip.seeds = config.seeds.clone();
        gossip.gossip_interval = config.interval();
        gossip.phi_threshold = config.phi_threshold;
        gossip.capabilities = Capabilities::of(&caps);
        let node = Arc::new(GossipNode::start(gossip, tls).await?);
        let assignment: SharedAssignment = Arc::new(Mutex::new(Assignment::new(
            &agent.agent_id,
            config.policy(),
            config.settle(),
        )));
        let (routers_tx, routers_rx) = watch::channel(specs(&agent.site, &routers));
        let configured = Arc::new(Mutex::new(routers));
        let handovers: Arc<Mutex<VecDeque<HandoverRecord>>> = Arc::default();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(assignment::drive(
                node.subscribe(),
                routers_rx,
                assignment.clone(),
                events_tx,
            )),
            tokio::spawn(apply_handovers(
                agent.agent_id.clone(),
                events_rx,
                configured.clone(),
                assignment.clone(),
                handovers.clone(),
                metrics.clone(),
                supervisor.clone(),
            )),
            tokio::spawn(publish(
                node.clone(),
                assignment.clone(),
                metrics.clone(),
                supervisor.clone(),
                state,
            )),
            tokio::spawn(send_reports(
                node.clone(),
                assignment.clone(),
                metrics.clone(),
                ReportSettings {
                    site: agent.site.clone(),
                    gossip_interval_ms: u32::try_from(config.gossip_interval_ms)
                        .unwrap_or(u32::MAX),
                    phi_threshold: config.phi_threshold as f32,
                    replication: u8::try_from(config.replication).unwrap_or(2),
                },
                supervisor.clone(),
            )),
        ];
        tracing::info!(
            agent = %agent.agent_id,
            gossip = %node.gossip_addr(),
            seeds = ?config.seeds,
            "joined the agent cluster"
        );
        Ok(ClusterHandle {
            node,
            assignment,
            handovers,
            metrics,
            config,
            configured,
            routers_tx,
            supervisor,
            tasks,
        })
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn membership(&self) -> Arc<Membership> {
        self.node.membership()
    }

    /// Replaces the routers the cluster places; pollers follow ownership.
    pub fn set_routers(&self, agent_site: &str, routers: Vec<RouterConfig>) {
        let list = specs(agent_site, &routers);
        if let Ok(mut c) = self.configured.lock() {
            *c = routers;
        }
        // Changed settings of routers we keep apply at once; ownership changes follow
        // through the assignment.
        let _ = self
            .supervisor
            .cast(SupervisorMsg::SetRouters(owned_configs(
                &self.configured,
                &self.assignment,
            )));
        self.routers_tx.send_replace(list);
    }

    /// Announces the leave so peers take the routers over at once, then stops gossip.
    pub async fn leave(&self) {
        for t in &self.tasks {
            t.abort();
        }
        self.node.leave(4).await;
    }
}

/// The `ownership_change` event of one handover, stored by the server per router.
fn handover_event(agent: &str, h: &Handover) -> Event {
    let (change, verb) = match h.kind {
        HandoverKind::Acquired => ("acquired", "started"),
        HandoverKind::Released => ("released", "stopped"),
    };
    let mut e = Event::new(
        EntityKey::Device(h.router.clone()),
        EventKind::OwnershipChange,
        Severity::Info,
        format!(
            "agent {agent} {verb} polling {} (owners now: {})",
            h.router,
            h.owners.join(", ")
        ),
    );
    e.attrs.insert("change".into(), change.into());
    e.attrs.insert("owners".into(), h.owners.join(","));
    e
}

/// Tells the supervisor which routers to poll whenever ownership moves.
async fn apply_handovers(
    agent: String,
    mut events: mpsc::UnboundedReceiver<Handover>,
    configured: Arc<Mutex<Vec<RouterConfig>>>,
    assignment: SharedAssignment,
    log: Arc<Mutex<VecDeque<HandoverRecord>>>,
    metrics: Arc<ClusterMetrics>,
    supervisor: ActorRef<SupervisorMsg>,
) {
    while let Some(first) = events.recv().await {
        // Take every handover of this round, then apply them in one go.
        let mut batch = vec![first];
        while let Ok(more) = events.try_recv() {
            batch.push(more);
        }
        let at_ms = now_ms();
        if let Ok(mut l) = log.lock() {
            for h in &batch {
                metrics.handover(h.kind);
                if l.len() == HANDOVER_LOG {
                    l.pop_front();
                }
                l.push_back(HandoverRecord {
                    at_ms,
                    handover: h.clone(),
                });
            }
        }
        for h in &batch {
            let _ = supervisor.cast(SupervisorMsg::ToUplink(UplinkMsg::Event(handover_event(
                &agent, h,
            ))));
        }
        let owned = owned_configs(&configured, &assignment);
        if supervisor.cast(SupervisorMsg::SetRouters(owned)).is_err() {
            return;
        }
    }
}

/// Publishes load and probe verdicts to gossip, and refreshes the cluster metrics.
async fn publish(
    node: Arc<GossipNode>,
    assignment: SharedAssignment,
    metrics: Arc<ClusterMetrics>,
    supervisor: ActorRef<SupervisorMsg>,
    state: Arc<AgentState>,
) {
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let owned = assignment.lock().map(|a| a.owned().count()).unwrap_or(0);
        let rounds =
            ractor::call_t!(supervisor, SupervisorMsg::ProbeRounds, 2_000).unwrap_or_default();
        node.set_load(Load {
            routers: owned as u32,
            probes: rounds.len() as u32,
            buffer_bytes: state.buffer_bytes(),
        })
        .await;
        for (target, round) in rounds {
            let Some(round) = round else { continue };
            let Some(stats) = round.stats else { continue };
            let reach = Reach {
                loss_pct: stats.loss_pct as f32,
                rtt_us: stats.avg_ms.map(|ms| (ms * 1_000.0).round() as u32),
                at_s: round.ts_ms / 1_000,
            };
            if let Err(e) = node.set_reach(&target, reach).await {
                tracing::debug!(target = %target, error = %e, "verdict not gossiped");
            }
        }
        metrics.observe(
            &node.membership(),
            owned,
            &node.transport_stats().snapshot(),
        );
    }
}

/// Hands the uplink this agent's cluster report every [`REPORT_EVERY`].
async fn send_reports(
    node: Arc<GossipNode>,
    assignment: SharedAssignment,
    metrics: Arc<ClusterMetrics>,
    settings: ReportSettings,
    supervisor: ActorRef<SupervisorMsg>,
) {
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_dropped = 0;
    loop {
        tick.tick().await;
        let owned = assignment
            .lock()
            .map(|a| a.owned().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut report = report::build(now_ms(), &node.membership(), owned, &settings);
        let dropped =
            ispvm_proto::codec::retain_valid(&mut report, &ispvm_proto::Limits::default());
        ReportEntriesLeftOut {
            left_out: dropped,
            changed: dropped != last_dropped,
        }
        .emit(&metrics);
        last_dropped = dropped;
        if supervisor
            .cast(SupervisorMsg::ToUplink(UplinkMsg::Cluster(Box::new(
                report,
            ))))
            .is_err()
        {
            return;
        }
    }
}
