//! The store test-suite, run against SQLite and PostgreSQL alike.

mod common;

use common::{T0, batch};
use ispvm_server::store::{Counts, Store, StoreError};

async fn tenant(store: &Store, id: &str) {
    assert!(store.ensure_tenant(id, id).await.expect("tenant"));
}

async fn stores_a_batch_and_reads_it_back(store: Store) {
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    let out = ts
        .ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("ingest");
    assert!(!out.duplicate_batch);
    assert_eq!((out.samples_stored, out.events_stored), (4, 1));
    assert_eq!(
        ts.counts().await.expect("counts"),
        Counts {
            samples: 4,
            events: 1,
            devices: 1,
            interfaces: 2,
            batches: 1
        }
    );
    let devices = ts.devices().await.expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(
        (
            devices[0].id.as_str(),
            devices[0].site_id.as_str(),
            devices[0].role.as_str()
        ),
        ("core1", "pop1", "core")
    );
    assert_eq!(devices[0].name, "CORE1");
    let sites = ts.sites().await.expect("sites");
    assert_eq!(sites.len(), 1);
    let latest = ts.latest_values().await.expect("latest");
    let cpu = latest
        .iter()
        .find(|l| l.metric == "device.cpu_pct")
        .expect("cpu");
    assert_eq!(
        (cpu.entity_kind.as_str(), cpu.entity_id.as_str(), cpu.value),
        ("device", "core1", 17.0)
    );
    let rx = latest
        .iter()
        .find(|l| l.metric == "interface.rx_bps")
        .expect("rx");
    assert_eq!(rx.entity_id, "core1/sfp-sfpplus1");
    let agents = ts.agents().await.expect("agents");
    assert_eq!(
        (agents[0].id.as_str(), agents[0].last_seq, agents[0].batches),
        ("agent-a", 1, 1)
    );
}
on_both_engines!(stores_a_batch, stores_a_batch_and_reads_it_back);

async fn replays_store_once(store: Store) {
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    let b = batch("agent-a", "acme", 1, "core1");
    ts.ingest(&b, T0).await.expect("first");
    let again = ts.ingest(&b, T0).await.expect("replay");
    assert!(again.duplicate_batch);
    assert_eq!(
        (
            again.samples_stored,
            again.samples_duplicate,
            again.events_duplicate
        ),
        (0, 4, 1)
    );
    // The same items under a new sequence number (a resend after a lost ack that was
    // re-cut) are recognised item by item.
    let mut resent = b.clone();
    resent.seq = 2;
    let out = ts.ingest(&resent, T0).await.expect("resend");
    assert!(!out.duplicate_batch);
    assert_eq!(
        (
            out.samples_stored,
            out.samples_duplicate,
            out.events_stored,
            out.events_duplicate
        ),
        (0, 4, 0, 1)
    );
    let c = ts.counts().await.expect("counts");
    assert_eq!((c.samples, c.events, c.batches), (4, 1, 2));
}
on_both_engines!(replays, replays_store_once);

async fn latest_value_never_goes_back_in_time(store: Store) {
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    let newer = batch("agent-a", "acme", 5, "core1");
    let mut older = batch("agent-a", "acme", 4, "core1");
    for s in &mut older.samples {
        s.value += 1.0;
    }
    ts.ingest(&newer, T0).await.expect("newer");
    ts.ingest(&older, T0).await.expect("older, late");
    let latest = ts.latest_values().await.expect("latest");
    let cpu = latest
        .iter()
        .find(|l| l.metric == "device.cpu_pct")
        .expect("cpu");
    assert_eq!((cpu.value, cpu.ts_ms), (17.0, T0 + 50_000));
    assert_eq!(ts.counts().await.expect("counts").samples, 8);
}
on_both_engines!(latest_value, latest_value_never_goes_back_in_time);

async fn sequence_gaps_are_counted(store: Store) {
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    ts.ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("1");
    let out = ts
        .ingest(&batch("agent-a", "acme", 5, "core1"), T0)
        .await
        .expect("5");
    assert_eq!(out.seq_gap, 3);
    let a = &ts.agents().await.expect("agents")[0];
    assert_eq!((a.last_seq, a.seq_gaps, a.batches), (5, 3, 2));
    // A late batch filling the gap does not lower the high-water mark.
    ts.ingest(&batch("agent-a", "acme", 3, "core1"), T0)
        .await
        .expect("3");
    assert_eq!(ts.agents().await.expect("agents")[0].last_seq, 5);
}
on_both_engines!(gaps, sequence_gaps_are_counted);

async fn unknown_tenant_stores_nothing(store: Store) {
    let err = store
        .tenant("ghost")
        .ingest(&batch("agent-a", "ghost", 1, "core1"), T0)
        .await;
    assert!(matches!(err, Err(StoreError::UnknownTenant(t)) if t == "ghost"));
    assert_eq!(
        store.tenant("ghost").counts().await.expect("counts"),
        Counts::default()
    );
}
on_both_engines!(unknown_tenant, unknown_tenant_stores_nothing);

