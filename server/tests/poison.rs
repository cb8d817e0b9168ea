//! Batches that must not stall an agent, and numbers that must not be reused: the store
//! refusing a value is answered for good and names the item; a sequence number reused
//! for other content is refused, never taken for a replay; SQLite acknowledges only
//! what survives a power cut.

mod common;

use common::{T0, batch, pg_store, sqlite_store};
use ispvm_cluster::PeerIdentity;
use ispvm_proto::{AckStatus, Limits, NeighborInfo, RejectCode};
use ispvm_server::ingest::Ingestor;
use ispvm_server::store::{Store, StoreError};
use ispvm_server::telemetry::ServerMetrics;

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
