//! The syslog receiver's events and metrics: each thing that happens to a message is a
//! [`SyslogEvent`] whose `emit` counts it and logs it in one place.
//!
//! The metrics appear as `syslog_*` under the agent's prefix.

use super::{KindLabel, ReasonLabel};
use crate::syslog::Transport;
use ispvm_proto::EventKind;
use ispvm_telemetry::{EventLog, InternalEvent, MetricsRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::net::IpAddr;
use std::sync::Arc;

ispvm_telemetry::label_set! {
    pub struct TransportLabel {
        pub transport: &'static str,
    }
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
pub struct SyslogMetrics {
    events_log: EventLog,
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

impl AsRef<EventLog> for SyslogMetrics {
    fn as_ref(&self) -> &EventLog {
        &self.events_log
    }
}

impl SyslogMetrics {
    /// The events emitted so far (tests read it instead of scraping `/metrics`).
    pub fn events(&self) -> &EventLog {
        &self.events_log
    }

    /// Standalone, for tests of the receiver; a running agent uses [`Self::register`].
    pub fn new() -> Arc<SyslogMetrics> {
        Self::register(&mut MetricsRegistry::new(super::PREFIX))
    }

    /// Registers every metric in the agent's registry (names start with `syslog_`).
    pub fn register(r: &mut MetricsRegistry) -> Arc<SyslogMetrics> {
        Arc::new(SyslogMetrics {
            events_log: r.events().clone(),
            received: r.counters(
                "syslog_received",
                "Syslog datagrams and TCP frames received, by transport",
            ),
            parsed: r.counter(
                "syslog_parsed",
                "Syslog messages parsed as RFC 3164 or RFC 5424",
            ),
            malformed: r.counters(
                "syslog_malformed",
                "Syslog messages dropped as malformed, by reason (parse, oversize, truncated)",
            ),
            filtered: r.counter(
                "syslog_filtered",
                "Syslog messages dropped by the minimum severity",
            ),
            suppressed: r.counter(
                "syslog_suppressed",
                "Repeated syslog messages suppressed within the dedup window",
            ),
            summaries: r.counter(
                "syslog_repeat_summaries",
                "\"Repeated N times\" summary events emitted",
            ),
            rate_limited: r.counters(
                "syslog_rate_limited",
                "Syslog messages dropped by the per-source rate limit, by transport",
            ),
            unknown_source: r.counters(
                "syslog_unknown_source",
                "Syslog messages (UDP) and connections (TCP) from addresses mapped to no device",
            ),
            events: r.counters(
                "syslog_events",
                "Events made from syslog and handed to the uplink, by kind",
            ),
            dropped: r.counters(
                "syslog_dropped",
                "Syslog messages or events lost inside the agent, by reason",
            ),
            tcp_connections: r.gauge("syslog_tcp_connections", "Open syslog TCP connections"),
            tcp_refused: r.counters(
                "syslog_tcp_refused",
                "Syslog TCP connections refused, by reason",
            ),
        })
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
pub enum SyslogEvent<'a> {
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

impl InternalEvent for SyslogEvent<'_> {
    type Metrics = SyslogMetrics;
    const NAME: &'static str = "SyslogEvent";

    fn name(&self) -> &'static str {
        match self {
            SyslogEvent::Received { .. } => "SyslogReceived",
            SyslogEvent::Parsed => "SyslogParsed",
            SyslogEvent::Malformed { .. } => "SyslogMalformed",
            SyslogEvent::Filtered { .. } => "SyslogFiltered",
            SyslogEvent::Suppressed { .. } => "SyslogSuppressed",
            SyslogEvent::Summarised { .. } => "SyslogSummarised",
            SyslogEvent::RateLimited { .. } => "SyslogRateLimited",
            SyslogEvent::UnknownSource { .. } => "SyslogUnknownSource",
            SyslogEvent::Emitted { .. } => "SyslogEmitted",
            SyslogEvent::Dropped { .. } => "SyslogDropped",
            SyslogEvent::TcpOpened { .. } => "SyslogTcpOpened",
            SyslogEvent::TcpClosed { .. } => "SyslogTcpClosed",
            SyslogEvent::TcpRefused { .. } => "SyslogTcpRefused",
        }
    }

    fn log_and_count(&self, m: &SyslogMetrics) {
        match *self {
            SyslogEvent::Received { transport } => {
                m.received
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
            }
            SyslogEvent::Parsed => {
                m.parsed.inc();
            }
            SyslogEvent::Malformed {
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
            SyslogEvent::Filtered { source } => {
                m.filtered.inc();
                tracing::trace!(%source, "syslog message below the minimum severity");
            }
            SyslogEvent::Suppressed { source } => {
                m.suppressed.inc();
                tracing::trace!(%source, "repeated syslog message suppressed");
            }
            SyslogEvent::Summarised { repeats } => {
                m.summaries.inc();
                tracing::debug!(repeats, "repeated syslog message summarised");
            }
            SyslogEvent::RateLimited { transport, source } => {
                m.rate_limited
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
                tracing::trace!(%source, transport = transport.as_str(), "syslog message rate-limited");
            }
            SyslogEvent::UnknownSource { transport, source } => {
                m.unknown_source
                    .get_or_create(&TransportLabel {
                        transport: transport.as_str(),
                    })
                    .inc();
                tracing::debug!(%source, transport = transport.as_str(), "syslog from an address mapped to no device");
            }
            SyslogEvent::Emitted { kind } => {
                m.events
                    .get_or_create(&KindLabel {
                        kind: kind.as_str(),
                    })
                    .inc();
            }
            SyslogEvent::Dropped { reason, count } => {
                m.dropped
                    .get_or_create(&ReasonLabel {
                        reason: reason.as_str(),
                    })
                    .inc_by(count);
                tracing::debug!(reason = reason.as_str(), count, "syslog data dropped");
            }
            SyslogEvent::TcpOpened { source } => {
                m.tcp_connections.inc();
                tracing::debug!(%source, "syslog TCP connection opened");
            }
            SyslogEvent::TcpClosed { source, why } => {
                m.tcp_connections.dec();
                tracing::debug!(%source, why, "syslog TCP connection closed");
            }
            SyslogEvent::TcpRefused { source, reason } => {
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
        let mut registry = MetricsRegistry::new(super::super::PREFIX);
        let m = SyslogMetrics::register(&mut registry);
        SyslogEvent::Received {
            transport: Transport::Udp,
        }
        .emit(&m);
        SyslogEvent::Malformed {
            transport: Transport::Udp,
            source: "192.0.2.1".parse().expect("ip"),
            reason: Malformed::Oversize,
            error: None,
        }
        .emit(&m);
        SyslogEvent::Emitted {
            kind: EventKind::LinkDown,
        }
        .emit(&m);
        SyslogEvent::TcpRefused {
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
        assert_eq!(m.events().count_named("SyslogMalformed"), 1);
        assert_eq!(registry.events().count_named("SyslogReceived"), 1);
        let text = registry.encode();
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
