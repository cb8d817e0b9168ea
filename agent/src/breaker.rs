//! The circuit breaker that protects a router (and the agent) from polling that keeps
//! failing.
//!
//! Closed: polls run at their schedule. After `failure_threshold` consecutive failures the
//! breaker opens: polls stop touching the router for an open period, and the poller reports
//! "monitoring degraded". When the period ends one probe poll is let through (half-open);
//! success closes the breaker, failure reopens it for twice as long (up to `open_max`),
//! with jitter so that many routers behind one broken path do not retry in lockstep. The
//! open periods are therefore also the reconnect backoff.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub open_min: Duration,
    pub open_max: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            open_min: Duration::from_secs(30),
            open_max: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A change of state worth an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Polling stopped after `failures` consecutive failures; next probe in `retry_in`.
    Opened { failures: u32, retry_in: Duration },
    /// The probe failed; next probe in `retry_in`.
    Reopened { retry_in: Duration },
    /// A poll succeeded after the breaker had opened.
    Closed,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    failures: u32,
    open_for: Duration,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: BreakerState::Closed,
            failures: 0,
            open_for: config.open_min,
            open_until: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a poll may touch the router now. An open breaker whose period is over
    /// turns half-open and lets this one probe through.
    pub fn allows(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open => {
                if self.open_until.is_some_and(|t| now >= t) {
                    self.state = BreakerState::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    pub fn record_success(&mut self) -> Option<Transition> {
        let was = self.state;
        self.state = BreakerState::Closed;
        self.failures = 0;
        self.open_for = self.config.open_min;
        self.open_until = None;
        (was != BreakerState::Closed).then_some(Transition::Closed)
    }

    /// Records a failed poll at `now`; `jitter` in `0.0..=1.0` spreads the open period by
    /// up to +20 %.
    pub fn record_failure(&mut self, now: Instant, jitter: f64) -> Option<Transition> {
        self.failures = self.failures.saturating_add(1);
        let open = |b: &mut Breaker| {
            let spread = b.open_for.mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0));
            b.state = BreakerState::Open;
            b.open_until = Some(now + spread);
            b.open_for = (b.open_for * 2).min(b.config.open_max);
            spread
        };
        match self.state {
            BreakerState::Closed if self.failures >= self.config.failure_threshold.max(1) => {
                let retry_in = open(self);
                Some(Transition::Opened {
                    failures: self.failures,
                    retry_in,
                })
            }
            BreakerState::Closed => None,
            BreakerState::HalfOpen | BreakerState::Open => {
                let retry_in = open(self);
                Some(Transition::Reopened { retry_in })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            open_min: Duration::from_secs(10),
            open_max: Duration::from_secs(35),
        }
    }

    #[test]
    fn opens_after_threshold_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        assert_eq!(b.record_failure(t0, 0.0), None);
        assert_eq!(b.record_failure(t0, 0.0), None);
        assert_eq!(
            b.record_failure(t0, 0.0),
            Some(Transition::Opened {
                failures: 3,
                retry_in: Duration::from_secs(10)
            })
        );
        assert!(!b.allows(t0 + Duration::from_secs(9)));
        assert!(b.allows(t0 + Duration::from_secs(10)));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.record_success(), Some(Transition::Closed));
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.record_success(), None);
    }

    #[test]
    fn failed_probes_back_off_exponentially_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        for _ in 0..3 {
            b.record_failure(t0, 0.0);
        }
        let mut now = t0;
        let mut periods = Vec::new();
        for _ in 0..4 {
            now += Duration::from_secs(100);
            assert!(b.allows(now));
            match b.record_failure(now, 0.0) {
                Some(Transition::Reopened { retry_in }) => periods.push(retry_in.as_secs()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(periods, [20, 35, 35, 35]);
    }

    #[test]
    fn jitter_spreads_the_period() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        b.record_failure(t0, 1.0);
        b.record_failure(t0, 1.0);
        assert_eq!(
            b.record_failure(t0, 1.0),
            Some(Transition::Opened {
                failures: 3,
                retry_in: Duration::from_secs(12)
            })
        );
    }
}
