//! Per-agent ingest rate limits: a token bucket per (tenant, agent).
//!
//! An agent that sends faster than its budget gets `overloaded` with the time until its
//! next token as `retry_after_ms` (429 + `Retry-After` over HTTPS); it keeps the batch
//! and retries then. One noisy agent cannot starve the others of the store.

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

#[cfg(test)]
mod tests {
    use super::*;

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
