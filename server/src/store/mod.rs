//! The store: sqlx over SQLite (embedded default) or PostgreSQL (production).
//!
//! Both engines run the same SQL (parameters as `$N`, upserts as `ON CONFLICT`), so one
//! code path serves both: [`on_pool!`] expands a body once per engine and each expansion
//! is type-checked against its own driver. Tenant-owned data is reached only through
//! [`TenantStore`], which puts the tenant id into every query it runs.

mod alerts;
pub mod audit;
pub mod catalog;
mod cluster;
pub mod crypto;
mod deliveries;
mod incidents;
mod ingest;
mod inventory;
pub mod maintenance;
mod partitions;
mod refusal;
mod retention;
mod rollup;
mod samples;
mod settings;
pub mod tenants;
mod timeseries;
pub mod users;

pub use alerts::{AlertRow, NotificationRow};
pub use audit::{Actor, AuditEntry, AuditFilter};
pub use catalog::{CatalogError, Page, PageRequest};
pub use cluster::StoredReport;
pub use crypto::MasterKey;
pub use incidents::{IncidentFilter, IncidentRow};
pub use ingest::IngestOutcome;
pub use inventory::{
    AddressRow, AgentRow, DeviceRow, EventRow, InterfaceRow, LatestValue, NeighborRow, SiteRow,
};
pub use partitions::PartitionInfo;
pub use retention::{MaintenanceReport, RetentionReport, retention_cutoff};
pub use rollup::RollupReport;
pub use samples::{IngestCache, copy_binary};
pub use settings::{QuotaExceeded, QuotaKind, TenantOverrides, TenantSettings};
pub use timeseries::{
    DAY_MS, HOUR_MS, MAX_POINTS, MINUTE_MS, Resolution, SeriesPoint, SeriesRange, TimeseriesPolicy,
};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Runs `$body` with `$pool` bound to the engine's pool, whichever it is.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Opening a transaction that will write.
///
/// SQLite must take its write lock when the transaction begins (`BEGIN IMMEDIATE`): a
/// deferred transaction that reads first and writes later fails with "database is
/// locked" instead of waiting when another writer got in between. PostgreSQL locks rows
/// as it goes and needs nothing special.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    /// A stored document (a JSON column) that cannot be written or read back.
    #[error("{what} document: {source}")]
    Document {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    BadUrl(String),
    /// Storing the batch would take the tenant over a quota; nothing was stored.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    #[error("invalid tenant settings: {0}")]
    InvalidSettings(String),
    /// Writing one item of a batch failed; `item` names it (`inventory.neighbors[3]`).
    #[error("cannot store {item}: {source}")]
    Item {
        item: String,
        #[source]
        source: sqlx::Error,
    },
    /// A batch with this sequence number was stored before with other content: the
    /// agent reused a number. Nothing was stored.
    #[error(
        "batch {seq} of agent {agent:?} was stored before with other content \
         (stored {stored}, received {received})"
    )]
    SeqReused {
        agent: String,
        seq: u64,
        stored: String,
        received: String,
    },
}

impl StoreError {
    /// Tags a failed write with the item it was writing.
    pub(crate) fn item(item: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let item = item.into();
        move |source| StoreError::Item { item, source }
    }

    /// Whether the same write would fail again however often it is retried: the database
    /// refused a value (one the ingest checks let through), as opposed to failing itself.
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Item { source, .. } | StoreError::Db(source) => {
                refusal::is_permanent(source)
            }
            StoreError::SeqReused { .. } | StoreError::QuotaExceeded(_) => true,
            _ => false,
        }
    }

    /// Whether the database is away or saturated (connection lost, pool exhausted, too
    /// many clients, locked): worth retrying later, and not the batch's fault.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Item { source, .. } | StoreError::Db(source) => {
                refusal::is_unavailable(source)
            }
            _ => false,
        }
    }
}

