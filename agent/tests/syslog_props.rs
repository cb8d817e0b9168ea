//! Whatever bytes a sender puts on the wire, the syslog code does not panic, and every
//! event it makes passes the envelope's bounds (the server would refuse a whole batch
//! for one bad event).

use ispvm_agent::syslog::config::{RateLimitConfig, UnknownSources};
use ispvm_agent::syslog::events::{Context, MAX_ATTRS, PIPELINE_ATTRS, normalise};
use ispvm_agent::syslog::pipeline::{Admission, Gate, Pipeline, RawMessage};
use ispvm_agent::syslog::receiver::Framer;
use ispvm_agent::syslog::{SyslogConfig, SyslogMetrics, Transport, parse, routeros};
use ispvm_proto::codec::Bounded;
use ispvm_proto::{Batch, Event, Limits};
use proptest::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn assert_valid(events: Vec<Event>) -> Result<(), TestCaseError> {
    let n = events.len();
    let mut batch = Batch::new("agent-1", "t1", 1);
    batch.events = events;
    let checked = batch.check(&Limits::default());
    prop_assert!(checked.is_ok(), "{n} events refused: {checked:?}");
    Ok(())
}

fn j(s: &str) -> Just<String> {
    Just(s.to_owned())
}

/// Lines that look like syslog, to reach deep into the parsers.
fn syslogish() -> impl Strategy<Value = Vec<u8>> {
    let pri = prop_oneof![
        j(""),
        (0u16..256).prop_map(|p| format!("<{p}>")),
        "<[0-9a-z]{0,4}>?",
    ];
    let version = prop_oneof![j(""), j("1 "), j("2 ")];
    let ts = prop_oneof![
        j(""),
        j("Jan  5 10:00:01 "),
        j("Feb 29 2024 23:59:59.999 "),
        j("2024-05-01T10:00:00.123+02:00 "),
        j("- "),
        "[A-Za-z0-9:. -]{0,20} ",
    ];
    let host = prop_oneof![j(""), j("edge1 "), j("- "), "[ -~]{0,12} "];
    let body = prop_oneof![
        Just("interface,info ether1 link down".to_owned()),
        Just("interface,info sfp1 link up (speed 10G, full duplex)".to_owned()),
        Just("route,ospf,info OSPFv2 neighbor 10.0.0.2: state change from Full to Down".to_owned()),
        Just("route,ospf,info i { version: 2 router-id: 1.1.1.1 } a { 0.0.0.0 } interface { broadcast 10.0.0.1%e1 } neighbor { router-id: 2.2.2.2 state: Full } state change to Down".to_owned()),
        Just("route,bgp,error,critical Hold timer expired".to_owned()),
        Just("route,bgp,error,critical     RemoteAddress=10.200.12.1".to_owned()),
        Just("system,error,critical login failure for user admin from 192.0.2.9 via ssh".to_owned()),
        Just("app - - [id@1 a=\"b\\\"c\" d=\"\\]\"] \u{feff}msg".to_owned()),
        "[a-z,]{1,30} [ -~]{0,80}",
        "[ -~\\t\\u{80}-\\u{10ffff}]{0,200}",
    ];
    (pri, version, ts, host, body)
        .prop_map(|(p, v, t, h, b)| format!("{p}{v}{t}{h}{b}").into_bytes())
}

fn ctx() -> Context<'static> {
    Context {
        device: "edge1",
        source: "192.0.2.1".parse().expect("ip"),
        transport: Transport::Udp,
        received_ms: 1_700_000_000_000,
        max_text: 4096,
    }
}

fn check_one(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = parse(bytes) {
        let n = normalise(&m, bytes, &ctx());
        prop_assert!(n.event.attrs.len() <= MAX_ATTRS - PIPELINE_ATTRS);
        assert_valid(vec![n.event])?;
    }
    if let Ok(s) = std::str::from_utf8(bytes)
        && let Some(split) = routeros::split(s)
    {
        let _ = routeros::recognise(&split);
        let _ = routeros::awaits_peer(&split);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_one(&bytes)?;
    }

    #[test]
    fn syslog_like_lines_never_panic(bytes in syslogish()) {
        check_one(&bytes)?;
    }

    #[test]
    fn framer_is_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..20)) {
        let max = 512;
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in &chunks {
            f.push(c, &mut out);
            prop_assert!(f.buffered() <= max + 10 + c.len());
        }
        f.finish(&mut out);
        for frame in out {
            if let ispvm_agent::syslog::receiver::Frame::Message(m) = frame {
                prop_assert!(m.len() <= max);
            }
        }
    }

    #[test]
    fn pipeline_events_are_always_valid(
        lines in proptest::collection::vec((syslogish(), 0u8..3, 0u64..40_000), 1..40),
        event_only in any::<bool>(),
    ) {
        let config = SyslogConfig {
            event_only,
            dedup_window_ms: 5_000,
            unknown_sources: UnknownSources::Map,
            rate_limit: RateLimitConfig { per_second: 5.0, burst: 10, report_interval_ms: 1_000, ..Default::default() },
            ..Default::default()
        };
        let metrics = SyslogMetrics::new();
        let gate = Arc::new(Gate::new(&config, [("192.0.2.1".parse().expect("ip"), "edge1".to_owned())].into(), metrics.clone()));
        let mut pipeline = Pipeline::new(&config, gate.clone(), metrics);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut elapsed = 0;
        for (bytes, from, step) in lines {
            elapsed += step;
            let at = t0 + Duration::from_millis(elapsed);
            let source: IpAddr = format!("192.0.2.{}", from + 1).parse().expect("ip");
            if let Admission::Admit(device) = gate.admit(source, Transport::Tcp, at) {
                pipeline.process(RawMessage {
                    source,
                    device,
                    transport: Transport::Tcp,
                    bytes,
                    received_ms: 1_700_000_000_000 + elapsed as i64,
                    received_at: at,
                }, &mut out);
            }
            pipeline.tick(at, 1_700_000_000_000 + elapsed as i64, &mut out);
        }
        pipeline.flush(1_700_000_100_000, &mut out);
        if event_only {
            prop_assert!(out.iter().all(|e| e.attrs.get("event_only").map(String::as_str) == Some("true")));
        }
        assert_valid(out)?;
    }
}
