//! Per-source token buckets: a source may send `per_second` messages per second on
//! average and `burst` at once; what exceeds it is dropped and counted, and the drops per
//! source are kept for the periodic "messages dropped" report.
//!
//! Memory is bounded: at most `max_sources` buckets. When full, buckets that have
//! refilled completely are forgotten (a full bucket is the same as a new one); if none
//! has, new sources share one overflow bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    max_sources: usize,
    buckets: HashMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
    dropped: HashMap<IpAddr, u64>,
}

impl RateLimiter {
    /// `per_second` of 0 (or less, or not finite) disables the limit.
    pub fn new(per_second: f64, burst: u32, max_sources: usize) -> RateLimiter {
        RateLimiter {
            rate: if per_second.is_finite() {
                per_second.max(0.0)
            } else {
                0.0
            },
            burst: f64::from(burst.max(1)),
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
            overflow: None,
            dropped: HashMap::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token for a message from `source`; false when it must be dropped.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.is_enabled() {
            return true;
        }
        let (rate, burst) = (self.rate, self.burst);
        if !self.buckets.contains_key(&source) && self.buckets.len() >= self.max_sources {
            self.buckets.retain(|_, b| {
                b.refill(now, rate, burst);
                b.tokens < burst
            });
        }
        let bucket = if self.buckets.len() < self.max_sources || self.buckets.contains_key(&source)
        {
            self.buckets.entry(source).or_insert(Bucket {
                tokens: burst,
                last: now,
            })
        } else {
            self.overflow.get_or_insert(Bucket {
                tokens: burst,
                last: now,
            })
        };
        bucket.refill(now, rate, burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            if self.dropped.len() < self.max_sources || self.dropped.contains_key(&source) {
                *self.dropped.entry(source).or_insert(0) += 1;
            }
            false
        }
    }

    /// Drops per source since the last call, for the report.
    pub fn take_dropped(&mut self) -> Vec<(IpAddr, u64)> {
        let mut v: Vec<_> = self.dropped.drain().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn burst_then_rate() {
        let mut rl = RateLimiter::new(10.0, 5, 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        let passed = (0..20).filter(|_| rl.allow(a, t0)).count();
        assert_eq!(passed, 5);
        // 0.5 s later: 5 more tokens.
        let t1 = t0 + Duration::from_millis(500);
        let passed = (0..20).filter(|_| rl.allow(a, t1)).count();
        assert_eq!(passed, 5);
        // Another source has its own bucket.
        assert!(rl.allow(ip("10.0.0.2"), t1));
        assert_eq!(rl.take_dropped(), vec![(a, 30)]);
        assert!(rl.take_dropped().is_empty());
        // The bucket never holds more than the burst.
        let t2 = t1 + Duration::from_secs(3600);
        let passed = (0..20).filter(|_| rl.allow(a, t2)).count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn disabled() {
        let mut rl = RateLimiter::new(0.0, 1, 10);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| rl.allow(ip("10.0.0.1"), t0)));
        let mut rl = RateLimiter::new(f64::NAN, 1, 10);
        assert!(rl.allow(ip("10.0.0.1"), t0));
    }

    #[test]
    fn bounded_sources() {
        let mut rl = RateLimiter::new(1.0, 2, 3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(rl.allow(ip(&format!("10.0.0.{i}")), t0));
        }
        // Full table, nobody refilled: the newcomer uses the shared overflow bucket.
        assert!(rl.allow(ip("10.0.1.1"), t0));
        assert!(rl.allow(ip("10.0.1.2"), t0));
        assert!(!rl.allow(ip("10.0.1.3"), t0));
        assert_eq!(rl.tracked_sources(), 3);
        // Later the idle buckets have refilled and are forgotten.
        let t1 = t0 + Duration::from_secs(10);
        assert!(rl.allow(ip("10.0.1.4"), t1));
        assert_eq!(rl.tracked_sources(), 1);
    }
}
