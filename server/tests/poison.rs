//! Batches that must not stall an agent, and numbers that must not be reused: the store
//! refusing a value is answered for good and names the item; a sequence number reused
//! for other content is refused, never taken for a replay; SQLite acknowledges only
//! what survives a power cut.

use ispvm_testkit as common;
use ispvm_testkit::on_both_engines;

use common::{T0, batch, pg_store, sqlite_store};
use ispvm_proto::{AckStatus, Limits, NeighborInfo, RejectCode};
use ispvm_server::ingest::Ingestor;
use ispvm_server::internal_events::ServerMetrics;
use ispvm_server::store::{Store, StoreError};
use ispvm_transport::PeerIdentity;

fn peer() -> PeerIdentity {
    PeerIdentity {
        common_name: "agent-a".into(),
        organization: Some("acme".into()),
        not_after: i64::MAX,
    }
}

fn ingestor(store: &Store) -> Ingestor {
    Ingestor::new(
        store.clone(),
        Limits::default(),
        Default::default(),
        ServerMetrics::new(),
    )
}

fn rejection(ack: &ispvm_proto::Ack) -> (RejectCode, String) {
    match &ack.status {
        AckStatus::Rejected { code, message, .. } => (*code, message.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// PostgreSQL refuses a NUL in text and a key over the btree limit. If such a value gets
/// past the checks (they run before the store), the store names the item, the error is
/// permanent, and ingest answers `unstorable`, which the agent does not retry.
#[tokio::test]
async fn postgres_refusals_are_permanent_and_name_the_item() {
    let (store, db) = pg_store().await;
    store.ensure_tenant("acme", "Acme").await.expect("tenant");

    let mut nul = batch("agent-a", "acme", 1, "odd");
    nul.inventory.devices[0].model = "CCR\u{0}2116".into();
    let err = store
        .tenant("acme")
        .ingest(&nul, T0)
        .await
        .expect_err("NUL refused");
    assert!(err.is_permanent(), "{err}");
    assert!(
        matches!(&err, StoreError::Item { item, .. } if item.contains("inventory.devices[0]")),
        "{err}"
    );

    let mut big = batch("agent-a", "acme", 2, "healthy");
    big.inventory.neighbors.push(NeighborInfo {
        device: "healthy".into(),
        interface: "ether1".into(),
        // Incompressible: PostgreSQL compresses index keys before it checks their size.
        identity: (0..128)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect(),
        address: String::new(),
        mac: String::new(),
        platform: String::new(),
    });
    let err = store
        .tenant("acme")
        .ingest(&big, T0)
        .await
        .expect_err("key over the btree limit refused");
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("inventory.neighbors[0]"), "{err}");

    let ack = ingestor(&store).handle(&peer(), big).await;
    let (code, message) = rejection(&ack);
    assert_eq!(code, RejectCode::Unstorable);
    assert!(!code.is_retryable());
    assert!(message.contains("inventory.neighbors[0]"), "{message}");
    // Nothing of the refused batches was kept, and a clean batch goes through after them.
    let ok = ingestor(&store)
        .handle(&peer(), batch("agent-a", "acme", 3, "healthy"))
        .await;
    assert!(matches!(ok.status, AckStatus::Accepted { .. }), "{ok:?}");
    let counts = store.tenant("acme").counts().await.expect("counts");
    assert_eq!((counts.devices, counts.batches), (1, 1));
    db.drop_db(store).await;
}

async fn reused_seq_is_refused_not_taken_for_a_replay(store: Store) {
    store.ensure_tenant("acme", "Acme").await.expect("tenant");
    let ing = ingestor(&store);
    let first = batch("agent-a", "acme", 7, "core1");
    let ack = ing.handle(&peer(), first.clone()).await;
    assert!(matches!(ack.status, AckStatus::Accepted { .. }), "{ack:?}");
    // The very same batch again: a replay, acknowledged as a duplicate.
    let ack = ing.handle(&peer(), first.clone()).await;
    assert!(
        matches!(
            ack.status,
            AckStatus::Accepted {
                duplicate_batch: true,
                ..
            }
        ),
        "{ack:?}"
    );
    // Other content under the same number: refused, and nothing of it stored.
    let mut reused = batch("agent-a", "acme", 7, "core2");
    reused.sent_at_ms = first.sent_at_ms + 1;
    let ack = ing.handle(&peer(), reused).await;
    let (code, message) = rejection(&ack);
    assert_eq!(code, RejectCode::SeqReused, "{message}");
    assert!(!code.is_retryable());
    let counts = store.tenant("acme").counts().await.expect("counts");
    assert_eq!((counts.devices, counts.batches), (1, 1));
    store.close().await;
}
on_both_engines!(seq_reuse, reused_seq_is_refused_not_taken_for_a_replay);

/// WAL with `synchronous=NORMAL` may lose the last commits on power loss; an
/// acknowledged batch must not be one of them.
#[tokio::test]
async fn sqlite_commits_are_durable_before_the_ack() {
    let (store, _dir) = sqlite_store().await;
    let Store::Sqlite(pool) = &store else {
        panic!("not SQLite")
    };
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .expect("pragma");
    assert_eq!(level, 2, "synchronous must be FULL (2)");
}

/// Text as routers and neighbours supply it: anything, including NUL and control
/// characters, non-ASCII, and kilobytes.
fn router_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        "[a-z0-9._-]{1,24}",
        any::<String>(),
        proptest::collection::vec(any::<char>(), 0..64).prop_map(|c| c.into_iter().collect()),
        (any::<char>(), 0usize..5_000).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
        // Incompressible and long: over PostgreSQL's index-key limit if it got through.
        (1usize..200).prop_map(|n| (0..n)
            .map(|i| format!("{i:x}{}", i * 7919 % 104_729))
            .collect()),
    ]
}

