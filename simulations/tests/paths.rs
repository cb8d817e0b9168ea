//! Connections follow the live network: clients attached to a router reach another
//! router's API, echo service and relays only along a path that is up, over real
//! sockets from their own loopback source addresses.
//!
//! The demo's backbone is a ring lis1-core1 – cbr1-agg1 – cbr1-agg2 – evr1-agg1 –
//! lis1-core2 – lis1-core1; evr1-acc1 hangs off evr1-agg1 alone.

mod common;

use common::{Client, LOCALHOST, Read, connect_from, echoes, router, tls_connector};
use ispvm_proto::routeros::{Command, ReplyKind};
use ispvm_sim::{Fault, PathQuality, RunningRouter, Topology, VirtualIsp};
use rustls_pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::timeout;

/// Long enough for any answer on loopback, short enough to wait for silence.
const SILENCE: Duration = Duration::from_millis(700);
const ACCESS_LINK: (&str, &str) = ("evr1-agg1:sfp-sfpplus3", "evr1-acc1:sfp-sfpplus1");

fn cut_access() -> Fault {
    Fault::LinkCut {
        a: ACCESS_LINK.0.into(),
        b: ACCESS_LINK.1.into(),
    }
}

async fn isp() -> VirtualIsp {
    let mut t = Topology::demo();
    t.settings.reboot_s = 1.0;
    VirtualIsp::start(t, LOCALHOST).await.expect("start")
}

/// A logged-in session from `from` to `r`'s plain API.
async fn session_from(from: IpAddr, r: &RunningRouter) -> Client {
    let mut c = Client::over(connect_from(from, r.addr).await);
    c.login(r).await;
    c
}

/// Whether a new connection from `from` to `r` can log in: `true` on `!done`, `false`
/// when nothing at all comes back within [`SILENCE`] (the connection stays open).
async fn logs_in(from: IpAddr, r: &RunningRouter) -> bool {
    let mut c = Client::over(connect_from(from, r.addr).await);
    c.send(
        &Command::new("/login")
            .with_attr("name", &r.credentials.username)
            .with_attr("password", &r.credentials.password),
    )
    .await;
    match c.reply_within(SILENCE).await {
        None => false,
        Some(Read::Reply(reply)) => reply.kind == ReplyKind::Done,
        Some(Read::Closed) => panic!("closed instead of silent"),
    }
}

async fn identity_within(c: &mut Client, wait: Duration) -> Option<String> {
    match c.reply_within(wait).await? {
        Read::Reply(r) => r.get("name").map(str::to_owned),
        Read::Closed => panic!("closed instead of silent"),
    }
}

#[tokio::test]
async fn an_attached_client_reaches_the_api_only_along_a_path() {
    let isp = isp().await;
    let from = isp.attach("noc", "lis1-core1").expect("attach");
    assert!(from.is_loopback() && from != LOCALHOST);
    let acc = router(&isp, "evr1-acc1");
    let agg = router(&isp, "evr1-agg1");
    assert!(logs_in(from, acc).await, "path up");
    assert_eq!(
        isp.path("lis1-core1", "evr1-acc1").expect("routers"),
        Some(PathQuality {
            hops: 3,
            loss: 0.0,
            delay: Duration::ZERO
        })
    );
    let mut open = session_from(from, acc).await;

    // The access link is cut: silence, for new and open sessions alike.
    let cut = isp.apply(cut_access()).expect("cut");
    assert_eq!(isp.path("lis1-core1", "evr1-acc1").expect("routers"), None);
    assert!(!logs_in(from, acc).await, "a new connection hears nothing");
    assert!(
        logs_in(from, agg).await,
        "the other side of the link is still there"
    );
    assert!(
        logs_in(LOCALHOST, acc).await,
        "outside the model: always reachable"
    );
    open.send(&Command::new("/system/identity/print")).await;
    assert_eq!(identity_within(&mut open, SILENCE).await, None);
    // Back: the held command is answered, new connections log in.
    isp.clear(cut).expect("clear");
    assert_eq!(
        identity_within(&mut open, SILENCE).await.as_deref(),
        Some("EVR1-ACC1")
    );
    assert_eq!(
        open.reply().await.map(|r| r.kind),
        Some(ReplyKind::Done),
        "the rest of the held answer"
    );
    assert!(logs_in(from, acc).await);

    // The whole PoP is cut off; inside it, everything still reaches everything.
    let partition = isp
        .apply(Fault::SitePartition {
            site: "evr1".into(),
        })
        .expect("partition");
    assert!(!logs_in(from, acc).await);
    assert!(!logs_in(from, agg).await);
    let inside = isp.attach("evr-tech", "evr1-acc2").expect("attach");
    assert!(logs_in(inside, acc).await);
    isp.clear(partition).expect("clear");
    assert!(logs_in(from, agg).await);

    // A router on the way loses power: silence behind it, no reset.
    let down = isp
        .apply(Fault::RouterDown {
            router: "evr1-agg1".into(),
        })
        .expect("down");
    assert!(!logs_in(from, acc).await);
    assert!(
        !logs_in(from, agg).await,
        "attached peers see silence, not a reset"
    );
    isp.clear(down).expect("clear");
    assert!(logs_in(from, acc).await);
    isp.shutdown().await;
}

