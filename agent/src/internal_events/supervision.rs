//! Supervision: actors restarted, and actors restarting so often they are parked.

use super::{ActorLabel, AgentMetrics};
use ispvm_telemetry::InternalEvent;

/// A supervisor restarted a child.
pub struct ActorRestarted<'a> {
    pub actor: &'static str,
    pub name: &'a str,
    pub reason: &'a str,
    pub attempt: u32,
    /// Restarting too often: the supervisor waits much longer before the next attempt.
    pub crash_loop: bool,
}

impl InternalEvent for ActorRestarted<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "ActorRestarted";

    /// A crash loop is told apart in the event log: it is what an operator must see.
    fn name(&self) -> &'static str {
        if self.crash_loop {
            "ActorCrashLooping"
        } else {
            Self::NAME
        }
    }

    fn log_and_count(&self, m: &AgentMetrics) {
        let label = ActorLabel { actor: self.actor };
        m.actor_restarts.get_or_create(&label).inc();
        if self.crash_loop {
            m.crash_loops.get_or_create(&label).inc();
            tracing::error!(
                actor = self.actor,
                name = self.name,
                reason = self.reason,
                attempt = self.attempt,
                "actor is crash-looping"
            );
        } else {
            tracing::warn!(
                actor = self.actor,
                name = self.name,
                reason = self.reason,
                attempt = self.attempt,
                "restarting actor"
            );
        }
    }
}
