//! RouterOS log lines: topics and the message formats the agent turns into typed events.
//!
//! RouterOS sends BSD syslog whose message starts with the entry's topics, the way
//! `/log print` shows them: `interface,info ether1 link down`. A rule's `prefix`, or an
//! identity with spaces in the BSD header, puts words before the topics; up to
//! [`TOPIC_SEARCH_WORDS`] leading words are skipped to find them.
//!
//! Recognised (wording of RouterOS 6 and 7; see docs/syslog.md for the table):
//!
//! - `interface` topic, `<name> link down`, `<name> link up [(speed 1G, full duplex)]`;
//! - `ospf` topic, v6 `OSPFv2 neighbor 10.0.0.2: state change from Full to Down`, v7
//!   `... neighbor { router-id: 10.0.0.2 state: Full } state change to Down`;
//! - `bgp` topic: the peer from `remote.address=`, `remote: { address: … }`,
//!   `RemoteAddress=` or the first IP address in the line, the new state from an explicit
//!   transition (`state changed from A to B`, `A -> B`, `state change to B`) or from the
//!   wording (`established`; `hold timer expired`, `closed`, `notification`, ... mean
//!   Idle). RouterOS 6 writes the peer on an indented continuation line
//!   (`    RemoteAddress=10.0.0.1`); the pipeline joins such lines ([`continuation`]);
//! - `login failure for user <u> [from <addr>] [via <service>]`;
//! - `user <u> logged in|out [from <addr>] [via <service>]` (account, not an alarm).

use super::SyslogSeverity;
use std::net::IpAddr;

/// How many words before the topics are tolerated (prefix, identity with spaces).
pub const TOPIC_SEARCH_WORDS: usize = 3;

/// RouterOS topic names (`/system logging` topics); a single-word topic list must be one
/// of these, a comma-separated one must contain one.
const KNOWN_TOPICS: &[&str] = &[
    "account",
    "async",
    "backup",
    "bfd",
    "bgp",
    "bridge",
    "calc",
    "caps",
    "certificate",
    "container",
    "critical",
    "ddns",
    "debug",
    "dhcp",
    "dns",
    "dot1x",
    "dude",
    "e-mail",
    "error",
    "event",
    "firewall",
    "gps",
    "gsm",
    "health",
    "hotspot",
    "igmp-proxy",
    "info",
    "interface",
    "ipsec",
    "iscsi",
    "isdn",
    "l2tp",
    "ldp",
    "lora",
    "lte",
    "manager",
    "mme",
    "mpls",
    "netwatch",
    "ntp",
    "ospf",
    "ovpn",
    "packet",
    "pim",
    "poe-out",
    "ppp",
    "pppoe",
    "pptp",
    "radius",
    "raw",
    "read",
    "rip",
    "route",
    "rpki",
    "rsvp",
    "script",
    "sertcp",
    "smb",
    "snmp",
    "ssh",
    "sstp",
    "state",
    "stp",
    "system",
    "telephony",
    "tftp",
    "timer",
    "upnp",
    "ups",
    "vrrp",
    "warning",
    "watchdog",
    "web-proxy",
    "wireguard",
    "wireless",
    "write",
    "zerotier",
];

/// A RouterOS message split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// Words before the topics (a rule prefix), if any.
    pub prefix: Option<&'a str>,
    /// The comma-separated topics, e.g. `route,ospf,info`.
    pub topics: &'a str,
    /// What follows the topics and one space; leading spaces are kept (RouterOS 6
    /// continuation lines are indented).
    pub text: &'a str,
}

impl Split<'_> {
    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.split(',').any(|t| t == topic)
    }

    /// The most severe severity topic (`critical`, `error`, `warning`, `info`, `debug`).
    pub fn severity(&self) -> Option<SyslogSeverity> {
        self.topics
            .split(',')
            .filter_map(|t| match t {
                "critical" => Some(SyslogSeverity::Critical),
                "error" => Some(SyslogSeverity::Error),
                "warning" => Some(SyslogSeverity::Warning),
                "info" => Some(SyslogSeverity::Info),
                "debug" => Some(SyslogSeverity::Debug),
                _ => None,
            })
            .min()
    }
}

