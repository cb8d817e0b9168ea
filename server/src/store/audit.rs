//! The audit log: who changed what and when, and every login attempt.
//!
//! Rows are written by [`audit!`] inside the transaction of the change they describe, so
//! a change without its audit row (or the reverse) cannot be committed.

use super::{StoreError, TenantStore, on_pool};
use serde::Serialize;

/// Who makes a change: the audit log's user and client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    /// Client address as the server saw it (`ip:port`), or empty.
    pub remote: String,
}

impl Actor {
    /// The server itself (bootstrap, migrations of data).
    pub fn system() -> Self {
        Actor {
            username: "system".into(),
            remote: String::new(),
        }
    }
}

/// Appends one audit row inside the open transaction `$tx`.
macro_rules! audit {
    ($tx:expr, $tenant:expr, $actor:expr, $action:expr, $resource:expr, $id:expr, $details:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (tenant_id, ts_ms, username, action, resource, resource_id, details, remote_addr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($tenant)
        .bind(ispvm_proto::time::now_ms())
        .bind($actor.username.as_str())
        .bind($action)
        .bind($resource)
        .bind($id)
        .bind(serde_json::Value::to_string(&$details))
        .bind($actor.remote.as_str())
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use audit;

/// One audit row as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub ts_ms: i64,
    pub username: String,
    pub action: String,
    pub resource: String,
    pub resource_id: String,
    pub details: serde_json::Value,
    pub remote_addr: String,
}

#[derive(sqlx::FromRow)]
struct AuditRaw {
    id: i64,
    ts_ms: i64,
    username: String,
    action: String,
    resource: String,
    resource_id: String,
    details: String,
    remote_addr: String,
}

/// Which audit rows to list (all `None`: every row).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub resource: Option<String>,
    pub action: Option<String>,
    pub username: Option<String>,
    pub resource_id: Option<String>,
}

impl TenantStore<'_> {
    /// Audit rows newest first, up to `limit` (plus one, so the caller knows whether more
    /// exist), older than the row id `before` when given.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, ts_ms, username, action, resource, resource_id, details, remote_addr FROM audit_log \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR resource = $3) \
                   AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR username = $5) \
                   AND ($6 IS NULL OR resource_id = $6) \
                 ORDER BY id DESC LIMIT $7",
            )
            .bind(self.tenant).bind(before).bind(filter.resource.as_deref())
            .bind(filter.action.as_deref()).bind(filter.username.as_deref())
            .bind(filter.resource_id.as_deref()).bind(i64::from(limit) + 1)
            .fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                ts_ms: r.ts_ms,
                username: r.username,
                action: r.action,
                resource: r.resource,
                resource_id: r.resource_id,
                details: serde_json::from_str(&r.details)
                    .unwrap_or(serde_json::Value::String(r.details)),
                remote_addr: r.remote_addr,
            })
            .collect())
    }
}
