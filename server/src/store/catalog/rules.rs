//! Alert rules: JSON documents in the alert engine's format
//! (`ispvm_actors::alert::Rule`), validated by its parser on the way in and stored in
//! their normalised form (defaults filled in), so an export is exactly what the engine
//! evaluates and importing it again changes nothing.

use super::{CatalogError, Page, PageRequest, like_pattern};
use crate::store::audit::{Actor, audit};
use crate::store::{BeginWrite, TenantStore, on_pool};
use ispvm_actors::alert::{Rule, RuleError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `version` of the import/export document.
pub const RULES_FORMAT_VERSION: u32 = 1;

/// The import/export document: `{"version": 1, "rules": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleDocument {
    pub version: u32,
    #[schema(value_type = Vec<ispvm_actors::alert::Rule>)]
    pub rules: Vec<Value>,
}

/// A stored rule: the document and what the server keeps about it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    /// Bumped by the server on every stored change.
    pub revision: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The rule document, normalised.
    #[schema(value_type = ispvm_actors::alert::Rule)]
    pub rule: Value,
}

#[derive(sqlx::FromRow)]
struct RuleRaw {
    id: String,
    name: String,
    kind: String,
    enabled: bool,
    document: String,
    revision: i64,
    created_ms: i64,
    updated_ms: i64,
}

impl From<RuleRaw> for AlertRule {
    fn from(r: RuleRaw) -> Self {
        AlertRule {
            id: r.id,
            name: r.name,
            kind: r.kind,
            enabled: r.enabled,
            revision: r.revision,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            // Written by this module from a validated rule.
            rule: serde_json::from_str(&r.document).unwrap_or(Value::Null),
        }
    }
}

/// How an import treats stored rules the document does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Keep them.
    #[default]
    Merge,
    /// Delete them: afterwards the tenant has exactly the document's rules.
    Replace,
}

/// What an import did, by rule id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportOutcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
}

const COLUMNS: &str = "id, name, kind, enabled, document, revision, created_ms, updated_ms";
const RESOURCE: &str = "alert_rule";

fn rule_error(e: RuleError) -> CatalogError {
    match e {
        RuleError::Invalid { id, problem } => CatalogError::invalid(
            if id.is_empty() {
                "rule".to_owned()
            } else {
                format!("rule {id:?}")
            },
            problem,
        ),
        other => CatalogError::invalid("rule", other.to_string()),
    }
}

/// Validates one rule document; returns the rule and its normalised JSON.
pub fn parse_rule(doc: Value) -> Result<(Rule, Value), CatalogError> {
    let rule = Rule::from_value(doc).map_err(rule_error)?;
    let normal =
        serde_json::to_value(&rule).map_err(|e| CatalogError::invalid("rule", e.to_string()))?;
    Ok((rule, normal))
}

