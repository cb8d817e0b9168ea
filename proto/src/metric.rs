//! The canonical metric catalogue (ARCHITECTURE §3).
//!
//! One name per quantity whatever collector produced it, so the RouterOS API collector and
//! the SNMP collector feed the same series. The string names are part of the product's
//! contract (dashboards, rules, the API); they never change once shipped.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! metric_catalogue {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $unit:literal; )+) => {
        /// A canonical metric. Serialised by its stable string name in JSON and by its
        /// catalogue index in bincode.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MetricName {
            $( $(#[$doc])* $variant, )+
        }

        impl MetricName {
            /// Every metric of the catalogue, in catalogue order.
            pub const ALL: &'static [MetricName] = &[ $( MetricName::$variant, )+ ];

            /// The stable string name, e.g. `device.cpu_pct`.
            pub const fn as_str(self) -> &'static str {
                match self { $( MetricName::$variant => $name, )+ }
            }

            /// The unit of the value, for documentation and the UI.
            pub const fn unit(self) -> &'static str {
                match self { $( MetricName::$variant => $unit, )+ }
            }
        }

        impl FromStr for MetricName {
            type Err = UnknownMetric;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(MetricName::$variant), )+
                    other => Err(UnknownMetric(other.chars().take(64).collect())),
                }
            }
        }
    };
}

metric_catalogue! {
    /// 1 when the device answers its management plane, 0 when it does not.
    DeviceUp => "device.up", "bool";
    DeviceCpuPct => "device.cpu_pct", "%";
    DeviceMemUsedPct => "device.mem_used_pct", "%";
    DeviceUptimeS => "device.uptime_s", "s";
    DeviceTemperatureC => "device.temperature_c", "°C";
    PingRttMs => "ping.rtt_ms", "ms";
    PingLossPct => "ping.loss_pct", "%";
    PingJitterMs => "ping.jitter_ms", "ms";
    InterfaceRxBps => "interface.rx_bps", "bit/s";
    InterfaceTxBps => "interface.tx_bps", "bit/s";
    InterfaceErrors => "interface.errors", "1/s";
    InterfaceDrops => "interface.drops", "1/s";
    /// 1 when the interface is running (link up), 0 otherwise.
    InterfaceRunning => "interface.running", "bool";
    /// 1 when the BGP session is established, 0 otherwise.
    BgpSessionState => "bgp.session_state", "bool";
    BgpPrefixesIn => "bgp.prefixes_in", "prefixes";
    BgpPrefixesOut => "bgp.prefixes_out", "prefixes";
    /// 1 when the OSPF adjacency is Full, 0 otherwise.
    OspfNeighborState => "ospf.neighbor_state", "bool";
    PppoeActiveSessions => "pppoe.active_sessions", "sessions";
    DhcpLeases => "dhcp.leases", "leases";
}

/// Written as its stable name: a string out of the catalogue.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for MetricName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(MetricName::ALL.iter().map(|m| m.as_str())))
            .description(Some("A metric of the canonical catalogue"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for MetricName {}

/// A metric name outside the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric name {0:?}")]
pub struct UnknownMetric(pub String);

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MetricName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            // Compact form: the catalogue index. New metrics are only ever appended.
            let index = MetricName::ALL.iter().position(|m| m == self).unwrap_or(0);
            serializer.serialize_u16(u16::try_from(index).unwrap_or(u16::MAX))
        }
    }
}

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let index = u16::deserialize(deserializer)?;
            MetricName::ALL
                .get(usize::from(index))
                .copied()
                .ok_or_else(|| D::Error::custom(format!("unknown metric index {index}")))
        }
    }
}

/// The content type of `/metrics` on the server and the agents: prometheus-client
/// writes the OpenMetrics text format (with its `# EOF` terminator), so that is what
/// scrapers are told, not the older Prometheus text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in MetricName::ALL {
            assert!(seen.insert(m.as_str()), "duplicate name {}", m.as_str());
            assert_eq!(m.as_str().parse::<MetricName>(), Ok(*m));
        }
        assert_eq!(MetricName::ALL.len(), 19);
    }

    #[test]
    fn catalogue_matches_architecture() {
        let names: Vec<&str> = MetricName::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "device.up",
                "device.cpu_pct",
                "device.mem_used_pct",
                "device.uptime_s",
                "device.temperature_c",
                "ping.rtt_ms",
                "ping.loss_pct",
                "ping.jitter_ms",
                "interface.rx_bps",
                "interface.tx_bps",
                "interface.errors",
                "interface.drops",
                "interface.running",
                "bgp.session_state",
                "bgp.prefixes_in",
                "bgp.prefixes_out",
                "ospf.neighbor_state",
                "pppoe.active_sessions",
                "dhcp.leases",
            ]
        );
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert!("device.cpu".parse::<MetricName>().is_err());
    }
}
