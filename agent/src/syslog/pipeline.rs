//! From received bytes to events: the [`Gate`] in front of the queue (source mapping and
//! rate limit, shared by the socket tasks), and the [`Pipeline`] behind it (parse,
//! normalise, severity filter, repeated-message suppression, event-only mark).
//!
//! The pipeline is synchronous and takes its clock as arguments, so tests drive it
//! without sockets or sleeps; the receiver actor runs it on one task.

use super::config::{SyslogConfig, UnknownSources};
use super::dedup::{Dedup, Verdict};
use super::events::{Context, Normalised, normalise};
use super::ratelimit::RateLimiter;
use super::{SyslogMessage, SyslogSeverity, Transport, parse, routeros};
use crate::internal_events::InternalEvent;
use crate::internal_events::syslog::{Malformed, SyslogEvent, SyslogMetrics};
use ispvm_proto::{EntityKey, Event, EventKind, Severity};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long a RouterOS 6 BGP line waits for the indented lines naming its peer.
pub const CONTINUATION_WAIT: Duration = Duration::from_secs(1);
/// Continuation lines joined to one entry at most.
const CONTINUATION_MAX_LINES: usize = 8;

/// One datagram or TCP frame, admitted by the gate.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The sender's address (IPv4-mapped IPv6 addresses are given as IPv4).
    pub source: IpAddr,
    /// The device the address maps to.
    pub device: Arc<str>,
    pub transport: Transport,
    pub bytes: Vec<u8>,
    /// Receive time, Unix ms (the event's time).
    pub received_ms: i64,
    pub received_at: Instant,
}

/// The gate's answer for one message or connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit(Arc<str>),
    UnknownSource,
    RateLimited,
}

/// Source mapping and rate limiting, shared by the socket tasks.
pub struct Gate {
    sources: RwLock<Arc<HashMap<IpAddr, Arc<str>>>>,
    unknown: UnknownSources,
    limiter: Mutex<RateLimiter>,
    metrics: Arc<SyslogMetrics>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("unknown", &self.unknown)
            .finish()
    }
}

fn shared_map(sources: HashMap<IpAddr, String>) -> Arc<HashMap<IpAddr, Arc<str>>> {
    Arc::new(
        sources
            .into_iter()
            .map(|(ip, key)| (ip.to_canonical(), Arc::from(key)))
            .collect(),
    )
}

impl Gate {
    pub fn new(
        config: &SyslogConfig,
        sources: HashMap<IpAddr, String>,
        metrics: Arc<SyslogMetrics>,
    ) -> Gate {
        Gate {
            sources: RwLock::new(shared_map(sources)),
            unknown: config.unknown_sources,
            limiter: Mutex::new(RateLimiter::new(
                config.rate_limit.per_second,
                config.rate_limit.burst,
                config.rate_limit.max_sources,
            )),
            metrics,
        }
    }

    /// Replaces the source map (routers added or removed); takes effect at once.
    pub fn set_sources(&self, sources: HashMap<IpAddr, String>) {
        let map = shared_map(sources);
        *self.sources.write().unwrap_or_else(PoisonError::into_inner) = map;
    }

    /// The device a source maps to: configured, `unknown:<addr>` in map mode, or `None`
    /// (to be dropped). Counts nothing.
    pub fn device(&self, source: IpAddr) -> Option<Arc<str>> {
        let source = source.to_canonical();
        let map = self
            .sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match map.get(&source) {
            Some(d) => Some(d.clone()),
            None => match self.unknown {
                UnknownSources::Drop => None,
                UnknownSources::Map => Some(Arc::from(format!("unknown:{source}"))),
            },
        }
    }

    /// Admits one message from `source`: maps it and takes a rate-limit token, counting
    /// unknown sources and rate-limited messages.
    pub fn admit(&self, source: IpAddr, transport: Transport, now: Instant) -> Admission {
        let Some(device) = self.device(source) else {
            SyslogEvent::UnknownSource { transport, source }.emit(&self.metrics);
            return Admission::UnknownSource;
        };
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(source.to_canonical(), now);
        if allowed {
            Admission::Admit(device)
        } else {
            SyslogEvent::RateLimited { transport, source }.emit(&self.metrics);
            Admission::RateLimited
        }
    }

