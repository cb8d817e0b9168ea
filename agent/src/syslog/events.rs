//! A parsed syslog message becomes an [`Event`]: typed when it is a RouterOS line the
//! agent understands ([`super::routeros`]), `syslog` otherwise.
//!
//! Every event keeps the original line (attr `raw`, bounded) and says where it came from
//! (`origin=syslog`, `source`, `transport`, `format`, `facility`, `syslog_severity`, and
//! `host`, `app`, `procid`, `msgid`, `device_time`, `topics` when present). Text that
//! reaches an event is cleaned of control characters and bounded, and the attribute count
//! stays within the envelope's limit with room for what the pipeline adds.

use super::routeros::{self, Recognised, Split};
use super::{SyslogMessage, SyslogSeverity, Transport, clean_name, clean_text};
use ispvm_proto::{EntityKey, Event, EventKind, Severity};
use std::net::IpAddr;

/// Attributes the envelope accepts on one event (`ispvm_proto::Limits::max_event_attrs`).
pub const MAX_ATTRS: usize = 32;
/// Attributes the pipeline may add after normalisation (event-only mark, repeat
/// summaries: `event_only`, `repeated`, `first_seen_ms`, `last_seen_ms`, `summary_of`,
/// `summary_kind`).
pub const PIPELINE_ATTRS: usize = 6;
/// Longest name (interface, peer, user) put in an entity or attribute.
const NAME_MAX: usize = 128;
/// Longest short header attribute (host, app, ...).
const SHORT_MAX: usize = 256;

/// Where and how a message arrived.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The device key the source address maps to.
    pub device: &'a str,
    pub source: IpAddr,
    pub transport: Transport,
    /// When the agent received it, Unix ms: the event's time.
    pub received_ms: i64,
    /// Bound on `raw` and on the event message, bytes.
    pub max_text: usize,
}

/// An event and what the pipeline needs to filter and deduplicate it.
#[derive(Debug, Clone)]
pub struct Normalised {
    pub event: Event,
    /// A RouterOS line recognised as link, OSPF, BGP or login event: these are what the
    /// agent is there for and are not subject to the severity filter.
    pub typed: bool,
    /// The severity the sender gave (PRI).
    pub syslog_severity: SyslogSeverity,
    /// What repeats are compared on: the message without its header (timestamps differ
    /// between repeats), whitespace collapsed.
    pub dedup_text: String,
    /// For state changes: the subject whose successive states must stay in order
    /// (`link:ether1`, `bgp:10.0.0.1`, `ospf:10.0.0.2`).
    pub state_key: Option<String>,
}

/// A name usable in an entity key: cleaned, non-empty, bounded.
fn entity_name(s: &str) -> Option<String> {
    let c = clean_name(s.trim(), NAME_MAX);
    (!c.is_empty()).then_some(c)
}

struct Attrs<'e> {
    event: &'e mut Event,
    cap: usize,
}

impl Attrs<'_> {
    fn put(&mut self, key: &str, value: &str, max: usize) {
        if self.event.attrs.len() < self.cap || self.event.attrs.contains_key(key) {
            self.event
                .attrs
                .insert(key.to_owned(), clean_text(value, max));
        }
    }

    fn opt(&mut self, key: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.put(key, v, max);
        }
    }
}