#[tokio::test]
async fn a_session_to_a_router_that_rebooted_meanwhile_is_closed() {
    let isp = isp().await;
    let from = isp.attach("noc", "lis1-core1").expect("attach");
    let acc = router(&isp, "evr1-acc1");
    let mut open = session_from(from, acc).await;
    let down = isp
        .apply(Fault::RouterDown {
            router: "evr1-acc1".into(),
        })
        .expect("down");
    open.send(&Command::new("/system/identity/print")).await;
    assert!(open.reply_within(SILENCE).await.is_none(), "silence");
    isp.clear(down).expect("clear");
    assert!(matches!(
        open.reply_within(Duration::from_secs(2)).await,
        Some(Read::Closed)
    ));
    isp.shutdown().await;
}

#[tokio::test]
async fn api_ssl_handshakes_wait_for_the_path() {
    let isp = isp().await;
    let from = isp.attach("noc", "lis1-core1").expect("attach");
    let acc = router(&isp, "evr1-acc1");
    let connector = tls_connector(&isp.tls_ca_pem());
    let name = || ServerName::try_from("127.0.0.1").expect("name");
    let cut = isp.apply(cut_access()).expect("cut");
    let tcp = connect_from(from, acc.tls_addr).await;
    let handshake = timeout(SILENCE, connector.connect(name(), tcp)).await;
    assert!(handshake.is_err(), "the handshake times out behind the cut");
    isp.clear(cut).expect("clear");
    let tcp = connect_from(from, acc.tls_addr).await;
    let tls = timeout(Duration::from_secs(5), connector.connect(name(), tcp))
        .await
        .expect("in time")
        .expect("handshake");
    let mut c = Client::over(tls);
    c.login(acc).await;
    isp.shutdown().await;
}

#[tokio::test]
async fn echo_answers_while_management_is_down_but_not_while_the_router_is_off() {
    let isp = isp().await;
    let from = isp.attach("noc", "lis1-core1").expect("attach");
    let acc = router(&isp, "evr1-acc1");
    let ping = || echoes(from, acc.echo_addr, 5, Duration::from_millis(5), SILENCE);
    assert_eq!(ping().await.lost(), 0);

    let mgmt = isp
        .apply(Fault::ManagementDown {
            router: "evr1-acc1".into(),
        })
        .expect("management");
    assert_eq!(ping().await.lost(), 0, "pings fine");
    // The API is dead: the router refuses at once.
    let mut c = Client::over(connect_from(from, acc.addr).await);
    assert!(matches!(c.reply_within(SILENCE).await, Some(Read::Closed)));
    isp.clear(mgmt).expect("clear");

    let cut = isp.apply(cut_access()).expect("cut");
    assert_eq!(ping().await.lost(), 5, "no path");
    let inside = isp.attach("evr-tech", "evr1-agg1").expect("attach");
    assert_eq!(
        echoes(
            inside,
            router(&isp, "evr1-agg1").echo_addr,
            3,
            Duration::ZERO,
            SILENCE
        )
        .await
        .lost(),
        0
    );
    isp.clear(cut).expect("clear");
    assert_eq!(ping().await.lost(), 0);

    isp.apply(Fault::Reboot {
        router: "evr1-acc1".into(),
    })
    .expect("reboot");
    assert_eq!(ping().await.lost(), 5, "off while rebooting");
    let outside = echoes(LOCALHOST, acc.echo_addr, 3, Duration::ZERO, SILENCE).await;
    assert_eq!(outside.lost(), 3, "not even from outside the model");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ping().await.lost(), 0, "back after reboot_s");
    isp.shutdown().await;
}

