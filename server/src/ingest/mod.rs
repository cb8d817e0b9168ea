//! Ingest: from bytes an authenticated agent sent to stored rows and an acknowledgement.
//!
//! Order of checks: size (before reading further), decoding within limits, field bounds,
//! then identity (the batch's agent and tenant must be the certificate's), then the store.
//! Any failure answers with a typed rejection and stores nothing.

pub mod https;
pub mod quic;
pub mod rate;

use crate::store::{Store, StoreError};
use crate::telemetry::{BatchRejected, BatchStored, ServerMetrics};
use ispvm_cluster::PeerIdentity;
use ispvm_proto::codec::from_bincode;
use ispvm_proto::time::now_ms;
use ispvm_proto::{Ack, AckStatus, Batch, Limits, RejectCode};
use std::sync::Arc;
use std::time::Instant;

/// Validates and stores batches.
#[derive(Debug, Clone)]
pub struct Ingestor {
    store: Store,
    limits: Limits,
    metrics: Arc<ServerMetrics>,
    rate: Arc<rate::RateLimiter>,
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
        }
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
            Ok(batch) => self.handle(peer, &batch).await,
            Err(e) => self.reject(peer, 0, e.reject_code(), e.to_string()),
        }
    }

    /// Checks identity and stores a decoded, bounds-checked batch.
    pub async fn handle(&self, peer: &PeerIdentity, batch: &Batch) -> Ack {
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
        if let Err(wait) = self
            .rate
            .take(&batch.tenant_id, &batch.agent_id, Instant::now())
        {
            let mut ack = self.reject(
                peer,
                batch.seq,
                RejectCode::Overloaded,
                format!(
                    "agent {} is over its ingest rate; retry in {} ms",
                    batch.agent_id,
                    wait.as_millis()
                ),
            );
            if let AckStatus::Rejected { retry_after_ms, .. } = &mut ack.status {
                *retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
            }
            return ack;
        }
        let started = Instant::now();
        match self
            .store
            .tenant(&batch.tenant_id)
            .ingest(batch, now_ms())
            .await
        {
            Ok(outcome) => {
                BatchStored {
                    agent: &batch.agent_id,
                    tenant: &batch.tenant_id,
                    seq: batch.seq,
                    outcome: &outcome,
                    took: started.elapsed(),
                }
                .emit(&self.metrics);
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
            Err(StoreError::UnknownTenant(t)) => self.reject(
                peer,
                batch.seq,
                RejectCode::Unauthorized,
                format!("tenant {t:?} does not exist"),
            ),
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
