//! API-SSL, the pre-6.43 login, streaming listens, and the routing menus, over real
//! sockets.

mod common;

use common::{Client, LOCALHOST, WAIT, keys, router, session, tls_connector as connector};
use ispvm_proto::routeros::{Command, ReplyKind};
use ispvm_sim::{Fault, Topology, VirtualIsp};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn api_ssl_works_with_the_isp_ca_and_fails_with_another() {
    let isp = common::demo_isp().await;
    let r = router(&isp, "lis1-core1");
    assert_ne!(r.tls_addr, r.addr);
    let pem = isp.tls_ca_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    for name in ["127.0.0.1", "lis1-core1.sim.invalid"] {
        let tcp = TcpStream::connect(r.tls_addr).await.expect("connect");
        let server = ServerName::try_from(name.to_owned()).expect("name");
        let tls = timeout(WAIT, connector(&pem).connect(server, tcp))
            .await
            .expect("in time")
            .expect("handshake with the ISP's CA");
        let mut c = Client::over(tls);
        c.login(r).await;
        let id = c
            .call(Command::new("/system/identity/print").with_tag("t"))
            .await;
        assert_eq!(id[0].get("name"), Some("LIS1-CORE1"));
        assert_eq!(id[0].tag.as_deref(), Some("t"));
    }

    // Another ISP has another CA: its certificate is not trusted here.
    let other = VirtualIsp::start(Topology::generated(1), LOCALHOST)
        .await
        .expect("start");
    let tcp = TcpStream::connect(r.tls_addr).await.expect("connect");
    let server = ServerName::try_from("127.0.0.1").expect("name");
    let refused = timeout(WAIT, connector(&other.tls_ca_pem()).connect(server, tcp))
        .await
        .expect("in time");
    assert!(refused.is_err(), "a client trusting another CA must refuse");
    // And another router's name does not match this certificate.
    let tcp = TcpStream::connect(r.tls_addr).await.expect("connect");
    let server = ServerName::try_from("lis1-core2.sim.invalid").expect("name");
    assert!(connector(&pem).connect(server, tcp).await.is_err());
    other.shutdown().await;
    isp.shutdown().await;
}

#[tokio::test]
async fn routers_before_6_43_use_the_md5_challenge() {
    let isp = common::demo_isp().await;
    let old = router(&isp, "evr1-acc3");
    assert_eq!(old.spec.ros_version, "6.40.9");
    let mut c = Client::connect(old).await;
    // Name and password in the clear are not a login here: a challenge comes back.
    let first = c
        .call(
            Command::new("/login")
                .with_attr("name", "monitor")
                .with_attr("password", "monitor-secret"),
        )
        .await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, ReplyKind::Done);
    let challenge = first[0].get("ret").expect("challenge");
    assert_eq!(challenge.len(), 32);
    assert!(challenge.bytes().all(|b| b.is_ascii_hexdigit()));
    let not_yet = c.call(Command::new("/system/identity/print")).await;
    assert_eq!(not_yet[0].get("message"), Some("not logged in"));

    // The full flow (the test client answers challenges).
    let mut c = Client::connect(old).await;
    c.login(old).await;
    let id = c.call(Command::new("/system/identity/print")).await;
    assert_eq!(id[0].get("name"), Some("EVR1-ACC3"));

    let mut c = Client::connect(old).await;
    let bad = c.login_as("monitor", "wrong").await;
    assert_eq!(bad[0].kind, ReplyKind::Trap);
    assert_eq!(
        bad[0].get("message"),
        Some("invalid user name or password (6)")
    );
    // A response without a challenge first is refused too.
    let mut c = Client::connect(old).await;
    let r = c
        .call(
            Command::new("/login")
                .with_attr("name", "monitor")
                .with_attr("response", format!("00{}", "0".repeat(32))),
        )
        .await;
    assert_eq!(r[0].kind, ReplyKind::Trap);

    // A modern router keeps the plain flow.
    let mut c = Client::connect(router(&isp, "evr1-acc1")).await;
    let plain = c.login_as("monitor", "monitor-secret").await;
    assert_eq!(plain.len(), 1);
    assert!(plain[0].get("ret").is_none());
    isp.shutdown().await;
}

#[tokio::test]
async fn listen_streams_changes_between_other_tagged_commands() {
    let isp = common::demo_isp().await;
    let mut c = session(&isp, "evr1-agg1").await;
    c.send(
        &Command::new("/interface/listen")
            .with_tag("watch")
            .with_proplist(["name", "running", "disabled"]),
    )
    .await;
    // Another command on the same connection while the listen is open.
    let printed = c.call(Command::new("/interface/print").with_tag("p")).await;
    assert!(printed.iter().all(|r| r.tag.as_deref() == Some("p")));
    assert!(printed.len() > 5);

    let id = isp
        .apply(Fault::LinkCut {
            a: "evr1-agg1:sfp-sfpplus3".into(),
            b: "evr1-acc1:sfp-sfpplus1".into(),
        })
        .expect("apply");
    let change = c.reply().await.expect("a change");
    assert_eq!(change.kind, ReplyKind::Re);
    assert_eq!(change.tag.as_deref(), Some("watch"));
    assert_eq!(keys(&change), vec!["name", "running", "disabled"]);
    assert_eq!(change.get("name"), Some("sfp-sfpplus3"));
    assert_eq!(change.get("running"), Some("false"));

    isp.clear(id).expect("clear");
    let change = c.reply().await.expect("a change");
    assert_eq!(change.get("running"), Some("true"));
    assert_eq!(change.tag.as_deref(), Some("watch"));

    c.send(
        &Command::new("/cancel")
            .with_attr("tag", "watch")
            .with_tag("c"),
    )
    .await;
    let trap = c.reply().await.expect("trap");
    assert_eq!(trap.kind, ReplyKind::Trap);
    assert_eq!(trap.get("category"), Some("2"));
    assert_eq!(trap.get("message"), Some("interrupted"));
    assert_eq!(trap.tag.as_deref(), Some("watch"));
    let done = c.reply().await.expect("done");
    assert_eq!(
        (done.kind, done.tag.as_deref()),
        (ReplyKind::Done, Some("watch"))
    );
    let done = c.reply().await.expect("done");
    assert_eq!(
        (done.kind, done.tag.as_deref()),
        (ReplyKind::Done, Some("c"))
    );
    // The connection goes on.
    let id = c.call(Command::new("/system/identity/print")).await;
    assert_eq!(id[0].get("name"), Some("EVR1-AGG1"));
    isp.shutdown().await;
}

