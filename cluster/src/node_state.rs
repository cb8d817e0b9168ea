//! The gossip key schema: every key an agent publishes, as a `const` in one place, with a
//! typed reader over chitchat's [`NodeState`] and bounded writers.
//!
//! Values are small text (chitchat gossips strings); every writer checks its bound so
//! one agent cannot bloat every other agent's state, and every reader parses strictly so
//! a malformed or future value reads as absent rather than as a wrong number. The schema
//! is documented in `docs/cluster.md`.

use crate::ownership::Capabilities;
use chitchat::NodeState;

/// The agent's tenant; peers of another tenant are not members of its cluster.
pub const KEY_TENANT: &str = "tenant";
/// The PoP (site id) the agent runs in: ownership prefers agents of the router's site.
pub const KEY_SITE: &str = "site";
/// The agent's software version.
pub const KEY_VERSION: &str = "version";
/// Comma-separated capabilities (`routeros,snmp,syslog,icmp`).
pub const KEY_CAPABILITIES: &str = "caps";
/// `routers=N probes=N buffer_bytes=N`: how loaded the agent is.
pub const KEY_LOAD: &str = "load";
/// `ok` or `degraded: <reason>`.
pub const KEY_HEALTH: &str = "health";
/// Expiry of the agent's certificate, Unix seconds (operators see it on the cluster API).
pub const KEY_CERT_EXPIRY: &str = "cert_expiry_s";
/// `leaving` once the agent announced a graceful leave: peers stop giving it work at
/// once instead of waiting for the failure detector.
pub const KEY_STATUS: &str = "status";
/// Value of [`KEY_STATUS`] for an agent on its way out.
pub const STATUS_LEAVING: &str = "leaving";
/// Prefix of reachability verdicts: `reach:<target>` → [`Reach::encode`].
pub const REACH_PREFIX: &str = "reach:";

/// Longest value any key may hold.
pub const MAX_VALUE_LEN: usize = 256;
/// Longest probe target key (the ingest limit for ids).
pub const MAX_TARGET_LEN: usize = 128;
/// Most reachability keys one agent publishes; beyond it the agent reports to the
/// server only (gossip carries what the correlator needs most: many vantages of few
/// critical targets).
pub const MAX_REACH_KEYS: usize = 2_000;

/// Why a value was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("value of {key:?} is {len} bytes, over the {MAX_VALUE_LEN}-byte limit")]
    TooLong { key: String, len: usize },
    #[error("probe target key must be 1 to {MAX_TARGET_LEN} bytes without control characters")]
    BadTarget,
}

/// An agent's health as gossiped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    Degraded(String),
}

impl Health {
    /// `ok` or `degraded: <reason>`: what is gossiped and what the server shows.
    pub fn encode(&self) -> String {
        match self {
            Health::Ok => "ok".into(),
            Health::Degraded(why) => format!("degraded: {why}"),
        }
    }

    fn decode(s: &str) -> Option<Health> {
        if s == "ok" {
            return Some(Health::Ok);
        }
        s.strip_prefix("degraded: ")
            .map(|why| Health::Degraded(why.to_owned()))
    }
}

/// How loaded an agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    pub routers: u32,
    pub probes: u32,
    pub buffer_bytes: u64,
}

impl Load {
    fn encode(&self) -> String {
        format!(
            "routers={} probes={} buffer_bytes={}",
            self.routers, self.probes, self.buffer_bytes
        )
    }

    fn decode(s: &str) -> Option<Load> {
        let mut load = Load::default();
        for part in s.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "routers" => load.routers = v.parse().ok()?,
                "probes" => load.probes = v.parse().ok()?,
                "buffer_bytes" => load.buffer_bytes = v.parse().ok()?,
                _ => {}
            }
        }
        Some(load)
    }
}