async fn tenants_do_not_see_each_other(store: Store) {
    tenant(&store, "acme").await;
    tenant(&store, "globex").await;
    store
        .tenant("acme")
        .ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("acme");
    // Same device key and agent id in another tenant: separate rows.
    store
        .tenant("globex")
        .ingest(&batch("agent-a", "globex", 1, "core1"), T0)
        .await
        .expect("globex");
    store
        .tenant("globex")
        .ingest(&batch("agent-a", "globex", 2, "edge9"), T0)
        .await
        .expect("globex 2");
    let acme = store.tenant("acme");
    assert_eq!(acme.devices().await.expect("devices").len(), 1);
    assert_eq!(acme.counts().await.expect("counts").samples, 4);
    assert_eq!(
        store
            .tenant("globex")
            .devices()
            .await
            .expect("devices")
            .len(),
        2
    );
    assert!(
        store
            .tenant("nobody")
            .devices()
            .await
            .expect("devices")
            .is_empty()
    );
}
on_both_engines!(isolation, tenants_do_not_see_each_other);

async fn interfaces_of_unknown_devices_are_skipped(store: Store) {
    tenant(&store, "acme").await;
    let mut b = batch("agent-a", "acme", 1, "core1");
    b.inventory.devices.clear();
    let out = store.tenant("acme").ingest(&b, T0).await.expect("ingest");
    assert_eq!(out.samples_stored, 4);
    let c = store.tenant("acme").counts().await.expect("counts");
    assert_eq!((c.devices, c.interfaces), (0, 0));
}
on_both_engines!(orphan_interfaces, interfaces_of_unknown_devices_are_skipped);

#[tokio::test]
async fn bad_url_is_a_clear_error() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::BadUrl(_))
    ));
}

async fn concurrent_writers_all_succeed(store: Store) {
    tenant(&store, "acme").await;
    let mut tasks = Vec::new();
    for agent in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=10u64 {
                let b = batch(
                    &format!("agent-{agent}"),
                    "acme",
                    seq,
                    &format!("dev{agent}"),
                );
                store
                    .tenant("acme")
                    .ingest(&b, T0)
                    .await
                    .expect("concurrent ingest");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let c = store.tenant("acme").counts().await.expect("counts");
    assert_eq!((c.batches, c.samples, c.events), (40, 160, 40));
}
on_both_engines!(concurrent_writers, concurrent_writers_all_succeed);

async fn addresses_and_neighbours_are_kept_once(store: Store) {
    use ispvm_proto::{AddressInfo, NeighborInfo};
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    let mut b = batch("agent-a", "acme", 1, "core1");
    b.inventory.addresses.push(AddressInfo {
        device: "core1".into(),
        interface: "sfp-sfpplus1".into(),
        address: "10.255.0.1/30".into(),
    });
    b.inventory.neighbors.push(NeighborInfo {
        device: "core1".into(),
        interface: "sfp-sfpplus1".into(),
        identity: "CORE2".into(),
        address: "10.255.0.2".into(),
        mac: "48:A9:8A:00:00:02".into(),
        platform: "MikroTik".into(),
    });
    // An address of a device nobody reported is skipped, not an error.
    b.inventory.addresses.push(AddressInfo {
        device: "ghost".into(),
        interface: "ether1".into(),
        address: "192.0.2.1/24".into(),
    });
    ts.ingest(&b, T0).await.expect("ingest");
    let mut again = b.clone();
    again.seq = 2;
    ts.ingest(&again, T0 + 1_000).await.expect("re-report");
    let addresses = ts.addresses().await.expect("addresses");
    assert_eq!(addresses.len(), 1);
    assert_eq!(
        (addresses[0].address.as_str(), addresses[0].last_seen_ms),
        ("10.255.0.1/30", T0 + 1_000)
    );
    let neighbors = ts.neighbors().await.expect("neighbors");
    assert_eq!(neighbors.len(), 1);
    assert_eq!(neighbors[0].identity, "CORE2");
}
on_both_engines!(discovery, addresses_and_neighbours_are_kept_once);

async fn recent_events_newest_first_and_by_kind(store: Store) {
    tenant(&store, "acme").await;
    let ts = store.tenant("acme");
    ts.ingest(&batch("agent-a", "acme", 1, "core1"), T0)
        .await
        .expect("1");
    ts.ingest(&batch("agent-a", "acme", 2, "core2"), T0)
        .await
        .expect("2");
    let all = ts.recent_events(None, 10).await.expect("events");
    assert_eq!(all.len(), 2);
    assert!(all[0].ts_ms > all[1].ts_ms, "newest first");
    assert_eq!(
        ts.recent_events(Some("reboot"), 1)
            .await
            .expect("events")
            .len(),
        1
    );
    assert!(
        ts.recent_events(Some("link_down"), 10)
            .await
            .expect("events")
            .is_empty()
    );
    assert!(
        store
            .tenant("globex")
            .recent_events(None, 10)
            .await
            .expect("events")
            .is_empty()
    );
}
on_both_engines!(recent_events, recent_events_newest_first_and_by_kind);
