//! A device's operational status from the signals the server has.
//!
//! Today the signal is the management plane (`device.up`, reported by the agent that
//! polls the device) and how fresh it is. "Down" deliberately needs a fresh report of the
//! API not answering; silence (no fresh report at all) is `unknown`, because the monitor
//! not hearing is not the router failing. Ping from several vantages, SNMP and syslog
//! join this decision with the alert engine.

use serde::Serialize;

/// What the NOC sees for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Its management plane answered recently.
    Up,
    /// Its management plane recently failed to answer.
    Down,
    /// No recent report: the device, its agent or the path to it may be at fault.
    Unknown,
}

/// How old a report may be and still count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusPolicy {
    pub stale_after_ms: i64,
}

impl Default for StatusPolicy {
    fn default() -> Self {
        // Three missed polls of the default fast tier (10 s).
        StatusPolicy {
            stale_after_ms: 30_000,
        }
    }
}

impl StatusPolicy {
    /// Status from the latest `device.up` sample `(ts_ms, value)`, at `now_ms`.
    pub fn device_status(&self, latest_up: Option<(i64, f64)>, now_ms: i64) -> DeviceStatus {
        match latest_up {
            Some((ts, _)) if now_ms.saturating_sub(ts) > self.stale_after_ms => {
                DeviceStatus::Unknown
            }
            Some((_, v)) if v >= 0.5 => DeviceStatus::Up,
            Some(_) => DeviceStatus::Down,
            None => DeviceStatus::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_freshness_and_value() {
        let p = StatusPolicy {
            stale_after_ms: 1_000,
        };
        assert_eq!(
            p.device_status(Some((10_000, 1.0)), 10_500),
            DeviceStatus::Up
        );
        assert_eq!(
            p.device_status(Some((10_000, 0.0)), 10_500),
            DeviceStatus::Down
        );
        assert_eq!(
            p.device_status(Some((10_000, 1.0)), 11_001),
            DeviceStatus::Unknown
        );
        assert_eq!(p.device_status(None, 0), DeviceStatus::Unknown);
    }
}
