//! What the agent knows about its own work, shared between its actors and its HTTP
//! endpoint (`/v1/state`). Actors write, the endpoint reads; nothing here blocks for long.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// The latest poll outcome of one router.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouterStatus {
    pub address: String,
    pub last_poll_ms: Option<i64>,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub samples_last_poll: usize,
    /// Circuit breaker state: closed, open or half_open.
    pub breaker: &'static str,
}

/// Shared, lock-light view of the agent's work.
#[derive(Debug, Default)]
pub struct AgentState {
    routers: Mutex<BTreeMap<String, RouterStatus>>,
    uplink_queued: AtomicUsize,
    buffer_bytes: AtomicU64,
    last_ack_ms: AtomicI64,
    quarantine: Mutex<QuarantineStatus>,
}

/// Batches the uplink set aside instead of sending them again.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuarantineStatus {
    /// Batches in the quarantine file (from every life of the agent).
    pub batches: u64,
    pub bytes: u64,
    /// Where they are (JSON lines: reason and batch).
    pub file: String,
    /// The latest one set aside in this life.
    pub last: Option<QuarantineNote>,
}

/// Why one batch was set aside.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineNote {
    pub at_ms: i64,
    pub seq: Option<u64>,
    pub reason: String,
    pub message: String,
}

/// A point-in-time copy of [`AgentState`] for the HTTP endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct StateSnapshot {
    pub routers: BTreeMap<String, RouterStatus>,
    pub uplink_queued_batches: usize,
    /// Bytes of undelivered batches in the disk buffer.
    pub buffer_bytes: u64,
    pub last_ack_ms: Option<i64>,
    pub quarantine: QuarantineStatus,
}

impl AgentState {
    /// Applies `update` to a router's status, creating it if needed.
    pub fn update_router(&self, key: &str, update: impl FnOnce(&mut RouterStatus)) {
        if let Ok(mut map) = self.routers.lock() {
            update(map.entry(key.to_owned()).or_default());
        }
    }

    pub fn remove_router(&self, key: &str) {
        if let Ok(mut map) = self.routers.lock() {
            map.remove(key);
        }
    }

    pub fn set_uplink(&self, queued: usize, acked_at_ms: Option<i64>) {
        self.uplink_queued.store(queued, Ordering::Relaxed);
        if let Some(ts) = acked_at_ms {
            self.last_ack_ms.store(ts, Ordering::Relaxed);
        }
    }

    pub fn set_buffer_bytes(&self, bytes: u64) {
        self.buffer_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of undelivered batches in the disk buffer (gossiped as load).
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer_bytes.load(Ordering::Relaxed)
    }

    /// Applies `update` to the quarantine status.
    pub fn update_quarantine(&self, update: impl FnOnce(&mut QuarantineStatus)) {
        if let Ok(mut q) = self.quarantine.lock() {
            update(&mut q);
        }
    }

    pub fn snapshot(&self) -> StateSnapshot {
        let routers = self.routers.lock().map(|m| m.clone()).unwrap_or_default();
        let ack = self.last_ack_ms.load(Ordering::Relaxed);
        StateSnapshot {
            routers,
            uplink_queued_batches: self.uplink_queued.load(Ordering::Relaxed),
            buffer_bytes: self.buffer_bytes(),
            last_ack_ms: (ack > 0).then_some(ack),
            quarantine: self
                .quarantine
                .lock()
                .map(|q| q.clone())
                .unwrap_or_default(),
        }
    }
}
