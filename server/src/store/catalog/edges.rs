//! Topology edges (ARCHITECTURE §3): `depends_on` drives suppression and impact,
//! `connected_to` is adjacency, `bgp_peer` and `ospf_neighbor` are evidence. Edges that
//! share a `from` and have group `any` form one "requires any" set (redundant uplinks);
//! `all` edges are each required. Inferred edges arrive as `proposed` and an operator
//! accepts or rejects them.

use super::{CatalogError, Page, PageRequest, stored, validate};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use ispvm_actors::topology::{DependencyGroup, EdgeKind, EdgeSource, EdgeState, NodeKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The table each kind of edge end lives in.
fn table_of(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Device => "devices",
        NodeKind::Link => "links",
        NodeKind::Site => "sites",
        NodeKind::Service => "services",
    }
}

/// One end of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    pub kind: NodeKind,
    pub id: String,
}

/// What an operator sets on an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    #[serde(rename = "type")]
    pub kind: EdgeKind,
    /// The dependent side (for `depends_on`: the one that fails when `to` fails).
    pub from: EntityRef,
    pub to: EntityRef,
    /// How the `depends_on` edges of one `from` combine: `any` needs one of them up.
    #[serde(default)]
    pub group: DependencyGroup,
    #[serde(default)]
    pub state: EdgeState,
    #[serde(default)]
    pub note: String,
}

impl EdgeSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        for (field, r) in [("from", &self.from), ("to", &self.to)] {
            validate::id(&format!("{field}.id"), &r.id)?;
        }
        if self.from == self.to {
            return Err(CatalogError::invalid(
                "to",
                "an edge joins two different entities",
            ));
        }
        validate::text("note", &self.note, validate::MAX_TEXT_LEN)
    }
}

/// An edge as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopologyEdge {
    pub id: String,
    #[serde(flatten)]
    pub spec: EdgeSpec,
    /// Made through the API, or proposed by discovery.
    pub source: EdgeSource,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Filters of the edge list.
#[derive(Debug, Clone, Default)]
pub struct EdgeFilter {
    pub kind: Option<EdgeKind>,
    pub state: Option<EdgeState>,
    pub source: Option<EdgeSource>,
    /// Either end is this device.
    pub device: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EdgeRaw {
    id: String,
    kind: String,
    from_kind: String,
    from_id: String,
    to_kind: String,
    to_id: String,
    grp: String,
    state: String,
    source: String,
    note: String,
    created_ms: i64,
    updated_ms: i64,
}

impl TryFrom<EdgeRaw> for TopologyEdge {
    type Error = CatalogError;