    /// Per-source drops by the rate limit since the last call.
    pub fn take_rate_limited(&self) -> Vec<(IpAddr, u64)> {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_dropped()
    }
}

/// A RouterOS 6 BGP entry waiting for its continuation lines.
struct Pending {
    first: SyslogMessage,
    raw: Vec<u8>,
    lines: Vec<String>,
    raw_lines: Vec<Vec<u8>>,
    device: Arc<str>,
    transport: Transport,
    received_ms: i64,
    received_at: Instant,
}

/// Parse, normalise, filter, suppress, mark.
pub struct Pipeline {
    min_severity: SyslogSeverity,
    event_only: bool,
    max_text: usize,
    rate_limit: (f64, u32),
    report_every: Duration,
    last_report: Option<Instant>,
    dedup: Dedup,
    pending: HashMap<IpAddr, Pending>,
    gate: Arc<Gate>,
    metrics: Arc<SyslogMetrics>,
}

impl Pipeline {
    pub fn new(config: &SyslogConfig, gate: Arc<Gate>, metrics: Arc<SyslogMetrics>) -> Pipeline {
        Pipeline {
            min_severity: config.min_severity,
            event_only: config.event_only,
            max_text: config.max_text_bytes,
            rate_limit: (config.rate_limit.per_second, config.rate_limit.burst),
            report_every: config.rate_limit_report_interval(),
            last_report: None,
            dedup: Dedup::new(config.dedup_window(), config.dedup_max_entries),
            pending: HashMap::new(),
            gate,
            metrics,
        }
    }

    /// Handles one admitted message; events to send are appended to `out`.
    pub fn process(&mut self, raw: RawMessage, out: &mut Vec<Event>) {
        let msg = match parse(&raw.bytes) {
            Ok(m) => m,
            Err(e) => {
                SyslogEvent::Malformed {
                    transport: raw.transport,
                    source: raw.source,
                    reason: Malformed::Parse,
                    error: Some(&e),
                }
                .emit(&self.metrics);
                return;
            }
        };
        SyslogEvent::Parsed.emit(&self.metrics);
        let split = routeros::split(&msg.message);

        // RouterOS 6 BGP entries come as a header line and indented `Key=Value` lines.
        if let Some(p) = self.pending.get_mut(&raw.source) {
            let fresh =
                raw.received_at.saturating_duration_since(p.received_at) < CONTINUATION_WAIT;
            if let Some(s) = &split
                && fresh
                && s.has_topic("bgp")
                && p.lines.len() < CONTINUATION_MAX_LINES
                && let Some((key, value)) = routeros::continuation(s.text)
            {
                p.lines.push(format!("{key}={value}"));
                p.raw_lines.push(raw.bytes);
                return;
            }
            if let Some(p) = self.pending.remove(&raw.source) {
                self.finish_pending(raw.source, p, out);
            }
        }
        if let Some(s) = &split
            && routeros::awaits_peer(s)
        {
            self.pending.insert(
                raw.source,
                Pending {
                    first: msg,
                    raw: raw.bytes,
                    lines: Vec::new(),
                    raw_lines: Vec::new(),
                    device: raw.device,
                    transport: raw.transport,
                    received_ms: raw.received_ms,
                    received_at: raw.received_at,
                },
            );
            return;
        }
        let ctx = Context {
            device: &raw.device,
            source: raw.source,
            transport: raw.transport,
            received_ms: raw.received_ms,
            max_text: self.max_text,
        };
        let n = normalise(&msg, &raw.bytes, &ctx);
        self.admit(raw.source, raw.received_at, n, out);
    }