fn is_topics(word: &str) -> bool {
    if word.is_empty() || word.len() > 128 {
        return false;
    }
    let mut parts = 0;
    let mut known = false;
    for part in word.split(',') {
        if part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return false;
        }
        parts += 1;
        known |= KNOWN_TOPICS.contains(&part);
    }
    known && (parts > 1 || KNOWN_TOPICS.contains(&word))
}

/// Finds the topics in a message (RouterOS or not: `None` when there are none).
pub fn split(message: &str) -> Option<Split<'_>> {
    let mut start = 0;
    for _ in 0..=TOPIC_SEARCH_WORDS {
        let rest = &message[start..];
        let end = rest.find(' ').unwrap_or(rest.len());
        let word = &rest[..end];
        if is_topics(word) {
            let prefix = message[..start].trim_end();
            let after = &rest[end..];
            return Some(Split {
                prefix: (!prefix.is_empty()).then_some(prefix),
                topics: word,
                text: after.strip_prefix(' ').unwrap_or(after),
            });
        }
        if end == rest.len() {
            return None;
        }
        start += end + 1;
    }
    None
}

/// A RouterOS line the agent understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognised {
    Link {
        interface: String,
        up: bool,
        /// What the router said in parentheses, e.g. `speed 1G, full duplex`.
        details: Option<String>,
        speed: Option<String>,
        duplex: Option<String>,
    },
    Ospf {
        /// Router id (v7) or neighbour id/address (v6).
        neighbor: String,
        old_state: Option<String>,
        new_state: String,
        version: Option<String>,
        /// v7: the OSPF interface (`…%ether2` gives `ether2`).
        interface: Option<String>,
    },
    Bgp {
        peer: String,
        /// v7 connection/session name, when the line starts with one.
        session: Option<String>,
        old_state: Option<String>,
        new_state: String,
        reason: Option<String>,
    },
    LoginFailure {
        user: String,
        from: Option<String>,
        via: Option<String>,
    },
    Account {
        user: String,
        logged_in: bool,
        from: Option<String>,
        via: Option<String>,
    },
}

/// Recognises a RouterOS line from its topics and text.
pub fn recognise(split: &Split<'_>) -> Option<Recognised> {
    let text = split.text.trim();
    if text.is_empty() {
        return None;
    }
    if split.has_topic("interface")
        && let Some(r) = link(text)
    {
        return Some(r);
    }
    if split.has_topic("ospf")
        && let Some(r) = ospf(text)
    {
        return Some(r);
    }
    if split.has_topic("bgp")
        && let Some(r) = bgp(text)
    {
        return Some(r);
    }
    if let Some(r) = login_failure(text) {
        return Some(r);
    }
    account(text)
}

/// True for a BGP line that reports a session change but names no peer: RouterOS 6
/// writes the peer on the indented lines that follow.
pub fn awaits_peer(split: &Split<'_>) -> bool {
    split.has_topic("bgp")
        && continuation(split.text).is_none()
        && !split.text.trim().is_empty()
        && bgp(split.text.trim()).is_none()
        && bgp_state(split.text.trim()).is_some()
}

/// An indented `Key=Value` line (RouterOS 6 multi-line entries): the key and value.
pub fn continuation(text: &str) -> Option<(&str, &str)> {
    if !(text.starts_with("  ") || text.starts_with('\t')) {
        return None;
    }
    let t = text.trim();
    let (key, value) = t.split_once('=')?;
    (!key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some((key, value.trim()))
}

fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let at = find_ci(text, marker)?;
    let rest = &text[at + marker.len()..];
    let w = rest.split_whitespace().next()?;
    Some(w)
}