/// Collapses runs of whitespace to one space.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns one message into an event.
pub fn normalise(msg: &SyslogMessage, raw: &[u8], ctx: &Context<'_>) -> Normalised {
    let device = ctx.device;
    let split = routeros::split(&msg.message).or_else(|| {
        // RFC 5424 senders may put the topics in APP-NAME.
        msg.app_name
            .as_deref()
            .filter(|a| a.contains(','))
            .and_then(routeros::split)
            .map(|s| Split {
                prefix: None,
                topics: s.topics,
                text: &msg.message,
            })
    });
    let recognised = split.as_ref().and_then(routeros::recognise);
    let pri_severity = msg.severity.to_event();
    let original = if msg.message.trim().is_empty() {
        msg.app_name
            .clone()
            .unwrap_or_else(|| "(empty message)".into())
    } else {
        msg.message.clone()
    };

    let (kind, severity, entity, message, state_key, typed) = match &recognised {
        Some(Recognised::Link {
            interface,
            up,
            details,
            ..
        }) => match entity_name(interface) {
            Some(name) => {
                let (kind, severity, word) = if *up {
                    (EventKind::LinkUp, Severity::Notice, "up")
                } else {
                    (EventKind::LinkDown, Severity::Warning, "down")
                };
                let message = match details {
                    Some(d) => format!("{device} {name} link {word} ({d})"),
                    None => format!("{device} {name} link {word}"),
                };
                let key = format!("link:{name}");
                let entity = EntityKey::Interface {
                    device: device.to_owned(),
                    name,
                };
                (kind, severity, entity, message, Some(key), true)
            }
            None => generic(device, pri_severity, &original),
        },
        Some(Recognised::Ospf {
            neighbor,
            old_state,
            new_state,
            ..
        }) => match entity_name(neighbor) {
            Some(peer) => {
                let full = |s: &str| s.eq_ignore_ascii_case("full");
                let severity = if full(new_state) {
                    Severity::Notice
                } else if new_state.eq_ignore_ascii_case("down")
                    || old_state.as_deref().is_some_and(full)
                {
                    Severity::Warning
                } else {
                    Severity::Info
                };
                let message = match old_state {
                    Some(old) => format!("OSPF neighbour {peer} on {device}: {old} -> {new_state}"),
                    None => format!("OSPF neighbour {peer} on {device} is {new_state}"),
                };
                let key = format!("ospf:{peer}");
                let entity = EntityKey::Peer {
                    device: device.to_owned(),
                    peer,
                };
                (
                    EventKind::OspfStateChange,
                    severity,
                    entity,
                    message,
                    Some(key),
                    true,
                )
            }
            None => generic(device, pri_severity, &original),
        },
        Some(Recognised::Bgp {
            peer,
            old_state,
            new_state,
            reason,
            ..
        }) => match entity_name(peer) {
            Some(peer) => {
                let established = |s: &str| s == "Established";
                let severity = if established(new_state) {
                    Severity::Notice
                } else if new_state == "Idle" || old_state.as_deref().is_some_and(established) {
                    Severity::Warning
                } else {
                    Severity::Info
                };
                let mut message = match old_state {
                    Some(old) => format!("BGP session {peer} on {device}: {old} -> {new_state}"),
                    None => format!("BGP session {peer} on {device} is {new_state}"),
                };
                if let Some(r) = reason {
                    message.push_str(&format!(" ({r})"));
                }
                let key = format!("bgp:{peer}");
                let entity = EntityKey::Peer {
                    device: device.to_owned(),
                    peer,
                };
                (
                    EventKind::BgpStateChange,
                    severity,
                    entity,
                    message,
                    Some(key),
                    true,
                )
            }
            None => generic(device, pri_severity, &original),
        },
        Some(Recognised::LoginFailure { user, from, via }) => {
            let mut message = format!("login failure on {device} for user {user}");
            if let Some(f) = from {
                message.push_str(&format!(" from {f}"));
            }
            if let Some(v) = via {
                message.push_str(&format!(" via {v}"));
            }
            (
                EventKind::LoginFailure,
                Severity::Warning,
                EntityKey::Device(device.to_owned()),
                message,
                None,
                true,
            )
        }
        Some(Recognised::Account { .. }) | None => generic(device, pri_severity, &original),
    };

    let mut event = Event::new(entity, kind, severity, clean_text(&message, ctx.max_text));
    event.ts_ms = ctx.received_ms;
    let mut a = Attrs {
        event: &mut event,
        cap: MAX_ATTRS - PIPELINE_ATTRS,
    };
    a.put("origin", "syslog", SHORT_MAX);
    a.put("source", &ctx.source.to_string(), SHORT_MAX);
    a.put("transport", ctx.transport.as_str(), SHORT_MAX);
    a.put("format", msg.format.as_str(), SHORT_MAX);
    a.put("facility", msg.facility.as_str(), SHORT_MAX);
    a.put("syslog_severity", msg.severity.as_str(), SHORT_MAX);
    a.put("raw", &String::from_utf8_lossy(raw), ctx.max_text);
    a.opt("host", msg.hostname.as_deref(), SHORT_MAX);
    a.opt("app", msg.app_name.as_deref(), SHORT_MAX);
    a.opt("procid", msg.proc_id.as_deref(), SHORT_MAX);
    a.opt("msgid", msg.msg_id.as_deref(), SHORT_MAX);
    a.opt("device_time", msg.timestamp.as_deref(), SHORT_MAX);
    if let Some(s) = &split {
        a.put("topics", s.topics, SHORT_MAX);
        a.opt("prefix", s.prefix, SHORT_MAX);
    }
    match &recognised {
        Some(Recognised::Link {
            interface,
            details,
            speed,
            duplex,
            ..
        }) => {
            a.put("interface", interface, NAME_MAX);
            a.opt("link_details", details.as_deref(), SHORT_MAX);
            a.opt("speed", speed.as_deref(), SHORT_MAX);
            a.opt("duplex", duplex.as_deref(), SHORT_MAX);
        }
        Some(Recognised::Ospf {
            neighbor,
            old_state,
            new_state,
            version,
            interface,
        }) => {
            a.put("neighbor", neighbor, NAME_MAX);
            a.opt("old_state", old_state.as_deref(), SHORT_MAX);
            a.put("new_state", new_state, SHORT_MAX);
            a.put(
                "up",
                if new_state.eq_ignore_ascii_case("full") {
                    "true"
                } else {
                    "false"
                },
                8,
            );
            a.opt("ospf_version", version.as_deref(), SHORT_MAX);
            a.opt("ospf_interface", interface.as_deref(), NAME_MAX);
        }
        Some(Recognised::Bgp {
            peer,
            session,
            old_state,
            new_state,
            reason,
        }) => {
            a.put("peer", peer, NAME_MAX);
            a.opt("session", session.as_deref(), NAME_MAX);
            a.opt("old_state", old_state.as_deref(), SHORT_MAX);
            a.put("new_state", new_state, SHORT_MAX);
            a.put(
                "up",
                if new_state == "Established" {
                    "true"
                } else {
                    "false"
                },
                8,
            );
            a.opt("reason", reason.as_deref(), SHORT_MAX);
        }
        Some(Recognised::LoginFailure { user, from, via }) => {
            a.put("user", user, NAME_MAX);
            a.opt("from", from.as_deref(), NAME_MAX);
            a.opt("via", via.as_deref(), NAME_MAX);
        }
        Some(Recognised::Account {
            user,
            logged_in,
            from,
            via,
        }) => {
            a.put("user", user, NAME_MAX);
            a.put(
                "account_action",
                if *logged_in {
                    "logged_in"
                } else {
                    "logged_out"
                },
                16,
            );
            a.opt("from", from.as_deref(), NAME_MAX);
            a.opt("via", via.as_deref(), NAME_MAX);
        }
        None => {}
    }
    for sd in &msg.structured_data {
        for (name, value) in &sd.params {
            a.put(&format!("sd.{}.{}", sd.id, name), value, SHORT_MAX);
        }
        if sd.params.is_empty() {
            a.put(&format!("sd.{}", sd.id), "", SHORT_MAX);
        }
    }

    let dedup_text = collapse(&format!(
        "{}|{}",
        msg.app_name.as_deref().unwrap_or(""),
        msg.message
    ));
    Normalised {
        event,
        typed,
        syslog_severity: msg.severity,
        dedup_text,
        state_key,
    }
}

