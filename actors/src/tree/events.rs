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
    /// An actor's recent history could not be read back from the store: it started
    /// empty, and live samples fill it in (its windows are short until then).
    StateNotRestored {
        tenant: String,
        kind: EntityActor,
        entity: String,
        error: String,
    },
}

impl TreeEvent {
    /// Logs the event where the tree decided it, and hands it to the host's hook.
    pub(crate) fn report(self, hook: Option<&EventHook>) {
        match &self {
            TreeEvent::OverCap {
                tenant, kind, max, ..
            } => tracing::warn!(
                %tenant,
                kind = kind.as_str(),
                max,
                "the tenant holds as many entity actors of this kind as it may; new entities are stored but not watched live"
            ),
            TreeEvent::NotStarted {
                tenant,
                kind,
                entity,
                error,
            } => {
                tracing::error!(%tenant, kind = kind.as_str(), entity, error, "entity actor not started")
            }
            TreeEvent::StateNotRestored {
                tenant,
                kind,
                entity,
                error,
            } => {
                tracing::warn!(%tenant, kind = kind.as_str(), entity, error, "entity actor state not restored; it starts empty")
            }
        }
        if let Some(hook) = hook {
            hook(&self);
        }
    }
}

/// Called with every [`TreeEvent`] (the server's telemetry).
pub type EventHook = Arc<dyn Fn(&TreeEvent) + Send + Sync>;
