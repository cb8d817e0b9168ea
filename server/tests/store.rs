//! The store test-suite, run against SQLite and PostgreSQL alike.

use ispvm_testkit as common;
use ispvm_testkit::on_both_engines;

use common::{T0, batch};
use ispvm_server::store::{Counts, Store, StoreError};

async fn tenant(store: &Store, id: &str) {
    assert!(store.ensure_tenant(id, id).await.expect("tenant"));
}

/// `sslmode=require` works: the store speaks TLS to PostgreSQL (the Debian package
/// serves it with its snakeoil certificate), and the session is encrypted.
#[tokio::test]
async fn postgres_over_tls_with_sslmode_require() {
    let (plain, db) = common::pg_store().await;
    let base = common::pg_admin_url();
    let base = base
        .rsplit_once('/')
        .map(|(b, _)| b)
        .expect("URL with a database");
    let store = Store::connect(&format!("{base}/{}?sslmode=require", db.name))
        .await
        .expect("TLS connection");
    let Store::Postgres(pool) = &store else {
        panic!("a PostgreSQL store");
    };
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("pg_stat_ssl");
    assert!(ssl, "the session is not encrypted");
    tenant(&store, "acme").await;
    store.close().await;
    db.drop_db(plain).await;
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
        ts.recent_events(Some(ispvm_proto::EventKind::Reboot), 1)
            .await
            .expect("events")
            .len(),
        1
    );
    assert!(
        ts.recent_events(Some(ispvm_proto::EventKind::LinkDown), 10)
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

// ---------------------------------------------------------------------------------------
// The time-series store: partitions, retention, rollups, range reads, quotas.

mod timeseries {
    use ispvm_proto::{Batch, DeviceInfo, DeviceRole, EntityKey, MetricName, MetricSample};
    use ispvm_server::store::{
        Counts, DAY_MS, HOUR_MS, MINUTE_MS, QuotaKind, Resolution, Store, StoreError,
        TenantOverrides, TimeseriesPolicy,
    };
    use ispvm_testkit::T0;

    /// The first full hour after T0: rollup buckets line up with it.
    const H0: i64 = (T0 / HOUR_MS + 1) * HOUR_MS;

    async fn tenant(store: &Store, id: &str) {
        assert!(store.ensure_tenant(id, id).await.expect("tenant"));
    }

    fn cpu(device: &str, ts_ms: i64, value: f64) -> MetricSample {
        MetricSample {
            entity: EntityKey::Device(device.into()),
            metric: MetricName::DeviceCpuPct,
            ts_ms,
            value,
        }
    }

    fn samples_batch(agent: &str, tenant: &str, seq: u64, samples: Vec<MetricSample>) -> Batch {
        let mut b = Batch::new(agent, tenant, seq);
        b.samples = samples;
        b
    }

    fn with_devices(mut b: Batch, devices: &[&str]) -> Batch {
        for d in devices {
            b.inventory.devices.push(DeviceInfo {
                key: (*d).into(),
                name: d.to_uppercase(),
                site: "pop1".into(),
                role: DeviceRole::Access,
                mgmt_addr: "127.0.0.1:8728".into(),
                model: "hEX".into(),
                os_version: "7.16".into(),
            });
        }
        b
    }

    /// `percentile_cont(0.95)` of `values`, the definition both engines implement.
    fn p95(values: &[f64]) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let pos = 0.95 * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor(), pos.ceil());
        let a = v[lo as usize];
        if hi > lo {
            a + ((pos - lo) * (v[hi as usize] - a))
        } else {
            a
        }
    }

    fn dev(d: &str) -> EntityKey {
        EntityKey::Device(d.into())
    }

    async fn partitions_are_created_ahead_and_dropped_by_retention(store: Store) {
        tenant(&store, "acme").await;
        let policy = TimeseriesPolicy::default();
        let now = H0 + 12 * HOUR_MS;
        let report = store.maintain(&policy, now).await.expect("maintain");
        let names: Vec<String> = store
            .sample_partitions()
            .await
            .expect("partitions")
            .into_iter()
            .map(|p| p.name)
            .collect();
        if store.engine() == "postgres" {
            // Today and the three days ahead.
            assert_eq!(names.len(), 4, "{names:?}");
            assert_eq!(report.partitions_created, names);
            assert!(names.windows(2).all(|w| w[0] < w[1]));
        } else {
            assert!(names.is_empty());
        }

        // An agent replays samples from 20 days ago (within the 30-day raw retention):
        // their day gets a partition on demand.
        let old = now - 20 * DAY_MS;
        let ts = store.tenant("acme");
        ts.ingest(
            &samples_batch("agent-a", "acme", 1, vec![cpu("core1", old, 5.0)]),
            old + 1_000,
        )
        .await
        .expect("old batch");
        ts.ingest(
            &samples_batch("agent-a", "acme", 2, vec![cpu("core1", now, 7.0)]),
            now,
        )
        .await
        .expect("new batch");
        let with_old = store.sample_partitions().await.expect("partitions");
        if store.engine() == "postgres" {
            assert_eq!(with_old.len(), 5);
            assert_eq!(with_old[0].start_ms, old / DAY_MS * DAY_MS);
        }
        assert_eq!(ts.counts().await.expect("counts").samples, 2);

        // Eleven days later the old day is past retention: its partition goes, and with
        // it the sample; the recent one stays.
        let later = now + 11 * DAY_MS;
        let report = store.maintain(&policy, later).await.expect("maintain");
        assert_eq!(ts.counts().await.expect("counts").samples, 1);
        let points = ts
            .series_range(
                &dev("core1"),
                MetricName::DeviceCpuPct,
                old - DAY_MS,
                later,
                Resolution::Raw,
            )
            .await
            .expect("range");
        assert_eq!(points.points.len(), 1);
        assert_eq!(points.points[0].avg, 7.0);
        if store.engine() == "postgres" {
            assert_eq!(report.partitions_dropped.len(), 1, "{report:?}");
            assert_eq!(report.partitions_dropped[0], with_old[0].name);
            let left = store.sample_partitions().await.expect("partitions");
            assert!(left.iter().all(|p| p.start_ms >= later - 31 * DAY_MS));
            assert!(left.iter().any(|p| p.start_ms > later + 2 * DAY_MS));
        }
    }
    ispvm_testkit::on_both_engines!(
        partitions_and_retention,
        partitions_are_created_ahead_and_dropped_by_retention
    );

    async fn rows_of_a_day_without_partition_move_into_it(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        // Received far later than stamped: outside the on-demand window, the sample
        // lands in the default partition (PostgreSQL) ...
        let old = H0 - 60 * DAY_MS;
        ts.ingest(
            &samples_batch(
                "agent-a",
                "acme",
                1,
                vec![cpu("core1", old, 1.0), cpu("core1", old + 1, 2.0)],
            ),
            H0,
        )
        .await
        .expect("ingest");
        let before = store.sample_partitions().await.expect("partitions");
        assert!(before.iter().all(|p| p.start_ms != old / DAY_MS * DAY_MS));
        // ... and creating that day's partition moves it there, keeping it unique.
        store.ensure_partitions(old, old).await.expect("ensure");
        if store.engine() == "postgres" {
            let after = store.sample_partitions().await.expect("partitions");
            assert!(after.iter().any(|p| p.start_ms == old / DAY_MS * DAY_MS));
        }
        let again = ts
            .ingest(
                &samples_batch("agent-a", "acme", 2, vec![cpu("core1", old, 1.0)]),
                H0,
            )
            .await
            .expect("replay");
        assert_eq!((again.samples_stored, again.samples_duplicate), (0, 1));
        assert_eq!(ts.counts().await.expect("counts").samples, 2);
    }
    ispvm_testkit::on_both_engines!(
        default_partition,
        rows_of_a_day_without_partition_move_into_it
    );

    async fn per_tenant_retention_deletes_only_that_tenants_rows(store: Store) {
        tenant(&store, "acme").await;
        tenant(&store, "globex").await;
        store
            .tenant("acme")
            .set_overrides(&TenantOverrides {
                raw_retention_days: Some(2),
                minute_retention_days: Some(3),
                ..TenantOverrides::default()
            })
            .await
            .expect("overrides");
        let policy = TimeseriesPolicy::default();
        let now = H0 + 12 * HOUR_MS;
        let old = now - 5 * DAY_MS;
        for t in ["acme", "globex"] {
            let ts = store.tenant(t);
            ts.ingest(
                &samples_batch(
                    "agent-a",
                    t,
                    1,
                    vec![cpu("core1", old, 1.0), cpu("core1", old + 60_000, 2.0)],
                ),
                old + 70_000,
            )
            .await
            .expect("old");
            ts.ingest(
                &samples_batch("agent-a", t, 2, vec![cpu("core1", now, 3.0)]),
                now,
            )
            .await
            .expect("new");
            // Roll the old minutes up while they exist.
            ts.roll_up(old + 10 * MINUTE_MS, &policy)
                .await
                .expect("rollup");
        }
        store.maintain(&policy, now).await.expect("maintain");

        let acme = store.tenant("acme");
        let globex = store.tenant("globex");
        assert_eq!(acme.counts().await.expect("counts").samples, 1);
        assert_eq!(globex.counts().await.expect("counts").samples, 3);
        let minutes = |t: &'static str| {
            let store = store.clone();
            async move {
                store
                    .tenant(t)
                    .series_range(
                        &dev("core1"),
                        MetricName::DeviceCpuPct,
                        old - DAY_MS,
                        old + DAY_MS,
                        Resolution::Minute,
                    )
                    .await
                    .expect("range")
                    .points
                    .len()
            }
        };
        assert_eq!(minutes("acme").await, 0, "acme keeps minutes for 3 days");
        assert_eq!(minutes("globex").await, 2, "globex keeps its 90 days");
        // The old batch claims went with acme's raw samples: only the recent one is left.
        assert_eq!(acme.counts().await.expect("counts").batches, 1);
        assert_eq!(globex.counts().await.expect("counts").batches, 2);
    }
    ispvm_testkit::on_both_engines!(
        per_tenant_retention,
        per_tenant_retention_deletes_only_that_tenants_rows
    );

    /// A tenant at its series quota: samples of new series are dropped and counted, the
    /// rest of the batch (known series, events, inventory) is stored; the quota is per
    /// tenant.
    async fn the_series_quota_costs_only_the_samples_of_new_series(store: Store) {
        tenant(&store, "acme").await;
        tenant(&store, "globex").await;
        store
            .tenant("acme")
            .set_overrides(&TenantOverrides {
                max_series: Some(2),
                ..TenantOverrides::default()
            })
            .await
            .expect("overrides");
        let acme = store.tenant("acme");
        let first = acme
            .ingest(
                &samples_batch(
                    "agent-a",
                    "acme",
                    1,
                    vec![cpu("r1", T0, 1.0), cpu("r2", T0, 2.0)],
                ),
                T0,
            )
            .await
            .expect("first");
        assert_eq!((first.samples_stored, first.samples_over_quota), (2, 0));
        let mut b = samples_batch(
            "agent-a",
            "acme",
            2,
            vec![
                cpu("r1", T0 + 10_000, 3.0),
                cpu("r3", T0 + 10_000, 4.0),
                cpu("r3", T0 + 20_000, 5.0),
            ],
        );
        b = with_devices(b, &["r3"]);
        let second = acme.ingest(&b, T0 + 20_000).await.expect("second");
        assert_eq!((second.samples_stored, second.samples_over_quota), (1, 2));
        let c = acme.counts().await.expect("counts");
        assert_eq!(
            (c.samples, c.devices),
            (3, 1),
            "known series and inventory stored"
        );
        // Another tenant is not affected.
        let g = store
            .tenant("globex")
            .ingest(
                &samples_batch(
                    "agent-a",
                    "globex",
                    1,
                    vec![cpu("r1", T0, 1.0), cpu("r2", T0, 2.0), cpu("r3", T0, 3.0)],
                ),
                T0,
            )
            .await
            .expect("globex");
        assert_eq!((g.samples_stored, g.samples_over_quota), (3, 0));
    }
    ispvm_testkit::on_both_engines!(
        series_quota,
        the_series_quota_costs_only_the_samples_of_new_series
    );

    /// Events, audit entries, discovery rows and silent series are deleted past the
    /// tenant's retention, like samples.
    async fn retention_reaches_everything_that_grows(store: Store) {
        tenant(&store, "acme").await;
        let acme = store.tenant("acme");
        acme.set_overrides(&TenantOverrides {
            raw_retention_days: Some(1),
            minute_retention_days: Some(1),
            hour_retention_days: Some(2),
            event_retention_days: Some(3),
            audit_retention_days: Some(4),
            discovery_retention_days: Some(5),
            ..TenantOverrides::default()
        })
        .await
        .expect("overrides");
        let now = ispvm_proto::time::now_ms();
        let mut b = ispvm_testkit::batch("agent-a", "acme", 1, "core1");
        for s in &mut b.samples {
            s.ts_ms = now;
        }
        for e in &mut b.events {
            e.ts_ms = now;
        }
        b.inventory.addresses.push(ispvm_proto::AddressInfo {
            device: "core1".into(),
            interface: "ether1".into(),
            address: "10.0.0.1/30".into(),
        });
        b.inventory.neighbors.push(ispvm_proto::NeighborInfo {
            device: "core1".into(),
            interface: "ether1".into(),
            identity: "cust-cpe".into(),
            mac: "00:11:22:33:44:55".into(),
            address: "10.0.0.2".into(),
            platform: "MikroTik".into(),
        });
        acme.ingest(&b, now).await.expect("ingest");
        acme.create_site(
            &ispvm_server::store::Actor::system(),
            "lis",
            &ispvm_server::store::catalog::SiteSpec {
                name: "Lisbon".into(),
                lat: None,
                lon: None,
            },
        )
        .await
        .expect("site (audited)");
        let policy = TimeseriesPolicy::default();
        let at = |days: i64| now + days * DAY_MS + HOUR_MS;
        let r = store
            .maintain(&policy, at(1))
            .await
            .expect("maintain")
            .retention;
        assert_eq!(
            (r.events, r.audit_entries, r.discovery_rows, r.series),
            (0, 0, 0, 0)
        );
        let r = store
            .maintain(&policy, at(4))
            .await
            .expect("maintain")
            .retention;
        assert_eq!(r.series, 4, "silent for longer than every retention");
        assert!(r.events >= 1, "{r:?}");
        assert_eq!((r.audit_entries, r.discovery_rows), (0, 0), "{r:?}");
        let r = store
            .maintain(&policy, at(5))
            .await
            .expect("maintain")
            .retention;
        assert!(r.audit_entries >= 1, "{r:?}");
        assert_eq!(r.discovery_rows, 0, "{r:?}");
        let r = store
            .maintain(&policy, at(6))
            .await
            .expect("maintain")
            .retention;
        assert_eq!(r.discovery_rows, 2, "{r:?}");
        assert_eq!(acme.counts().await.expect("counts").events, 0);
        // A series that comes back is a new series, and its samples are stored.
        let again = acme
            .ingest(
                &samples_batch("agent-a", "acme", 2, vec![cpu("core1", at(6), 5.0)]),
                at(6),
            )
            .await
            .expect("again");
        assert_eq!(again.samples_stored, 1);
    }
    ispvm_testkit::on_both_engines!(
        retention_of_everything,
        retention_reaches_everything_that_grows
    );

    async fn rollups_are_exact_and_take_late_samples(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        let policy = TimeseriesPolicy::default();
        // Minute 0: 20 samples every 3 s with uneven values; minute 1: 3 samples.
        let m0: Vec<f64> = (0..20)
            .map(|i| f64::from((i * 37) % 23) + 0.25 * f64::from(i))
            .collect();
        let m1 = [10.0, 30.0, 20.0];
        let mut samples: Vec<MetricSample> = m0
            .iter()
            .enumerate()
            .map(|(i, v)| cpu("core1", H0 + i as i64 * 3_000, *v))
            .collect();
        samples.extend(
            m1.iter()
                .enumerate()
                .map(|(i, v)| cpu("core1", H0 + MINUTE_MS + i as i64 * 20_000, *v)),
        );
        ts.ingest(
            &samples_batch("agent-a", "acme", 1, samples),
            H0 + 2 * MINUTE_MS,
        )
        .await
        .expect("ingest");

        let report = ts
            .roll_up(H0 + 5 * MINUTE_MS, &policy)
            .await
            .expect("rollup");
        assert_eq!(report.minute_buckets, 2);
        assert_eq!(report.hour_buckets, 0, "hour 0 has not ended");
        let again = ts
            .roll_up(H0 + 5 * MINUTE_MS, &policy)
            .await
            .expect("rollup again");
        assert_eq!(again.minute_buckets, 0, "nothing new");

        let read = |from: i64, to: i64, r: Resolution| {
            let store = store.clone();
            async move {
                store
                    .tenant("acme")
                    .series_range(&dev("core1"), MetricName::DeviceCpuPct, from, to, r)
                    .await
                    .expect("range")
            }
        };
        let minutes = read(H0, H0 + HOUR_MS, Resolution::Minute).await;
        assert_eq!(minutes.points.len(), 2);
        let b0 = minutes.points[0];
        let avg0 = m0.iter().sum::<f64>() / 20.0;
        assert_eq!((b0.ts_ms, b0.count), (H0, 20));
        assert!((b0.avg - avg0).abs() < 1e-9, "{} vs {avg0}", b0.avg);
        assert_eq!(b0.min, m0.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(b0.max, m0.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        assert_eq!(b0.p95, p95(&m0));
        let b1 = minutes.points[1];
        assert_eq!((b1.count, b1.min, b1.max, b1.avg), (3, 10.0, 30.0, 20.0));
        assert_eq!(b1.p95, p95(&m1));

        // A sample within the lateness window: picked up by the next regular run.
        ts.ingest(
            &samples_batch(
                "agent-a",
                "acme",
                2,
                vec![cpu("core1", H0 + 4 * MINUTE_MS + 30_000, 99.0)],
            ),
            H0 + 5 * MINUTE_MS + 10_000,
        )
        .await
        .expect("slightly late");
        ts.roll_up(H0 + 6 * MINUTE_MS, &policy)
            .await
            .expect("rollup");
        let minutes = read(H0, H0 + HOUR_MS, Resolution::Minute).await;
        assert_eq!(
            minutes.points.len(),
            2,
            "minute 4 ended less than the lateness ago"
        );
        ts.roll_up(H0 + 7 * MINUTE_MS, &policy)
            .await
            .expect("rollup");
        let minutes = read(H0, H0 + HOUR_MS, Resolution::Minute).await;
        assert_eq!(minutes.points.len(), 3);
        assert_eq!(
            (minutes.points[2].ts_ms, minutes.points[2].max),
            (H0 + 4 * MINUTE_MS, 99.0)
        );

        // Hours later the hour is rolled up ...
        let r = ts.roll_up(H0 + 3 * HOUR_MS, &policy).await.expect("rollup");
        assert_eq!(r.hour_buckets, 1);
        // ... then an agent replays a sample into minute 0: far too late for the
        // regular window, so ingest marks the hour and the next run recomputes it.
        let late = ts
            .ingest(
                &samples_batch("agent-a", "acme", 3, vec![cpu("core1", H0 + 59_000, -4.0)]),
                H0 + 3 * HOUR_MS + 1_000,
            )
            .await
            .expect("replay");
        assert_eq!(late.samples_stored, 1);
        let r = ts
            .roll_up(H0 + 3 * HOUR_MS + MINUTE_MS, &policy)
            .await
            .expect("rollup");
        assert_eq!(r.late_marks, 1);
        let minutes = read(H0, H0 + MINUTE_MS, Resolution::Minute).await;
        let mut m0_late = m0.clone();
        m0_late.push(-4.0);
        assert_eq!((minutes.points[0].count, minutes.points[0].min), (21, -4.0));
        assert_eq!(minutes.points[0].p95, p95(&m0_late));
        let hours = read(H0, H0 + HOUR_MS, Resolution::Hour).await;
        assert_eq!(hours.points.len(), 1);
        let mut all = m0_late.clone();
        all.extend(m1);
        all.push(99.0);
        let h = hours.points[0];
        assert_eq!((h.ts_ms, h.count, h.min, h.max), (H0, 25, -4.0, 99.0));
        assert!((h.avg - all.iter().sum::<f64>() / 25.0).abs() < 1e-9);
        // An hour's p95 is the p95 of its minute averages, read back from the minutes.
        let averages: Vec<f64> = read(H0, H0 + HOUR_MS, Resolution::Minute)
            .await
            .points
            .iter()
            .map(|m| m.avg)
            .collect();
        assert_eq!(averages.len(), 3);
        assert_eq!(h.p95, p95(&averages));
        // The mark was handled once.
        assert_eq!(
            ts.roll_up(H0 + 3 * HOUR_MS + 2 * MINUTE_MS, &policy)
                .await
                .expect("rollup")
                .late_marks,
            0
        );
    }
    ispvm_testkit::on_both_engines!(rollups, rollups_are_exact_and_take_late_samples);

    async fn series_range_picks_the_resolution(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        let policy = TimeseriesPolicy::default();
        // Three hours of one sample a minute.
        let samples = (0..180)
            .map(|i| cpu("core1", H0 + i * MINUTE_MS, i as f64))
            .collect();
        ts.ingest(
            &samples_batch("agent-a", "acme", 1, samples),
            H0 + 3 * HOUR_MS,
        )
        .await
        .expect("ingest");
        for step in 1..=3 {
            ts.roll_up(H0 + step * 6 * HOUR_MS, &policy)
                .await
                .expect("rollup");
        }
        let core1 = dev("core1");
        let range = |from: i64, to: i64, r: Resolution| {
            ts.series_range(&core1, MetricName::DeviceCpuPct, from, to, r)
        };
        let raw = range(H0, H0 + HOUR_MS, Resolution::Auto)
            .await
            .expect("raw");
        assert_eq!((raw.resolution, raw.points.len()), (Resolution::Raw, 60));
        let minutes = range(H0, H0 + DAY_MS, Resolution::Auto)
            .await
            .expect("minutes");
        assert_eq!(
            (minutes.resolution, minutes.points.len()),
            (Resolution::Minute, 180)
        );
        let hours = range(H0 - 10 * DAY_MS, H0 + 10 * DAY_MS, Resolution::Auto)
            .await
            .expect("hours");
        assert_eq!(
            (hours.resolution, hours.points.len()),
            (Resolution::Hour, 3)
        );
        assert_eq!(
            (
                hours.points[1].ts_ms,
                hours.points[1].count,
                hours.points[1].min,
                hours.points[1].max
            ),
            (H0 + HOUR_MS, 60, 60.0, 119.0)
        );
        // An explicit resolution is honoured whatever the span; an empty range reads empty.
        let explicit = range(H0, H0 + 10 * DAY_MS, Resolution::Raw)
            .await
            .expect("raw");
        assert_eq!(explicit.points.len(), 180);
        assert!(
            range(H0, H0, Resolution::Raw)
                .await
                .expect("empty")
                .points
                .is_empty()
        );
        // Half-open: `to` excluded.
        assert_eq!(
            range(H0, H0 + MINUTE_MS, Resolution::Raw)
                .await
                .expect("one")
                .points
                .len(),
            1
        );
    }
    ispvm_testkit::on_both_engines!(series_range, series_range_picks_the_resolution);

    async fn another_tenant_reads_nothing(store: Store) {
        tenant(&store, "acme").await;
        tenant(&store, "globex").await;
        let policy = TimeseriesPolicy::default();
        store
            .tenant("acme")
            .ingest(
                &samples_batch(
                    "agent-a",
                    "acme",
                    1,
                    vec![cpu("core1", H0, 1.0), cpu("core1", H0 + 1_000, 2.0)],
                ),
                H0 + 2_000,
            )
            .await
            .expect("ingest");
        store
            .tenant("acme")
            .roll_up(H0 + 2 * HOUR_MS, &policy)
            .await
            .expect("rollup");
        store
            .tenant("globex")
            .roll_up(H0 + 2 * HOUR_MS, &policy)
            .await
            .expect("rollup");
        for r in [Resolution::Raw, Resolution::Minute, Resolution::Hour] {
            let mine = store
                .tenant("acme")
                .series_range(&dev("core1"), MetricName::DeviceCpuPct, H0, H0 + HOUR_MS, r)
                .await
                .expect("acme");
            assert!(!mine.points.is_empty(), "{r:?}");
            let theirs = store
                .tenant("globex")
                .series_range(&dev("core1"), MetricName::DeviceCpuPct, H0, H0 + HOUR_MS, r)
                .await
                .expect("globex");
            assert!(theirs.points.is_empty(), "{r:?}: {theirs:?}");
        }
        // Retention of one tenant leaves the other's rows alone even with equal keys.
        store
            .tenant("globex")
            .set_overrides(&TenantOverrides {
                raw_retention_days: Some(1),
                ..TenantOverrides::default()
            })
            .await
            .expect("overrides");
        store
            .maintain(&policy, H0 + 10 * DAY_MS)
            .await
            .expect("maintain");
        assert_eq!(
            store.tenant("acme").counts().await.expect("counts").samples,
            2
        );
    }
    ispvm_testkit::on_both_engines!(series_isolation, another_tenant_reads_nothing);

    async fn duplicates_are_stored_once(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        // The same (series, ts) twice in one batch: the first value wins.
        let b = samples_batch(
            "agent-a",
            "acme",
            1,
            vec![
                cpu("core1", H0, 1.0),
                cpu("core1", H0, 9.0),
                cpu("core1", H0 + 1_000, 2.0),
            ],
        );
        let out = ts.ingest(&b, H0 + 2_000).await.expect("ingest");
        assert_eq!((out.samples_stored, out.samples_duplicate), (2, 1));
        // Re-cut under a new sequence number, overlapping by one sample.
        let b2 = samples_batch(
            "agent-a",
            "acme",
            2,
            vec![cpu("core1", H0 + 1_000, 2.0), cpu("core1", H0 + 2_000, 3.0)],
        );
        let out = ts.ingest(&b2, H0 + 3_000).await.expect("ingest");
        assert_eq!((out.samples_stored, out.samples_duplicate), (1, 1));
        // The very same batch again: a replay.
        assert!(
            ts.ingest(&b2, H0 + 3_000)
                .await
                .expect("replay")
                .duplicate_batch
        );
        let points = ts
            .series_range(
                &dev("core1"),
                MetricName::DeviceCpuPct,
                H0,
                H0 + HOUR_MS,
                Resolution::Raw,
            )
            .await
            .expect("range");
        assert_eq!(
            points.points.iter().map(|p| p.avg).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0]
        );
        assert_eq!(ts.counts().await.expect("counts").samples, 3);
    }
    ispvm_testkit::on_both_engines!(duplicates, duplicates_are_stored_once);

    async fn samples_far_in_the_future_are_dropped(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        let policy = TimeseriesPolicy::default();
        let b = samples_batch(
            "agent-a",
            "acme",
            1,
            vec![
                cpu("core1", H0, 1.0),
                cpu("core1", H0 + policy.max_future_ms + 1, 2.0),
            ],
        );
        let out = ts.ingest(&b, H0).await.expect("ingest");
        assert_eq!((out.samples_stored, out.samples_future), (1, 1));
        let latest = ts.latest_values().await.expect("latest");
        assert_eq!(
            (latest[0].ts_ms, latest[0].value),
            (H0, 1.0),
            "the latest value stays in the present"
        );
        assert!(
            store
                .sample_partitions()
                .await
                .expect("partitions")
                .iter()
                .all(|p| p.start_ms <= H0)
        );
    }
    ispvm_testkit::on_both_engines!(future_samples, samples_far_in_the_future_are_dropped);

    async fn quotas_refuse_the_whole_batch(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        ts.set_overrides(&TenantOverrides {
            max_devices: Some(2),
            max_agents: Some(1),
            ..TenantOverrides::default()
        })
        .await
        .expect("overrides");
        let first = with_devices(
            samples_batch("agent-a", "acme", 1, vec![cpu("core1", H0, 1.0)]),
            &["core1", "core2"],
        );
        ts.ingest(&first, H0).await.expect("within quota");
        let before = ts.counts().await.expect("counts");

        // A third device: the whole batch is refused, samples and claim included.
        let third = with_devices(
            samples_batch("agent-a", "acme", 2, vec![cpu("core3", H0, 1.0)]),
            &["core1", "core3"],
        );
        let err = ts
            .ingest(&third, H0)
            .await
            .expect_err("over the device quota");
        match err {
            StoreError::QuotaExceeded(q) => {
                assert_eq!(
                    (q.kind, q.limit, q.current, q.adding),
                    (QuotaKind::Devices, 2, 2, 1)
                );
                assert!(q.to_string().contains("quota of 2 devices"), "{q}");
            }
            other => panic!("expected a quota error, got {other:?}"),
        }
        assert_eq!(ts.counts().await.expect("counts"), before);

        // A second agent.
        let other = samples_batch("agent-b", "acme", 1, vec![cpu("core1", H0 + 1, 1.0)]);
        assert!(matches!(
            ts.ingest(&other, H0).await,
            Err(StoreError::QuotaExceeded(q)) if q.kind == QuotaKind::Agents
        ));
        assert_eq!(ts.counts().await.expect("counts"), before);
        assert_eq!(ts.agents().await.expect("agents").len(), 1);

        // Known devices and the known agent go on; raising the quota lets the refused
        // batch through under its own sequence number (it was never claimed).
        let known = with_devices(
            samples_batch("agent-a", "acme", 3, vec![cpu("core2", H0, 4.0)]),
            &["core2"],
        );
        ts.ingest(&known, H0).await.expect("known device");
        ts.set_overrides(&TenantOverrides {
            max_devices: Some(3),
            ..TenantOverrides::default()
        })
        .await
        .expect("raise");
        let out = ts.ingest(&third, H0).await.expect("now within quota");
        assert!(!out.duplicate_batch);
        assert_eq!(ts.devices().await.expect("devices").len(), 3);
    }
    ispvm_testkit::on_both_engines!(quotas, quotas_refuse_the_whole_batch);

    async fn settings_follow_defaults_unless_overridden(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        let defaults = TimeseriesPolicy::default().tenant_defaults;
        assert_eq!(ts.settings(&defaults).await.expect("settings"), defaults);
        ts.set_overrides(&TenantOverrides {
            hour_retention_days: Some(3650),
            max_samples_per_s: Some(5),
            ..TenantOverrides::default()
        })
        .await
        .expect("set");
        let s = ts.settings(&defaults).await.expect("settings");
        assert_eq!(
            (s.hour_retention_days, s.max_samples_per_s, s.max_devices),
            (3650, 5, defaults.max_devices)
        );
        assert_eq!(
            ts.overrides().await.expect("overrides").raw_retention_days,
            None
        );
        assert!(matches!(
            ts.set_overrides(&TenantOverrides {
                raw_retention_days: Some(0),
                ..TenantOverrides::default()
            })
            .await,
            Err(StoreError::InvalidSettings(_))
        ));
        assert!(matches!(
            store
                .tenant("ghost")
                .set_overrides(&TenantOverrides::default())
                .await,
            Err(StoreError::UnknownTenant(_))
        ));
        assert_eq!(
            store
                .tenant("globex")
                .settings(&defaults)
                .await
                .expect("settings"),
            defaults
        );
        assert_eq!(
            store.tenant("ghost").counts().await.expect("counts"),
            Counts::default()
        );
    }
    ispvm_testkit::on_both_engines!(settings, settings_follow_defaults_unless_overridden);

    async fn a_large_batch_goes_through_the_copy_path(store: Store) {
        tenant(&store, "acme").await;
        let ts = store.tenant("acme");
        // 10,000 samples over 1,000 series, then the same again (all duplicates).
        let samples: Vec<MetricSample> = (0..10_000)
            .map(|i| {
                cpu(
                    &format!("dev{}", i % 1_000),
                    H0 + (i / 1_000) * 10_000,
                    i as f64,
                )
            })
            .collect();
        let cache = ispvm_server::store::IngestCache::default();
        let policy = TimeseriesPolicy::default();
        let out = ts
            .ingest_with(
                &samples_batch("agent-a", "acme", 1, samples.clone()),
                H0 + 100_000,
                &policy,
                Some(&cache),
            )
            .await
            .expect("ingest");
        assert_eq!(out.samples_stored, 10_000);
        let out = ts
            .ingest_with(
                &samples_batch("agent-a", "acme", 2, samples),
                H0 + 100_000,
                &policy,
                Some(&cache),
            )
            .await
            .expect("again");
        assert_eq!((out.samples_stored, out.samples_duplicate), (0, 10_000));
        assert_eq!(ts.counts().await.expect("counts").samples, 10_000);
        let latest = ts.latest_values().await.expect("latest");
        assert_eq!(latest.len(), 1_000);
        assert!(latest.iter().all(|l| l.ts_ms == H0 + 90_000));
    }
    ispvm_testkit::on_both_engines!(large_batch, a_large_batch_goes_through_the_copy_path);
}
