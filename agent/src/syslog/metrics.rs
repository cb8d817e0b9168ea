//! The syslog receiver's metrics, and its telemetry as types: each thing that happens to
//! a message is a [`Telemetry`] value whose `emit` counts it and logs it in one place.
//!
//! Register the metrics into the agent's registry with [`SyslogMetrics::register`]; they
//! appear as `syslog_*` under the registry's prefix.

use super::Transport;
use ispvm_proto::EventKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TransportLabel {
    pub transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Why a message was not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not RFC 3164 nor RFC 5424 (bad PRI, broken structured data, binary, empty).
    Parse,
    /// Longer than the datagram or frame limit.
    Oversize,
    /// A TCP frame the sender did not finish before closing.
    Truncated,
}

impl Malformed {
    pub const fn as_str(self) -> &'static str {
        match self {
            Malformed::Parse => "parse",
            Malformed::Oversize => "oversize",
            Malformed::Truncated => "truncated",
        }
    }
}

/// Why a message was lost after it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The queue to the normaliser was full (UDP only; TCP waits).
    QueueFull,
    /// The uplink was not running.
    UplinkDown,
}

impl Dropped {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::UplinkDown => "uplink_down",
        }
    }
}

/// Why a TCP connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    ConnectionLimit,
    UnknownSource,
}

impl Refused {
    pub const fn as_str(self) -> &'static str {
        match self {
            Refused::ConnectionLimit => "connection_limit",
            Refused::UnknownSource => "unknown_source",
        }
    }
}

/// Every counter of the receiver.
#[derive(Default)]
pub struct SyslogMetrics {
    received: Family<TransportLabel, Counter>,
    parsed: Counter,
    malformed: Family<ReasonLabel, Counter>,
    filtered: Counter,
    suppressed: Counter,
    summaries: Counter,
    rate_limited: Family<TransportLabel, Counter>,
    unknown_source: Family<TransportLabel, Counter>,
    events: Family<KindLabel, Counter>,
    dropped: Family<ReasonLabel, Counter>,
    tcp_connections: Gauge,
    tcp_refused: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for SyslogMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SyslogMetrics")
            .field(&self.snapshot())
            .finish()
    }
}

/// The counters at one moment (tests, `/v1/state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyslogCounts {
    pub received_udp: u64,
    pub received_tcp: u64,
    pub parsed: u64,
    pub malformed_parse: u64,
    pub malformed_oversize: u64,
    pub malformed_truncated: u64,
    pub filtered: u64,
    pub suppressed: u64,
    pub summaries: u64,
    pub rate_limited: u64,
    pub unknown_source: u64,
    pub events: u64,
    pub dropped_queue_full: u64,
    pub dropped_uplink_down: u64,
    pub tcp_connections: i64,
    pub tcp_refused_limit: u64,
    pub tcp_refused_unknown: u64,
}

/// Kinds the receiver emits.
const KINDS: [EventKind; 6] = [
    EventKind::LinkDown,
    EventKind::LinkUp,
    EventKind::OspfStateChange,
    EventKind::BgpStateChange,
    EventKind::LoginFailure,
    EventKind::Syslog,
];

impl SyslogMetrics {
    pub fn new() -> Arc<SyslogMetrics> {
        Arc::new(SyslogMetrics::default())
    }

