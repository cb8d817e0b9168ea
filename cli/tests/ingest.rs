//! Ingest over QUIC and over HTTPS, both with mutual TLS: what an agent's batch must be
//! to be stored, and that every bad batch is refused with a clear answer and stores nothing.

use ispvm_testkit as common;

use common::{T0, batch};
use ispvm_agent::uplink::QuicUplink;
use ispvm_proto::codec::to_bincode;
use ispvm_proto::{Ack, AckStatus, Limits, RejectCode};
use ispvm_server::app::{RunningServer, start_with};
use ispvm_server::config::{HttpConfig, QuicConfig, ServerConfig};
use ispvm_server::pki::{CertKind, Pki};
use ispvm_server::store::Counts;
use ispvm_transport::TlsMaterial;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    server: RunningServer,
    pki: Pki,
    rogue: Pki,
    _dir: tempfile::TempDir,
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// The fixture with its server configuration changed by `adjust` first.
async fn fixture_with(adjust: impl FnOnce(&mut ServerConfig)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path().join("pki"));
    pki.init("test CA", 30).expect("CA");
    pki.issue(
        CertKind::Server,
        "server",
        None,
        &["localhost".into()],
        &[LOCAL],
        30,
    )
    .expect("server cert");
    pki.issue(CertKind::Agent, "agent-a", Some("acme"), &[], &[], 30)
        .expect("agent-a");
    pki.issue(CertKind::Agent, "agent-ghost", Some("ghost"), &[], &[], 30)
        .expect("agent-ghost");
    pki.issue(CertKind::Agent, "agent-b", Some("acme"), &[], &[], 30)
        .expect("agent-b");
    // Another deployment's CA issuing a certificate with the very same names.
    let rogue = Pki::new(dir.path().join("rogue"));
    rogue.init("rogue CA", 30).expect("rogue CA");
    rogue
        .issue(CertKind::Agent, "agent-a", Some("acme"), &[], &[], 30)
        .expect("rogue agent");

    let config = ServerConfig {
        data_dir: dir.path().to_owned(),
        http: HttpConfig {
            listen: SocketAddr::new(LOCAL, 0),
            ..Default::default()
        },
        quic: QuicConfig {
            listen: SocketAddr::new(LOCAL, 0),
            ..Default::default()
        },
        limits: Limits {
            max_bytes: 64 << 10,
            max_samples: 100,
            ..Limits::default()
        },
        https: ispvm_server::config::HttpsIngestConfig {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
        // Revocations apply within a fifth of a second instead of 10 s.
        crl_check_ms: 200,
        ..ServerConfig::default()
    };
    let mut config = config;
    adjust(&mut config);
    let store = ispvm_server::store::Store::connect(&config.database_url())
        .await
        .expect("store");
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    let tls = TlsMaterial::load_from_pki_dir(pki.dir(), "server").expect("server tls");
    let server = start_with(&config, store, tls).await.expect("server");
    Fixture {
        server,
        pki,
        rogue,
        _dir: dir,
    }
}

