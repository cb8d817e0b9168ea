//! The syslog receiver actor on real sockets: UDP datagrams and TCP frames (octet-counted
//! and LF-terminated) sent to 127.0.0.1 on ephemeral ports, events checked as the uplink
//! receives them; suppression with its summary, the severity filter, the rate limit,
//! unknown sources, limits, live source changes, stop; and the system `logger` command
//! as an independent sender.

use ispvm_agent::actors::syslog::{SyslogAddrs, SyslogArgs, SyslogMsg, SyslogReceiver};
use ispvm_agent::actors::uplink::UplinkMsg;
use ispvm_agent::internal_events::syslog::SyslogCounts;
use ispvm_agent::routeros::PollOutput;
use ispvm_agent::syslog::config::{RateLimitConfig, UnknownSources};
use ispvm_agent::syslog::{SyslogConfig, SyslogMetrics, SyslogSeverity};
use ispvm_agent::testing::UplinkRecorder;
use ispvm_proto::codec::Bounded;
use ispvm_proto::{Batch, EntityKey, Event, EventKind, Limits, Severity};
use ractor::{Actor, ActorRef};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;

struct Rig {
    actor: ActorRef<SyslogMsg>,
    addrs: SyslogAddrs,
    metrics: Arc<SyslogMetrics>,
    events: mpsc::UnboundedReceiver<PollOutput>,
    uplink: ActorRef<UplinkMsg>,
}

const LOCAL: &str = "127.0.0.1";
/// Another loopback address: a source the receiver does not know.
const STRANGER: &str = "127.0.0.2";

fn base_config() -> SyslogConfig {
    SyslogConfig {
        enabled: true,
        bind: LOCAL.parse().expect("ip"),
        udp_port: 0,
        tcp_port: 0,
        ..SyslogConfig::default()
    }
}

async fn start(config: SyslogConfig) -> Rig {
    let (uplink, events) = UplinkRecorder::spawn().await;
    let metrics = SyslogMetrics::new();
    let sources: HashMap<IpAddr, String> =
        [(LOCAL.parse().expect("ip"), "edge1".to_owned())].into();
    let (actor, _) = Actor::spawn(
        None,
        SyslogReceiver,
        SyslogArgs {
            config,
            sources,
            uplink: uplink.clone(),
            metrics: metrics.clone(),
        },
    )
    .await
    .expect("syslog receiver");
    let addrs = ractor::call_t!(actor, SyslogMsg::Addrs, 2_000).expect("addrs");
    Rig {
        actor,
        addrs,
        metrics,
        events,
        uplink,
    }
}

impl Rig {
    fn udp_addr(&self) -> SocketAddr {
        self.addrs.udp.expect("udp bound")
    }

    fn tcp_addr(&self) -> SocketAddr {
        self.addrs.tcp.expect("tcp bound")
    }

    async fn udp_from(&self, from: &str, lines: &[&[u8]]) {
        let sock = UdpSocket::bind((from, 0)).await.expect("bind sender");
        for l in lines {
            sock.send_to(l, self.udp_addr()).await.expect("send");
        }
    }

    async fn udp(&self, lines: &[&str]) {
        let bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        self.udp_from(LOCAL, &bytes).await;
    }

    /// The next event, or panics after `within`.
    async fn next(&mut self, within: Duration) -> Event {
        let out = tokio::time::timeout(within, self.events.recv())
            .await
            .expect("an event in time")
            .expect("channel open");
        let [e] = <[Event; 1]>::try_from(out.events).expect("one event at a time");
        valid(&e);
        e
    }

    /// Exactly `n` events within `within`, then nothing for a short while.
    async fn take(&mut self, n: usize, within: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next(within).await);
        }
        self.nothing(Duration::from_millis(300)).await;
        out
    }

    async fn nothing(&mut self, during: Duration) {
        if let Ok(Some(out)) = tokio::time::timeout(during, self.events.recv()).await {
            panic!("unexpected event: {:?}", out.events);
        }
    }

    /// Waits until the counters satisfy `cond`.
    async fn counts(&self, cond: impl Fn(&SyslogCounts) -> bool) -> SyslogCounts {
        for _ in 0..100 {
            let c = self.metrics.snapshot();
            if cond(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("counters never got there: {:?}", self.metrics.snapshot());
    }
}

/// The server would accept it.
fn valid(e: &Event) {
    let mut b = Batch::new("agent-1", "t1", 1);
    b.events.push(e.clone());
    if let Err(err) = b.check(&Limits::default()) {
        panic!("event refused by the envelope bounds: {err}: {e:?}");
    }
}

fn attr<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
    e.attrs.get(k).map(String::as_str)
}

