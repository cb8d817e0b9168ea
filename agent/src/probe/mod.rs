//! Active probes from the PoP: ICMP echo, TCP connect and UDP echo rounds giving `ping.rtt_ms`,
//! `ping.loss_pct` and `ping.jitter_ms` for `EntityKey::ProbeTarget(key)`, and traceroute
//! on demand. See `docs/probes.md`.
//!
//! - [`icmp::IcmpPinger`]: one ICMP socket per address family shared by every target.
//! - [`tcp`]: connect probes.
//! - [`udp_echo`]: UDP echo (RFC 862) probes.
//! - [`stats`]: loss, min/avg/max and jitter of a round.
//! - [`traceroute::traceroute`]: hops toward a target.
//! - [`ProbeTarget`]: one target's configuration and echo identity; runs its rounds and
//!   turns them into samples. The prober actor (`crate::actors::prober`) drives it.

pub mod config;
pub mod icmp;
pub mod stats;
pub mod tcp;
pub mod traceroute;
pub mod udp_echo;

pub use crate::internal_events::probe::ProbeMetrics;
pub use config::{
    IcmpSocketMode, ProbeConfigError, ProbeKind, ProbeTargetConfig, ProbesConfig, RoundPlan,
};
pub use icmp::{EchoSession, Family, IcmpPinger, SocketKind};
pub use stats::{EchoOutcome, RoundStats};
pub use traceroute::{Hop, traceroute};

use ispvm_proto::{EntityKey, MetricName, MetricSample};
use serde::Serialize;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// Why a probe round or a traceroute could not run. A target that does not answer is not
/// an error: that is a round with 100 % loss.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Config(#[from] ProbeConfigError),
    #[error("cannot open an {family} ICMP socket: {source}")]
    Socket {
        family: &'static str,
        source: std::io::Error,
    },
    #[error("cannot open an {family} ICMP socket of the configured kind ({}): {}", wanted.as_str(), match wanted {
        SocketKind::Raw => "raw sockets need root or CAP_NET_RAW",
        SocketKind::Dgram => "net.ipv4.ping_group_range excludes the agent's group",
    })]
    SocketKind {
        family: &'static str,
        wanted: SocketKind,
    },
    #[error("traceroute needs a raw ICMP socket (root or CAP_NET_RAW)")]
    TracerouteNeedsRaw,
    #[error("ICMP sockets must be opened inside the Tokio runtime")]
    NoRuntime,
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("resolving {host} took longer than {timeout_ms} ms")]
    ResolveTimeout { host: String, timeout_ms: u64 },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("cannot send to {target}: {source}")]
    Send {
        target: IpAddr,
        source: std::io::Error,
    },
    #[error("cannot open a UDP socket toward {target}: {source}")]
    UdpSocket {
        target: SocketAddr,
        source: std::io::Error,
    },
}

/// Resolves a target's address: an IP literal as is, a name through the system resolver
/// (first address returned), within `timeout`.
pub async fn resolve(address: &str, timeout: Duration) -> Result<IpAddr, ProbeError> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(ip);
    }
    let lookup = tokio::net::lookup_host((address, 0));
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => Err(ProbeError::ResolveTimeout {
            host: address.to_owned(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
        Ok(Err(source)) => Err(ProbeError::Resolve {
            host: address.to_owned(),
            source,
        }),
        Ok(Ok(mut addrs)) => addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| ProbeError::NoAddress {
                host: address.to_owned(),
            }),
    }
}

/// What one round of one target produced, kept for `/v1/state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundReport {
    /// When the round started, Unix ms; the timestamp of its samples.
    pub ts_ms: i64,
    /// The address probed (after resolution).
    pub address: Option<IpAddr>,
    /// The round's figures; `None` when it could not run.
    pub stats: Option<RoundStats>,
    /// Why the round could not run.
    pub error: Option<String>,
    pub took_ms: u64,
}

/// One probe target: its configuration, round plan and echo identity.
#[derive(Debug)]
pub struct ProbeTarget {
    config: ProbeTargetConfig,
    plan: RoundPlan,
    session: EchoSession,
    /// The agent's `source_address` (TCP and UDP echo probes bind it; ICMP through the
    /// pinger's sockets).
    source: Option<IpAddr>,
}

