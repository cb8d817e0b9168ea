//! Faults applied to a running virtual ISP, observed through the RouterOS API over TCP:
//! every router that should see a fault sees it, at the moment it should.

mod common;

use common::{Client, LOCALHOST, Read, WAIT, router, session};
use ispvm_proto::routeros::{Command, Reply, ReplyKind};
use ispvm_sim::{Fault, FaultError, Topology, VirtualIsp};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// Hold time and convergence short enough for tests.
const HOLD: f64 = 1.0;
const CONVERGE: f64 = 0.4;
const REBOOT: f64 = 1.0;

async fn fast_isp() -> VirtualIsp {
    let mut t = Topology::demo();
    t.settings.bgp_hold_time_s = HOLD;
    t.settings.converge_s = CONVERGE;
    t.settings.reboot_s = REBOOT;
    VirtualIsp::start(t, LOCALHOST).await.expect("start")
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn iface(c: &mut Client, name: &str) -> Reply {
    let r = c
        .call(Command::new("/interface/print").with_query(format!("name={name}")))
        .await;
    assert_eq!(r.len(), 2, "{r:?}");
    r[0].clone()
}

fn num(reply: &Reply, key: &str) -> u64 {
    reply
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {reply:?}"))
}

async fn bgp(c: &mut Client, v7: bool) -> Vec<Reply> {
    let path = if v7 {
        "/routing/bgp/session/print"
    } else {
        "/routing/bgp/peer/print"
    };
    let mut r = c.call(Command::new(path)).await;
    r.retain(|x| x.kind == ReplyKind::Re);
    r
}

async fn session_to(c: &mut Client, v7: bool, remote: &str) -> Reply {
    let key = if v7 {
        "remote.address"
    } else {
        "remote-address"
    };
    bgp(c, v7)
        .await
        .into_iter()
        .find(|s| s.get(key) == Some(remote))
        .unwrap_or_else(|| panic!("no session to {remote}"))
}

async fn ospf_ids(c: &mut Client) -> Vec<String> {
    c.call(Command::new("/routing/ospf/neighbor/print"))
        .await
        .iter()
        .filter_map(|r| r.get("router-id").map(str::to_owned))
        .collect()
}

async fn neighbor_ids(c: &mut Client) -> Vec<String> {
    c.call(Command::new("/ip/neighbor/print"))
        .await
        .iter()
        .filter_map(|r| r.get("identity").map(str::to_owned))
        .collect()
}

/// Whether a new connection to the router gets no answer to `/login`.
async fn api_unreachable(addr: std::net::SocketAddr) -> bool {
    let Ok(Ok(stream)) = timeout(WAIT, TcpStream::connect(addr)).await else {
        return true;
    };
    let mut c = Client::over(stream);
    c.send(&Command::new("/login")).await;
    matches!(
        c.reply_within(Duration::from_secs(1)).await,
        None | Some(Read::Closed)
    )
}

#[tokio::test]
async fn link_cut_changes_every_view_consistently() {
    let isp = fast_isp().await;
    let mut core = session(&isp, "lis1-core1").await;
    let mut rr = session(&isp, "lis1-rr1").await;
    let rr_id = "10.0.0.3";
    let core_id = "10.0.0.1";
    assert!(ospf_ids(&mut core).await.contains(&rr_id.to_owned()));
    assert!(
        neighbor_ids(&mut rr)
            .await
            .contains(&"LIS1-CORE1".to_owned())
    );
    let before = iface(&mut core, "sfp28-4").await;
    assert_eq!(before.get("running"), Some("true"));
    let s = session_to(&mut core, true, rr_id).await;
    assert_eq!(s.get("established"), Some("true"));
    assert!(num(&s, "prefix-count") > 900_000);

    let id = isp
        .apply(Fault::LinkCut {
            a: "lis1-rr1:ether2".into(),
            b: "lis1-core1:sfp28-4".into(),
        })
        .expect("apply");
    assert_eq!(isp.active_faults().len(), 1);

    // At once: both ends down, OSPF and MNDP neighbours gone, BGP still up (hold time).
    let a = iface(&mut core, "sfp28-4").await;
    let b = iface(&mut rr, "ether2").await;
    assert_eq!(a.get("running"), Some("false"));
    assert_eq!(b.get("running"), Some("false"));
    assert_eq!(num(&a, "link-downs"), num(&before, "link-downs") + 1);
    assert!(!ospf_ids(&mut core).await.contains(&rr_id.to_owned()));
    assert!(!ospf_ids(&mut rr).await.contains(&core_id.to_owned()));
    assert!(
        !neighbor_ids(&mut rr)
            .await
            .contains(&"LIS1-CORE1".to_owned())
    );
    // The other link between them is untouched.
    assert_eq!(iface(&mut rr, "ether3").await.get("running"), Some("true"));
    assert_eq!(
        session_to(&mut core, true, rr_id).await.get("established"),
        Some("true")
    );
    // Counters stop growing.
    sleep(secs(0.3)).await;
    let later = iface(&mut core, "sfp28-4").await;
    assert_eq!(num(&later, "rx-byte"), num(&a, "rx-byte"));
    assert_eq!(num(&later, "tx-byte"), num(&a, "tx-byte"));

    // After the hold time the session is down on both ends, with no prefixes.
    sleep(secs(HOLD + 0.2)).await;
    let s = session_to(&mut core, true, rr_id).await;
    assert_eq!(s.get("established"), Some("false"));
    assert_eq!(s.get("prefix-count"), Some("0"));
    assert!(s.get("uptime").is_none());
    let mut rr_side = bgp(&mut rr, true).await;
    rr_side.retain(|x| x.get("remote.address") == Some(core_id));
    assert_eq!(rr_side[0].get("established"), Some("false"));

    isp.clear(id).expect("clear");
    assert_eq!(isp.clear(id), Err(FaultError::AlreadyCleared(id)));
    assert!(isp.active_faults().is_empty());
    let up = iface(&mut core, "sfp28-4").await;
    assert_eq!(up.get("running"), Some("true"));
    sleep(secs(CONVERGE + 0.2)).await;
    assert!(ospf_ids(&mut core).await.contains(&rr_id.to_owned()));
    let s = session_to(&mut core, true, rr_id).await;
    assert_eq!(s.get("established"), Some("true"));
    assert!(num(&iface(&mut core, "sfp28-4").await, "rx-byte") > num(&a, "rx-byte"));
    isp.shutdown().await;
}

#[tokio::test]
async fn a_short_cut_does_not_drop_bgp() {
    let mut t = Topology::demo();
    t.settings.bgp_hold_time_s = 30.0;
    let isp = VirtualIsp::start(t, LOCALHOST).await.expect("start");
    let mut core = session(&isp, "lis1-core1").await;
    let id = isp
        .apply(Fault::LinkCut {
            a: "lis1-core1:sfp28-4".into(),
            b: "lis1-rr1:ether2".into(),
        })
        .expect("apply");
    sleep(secs(0.3)).await;
    isp.clear(id).expect("clear");
    let s = session_to(&mut core, true, "10.0.0.3").await;
    assert_eq!(s.get("established"), Some("true"));
    isp.shutdown().await;
}

#[tokio::test]
async fn router_down_refuses_the_api_and_cuts_its_links() {
    let isp = fast_isp().await;
    let rr = router(&isp, "lis1-rr1").clone();
    let mut open = session(&isp, "lis1-rr1").await;
    let mut core = session(&isp, "lis1-core1").await;
    let id = isp
        .apply(Fault::RouterDown {
            router: "lis1-rr1".into(),
        })
        .expect("apply");
    open.expect_closed().await;
    assert!(api_unreachable(rr.addr).await);
    assert!(api_unreachable(rr.tls_addr).await);
    assert_eq!(
        iface(&mut core, "sfp28-4").await.get("running"),
        Some("false")
    );
    assert!(
        !neighbor_ids(&mut core)
            .await
            .contains(&"LIS1-RR1".to_owned())
    );
    sleep(secs(HOLD + 0.2)).await;
    assert_eq!(
        session_to(&mut core, true, "10.0.0.3")
            .await
            .get("established"),
        Some("false")
    );
    isp.clear(id).expect("clear");
    // It booted when power came back.
    let mut c = session(&isp, "lis1-rr1").await;
    let res = c.call(Command::new("/system/resource/print")).await;
    let uptime = res[0].get("uptime").expect("uptime");
    assert!(uptime.ends_with('s') && !uptime.contains('m'), "{uptime}");
    isp.shutdown().await;
}

#[tokio::test]
async fn bgp_shut_downs_both_ends_v6_and_v7() {
    let isp = fast_isp().await;
    let mut edge2 = session(&isp, "lis1-edge2").await; // RouterOS 6
    let mut rr = session(&isp, "lis1-rr1").await; // RouterOS 7
    let edge2_id = "10.0.0.5";
    let before = session_to(&mut edge2, false, "10.0.0.3").await;
    for key in [
        ".id",
        "name",
        "instance",
        "remote-address",
        "remote-as",
        "state",
        "established",
        "uptime",
        "prefix-count",
        "updates-sent",
        "updates-received",
        "disabled",
    ] {
        assert!(before.get(key).is_some(), "{key} in {before:?}");
    }
    assert_eq!(before.get("state"), Some("established"));
    let id = isp
        .apply(Fault::BgpShut {
            router: "lis1-edge2".into(),
            peer: "lis1-rr1".into(),
        })
        .expect("apply");
    let s = session_to(&mut edge2, false, "10.0.0.3").await;
    assert_eq!(s.get("state"), Some("idle"));
    assert_eq!(s.get("established"), Some("false"));
    assert_eq!(s.get("disabled"), Some("true"));
    assert_eq!(s.get("prefix-count"), Some("0"));
    let other = session_to(&mut rr, true, edge2_id).await;
    assert_eq!(other.get("established"), Some("false"));
    assert_eq!(other.get("prefix-count"), Some("0"));
    // Other sessions of the route reflector are fine.
    assert_eq!(
        session_to(&mut rr, true, "10.0.0.1")
            .await
            .get("established"),
        Some("true")
    );
    // The transit session of edge 2 too.
    assert_eq!(
        session_to(&mut edge2, false, "198.51.100.1")
            .await
            .get("state"),
        Some("established")
    );
    isp.clear(id).expect("clear");
    sleep(secs(CONVERGE + 0.2)).await;
    let s = session_to(&mut edge2, false, "10.0.0.3").await;
    assert_eq!(s.get("state"), Some("established"));
    assert_eq!(s.get("disabled"), Some("false"));
    isp.shutdown().await;
}

#[tokio::test]
async fn upstream_loss_keeps_the_port_up_but_empties_it() {
    let isp = fast_isp().await;
    let mut edge1 = session(&isp, "lis1-edge1").await;
    let transit = session_to(&mut edge1, true, "203.0.113.1").await;
    assert_eq!(transit.get("local.address"), Some("203.0.113.2"));
    assert_eq!(transit.get("remote.as"), Some("64496"));
    let id = isp
        .apply(Fault::UpstreamLoss {
            router: "lis1-edge1".into(),
            interface: "sfp-sfpplus2".into(),
        })
        .expect("apply");
    let a = iface(&mut edge1, "sfp-sfpplus2").await;
    sleep(secs(1.0)).await;
    let b = iface(&mut edge1, "sfp-sfpplus2").await;
    assert_eq!(b.get("running"), Some("true"));
    let rx_bps = (num(&b, "rx-byte") - num(&a, "rx-byte")) as f64 * 8.0;
    assert!(rx_bps < 10e9 * 0.01, "{rx_bps} bit/s on a lost upstream");
    sleep(secs(HOLD)).await;
    let s = session_to(&mut edge1, true, "203.0.113.1").await;
    assert_eq!(s.get("established"), Some("false"));
    assert_eq!(s.get("prefix-count"), Some("0"));
    isp.clear(id).expect("clear");
    sleep(secs(CONVERGE + 0.2)).await;
    let s = session_to(&mut edge1, true, "203.0.113.1").await;
    assert_eq!(
        s.get("established"),
        Some("true"),
        "back once transit carries again"
    );
    isp.shutdown().await;
}

#[tokio::test]
async fn congestion_fills_the_link_and_drops_packets() {
    let isp = fast_isp().await;
    let mut core = session(&isp, "lis1-core1").await;
    let mut agg = session(&isp, "cbr1-agg1").await;
    let _id = isp
        .apply(Fault::Congestion {
            a: "lis1-core1:sfp28-6".into(),
            b: "cbr1-agg1:sfp28-1".into(),
            utilisation: 0.97,
        })
        .expect("apply");
    let a = iface(&mut core, "sfp28-6").await;
    let started = Instant::now();
    sleep(secs(1.0)).await;
    let b = iface(&mut core, "sfp28-6").await;
    let elapsed = started.elapsed().as_secs_f64();
    for key in ["rx-byte", "tx-byte"] {
        let bps = (num(&b, key) - num(&a, key)) as f64 * 8.0 / elapsed;
        assert!(bps > 25e9 * 0.85 && bps < 25e9 * 1.1, "{key}: {bps}");
    }
    assert!(num(&b, "tx-queue-drop") > num(&a, "tx-queue-drop") + 1000);
    let far = iface(&mut agg, "sfp28-1").await;
    assert_eq!(far.get("running"), Some("true"));
    assert!(num(&far, "tx-queue-drop") > 0);
    isp.shutdown().await;
}

#[tokio::test]
async fn management_down_only_hides_the_api() {
    let isp = fast_isp().await;
    let bng = router(&isp, "lis1-bng1").clone();
    let mut core = session(&isp, "lis1-core1").await;
    let mut open = session(&isp, "lis1-bng1").await;
    let id = isp
        .apply(Fault::ManagementDown {
            router: "lis1-bng1".into(),
        })
        .expect("apply");
    open.expect_closed().await;
    assert!(api_unreachable(bng.addr).await);
    sleep(secs(HOLD + 0.2)).await;
    // Forwarding and routing around it are fine.
    assert_eq!(
        iface(&mut core, "sfp28-5").await.get("running"),
        Some("true")
    );
    assert!(
        neighbor_ids(&mut core)
            .await
            .contains(&"LIS1-BNG1".to_owned())
    );
    assert!(ospf_ids(&mut core).await.len() >= 4);
    isp.clear(id).expect("clear");
    let mut back = session(&isp, "lis1-bng1").await;
    let s = bgp(&mut back, true).await;
    assert_eq!(s[0].get("established"), Some("true"));
    isp.shutdown().await;
}

#[tokio::test]
async fn slow_and_flaky_api() {
    let isp = fast_isp().await;
    let mut c = session(&isp, "evr1-agg1").await;
    let slow = isp
        .apply(Fault::SlowApi {
            router: "evr1-agg1".into(),
            delay_ms: 300,
        })
        .expect("apply");
    let t = Instant::now();
    let r = c.call(Command::new("/system/identity/print")).await;
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r[0].get("name"), Some("EVR1-AGG1"));
    isp.clear(slow).expect("clear");
    let t = Instant::now();
    c.call(Command::new("/system/identity/print")).await;
    assert!(t.elapsed() < Duration::from_millis(300));

    let _flaky = isp
        .apply(Fault::FlakyApi {
            router: "evr1-agg1".into(),
            drop_per_mille: 1000,
        })
        .expect("apply");
    c.send(&Command::new("/interface/print")).await;
    // Part of a sentence at most, then the connection is gone.
    match c.reply_within(WAIT).await {
        Some(Read::Closed) => {}
        other => panic!("expected a cut connection, got {other:?}"),
    }
    assert!(!c.buf.is_empty(), "half a reply arrived before the cut");
    assert!(matches!(
        isp.apply(Fault::FlakyApi {
            router: "evr1-agg1".into(),
            drop_per_mille: 1001
        }),
        Err(FaultError::BadDropRate(1001))
    ));
    isp.shutdown().await;
}

