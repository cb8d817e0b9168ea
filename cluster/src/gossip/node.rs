//! One agent's membership in the gossip cluster.

use super::members::{Membership, Tracker};
use super::transport::{LinkCuts, QuicTransport, TransportStats};
use crate::node_state::{self, Health, Load, LocalInfo, Reach, SchemaError};
use crate::ownership::Capabilities;
use chitchat::{ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, spawn_chitchat};
use ispvm_transport::identity::PeerIdentity;
use ispvm_transport::tls::TlsMaterial;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How an agent joins the cluster.
#[derive(Debug, Clone)]
pub struct GossipConfig {
    pub agent_id: String,
    pub tenant: String,
    pub site: String,
    pub version: String,
    pub capabilities: Capabilities,
    /// UDP address the QUIC endpoint binds.
    pub listen: SocketAddr,
    /// Address peers reach us at; `listen` when unset (it must be the address our
    /// outgoing QUIC packets come from, since replies go there).
    pub advertise: Option<SocketAddr>,
    /// Gossip addresses (or `host:port`) of a few agents to join through.
    pub seeds: Vec<String>,
    pub gossip_interval: Duration,
    /// Suspicion above which the failure detector declares a member dead. With phi as
    /// "elapsed over mean heartbeat interval", detection takes about `phi_threshold`
    /// heartbeat intervals.
    pub phi_threshold: f64,
    /// How long a dead member stays listed before it is forgotten.
    pub dead_member_grace: Duration,
    /// How often the CA's revocation list is re-read (a change reconnects every peer).
    pub crl_check: Duration,
}

impl GossipConfig {
    /// Defaults for a PoP agent: 250 ms gossip and phi 8, which detects a dead agent in
    /// about 2 seconds (1.7 to 2.3 s measured, see `docs/benchmarks.md`).
    pub fn new(agent_id: &str, tenant: &str, site: &str, listen: SocketAddr) -> Self {
        GossipConfig {
            agent_id: agent_id.to_owned(),
            tenant: tenant.to_owned(),
            site: site.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::of(&crate::ownership::Capability::ALL),
            listen,
            advertise: None,
            seeds: Vec::new(),
            gossip_interval: Duration::from_millis(250),
            phi_threshold: 8.0,
            dead_member_grace: Duration::from_secs(3600),
            crl_check: ispvm_transport::crl_watch::CHECK_EVERY,
        }
    }

    /// The chitchat configuration these settings stand for (the simulation runs the
    /// same one over an in-memory transport).
    pub fn chitchat_config(&self, generation: u64) -> ChitchatConfig {
        let advertise = self.advertise.unwrap_or(self.listen);
        ChitchatConfig {
            chitchat_id: ChitchatId::new(self.agent_id.clone(), generation, advertise),
            cluster_id: format!("ispvm-{}", self.tenant),
            gossip_interval: self.gossip_interval,
            listen_addr: self.listen,
            seed_nodes: self.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: self.phi_threshold,
                // Each peer keeps this many heartbeat intervals (8 bytes each): 100 is
                // 25 s of history at 250 ms, enough for a stable mean, and keeps the
                // detector at 0.8 MB per agent in a 1,000-agent cluster instead of 8 MB.
                sampling_window_size: 100,
                // A heartbeat gap longer than this is an outage, not a sample.
                max_interval: self.gossip_interval * 40,
                // Until real samples arrive, assume heartbeats come every round.
                initial_interval: self.gossip_interval,
                dead_node_grace_period: self.dead_member_grace,
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
        }
    }
}

/// Why the node could not join.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    #[error("gossip: {0}")]
    Start(String),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// A running gossip member.
pub struct GossipNode {
    handle: ChitchatHandle,
    config: GossipConfig,
    stats: Arc<TransportStats>,
    cuts: Arc<LinkCuts>,
    membership: watch::Receiver<Arc<Membership>>,
    watcher: JoinHandle<()>,
}

impl Drop for GossipNode {
    fn drop(&mut self) {
        self.watcher.abort();
        self.handle.abort();
    }
}