impl ProbeTarget {
    /// Validates the configuration and takes an echo identity from the shared pinger.
    pub fn new(config: ProbeTargetConfig, pinger: &IcmpPinger) -> Result<Self, ProbeError> {
        config.validate()?;
        Ok(ProbeTarget {
            plan: config.plan(),
            session: pinger.session(),
            config,
            source: pinger.source(),
        })
    }

    /// The same target probing from `source` (the agent's `source_address`).
    pub fn with_source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    pub fn key(&self) -> &str {
        &self.config.key
    }

    pub fn config(&self) -> &ProbeTargetConfig {
        &self.config
    }

    /// Runs one round: resolves the address, sends the echoes (or connects), and returns
    /// the figures with the address probed.
    pub async fn round(&mut self, pinger: &IcmpPinger) -> Result<(IpAddr, RoundStats), ProbeError> {
        let ip = resolve(&self.config.address, self.plan.timeout).await?;
        let stats = match self.config.kind {
            ProbeKind::Icmp => pinger.round(ip, &self.plan, &mut self.session).await?,
            ProbeKind::Tcp { port } => {
                tcp::tcp_round(SocketAddr::new(ip, port), self.source, &self.plan).await
            }
            ProbeKind::UdpEcho { port } => {
                let target = SocketAddr::new(ip, port);
                udp_echo::udp_echo_round(target, self.source, &self.plan)
                    .await
                    .map_err(|source| ProbeError::UdpSocket { target, source })?
            }
        };
        Ok((ip, stats))
    }

    /// The samples of a round for this target.
    pub fn samples(&self, ts_ms: i64, stats: &RoundStats) -> Vec<MetricSample> {
        round_samples(&self.config.key, ts_ms, stats)
    }
}

/// The canonical samples of a round: `ping.loss_pct` always; `ping.rtt_ms` (the mean RTT)
/// when something answered; `ping.jitter_ms` when at least two echoes did. A value that
/// was not measured is left out rather than reported as zero, so "no answer" can never
/// look like "0 ms". A round that sent nothing gives no samples.
pub fn round_samples(key: &str, ts_ms: i64, stats: &RoundStats) -> Vec<MetricSample> {
    if stats.sent == 0 {
        return Vec::new();
    }
    let entity = EntityKey::ProbeTarget(key.to_owned());
    let sample = |metric, value| MetricSample {
        entity: entity.clone(),
        metric,
        ts_ms,
        value,
    };
    let mut out = vec![sample(MetricName::PingLossPct, stats.loss_pct)];
    if let Some(avg) = stats.avg_ms {
        out.push(sample(MetricName::PingRttMs, avg));
    }
    if let Some(jitter) = stats.jitter_ms {
        out.push(sample(MetricName::PingJitterMs, jitter));
    }
    out
}

/// Runs futures concurrently on the current task and returns their outputs in order.
///
/// Rounds hold a handful of echoes, so polling each unfinished one on every wake is
/// cheaper than spawning a task per echo, and lets echoes borrow the round's payload and
/// client instead of cloning them.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_leave_out_what_was_not_measured() {
        let lost = RoundStats::from_outcomes(&[EchoOutcome::Timeout; 3]);
        let s = round_samples("t1", 5, &lost);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].metric, MetricName::PingLossPct);
        assert_eq!(s[0].value, 100.0);
        assert_eq!(s[0].entity, EntityKey::ProbeTarget("t1".into()));

        let from = IpAddr::from([127, 0, 0, 1]);
        let two = RoundStats::from_outcomes(&[
            EchoOutcome::Reply {
                rtt: Duration::from_millis(2),
                from,
            },
            EchoOutcome::Reply {
                rtt: Duration::from_millis(4),
                from,
            },
        ]);
        let s = round_samples("t1", 5, &two);
        let names: Vec<_> = s.iter().map(|s| s.metric).collect();
        assert_eq!(
            names,
            [
                MetricName::PingLossPct,
                MetricName::PingRttMs,
                MetricName::PingJitterMs
            ]
        );
        assert!(round_samples("t1", 5, &RoundStats::default()).is_empty());
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let futs: Vec<_> = (0..5u64)
            .map(|i| async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
                i
            })
            .collect();
        assert_eq!(join_all(futs).await, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn resolves_literals_and_localhost() {
        let t = Duration::from_secs(2);
        assert_eq!(
            resolve("::1", t).await.expect("resolves"),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        );
        assert!(
            resolve("localhost", t)
                .await
                .expect("resolves")
                .is_loopback()
        );
        assert!(resolve("no-such-host.invalid", t).await.is_err());
    }
}
