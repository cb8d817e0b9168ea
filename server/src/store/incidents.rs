//! Incidents and their transitions: what the correlator resumes from and what the API
//! lists.

use super::audit::{Actor, audit};
use super::{BeginWrite, Readable, StoreError, TenantStore, Unreadable, on_pool, stored_word};
use ispvm_actors::alert::Level;
use ispvm_actors::incident::{Incident, IncidentAction, IncidentChange, IncidentState};
use ispvm_actors::rca::CauseKind;

/// An incident as the list shows it: enough to sort, filter and open it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct IncidentRow {
    pub id: i64,
    pub title: String,
    pub state: IncidentState,
    pub severity: Level,
    pub kind: CauseKind,
    pub confidence: f64,
    pub opened_ms: i64,
    pub updated_ms: i64,
    pub resolved_ms: Option<i64>,
}

/// What the incident list is narrowed to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub severity: Option<Level>,
    pub kind: Option<CauseKind>,
}

type RowTuple = (
    i64,
    String,
    String,
    String,
    String,
    f64,
    i64,
    i64,
    Option<i64>,
);

fn id_of(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

impl TenantStore<'_> {
    /// Every site and device id with its name (incident titles name them).
    pub async fn display_names(
        &self,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>), StoreError> {
        let sites = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, name FROM sites WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        });
        let devices = on_pool!(self.store, pool => {
            sqlx::query_as("SELECT id, name FROM devices WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        });
        Ok((sites, devices))
    }

    /// Writes incidents and their transitions in one transaction; a transition already
    /// recorded (a retried save) is left as it is.
    pub async fn save_incidents(
        &self,
        incidents: &[Incident],
        changes: &[IncidentChange],
    ) -> Result<(), StoreError> {
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            for i in incidents {
                let body = serde_json::to_string(i)
                    .map_err(|source| StoreError::Document { what: "incident", source })?;
                sqlx::query(
                    "INSERT INTO incidents (tenant_id, id, state, severity, kind, title, confidence, opened_ms, updated_ms, resolved_ms, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET state = excluded.state, severity = excluded.severity, \
                       kind = excluded.kind, title = excluded.title, confidence = excluded.confidence, \
                       updated_ms = excluded.updated_ms, resolved_ms = excluded.resolved_ms, body = excluded.body",
                )
                .bind(self.tenant).bind(id_of(i.id)).bind(i.state.as_str()).bind(i.severity.as_str())
                .bind(i.kind.as_str()).bind(&i.title).bind(i.confidence).bind(i.opened_ms)
                .bind(i.updated_ms).bind(i.resolved_ms).bind(body)
                .execute(&mut *tx).await?;
            }
            for c in changes {
                sqlx::query(
                    "INSERT INTO incident_transitions (tenant_id, incident_id, seq, transition, at_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, incident_id, seq) DO NOTHING",
                )
                .bind(self.tenant).bind(id_of(c.incident)).bind(i64::from(c.seq))
                .bind(c.transition.as_str()).bind(c.at_ms)
                .execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Writes an incident an operator acted on, and the audit row of the action, in one
    /// transaction.
    pub async fn save_incident_action(
        &self,
        incident: &Incident,
        actor: &Actor,
        action: &IncidentAction,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(incident).map_err(|source| StoreError::Document {
            what: "incident",
            source,
        })?;
        let details = serde_json::json!({ "after": action });
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE incidents SET updated_ms = $3, body = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id_of(incident.id)).bind(incident.updated_ms).bind(&body)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, action.verb(), "incident", incident.id.to_string(), details);
            tx.commit().await?;
        });
        Ok(())
    }

    fn parse_incident(id: i64, body: &str) -> Result<Incident, Unreadable> {
        serde_json::from_str::<Incident>(body).map_err(|e| Unreadable {
            what: "incident",
            key: id.to_string(),
            error: e.to_string(),
        })
    }

    /// Incidents open, or updated since `since_ms` (resolved ones that may reopen).
    pub async fn incidents_to_resume(
        &self,
        since_ms: i64,
    ) -> Result<Readable<Incident>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, body FROM incidents WHERE tenant_id = $1 AND (state = 'open' OR updated_ms >= $2) ORDER BY id",
            )
            .bind(self.tenant).bind(since_ms).fetch_all(pool).await?
        });
        let mut out = Readable {
            items: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
        };
        for (id, body) in rows {
            match Self::parse_incident(id, &body) {
                Ok(i) => out.items.push(i),
                Err(u) => out.unreadable.push(u),
            }
        }
        Ok(out)
    }

    /// The number the next incident gets: one past every number ever given.
    pub async fn next_incident_id(&self) -> Result<u64, StoreError> {
        let max: Option<i64> = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT MAX(id) FROM incidents WHERE tenant_id = $1")
                .bind(self.tenant).fetch_one(pool).await?
        });
        Ok(max.map_or(1, |m| u64::try_from(m).unwrap_or(0).saturating_add(1)))
    }

    /// Incidents newest first, with ids below `before` (the page cursor), at most
    /// `limit`.
    pub async fn incidents_page(
        &self,
        filter: IncidentFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let rows: Vec<RowTuple> = on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT id, title, state, severity, kind, confidence, opened_ms, updated_ms, resolved_ms FROM incidents \
                 WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR severity = $3) \
                   AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR id < $5) \
                 ORDER BY id DESC LIMIT $6",
            )
            .bind(self.tenant).bind(filter.state.map(|s| s.as_str()))
            .bind(filter.severity.map(|s| s.as_str())).bind(filter.kind.map(|k| k.as_str()))
            .bind(before).bind(limit)
            .fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(
                    id,
                    title,
                    state,
                    severity,
                    kind,
                    confidence,
                    opened_ms,
                    updated_ms,
                    resolved_ms,
                )| {
                    Ok(IncidentRow {
                        id,
                        title,
                        state: stored_word("state", &state)?,
                        severity: stored_word("severity", &severity)?,
                        kind: stored_word("kind", &kind)?,
                        confidence,
                        opened_ms,
                        updated_ms,
                        resolved_ms,
                    })
                },
            )
            .collect()
    }

    /// Transitions recorded at or after `since_ms`, oldest first: `(incident, seq,
    /// transition, at_ms)`.
    pub async fn incident_transitions(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(i64, i64, String, i64)>, StoreError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT incident_id, seq, transition, at_ms FROM incident_transitions \
                 WHERE tenant_id = $1 AND at_ms >= $2 ORDER BY at_ms, incident_id, seq",
            )
            .bind(self.tenant).bind(since_ms).fetch_all(pool).await?
        }))
    }

    /// One incident whole, `None` when the tenant has no such incident.
    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT body FROM incidents WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        body.map(|b| {
            serde_json::from_str::<Incident>(&b).map_err(|source| StoreError::Document {
                what: "incident",
                source,
            })
        })
        .transpose()
    }
}