fn generic(
    device: &str,
    severity: Severity,
    original: &str,
) -> (EventKind, Severity, EntityKey, String, Option<String>, bool) {
    (
        EventKind::Syslog,
        severity,
        EntityKey::Device(device.to_owned()),
        original.to_owned(),
        None,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::parse;

    fn ctx() -> Context<'static> {
        Context {
            device: "edge1",
            source: "192.0.2.1".parse().expect("ip"),
            transport: Transport::Udp,
            received_ms: 1_700_000_000_000,
            max_text: 512,
        }
    }

    fn norm(line: &str) -> Normalised {
        let m = parse(line.as_bytes()).expect("parse");
        normalise(&m, line.as_bytes(), &ctx())
    }

    fn attr<'a>(n: &'a Normalised, k: &str) -> Option<&'a str> {
        n.event.attrs.get(k).map(String::as_str)
    }

    #[test]
    fn link_down_v6_bsd() {
        let n = norm("<28>Jan  5 10:00:01 edge1 interface,info ether1 link down");
        assert!(n.typed);
        assert_eq!(n.event.kind, EventKind::LinkDown);
        assert_eq!(n.event.severity, Severity::Warning);
        assert_eq!(
            n.event.entity,
            EntityKey::Interface {
                device: "edge1".into(),
                name: "ether1".into()
            }
        );
        assert_eq!(n.event.message, "edge1 ether1 link down");
        assert_eq!(n.event.ts_ms, 1_700_000_000_000);
        assert_eq!(
            attr(&n, "raw"),
            Some("<28>Jan  5 10:00:01 edge1 interface,info ether1 link down")
        );
        assert_eq!(attr(&n, "topics"), Some("interface,info"));
        assert_eq!(attr(&n, "host"), Some("edge1"));
        assert_eq!(attr(&n, "facility"), Some("daemon"));
        assert_eq!(attr(&n, "syslog_severity"), Some("warning"));
        assert_eq!(attr(&n, "source"), Some("192.0.2.1"));
        assert_eq!(attr(&n, "origin"), Some("syslog"));
        assert_eq!(attr(&n, "device_time"), Some("Jan  5 10:00:01"));
        assert_eq!(n.state_key.as_deref(), Some("link:ether1"));
    }

    #[test]
    fn link_up_v7_default_format() {
        let n = norm("<30>interface,info ether1 link up (speed 1G, full duplex)");
        assert_eq!(n.event.kind, EventKind::LinkUp);
        assert_eq!(n.event.severity, Severity::Notice);
        assert_eq!(
            n.event.message,
            "edge1 ether1 link up (speed 1G, full duplex)"
        );
        assert_eq!(attr(&n, "speed"), Some("1G"));
        assert_eq!(attr(&n, "duplex"), Some("full"));
        assert_eq!(attr(&n, "host"), None);
    }

    #[test]
    fn ospf_and_bgp() {
        let n =
            norm("<30>route,ospf,info OSPFv2 neighbor 10.0.0.2: state change from Full to Down");
        assert_eq!(n.event.kind, EventKind::OspfStateChange);
        assert_eq!(n.event.severity, Severity::Warning);
        assert_eq!(
            n.event.entity,
            EntityKey::Peer {
                device: "edge1".into(),
                peer: "10.0.0.2".into()
            }
        );
        assert_eq!(attr(&n, "old_state"), Some("Full"));
        assert_eq!(attr(&n, "new_state"), Some("Down"));
        assert_eq!(attr(&n, "up"), Some("false"));

        let n = norm(
            "<30>Mar  1 00:00:00 edge1 route,ospf,info backbonev2 { version: 2 router-id: 10.0.0.1 } backbone0v2 { 0.0.0.0 } interface { broadcast 10.1.1.1%ether2 } neighbor { router-id: 10.0.0.2 state: Loading } state change to Full",
        );
        assert_eq!(n.event.kind, EventKind::OspfStateChange);
        assert_eq!(n.event.severity, Severity::Notice);
        assert_eq!(attr(&n, "ospf_interface"), Some("ether2"));
        assert_eq!(attr(&n, "up"), Some("true"));

        let n = norm(
            "<27>route,bgp,error toISP-1 { remote: { address: 203.0.113.1 } } Hold timer expired",
        );
        assert_eq!(n.event.kind, EventKind::BgpStateChange);
        assert_eq!(n.event.severity, Severity::Warning);
        assert_eq!(attr(&n, "new_state"), Some("Idle"));
        assert_eq!(attr(&n, "reason"), Some("hold timer expired"));
        assert_eq!(attr(&n, "session"), Some("toISP-1"));
        assert_eq!(n.state_key.as_deref(), Some("bgp:203.0.113.1"));
        assert_eq!(
            n.event.message,
            "BGP session 203.0.113.1 on edge1 is Idle (hold timer expired)"
        );
    }

    #[test]
    fn login_failure_and_account() {
        let n =
            norm("<26>system,error,critical login failure for user admin from 192.0.2.9 via ssh");
        assert_eq!(n.event.kind, EventKind::LoginFailure);
        assert_eq!(n.event.entity, EntityKey::Device("edge1".into()));
        assert_eq!(attr(&n, "user"), Some("admin"));
        assert_eq!(attr(&n, "from"), Some("192.0.2.9"));
        assert_eq!(attr(&n, "via"), Some("ssh"));

        let n = norm("<30>system,info,account user admin logged in from 10.1.101.212 via winbox");
        assert_eq!(n.event.kind, EventKind::Syslog);
        assert!(!n.typed);
        assert_eq!(attr(&n, "account_action"), Some("logged_in"));
        assert_eq!(
            n.event.message,
            "system,info,account user admin logged in from 10.1.101.212 via winbox"
        );
    }

    #[test]
    fn generic_message_keeps_the_original() {
        let n = norm(
            "<131>1 2024-01-02T03:04:05Z fw1 kernel - - [meta@1 zone=\"dmz\"] \u{feff}disk full",
        );
        assert_eq!(n.event.kind, EventKind::Syslog);
        assert_eq!(n.event.severity, Severity::Error);
        assert_eq!(n.event.message, "disk full");
        assert_eq!(attr(&n, "app"), Some("kernel"));
        assert_eq!(attr(&n, "facility"), Some("local0"));
        assert_eq!(attr(&n, "format"), Some("rfc5424"));
        assert_eq!(attr(&n, "sd.meta@1.zone"), Some("dmz"));
        assert!(n.state_key.is_none());
    }

    #[test]
    fn bounded_text_and_attrs() {
        let mut line = String::from("<13>1 - h a - - ");
        for i in 0..8 {
            line.push_str(&format!("[e{i}"));
            for j in 0..16 {
                line.push_str(&format!(" p{j}=\"v\""));
            }
            line.push(']');
        }
        line.push(' ');
        line.push_str(&"x\u{0}".repeat(2000));
        let n = norm(&line);
        assert!(n.event.attrs.len() <= MAX_ATTRS - PIPELINE_ATTRS);
        assert!(n.event.message.len() <= 512);
        assert!(n.event.attrs.get("raw").map_or(0, String::len) <= 512);
        assert!(!n.event.message.contains('\0'));
        assert!(!n.event.attrs.values().any(|v| v.contains('\0')));
    }

    #[test]
    fn odd_interface_names_fall_back() {
        // A name that cleans to nothing cannot be an entity.
        let n = norm("<30>interface,info  link down");
        assert_ne!(n.event.kind, EventKind::LinkDown);
    }
}
