//! Agents as ingest records them (read-only: an agent's identity is its certificate,
//! so it is enrolled and revoked through the PKI, not edited here).

use super::{CatalogError, Page, PageRequest, like_pattern};
use crate::store::{AgentRow, TenantStore, on_pool};

const COLUMNS: &str = "id, first_seen_ms, last_seen_ms, last_seq, batches, seq_gaps";

impl TenantStore<'_> {
    pub async fn agents_page(
        &self,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AgentRow>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR LOWER(id) LIKE $3 ESCAPE '\\') ORDER BY id LIMIT $4"
        );
        let rows: Vec<AgentRow> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit))
    }

    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2");
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        }))
    }
}
