//! Helpers shared by the tests of the server and of the `ispvm` command: stores on both
//! engines (a fresh SQLite file, a fresh PostgreSQL database) and sample batches.
//!
//! A dev-dependency only: no production crate links it.

use ispvm_proto::{
    Batch, DeviceInfo, DeviceRole, EntityKey, Event, EventKind, InterfaceInfo, MetricName,
    MetricSample, Severity,
};
use ispvm_server::store::Store;
use sqlx::Connection;

/// Admin URL of the PostgreSQL the tests use; the role needs CREATEDB.
pub fn pg_admin_url() -> String {
    std::env::var("ISPVM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://ispvm:ispvm@127.0.0.1:5432/ispvm_test".into())
}

/// A store on a fresh SQLite file; keep the directory alive as long as the store.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    (Store::connect(&url).await.expect("sqlite store"), dir)
}

/// A fresh PostgreSQL database; dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub async fn drop_db(self, store: Store) {
        store.close().await;
        let mut admin = sqlx::PgConnection::connect(&pg_admin_url())
            .await
            .expect("admin connection");
        // FORCE cannot end an autovacuum worker that happens to be analysing the test's
        // tables (it runs as no role the test role may signal): wait for it instead.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        for attempt in 1.. {
            match sqlx::query(&sql).execute(&mut admin).await {
                Ok(_) => break,
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("42501") && attempt < 50 =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("drop database: {e}"),
            }
        }
    }
}

/// A store on a new, empty PostgreSQL database. Fails loudly when PostgreSQL is not
/// reachable: the store tests must run on both engines.
pub async fn pg_store() -> (Store, PgDb) {
    let admin_url = pg_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is required for the store tests: {e}")
        });
    let name = format!("ispvm_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .expect("URL with a database");
    let store = Store::connect(&format!("{base}/{name}"))
        .await
        .expect("postgres store");
    (store, PgDb { name })
}

/// Runs an async test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = $crate::sqlite_store().await;
                super::$body(store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let (store, db) = $crate::pg_store().await;
                super::$body(store.clone()).await;
                db.drop_db(store).await;
            }
        }
    };
}

pub const T0: i64 = 1_790_000_000_000;

/// A batch with one device (two interfaces), four samples and one event.
pub fn batch(agent: &str, tenant: &str, seq: u64, device: &str) -> Batch {
    let mut b = Batch::new(agent, tenant, seq);
    b.inventory.devices.push(DeviceInfo {
        key: device.into(),
        name: device.to_uppercase(),
        site: "pop1".into(),
        role: DeviceRole::Core,
        mgmt_addr: "127.0.0.1:8728".into(),
        model: "CCR2216-1G-12XS-2XQ".into(),
        os_version: "7.16.1".into(),
    });
    for name in ["sfp-sfpplus1", "ether1"] {
        b.inventory.interfaces.push(InterfaceInfo {
            device: device.into(),
            name: name.into(),
            kind: "ether".into(),
            disabled: false,
        });
    }
    let dev = EntityKey::Device(device.into());
    let itf = EntityKey::Interface {
        device: device.into(),
        name: "sfp-sfpplus1".into(),
    };
    let ts = T0 + seq as i64 * 10_000;
    for (entity, metric, value) in [
        (dev.clone(), MetricName::DeviceUp, 1.0),
        (dev.clone(), MetricName::DeviceCpuPct, 17.0),
        (dev.clone(), MetricName::DeviceUptimeS, 86_400.0),
        (itf, MetricName::InterfaceRxBps, 1.5e9),
    ] {
        b.samples.push(MetricSample {
            entity,
            metric,
            ts_ms: ts,
            value,
        });
    }
    let mut e = Event::new(
        dev,
        EventKind::Reboot,
        Severity::Warning,
        format!("{device} rebooted"),
    );
    e.ts_ms = ts;
    b.events.push(e);
    b
}

/// Checks that a file generated from the code (`docs/metrics.md`, the OpenAPI document)
/// is what the code makes today, so documentation cannot drift from what exists.
///
/// With `ISPVM_UPDATE_DOCS=1` the file is rewritten instead. `path` is relative to the
/// workspace root.
pub fn assert_generated_file(path: &str, rendered: &str) {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    if std::env::var_os("ISPVM_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&full, rendered)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&full).unwrap_or_default();
    if on_disk != rendered {
        let first = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(rendered.lines().count()));
        panic!(
            "{path} is stale (first difference at line {}); regenerate it with ISPVM_UPDATE_DOCS=1 cargo test",
            first + 1
        );
    }
}
