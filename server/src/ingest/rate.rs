//! Ingest rate limits: a token bucket of batches per (tenant, agent), and one of samples
//! per tenant (the tenant's `max_samples_per_s` quota).
//!
//! An agent that sends faster than its budget, or whose tenant's agents together send
//! more samples than the tenant's quota, gets `overloaded` with the time until the
//! budget allows the batch as `retry_after_ms` (429 + `Retry-After` over HTTPS); it
//! keeps the batch and retries then. One noisy agent cannot starve the others of the
//! store, nor one tenant the other tenants.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Batches per second each agent may send, with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RateLimit {
    pub batches_per_s: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        // An agent flushes about once a second; replays after an outage come faster.
        RateLimit {
            batches_per_s: 50.0,
            burst: 200,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every agent seen.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for the agent, or says how long until one is available.
    pub fn take(&self, tenant: &str, agent: &str, now: Instant) -> Result<(), Duration> {
        let rate = self.limit.batches_per_s.max(0.001);
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry((tenant.to_owned(), agent.to_owned()))
            .or_insert(Bucket {
                tokens: burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// A tenant's sample budget may accumulate this many seconds of its rate, so agents
/// flushing at the same moment are not refused for arriving together.
const SAMPLE_BURST_S: f64 = 2.0;

/// How long a tenant whose quota is zero samples per second is told to wait.
const BLOCKED_RETRY: Duration = Duration::from_secs(60);

/// The sample budgets of every tenant seen (quota `max_samples_per_s`).
#[derive(Debug, Default)]
pub struct SampleQuota {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl SampleQuota {
    /// Takes `samples` from the tenant's budget of `per_s` samples per second, or says
    /// how long until the budget allows them. A batch larger than the whole burst is let
    /// through when the budget is full (and leaves it in debt), so no batch within the
    /// item limit waits forever.
    pub fn take(
        &self,
        tenant: &str,
        samples: u64,
        per_s: u64,
        now: Instant,
    ) -> Result<(), Duration> {
        if samples == 0 {
            return Ok(());
        }
        if per_s == 0 {
            return Err(BLOCKED_RETRY);
        }
        let rate = per_s as f64;
        let capacity = rate * SAMPLE_BURST_S;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        let need = (samples as f64).min(capacity);
        if bucket.tokens >= need {
            bucket.tokens -= samples as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((need - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_sample_budget() {
        let q = SampleQuota::default();
        let t0 = Instant::now();
        // 1 000/s with a 2 s burst: 2 000 at once, then 1 000 per second.
        assert!(q.take("t", 1_500, 1_000, t0).is_ok());
        let wait = q.take("t", 1_000, 1_000, t0).expect_err("over budget");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(
            q.take("u", 1_000, 1_000, t0).is_ok(),
            "tenants are separate"
        );
        assert!(
            q.take("t", 1_000, 1_000, t0 + Duration::from_millis(500))
                .is_ok()
        );
        // Larger than the whole burst: through once the budget is full again.
        assert!(
            q.take("t", 5_000, 1_000, t0 + Duration::from_secs(1))
                .is_err()
        );
        assert!(
            q.take("t", 5_000, 1_000, t0 + Duration::from_secs(3))
                .is_ok()
        );
        assert!(q.take("t", 1, 1_000, t0 + Duration::from_secs(4)).is_err());
        assert_eq!(q.take("z", 1, 0, t0), Err(BLOCKED_RETRY));
        assert!(q.take("z", 0, 0, t0).is_ok());
    }

    #[test]
    fn burst_then_rate() {
        let l = RateLimiter::new(RateLimit {
            batches_per_s: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take("t", "a", t0).is_ok());
        }
        let wait = l.take("t", "a", t0).expect_err("empty");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(
            l.take("t", "b", t0).is_ok(),
            "another agent has its own bucket"
        );
        assert!(l.take("t", "a", t0 + Duration::from_millis(500)).is_ok());
    }
}