    fn finish_pending(&mut self, source: IpAddr, p: Pending, out: &mut Vec<Event>) {
        let mut msg = p.first;
        for line in &p.lines {
            msg.message.push(' ');
            msg.message.push_str(line);
        }
        let mut raw = p.raw;
        for r in &p.raw_lines {
            raw.push(b'\n');
            raw.extend_from_slice(r);
        }
        let ctx = Context {
            device: &p.device,
            source,
            transport: p.transport,
            received_ms: p.received_ms,
            max_text: self.max_text,
        };
        let n = normalise(&msg, &raw, &ctx);
        self.admit(source, p.received_at, n, out);
    }

    /// Severity filter, suppression and the event-only mark.
    fn admit(&mut self, source: IpAddr, at: Instant, n: Normalised, out: &mut Vec<Event>) {
        if !n.typed && n.syslog_severity > self.min_severity {
            SyslogEvent::Filtered { source }.emit(&self.metrics);
            return;
        }
        let mut event = n.event;
        if self.event_only {
            event.attrs.insert("event_only".into(), "true".into());
        }
        let mut summaries = Vec::new();
        let verdict = self.dedup.observe(
            source,
            &n.dedup_text,
            n.state_key.as_deref(),
            &event,
            at,
            &mut summaries,
        );
        self.push_summaries(summaries, out);
        match verdict {
            Verdict::Suppressed => SyslogEvent::Suppressed { source }.emit(&self.metrics),
            Verdict::Pass => {
                SyslogEvent::Emitted { kind: event.kind }.emit(&self.metrics);
                out.push(event);
            }
        }
    }

    fn push_summaries(&self, summaries: Vec<Event>, out: &mut Vec<Event>) {
        for s in summaries {
            let repeats = s.attrs.get("repeated").map_or("", String::as_str);
            SyslogEvent::Summarised { repeats }.emit(&self.metrics);
            SyslogEvent::Emitted { kind: s.kind }.emit(&self.metrics);
            out.push(s);
        }
    }

