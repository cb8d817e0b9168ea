//! What the tree tells its host about entities it could not watch live.
//!
//! The actors crate has no metrics of its own (the server owns the registry), so it hands
//! each such happening to a hook as a typed event; the server's `internal_events` log
//! and count it. Without this a tenant over its actor cap, or an actor that failed to
//! start, would be a log line nothing counts.

use std::sync::Arc;

ispvm_proto::text_enum! {
    /// Which kind of entity actor.
    pub enum EntityActor {
        Router = "router",
        Probe = "probe",
        Link = "link",
    }
}

/// An entity the tree does not watch live (its data is still stored and still reaches
/// the alert engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// The tenant holds as many actors of this kind as it may (`[actors]` in the
    /// server's configuration); `refused` entities were turned away since the last
    /// report (reported at most once per reap interval).
    OverCap {
        tenant: String,
        kind: EntityActor,
        max: usize,
        refused: u64,
    },
    /// The actor of an entity could not start; it is tried again with the entity's next
    /// data.
    NotStarted {
        tenant: String,
        kind: EntityActor,
        entity: String,
        error: String,
    },
}

/// Called with every [`TreeEvent`] (the server's telemetry).
pub type EventHook = Arc<dyn Fn(&TreeEvent) + Send + Sync>;
