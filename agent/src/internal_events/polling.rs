//! Polling routers: each poll's outcome, circuit breakers, the set of routers owned.

use super::{AgentMetrics, ResultLabel};
use ispvm_telemetry::InternalEvent;
use std::time::Duration;

/// A router poll finished.
pub struct PollFinished<'a> {
    pub router: &'a str,
    pub took: Duration,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl InternalEvent for PollFinished<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "PollFinished";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.poll_seconds.observe(self.took.as_secs_f64());
        match self.error {
            None => {
                m.polls.get_or_create(&ResultLabel { result: "ok" }).inc();
                tracing::debug!(
                    router = self.router,
                    took_ms = self.took.as_millis() as u64,
                    "poll ok"
                );
            }
            Some(e) => {
                m.polls
                    .get_or_create(&ResultLabel { result: "error" })
                    .inc();
                tracing::warn!(router = self.router, error = %e, "poll failed");
            }
        }
    }
}

/// The set of polled routers changed size.
pub struct RoutersOwned(pub usize);

impl InternalEvent for RoutersOwned {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "RoutersOwned";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.routers_owned
            .set(i64::try_from(self.0).unwrap_or(i64::MAX));
        tracing::info!(routers = self.0, "routers owned");
    }
}

/// A router's circuit breaker changed state.
pub struct BreakerChanged<'a> {
    pub router: &'a str,
    pub transition: crate::breaker::Transition,
}

impl InternalEvent for BreakerChanged<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "BreakerChanged";

    fn log_and_count(&self, m: &AgentMetrics) {
        use crate::breaker::Transition;
        match self.transition {
            Transition::Opened { failures, retry_in } => {
                m.breakers_open.inc();
                m.breaker_openings.inc();
                tracing::warn!(
                    router = self.router,
                    failures,
                    retry_in_s = retry_in.as_secs(),
                    "circuit breaker opened: polling throttled"
                );
            }
            Transition::Reopened { retry_in } => {
                tracing::info!(
                    router = self.router,
                    retry_in_s = retry_in.as_secs(),
                    "probe failed; circuit breaker stays open"
                );
            }
            Transition::Closed => {
                m.breakers_open.dec();
                tracing::info!(
                    router = self.router,
                    "circuit breaker closed: polling resumed"
                );
            }
        }
    }
}

/// A poll's result could not be handed to the uplink (it was not running: the agent is
/// stopping or the uplink is restarting), so it is lost.
pub struct PollDropped<'a> {
    pub router: &'a str,
}

impl InternalEvent for PollDropped<'_> {
    type Metrics = AgentMetrics;
    const NAME: &'static str = "PollDropped";

    fn log_and_count(&self, m: &AgentMetrics) {
        m.polls_dropped.inc();
        tracing::warn!(
            router = self.router,
            "uplink is not running; poll result dropped"
        );
    }
}