impl Fixture {
    fn uplink(&self, pki: &Pki, agent: &str) -> QuicUplink {
        let material = TlsMaterial::load(
            &self.pki.ca_cert_path(),
            &pki.paths(agent).cert,
            &pki.paths(agent).key,
        )
        .expect("agent tls");
        QuicUplink::new(
            self.server.quic_addr,
            "localhost".into(),
            &material,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .expect("uplink")
    }

    async fn counts(&self, tenant: &str) -> Counts {
        self.server
            .store
            .tenant(tenant)
            .counts()
            .await
            .expect("counts")
    }
}

fn rejection(ack: &Ack) -> (RejectCode, String) {
    match &ack.status {
        AckStatus::Rejected { code, message, .. } => (*code, message.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Given several addresses (one dead, one a DNS name), the uplink delivers through the
/// one that answers and stays with it.
#[tokio::test]
async fn the_uplink_uses_whichever_server_address_answers() {
    let f = fixture().await;
    let material = TlsMaterial::load(
        &f.pki.ca_cert_path(),
        &f.pki.paths("agent-a").cert,
        &f.pki.paths("agent-a").key,
    )
    .expect("agent tls");
    // Nothing listens on the first; the second is the server under a name.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let mut up = QuicUplink::to_any(
        vec![
            dead_addr.to_string(),
            format!("localhost:{}", f.server.quic_addr.port()),
        ],
        "localhost".into(),
        &material,
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
    .expect("uplink");
    for seq in 1..=2 {
        let ack = up
            .send(&batch("agent-a", "acme", seq, "core1"))
            .await
            .expect("ack");
        assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    }
    assert_eq!(f.counts("acme").await.batches, 2);
    up.close().await;
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_valid_batch_is_stored_once() {
    let f = fixture().await;
    let mut up = f.uplink(&f.pki, "agent-a");
    let b = batch("agent-a", "acme", 1, "core1");
    let ack = up.send(&b).await.expect("ack");
    assert_eq!(
        ack.status,
        AckStatus::Accepted {
            samples_stored: 4,
            samples_duplicate: 0,
            events_stored: 1,
            events_duplicate: 0,
            duplicate_batch: false
        }
    );
    let again = up.send(&b).await.expect("ack");
    assert!(matches!(
        again.status,
        AckStatus::Accepted {
            duplicate_batch: true,
            samples_stored: 0,
            ..
        }
    ));
    let c = f.counts("acme").await;
    assert_eq!((c.batches, c.samples, c.events), (1, 4, 1));
    f.server.shutdown().await;
}

#[tokio::test]
async fn an_agent_revoked_while_connected_is_cut_off_without_a_restart() {
    let f = fixture().await;
    let mut a = f.uplink(&f.pki, "agent-a");
    let mut b = f.uplink(&f.pki, "agent-b");
    for (up, agent) in [(&mut a, "agent-a"), (&mut b, "agent-b")] {
        let ack = up
            .send(&batch(agent, "acme", 1, "core1"))
            .await
            .expect("ack");
        assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{agent}");
    }
    let revoked_at = std::time::Instant::now();
    f.pki.revoke("agent-a").expect("revoke");
    // agent-a keeps trying over its open connection and then over new ones.
    let mut seq = 2;
    let cut_off = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if a.send(&batch("agent-a", "acme", seq, "core1"))
            .await
            .is_err()
        {
            break Some(revoked_at.elapsed());
        }
        seq += 1;
        if revoked_at.elapsed() > Duration::from_secs(10) {
            break None;
        }
    };
    println!("revoked agent cut off {cut_off:?} after the revocation");
    assert!(cut_off.is_some(), "the revoked agent still delivers");
    for n in 0..3 {
        assert!(
            a.send(&batch("agent-a", "acme", 100 + n, "core1"))
                .await
                .is_err(),
            "a revoked agent reconnected"
        );
    }
    // agent-b lost its connection too, and simply reconnects (one failed try at most).
    let mut delivered = false;
    for n in 0..3 {
        if let Ok(ack) = b.send(&batch("agent-b", "acme", 2 + n, "core1")).await {
            assert!(matches!(ack.status, AckStatus::Accepted { .. }));
            delivered = true;
            break;
        }
    }
    assert!(delivered, "agent-b could not deliver after the new list");
    // Over HTTPS the revoked agent is refused too; the other still delivers.
    let a_https = https::uplink(&f, &f.pki, "agent-a");
    assert!(
        a_https
            .send(&batch("agent-a", "acme", 200, "core1"))
            .await
            .is_err()
    );
    let b_https = https::uplink(&f, &f.pki, "agent-b");
    let ack = b_https
        .send(&batch("agent-b", "acme", 200, "core1"))
        .await
        .expect("agent-b over HTTPS");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }));
    f.server.shutdown().await;
}

#[tokio::test]
async fn malformed_oversized_and_out_of_bounds_batches_store_nothing() {
    let f = fixture().await;
    let mut up = f.uplink(&f.pki, "agent-a");

    let ack = up.send_bytes(b"this is not a batch").await.expect("ack");
    let (code, message) = rejection(&ack);
    assert_eq!(code, RejectCode::Malformed, "{message}");

    let mut truncated = to_bincode(&batch("agent-a", "acme", 1, "core1")).expect("encode");
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        rejection(&up.send_bytes(&truncated).await.expect("ack")).0,
        RejectCode::Malformed
    );

    // Over the 64 KiB byte limit: refused before it is decoded.
    let ack = up.send_bytes(&vec![0u8; 200 << 10]).await.expect("ack");
    let (code, message) = rejection(&ack);
    assert_eq!(code, RejectCode::TooLarge);
    assert!(message.contains("65536"), "{message}");