#[tokio::test]
async fn routing_menus_differ_between_v6_and_v7() {
    let isp = common::demo_isp().await;
    let mut v7 = session(&isp, "lis1-edge1").await;
    let sessions = v7.call(Command::new("/routing/bgp/session/print")).await;
    assert_eq!(sessions.len(), 3, "iBGP to the RR, transit A, then !done");
    for s in &sessions[..2] {
        assert_eq!(
            keys(s),
            vec![
                ".id",
                "name",
                "remote.address",
                "remote.as",
                "local.address",
                "local.as",
                "established",
                "uptime",
                "prefix-count"
            ]
        );
    }
    let no_peer = v7.call(Command::new("/routing/bgp/peer/print")).await;
    assert_eq!(no_peer[0].get("message"), Some("no such command prefix"));
    let ospf = v7.call(Command::new("/routing/ospf/neighbor/print")).await;
    assert_eq!(ospf.len(), 3);
    assert_eq!(
        keys(&ospf[0]),
        vec![
            ".id",
            "instance",
            "area",
            "address",
            "router-id",
            "state",
            "state-changes",
            "adjacency"
        ]
    );
    assert_eq!(ospf[0].get("area"), Some("backbone"));
    assert_eq!(ospf[0].get("state"), Some("Full"));
    let neighbors = v7.call(Command::new("/ip/neighbor/print")).await;
    assert_eq!(neighbors.len(), 3);
    assert_eq!(
        keys(&neighbors[0]),
        vec![
            ".id",
            "interface",
            "address",
            "mac-address",
            "identity",
            "platform",
            "version",
            "board"
        ]
    );
    assert!(
        neighbors
            .iter()
            .any(|n| n.get("identity") == Some("LIS1-CORE1"))
    );

    let mut v6 = session(&isp, "cbr1-bng1").await;
    let peers = v6.call(Command::new("/routing/bgp/peer/print")).await;
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].get("state"), Some("established"));
    assert_eq!(peers[0].get("instance"), Some("default"));
    let no_session = v6.call(Command::new("/routing/bgp/session/print")).await;
    assert_eq!(no_session[0].kind, ReplyKind::Trap);
    let ospf = v6.call(Command::new("/routing/ospf/neighbor/print")).await;
    assert_eq!(ospf.len(), 3);
    assert!(ospf[0].get("interface").is_some() && ospf[0].get("priority").is_some());
    assert!(ospf[0].get("area").is_none());

    // Counts.
    let mut acc = session(&isp, "evr1-acc1").await;
    let leases = acc
        .call(Command::new("/ip/dhcp-server/lease/print").with_attr("count-only", ""))
        .await;
    let n: u64 = leases[0]
        .get("ret")
        .and_then(|v| v.parse().ok())
        .expect("ret");
    assert!((160..=180).contains(&n), "{n}");
    let mut bng = session(&isp, "lis1-bng1").await;
    let ppp = bng
        .call(Command::new("/ppp/active/print").with_attr("count-only", ""))
        .await;
    let n: u64 = ppp[0].get("ret").and_then(|v| v.parse().ok()).expect("ret");
    assert!((1600..=1900).contains(&n), "{n}");
    isp.shutdown().await;
}

#[tokio::test]
async fn empty_prints_answer_empty_from_7_18() {
    let mut t = Topology::demo();
    for r in &mut t.routers {
        if r.id == "evr1-acc2" {
            r.ros_version = "7.18.2".to_owned();
        }
    }
    let isp = VirtualIsp::start(t, LOCALHOST).await.expect("start");
    let mut new = session(&isp, "evr1-acc2").await;
    let r = new.call(Command::new("/routing/bgp/session/print")).await;
    let kinds: Vec<ReplyKind> = r.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, vec![ReplyKind::Empty, ReplyKind::Done]);
    // Counting is not empty: it returns a number.
    let r = new
        .call(Command::new("/ppp/active/print").with_attr("count-only", ""))
        .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get("ret"), Some("0"));
    let mut old = session(&isp, "evr1-acc1").await;
    let r = old.call(Command::new("/routing/bgp/session/print")).await;
    let kinds: Vec<ReplyKind> = r.iter().map(|x| x.kind).collect();
    assert_eq!(kinds, vec![ReplyKind::Done]);
    isp.shutdown().await;
}