#[tokio::test]
async fn reboot_restarts_uptime_counters_and_sessions() {
    let isp = fast_isp().await;
    let mut old = session(&isp, "lis1-core2").await;
    let before = iface(&mut old, "sfp-sfpplus1").await;
    let _id = isp
        .apply(Fault::Reboot {
            router: "lis1-core2".into(),
        })
        .expect("apply");
    old.expect_closed().await;
    assert!(api_unreachable(router(&isp, "lis1-core2").addr).await);
    sleep(secs(REBOOT)).await;
    let mut c = session(&isp, "lis1-core2").await;
    let res = c.call(Command::new("/system/resource/print")).await;
    let uptime = res[0].get("uptime").expect("uptime");
    assert!(uptime.ends_with('s') && !uptime.contains('m'), "{uptime}");
    let after = iface(&mut c, "sfp-sfpplus1").await;
    assert!(num(&after, "rx-byte") < num(&before, "rx-byte") / 1000);
    assert_eq!(after.get("link-downs"), Some("0"));
    sleep(secs(CONVERGE + 0.2)).await;
    let sessions = bgp(&mut c, true).await;
    assert_eq!(sessions[0].get("established"), Some("true"));
    assert!(!ospf_ids(&mut c).await.is_empty());
    assert!(
        isp.active_faults().is_empty(),
        "a finished reboot is not active"
    );
    isp.shutdown().await;
}