impl GossipNode {
    /// Joins the cluster over QUIC with `material` (the agent's certificate).
    pub async fn start(config: GossipConfig, material: TlsMaterial) -> Result<Self, GossipError> {
        let own = material
            .chain
            .first()
            .and_then(|c| PeerIdentity::from_der(c).ok());
        // Peers believe our node id only where our certificate proves it.
        if let Some(id) = &own
            && id.common_name != config.agent_id
        {
            return Err(GossipError::Start(format!(
                "agent id {:?} is not the certificate's common name {:?}; peers would refuse what we say",
                config.agent_id, id.common_name
            )));
        }
        let cert_expiry_s = own.map(|id| id.not_after).unwrap_or(0);
        let transport =
            QuicTransport::new(material, config.tenant.clone()).with_crl_check(config.crl_check);
        let stats = transport.stats();
        let cuts = transport.link_cuts();
        let info = LocalInfo {
            tenant: config.tenant.clone(),
            site: config.site.clone(),
            version: config.version.clone(),
            capabilities: config.capabilities,
            cert_expiry_s,
        };
        // A scratch state, only to run the schema's bounded writers before joining
        // (chitchat has no other public constructor); its keys seed our real state.
        let mut initial = chitchat::NodeState::for_test();
        node_state::publish_local(&mut initial, &info)?;
        node_state::publish_health(&mut initial, &Health::Ok)?;
        let kv: Vec<(String, String)> = initial
            .key_values()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let handle = spawn_chitchat(
            config.chitchat_config(u64::try_from(ispvm_proto::time::now_ms()).unwrap_or(0)),
            kv,
            &transport,
        )
        .await
        .map_err(|e| GossipError::Start(format!("{e:#}")))?;
        let (tx, rx) = watch::channel(Arc::new(Membership::default()));
        let watcher = tokio::spawn(watch_membership(
            handle.chitchat(),
            config.agent_id.clone(),
            config.gossip_interval,
            tx,
        ));
        Ok(GossipNode {
            handle,
            config,
            stats,
            cuts,
            membership: rx,
            watcher,
        })
    }

    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    pub fn agent_id(&self) -> &str {
        &self.config.agent_id
    }

    /// The gossip address peers reach this node at.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.handle.chitchat_id().gossip_advertise_addr
    }

    /// The latest membership, refreshed every gossip round.
    pub fn membership(&self) -> Arc<Membership> {
        self.membership.borrow().clone()
    }

    /// Notified on every refresh.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Membership>> {
        self.membership.clone()
    }

    pub fn transport_stats(&self) -> Arc<TransportStats> {
        self.stats.clone()
    }

    /// Partition drills: cut or heal this node's links to peers.
    pub fn link_cuts(&self) -> Arc<LinkCuts> {
        self.cuts.clone()
    }

    pub async fn set_load(&self, load: Load) {
        self.handle
            .with_chitchat(|c| node_state::publish_load(c.self_node_state(), &load))
            .await;
    }

    pub async fn set_health(&self, health: Health) -> Result<(), SchemaError> {
        self.handle
            .with_chitchat(|c| node_state::publish_health(c.self_node_state(), &health))
            .await
    }

    /// Publishes this agent's verdict on one probe target.
    pub async fn set_reach(&self, target: &str, reach: Reach) -> Result<(), SchemaError> {
        self.handle
            .with_chitchat(|c| node_state::publish_reach(c.self_node_state(), target, &reach))
            .await
    }

    /// Sets an arbitrary key (tests and the simulation use it to time propagation).
    pub async fn set_key(&self, key: &str, value: &str) {
        self.handle
            .with_chitchat(|c| c.self_node_state().set(key, value))
            .await;
    }

    /// Announces a graceful leave, gives gossip `rounds` rounds to carry it, then stops.
    pub async fn leave(&self, rounds: u32) {
        self.handle
            .with_chitchat(|c| node_state::publish_leaving(c.self_node_state()))
            .await;
        tokio::time::sleep(self.config.gossip_interval * rounds).await;
        self.watcher.abort();
        // Errors here only say the server already stopped.
        let _ = self.handle.initiate_shutdown();
    }
}

/// Refreshes the membership every gossip round.
async fn watch_membership(
    chitchat: Arc<tokio::sync::Mutex<chitchat::Chitchat>>,
    self_agent: String,
    every: Duration,
    tx: watch::Sender<Arc<Membership>>,
) {
    let mut tracker = Tracker::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let membership = {
            let c = chitchat.lock().await;
            let live: std::collections::HashSet<&ChitchatId> = c.live_nodes().collect();
            tracker.observe(
                &self_agent,
                c.node_states().iter(),
                |id| live.contains(id),
                tokio::time::Instant::now(),
            )
        };
        if tx.send(Arc::new(membership)).is_err() {
            return;
        }
    }
}