/// Rows read back from the store, and those that could not be: every writer validates
/// what it stores, so an unreadable row was changed behind the server's back (or by a
/// newer version). It costs that row, never the read; the caller reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Readable<T> {
    pub items: Vec<T>,
    pub unreadable: Vec<Unreadable>,
}

/// A stored row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// What it is (`alert_rule`, `alert_state`).
    pub what: &'static str,
    /// Its key, for the log.
    pub key: String,
    pub error: String,
}

/// A closed-set word read back from the store. Every writer writes the enum's word, so
/// one that parses to nothing means the row was changed behind the server's back: it
/// is reported as the column's decode error, never guessed.
pub(crate) fn stored_word<T>(column: &'static str, word: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = ispvm_proto::text_enum::UnknownVariant>,
{
    word.parse()
        .map_err(|e: ispvm_proto::text_enum::UnknownVariant| {
            StoreError::Db(sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source: Box::new(e),
            })
        })
}

/// A connection pool to one of the supported engines.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Store::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk when it returns, so an acknowledged batch
                // survives a power cut (WAL with NORMAL may lose the last commits).
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Store::Sqlite(pool)
        } else {
            return Err(StoreError::BadUrl(url.chars().take(40).collect()));
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Store::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Creates a tenant if it does not exist; returns whether it was created.
    pub async fn ensure_tenant(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        let now = ispvm_proto::time::now_ms();
        let created = on_pool!(self, pool => {
            sqlx::query("INSERT INTO tenants (id, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
                .bind(id).bind(name).bind(now)
                .execute(pool).await?.rows_affected()
        });
        Ok(created > 0)
    }

    /// The data of one tenant. Every query made through it is scoped to that tenant.
    pub fn tenant<'a>(&'a self, tenant_id: &'a str) -> TenantStore<'a> {
        TenantStore {
            store: self,
            tenant: tenant_id,
        }
    }
}

/// The tenant-scoped access layer: the only way to reach tenant-owned rows.
#[derive(Debug, Clone, Copy)]
pub struct TenantStore<'a> {
    store: &'a Store,
    tenant: &'a str,
}

impl TenantStore<'_> {
    pub fn tenant_id(&self) -> &str {
        self.tenant
    }

    /// Whether the tenant exists.
    pub async fn exists(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM tenants WHERE id = $1")
                .bind(self.tenant).fetch_optional(pool).await?
        });
        Ok(found.is_some())
    }

    /// Row counts of the tenant's data, for tests and diagnostics.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let t = self.tenant;
        let (samples, events, devices, interfaces, batches): (i64, i64, i64, i64, i64) = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT \
                   (SELECT COUNT(*) FROM samples s JOIN series r ON r.id = s.series_id WHERE r.tenant_id = $1), \
                   (SELECT COUNT(*) FROM events WHERE tenant_id = $1), \
                   (SELECT COUNT(*) FROM devices WHERE tenant_id = $1), \
                   (SELECT COUNT(*) FROM interfaces WHERE tenant_id = $1), \
                   (SELECT COUNT(*) FROM ingested_batches WHERE tenant_id = $1)",
            )
            .bind(t)
            .fetch_one(pool)
            .await?
        });
        Ok(Counts {
            samples,
            events,
            devices,
            interfaces,
            batches,
        })
    }

    /// Creates or updates a site (operator data: name and coordinates).
    pub async fn upsert_site(
        &self,
        id: &str,
        name: &str,
        lat: Option<f64>,
        lon: Option<f64>,
    ) -> Result<(), StoreError> {
        on_pool!(self.store, pool => {
            sqlx::query(
                "INSERT INTO sites (tenant_id, id, name, lat, lon) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon",
            )
            .bind(self.tenant).bind(id).bind(name).bind(lat).bind(lon)
            .execute(pool).await?;
        });
        Ok(())
    }
}

/// How many rows a tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub samples: i64,
    pub events: i64,
    pub devices: i64,
    pub interfaces: i64,
    pub batches: i64,
}