/// Validates an import document (`{"version": 1, "rules": [...]}` or a bare array).
pub fn parse_import(doc: Value) -> Result<Vec<(Rule, Value)>, CatalogError> {
    let items = match doc {
        Value::Array(items) => items,
        Value::Object(mut map) => {
            if let Some(v) = map.get("version")
                && v.as_u64() != Some(u64::from(RULES_FORMAT_VERSION))
            {
                return Err(CatalogError::invalid(
                    "version",
                    format!(
                        "unsupported document version {v}; this server reads {RULES_FORMAT_VERSION}"
                    ),
                ));
            }
            match map.remove("rules") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(CatalogError::invalid(
                        "rules",
                        "expected {\"version\": 1, \"rules\": [...]} or an array of rules",
                    ));
                }
            }
        }
        _ => {
            return Err(CatalogError::invalid(
                "document",
                "expected {\"version\": 1, \"rules\": [...]} or an array of rules",
            ));
        }
    };
    if items.len() > ispvm_actors::alert::rule::MAX_RULES_PER_DOCUMENT {
        return Err(rule_error(RuleError::TooMany(items.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (rule, normal) = parse_rule(item).map_err(|e| match e {
            CatalogError::Invalid { field, reason } => {
                CatalogError::invalid(format!("rules[{i}]: {field}"), reason)
            }
            other => other,
        })?;
        if !seen.insert(rule.id.clone()) {
            return Err(rule_error(RuleError::DuplicateId(rule.id)));
        }
        out.push((rule, normal));
    }
    Ok(out)
}

fn kind_of(normal: &Value) -> String {
    normal
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl TenantStore<'_> {
    pub async fn alert_rules_page(
        &self,
        kind: Option<&str>,
        enabled: Option<bool>,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AlertRule>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR enabled = $4) \
             AND ($5 IS NULL OR LOWER(id) LIKE $5 ESCAPE '\\' OR LOWER(name) LIKE $5 ESCAPE '\\') \
             ORDER BY id LIMIT $6"
        );
        let rows: Vec<RuleRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(kind).bind(enabled)
                .bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit).map(AlertRule::from))
    }

    pub async fn alert_rule(&self, id: &str) -> Result<Option<AlertRule>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND id = $2");
        let row: Option<RuleRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(AlertRule::from))
    }

    /// All rules as one import/export document, in id order.
    pub async fn export_alert_rules(&self) -> Result<RuleDocument, CatalogError> {
        let docs: Vec<String> = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT document FROM alert_rules WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant).fetch_all(pool).await?
        });
        Ok(RuleDocument {
            version: RULES_FORMAT_VERSION,
            rules: docs
                .iter()
                .filter_map(|d| serde_json::from_str(d).ok())
                .collect(),
        })
    }

    /// Stores a new rule from its document (its `id` names it).
    pub async fn create_alert_rule(
        &self,
        actor: &Actor,
        doc: Value,
    ) -> Result<AlertRule, CatalogError> {
        let (rule, normal) = parse_rule(doc)?;
        let now = ispvm_proto::time::now_ms();
        let text = normal.to_string();
        let kind = kind_of(&normal);
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM alert_rules WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(&rule.id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("alert rule {:?} already exists", rule.id)));
            }
            sqlx::query(
                "INSERT INTO alert_rules (tenant_id, id, name, kind, enabled, document, revision, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
            )
            .bind(self.tenant).bind(&rule.id).bind(&rule.name).bind(&kind).bind(rule.enabled).bind(&text).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, rule.id.as_str(), json!({ "after": normal }));
            tx.commit().await?;
        });
        Ok(AlertRule {
            id: rule.id,
            name: rule.name,
            kind,
            enabled: rule.enabled,
            revision: 1,
            created_ms: now,
            updated_ms: now,
            rule: normal,
        })
    }

    /// Replaces the document of rule `id` (the document's id must stay `id`).
    pub async fn update_alert_rule(
        &self,
        actor: &Actor,
        id: &str,
        doc: Value,
    ) -> Result<AlertRule, CatalogError> {
        let (rule, normal) = parse_rule(doc)?;
        if rule.id != id {
            return Err(CatalogError::invalid("id", "a rule's id cannot change"));
        }
        let Some(before) = self.alert_rule(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        let now = ispvm_proto::time::now_ms();
        let text = normal.to_string();
        let kind = kind_of(&normal);
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE alert_rules SET name = $3, kind = $4, enabled = $5, document = $6, revision = revision + 1, \
                   updated_ms = $7 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&rule.name).bind(&kind).bind(rule.enabled).bind(&text).bind(now)
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({ "before": before.rule, "after": normal }));
            tx.commit().await?;
        });
        Ok(AlertRule {
            name: rule.name,
            kind,
            enabled: rule.enabled,
            revision: before.revision + 1,
            updated_ms: now,
            rule: normal,
            ..before
        })
    }

    pub async fn delete_alert_rule(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let Some(before) = self.alert_rule(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM alert_rules WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": before.rule }));
            tx.commit().await?;
        });
        Ok(())
    }

    /// Imports a validated document in one transaction: all of it or nothing.
    pub async fn import_alert_rules(
        &self,
        actor: &Actor,
        rules: &[(Rule, Value)],
        mode: ImportMode,
    ) -> Result<ImportOutcome, CatalogError> {
        let now = ispvm_proto::time::now_ms();
        let mut out = ImportOutcome::default();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let stored: Vec<(String, String)> = sqlx::query_as("SELECT id, document FROM alert_rules WHERE tenant_id = $1")
                .bind(self.tenant).fetch_all(&mut *tx).await?;
            let stored: BTreeMap<String, Value> = stored
                .into_iter()
                .map(|(id, d)| (id, serde_json::from_str(&d).unwrap_or(Value::Null)))
                .collect();
            for (rule, normal) in rules {
                let text = normal.to_string();
                let kind = kind_of(normal);
                match stored.get(&rule.id) {
                    Some(old) if old == normal => out.unchanged.push(rule.id.clone()),
                    Some(_) => {
                        sqlx::query(
                            "UPDATE alert_rules SET name = $3, kind = $4, enabled = $5, document = $6, \
                               revision = revision + 1, updated_ms = $7 WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(self.tenant).bind(&rule.id).bind(&rule.name).bind(&kind).bind(rule.enabled)
                        .bind(&text).bind(now)
                        .execute(&mut *tx).await?;
                        out.updated.push(rule.id.clone());
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO alert_rules (tenant_id, id, name, kind, enabled, document, revision, created_ms, \
                               updated_ms) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
                        )
                        .bind(self.tenant).bind(&rule.id).bind(&rule.name).bind(&kind).bind(rule.enabled)
                        .bind(&text).bind(now)
                        .execute(&mut *tx).await?;
                        out.created.push(rule.id.clone());
                    }
                }
            }
            if mode == ImportMode::Replace {
                for id in stored.keys() {
                    if rules.iter().any(|(r, _)| &r.id == id) {
                        continue;
                    }
                    sqlx::query("DELETE FROM alert_rules WHERE tenant_id = $1 AND id = $2")
                        .bind(self.tenant).bind(id).execute(&mut *tx).await?;
                    out.deleted.push(id.clone());
                }
            }
            audit!(tx, self.tenant, actor, "import", RESOURCE, "", json!({ "mode": mode, "outcome": out }));
            tx.commit().await?;
        });
        Ok(out)
    }
}
