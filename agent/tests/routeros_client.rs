//! The agent's RouterOS client and collector against the simulator's routers over TCP.

use ispvm_agent::routeros::transport::TransportError;
use ispvm_agent::routeros::{ClientError, Collector, RouterOsClient, SessionConfig};
use ispvm_proto::routeros::Command;
use ispvm_proto::{DeviceRole, EntityKey, MetricName};
use ispvm_sim::{Topology, VirtualIsp};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

async fn isp() -> VirtualIsp {
    VirtualIsp::start(Topology::demo(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("virtual ISP")
}

fn session(isp: &VirtualIsp, id: &str) -> SessionConfig {
    let r = isp.router(id).expect("router");
    SessionConfig::new(
        r.addr,
        r.credentials.username.clone(),
        r.credentials.password.clone(),
    )
}

#[tokio::test]
async fn logs_in_prints_and_reports_traps() {
    let isp = isp().await;
    let client = RouterOsClient::connect(session(&isp, "lis1-core1"))
        .await
        .expect("login");
    let identity = client
        .print(&Command::new("/system/identity/print"))
        .await
        .expect("identity");
    assert_eq!(identity.len(), 1);
    assert!(identity[0].get("name").is_some_and(|n| !n.is_empty()));
    let itfs = client
        .print(&Command::new("/interface/print").with_proplist(["name", "running"]))
        .await
        .expect("interfaces");
    assert!(!itfs.is_empty());
    for i in &itfs {
        let keys: Vec<&str> = i.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["name", "running"]);
    }
    let err = client
        .print(&Command::new("/no/such/thing/print"))
        .await
        .expect_err("trap");
    assert!(matches!(err, ClientError::Trap { .. }), "{err}");
    assert!(!err.breaks_session());
    // The session is still usable after a trap.
    client
        .print(&Command::new("/system/resource/print"))
        .await
        .expect("resource");
    isp.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_a_clear_error() {
    let isp = isp().await;
    let mut s = session(&isp, "lis1-core1");
    s.password = "wrong".into();
    let err = RouterOsClient::connect(s).await.expect_err("refused");
    assert!(
        matches!(&err, ClientError::LoginRefused(m) if m.contains("invalid user name or password")),
        "{err}"
    );
    isp.shutdown().await;
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_within_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut s = SessionConfig::new(addr, "u".into(), "p".into());
    s.connect_timeout = Duration::from_secs(2);
    let err = RouterOsClient::connect(s).await.expect_err("closed port");
    assert!(
        matches!(
            err,
            ClientError::Transport(
                TransportError::Connect { .. } | TransportError::ConnectTimeout { .. }
            )
        ),
        "{err}"
    );
}

#[tokio::test]
async fn collector_turns_two_polls_into_canonical_metrics() {
    let isp = isp().await;
    // One v7 and one v6 router.
    for id in ["lis1-core1", "cbr1-bng1"] {
        let r = isp.router(id).expect("router");
        let client = RouterOsClient::connect(session(&isp, id))
            .await
            .expect("login");
        let mut collector = Collector::new(
            id.into(),
            r.spec.site.clone(),
            DeviceRole::Core,
            r.addr.to_string(),
        );
        let first = collector.poll(&client).await.expect("first poll");
        assert_eq!(
            first.inventory.devices.len(),
            1,
            "inventory comes with the first poll"
        );
        assert_eq!(first.inventory.devices[0].name, r.spec.identity);
        assert_eq!(first.inventory.interfaces.len(), r.spec.interfaces.len());
        let has = |out: &ispvm_agent::routeros::PollOutput, m: MetricName| {
            out.samples.iter().any(|s| s.metric == m)
        };
        for m in [
            MetricName::DeviceUp,
            MetricName::DeviceCpuPct,
            MetricName::DeviceMemUsedPct,
            MetricName::DeviceUptimeS,
            MetricName::InterfaceRunning,
        ] {
            assert!(has(&first, m), "{id}: no {m} in the first poll");
        }
        assert!(
            !has(&first, MetricName::InterfaceRxBps),
            "a rate needs two readings"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = collector.poll(&client).await.expect("second poll");
        assert!(
            second.inventory.is_empty(),
            "inventory is not resent while unchanged"
        );
        let rx: Vec<f64> = second
            .samples
            .iter()
            .filter(|s| {
                s.metric == MetricName::InterfaceRxBps
                    && matches!(s.entity, EntityKey::Interface { .. })
            })
            .map(|s| s.value)
            .collect();
        assert_eq!(
            rx.len(),
            r.spec.interfaces.len(),
            "{id}: one rx rate per interface"
        );
        assert!(rx.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(rx.iter().any(|v| *v > 0.0), "{id}: traffic flows somewhere");
    }
    isp.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_router_is_one_event_and_device_up_zero() {
    let isp = isp().await;
    let r = isp.router("evr1-acc1").expect("router");
    let mut collector = Collector::new(
        r.spec.id.clone(),
        r.spec.site.clone(),
        r.spec.role,
        r.addr.to_string(),
    );
    let err = ClientError::Closed("test".into());
    let first = collector.unreachable(&err);
    let second = collector.unreachable(&err);
    assert_eq!(first.events.len(), 1);
    assert!(
        second.events.is_empty(),
        "an outage is one event, not one per poll"
    );
    for out in [&first, &second] {
        assert!(
            out.samples
                .iter()
                .any(|s| s.metric == MetricName::DeviceUp && s.value == 0.0)
        );
    }
    let client = RouterOsClient::connect(session(&isp, "evr1-acc1"))
        .await
        .expect("login");
    let back = collector.poll(&client).await.expect("poll");
    assert!(
        back.events
            .iter()
            .any(|e| e.kind == ispvm_proto::EventKind::ApiRecovered)
    );
    isp.shutdown().await;
}

/// A router that logs the client in, starts answering a print, and then goes silent
/// with the connection still open: the reply must time out, not hang.
#[tokio::test]
async fn a_router_that_stops_mid_reply_times_out() {
    use ispvm_proto::routeros::{FrameLimits, Reply, ReplyKind, decode_sentence, encode_sentence};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let mut answered = 0;
        loop {
            while let Some((sentence, used)) =
                decode_sentence(&buf, &FrameLimits::default()).expect("frame")
            {
                buf.drain(..used);
                let cmd = Command::from_sentence(&sentence).expect("command");
                let mut out = Vec::new();
                if answered == 0 {
                    encode_sentence(
                        &Reply::new(ReplyKind::Done)
                            .with_tag(cmd.tag.clone())
                            .to_sentence(),
                        &mut out,
                    );
                } else {
                    // Half an answer, then silence.
                    encode_sentence(
                        &Reply::new(ReplyKind::Re)
                            .with_attr("name", "ether1")
                            .with_tag(cmd.tag.clone())
                            .to_sentence(),
                        &mut out,
                    );
                }
                sock.write_all(&out).await.expect("write");
                answered += 1;
            }
            let n = sock.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return answered;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    });
    let mut s = SessionConfig::new(addr, "u".into(), "p".into());
    s.command_timeout = Duration::from_millis(500);
    let client = RouterOsClient::connect(s).await.expect("login");
    let started = std::time::Instant::now();
    let err = client
        .print(&Command::new("/interface/print"))
        .await
        .expect_err("must time out");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(err.breaks_session());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(client);
    let answered = tokio::time::timeout(Duration::from_secs(5), router)
        .await
        .expect("router ends")
        .expect("router task");
    assert_eq!(answered, 2);
}

#[tokio::test]
async fn several_tagged_commands_share_one_session() {
    let isp = isp().await;
    let client = RouterOsClient::connect(session(&isp, "lis1-core1"))
        .await
        .expect("login");
    let identity = Command::new("/system/identity/print");
    let resource = Command::new("/system/resource/print");
    let interfaces = Command::new("/interface/print").with_proplist(["name"]);
    let (a, b, c) = tokio::join!(
        client.print(&identity),
        client.print(&resource),
        client.print(&interfaces)
    );
    assert!(a.expect("identity")[0].get("name").is_some());
    assert!(b.expect("resource")[0].get("uptime").is_some());
    assert!(
        c.expect("interfaces")
            .iter()
            .all(|r| r.get("name").is_some())
    );
    assert_eq!(client.count("/ppp/active").await.expect("count"), 0);
    isp.shutdown().await;
}

mod api_ssl {
    use super::*;
    use ispvm_agent::routeros::transport::fingerprint;
    use ispvm_agent::routeros::{TlsOptions, TlsTrust};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;

    fn ca_certs(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("CA PEM")
    }

    /// The certificate a router presents, read with an independent TLS handshake.
    async fn router_certificate(
        addr: std::net::SocketAddr,
        ca: &[CertificateDer<'static>],
    ) -> CertificateDer<'static> {
        let mut roots = rustls::RootCertStore::empty();
        for c in ca {
            roots.add(c.clone()).expect("root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("handshake");
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("certificate")
            .clone()
            .into_owned()
    }

    fn tls_session(isp: &VirtualIsp, id: &str, trust: TlsTrust) -> SessionConfig {
        let mut s = session(isp, id);
        s.addr = isp.router(id).expect("router").tls_addr;
        s.tls = Some(TlsOptions {
            server_name: "127.0.0.1".into(),
            trust,
        });
        s
    }

    #[tokio::test]
    async fn trusted_ca_and_pinned_certificate_connect_and_others_are_refused() {
        let other = isp().await;
        let isp = isp().await;
        let ca = ca_certs(&isp.tls_ca_pem());

        let client =
            RouterOsClient::connect(tls_session(&isp, "lis1-core1", TlsTrust::Ca(ca.clone())))
                .await
                .expect("API-SSL with the right CA");
        let identity = client
            .print(&Command::new("/system/identity/print"))
            .await
            .expect("identity");
        assert_eq!(
            identity[0].get("name"),
            Some(isp.router("lis1-core1").expect("r").spec.identity.as_str())
        );

        let wrong_ca = RouterOsClient::connect(tls_session(
            &isp,
            "lis1-core1",
            TlsTrust::Ca(ca_certs(&other.tls_ca_pem())),
        ))
        .await;
        assert!(
            matches!(
                wrong_ca,
                Err(ClientError::Transport(TransportError::Handshake { .. }))
            ),
            "{wrong_ca:?}"
        );

        let cert = router_certificate(isp.router("lis1-core1").expect("r").tls_addr, &ca).await;
        let pinned = RouterOsClient::connect(tls_session(
            &isp,
            "lis1-core1",
            TlsTrust::Pinned(fingerprint(&cert)),
        ))
        .await;
        assert!(pinned.is_ok(), "pinned certificate: {pinned:?}");
        // Another router's certificate is not the pinned one.
        let elsewhere = RouterOsClient::connect(tls_session(
            &isp,
            "lis1-core2",
            TlsTrust::Pinned(fingerprint(&cert)),
        ))
        .await;
        assert!(
            matches!(
                elsewhere,
                Err(ClientError::Transport(TransportError::Handshake { .. }))
            ),
            "{elsewhere:?}"
        );
        isp.shutdown().await;
        other.shutdown().await;
    }
}

#[tokio::test]
async fn the_pre_6_43_challenge_login_works_and_checks_the_password() {
    let isp = isp().await;
    let legacy = isp
        .routers()
        .iter()
        .find(|r| r.spec.ros_version.starts_with("6.4") && r.spec.ros_version.as_str() < "6.43")
        .expect("a router older than 6.43 in the demo ISP");
    let client = RouterOsClient::connect(session(&isp, &legacy.spec.id))
        .await
        .expect("MD5 login");
    client
        .print(&Command::new("/system/resource/print"))
        .await
        .expect("resource");
    let mut bad = session(&isp, &legacy.spec.id);
    bad.password = "nope".into();
    let err = RouterOsClient::connect(bad).await.expect_err("refused");
    assert!(matches!(err, ClientError::LoginRefused(_)), "{err}");
    isp.shutdown().await;
}

#[tokio::test]
async fn listen_pushes_interface_changes_until_cancelled() {
    let isp = isp().await;
    let link = isp
        .topology()
        .links
        .iter()
        .find(|l| l.a.starts_with("lis1-core1:"))
        .expect("a link of lis1-core1")
        .clone();
    let ifname = link.a.split_once(':').expect("endpoint").1.to_owned();
    let client = RouterOsClient::connect(session(&isp, "lis1-core1"))
        .await
        .expect("login");
    let mut listener = client
        .listen(&Command::new("/interface/listen").with_proplist(["name", "running"]))
        .await
        .expect("listen");
    // A command answered after the listen proves the router has taken it (commands on a
    // session are read in order), so the cut below happens while it listens.
    client
        .print(&Command::new("/system/identity/print"))
        .await
        .expect("identity");
    isp.apply(ispvm_sim::Fault::LinkCut {
        a: link.a.clone(),
        b: link.b.clone(),
    })
    .expect("cut");
    let pushed = tokio::time::timeout(Duration::from_secs(3), listener.next())
        .await
        .expect("a push within 3 s")
        .expect("still listening")
        .expect("an item");
    assert_eq!(
        (pushed.get("name"), pushed.get("running")),
        (Some(ifname.as_str()), Some("false"))
    );
    // The session serves other commands while the listen is open.
    client
        .print(&Command::new("/system/identity/print"))
        .await
        .expect("identity while listening");
    listener.cancel().await.expect("cancel");
    client
        .print(&Command::new("/system/identity/print"))
        .await
        .expect("identity after cancel");
    isp.shutdown().await;
}

#[tokio::test]
async fn routeros_7_18_empty_replies_end_cleanly() {
    let mut topology = Topology::demo();
    for r in &mut topology.routers {
        r.ros_version = "7.18.2".into();
    }
    let isp = VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("ISP");
    let client = RouterOsClient::connect(session(&isp, "lis1-rr1"))
        .await
        .expect("login");
    let none = client
        .print(&Command::new("/interface/print").with_query("name=no-such-interface"))
        .await
        .expect("empty print");
    assert!(none.is_empty());
    // The `!done` after `!empty` must not be taken for the next command's answer.
    let identity = client
        .print(&Command::new("/system/identity/print"))
        .await
        .expect("identity");
    assert_eq!(identity.len(), 1);
    isp.shutdown().await;
}

/// BGP comes from `/routing/bgp/session` on v7 and `/routing/bgp/peer` on v6; OSPF from
/// `/routing/ospf/neighbor` on both. A session cut by a fault is reported down with an
/// event once the hold time has passed.
#[tokio::test]
async fn routing_state_on_v7_and_v6_and_a_session_going_down() {
    let mut topology = Topology::demo();
    topology.timeline.clear();
    topology.settings.bgp_hold_time_s = 0.5;
    let isp = VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("ISP");
    let sessions =
        |out: &ispvm_agent::routeros::PollOutput, metric: MetricName| -> Vec<(String, f64)> {
            out.samples
                .iter()
                .filter(|s| s.metric == metric)
                .filter_map(|s| match &s.entity {
                    EntityKey::Peer { peer, .. } => Some((peer.clone(), s.value)),
                    _ => None,
                })
                .collect()
        };
    // lis1-edge1 (v7): iBGP to the route reflector and eBGP to transit A; OSPF to the cores.
    // cbr1-bng1 (v6): iBGP to the route reflector over /routing/bgp/peer.
    for (id, min_sessions) in [("lis1-edge1", 2), ("cbr1-bng1", 1)] {
        let r = isp.router(id).expect("router");
        let client = RouterOsClient::connect(session(&isp, id))
            .await
            .expect("login");
        let mut collector = Collector::new(
            id.into(),
            r.spec.site.clone(),
            r.spec.role,
            r.addr.to_string(),
        );
        let out = collector.poll(&client).await.expect("poll");
        let bgp = sessions(&out, MetricName::BgpSessionState);
        assert!(
            bgp.len() >= min_sessions,
            "{id} ({}): BGP sessions {bgp:?}",
            r.spec.ros_version
        );
        assert!(
            bgp.iter().all(|(_, up)| *up == 1.0),
            "{id}: all established at start: {bgp:?}"
        );
        let prefixes = sessions(&out, MetricName::BgpPrefixesIn);
        assert_eq!(prefixes.len(), bgp.len(), "{id}: prefixes per session");
    }
    let edge = isp.router("lis1-edge1").expect("edge");
    let client = RouterOsClient::connect(session(&isp, "lis1-edge1"))
        .await
        .expect("login");
    let mut collector = Collector::new(
        "lis1-edge1".into(),
        edge.spec.site.clone(),
        edge.spec.role,
        edge.addr.to_string(),
    );
    let baseline = collector.poll(&client).await.expect("baseline");
    assert!(
        !sessions(&baseline, MetricName::OspfNeighborState).is_empty(),
        "OSPF neighbours of the edge"
    );
    let transit = sessions(&baseline, MetricName::BgpPrefixesIn)
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a full-table session");
    assert!(
        transit.1 > 100_000.0,
        "a transit session carries a full table: {transit:?}"
    );
    isp.apply(ispvm_sim::Fault::BgpShut {
        router: "lis1-edge1".into(),
        peer: transit.0.clone(),
    })
    .expect("shut");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = collector.poll(&client).await.expect("poll");
    let state = sessions(&after, MetricName::BgpSessionState);
    assert!(state.contains(&(transit.0.clone(), 0.0)), "{state:?}");
    let event = after
        .events
        .iter()
        .find(|e| e.kind == ispvm_proto::EventKind::BgpStateChange)
        .expect("a BGP state change event");
    assert!(event.message.contains(&transit.0), "{}", event.message);
    isp.shutdown().await;
}

/// The daily tier hashes the configuration: a router whose configuration did not change
/// gives the same hash, so no `config_changed` event.
#[tokio::test]
async fn an_unchanged_configuration_raises_no_config_event() {
    let isp = isp().await;
    let r = isp.router("lis1-edge1").expect("router");
    let client = RouterOsClient::connect(session(&isp, "lis1-edge1"))
        .await
        .expect("login");
    let mut collector = Collector::new(
        r.spec.id.clone(),
        r.spec.site.clone(),
        r.spec.role,
        r.addr.to_string(),
    )
    .with_daily(1);
    for _ in 0..3 {
        let out = collector.poll(&client).await.expect("poll");
        assert!(
            !out.events
                .iter()
                .any(|e| e.kind == ispvm_proto::EventKind::ConfigChanged),
            "{:?}",
            out.events
        );
    }
    isp.shutdown().await;
}