    // Within the byte limit but over the item limit (100 samples).
    let mut many = batch("agent-a", "acme", 2, "core1");
    let template = many.samples[0].clone();
    for i in 0..200 {
        let mut s = template.clone();
        s.ts_ms = T0 + i;
        many.samples.push(s);
    }
    let (code, message) = rejection(&up.send(&many).await.expect("ack"));
    assert_eq!(code, RejectCode::TooManyItems, "{message}");

    let mut nan = batch("agent-a", "acme", 3, "core1");
    nan.samples[1].value = f64::NAN;
    assert_eq!(
        rejection(&up.send(&nan).await.expect("ack")).0,
        RejectCode::Invalid
    );

    let mut future = batch("agent-a", "acme", 4, "core1");
    future.format_version = 42;
    assert_eq!(
        rejection(&up.send(&future).await.expect("ack")).0,
        RejectCode::UnsupportedVersion
    );

    assert_eq!(f.counts("acme").await, Counts::default());
    // The connection survived every rejection: a good batch still goes through.
    assert!(matches!(
        up.send(&batch("agent-a", "acme", 5, "core1"))
            .await
            .expect("ack")
            .status,
        AckStatus::Accepted { .. }
    ));
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_batch_claiming_another_identity_is_refused() {
    let f = fixture().await;
    let mut up = f.uplink(&f.pki, "agent-a");
    let (code, message) = rejection(
        &up.send(&batch("agent-b", "acme", 1, "core1"))
            .await
            .expect("ack"),
    );
    assert_eq!(code, RejectCode::Unauthorized);
    assert!(message.contains("agent-b"), "{message}");
    let (code, _) = rejection(
        &up.send(&batch("agent-a", "globex", 1, "core1"))
            .await
            .expect("ack"),
    );
    assert_eq!(code, RejectCode::Unauthorized);
    // A genuine certificate for a tenant the server does not know.
    let mut ghost = f.uplink(&f.pki, "agent-ghost");
    let (code, message) = rejection(
        &ghost
            .send(&batch("agent-ghost", "ghost", 1, "core1"))
            .await
            .expect("ack"),
    );
    assert_eq!(code, RejectCode::Unauthorized);
    assert!(message.contains("ghost"), "{message}");
    assert_eq!(f.counts("acme").await, Counts::default());
    assert_eq!(f.counts("ghost").await, Counts::default());
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_cannot_connect() {
    let f = fixture().await;
    // Trusts the right server CA, but presents a certificate of the rogue CA.
    let material = TlsMaterial::load(
        &f.pki.ca_cert_path(),
        &f.rogue.paths("agent-a").cert,
        &f.rogue.paths("agent-a").key,
    )
    .expect("rogue tls");
    let mut up = QuicUplink::new(
        f.server.quic_addr,
        "localhost".into(),
        &material,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .expect("uplink");
    let result = up.send(&batch("agent-a", "acme", 1, "core1")).await;
    assert!(
        result.is_err(),
        "a rogue certificate got an answer: {result:?}"
    );
    assert_eq!(f.counts("acme").await, Counts::default());
    assert!(
        f.server.metrics.encode().contains(
            "ispvm_server_ingest_connections_total{transport=\"quic\",outcome=\"refused\"}"
        )
    );
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_cannot_connect() {
    let f = fixture().await;
    let mut roots = rustls::RootCertStore::empty();
    for ca in TlsMaterial::load_from_pki_dir(f.pki.dir(), "agent-a")
        .expect("tls")
        .ca
    {
        roots.add(ca).expect("root");
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("tls13")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![ispvm_transport::quic::ALPN_INGEST.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic tls");
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(LOCAL, 0)).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let outcome = async {
        let conn = endpoint.connect(f.server.quic_addr, "localhost")?.await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&to_bincode(&batch("agent-a", "acme", 1, "core1"))?)
            .await?;
        send.finish()?;
        Ok::<Vec<u8>, Box<dyn std::error::Error>>(recv.read_to_end(1 << 16).await?)
    };
    let result = tokio::time::timeout(Duration::from_secs(10), outcome)
        .await
        .expect("no hang");
    assert!(result.is_err(), "an anonymous client got an answer");
    assert_eq!(f.counts("acme").await, Counts::default());
    f.server.shutdown().await;
}

/// Sets quota overrides on the fixture's tenant (before its first batch: the server
/// reads a tenant's settings at most every 10 s).
async fn set_quotas(f: &Fixture, overrides: ispvm_server::store::TenantOverrides) {
    f.server
        .store
        .tenant("acme")
        .set_overrides(&overrides)
        .await
        .expect("overrides");
}

#[tokio::test]
async fn a_tenant_over_its_sample_rate_is_told_to_wait() {
    let f = fixture().await;
    // 2 samples/s, a 2-second burst: the first batch of 4 samples uses it all.
    set_quotas(
        &f,
        ispvm_server::store::TenantOverrides {
            max_samples_per_s: Some(2),
            ..Default::default()
        },
    )
    .await;
    let mut up = f.uplink(&f.pki, "agent-a");
    let ack = up
        .send(&batch("agent-a", "acme", 1, "core1"))
        .await
        .expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    let ack = up
        .send(&batch("agent-a", "acme", 2, "core1"))
        .await
        .expect("ack");
    match &ack.status {
        AckStatus::Rejected {
            code: RejectCode::Overloaded,
            message,
            retry_after_ms: Some(ms),
        } => {
            assert!(message.contains("2 samples/s"), "{message}");
            assert!((1_000..=2_000).contains(ms), "{ms}");
        }
        other => panic!("expected overloaded with a retry time, got {other:?}"),
    }
    // The same over HTTPS: 429 with Retry-After, and nothing stored.
    let https = https::uplink(&f, &f.pki, "agent-a");
    let (status, retry_after, _) = https
        .post_raw(
            ispvm_proto::codec::to_json(&batch("agent-a", "acme", 3, "core1")).expect("json"),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("2"));
    let c = f.counts("acme").await;
    assert_eq!((c.batches, c.samples), (1, 4));
    f.server.shutdown().await;
}

/// An agent over its batch rate is answered before its bytes are read or decoded: even
/// garbage gets `overloaded`, not `malformed` (which would mean it was decoded).
#[tokio::test]
async fn an_agent_over_its_rate_is_answered_before_its_batch_is_read() {
    let f = fixture_with(|c| {
        c.rate = ispvm_server::ingest::rate::RateLimit {
            batches_per_s: 0.01,
            burst: 1,
        }
    })
    .await;
    let mut up = f.uplink(&f.pki, "agent-a");
    let ack = up
        .send(&batch("agent-a", "acme", 1, "core1"))
        .await
        .expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    let ack = up.send_bytes(&[0xff; 4096]).await.expect("ack");
    let (code, message) = rejection(&ack);
    assert_eq!(code, RejectCode::Overloaded, "{message}");
    // Over HTTPS as well: 429 before the body is looked at.
    let https = https::uplink(&f, &f.pki, "agent-a");
    let (status, retry_after, _) = https
        .post_raw(b"not json".to_vec(), None)
        .await
        .expect("answer");
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("60"), "the wait is clamped");
    // Another agent has a budget of its own.
    let mut other = f.uplink(&f.pki, "agent-b");
    let ack = other
        .send(&batch("agent-b", "acme", 1, "core2"))
        .await
        .expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    f.server.shutdown().await;
}

/// However far over its quota, an agent is never told to wait more than a minute.
#[tokio::test]
async fn a_retry_time_is_never_longer_than_a_minute() {
    let f = fixture().await;
    set_quotas(
        &f,
        ispvm_server::store::TenantOverrides {
            max_samples_per_s: Some(1),
            ..Default::default()
        },
    )
    .await;
    // 100 samples on a budget of 1/s: let through once (the budget was full), leaving
    // 98 s of debt.
    let mut big = batch("agent-a", "acme", 1, "core1");
    let first = big.samples[0].clone();
    for i in 1..=96 {
        let mut s = first.clone();
        s.ts_ms += i * 1_000;
        big.samples.push(s);
    }
    let mut up = f.uplink(&f.pki, "agent-a");
    let ack = up.send(&big).await.expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    let ack = up
        .send(&batch("agent-a", "acme", 2, "core1"))
        .await
        .expect("ack");
    match ack.status {
        AckStatus::Rejected {
            code: RejectCode::Overloaded,
            retry_after_ms: Some(ms),
            ..
        } => assert!((59_000..=60_000).contains(&ms), "{ms}"),
        other => panic!("expected overloaded, got {other:?}"),
    }
    f.server.shutdown().await;
}

/// One agent's certificate cannot open connection after connection: beyond the cap a
/// new one is closed, and the ones it has keep working.
#[tokio::test]
async fn an_agent_holds_at_most_its_cap_of_connections() {
    let f = fixture_with(|c| c.quic.max_connections_per_agent = 2).await;
    let mut ups = Vec::new();
    for seq in 1..=2 {
        let mut up = f.uplink(&f.pki, "agent-a");
        let ack = up
            .send(&batch("agent-a", "acme", seq, "core1"))
            .await
            .expect("ack");
        assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
        ups.push(up);
    }
    let mut third = f.uplink(&f.pki, "agent-a");
    let refused = third.send(&batch("agent-a", "acme", 3, "core1")).await;
    let err = refused.expect_err("the third connection is closed");
    assert!(err.to_string().contains("too many connections"), "{err}");
    // The open ones still deliver; another agent is not affected.
    let ack = ups[0]
        .send(&batch("agent-a", "acme", 4, "core1"))
        .await
        .expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    let mut other = f.uplink(&f.pki, "agent-b");
    let ack = other
        .send(&batch("agent-b", "acme", 1, "core2"))
        .await
        .expect("ack");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    // When one closes, there is room again.
    ups.pop().expect("one").close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ack = third
        .send(&batch("agent-a", "acme", 5, "core1"))
        .await
        .expect("room again");
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    f.server.shutdown().await;
}

#[tokio::test]
async fn device_and_agent_quotas_refuse_the_batch_and_store_nothing() {
    let f = fixture().await;
    set_quotas(
        &f,
        ispvm_server::store::TenantOverrides {
            max_devices: Some(1),
            max_agents: Some(1),
            ..Default::default()
        },
    )
    .await;
    let mut up = f.uplink(&f.pki, "agent-a");
    assert!(matches!(
        up.send(&batch("agent-a", "acme", 1, "core1"))
            .await
            .expect("ack")
            .status,
        AckStatus::Accepted { .. }
    ));
    let stored = f.counts("acme").await;

    // A second device.
    let (code, message) = rejection(
        &up.send(&batch("agent-a", "acme", 2, "core2"))
            .await
            .expect("ack"),
    );
    assert_eq!(code, RejectCode::QuotaExceeded, "{message}");
    assert!(message.contains("quota of 1 devices"), "{message}");
    assert!(!code.is_retryable());

    // A second agent, over HTTPS: 403 with the typed code in the body.
    let https = https::uplink(&f, &f.pki, "agent-b");
    let (status, _, body) = https
        .post_raw(
            ispvm_proto::codec::to_json(&batch("agent-b", "acme", 1, "core1")).expect("json"),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(status, 403);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("quota_exceeded") && body.contains("agents"),
        "{body}"
    );

    assert_eq!(f.counts("acme").await, stored);
    // The device within the quota keeps reporting.
    assert!(matches!(
        up.send(&batch("agent-a", "acme", 3, "core1"))
            .await
            .expect("ack")
            .status,
        AckStatus::Accepted { .. }
    ));
    f.server.shutdown().await;
}

mod https {
    use super::*;
    use ispvm_agent::uplink::HttpsUplink;

    pub(super) fn uplink(f: &Fixture, pki: &Pki, agent: &str) -> HttpsUplink {
        let material = TlsMaterial::load(
            &f.pki.ca_cert_path(),
            &pki.paths(agent).cert,
            &pki.paths(agent).key,
        )
        .expect("agent tls");
        let addr = f.server.https_addr.expect("HTTPS ingest on");
        HttpsUplink::new(addr, "localhost".into(), &material, Duration::from_secs(5))
            .expect("uplink")
    }

    #[tokio::test]
    async fn a_gzipped_json_batch_is_stored_once() {
        let f = fixture().await;
        let up = uplink(&f, &f.pki, "agent-a");
        let b = batch("agent-a", "acme", 1, "core1");
        let ack = up.send(&b).await.expect("ack");
        assert!(
            matches!(
                ack.status,
                AckStatus::Accepted {
                    samples_stored: 4,
                    duplicate_batch: false,
                    ..
                }
            ),
            "{ack:?}"
        );
        let again = up.send(&b).await.expect("ack");
        assert!(matches!(
            again.status,
            AckStatus::Accepted {
                duplicate_batch: true,
                ..
            }
        ));
        let c = f.counts("acme").await;
        assert_eq!((c.batches, c.samples, c.events), (1, 4, 1));
        f.server.shutdown().await;
    }

    #[tokio::test]
    async fn bad_bodies_get_clear_statuses_and_store_nothing() {
        let f = fixture().await;
        let up = uplink(&f, &f.pki, "agent-a");
        let (status, _, body) = up
            .post_raw(b"{not json".to_vec(), None)
            .await
            .expect("answer");
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("malformed"));

        let (status, _, _) = up
            .post_raw(vec![b' '; 200 << 10], None)
            .await
            .expect("answer");
        assert_eq!(status, 413, "over the byte limit");

        // A gzip bomb: small on the wire, far over the limit once inflated.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; 8 << 20]).expect("gzip");
        let bomb = gz.finish().expect("gzip");
        assert!(bomb.len() < 64 << 10);
        let (status, _, body) = up.post_raw(bomb, Some("gzip")).await.expect("answer");
        assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));

        let (status, _, _) = up
            .post_raw(b"{}".to_vec(), Some("br"))
            .await
            .expect("answer");
        assert_eq!(status, 415);

        let (code, _) = rejection(
            &up.send(&batch("agent-b", "acme", 1, "core1"))
                .await
                .expect("ack"),
        );
        assert_eq!(code, RejectCode::Unauthorized);
        let (status, _, _) = up
            .post_raw(
                ispvm_proto::codec::to_json(&batch("agent-b", "acme", 2, "core1")).expect("json"),
                None,
            )
            .await
            .expect("answer");
        assert_eq!(status, 403);
        assert_eq!(f.counts("acme").await, Counts::default());
        f.server.shutdown().await;
    }

