//! The simulated routers over real TCP on 127.0.0.1, with a tiny client built from the
//! proto codec, the way the agent will talk to them.

mod common;

use common::{Client, LOCALHOST, WAIT, demo_isp, keys, router};
use ispvm_proto::routeros::{Command, Reply, ReplyKind, Sentence, encode_sentence};
use ispvm_sim::router_state::RouterModel;
use ispvm_sim::{Topology, VirtualIsp};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn every_router_listens_on_its_own_port() {
    let isp = demo_isp().await;
    assert_eq!(isp.routers().len(), isp.topology().routers.len());
    let mut ports: Vec<u16> = isp.routers().iter().map(|r| r.addr.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), isp.routers().len());
    // Per-router credentials override the topology's.
    assert_eq!(
        router(&isp, "lis1-edge2").credentials.username,
        "monitor-legacy"
    );
    for r in isp.routers() {
        assert!(r.addr.ip().is_loopback());
        let mut c = Client::connect(r).await;
        c.login(r).await;
        let id = c.call(Command::new("/system/identity/print")).await;
        assert_eq!(id[0].get("name"), Some(r.spec.identity.as_str()));
    }
    isp.shutdown().await;
}

#[tokio::test]
async fn login_ok_bad_password_and_not_logged_in() {
    let isp = demo_isp().await;
    let r = router(&isp, "lis1-core1");
    let mut c = Client::connect(r).await;

    let before = c
        .call(Command::new("/system/resource/print").with_tag("1"))
        .await;
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].kind, ReplyKind::Trap);
    assert_eq!(before[0].get("message"), Some("not logged in"));
    assert_eq!(before[1].kind, ReplyKind::Done);
    assert!(before.iter().all(|x| x.tag.as_deref() == Some("1")));

    let bad = c
        .call(
            Command::new("/login")
                .with_attr("name", "monitor")
                .with_attr("password", "wrong"),
        )
        .await;
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0].kind, ReplyKind::Trap);
    assert_eq!(
        bad[0].get("message"),
        Some("invalid user name or password (6)")
    );
    assert_eq!(bad[1].kind, ReplyKind::Done);

    // Another router's password is wrong here too.
    let legacy = router(&isp, "lis1-edge2");
    let other = c
        .call(
            Command::new("/login")
                .with_attr("name", &legacy.credentials.username)
                .with_attr("password", &legacy.credentials.password),
        )
        .await;
    assert_eq!(other[0].kind, ReplyKind::Trap);

    c.login(r).await;
    let ok = c.call(Command::new("/system/resource/print")).await;
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].kind, ReplyKind::Re);
    for key in [
        "uptime",
        "version",
        "build-time",
        "free-memory",
        "total-memory",
        "cpu",
        "cpu-count",
        "cpu-frequency",
        "cpu-load",
        "free-hdd-space",
        "total-hdd-space",
        "architecture-name",
        "board-name",
        "platform",
    ] {
        assert!(ok[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(ok[0].get("version"), Some("7.16.1 (stable)"));
    assert_eq!(ok[0].get("board-name"), Some("CCR2216-1G-12XS-2XQ"));
    assert_eq!(ok[0].get("platform"), Some("MikroTik"));
    let load: u8 = ok[0]
        .get("cpu-load")
        .and_then(|v| v.parse().ok())
        .expect("cpu-load");
    assert!(load <= 100);
    let uptime = ok[0].get("uptime").expect("uptime");
    assert!(
        uptime.ends_with('s') && (uptime.contains('d') || uptime.contains('h')),
        "{uptime}"
    );
    isp.shutdown().await;
}

#[tokio::test]
async fn proplist_restricts_and_tags_are_echoed() {
    let isp = demo_isp().await;
    let r = router(&isp, "lis1-core2");
    let mut c = Client::connect(r).await;
    c.login(r).await;
    let replies = c
        .call(
            Command::new("/interface/print")
                .with_proplist(["name", "running", "rx-byte"])
                .with_tag("poll-42"),
        )
        .await;
    assert_eq!(replies.len(), r.spec.interfaces.len() + 1);
    for (reply, spec) in replies.iter().zip(&r.spec.interfaces) {
        assert_eq!(reply.kind, ReplyKind::Re);
        assert_eq!(keys(reply), vec!["name", "running", "rx-byte"]);
        assert_eq!(reply.get("name"), Some(spec.name.as_str()));
    }
    assert!(replies.iter().all(|x| x.tag.as_deref() == Some("poll-42")));
    assert_eq!(replies.last().map(|x| x.kind), Some(ReplyKind::Done));

    // Two tagged commands pipelined: each answer carries its own tag, in order.
    c.send(
        &Command::new("/system/identity/print")
            .with_tag("a")
            .with_proplist(["name"]),
    )
    .await;
    c.send(&Command::new("/nope/print").with_tag("b")).await;
    let a = c.replies().await;
    let b = c.replies().await;
    assert!(a.iter().all(|x| x.tag.as_deref() == Some("a")));
    assert!(b.iter().all(|x| x.tag.as_deref() == Some("b")));

    // Full print: every attribute the agent relies on.
    let full = c.call(Command::new("/interface/print")).await;
    for key in [
        ".id",
        "name",
        "type",
        "mtu",
        "actual-mtu",
        "mac-address",
        "running",
        "disabled",
        "rx-byte",
        "tx-byte",
        "rx-packet",
        "tx-packet",
        "rx-error",
        "tx-error",
        "rx-drop",
        "tx-drop",
        "link-downs",
    ] {
        assert!(full[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(full[0].get(".id"), Some("*1"));
    assert_eq!(full[1].get(".id"), Some("*2"));
    isp.shutdown().await;
}

#[tokio::test]
async fn unknown_command_traps_with_category() {
    let isp = demo_isp().await;
    let r = router(&isp, "evr1-agg1");
    let mut c = Client::connect(r).await;
    c.login(r).await;
    // v6's BGP menu does not exist on v7.
    let replies = c
        .call(Command::new("/routing/bgp/peer/print").with_tag("x"))
        .await;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].kind, ReplyKind::Trap);
    assert_eq!(replies[0].get("category"), Some("0"));
    assert_eq!(replies[0].get("message"), Some("no such command prefix"));
    assert_eq!(replies[1].kind, ReplyKind::Done);
    assert!(replies.iter().all(|x| x.tag.as_deref() == Some("x")));
    // The session goes on.
    let id = c.call(Command::new("/system/identity/print")).await;
    assert_eq!(id[0].get("name"), Some("EVR1-AGG1"));
    isp.shutdown().await;
}

fn rx_tx(reply: &Reply) -> (u64, u64) {
    let get = |k: &str| {
        reply
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .expect("counter")
    };
    (get("rx-byte"), get("tx-byte"))
}

/// Reads rx/tx bytes of one interface; also returns when the request left and when the
/// answer arrived, which bracket the instant the router computed the counters.
async fn read_counters(c: &mut Client, iface: &str) -> ((u64, u64), Instant, Instant) {
    let cmd = Command::new("/interface/print")
        .with_query(format!("name={iface}"))
        .with_proplist(["name", "rx-byte", "tx-byte"]);
    let sent = Instant::now();
    let replies = c.call(cmd).await;
    let received = Instant::now();
    assert_eq!(replies.len(), 2, "{replies:?}");
    (rx_tx(&replies[0]), sent, received)
}

#[tokio::test]
async fn counters_grow_at_the_rate_of_the_curve() {
    let isp = demo_isp().await;
    let r = router(&isp, "lis1-core1");
    let iface = "sfp28-6";
    let mut c = Client::connect(r).await;
    c.login(r).await;
    let start = Instant::now();
    let start_wall = SystemTime::now();
    let (first, sent1, recv1) = read_counters(&mut c, iface).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (second, sent2, recv2) = read_counters(&mut c, iface).await;
    assert!(
        second.0 > first.0 && second.1 > first.1,
        "{first:?} {second:?}"
    );

    // What the curve says, from an identical model (same topology, same ids).
    let model = RouterModel::from_topology(isp.topology(), &r.spec.id, start_wall).expect("model");
    let index = model.interface_index(iface).expect("interface");
    let mid = ispvm_sim::router_state::unix_seconds(start_wall)
        + (recv2.max(sent2) - start).as_secs_f64() / 2.0;
    let (rx_bps, tx_bps) = model.interface_rate_bps(index, mid).expect("rates");
    // The router read its counters somewhere inside each request's round trip.
    let shortest = (sent2 - recv1).as_secs_f64();
    let longest = (recv2 - sent1).as_secs_f64();
    for (grown, expected_bps) in [(second.0 - first.0, rx_bps), (second.1 - first.1, tx_bps)] {
        let bits = grown as f64 * 8.0;
        // 3 % for the noise of the curve moving within the interval.
        let lo = expected_bps * shortest * 0.97;
        let hi = expected_bps * longest * 1.03;
        assert!(
            (lo..=hi).contains(&bits),
            "grew {bits:.0} bits; curve {expected_bps:.0} bit/s over {shortest:.3}..{longest:.3} s"
        );
    }
    // And the rate is a plausible share of a 25G link.
    assert!(rx_bps.max(tx_bps) < 25e9 && rx_bps.max(tx_bps) > 25e9 * 0.05);
    isp.shutdown().await;
}

#[tokio::test]
async fn garbage_gets_fatal_and_the_connection_closes() {
    let isp = demo_isp().await;
    let r = router(&isp, "lis1-rr1");

    // A reserved control byte where a word length belongs.
    let mut c = Client::connect(r).await;
    c.send_raw(&[0xF8, 0x01, 0x02, 0x03]).await;
    let fatal = c.reply().await.expect("a !fatal");
    assert_eq!(fatal.kind, ReplyKind::Fatal);
    assert!(fatal.fatal_message.is_some_and(|m| !m.is_empty()));
    c.expect_closed().await;

    // Well framed, but not a command.
    let mut c = Client::connect(r).await;
    let mut wire = Vec::new();
    encode_sentence(&Sentence::new(["GET / HTTP/1.1", "Host: x"]), &mut wire);
    c.send_raw(&wire).await;
    let fatal = c.reply().await.expect("a !fatal");
    assert_eq!(fatal.kind, ReplyKind::Fatal);
    c.expect_closed().await;

    // A word announced at 1 GiB is refused before it arrives.
    let mut c = Client::connect(r).await;
    c.send_raw(&[0xF0, 0x40, 0x00, 0x00, 0x00, b'x']).await;
    assert_eq!(c.reply().await.map(|f| f.kind), Some(ReplyKind::Fatal));
    c.expect_closed().await;

    // The router still serves everyone else.
    let mut c = Client::connect(r).await;
    c.login(r).await;
    isp.shutdown().await;
}

#[tokio::test]
async fn quit_ends_the_session() {
    let isp = demo_isp().await;
    let r = router(&isp, "cbr1-agg2");
    let mut c = Client::connect(r).await;
    c.send(&Command::new("/quit")).await;
    let fatal = c.reply().await.expect("a !fatal");
    assert_eq!(fatal.kind, ReplyKind::Fatal);
    assert_eq!(
        fatal.fatal_message.as_deref(),
        Some("session terminated on request")
    );
    c.expect_closed().await;
    isp.shutdown().await;
}

#[tokio::test]
async fn ppp_active_counts_subscribers() {
    let isp = demo_isp().await;
    for (id, expect_sessions) in [
        ("lis1-bng1", true),
        ("cbr1-bng1", true),
        ("lis1-core1", false),
    ] {
        let r = router(&isp, id);
        let mut c = Client::connect(r).await;
        c.login(r).await;
        let counted = c
            .call(
                Command::new("/ppp/active/print")
                    .with_attr("count-only", "")
                    .with_tag("n"),
            )
            .await;
        assert_eq!(counted.len(), 1, "{counted:?}");
        assert_eq!(counted[0].kind, ReplyKind::Done);
        assert_eq!(counted[0].tag.as_deref(), Some("n"));
        let n: u64 = counted[0]
            .get("ret")
            .and_then(|v| v.parse().ok())
            .expect("=ret=");
        let listed = c.call(Command::new("/ppp/active/print")).await;
        if expect_sessions {
            assert!((500..=2000).contains(&n), "{id}: {n}");
            assert_eq!(listed.len(), 51, "capped at 50 sessions");
            let s = &listed[0];
            assert_eq!(s.get("service"), Some("pppoe"));
            for key in ["name", "caller-id", "address", "uptime"] {
                assert!(s.get(key).is_some_and(|v| !v.is_empty()), "{key}");
            }
        } else {
            assert_eq!(n, 0);
            assert_eq!(listed.len(), 1);
        }
    }
    isp.shutdown().await;
}

#[tokio::test]
async fn health_and_addresses_follow_the_version() {
    let isp = demo_isp().await;
    let v7 = router(&isp, "lis1-core1");
    let v6 = router(&isp, "cbr1-bng1");

    let mut c = Client::connect(v7).await;
    c.login(v7).await;
    let sensors = c.call(Command::new("/system/health/print")).await;
    assert!(sensors.len() >= 4);
    let temp = sensors
        .iter()
        .find(|s| s.get("name") == Some("temperature"))
        .expect("temperature sensor");
    assert_eq!(temp.get("type"), Some("C"));
    let celsius: f64 = temp
        .get("value")
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!((20.0..90.0).contains(&celsius));
    let addresses = c.call(Command::new("/ip/address/print")).await;
    let first = &addresses[0];
    assert!(first.get("address").is_some_and(|a| a.contains('/')));
    for key in [".id", "network", "interface", "disabled"] {
        assert!(first.get(key).is_some(), "{key}");
    }

    let mut c = Client::connect(v6).await;
    c.login(v6).await;
    let health = c.call(Command::new("/system/health/print")).await;
    assert_eq!(health.len(), 2);
    assert!(health[0].get("temperature").is_some() && health[0].get("voltage").is_some());
    let res = c.call(Command::new("/system/resource/print")).await;
    assert_eq!(res[0].get("version"), Some("6.49.15 (long-term)"));
    isp.shutdown().await;
}

#[tokio::test]
async fn many_sessions_at_once_and_shutdown_closes_them() {
    let isp = demo_isp().await;
    let r = router(&isp, "lis1-bng1").clone();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut c = Client::connect(&r).await;
        c.login(&r).await;
        clients.push(c);
    }
    for c in &mut clients {
        let id = c.call(Command::new("/system/identity/print")).await;
        assert_eq!(id[0].get("name"), Some("LIS1-BNG1"));
    }
    timeout(WAIT, isp.shutdown())
        .await
        .expect("shutdown in time");
    for c in &mut clients {
        c.expect_closed().await;
    }
    // Nobody listens any more.
    let refused = timeout(WAIT, TcpStream::connect(r.addr))
        .await
        .expect("in time");
    assert!(refused.is_err());
}

#[tokio::test]
async fn an_invalid_topology_does_not_start() {
    let mut t = Topology::demo();
    t.routers[1].site = "atlantis".to_owned();
    let err = VirtualIsp::start(t, LOCALHOST).await.expect_err("invalid");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("atlantis"));
}