const SECOND: Duration = Duration::from_secs(2);

#[tokio::test]
async fn udp_routeros_lines_become_typed_events() {
    let mut rig = start(base_config()).await;
    rig.udp(&[
        // RouterOS 6 with bsd-syslog=yes.
        "<28>Jan  5 10:00:01 edge1 interface,info ether1 link down",
        // RouterOS 7 default format: no header.
        "<30>interface,info ether1 link up (speed 1G, full duplex)",
        "<30>route,ospf,info OSPFv2 neighbor 10.0.0.2: state change from Full to Down",
        "<30>Mar  1 00:00:00 edge1 route,ospf,info backbonev2 { version: 2 router-id: 10.0.0.1 } backbone0v2 { 0.0.0.0 } interface { broadcast 10.1.1.1%ether2 } neighbor { router-id: 10.0.0.3 state: Loading } state change to Full",
        "<27>route,bgp,error toISP-1 { remote: { address: 203.0.113.1 } } Hold timer expired",
        "<26>system,error,critical login failure for user admin from 192.0.2.9 via ssh",
        "<30>system,info,account user admin logged in from 10.1.101.212 via winbox",
    ])
    .await;
    let e = rig.take(7, SECOND).await;
    assert_eq!(e[0].kind, EventKind::LinkDown);
    assert_eq!(
        e[0].entity,
        EntityKey::Interface {
            device: "edge1".into(),
            name: "ether1".into()
        }
    );
    assert_eq!(attr(&e[0], "transport"), Some("udp"));
    assert_eq!(
        attr(&e[0], "raw"),
        Some("<28>Jan  5 10:00:01 edge1 interface,info ether1 link down")
    );
    assert_eq!(e[1].kind, EventKind::LinkUp);
    assert_eq!(attr(&e[1], "speed"), Some("1G"));
    assert_eq!(e[2].kind, EventKind::OspfStateChange);
    assert_eq!(attr(&e[2], "old_state"), Some("Full"));
    assert_eq!(attr(&e[2], "new_state"), Some("Down"));
    assert_eq!(
        e[3].entity,
        EntityKey::Peer {
            device: "edge1".into(),
            peer: "10.0.0.3".into()
        }
    );
    assert_eq!(e[4].kind, EventKind::BgpStateChange);
    assert_eq!(attr(&e[4], "new_state"), Some("Idle"));
    assert_eq!(e[5].kind, EventKind::LoginFailure);
    assert_eq!(attr(&e[5], "user"), Some("admin"));
    assert_eq!(attr(&e[5], "via"), Some("ssh"));
    assert_eq!(e[6].kind, EventKind::Syslog);
    assert_eq!(attr(&e[6], "account_action"), Some("logged_in"));
    let c = rig.metrics.snapshot();
    assert_eq!((c.received_udp, c.parsed, c.events), (7, 7, 7));
}