#[tokio::test]
async fn the_timeline_applies_and_clears_faults() {
    let text = format!(
        "{}\n[[timeline]]\nat_s = 0.3\nduration_s = 0.6\nfault = {{ kind = \"link_cut\", a = \"evr1-agg1:sfp-sfpplus3\", b = \"evr1-acc1:sfp-sfpplus1\" }}\n",
        include_str!("../topologies/demo-isp.toml")
    );
    let t = Topology::from_toml(&text).expect("valid");
    let isp = VirtualIsp::start(t, LOCALHOST).await.expect("start");
    let mut acc = session(&isp, "evr1-acc1").await;
    assert_eq!(
        iface(&mut acc, "sfp-sfpplus1").await.get("running"),
        Some("true")
    );
    sleep(secs(0.5)).await;
    assert_eq!(
        iface(&mut acc, "sfp-sfpplus1").await.get("running"),
        Some("false")
    );
    assert_eq!(isp.active_faults().len(), 1);
    sleep(secs(0.7)).await;
    assert_eq!(
        iface(&mut acc, "sfp-sfpplus1").await.get("running"),
        Some("true")
    );
    assert!(isp.active_faults().is_empty());

    let bad = text.replace("evr1-acc1:sfp-sfpplus1\" }", "evr1-acc2:sfp-sfpplus1\" }");
    let e = Topology::from_toml(&bad).expect_err("not a link");
    assert!(e.to_string().contains("timeline entry 0"), "{e}");
    isp.shutdown().await;
}