/// Case-insensitive ASCII find.
fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    let h = haystack.as_bytes();
    let n = needle.as_bytes();
    if n.is_empty() || h.len() < n.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn trim_punct(w: &str) -> &str {
    w.trim_matches(|c: char| {
        matches!(
            c,
            ',' | ';' | ':' | '(' | ')' | '"' | '\'' | '{' | '}' | '[' | ']'
        )
    })
}

/// An IP address in a word: `10.0.0.1`, `10.0.0.1:179`, `10.0.0.1%ether1`, `[2001:db8::1]:179`.
fn ip_in(word: &str) -> Option<IpAddr> {
    if let Some(inner) = word.strip_prefix('[').and_then(|x| x.split(']').next())
        && let Ok(ip) = inner.parse::<IpAddr>()
    {
        return Some(ip);
    }
    let w = trim_punct(word);
    let w = w.split('%').next().unwrap_or(w);
    if let Ok(ip) = w.parse::<IpAddr>() {
        return Some(ip);
    }
    // v4 with a port
    let (host, port) = w.rsplit_once(':')?;
    if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') {
        return host.parse::<IpAddr>().ok();
    }
    None
}

fn link(text: &str) -> Option<Recognised> {
    let (head, up, details) = if let Some(h) = text.strip_suffix(" link down") {
        (h, false, None)
    } else if let Some(h) = text.strip_suffix(" link up") {
        (h, true, None)
    } else if let Some(at) = text.rfind(" link up (")
        && text.ends_with(')')
    {
        let details = &text[at + " link up (".len()..text.len() - 1];
        (&text[..at], true, Some(details))
    } else {
        return None;
    };
    let interface = head.trim().trim_end_matches(':').trim();
    if interface.is_empty() || interface.len() > 128 {
        return None;
    }
    let mut speed = None;
    let mut duplex = None;
    for part in details.into_iter().flat_map(|d| d.split(',')) {
        let part = part.trim();
        if let Some(s) = part.strip_prefix("speed ") {
            speed = Some(s.trim().to_owned());
        } else if let Some(d) = part.strip_suffix(" duplex") {
            duplex = Some(d.trim().to_owned());
        }
    }
    Some(Recognised::Link {
        interface: interface.to_owned(),
        up,
        details: details.map(str::to_owned),
        speed,
        duplex,
    })
}

/// The content of the `{ ... }` group that follows `name` (`neighbor { ... }`).
fn braces_after<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let at = find_ci(text, &format!("{name} {{"))?;
    let rest = &text[at + name.len() + 2..];
    let end = rest.find('}')?;
    Some(rest[..end].trim())
}

/// `key: value` inside a brace group.
fn brace_value<'a>(group: &'a str, key: &str) -> Option<&'a str> {
    let at = find_ci(group, &format!("{key}:"))?;
    if at > 0 && !group.as_bytes()[at - 1].is_ascii_whitespace() {
        return None;
    }
    group[at + key.len() + 1..].split_whitespace().next()
}

fn transition(text: &str) -> Option<(Option<String>, String)> {
    for marker in [
        "state change from ",
        "state changed from ",
        "changed state from ",
    ] {
        if let Some(at) = find_ci(text, marker) {
            let rest = &text[at + marker.len()..];
            let mut words = rest.split_whitespace();
            let from = trim_punct(words.next()?);
            if !words.next()?.eq_ignore_ascii_case("to") {
                return None;
            }
            let to = trim_punct(words.next()?);
            return (!from.is_empty() && !to.is_empty())
                .then(|| (Some(from.to_owned()), to.to_owned()));
        }
    }
    for marker in ["state change to ", "state changed to ", "changed state to "] {
        if let Some(w) = word_after(text, marker) {
            let w = trim_punct(w);
            return (!w.is_empty()).then(|| (None, w.to_owned()));
        }
    }
    // "state changed Active -> Established" / "state changed: A -> B"
    if let Some(at) = text.find("->") {
        let before = text[..at].split_whitespace().last()?;
        let after = text[at + 2..].split_whitespace().next()?;
        let (from, to) = (trim_punct(before), trim_punct(after));
        if !from.is_empty() && !to.is_empty() && find_ci(text, "state").is_some() {
            return Some((Some(from.to_owned()), to.to_owned()));
        }
    }
    None
}