    /// Adds every metric to `registry` (names start with `syslog_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "syslog_received",
            "Syslog datagrams and TCP frames received, by transport",
            self.received.clone(),
        );
        registry.register(
            "syslog_parsed",
            "Syslog messages parsed as RFC 3164 or RFC 5424",
            self.parsed.clone(),
        );
        registry.register(
            "syslog_malformed",
            "Syslog messages dropped as malformed, by reason (parse, oversize, truncated)",
            self.malformed.clone(),
        );
        registry.register(
            "syslog_filtered",
            "Syslog messages dropped by the minimum severity",
            self.filtered.clone(),
        );
        registry.register(
            "syslog_suppressed",
            "Repeated syslog messages suppressed within the dedup window",
            self.suppressed.clone(),
        );
        registry.register(
            "syslog_repeat_summaries",
            "\"Repeated N times\" summary events emitted",
            self.summaries.clone(),
        );
        registry.register(
            "syslog_rate_limited",
            "Syslog messages dropped by the per-source rate limit, by transport",
            self.rate_limited.clone(),
        );
        registry.register(
            "syslog_unknown_source",
            "Syslog messages (UDP) and connections (TCP) from addresses mapped to no device",
            self.unknown_source.clone(),
        );
        registry.register(
            "syslog_events",
            "Events made from syslog and handed to the uplink, by kind",
            self.events.clone(),
        );
        registry.register(
            "syslog_dropped",
            "Syslog messages or events lost inside the agent, by reason",
            self.dropped.clone(),
        );
        registry.register(
            "syslog_tcp_connections",
            "Open syslog TCP connections",
            self.tcp_connections.clone(),
        );
        registry.register(
            "syslog_tcp_refused",
            "Syslog TCP connections refused, by reason",
            self.tcp_refused.clone(),
        );
    }

    pub fn snapshot(&self) -> SyslogCounts {
        let t = |f: &Family<TransportLabel, Counter>, transport| {
            f.get_or_create(&TransportLabel { transport }).get()
        };
        let r = |f: &Family<ReasonLabel, Counter>, reason| {
            f.get_or_create(&ReasonLabel { reason }).get()
        };
        SyslogCounts {
            received_udp: t(&self.received, "udp"),
            received_tcp: t(&self.received, "tcp"),
            parsed: self.parsed.get(),
            malformed_parse: r(&self.malformed, Malformed::Parse.as_str()),
            malformed_oversize: r(&self.malformed, Malformed::Oversize.as_str()),
            malformed_truncated: r(&self.malformed, Malformed::Truncated.as_str()),
            filtered: self.filtered.get(),
            suppressed: self.suppressed.get(),
            summaries: self.summaries.get(),
            rate_limited: t(&self.rate_limited, "udp") + t(&self.rate_limited, "tcp"),
            unknown_source: t(&self.unknown_source, "udp") + t(&self.unknown_source, "tcp"),
            events: KINDS
                .iter()
                .map(|k| {
                    self.events
                        .get_or_create(&KindLabel { kind: k.as_str() })
                        .get()
                })
                .sum(),
            dropped_queue_full: r(&self.dropped, Dropped::QueueFull.as_str()),
            dropped_uplink_down: r(&self.dropped, Dropped::UplinkDown.as_str()),
            tcp_connections: self.tcp_connections.get(),
            tcp_refused_limit: r(&self.tcp_refused, Refused::ConnectionLimit.as_str()),
            tcp_refused_unknown: r(&self.tcp_refused, Refused::UnknownSource.as_str()),
        }
    }
}

/// Something that happened to a message or connection.
pub enum Telemetry<'a> {
    Received {
        transport: Transport,
    },
    Parsed,
    Malformed {
        transport: Transport,
        source: IpAddr,
        reason: Malformed,
        error: Option<&'a dyn std::fmt::Display>,
    },
    Filtered {
        source: IpAddr,
    },
    Suppressed {
        source: IpAddr,
    },
    Summarised {
        repeats: &'a str,
    },
    RateLimited {
        transport: Transport,
        source: IpAddr,
    },
    UnknownSource {
        transport: Transport,
        source: IpAddr,
    },
    Emitted {
        kind: EventKind,
    },
    Dropped {
        reason: Dropped,
        count: u64,
    },
    TcpOpened {
        source: IpAddr,
    },
    TcpClosed {
        source: IpAddr,
        why: &'a str,
    },
    TcpRefused {
        source: IpAddr,
        reason: Refused,
    },
}

