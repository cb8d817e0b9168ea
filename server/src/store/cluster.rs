//! The agents' cluster reports: the newest one per agent.
//!
//! Ingest writes them inside the batch transaction ([`UPSERT_REPORT`]); the cluster view
//! reads them back to merge a tenant's reports after a restart, and on every server of
//! an HA pair, since each agent talks to one server only.

use super::{Readable, StoreError, TenantStore, Unreadable, on_pool};
use ispvm_proto::ClusterReport;

/// One agent's newest report as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub agent: String,
    /// When the server stored it, Unix ms (the agent's own time is `report.at_ms`).
    pub received_ms: i64,
    pub report: ClusterReport,
}

/// Keeps a report as its agent's newest unless a newer one is stored already (binds:
/// tenant, agent, the report's `at_ms`, received ms, the report as JSON). Runs inside
/// the batch's transaction, so a refused batch leaves no report behind.
pub(super) const UPSERT_REPORT: &str = "INSERT INTO cluster_reports (tenant_id, agent_id, generated_ms, received_ms, report) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (tenant_id, agent_id) DO UPDATE SET generated_ms = excluded.generated_ms, \
       received_ms = excluded.received_ms, report = excluded.report \
     WHERE cluster_reports.generated_ms < excluded.generated_ms";

impl TenantStore<'_> {
    /// Every agent's newest report. A row that no longer parses (written by another
    /// version) is skipped and logged rather than failing the whole view.
    pub async fn cluster_reports(&self) -> Result<Readable<StoredReport>, StoreError> {
        let rows: Vec<(String, i64, String)> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT agent_id, received_ms, report FROM cluster_reports \
                 WHERE tenant_id = $1 ORDER BY agent_id",
            )
            .bind(self.tenant).fetch_all(pool).await?
        });
        let mut out = Readable {
            items: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
        };
        for (agent, received_ms, json) in rows {
            match serde_json::from_str::<ClusterReport>(&json) {
                Ok(report) => out.items.push(StoredReport {
                    agent,
                    received_ms,
                    report,
                }),
                Err(e) => out.unreadable.push(Unreadable {
                    what: "cluster_report",
                    key: agent,
                    error: e.to_string(),
                }),
            }
        }
        Ok(out)
    }
}