fn ospf(text: &str) -> Option<Recognised> {
    // RouterOS 7: "<instance> { version: 2 router-id: … } <area> { … } interface { broadcast
    // 10.0.0.1%ether2 } neighbor { router-id: 10.0.0.2 state: Full } state change to Down"
    if let Some(group) = braces_after(text, "neighbor") {
        let neighbor = brace_value(group, "router-id").or_else(|| brace_value(group, "address"))?;
        let old = brace_value(group, "state");
        let (from, to) = transition(text)?;
        let interface = braces_after(text, "interface")
            .and_then(|g| g.split_whitespace().last())
            .map(|w| w.rsplit_once('%').map_or(w, |(_, name)| name).to_owned());
        let version = braces_after(text, "")
            .and_then(|g| brace_value(g, "version"))
            .map(|v| format!("OSPFv{v}"));
        return Some(Recognised::Ospf {
            neighbor: neighbor.to_owned(),
            old_state: from.or_else(|| old.map(str::to_owned)),
            new_state: to,
            version,
            interface,
        });
    }
    // RouterOS 6: "OSPFv2 neighbor 10.0.0.2: state change from Full to Down"
    let neighbor = trim_punct(word_after(text, "neighbor ")?);
    if neighbor.is_empty() {
        return None;
    }
    let (from, to) = transition(text)?;
    let version = text
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with("OSPFv"))
        .map(str::to_owned);
    Some(Recognised::Ospf {
        neighbor: neighbor.to_owned(),
        old_state: from,
        new_state: to,
        version,
        interface: None,
    })
}

/// The canonical spelling of a BGP FSM state.
fn bgp_state_name(s: &str) -> String {
    match s.to_ascii_lowercase().replace('-', "").as_str() {
        "idle" => "Idle".into(),
        "connect" => "Connect".into(),
        "active" => "Active".into(),
        "opensent" => "OpenSent".into(),
        "openconfirm" => "OpenConfirm".into(),
        "established" => "Established".into(),
        _ => s.to_owned(),
    }
}

/// Words that say a session went down, with the reason recorded for them.
const BGP_DOWN: &[&str] = &[
    "hold timer expired",
    "notification sent",
    "notification received",
    "connection lost",
    "connection closed",
    "session closed",
    "session down",
    "terminated",
    "went down",
    "closed",
];

/// The state a BGP line reports, and the reason for a drop.
fn bgp_state(text: &str) -> Option<(Option<String>, String, Option<String>)> {
    if let Some((from, to)) = transition(text) {
        return Some((from.map(|f| bgp_state_name(&f)), bgp_state_name(&to), None));
    }
    // TCP coming up is not the session coming up.
    if find_ci(text, "tcp connection established").is_some() {
        return None;
    }
    if find_ci(text, "established").is_some() {
        return Some((None, "Established".into(), None));
    }
    for phrase in BGP_DOWN {
        if let Some(at) = find_ci(text, phrase) {
            // Keep what follows a notification ("Notification sent: Cease ...").
            let reason = if phrase.starts_with("notification") {
                text[at..].trim()
            } else {
                phrase
            };
            let reason: String = reason.chars().take(200).collect();
            return Some((None, "Idle".into(), Some(reason)));
        }
    }
    None
}