impl Telemetry<'_> {
    pub fn emit(&self, m: &SyslogMetrics) {
        match *self {
            Telemetry::Received { transport } => {
                m.received
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
            }
            Telemetry::Parsed => {
                m.parsed.inc();
            }
            Telemetry::Malformed {
                transport,
                source,
                reason,
                error,
            } => {
                m.malformed
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc();
                match error {
                    Some(e) => {
                        tracing::debug!(%source, transport = transport.as_str(), reason = reason.as_str(), error = %e, "malformed syslog message dropped")
                    }
                    None => {
                        tracing::debug!(%source, transport = transport.as_str(), reason = reason.as_str(), "malformed syslog message dropped")
                    }
                }
            }
            Telemetry::Filtered { source } => {
                m.filtered.inc();
                tracing::trace!(%source, "syslog message below the minimum severity");
            }
            Telemetry::Suppressed { source } => {
                m.suppressed.inc();
                tracing::trace!(%source, "repeated syslog message suppressed");
            }
            Telemetry::Summarised { repeats } => {
                m.summaries.inc();
                tracing::debug!(repeats, "repeated syslog message summarised");
            }
            Telemetry::RateLimited { transport, source } => {
                m.rate_limited
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
                tracing::trace!(%source, transport = transport.as_str(), "syslog message rate-limited");
            }
            Telemetry::UnknownSource { transport, source } => {
                m.unknown_source
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
                tracing::debug!(%source, transport = transport.as_str(), "syslog from an address mapped to no device");
            }
            Telemetry::Emitted { kind } => {
                m.events
                    .get_or_create(&KindLabel {
                        kind: kind.as_str(),
                    })
                    .inc();
            }
            Telemetry::Dropped { reason, count } => {
                m.dropped
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc_by(count);
                tracing::debug!(reason = reason.as_str(), count, "syslog data dropped");
            }
            Telemetry::TcpOpened { source } => {
                m.tcp_connections.inc();
                tracing::debug!(%source, "syslog TCP connection opened");
            }
            Telemetry::TcpClosed { source, why } => {
                m.tcp_connections.dec();
                tracing::debug!(%source, why, "syslog TCP connection closed");
            }
            Telemetry::TcpRefused { source, reason } => {
                m.tcp_refused
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc();
                if reason == Refused::UnknownSource {
                    m.unknown_source
                        .get_or_create(&TransportLabel { transport: "tcp" })
                        .inc();
                    tracing::debug!(%source, "syslog TCP connection from an unknown address refused");
                } else {
                    tracing::warn!(%source, "syslog TCP connection refused: connection limit reached");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_counts() {
        let m = SyslogMetrics::new();
        let mut registry = Registry::with_prefix("ispvm_agent");
        m.register(&mut registry);
        Telemetry::Received {
            transport: Transport::Udp,
        }
        .emit(&m);
        Telemetry::Malformed {
            transport: Transport::Udp,
            source: "192.0.2.1".parse().expect("ip"),
            reason: Malformed::Oversize,
            error: None,
        }
        .emit(&m);
        Telemetry::Emitted {
            kind: EventKind::LinkDown,
        }
        .emit(&m);
        Telemetry::TcpRefused {
            source: "192.0.2.1".parse().expect("ip"),
            reason: Refused::UnknownSource,
        }
        .emit(&m);
        let s = m.snapshot();
        assert_eq!(s.received_udp, 1);
        assert_eq!(s.malformed_oversize, 1);
        assert_eq!(s.events, 1);
        assert_eq!(s.unknown_source, 1);
        assert_eq!(s.tcp_refused_unknown, 1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains("ispvm_agent_syslog_received_total{transport=\"udp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ispvm_agent_syslog_events_total{kind=\"link_down\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ispvm_agent_syslog_malformed_total{reason=\"oversize\"} 1"),
            "{text}"
        );
    }
}