    /// Periodic work: closes run-out suppression windows (their summaries), sends BGP
    /// entries whose continuation did not come, and reports rate-limited sources.
    pub fn tick(&mut self, now: Instant, now_ms: i64, out: &mut Vec<Event>) {
        let stale: Vec<IpAddr> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.received_at) >= CONTINUATION_WAIT)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in stale {
            if let Some(p) = self.pending.remove(&ip) {
                self.finish_pending(ip, p, out);
            }
        }
        let mut summaries = Vec::new();
        self.dedup.expire(now, &mut summaries);
        self.push_summaries(summaries, out);
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= self.report_every);
        if due {
            self.last_report = Some(now);
            for (source, dropped) in self.gate.take_rate_limited() {
                let e = self.rate_limit_event(source, dropped, now_ms);
                SyslogEvent::Emitted { kind: e.kind }.emit(&self.metrics);
                out.push(e);
            }
        }
    }

    fn rate_limit_event(&self, source: IpAddr, dropped: u64, now_ms: i64) -> Event {
        let device = self
            .gate
            .device(source)
            .map_or_else(|| format!("unknown:{source}"), |d| d.to_string());
        let (rate, burst) = self.rate_limit;
        let mut e = Event::new(
            EntityKey::Device(device.clone()),
            EventKind::Syslog,
            Severity::Warning,
            format!(
                "syslog from {device} ({source}): {dropped} messages dropped by the rate limit ({rate}/s, burst {burst})"
            ),
        );
        e.ts_ms = now_ms;
        e.attrs.insert("origin".into(), "syslog".into());
        e.attrs.insert("source".into(), source.to_string());
        e.attrs.insert("rate_limited".into(), dropped.to_string());
        if self.event_only {
            e.attrs.insert("event_only".into(), "true".into());
        }
        e
    }

    /// Shutdown: everything held back goes out (pending BGP entries, open summaries).
    pub fn flush(&mut self, now_ms: i64, out: &mut Vec<Event>) {
        let pending: Vec<(IpAddr, Pending)> = self.pending.drain().collect();
        for (ip, p) in pending {
            self.finish_pending(ip, p, out);
        }
        let mut summaries = Vec::new();
        self.dedup.flush(&mut summaries);
        self.push_summaries(summaries, out);
        for (source, dropped) in self.gate.take_rate_limited() {
            let e = self.rate_limit_event(source, dropped, now_ms);
            SyslogEvent::Emitted { kind: e.kind }.emit(&self.metrics);
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::config::RateLimitConfig;

    struct Rig {
        gate: Arc<Gate>,
        pipeline: Pipeline,
        metrics: Arc<SyslogMetrics>,
        t0: Instant,
    }

    const R1: &str = "192.0.2.1";

    fn rig(config: SyslogConfig) -> Rig {
        let metrics = SyslogMetrics::new();
        let sources = [(R1.parse().expect("ip"), "edge1".to_owned())].into();
        let gate = Arc::new(Gate::new(&config, sources, metrics.clone()));
        let pipeline = Pipeline::new(&config, gate.clone(), metrics.clone());
        Rig {
            gate,
            pipeline,
            metrics,
            t0: Instant::now(),
        }
    }

    impl Rig {
        fn send(&mut self, from: &str, at_ms: u64, line: &str) -> Vec<Event> {
            let source: IpAddr = from.parse().expect("ip");
            let at = self.t0 + Duration::from_millis(at_ms);
            let mut out = Vec::new();
            if let Admission::Admit(device) = self.gate.admit(source, Transport::Udp, at) {
                self.pipeline.process(
                    RawMessage {
                        source,
                        device,
                        transport: Transport::Udp,
                        bytes: line.as_bytes().to_vec(),
                        received_ms: 1_700_000_000_000 + at_ms as i64,
                        received_at: at,
                    },
                    &mut out,
                );
            }
            out
        }

        fn tick(&mut self, at_ms: u64) -> Vec<Event> {
            let mut out = Vec::new();
            self.pipeline.tick(
                self.t0 + Duration::from_millis(at_ms),
                1_700_000_000_000 + at_ms as i64,
                &mut out,
            );
            out
        }
    }

    #[test]
    fn severity_filter_spares_typed_events() {
        let mut r = rig(SyslogConfig {
            min_severity: SyslogSeverity::Warning,
            ..Default::default()
        });
        // info, generic: filtered.
        assert!(
            r.send(R1, 0, "<30>system,info item added by admin")
                .is_empty()
        );
        // info, but a link event: kept.
        let e = r.send(R1, 0, "<30>interface,info ether1 link down");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, EventKind::LinkDown);
        // error, generic: kept.
        assert_eq!(r.send(R1, 0, "<27>script,error boom").len(), 1);
        let s = r.metrics.snapshot();
        assert_eq!((s.filtered, s.events, s.parsed), (1, 2, 3));
    }

    #[test]
    fn repeats_are_suppressed_and_summarised() {
        let mut r = rig(SyslogConfig::default());
        let line = "<28>Jan  5 10:00:00 edge1 system,warning fan speed low";
        assert_eq!(r.send(R1, 0, line).len(), 1);
        for i in 1..=5 {
            // The timestamp changes between repeats; the message does not.
            let l = format!("<28>Jan  5 10:00:0{i} edge1 system,warning fan speed low");
            assert!(r.send(R1, i * 1000, &l).is_empty());
        }
        assert!(r.tick(29_000).is_empty());
        let s = r.tick(30_000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].attrs.get("repeated").map(String::as_str), Some("5"));
        assert!(s[0].message.ends_with("(repeated 5 times)"));
        assert_eq!(r.metrics.snapshot().suppressed, 5);
        assert_eq!(r.metrics.snapshot().summaries, 1);
    }

    #[test]
    fn event_only_marks_everything() {
        let mut r = rig(SyslogConfig {
            event_only: true,
            ..Default::default()
        });
        let e = r.send(R1, 0, "<30>interface,info ether1 link down");
        assert_eq!(
            e[0].attrs.get("event_only").map(String::as_str),
            Some("true")
        );
        r.send(R1, 1, "<30>interface,info ether1 link down");
        let s = r.tick(60_000);
        assert_eq!(
            s[0].attrs.get("event_only").map(String::as_str),
            Some("true")
        );
        assert!(s[0].attrs.len() <= 32);
    }

    #[test]
    fn unknown_sources_drop_or_map() {
        let mut r = rig(SyslogConfig::default());
        assert!(r.send("198.51.100.7", 0, "<30>system,info hi").is_empty());
        assert_eq!(r.metrics.snapshot().unknown_source, 1);
        let mut r = rig(SyslogConfig {
            unknown_sources: UnknownSources::Map,
            ..Default::default()
        });
        let e = r.send("198.51.100.7", 0, "<30>system,info hi");
        assert_eq!(
            e[0].entity,
            EntityKey::Device("unknown:198.51.100.7".into())
        );
        assert_eq!(r.metrics.snapshot().unknown_source, 0);
        // IPv4-mapped IPv6 is the IPv4 source.
        let e = r.send("::ffff:192.0.2.1", 0, "<30>system,info hello");
        assert_eq!(e[0].entity, EntityKey::Device("edge1".into()));
    }

    #[test]
    fn rate_limit_drops_and_reports() {
        let mut r = rig(SyslogConfig {
            rate_limit: RateLimitConfig {
                per_second: 1.0,
                burst: 3,
                report_interval_ms: 10_000,
                ..Default::default()
            },
            dedup_window_ms: 0,
            ..Default::default()
        });
        let mut passed = 0;
        for i in 0..10 {
            passed += r.send(R1, 0, &format!("<30>system,info m{i}")).len();
        }
        assert_eq!(passed, 3);
        assert_eq!(r.metrics.snapshot().rate_limited, 7);
        let report = r.tick(0);
        assert_eq!(report.len(), 1);
        assert_eq!(
            report[0].attrs.get("rate_limited").map(String::as_str),
            Some("7")
        );
        assert_eq!(report[0].entity, EntityKey::Device("edge1".into()));
        // Nothing more to report.
        assert!(r.tick(20_000).is_empty());
    }

    #[test]
    fn malformed_is_counted() {
        let mut r = rig(SyslogConfig::default());
        assert!(r.send(R1, 0, "<999>nope").is_empty());
        assert!(r.send(R1, 0, "<13>1 - h a - - [broken").is_empty());
        assert_eq!(r.metrics.snapshot().malformed_parse, 2);
    }

    #[test]
    fn routeros6_bgp_continuation_lines_are_joined() {
        let mut r = rig(SyslogConfig::default());
        assert!(
            r.send(R1, 0, "<26>route,bgp,error,critical Hold timer expired")
                .is_empty()
        );
        assert!(
            r.send(
                R1,
                1,
                "<26>route,bgp,error,critical     RemoteAddress=10.200.12.1"
            )
            .is_empty()
        );
        assert!(
            r.send(R1, 2, "<26>route,bgp,error,critical     RemoteAs=65001")
                .is_empty()
        );
        // The next ordinary line releases the joined entry first.
        let e = r.send(R1, 3, "<30>interface,info ether1 link down");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].kind, EventKind::BgpStateChange);
        assert_eq!(
            e[0].entity,
            EntityKey::Peer {
                device: "edge1".into(),
                peer: "10.200.12.1".into()
            }
        );
        assert_eq!(
            e[0].attrs.get("new_state").map(String::as_str),
            Some("Idle")
        );
        assert!(
            e[0].attrs
                .get("raw")
                .is_some_and(|r| r.contains("RemoteAs=65001"))
        );
        assert_eq!(e[1].kind, EventKind::LinkDown);
        // A header alone goes out after the wait, as a plain syslog event.
        assert!(
            r.send(R1, 10, "<26>route,bgp,error,critical Hold timer expired")
                .is_empty()
        );
        assert!(r.tick(500).is_empty());
        let e = r.tick(1_010);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, EventKind::Syslog);
    }

    #[test]
    fn flush_releases_everything() {
        let mut r = rig(SyslogConfig::default());
        r.send(R1, 0, "<28>system,warning a");
        r.send(R1, 1, "<28>system,warning a");
        r.send(R1, 2, "<26>route,bgp,error Hold timer expired");
        let mut out = Vec::new();
        r.pipeline.flush(0, &mut out);
        assert_eq!(out.len(), 2);
    }
}