    #[tokio::test]
    async fn a_client_without_the_deployment_certificate_is_refused() {
        let f = fixture().await;
        let rogue = uplink(&f, &f.rogue, "agent-a");
        assert!(
            rogue
                .send(&batch("agent-a", "acme", 1, "core1"))
                .await
                .is_err(),
            "another CA's certificate"
        );
        // No client certificate at all.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                TlsMaterial::load_from_pki_dir(f.pki.dir(), "agent-a")
                    .expect("tls")
                    .ca[0]
                    .clone(),
            )
            .expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(f.server.https_addr.expect("https"))
            .await
            .expect("tcp");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let outcome = async {
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await?;
            tokio::io::AsyncWriteExt::write_all(
                &mut tls,
                b"POST /v1/ingest HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}",
            )
            .await?;
            let mut answer = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut answer).await?;
            Ok::<Vec<u8>, std::io::Error>(answer)
        };
        let result = tokio::time::timeout(Duration::from_secs(10), outcome)
            .await
            .expect("no hang");
        assert!(
            result.map_or(true, |a| a.is_empty()),
            "an anonymous client got an answer"
        );
        assert_eq!(f.counts("acme").await, Counts::default());
        f.server.shutdown().await;
    }
}

/// End to end: a batch stored over QUIC reaches the tenant's alert engine, whose fast
/// schedule (10 s) fires the alert without anyone asking for an evaluation.
#[tokio::test]
async fn a_stored_batch_reaches_the_alert_engine_on_its_schedule() {
    let f = fixture().await;
    let rule = ispvm_actors::alert::Rule::from_json(
        r#"{"id":"device-down","name":"Device down","type":"reachability","for_s":0}"#,
    )
    .expect("rule");
    let doc = serde_json::to_value(&rule).expect("json");
    f.server
        .store
        .tenant("acme")
        .import_alert_rules(
            &ispvm_server::store::Actor::system(),
            &[(rule, doc)],
            ispvm_server::store::catalog::ImportMode::Replace,
        )
        .await
        .expect("rules");
    f.server.tree.reload("acme");
    let mut b = batch("agent-a", "acme", 1, "edge9");
    let now = ispvm_proto::time::now_ms();
    for s in &mut b.samples {
        s.ts_ms = now;
        if s.metric == ispvm_proto::MetricName::DeviceUp {
            s.value = 0.0;
        }
    }
    b.events.clear();
    let mut up = f.uplink(&f.pki, "agent-a");
    up.send(&b).await.expect("ack");
    let mut fired = None;
    for _ in 0..150 {
        let alerts = f
            .server
            .store
            .tenant("acme")
            .alerts()
            .await
            .expect("alerts");
        if let Some(a) = alerts.into_iter().find(|a| a.entity_id == "edge9") {
            fired = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = fired.expect("the fast schedule fired the alert within 15 s");
    assert_eq!(
        (a.phase.as_str(), a.level.map(|l| l.as_str())),
        ("firing", Some("critical"))
    );
    assert!(a.summary.contains("no ping probe"), "{}", a.summary);
    let metrics = f.server.metrics.encode();
    assert!(
        metrics.contains(
            "ispvm_server_alert_notifications_total{kind=\"firing\",level=\"critical\"} 1"
        ),
        "{metrics}"
    );
    f.server.shutdown().await;
}
