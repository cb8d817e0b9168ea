//! An N-node gossip cluster in one process, over real QUIC on loopback with certificates
//! of a throwaway CA: the building block of the cluster tests and the agent's failover
//! tests.

use crate::assignment::{self, Assignment, Handover, RouterSpec, SharedAssignment};
use crate::gossip::{GossipConfig, GossipNode, Membership};
use crate::ownership::OwnershipPolicy;
use ispvm_transport::pki::{CertKind, Pki};
use ispvm_transport::tls::TlsMaterial;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The tenant every test node belongs to.
pub const TENANT: &str = "acme";

/// A UDP port free on loopback right now.
pub fn free_udp_addr() -> std::io::Result<SocketAddr> {
    let s = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
    s.local_addr()
}

/// One node of a [`TestCluster`] with its router assignment.
pub struct TestNode {
    pub agent: String,
    pub site: String,
    pub addr: SocketAddr,
    pub node: Option<GossipNode>,
    pub assignment: SharedAssignment,
    /// Every handover with when it happened.
    pub handovers: Arc<Mutex<Vec<(Instant, Handover)>>>,
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl TestNode {
    pub fn membership(&self) -> Option<Arc<Membership>> {
        self.node.as_ref().map(|n| n.membership())
    }

    pub fn owned(&self) -> Vec<String> {
        self.assignment
            .lock()
            .map(|a| a.owned().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }
}

/// Several gossip nodes, a PKI, and the routers they share.
pub struct TestCluster {
    pub pki: Pki,
    pub nodes: Vec<TestNode>,
    pub interval: Duration,
    pub policy: OwnershipPolicy,
    pub settle: Duration,
    routers: watch::Sender<Arc<Vec<RouterSpec>>>,
}

impl TestCluster {
    /// A CA in `dir` and no nodes yet.
    pub fn new(dir: &Path, interval: Duration, routers: Vec<RouterSpec>) -> anyhow::Result<Self> {
        let pki = Pki::new(dir);
        pki.init("test cluster CA", 30)?;
        Ok(TestCluster {
            pki,
            nodes: Vec::new(),
            interval,
            policy: OwnershipPolicy::default(),
            settle: interval * 8,
            routers: watch::channel(Arc::new(routers)).0,
        })
    }

    /// The configuration a node gets: every earlier node is a seed.
    pub fn config(&self, agent: &str, site: &str, addr: SocketAddr) -> GossipConfig {
        let mut c = GossipConfig::new(agent, TENANT, site, addr);
        c.gossip_interval = self.interval;
        // Revocations apply within two rounds rather than the production 10 s.
        c.crl_check = self.interval * 2;
        c.seeds = self
            .nodes
            .iter()
            .take(3)
            .map(|n| n.addr.to_string())
            .collect();
        c
    }

    /// Issues a certificate and starts a node; returns its index.
    pub async fn add(&mut self, agent: &str, site: &str) -> anyhow::Result<usize> {
        self.pki
            .issue(CertKind::Agent, agent, Some(TENANT), &[], &[], 30)?;
        let material = TlsMaterial::load_from_pki_dir(self.pki.dir(), agent)?;
        let addr = free_udp_addr()?;
        let config = self.config(agent, site, addr);
        self.start_with(config, material).await
    }

    /// Starts a node with the given configuration and certificate.
    pub async fn start_with(
        &mut self,
        config: GossipConfig,
        material: TlsMaterial,
    ) -> anyhow::Result<usize> {
        let agent = config.agent_id.clone();
        let site = config.site.clone();
        let addr = config.listen;
        let node = GossipNode::start(config, material).await?;
        let shared: SharedAssignment = Arc::new(Mutex::new(Assignment::new(
            &agent,
            self.policy,
            self.settle,
        )));
        let handovers: Arc<Mutex<Vec<(Instant, Handover)>>> = Arc::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let log = handovers.clone();
        let driver = tokio::spawn({
            let membership = node.subscribe();
            let routers = self.routers.subscribe();
            let shared = shared.clone();
            async move {
                let recorder = tokio::spawn(async move {
                    while let Some(h) = rx.recv().await {
                        if let Ok(mut l) = log.lock() {
                            l.push((Instant::now(), h));
                        }
                    }
                });
                assignment::drive(membership, routers, shared, tx).await;
                recorder.abort();
            }
        });
        self.nodes.push(TestNode {
            agent,
            site,
            addr,
            node: Some(node),
            assignment: shared,
            handovers,
            driver: Some(driver),
        });
        Ok(self.nodes.len() - 1)
    }

    /// Stops node `i` abruptly: no goodbye, its endpoint vanishes (what peers see of a
    /// SIGKILL).
    pub fn kill(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(d) = n.driver.take() {
            d.abort();
        }
        n.node = None;
    }

    /// Node `i` announces its leave and stops.
    pub async fn leave(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(node) = n.node.take() {
            node.leave(4).await;
        }
        if let Some(d) = n.driver.take() {
            d.abort();
        }
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                if let (Some(x), Some(y)) = (&self.nodes[i].node, &self.nodes[j].node) {
                    x.link_cuts().cut(self.nodes[j].addr);
                    y.link_cuts().cut(self.nodes[i].addr);
                }
            }
        }
    }

    pub fn heal(&self) {
        for n in self.nodes.iter().filter_map(|n| n.node.as_ref()) {
            n.link_cuts().heal_all();
        }
    }

    pub fn running(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// Polls every `interval` until `done` holds; returns how long it took, or `None`
    /// after `limit`.
    pub async fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&TestCluster) -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(self.interval / 2).await;
        }
        done(self).then(|| start.elapsed())
    }

    /// Every running node sees exactly the running nodes as available.
    pub fn converged(&self) -> bool {
        let mut want: Vec<&str> = self.running().map(|n| n.agent.as_str()).collect();
        want.sort_unstable();
        self.running().all(|n| {
            n.membership().is_some_and(|m| {
                let got: Vec<&str> = m.available().map(|m| m.agent.as_str()).collect();
                got == want
            })
        })
    }

    /// How many running nodes poll each router.
    pub fn pollers(&self) -> std::collections::BTreeMap<String, usize> {
        let mut count: std::collections::BTreeMap<String, usize> = self
            .routers
            .borrow()
            .iter()
            .map(|r| (r.id.clone(), 0))
            .collect();
        for n in self.running() {
            for r in n.owned() {
                *count.entry(r).or_default() += 1;
            }
        }
        count
    }
}
