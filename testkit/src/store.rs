//! Stores on both engines: a fresh SQLite file, a fresh PostgreSQL database, and a macro
//! that runs one test body on each.

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

/// Runs one statement on whichever engine the store is, behind the store's back: for
/// tests that must damage a stored row to see what the server does with it.
pub async fn execute_raw(store: &Store, sql: &str) {
    match store {
        Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