    fn try_from(r: EdgeRaw) -> Result<Self, CatalogError> {
        Ok(TopologyEdge {
            id: r.id,
            spec: EdgeSpec {
                kind: stored("kind", &r.kind)?,
                from: EntityRef {
                    kind: stored("from_kind", &r.from_kind)?,
                    id: r.from_id,
                },
                to: EntityRef {
                    kind: stored("to_kind", &r.to_kind)?,
                    id: r.to_id,
                },
                group: stored("grp", &r.grp)?,
                state: stored("state", &r.state)?,
                note: r.note,
            },
            source: stored("source", &r.source)?,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

const COLUMNS: &str = "id, kind, from_kind, from_id, to_kind, to_id, grp, state, source, note, created_ms, updated_ms";
const RESOURCE: &str = "topology_edge";

/// Checks both ends exist and no other edge has the same type and ends, inside `$tx`.
macro_rules! check_edge {
    ($tx:ident, $tenant:expr, $spec:expr, $own_id:expr) => {{
        for (field, r) in [("from", &$spec.from), ("to", &$spec.to)] {
            let table = table_of(r.kind);
            let found: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT CAST(1 AS BIGINT) FROM {table} WHERE tenant_id = $1 AND id = $2"
            ))
            .bind($tenant).bind(&r.id).fetch_optional(&mut *$tx).await?;
            if found.is_none() {
                return Err(CatalogError::invalid(
                    format!("{field}.id"),
                    format!("{} {:?} does not exist", r.kind, r.id),
                ));
            }
        }
        let twin: Option<String> = sqlx::query_scalar(
            "SELECT id FROM topology_edges WHERE tenant_id = $1 AND kind = $2 AND from_kind = $3 AND from_id = $4 \
             AND to_kind = $5 AND to_id = $6 AND id <> $7",
        )
        .bind($tenant).bind($spec.kind.as_str()).bind($spec.from.kind.as_str()).bind(&$spec.from.id)
        .bind($spec.to.kind.as_str()).bind(&$spec.to.id).bind($own_id)
        .fetch_optional(&mut *$tx).await?;
        if let Some(twin) = twin {
            return Err(CatalogError::Conflict(format!(
                "edge {twin:?} already joins these entities with this type"
            )));
        }
    }};
}

impl TenantStore<'_> {
    pub async fn edges_page(
        &self,
        filter: &EdgeFilter,
        page: &PageRequest,
    ) -> Result<Page<TopologyEdge>, CatalogError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM topology_edges WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR state = $4) AND ($5 IS NULL OR source = $5) \
             AND ($6 IS NULL OR (from_kind = 'device' AND from_id = $6) OR (to_kind = 'device' AND to_id = $6)) \
             ORDER BY id LIMIT $7"
        );
        let rows: Vec<EdgeRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(filter.kind.map(EdgeKind::as_str))
                .bind(filter.state.map(EdgeState::as_str)).bind(filter.source.map(EdgeSource::as_str))
                .bind(filter.device.as_deref())
                .bind(page.fetch())
                .fetch_all(pool).await?
        });
        Page::from_rows(rows, page.limit).try_map(TopologyEdge::try_from)
    }

    pub async fn edge(&self, id: &str) -> Result<Option<TopologyEdge>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM topology_edges WHERE tenant_id = $1 AND id = $2");
        let row: Option<EdgeRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        row.map(TopologyEdge::try_from).transpose()
    }

    /// Adds an edge an operator made.
    pub async fn create_operator_edge(
        &self,
        actor: &Actor,
        id: &str,
        spec: &EdgeSpec,
    ) -> Result<TopologyEdge, CatalogError> {
        self.create_edge(actor, id, spec, EdgeSource::Operator)
            .await
    }

    /// Adds an edge: an operator's through the API, or one discovery proposes.
    pub async fn create_edge(
        &self,
        actor: &Actor,
        id: &str,
        spec: &EdgeSpec,
        source: EdgeSource,
    ) -> Result<TopologyEdge, CatalogError> {
        validate::id("id", id)?;
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM topology_edges WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("topology edge {id:?} already exists")));
            }
            check_edge!(tx, self.tenant, spec, id);
            sqlx::query(
                "INSERT INTO topology_edges (tenant_id, id, kind, from_kind, from_id, to_kind, to_id, grp, state, source, \
                   note, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(self.tenant).bind(id).bind(spec.kind.as_str()).bind(spec.from.kind.as_str()).bind(&spec.from.id)
            .bind(spec.to.kind.as_str()).bind(&spec.to.id).bind(spec.group.as_str()).bind(spec.state.as_str())
            .bind(source.as_str()).bind(&spec.note).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec, "source": source.as_str() }));
            tx.commit().await?;
        });
        Ok(TopologyEdge {
            id: id.to_owned(),
            spec: spec.clone(),
            source,
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Changes an edge (accepting or rejecting a proposal is a change of `state`).
    pub async fn update_edge(
        &self,
        actor: &Actor,
        id: &str,
        spec: &EdgeSpec,
    ) -> Result<TopologyEdge, CatalogError> {
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        let sql = format!("SELECT {COLUMNS} FROM topology_edges WHERE tenant_id = $1 AND id = $2");
        let before: TopologyEdge = on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<EdgeRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            check_edge!(tx, self.tenant, spec, id);
            sqlx::query(
                "UPDATE topology_edges SET kind = $3, from_kind = $4, from_id = $5, to_kind = $6, to_id = $7, grp = $8, \
                   state = $9, note = $10, updated_ms = $11 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(spec.kind.as_str()).bind(spec.from.kind.as_str()).bind(&spec.from.id)
            .bind(spec.to.kind.as_str()).bind(&spec.to.id).bind(spec.group.as_str()).bind(spec.state.as_str())
            .bind(&spec.note).bind(now)
            .execute(&mut *tx).await?;
            let before = TopologyEdge::try_from(before)?;
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.spec, "after": spec }));
            tx.commit().await?;
            before
        });
        Ok(TopologyEdge {
            spec: spec.clone(),
            updated_ms: now,
            ..before
        })
    }

    pub async fn delete_edge(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM topology_edges WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Option<EdgeRaw> = sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else {
                return Err(CatalogError::not_found(RESOURCE, id));
            };
            sqlx::query("DELETE FROM topology_edges WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": TopologyEdge::try_from(before)?.spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
