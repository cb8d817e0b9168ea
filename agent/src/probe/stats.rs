//! What one round of echoes (or connects) amounts to: loss, min/avg/max RTT and jitter.
//!
//! Jitter is the mean absolute difference between the RTTs of consecutive *answered*
//! echoes, taken in the order they were sent: `mean(|rtt[i] - rtt[i-1]|)`. For echoes sent
//! at a fixed spacing this is the RFC 3550 §6.4.1 transit-time difference |D(i-1,i)|,
//! averaged over the round instead of smoothed with the RFC's 1/16 gain: a round holds
//! only a handful of echoes, too few for the running estimator to settle, and an
//! arithmetic mean over one round is what an operator can check by hand (mtr reports the
//! same figure). A lost echo is skipped, so the pair around it spans the gap. Fewer than
//! two answers give no jitter at all rather than a made-up zero.

use serde::Serialize;
use std::time::Duration;

/// What happened to one echo or connect attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EchoOutcome {
    /// Answered after `rtt`; `from` is the address that answered.
    Reply {
        rtt: Duration,
        from: std::net::IpAddr,
    },
    /// No answer within the timeout.
    Timeout,
    /// A router (or the target) answered with an ICMP error (destination unreachable,
    /// time exceeded), or a TCP connect was refused: the target did not answer.
    Unreachable,
    /// The packet could not even leave this host (no route, blackhole route, firewall):
    /// the path is broken, so this is a loss like any other.
    SendFailed(std::io::ErrorKind),
}

/// The figures of one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RoundStats {
    /// Echoes attempted (including those that failed to leave the host).
    pub sent: u32,
    /// Echoes answered by the target.
    pub received: u32,
    /// Echoes answered by an ICMP error or refused.
    pub unreachable: u32,
    /// Echoes that failed locally on send.
    pub send_failed: u32,
    /// `100 × (sent − received) / sent`; 100 for an empty round.
    pub loss_pct: f64,
    pub min_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Mean absolute difference of consecutive RTTs; see the module documentation.
    pub jitter_ms: Option<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

impl RoundStats {
    /// The figures of a round from its outcomes, in the order the echoes were sent.
    pub fn from_outcomes(outcomes: &[EchoOutcome]) -> Self {
        let mut stats = RoundStats {
            sent: u32::try_from(outcomes.len()).unwrap_or(u32::MAX),
            ..RoundStats::default()
        };
        let mut rtts = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            match o {
                EchoOutcome::Reply { rtt, .. } => rtts.push(ms(*rtt)),
                EchoOutcome::Timeout => {}
                EchoOutcome::Unreachable => stats.unreachable += 1,
                EchoOutcome::SendFailed(_) => stats.send_failed += 1,
            }
        }
        stats.received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
        stats.loss_pct = if stats.sent == 0 {
            100.0
        } else {
            100.0 * f64::from(stats.sent - stats.received) / f64::from(stats.sent)
        };
        if !rtts.is_empty() {
            let n = rtts.len() as f64;
            stats.min_ms = rtts.iter().copied().reduce(f64::min);
            stats.max_ms = rtts.iter().copied().reduce(f64::max);
            stats.avg_ms = Some(rtts.iter().sum::<f64>() / n);
        }
        if rtts.len() >= 2 {
            let diffs: f64 = rtts.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
            stats.jitter_ms = Some(diffs / (rtts.len() - 1) as f64);
        }
        stats
    }

    /// True when not one echo was answered.
    pub fn all_lost(&self) -> bool {
        self.received == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn reply(ms: u64) -> EchoOutcome {
        EchoOutcome::Reply {
            rtt: Duration::from_millis(ms),
            from: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    #[test]
    fn full_round() {
        let s = RoundStats::from_outcomes(&[reply(10), reply(14), reply(12), reply(12)]);
        assert_eq!((s.sent, s.received), (4, 4));
        assert_eq!(s.loss_pct, 0.0);
        assert_eq!(s.min_ms, Some(10.0));
        assert_eq!(s.max_ms, Some(14.0));
        assert_eq!(s.avg_ms, Some(12.0));
        // |14-10| + |12-14| + |12-12| = 6 over 3 pairs
        assert_eq!(s.jitter_ms, Some(2.0));
    }

    #[test]
    fn losses_are_skipped_for_jitter() {
        let s = RoundStats::from_outcomes(&[
            reply(10),
            EchoOutcome::Timeout,
            reply(20),
            EchoOutcome::Unreachable,
            EchoOutcome::SendFailed(std::io::ErrorKind::NetworkUnreachable),
        ]);
        assert_eq!(
            (s.sent, s.received, s.unreachable, s.send_failed),
            (5, 2, 1, 1)
        );
        assert_eq!(s.loss_pct, 60.0);
        assert_eq!(s.jitter_ms, Some(10.0));
        assert_eq!(s.avg_ms, Some(15.0));
    }

    #[test]
    fn one_answer_has_no_jitter_and_none_has_no_rtt() {
        let one = RoundStats::from_outcomes(&[reply(5), EchoOutcome::Timeout]);
        assert_eq!(one.jitter_ms, None);
        assert_eq!(one.avg_ms, Some(5.0));
        let none = RoundStats::from_outcomes(&[EchoOutcome::Timeout; 3]);
        assert!(none.all_lost());
        assert_eq!(none.loss_pct, 100.0);
        assert_eq!(
            (none.min_ms, none.avg_ms, none.jitter_ms),
            (None, None, None)
        );
        assert_eq!(RoundStats::from_outcomes(&[]).loss_pct, 100.0);
    }
}
