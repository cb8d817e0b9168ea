//! "Is this device down?" from several signals, never one.
//!
//! Ping from every agent that probes the device, the management plane (RouterOS API or
//! SNMP, reported as `device.up` by the polling agent), syslog heard from the device and
//! when anything was last heard. A device is down when every vantage loses it and the
//! management plane agrees; an API that does not answer while ping is fine is a
//! management-plane problem, and loss from some vantages but not others is a path
//! problem. Silence from everyone is "unknown", not "down": the monitor not hearing is
//! not the router failing.

use super::state::{Explanation, Level, Verdict};

/// Loss at or above this, percent, counts as "no reply" from a vantage.
pub const LOST_PCT: f64 = 100.0;

/// The signals one evaluation sees for a device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceSignals {
    /// Latest management-plane answer within the window: `None` when no report is fresh.
    pub api_up: Option<bool>,
    /// Latest ping loss per vantage (agent), percent, within the window.
    pub ping_loss_by_vantage: Vec<(String, f64)>,
    /// Syslog heard from the device recently: its control plane is alive.
    pub syslog_alive: bool,
    pub last_heard_ms: Option<i64>,
}

/// Judges the signals; `down_level` is the level of a confirmed outage. `None` when
/// nothing fresh was heard: unknown is neither down nor a recovery.
pub fn judge(s: &DeviceSignals, down_level: Level, now_ms: i64) -> Option<Verdict> {
    let lost: Vec<&str> = s
        .ping_loss_by_vantage
        .iter()
        .filter(|(_, loss)| *loss >= LOST_PCT)
        .map(|(v, _)| v.as_str())
        .collect();
    let vantages = s.ping_loss_by_vantage.len();
    let mut signals = Vec::new();
    match s.api_up {
        Some(true) => signals.push("management API answers".to_owned()),
        Some(false) => signals.push("management API does not answer".to_owned()),
        None => signals.push("no fresh management-plane report".to_owned()),
    }
    if vantages > 0 {
        signals.push(format!(
            "ping lost from {}/{} vantages{}",
            lost.len(),
            vantages,
            if lost.is_empty() {
                String::new()
            } else {
                format!(" ({})", lost.join(", "))
            }
        ));
    } else {
        signals.push("no ping probe".to_owned());
    }
    if s.syslog_alive {
        signals.push("syslog heard recently".to_owned());
    }
    if let Some(t) = s.last_heard_ms {
        signals.push(format!(
            "last heard {} s ago",
            now_ms.saturating_sub(t) / 1_000
        ));
    }

    let (level, summary) = if vantages > 0 && lost.len() == vantages {
        match s.api_up {
            Some(true) => (
                Some(Level::Warning),
                "ping lost from every vantage while the management API answers (ICMP filtered?)",
            ),
            _ if s.syslog_alive => (
                Some(Level::Warning),
                "ping lost from every vantage but the device still sends syslog",
            ),
            _ => (
                Some(down_level),
                "device down: no ping reply from any vantage and no management answer",
            ),
        }
    } else if !lost.is_empty() {
        (
            Some(Level::Warning),
            "partial reachability: some vantages lose the device, others reach it (path problem)",
        )
    } else if s.api_up == Some(false) {
        if vantages > 0 || s.syslog_alive {
            (
                Some(Level::Warning),
                "management plane unreachable while the device answers ping or sends syslog",
            )
        } else {
            (
                Some(down_level),
                "device unreachable: the management plane does not answer and no ping probe can confirm it is alive",
            )
        }
    } else if s.api_up.is_none() && vantages == 0 {
        return None;
    } else {
        (None, "device reachable")
    };
    Some(Verdict {
        level,
        explanation: Explanation {
            summary: summary.to_owned(),
            metric: Some("device.reachability".into()),
            signals,
            ..Explanation::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(v: &[(&str, f64)]) -> Vec<(String, f64)> {
        v.iter().map(|(a, l)| (a.to_string(), *l)).collect()
    }

    #[test]
    fn down_needs_every_vantage_and_the_api() {
        let s = DeviceSignals {
            api_up: Some(false),
            ping_loss_by_vantage: ping(&[("a", 100.0), ("b", 100.0)]),
            ..DeviceSignals::default()
        };
        assert_eq!(
            judge(&s, Level::Critical, 0).map(|v| v.level),
            Some(Some(Level::Critical))
        );
    }

    #[test]
    fn api_down_with_ping_fine_is_the_management_plane() {
        let s = DeviceSignals {
            api_up: Some(false),
            ping_loss_by_vantage: ping(&[("a", 0.0)]),
            ..DeviceSignals::default()
        };
        let v = judge(&s, Level::Critical, 0).expect("fresh signals");
        assert_eq!(v.level, Some(Level::Warning));
        assert!(v.explanation.summary.contains("management plane"));
    }

    #[test]
    fn loss_from_one_vantage_is_a_path_problem() {
        let s = DeviceSignals {
            api_up: Some(true),
            ping_loss_by_vantage: ping(&[("a", 100.0), ("b", 0.0)]),
            ..DeviceSignals::default()
        };
        let v = judge(&s, Level::Critical, 0).expect("fresh signals");
        assert_eq!(v.level, Some(Level::Warning));
        assert!(v.explanation.summary.contains("path"));
        assert!(v.explanation.signals.iter().any(|x| x.contains("1/2")));
    }

    #[test]
    fn syslog_keeps_a_silent_router_from_being_down() {
        let s = DeviceSignals {
            api_up: Some(false),
            ping_loss_by_vantage: ping(&[("a", 100.0)]),
            syslog_alive: true,
            ..DeviceSignals::default()
        };
        assert_eq!(
            judge(&s, Level::Critical, 0).map(|v| v.level),
            Some(Some(Level::Warning))
        );
    }

    #[test]
    fn silence_is_unknown_not_down() {
        assert_eq!(judge(&DeviceSignals::default(), Level::Critical, 0), None);
    }
}