#[tokio::test]
async fn tcp_octet_counting_and_lf_framing() {
    let mut rig = start(base_config()).await;
    let mut tcp = TcpStream::connect(rig.tcp_addr()).await.expect("connect");
    let counted = |m: &str| format!("{} {m}", m.len());
    let stream = format!(
        "{}{}<30>interface,info ether3 link down\n<30>interface,info ether4 link down\r\n{}",
        counted("<30>interface,info ether1 link down"),
        // An LF inside an octet-counted frame belongs to the message.
        counted("<14>1 2024-05-01T10:00:00Z edge1 app - - - first line\nsecond line"),
        counted("<30>interface,info ether5 link down"),
    );
    // Cut the stream in small pieces, across frame boundaries.
    for piece in stream.as_bytes().chunks(7) {
        tcp.write_all(piece).await.expect("write");
        tcp.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let e = rig.take(5, SECOND).await;
    let names: Vec<String> = e
        .iter()
        .map(|e| match &e.entity {
            EntityKey::Interface { name, .. } => name.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names[0], "ether1");
    assert_eq!(e[1].kind, EventKind::Syslog);
    assert_eq!(e[1].message, "first line\nsecond line");
    assert_eq!(attr(&e[1], "format"), Some("rfc5424"));
    assert_eq!(&names[2..], ["ether3", "ether4", "ether5"]);
    assert!(e.iter().all(|e| attr(e, "transport") == Some("tcp")));

    // An over-long frame is skipped and counted; the connection goes on.
    let big = format!("<30>system,info {}", "x".repeat(70_000));
    tcp.write_all(counted(&big).as_bytes())
        .await
        .expect("write");
    tcp.write_all(b"<30>interface,info ether6 link down\n")
        .await
        .expect("write");
    let e = rig.next(SECOND).await;
    assert_eq!(attr(&e, "interface"), Some("ether6"));
    let c = rig.counts(|c| c.malformed_oversize == 1).await;
    assert_eq!(c.received_tcp, 7);
    assert_eq!(c.tcp_connections, 1);
    drop(tcp);
    rig.counts(|c| c.tcp_connections == 0).await;
}

#[tokio::test]
async fn repeats_are_suppressed_then_summarised() {
    let mut rig = start(SyslogConfig {
        dedup_window_ms: 1_000,
        ..base_config()
    })
    .await;
    for i in 0..5 {
        // The header's timestamp changes, the message does not.
        rig.udp(&[&format!(
            "<28>Jan  5 10:00:0{i} edge1 system,warning fan speed low"
        )])
        .await;
    }
    let first = rig.next(SECOND).await;
    assert_eq!(first.message, "system,warning fan speed low");
    let summary = rig.next(Duration::from_secs(3)).await;
    assert_eq!(summary.kind, EventKind::Syslog);
    assert_eq!(attr(&summary, "repeated"), Some("4"));
    assert_eq!(
        attr(&summary, "summary_of"),
        Some(first.id.to_string().as_str())
    );
    assert_eq!(
        summary.message,
        "system,warning fan speed low (repeated 4 times)"
    );
    rig.nothing(Duration::from_millis(1_500)).await;
    let c = rig.metrics.snapshot();
    assert_eq!((c.suppressed, c.summaries, c.events), (4, 1, 2));
    // After the window, the message passes again.
    rig.udp(&["<28>system,warning fan speed low"]).await;
    assert_eq!(
        rig.next(SECOND).await.message,
        "system,warning fan speed low"
    );
}

#[tokio::test]
async fn flapping_link_keeps_its_order() {
    let mut rig = start(base_config()).await;
    rig.udp(&[
        "<30>interface,info ether1 link down",
        "<30>interface,info ether1 link down",
        "<30>interface,info ether1 link up",
        "<30>interface,info ether1 link down",
    ])
    .await;
    let e = rig.take(4, SECOND).await;
    let kinds: Vec<EventKind> = e.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::LinkDown,
            EventKind::Syslog, // "repeated 1 time", before the up
            EventKind::LinkUp,
            EventKind::LinkDown
        ]
    );
    assert_eq!(attr(&e[1], "summary_kind"), Some("link_down"));
}

#[tokio::test]
async fn severity_filter_and_event_only() {
    let mut rig = start(SyslogConfig {
        min_severity: SyslogSeverity::Warning,
        event_only: true,
        ..base_config()
    })
    .await;
    rig.udp(&[
        "<30>system,info item added by admin", // info: filtered
        "<31>system,debug noise",              // debug: filtered
        "<30>interface,info ether1 link down", // info, but typed: kept
        "<27>script,error script failed",      // error: kept
    ])
    .await;
    let e = rig.take(2, SECOND).await;
    assert_eq!(e[0].kind, EventKind::LinkDown);
    assert_eq!(e[1].severity, Severity::Error);
    assert!(e.iter().all(|e| attr(e, "event_only") == Some("true")));
    assert_eq!(rig.metrics.snapshot().filtered, 2);
}

