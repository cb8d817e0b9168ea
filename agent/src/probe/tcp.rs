//! TCP connect probes: the time of the three-way handshake is the round trip, and a
//! connect that is refused, fails or times out is a lost echo.
//!
//! Useful where ICMP is filtered but a service port answers, and to see whether the
//! service itself (not just the host) is there. Each connect is its own socket by the
//! nature of TCP; it is closed as soon as the handshake completes, nothing is sent.

use super::config::RoundPlan;
use super::join_all;
use super::stats::{EchoOutcome, RoundStats};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One connect to `target` from `source` (when given), waiting up to `timeout`.
pub async fn connect_once(
    target: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> EchoOutcome {
    let started = Instant::now();
    let connect = crate::source_address::tcp_connect(target, source);
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => {
            let rtt = started.elapsed();
            drop(stream);
            EchoOutcome::Reply {
                rtt,
                from: target.ip(),
            }
        }
        // RST from the target, or an ICMP error from a router on the way.
        Ok(Err(e))
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            ) =>
        {
            EchoOutcome::Unreachable
        }
        Ok(Err(e)) => EchoOutcome::SendFailed(e.kind()),
        Err(_) => EchoOutcome::Timeout,
    }
}

/// One round of `plan.count` connects, one every `plan.spacing`, all in flight together.
pub async fn tcp_round(target: SocketAddr, source: Option<IpAddr>, plan: &RoundPlan) -> RoundStats {
    let start = tokio::time::Instant::now();
    let connects: Vec<_> = (0..plan.count)
        .map(|i| {
            let at = start + plan.spacing.saturating_mul(u32::from(i));
            async move {
                tokio::time::sleep_until(at).await;
                connect_once(target, source, plan.timeout).await
            }
        })
        .collect();
    RoundStats::from_outcomes(&join_all(connects).await)
}