fn bgp(text: &str) -> Option<Recognised> {
    let (old_state, new_state, reason) = bgp_state(text)?;
    let peer = bgp_peer(text)?;
    // v7 lines start with the connection/session name followed by a brace group.
    let mut words = text.split_whitespace();
    let session = match (words.next(), words.next()) {
        (Some(name), Some("{")) if ip_in(name).is_none() => Some(name.to_owned()),
        _ => None,
    };
    Some(Recognised::Bgp {
        peer: peer.to_string(),
        session,
        old_state,
        new_state,
        reason,
    })
}

fn bgp_peer(text: &str) -> Option<IpAddr> {
    for marker in ["remote.address=", "RemoteAddress=", "remote-address="] {
        if let Some(at) = find_ci(text, marker)
            && let Some(w) = text[at + marker.len()..].split_whitespace().next()
            && let Some(ip) = ip_in(w)
        {
            return Some(ip);
        }
    }
    if let Some(group) = braces_after(text, "remote:").or_else(|| braces_after(text, "remote"))
        && let Some(ip) = brace_value(group, "address").and_then(ip_in)
    {
        return Some(ip);
    }
    text.split_whitespace().find_map(ip_in)
}

/// `… user <u> [from <addr>] [via <service>]`: user, from, via.
fn user_from_via(rest: &str) -> Option<(String, Option<String>, Option<String>)> {
    let mut words = rest.split_whitespace();
    let user = words.next()?;
    let mut from = None;
    let mut via = None;
    while let Some(w) = words.next() {
        match w {
            "from" => from = words.next().map(|x| trim_punct(x).to_owned()),
            "via" => via = words.next().map(|x| trim_punct(x).to_owned()),
            _ => {}
        }
    }
    Some((user.to_owned(), from, via))
}

fn login_failure(text: &str) -> Option<Recognised> {
    let at = find_ci(text, "login failure for user ")?;
    let (user, from, via) = user_from_via(&text[at + "login failure for user ".len()..])?;
    Some(Recognised::LoginFailure { user, from, via })
}