#[tokio::test]
async fn congestion_on_the_path_delays_and_drops_echoes() {
    let isp = isp().await;
    let from = isp.attach("noc", "lis1-core1").expect("attach");
    let target = router(&isp, "cbr1-agg1");
    let calm = echoes(
        from,
        target.echo_addr,
        50,
        Duration::from_millis(2),
        SILENCE,
    )
    .await;
    assert_eq!(calm.lost(), 0);
    assert!(calm.mean_ms() < 20.0, "{calm:?}");
    isp.apply(Fault::Congestion {
        a: "lis1-core1:sfp28-6".into(),
        b: "cbr1-agg1:sfp28-1".into(),
        utilisation: 1.0,
    })
    .expect("congestion");
    // 40 ms each way, 5 % loss each way (9.75 % for a round trip).
    let busy = echoes(
        from,
        target.echo_addr,
        300,
        Duration::from_millis(2),
        SILENCE,
    )
    .await;
    assert!(busy.mean_ms() >= 78.0, "{:.1} ms", busy.mean_ms());
    assert!(
        (5..=90).contains(&busy.lost()),
        "lost {} of 300",
        busy.lost()
    );
    // Another branch of the ring is not on that path.
    let other = router(&isp, "lis1-core2");
    let calm = echoes(from, other.echo_addr, 20, Duration::from_millis(2), SILENCE).await;
    assert_eq!(calm.lost(), 0);
    assert!(calm.mean_ms() < 20.0);
    isp.shutdown().await;
}

/// A real UDP echo service (not the simulator's) on 127.0.0.1.
async fn udp_echo_server() -> SocketAddr {
    let socket = UdpSocket::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], peer).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_udp_relay_carries_datagrams_only_along_a_path() {
    let isp = isp().await;
    let server = udp_echo_server().await;
    let relay = isp.relay_udp(server, "evr1-acc1").await.expect("relay");
    let from = isp.attach("agent-lis", "lis1-core1").expect("attach");
    let ping = || echoes(from, relay, 5, Duration::from_millis(5), SILENCE);
    assert_eq!(ping().await.lost(), 0);
    let cut = isp.apply(cut_access()).expect("cut");
    assert_eq!(ping().await.lost(), 5);
    assert_eq!(
        echoes(LOCALHOST, relay, 3, Duration::ZERO, SILENCE)
            .await
            .lost(),
        0,
        "outside the model"
    );
    isp.clear(cut).expect("clear");
    assert_eq!(ping().await.lost(), 0);
    assert!(isp.relay_udp(server, "nowhere").await.is_err());
    isp.shutdown().await;
}

#[tokio::test]
async fn a_tcp_relay_holds_bytes_while_the_path_is_down() {
    let isp = isp().await;
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let server = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let relay = isp.relay_tcp(server, "evr1-acc1").await.expect("relay");
    let from = isp.attach("agent-lis", "lis1-core1").expect("attach");
    let mut open = connect_from(from, relay).await;
    let mut buf = [0u8; 5];
    open.write_all(b"hello").await.expect("write");
    timeout(SILENCE, open.read_exact(&mut buf))
        .await
        .expect("echoed")
        .expect("read");
    assert_eq!(&buf, b"hello");

    let cut = isp.apply(cut_access()).expect("cut");
    open.write_all(b"again").await.expect("write");
    assert!(timeout(SILENCE, open.read_exact(&mut buf)).await.is_err());
    let mut fresh = connect_from(from, relay).await;
    fresh.write_all(b"fresh").await.expect("write");
    let mut got = [0u8; 5];
    assert!(timeout(SILENCE, fresh.read_exact(&mut got)).await.is_err());
    isp.clear(cut).expect("clear");
    timeout(Duration::from_secs(2), open.read_exact(&mut buf))
        .await
        .expect("held bytes arrive")
        .expect("read");
    assert_eq!(&buf, b"again");
    timeout(Duration::from_secs(2), fresh.read_exact(&mut got))
        .await
        .expect("the held connection goes through")
        .expect("read");
    assert_eq!(&got, b"fresh");
    isp.shutdown().await;
}
