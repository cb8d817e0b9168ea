//! Routing state from RouterOS replies: BGP sessions and OSPF neighbours as canonical
//! samples, with an event whenever a session or adjacency changes state.
//!
//! RouterOS v7 lists BGP sessions under `/routing/bgp/session` (`remote.address`,
//! `established`, `prefix-count`); v6 lists peers under `/routing/bgp/peer`
//! (`remote-address`, `state`, `prefix-count`). OSPF neighbours are under
//! `/routing/ospf/neighbor` on both, keyed by `router-id`. A peer that was known and no
//! longer appears is reported down: v7 may drop a session that is not connected.

use ispvm_proto::routeros::Reply;
use ispvm_proto::{EntityKey, Event, EventKind, MetricName, MetricSample, Severity};
use std::collections::BTreeMap;

/// One routing peer's state as read from the router.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReading {
    pub peer: String,
    pub up: bool,
    /// Routes received, when the router reports them.
    pub prefixes: Option<u64>,
    /// RouterOS's word for the state (`established`, `active`, `Full`, ...).
    pub state: String,
}

/// Reads BGP sessions (v7) or peers (v6).
pub fn bgp_readings(items: &[Reply], v7: bool) -> Vec<PeerReading> {
    items
        .iter()
        .filter_map(|r| {
            let peer = if v7 {
                r.get("remote.address")
            } else {
                r.get("remote-address")
            }?;
            let established =
                r.get("established") == Some("true") || r.get("state") == Some("established");
            let state = r.get("state").map(str::to_owned).unwrap_or_else(|| {
                if established {
                    "established".into()
                } else {
                    "down".into()
                }
            });
            Some(PeerReading {
                peer: peer.to_owned(),
                up: established,
                prefixes: r.get("prefix-count").and_then(|n| n.parse().ok()),
                state,
            })
        })
        .collect()
}

/// Reads OSPF neighbours; an adjacency counts as up only when `Full`.
pub fn ospf_readings(items: &[Reply]) -> Vec<PeerReading> {
    items
        .iter()
        .filter_map(|r| {
            let peer = r.get("router-id").or_else(|| r.get("address"))?;
            let state = r.get("state").unwrap_or("unknown");
            Some(PeerReading {
                peer: peer.to_owned(),
                up: state.eq_ignore_ascii_case("full"),
                prefixes: None,
                state: state.to_owned(),
            })
        })
        .collect()
}

/// Which protocol a [`PeerTracker`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Bgp,
    Ospf,
}

/// Remembers each peer's last state so changes become events.
#[derive(Debug)]
pub struct PeerTracker {
    protocol: Protocol,
    last: BTreeMap<String, bool>,
}

impl PeerTracker {
    pub fn new(protocol: Protocol) -> Self {
        PeerTracker {
            protocol,
            last: BTreeMap::new(),
        }
    }

    /// Turns a reading of all peers into samples and change events.
    pub fn update(
        &mut self,
        device: &str,
        readings: &[PeerReading],
        ts_ms: i64,
        samples: &mut Vec<MetricSample>,
        events: &mut Vec<Event>,
    ) {
        let (state_metric, kind, name) = match self.protocol {
            Protocol::Bgp => (
                MetricName::BgpSessionState,
                EventKind::BgpStateChange,
                "BGP session",
            ),
            Protocol::Ospf => (
                MetricName::OspfNeighborState,
                EventKind::OspfStateChange,
                "OSPF neighbour",
            ),
        };
        let entity = |peer: &str| EntityKey::Peer {
            device: device.to_owned(),
            peer: peer.to_owned(),
        };
        let mut seen = BTreeMap::new();
        for r in readings {
            seen.insert(r.peer.clone(), r.up);
            samples.push(MetricSample {
                entity: entity(&r.peer),
                metric: state_metric,
                ts_ms,
                value: if r.up { 1.0 } else { 0.0 },
            });
            if let Some(p) = r.prefixes.filter(|_| self.protocol == Protocol::Bgp) {
                samples.push(MetricSample {
                    entity: entity(&r.peer),
                    metric: MetricName::BgpPrefixesIn,
                    ts_ms,
                    value: p as f64,
                });
            }
            if let Some(&was) = self.last.get(&r.peer)
                && was != r.up
            {
                let mut e = Event::new(
                    entity(&r.peer),
                    kind,
                    if r.up {
                        Severity::Notice
                    } else {
                        Severity::Warning
                    },
                    format!("{name} {} on {device} is {}", r.peer, r.state),
                );
                e.ts_ms = ts_ms;
                e.attrs.insert("state".into(), r.state.clone());
                e.attrs
                    .insert("previous".into(), if was { "up" } else { "down" }.into());
                events.push(e);
            }
        }
        for (peer, was_up) in &self.last {
            if seen.contains_key(peer) {
                continue;
            }
            samples.push(MetricSample {
                entity: entity(peer),
                metric: state_metric,
                ts_ms,
                value: 0.0,
            });
            if *was_up {
                let mut e = Event::new(
                    entity(peer),
                    kind,
                    Severity::Warning,
                    format!("{name} {peer} on {device} is gone"),
                );
                e.ts_ms = ts_ms;
                e.attrs.insert("state".into(), "gone".into());
                e.attrs.insert("previous".into(), "up".into());
                events.push(e);
            }
            seen.insert(peer.clone(), false);
        }
        self.last = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_proto::routeros::ReplyKind;

    fn re(attrs: &[(&str, &str)]) -> Reply {
        attrs
            .iter()
            .fold(Reply::new(ReplyKind::Re), |r, (k, v)| r.with_attr(*k, *v))
    }

    #[test]
    fn v7_and_v6_bgp_formats() {
        let v7 = bgp_readings(
            &[re(&[
                ("remote.address", "10.0.0.1"),
                ("established", "true"),
                ("prefix-count", "12"),
            ])],
            true,
        );
        assert_eq!(
            v7[0],
            PeerReading {
                peer: "10.0.0.1".into(),
                up: true,
                prefixes: Some(12),
                state: "established".into()
            }
        );
        let v6 = bgp_readings(
            &[re(&[
                ("remote-address", "203.0.113.1"),
                ("state", "active"),
                ("prefix-count", "0"),
            ])],
            false,
        );
        assert_eq!(
            (v6[0].peer.as_str(), v6[0].up, v6[0].state.as_str()),
            ("203.0.113.1", false, "active")
        );
        // The v6 key on a v7 reading is not taken for a peer.
        assert!(bgp_readings(&[re(&[("remote-address", "x")])], true).is_empty());
    }

    #[test]
    fn changes_and_disappearances_become_events() {
        let mut t = PeerTracker::new(Protocol::Ospf);
        let (mut s, mut e) = (Vec::new(), Vec::new());
        let full = ospf_readings(&[re(&[("router-id", "10.0.0.2"), ("state", "Full")])]);
        t.update("r1", &full, 1, &mut s, &mut e);
        assert!(
            e.is_empty(),
            "the first reading is a baseline, not a change"
        );
        t.update("r1", &[], 2, &mut s, &mut e);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, EventKind::OspfStateChange);
        assert_eq!(s.last().map(|x| x.value), Some(0.0));
        t.update("r1", &full, 3, &mut s, &mut e);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].attrs.get("previous").map(String::as_str), Some("down"));
    }
}
