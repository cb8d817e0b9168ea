//! Ingest: from bytes an authenticated agent sent to stored rows and an acknowledgement.
//!
//! Order of checks: the agent's connections (at most a few open at once), then per batch
//! the agent's batch rate by its certificate ([`Ingestor::admit`], before the body is
//! read, so an agent over its rate costs no 4 MiB read or decode), size (before reading
//! further), decoding within limits, field bounds, then identity (the batch's agent and
//! tenant must be the certificate's), the tenant's sample rate quota, then the store,
//! which checks the tenant's device, agent and series quotas inside the batch
//! transaction. Any failure answers with a typed rejection and stores nothing.

pub mod connections;
pub mod https;
pub mod quic;
pub mod rate;
pub mod tls;

use crate::internal_events::{BatchRejected, BatchStored, InternalEvent, ServerMetrics};
use crate::store::{IngestCache, Store, StoreError, TenantSettings, TimeseriesPolicy};
use ispvm_proto::codec::from_bincode;
use ispvm_proto::time::now_ms;
use ispvm_proto::{Ack, AckStatus, Batch, Limits, RejectCode};
use ispvm_transport::PeerIdentity;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a tenant's settings are reused before they are read again: a changed quota
/// takes effect within this time, and ingest does not read them per batch.
const SETTINGS_TTL: Duration = Duration::from_secs(10);

/// How long an agent is told to wait while the store is unavailable.
const STORE_UNAVAILABLE_RETRY: Duration = Duration::from_secs(5);
/// The longest wait an agent is ever told: a tiny quota or a huge batch must not park
/// an agent's uplink for hours; it asks again and is told again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Ingest connections one agent may hold open at once (QUIC and HTTPS together).
pub const DEFAULT_CONNECTIONS_PER_AGENT: usize = 4;

/// Validates and stores batches.
#[derive(Debug, Clone)]
pub struct Ingestor {
    store: Store,
    limits: Limits,
    metrics: Arc<ServerMetrics>,
    rate: Arc<rate::RateLimiter>,
    policy: TimeseriesPolicy,
    cache: Arc<IngestCache>,
    sample_quota: Arc<rate::SampleQuota>,
    settings: Arc<Mutex<HashMap<String, (Instant, TenantSettings)>>>,
    /// The actor tree every newly stored batch is handed to (live state, alerts).
    tree: Option<ispvm_actors::tree::MonitorTree>,
    /// Told of every cluster report kept, so the merged view is current at once.
    cluster: Option<crate::cluster_view::ClusterViews>,
    connections: Arc<connections::AgentConnections>,
}

impl Ingestor {
    pub fn new(
        store: Store,
        limits: Limits,
        rate: rate::RateLimit,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        Ingestor {
            store,
            limits,
            metrics,
            rate: Arc::new(rate::RateLimiter::new(rate)),
            policy: TimeseriesPolicy::default(),
            cache: Arc::new(IngestCache::default()),
            sample_quota: Arc::new(rate::SampleQuota::default()),
            settings: Arc::new(Mutex::new(HashMap::new())),
            tree: None,
            cluster: None,
            connections: Arc::new(connections::AgentConnections::new(
                DEFAULT_CONNECTIONS_PER_AGENT,
            )),
        }
    }

    /// Lets each agent hold at most `max` ingest connections open at once.
    pub fn with_connections_per_agent(mut self, max: usize) -> Self {
        self.connections = Arc::new(connections::AgentConnections::new(max));
        self
    }

    /// Counts a new connection of `peer` over `transport` from `remote`; `None` (counted
    /// and logged as refused) when the agent is at its cap: the transport closes it.
    pub fn connection(
        &self,
        transport: &'static str,
        remote: std::net::SocketAddr,
        peer: &PeerIdentity,
    ) -> Option<connections::ConnectionGuard> {
        let guard = self.connections.enter(&peer.common_name);
        if guard.is_none() {
            let reason = format!(
                "over the cap of {} connections per agent",
                self.connections.max()
            );
            crate::internal_events::PeerConnection {
                transport,
                remote,
                peer: Some(&peer.common_name),
                refused: Some(&reason),
            }
            .emit(&self.metrics);
        }
        guard
    }