/// A batch with router text in every field that holds some.
fn any_batch() -> impl proptest::strategy::Strategy<Value = ispvm_proto::Batch> {
    use proptest::prelude::*;
    (
        proptest::collection::vec(router_text(), 16),
        proptest::collection::btree_map(router_text(), router_text(), 0..4),
    )
        .prop_map(|(t, attrs)| {
            let mut b = batch("agent-a", "acme", 1, &t[0]);
            let d = &mut b.inventory.devices[0];
            d.name = t[1].clone();
            d.site = t[2].clone();
            d.model = t[3].clone();
            d.os_version = t[4].clone();
            d.mgmt_addr = t[5].clone();
            b.inventory.interfaces[0].name = t[6].clone();
            b.inventory.interfaces[0].kind = t[7].clone();
            b.inventory.addresses.push(ispvm_proto::AddressInfo {
                device: t[0].clone(),
                interface: t[6].clone(),
                address: t[8].clone(),
            });
            b.inventory.neighbors.push(NeighborInfo {
                device: t[0].clone(),
                interface: t[6].clone(),
                identity: t[9].clone(),
                address: t[10].clone(),
                mac: t[11].clone(),
                platform: t[12].clone(),
            });
            b.events[0].message = t[13].clone();
            b.events[0].attrs = attrs;
            b.samples[3].entity = ispvm_proto::EntityKey::Interface {
                device: t[0].clone(),
                name: t[14].clone(),
            };
            b.samples.push(ispvm_proto::MetricSample {
                entity: ispvm_proto::EntityKey::ProbeTarget(t[15].clone()),
                metric: ispvm_proto::MetricName::PingRttMs,
                ts_ms: T0,
                value: 1.0,
            });
            b
        })
}

/// The property behind promise 1: whatever batch the codec accepts (the server's checks
/// run in `from_bincode`), PostgreSQL stores. A batch that passed the checks and then
/// failed in the store would be refused for good and cost all its items.
#[test]
fn every_batch_the_codec_accepts_stores_on_postgres() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicU64, Ordering};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (store, db) = rt.block_on(async {
        let (store, db) = pg_store().await;
        store.ensure_tenant("acme", "Acme").await.expect("tenant");
        (store, db)
    });
    let seq = AtomicU64::new(0);
    let accepted = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let limits = Limits::default();
    let result = runner.run(&(any_batch(), any::<bool>()), |(mut b, clean)| {
        b.seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
        // Half the cases as an agent sends them (cleaned first, as the agent does before
        // buffering), half raw: either way, what the checks accept must store.
        if clean {
            ispvm_proto::clean::clean_batch(&mut b, &limits);
        }
        let bytes = ispvm_proto::codec::to_bincode(&b).expect("encodes");
        let checked = ispvm_proto::codec::from_bincode::<ispvm_proto::Batch>(&bytes, &limits);
        let checked = match checked {
            Ok(c) => c,
            Err(e) => {
                prop_assert!(!clean, "a cleaned batch was refused by the checks: {e}");
                return Ok(());
            }
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let stored = rt.block_on(store.tenant("acme").ingest(&checked, T0));
        prop_assert!(
            stored.is_ok(),
            "accepted by the codec, refused by the store: {stored:?}"
        );
        Ok(())
    });
    let accepted = accepted.load(Ordering::Relaxed);
    println!("{accepted} of 256 generated batches passed the checks and were stored");
    rt.block_on(db.drop_db(store));
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        accepted >= 100,
        "too few accepted batches ({accepted}) to mean anything"
    );
}