/// One vantage's verdict on one probe target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// Loss of the last round, percent, kept to a tenth.
    pub loss_pct: f32,
    /// Round-trip time, µs; `None` when nothing came back.
    pub rtt_us: Option<u32>,
    /// When the round ended, Unix seconds.
    pub at_s: i64,
}

impl Reach {
    /// `<loss in tenths of a percent>,<rtt µs or ->,<unix s>`: e.g. `0,12345,1795510000`
    /// — about 20 bytes, so thousands of verdicts fit a gossip round.
    pub fn encode(&self) -> String {
        let loss = (self.loss_pct.clamp(0.0, 100.0) * 10.0).round() as u32;
        let rtt = self
            .rtt_us
            .map_or_else(|| "-".to_owned(), |r| r.to_string());
        format!("{loss},{rtt},{}", self.at_s)
    }

    /// Strict parse of [`Reach::encode`].
    pub fn decode(s: &str) -> Option<Reach> {
        let mut it = s.split(',');
        let loss: u32 = it.next()?.parse().ok()?;
        if loss > 1_000 {
            return None;
        }
        let rtt = match it.next()? {
            "-" => None,
            r => Some(r.parse().ok()?),
        };
        let at_s = it.next()?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(Reach {
            loss_pct: loss as f32 / 10.0,
            rtt_us: rtt,
            at_s,
        })
    }
}

/// What an agent publishes about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalInfo {
    pub tenant: String,
    pub site: String,
    pub version: String,
    pub capabilities: Capabilities,
    pub cert_expiry_s: i64,
}

fn checked(key: &str, value: String) -> Result<String, SchemaError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(SchemaError::TooLong {
            key: key.to_owned(),
            len: value.len(),
        });
    }
    Ok(value)
}

/// Writes the agent's identity keys into its own node state.
pub fn publish_local(state: &mut NodeState, info: &LocalInfo) -> Result<(), SchemaError> {
    let values = [
        (KEY_TENANT, checked(KEY_TENANT, info.tenant.clone())?),
        (KEY_SITE, checked(KEY_SITE, info.site.clone())?),
        (KEY_VERSION, checked(KEY_VERSION, info.version.clone())?),
        (KEY_CAPABILITIES, info.capabilities.encode()),
        (KEY_CERT_EXPIRY, info.cert_expiry_s.to_string()),
    ];
    for (k, v) in values {
        state.set(k, v);
    }
    Ok(())
}

/// Announces a graceful leave.
pub fn publish_leaving(state: &mut NodeState) {
    state.set(KEY_STATUS, STATUS_LEAVING);
}

pub fn publish_load(state: &mut NodeState, load: &Load) {
    state.set(KEY_LOAD, load.encode());
}

pub fn publish_health(state: &mut NodeState, health: &Health) -> Result<(), SchemaError> {
    state.set(KEY_HEALTH, checked(KEY_HEALTH, health.encode())?);
    Ok(())
}

/// Publishes one reachability verdict.
pub fn publish_reach(
    state: &mut NodeState,
    target: &str,
    reach: &Reach,
) -> Result<(), SchemaError> {
    if target.is_empty() || target.len() > MAX_TARGET_LEN || target.chars().any(char::is_control) {
        return Err(SchemaError::BadTarget);
    }
    state.set(format!("{REACH_PREFIX}{target}"), reach.encode());
    Ok(())
}

/// A typed view of a peer's node state.
#[derive(Clone, Copy)]
pub struct NodeView<'a>(pub &'a NodeState);