    /// Takes one batch from the agent's rate budget, by its certificate, before the
    /// transport reads the batch: an agent over its rate is answered `overloaded` at
    /// once and its bytes are neither read into memory nor decoded.
    pub fn admit(&self, peer: &PeerIdentity) -> Result<(), Box<Ack>> {
        let tenant = peer.organization.as_deref().unwrap_or("");
        match self.rate.take(tenant, &peer.common_name, Instant::now()) {
            Ok(()) => Ok(()),
            Err(wait) => {
                let reason = format!(
                    "agent {} is over its ingest rate; retry in {} ms",
                    peer.common_name,
                    wait.as_millis()
                );
                Err(Box::new(self.overloaded(peer, 0, wait, reason)))
            }
        }
    }

    /// Uses `policy` (tenant defaults, timestamp bounds, rollup lateness) instead of the
    /// default one.
    pub fn with_policy(mut self, policy: TimeseriesPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Hands every newly stored batch to `tree` (replays are not handed twice).
    pub fn with_tree(mut self, tree: ispvm_actors::tree::MonitorTree) -> Self {
        self.tree = Some(tree);
        self
    }

    /// Tells `views` of every cluster report kept.
    pub fn with_cluster(mut self, views: crate::cluster_view::ClusterViews) -> Self {
        self.cluster = Some(views);
        self
    }

    /// The tenant's settings in force, from a short-lived cache. A store error falls back
    /// to the server's defaults rather than refusing the batch.
    async fn tenant_settings(&self, tenant: &str, now: Instant) -> TenantSettings {
        {
            let cached = self.settings.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, s)) = cached.get(tenant)
                && now.saturating_duration_since(*at) < SETTINGS_TTL
            {
                return *s;
            }
        }
        let settings = match self
            .store
            .tenant(tenant)
            .settings(&self.policy.tenant_defaults)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(tenant, error = %e, "cannot read tenant settings; using the defaults");
                return self.policy.tenant_defaults;
            }
        };
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), (now, settings));
        settings
    }

    /// An `overloaded` answer telling the agent when to retry.
    fn overloaded(&self, peer: &PeerIdentity, seq: u64, wait: Duration, reason: String) -> Ack {
        let mut ack = self.reject(peer, seq, RejectCode::Overloaded, reason);
        if let AckStatus::Rejected { retry_after_ms, .. } = &mut ack.status {
            let wait = wait.min(MAX_RETRY_AFTER);
            *retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        ack
    }

    /// The series ids ingest has cached (maintenance forgets deleted ones).
    pub fn cache(&self) -> Arc<IngestCache> {
        self.cache.clone()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn reject(&self, peer: &PeerIdentity, seq: u64, code: RejectCode, reason: String) -> Ack {
        self.reject_seq(peer, seq, code, reason)
    }

    /// Refuses bytes that never became a batch (counted and logged like any rejection).
    pub fn reject_now(&self, peer: &PeerIdentity, code: RejectCode, reason: String) -> Ack {
        self.reject_seq(peer, 0, code, reason)
    }

    fn reject_seq(&self, peer: &PeerIdentity, seq: u64, code: RejectCode, reason: String) -> Ack {
        BatchRejected {
            peer: &peer.common_name,
            code,
            reason: &reason,
        }
        .emit(&self.metrics);
        Ack::rejected(seq, code, reason)
    }

    /// Answers a batch that was larger than the byte limit (the transport stopped
    /// reading it).
    pub fn too_large(&self, peer: &PeerIdentity) -> Ack {
        let reason = format!("batch is over the limit of {} bytes", self.limits.max_bytes);
        self.reject(peer, 0, RejectCode::TooLarge, reason)
    }

    /// Decodes, checks and stores a bincode batch from `peer`.
    pub async fn handle_bincode(&self, peer: &PeerIdentity, bytes: &[u8]) -> Ack {
        match from_bincode::<Batch>(bytes, &self.limits) {
            Ok(batch) => self.handle(peer, batch).await,
            Err(e) => self.reject(peer, 0, e.reject_code(), e.to_string()),
        }
    }

    /// Checks identity and stores a decoded, bounds-checked batch (the transport took
    /// the rate token with [`Ingestor::admit`]).
    pub async fn handle(&self, peer: &PeerIdentity, batch: Batch) -> Ack {
        // Shared, not copied, with the actor tree once stored.
        let batch = Arc::new(batch);
        if batch.agent_id != peer.common_name {
            return self.reject(
                peer,
                batch.seq,
                RejectCode::Unauthorized,
                format!(
                    "batch claims agent {:?} but the certificate is {:?}",
                    batch.agent_id, peer.common_name
                ),
            );
        }
        if peer.organization.as_deref() != Some(batch.tenant_id.as_str()) {
            return self.reject(
                peer,
                batch.seq,
                RejectCode::Unauthorized,
                format!(
                    "batch claims tenant {:?} but the certificate is for {:?}",
                    batch.tenant_id, peer.organization
                ),
            );
        }
        let now = Instant::now();
        let settings = self.tenant_settings(&batch.tenant_id, now).await;
        let samples = u64::try_from(batch.samples.len()).unwrap_or(u64::MAX);
        if let Err(wait) =
            self.sample_quota
                .take(&batch.tenant_id, samples, settings.max_samples_per_s, now)
        {
            let reason = format!(
                "tenant {} is over its ingest quota of {} samples/s; retry in {} ms",
                batch.tenant_id,
                settings.max_samples_per_s,
                wait.as_millis()
            );
            return self.overloaded(peer, batch.seq, wait, reason);
        }
        let started = Instant::now();
        let received_ms = now_ms();
        match self
            .store
            .tenant(&batch.tenant_id)
            .ingest_with(&batch, received_ms, &self.policy, Some(&self.cache))
            .await
        {
            Ok(outcome) => {
                BatchStored {
                    agent: &batch.agent_id,
                    tenant: &batch.tenant_id,
                    seq: batch.seq,
                    outcome: &outcome,
                    cluster_report: batch.cluster.is_some(),
                    took: started.elapsed(),
                }
                .emit(&self.metrics);
                if outcome.cluster_report_kept
                    && let (Some(views), Some(report)) = (&self.cluster, &batch.cluster)
                {
                    views.note_report(&batch.tenant_id, &batch.agent_id, report, received_ms);
                }
                if !outcome.duplicate_batch
                    && let Some(tree) = &self.tree
                {
                    tree.ingest(&batch.tenant_id, Arc::clone(&batch));
                }
                Ack {
                    seq: batch.seq,
                    status: AckStatus::Accepted {
                        samples_stored: outcome.samples_stored,
                        samples_duplicate: outcome.samples_duplicate,
                        events_stored: outcome.events_stored,
                        events_duplicate: outcome.events_duplicate,
                        duplicate_batch: outcome.duplicate_batch,
                    },
                }
            }
            Err(StoreError::QuotaExceeded(q)) => {
                self.reject(peer, batch.seq, RejectCode::QuotaExceeded, q.to_string())
            }
            Err(StoreError::UnknownTenant(t)) => self.reject(
                peer,
                batch.seq,
                RejectCode::Unauthorized,
                format!("tenant {t:?} does not exist"),
            ),
            Err(e @ StoreError::SeqReused { .. }) => {
                self.reject(peer, batch.seq, RejectCode::SeqReused, e.to_string())
            }
            Err(e) if e.is_permanent() => {
                // Retrying would fail the same way: the agent must set this batch aside,
                // and the message says which item to look at.
                self.reject(peer, batch.seq, RejectCode::Unstorable, e.to_string())
            }
            Err(e) if e.is_unavailable() => {
                tracing::error!(error = %e, agent = %batch.agent_id, seq = batch.seq, "the store is unavailable");
                self.overloaded(
                    peer,
                    batch.seq,
                    STORE_UNAVAILABLE_RETRY,
                    "the server's store is unavailable; retry later".into(),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, agent = %batch.agent_id, seq = batch.seq, "storing a batch failed");
                self.reject(
                    peer,
                    batch.seq,
                    RejectCode::Internal,
                    "the server could not store the batch; retry later".into(),
                )
            }
        }
    }
}