#[tokio::test]
async fn rate_limit_drops_and_reports() {
    let mut rig = start(SyslogConfig {
        rate_limit: RateLimitConfig {
            per_second: 2.0,
            burst: 10,
            report_interval_ms: 500,
            ..RateLimitConfig::default()
        },
        ..base_config()
    })
    .await;
    let lines: Vec<String> = (0..60)
        .map(|i| format!("<30>system,info message {i}"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    rig.udp(&refs).await;
    let c = rig.counts(|c| c.received_udp == 60).await;
    // The burst, and at most a token or two refilled while sending.
    let passed = 60 - c.rate_limited;
    assert!((10..=12).contains(&passed), "{c:?}");
    // The messages that passed, and reports whose drops add up to what was counted.
    let (mut ordinary, mut reported) = (0u64, 0u64);
    while ordinary < passed || reported < c.rate_limited {
        let e = rig.next(SECOND).await;
        match attr(&e, "rate_limited") {
            Some(n) => {
                reported += n.parse::<u64>().expect("a count");
                assert_eq!(e.entity, EntityKey::Device("edge1".into()));
                assert_eq!(e.severity, Severity::Warning);
            }
            None => ordinary += 1,
        }
    }
    assert_eq!((ordinary, reported), (passed, c.rate_limited));
    rig.nothing(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn unknown_sources_are_dropped_and_counted() {
    let mut rig = start(base_config()).await;
    rig.udp_from(STRANGER, &[b"<30>interface,info ether1 link down"])
        .await;
    // TCP from an unknown address is refused at accept.
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind((STRANGER.parse::<IpAddr>().expect("ip"), 0).into())
        .expect("bind");
    let mut tcp = sock.connect(rig.tcp_addr()).await.expect("connect");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(SECOND, tcp.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    rig.nothing(Duration::from_millis(300)).await;
    let c = rig.counts(|c| c.unknown_source == 2).await;
    assert_eq!(c.tcp_refused_unknown, 1);

    // Known from now on: the source map changes live.
    rig.actor
        .cast(SyslogMsg::SetSources(
            [
                (LOCAL.parse().expect("ip"), "edge1".to_owned()),
                (STRANGER.parse().expect("ip"), "edge2".to_owned()),
            ]
            .into(),
        ))
        .expect("cast");
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.udp_from(STRANGER, &[b"<30>interface,info ether9 link down"])
        .await;
    let e = rig.next(SECOND).await;
    assert_eq!(
        e.entity,
        EntityKey::Interface {
            device: "edge2".into(),
            name: "ether9".into()
        }
    );
}

#[tokio::test]
async fn unknown_sources_can_be_mapped() {
    let mut rig = start(SyslogConfig {
        unknown_sources: UnknownSources::Map,
        ..base_config()
    })
    .await;
    rig.udp_from(STRANGER, &[b"<30>system,info hello"]).await;
    let e = rig.next(SECOND).await;
    assert_eq!(e.entity, EntityKey::Device("unknown:127.0.0.2".into()));
}

#[tokio::test]
async fn malformed_and_oversize_are_counted_never_fatal() {
    let mut rig = start(base_config()).await;
    let oversize = vec![b'x'; 9_000];
    rig.udp_from(
        LOCAL,
        &[
            b"<999>bad pri",
            b"\x00\x01\x02\x03",
            b"<13>1 - h a - - [unterminated",
            b"",
            &oversize,
            b"<30>interface,info ether1 link down",
        ],
    )
    .await;
    let e = rig.next(SECOND).await;
    assert_eq!(e.kind, EventKind::LinkDown);
    let c = rig
        .counts(|c| c.malformed_parse + c.malformed_oversize == 5)
        .await;
    assert_eq!(c.malformed_oversize, 1);
    assert_eq!(c.received_udp, 6);
    // Still serving.
    rig.udp(&["<30>interface,info ether2 link down"]).await;
    assert_eq!(attr(&rig.next(SECOND).await, "interface"), Some("ether2"));
}

#[tokio::test]
async fn tcp_connection_limit() {
    let rig = start(SyslogConfig {
        max_tcp_connections: 1,
        ..base_config()
    })
    .await;
    let _first = TcpStream::connect(rig.tcp_addr()).await.expect("connect");
    rig.counts(|c| c.tcp_connections == 1).await;
    let mut second = TcpStream::connect(rig.tcp_addr()).await.expect("connect");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(SECOND, second.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let c = rig.counts(|c| c.tcp_refused_limit == 1).await;
    assert_eq!(c.tcp_connections, 1);
}

#[tokio::test]
async fn stop_hands_over_pending_summaries_and_new_uplink() {
    let mut rig = start(base_config()).await;
    // A new uplink (the old one was restarted).
    let (uplink2, mut events) = UplinkRecorder::spawn().await;
    rig.actor
        .cast(SyslogMsg::SetUplink(uplink2.clone()))
        .expect("cast");
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.udp(&[
        "<28>system,warning disk almost full",
        "<28>system,warning disk almost full",
        "<28>system,warning disk almost full",
    ])
    .await;
    let first = tokio::time::timeout(SECOND, events.recv())
        .await
        .expect("in time")
        .expect("event")
        .events
        .remove(0);
    assert_eq!(first.message, "system,warning disk almost full");
    rig.counts(|c| c.suppressed == 2).await;
    rig.actor.stop_and_wait(None, None).await.expect("stop");
    // The 30 s window had not closed: its summary came out at stop.
    let summary = tokio::time::timeout(SECOND, events.recv())
        .await
        .expect("in time")
        .expect("event")
        .events
        .remove(0);
    assert_eq!(attr(&summary, "repeated"), Some("2"));
    rig.nothing(Duration::from_millis(100)).await;
    // The sockets are released: the same ports can be bound again.
    let again = start(SyslogConfig {
        udp_port: rig.udp_addr().port(),
        tcp_port: rig.tcp_addr().port(),
        ..base_config()
    })
    .await;
    assert_eq!(again.addrs, rig.addrs);
    rig.uplink.stop(None);
}

/// The system `logger` (util-linux) as an independent sender, when installed.
fn logger(port: u16, args: &[&str], message: &str) -> bool {
    let status = std::process::Command::new("logger")
        .args(["--server", LOCAL, "--port", &port.to_string()])
        .args(args)
        .arg(message)
        .status();
    match status {
        Ok(s) if s.success() => true,
        Ok(s) => panic!("logger failed: {s}"),
        Err(e) => {
            eprintln!("logger not available ({e}); skipping the logger part");
            false
        }
    }
}

#[tokio::test]
async fn system_logger_as_sender() {
    let mut rig = start(base_config()).await;
    let (udp, tcp) = (rig.udp_addr().port(), rig.tcp_addr().port());
    if !logger(
        udp,
        &["--udp", "--rfc3164", "-t", "mytag", "-p", "local3.err"],
        "bsd over udp",
    ) {
        return;
    }
    let e = rig.next(SECOND).await;
    assert_eq!(e.kind, EventKind::Syslog);
    assert_eq!(e.message, "bsd over udp");
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(attr(&e, "app"), Some("mytag"));
    assert_eq!(attr(&e, "facility"), Some("local3"));
    assert_eq!(attr(&e, "format"), Some("rfc3164"));
    assert!(attr(&e, "host").is_some());

    logger(
        udp,
        &[
            "--udp",
            "--rfc5424",
            "-t",
            "app5424",
            "--msgid",
            "ID47",
            "--sd-id",
            "probe@32473",
            "--sd-param",
            "zone=\"core\"",
            "-p",
            "daemon.warning",
        ],
        "ietf over udp",
    );
    let e = rig.next(SECOND).await;
    assert_eq!(e.message, "ietf over udp");
    assert_eq!(attr(&e, "format"), Some("rfc5424"));
    assert_eq!(attr(&e, "msgid"), Some("ID47"));
    assert_eq!(attr(&e, "sd.probe@32473.zone"), Some("core"));
    assert_eq!(e.severity, Severity::Warning);

    // TCP: LF framing (logger's default) and octet counting.
    logger(
        tcp,
        &["--tcp", "--rfc5424", "-t", "lf"],
        "ietf over tcp, lf framing",
    );
    let e = rig.next(SECOND).await;
    assert_eq!(e.message, "ietf over tcp, lf framing");
    assert_eq!(attr(&e, "transport"), Some("tcp"));
    logger(
        tcp,
        &["--tcp", "--octet-count", "--rfc5424", "-t", "oc"],
        "ietf over tcp, octet counting",
    );
    let e = rig.next(SECOND).await;
    assert_eq!(e.message, "ietf over tcp, octet counting");
    // A RouterOS line through logger: typed like the router's own.
    logger(
        udp,
        &["--udp", "--rfc3164", "-t", "edge1", "-p", "daemon.info"],
        "interface,info ether7 link down",
    );
    let e = rig.next(SECOND).await;
    assert_eq!(e.kind, EventKind::LinkDown);
    assert_eq!(attr(&e, "interface"), Some("ether7"));
}