fn account(text: &str) -> Option<Recognised> {
    let rest = text.strip_prefix("user ")?;
    let (user, tail) = rest.split_once(' ')?;
    let (logged_in, tail) = if let Some(t) = tail.strip_prefix("logged in") {
        (true, t)
    } else if let Some(t) = tail.strip_prefix("logged out") {
        (false, t)
    } else {
        return None;
    };
    let (_, from, via) = user_from_via(&format!("{user} {tail}"))?;
    Some(Recognised::Account {
        user: user.to_owned(),
        logged_in,
        from,
        via,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(message: &str) -> Option<Recognised> {
        recognise(&split(message)?)
    }

    #[test]
    fn topics_are_found() {
        let s = split("interface,info ether1 link down").expect("topics");
        assert_eq!(s.topics, "interface,info");
        assert_eq!(s.text, "ether1 link down");
        assert_eq!(s.prefix, None);
        assert_eq!(s.severity(), Some(SyslogSeverity::Info));
        let s = split("system,error,critical login failure").expect("topics");
        assert_eq!(s.severity(), Some(SyslogSeverity::Critical));
        // A rule prefix, or an identity with spaces, before the topics.
        let s = split("CORE1: route,bgp,info x").expect("topics");
        assert_eq!(s.prefix, Some("CORE1:"));
        assert_eq!(s.topics, "route,bgp,info");
        // An identity with spaces in a BSD header leaves a word before the topics.
        let s = split("Router interface,info ether1 link down").expect("topics");
        assert_eq!((s.prefix, s.topics), (Some("Router"), "interface,info"));
        // Continuation lines keep their indentation.
        let s = split("route,bgp,info     RemoteAddress=10.0.0.1").expect("topics");
        assert_eq!(s.text, "    RemoteAddress=10.0.0.1");
        assert!(continuation(s.text).is_some());
        // Not topics.
        assert_eq!(split("hello world this is not routeros"), None);
        assert_eq!(split("sshd,foo bar"), None);
        assert_eq!(split("Interface,Info x"), None);
        assert!(split("snmp something").is_some());
    }

    #[test]
    fn link_lines_v6_v7() {
        assert_eq!(
            rec("interface,info ether1 link down"),
            Some(Recognised::Link {
                interface: "ether1".into(),
                up: false,
                details: None,
                speed: None,
                duplex: None
            })
        );
        assert_eq!(
            rec("interface,info sfp-sfpplus1 link up (speed 10G, full duplex)"),
            Some(Recognised::Link {
                interface: "sfp-sfpplus1".into(),
                up: true,
                details: Some("speed 10G, full duplex".into()),
                speed: Some("10G".into()),
                duplex: Some("full".into()),
            })
        );
        // Names with spaces and a trailing colon, plain "link up".
        assert!(matches!(
            rec("interface,info ether2 - uplink ISP: link up"),
            Some(Recognised::Link { interface, up: true, .. }) if interface == "ether2 - uplink ISP"
        ));
        // v7 warning topic variant.
        assert!(matches!(
            rec("interface,warning ether5 link down"),
            Some(Recognised::Link { up: false, .. })
        ));
        // Not a link event.
        assert_eq!(
            rec("interface,warning sfp-sfpplus2 excessive broadcasts/multicasts, probably a loop"),
            None
        );
        assert_eq!(rec("system,info ether1 link down"), None);
    }

    #[test]
    fn ospf_v6() {
        assert_eq!(
            rec("route,ospf,info OSPFv2 neighbor 10.0.0.2: state change from Full to Down"),
            Some(Recognised::Ospf {
                neighbor: "10.0.0.2".into(),
                old_state: Some("Full".into()),
                new_state: "Down".into(),
                version: Some("OSPFv2".into()),
                interface: None,
            })
        );
        assert!(matches!(
            rec("route,ospf,info OSPFv2 neighbor 10.255.0.7: state change from Loading to Full"),
            Some(Recognised::Ospf { new_state, .. }) if new_state == "Full"
        ));
    }

    #[test]
    fn ospf_v7() {
        let line = "route,ospf,info backbonev2 { version: 2 router-id: 172.16.0.1 } backbone0v2 { 0.0.0.0 } interface { broadcast 172.16.255.1%inter-router-link0 } neighbor { router-id: 172.16.0.2 state: Loading } state change to Full";
        assert_eq!(
            rec(line),
            Some(Recognised::Ospf {
                neighbor: "172.16.0.2".into(),
                old_state: Some("Loading".into()),
                new_state: "Full".into(),
                version: Some("OSPFv2".into()),
                interface: Some("inter-router-link0".into()),
            })
        );
        // Interface-level and progress lines are not neighbour state changes.
        assert_eq!(
            rec(
                "route,ospf,info backbonev2 { version: 2 router-id: 172.16.0.1 } backbone0v2 { 0.0.0.0 } interface { broadcast 172.16.255.1%ether2 } state change to Backup DR"
            ),
            None
        );
        assert_eq!(
            rec(
                "route,ospf,info backbonev2 { version: 2 router-id: 172.16.0.1 } backbone0v2 { 0.0.0.0 } interface { broadcast 172.16.255.1%ether2 } neighbor { router-id: 172.16.0.2 state: Exchange } exchange done"
            ),
            None
        );
    }

    #[test]
    fn bgp_wordings() {
        // v7 style with a session name and a remote group.
        assert!(matches!(
            rec("route,bgp,info toR2-1 { remote: { address: 10.0.0.2 } } session established"),
            Some(Recognised::Bgp { peer, session: Some(s), new_state, .. })
                if peer == "10.0.0.2" && s == "toR2-1" && new_state == "Established"
        ));
        // Explicit transition.
        assert!(matches!(
            rec("route,bgp,info session upstream1 remote.address=203.0.113.1 state changed from Established to Idle"),
            Some(Recognised::Bgp { peer, old_state: Some(o), new_state, .. })
                if peer == "203.0.113.1" && o == "Established" && new_state == "Idle"
        ));
        assert!(matches!(
            rec("route,bgp,info BGP peer 198.51.100.1 state changed Active -> Established"),
            Some(Recognised::Bgp { old_state: Some(o), new_state, .. })
                if o == "Active" && new_state == "Established"
        ));
        // Error wording with a reason.
        assert!(matches!(
            rec("route,bgp,error,critical toISP-1 { remote: { address: 2001:db8::1 } } Hold timer expired"),
            Some(Recognised::Bgp { peer, new_state, reason: Some(r), .. })
                if peer == "2001:db8::1" && new_state == "Idle" && r == "hold timer expired"
        ));
        assert!(matches!(
            rec("route,bgp,error Notification sent to 192.0.2.1: Cease (Administrative Shutdown)"),
            Some(Recognised::Bgp { reason: Some(r), .. }) if r.starts_with("Notification sent")
        ));
        // v6 header lines name no peer: the pipeline waits for the continuation.
        let s = split("route,bgp,error,critical Hold timer expired").expect("topics");
        assert_eq!(recognise(&s), None);
        assert!(awaits_peer(&s));
        let s = split("route,bgp,info TCP connection established").expect("topics");
        assert!(!awaits_peer(&s));
        let s = split("route,bgp,info     RemoteAddress=10.200.12.1").expect("topics");
        assert!(!awaits_peer(&s));
        assert_eq!(continuation(s.text), Some(("RemoteAddress", "10.200.12.1")));
        // A joined v6 entry.
        assert!(matches!(
            rec("route,bgp,error,critical Hold timer expired RemoteAddress=10.200.12.1 RemoteAs=65001"),
            Some(Recognised::Bgp { peer, new_state, .. }) if peer == "10.200.12.1" && new_state == "Idle"
        ));
        // v6 "Established" header waits for its peer too.
        let s = split("route,bgp,info Established").expect("topics");
        assert!(awaits_peer(&s));
        // Peer with a port and "with" wording.
        assert!(matches!(
            rec("route,bgp,info session with 192.0.2.7:179 closed"),
            Some(Recognised::Bgp { peer, new_state, reason: Some(r), .. })
                if peer == "192.0.2.7" && new_state == "Idle" && r == "closed"
        ));
        // No state wording: nothing typed.
        assert_eq!(rec("route,bgp,info sending update to 10.0.0.1"), None);
    }

    #[test]
    fn logins() {
        assert_eq!(
            rec("system,error,critical login failure for user admin from 192.0.2.9 via ssh"),
            Some(Recognised::LoginFailure {
                user: "admin".into(),
                from: Some("192.0.2.9".into()),
                via: Some("ssh".into()),
            })
        );
        assert_eq!(
            rec("system,error,critical login failure for user root via telnet"),
            Some(Recognised::LoginFailure {
                user: "root".into(),
                from: None,
                via: Some("telnet".into()),
            })
        );
        assert_eq!(
            rec("system,info,account user admin logged in from 10.1.101.212 via winbox"),
            Some(Recognised::Account {
                user: "admin".into(),
                logged_in: true,
                from: Some("10.1.101.212".into()),
                via: Some("winbox".into()),
            })
        );
        assert!(matches!(
            rec("system,info,account user admin logged out from 10.1.101.212 via telnet"),
            Some(Recognised::Account {
                logged_in: false,
                ..
            })
        ));
        assert_eq!(rec("system,info router rebooted"), None);
    }

    #[test]
    fn ip_words() {
        assert_eq!(ip_in("10.0.0.1:"), "10.0.0.1".parse().ok());
        assert_eq!(ip_in("10.0.0.1:179"), "10.0.0.1".parse().ok());
        assert_eq!(ip_in("[2001:db8::1]:179"), "2001:db8::1".parse().ok());
        assert_eq!(ip_in("172.16.255.1%ether2"), "172.16.255.1".parse().ok());
        assert_eq!(ip_in("ether1"), None);
    }
}