impl<'a> NodeView<'a> {
    pub fn tenant(&self) -> Option<&'a str> {
        self.0.get(KEY_TENANT)
    }

    pub fn site(&self) -> Option<&'a str> {
        self.0.get(KEY_SITE)
    }

    pub fn version(&self) -> Option<&'a str> {
        self.0.get(KEY_VERSION)
    }

    /// Capabilities; none when the key is missing (a node that has not said what it can
    /// do is given nothing to do).
    pub fn capabilities(&self) -> Capabilities {
        self.0
            .get(KEY_CAPABILITIES)
            .map(Capabilities::decode)
            .unwrap_or_default()
    }

    pub fn load(&self) -> Option<Load> {
        self.0.get(KEY_LOAD).and_then(Load::decode)
    }

    pub fn health(&self) -> Option<Health> {
        self.0.get(KEY_HEALTH).and_then(Health::decode)
    }

    pub fn leaving(&self) -> bool {
        self.0.get(KEY_STATUS) == Some(STATUS_LEAVING)
    }

    pub fn cert_expiry_s(&self) -> Option<i64> {
        self.0.get(KEY_CERT_EXPIRY).and_then(|v| v.parse().ok())
    }

    /// Every well-formed reachability verdict, by target.
    pub fn reachability(&self) -> impl Iterator<Item = (&'a str, Reach)> + 'a {
        self.0
            .key_values()
            .filter_map(|(k, v)| Some((k.strip_prefix(REACH_PREFIX)?, Reach::decode(v)?)))
            .take(MAX_REACH_KEYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::Capability;

    #[test]
    fn local_keys_round_trip_through_a_node_state() {
        let mut st = NodeState::for_test();
        let info = LocalInfo {
            tenant: "acme".into(),
            site: "lis".into(),
            version: "0.1.0".into(),
            capabilities: Capabilities::of(&[Capability::RouterOs, Capability::Icmp]),
            cert_expiry_s: 1_800_000_000,
        };
        publish_local(&mut st, &info).expect("publish");
        publish_load(
            &mut st,
            &Load {
                routers: 120,
                probes: 40,
                buffer_bytes: 4_096,
            },
        );
        publish_health(&mut st, &Health::Degraded("buffer 80% full".into())).expect("health");
        let v = NodeView(&st);
        assert_eq!(
            (v.tenant(), v.site(), v.version()),
            (Some("acme"), Some("lis"), Some("0.1.0"))
        );
        assert!(v.capabilities().has(Capability::Icmp));
        assert!(!v.capabilities().has(Capability::Snmp));
        assert_eq!(v.load().map(|l| l.routers), Some(120));
        assert_eq!(v.health(), Some(Health::Degraded("buffer 80% full".into())));
        assert_eq!(v.cert_expiry_s(), Some(1_800_000_000));
    }

    #[test]
    fn reachability_is_compact_and_strict() {
        let r = Reach {
            loss_pct: 33.3,
            rtt_us: Some(12_345),
            at_s: 1_795_510_000,
        };
        assert_eq!(r.encode(), "333,12345,1795510000");
        assert_eq!(Reach::decode(&r.encode()), Some(r));
        let lost = Reach {
            loss_pct: 100.0,
            rtt_us: None,
            at_s: 1,
        };
        assert_eq!(Reach::decode(&lost.encode()), Some(lost));
        for bad in ["", "1001,1,1", "1,x,1", "1,1", "1,1,1,1", "-1,1,1"] {
            assert_eq!(Reach::decode(bad), None, "{bad:?}");
        }
        let mut st = NodeState::for_test();
        publish_reach(&mut st, "core-lis-1", &r).expect("publish");
        st.set(format!("{REACH_PREFIX}garbled"), "nonsense");
        let seen: Vec<(&str, Reach)> = NodeView(&st).reachability().collect();
        assert_eq!(seen, vec![("core-lis-1", r)]);
        assert_eq!(publish_reach(&mut st, "", &r), Err(SchemaError::BadTarget));
    }

    #[test]
    fn oversized_values_are_refused() {
        let mut st = NodeState::for_test();
        let e = publish_health(&mut st, &Health::Degraded("x".repeat(300)));
        assert!(matches!(e, Err(SchemaError::TooLong { .. })));
        assert_eq!(NodeView(&st).health(), None, "nothing was written");
    }
}
