//! Notification channels as stored: the spec as JSON, the secret sealed under the master
//! key (bound to tenant and channel id), audited like every catalog write. No read path
//! of the API returns the secret; [`TenantStore::channel_secret`] opens it for the
//! notifier alone.

use super::{CatalogError, Page, PageRequest, like_pattern, stored, validate};
use crate::notify::channel::{ChannelKind, ChannelSecret, ChannelSpec};
use crate::store::audit::{Actor, audit};
use crate::store::crypto::{MasterKey, SealError};
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::Serialize;
use serde_json::json;

/// A channel as the API shows it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = NotificationChannel)]
pub struct Channel {
    pub id: String,
    #[serde(flatten)]
    pub spec: ChannelSpec,
    pub secret_fields: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ChannelRaw {
    id: String,
    kind: String,
    spec: String,
    secret_fields: String,
    created_ms: i64,
    updated_ms: i64,
}

impl TryFrom<ChannelRaw> for Channel {
    type Error = CatalogError;

    fn try_from(r: ChannelRaw) -> Result<Self, CatalogError> {
        let _: ChannelKind = stored("kind", &r.kind)?;
        let spec: ChannelSpec = serde_json::from_str(&r.spec).map_err(|source| {
            CatalogError::Store(crate::store::StoreError::Document {
                what: "notification channel",
                source,
            })
        })?;
        Ok(Channel {
            id: r.id,
            spec,
            secret_fields: r
                .secret_fields
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

const COLUMNS: &str = "id, kind, spec, secret_fields, created_ms, updated_ms";
const RESOURCE: &str = "notification_channel";

/// What binds a sealed channel secret to its row: tenant and channel id.
fn aad(tenant: &str, id: &str) -> Vec<u8> {
    format!("ispvm-channel-v1\0{tenant}\0{id}").into_bytes()
}

fn seal(
    key: Option<&MasterKey>,
    tenant: &str,
    id: &str,
    secret: &ChannelSecret,
) -> Result<String, CatalogError> {
    let key = key.ok_or(CatalogError::NoMasterKey)?;
    let plain =
        serde_json::to_vec(secret).map_err(|e| CatalogError::invalid("secret", e.to_string()))?;
    Ok(key.seal(&aad(tenant, id), &plain)?)
}

fn spec_text(spec: &ChannelSpec) -> Result<String, CatalogError> {
    serde_json::to_string(spec).map_err(|e| CatalogError::invalid("body", e.to_string()))
}

impl TenantStore<'_> {
    pub async fn channels_page(
        &self,
        kind: Option<ChannelKind>,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Channel>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM notification_channels WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR kind = $3) \
             AND ($4 IS NULL OR LOWER(id) LIKE $4 ESCAPE '\\' OR LOWER(name) LIKE $4 ESCAPE '\\') \
             ORDER BY id LIMIT $5"
        );
        let rows: Vec<ChannelRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(kind.map(ChannelKind::as_str))
                .bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Page::from_rows(rows, page.limit).try_map(Channel::try_from)
    }

    /// Every channel of the tenant, in id order (the notifier fans out to them).
    pub async fn channels(&self) -> Result<Vec<Channel>, CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM notification_channels WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<ChannelRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).fetch_all(pool).await?
        });
        rows.into_iter().map(Channel::try_from).collect()
    }

    pub async fn channel(&self, id: &str) -> Result<Option<Channel>, CatalogError> {
        let sql =
            format!("SELECT {COLUMNS} FROM notification_channels WHERE tenant_id = $1 AND id = $2");
        let row: Option<ChannelRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        row.map(Channel::try_from).transpose()
    }

    /// The channel with its secret opened: for the notifier, never the API.
    pub async fn channel_secret(
        &self,
        key: Option<&MasterKey>,
        id: &str,
    ) -> Result<Option<(Channel, ChannelSecret)>, CatalogError> {
        let Some(channel) = self.channel(id).await? else {
            return Ok(None);
        };
        let sealed: Option<String> = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT secret FROM notification_channels WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_one(pool).await?
        });
        let secret = match sealed {
            None => ChannelSecret::default(),
            Some(sealed) => {
                let key = key.ok_or(CatalogError::NoMasterKey)?;
                let plain = key.open(&aad(self.tenant, id), &sealed)?;
                serde_json::from_slice(&plain)
                    .map_err(|_| CatalogError::Seal(SealError::Malformed))?
            }
        };
        Ok(Some((channel, secret)))
    }

    /// Creates a channel; a secret needs the master key to be sealed.
    pub async fn create_channel(
        &self,
        actor: &Actor,
        key: Option<&MasterKey>,
        id: &str,
        spec: &ChannelSpec,
        secret: &ChannelSecret,
    ) -> Result<Channel, CatalogError> {
        validate::id("id", id)?;
        secret.validate()?;
        let fields = secret.fields();
        spec.validate(&fields)?;
        let sealed = if fields.is_empty() {
            None
        } else {
            Some(seal(key, self.tenant, id, secret)?)
        };
        let text = spec_text(spec)?;
        let now = ispvm_proto::time::now_ms();
        let fields_text = fields.join(",");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM notification_channels WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("notification channel {id:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO notification_channels (tenant_id, id, name, kind, spec, secret_fields, secret, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.kind.as_str()).bind(&text)
            .bind(&fields_text).bind(sealed.as_deref()).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec, "secret_fields": fields }));
            tx.commit().await?;
        });
        Ok(Channel {
            id: id.to_owned(),
            spec: spec.clone(),
            secret_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Changes a channel. Without `secret` the stored one is kept (and must still fit the
    /// spec); with one, it replaces the stored secret entirely.
    pub async fn update_channel(
        &self,
        actor: &Actor,
        key: Option<&MasterKey>,
        id: &str,
        spec: &ChannelSpec,
        secret: Option<&ChannelSecret>,
    ) -> Result<Channel, CatalogError> {
        let Some(before) = self.channel(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        let (fields, sealed): (Vec<String>, Option<Option<String>>) = match secret {
            Some(s) => {
                s.validate()?;
                let f = s.fields();
                spec.validate(&f)?;
                let sealed = if f.is_empty() {
                    None
                } else {
                    Some(seal(key, self.tenant, id, s)?)
                };
                (f.into_iter().map(str::to_owned).collect(), Some(sealed))
            }
            None => {
                let f: Vec<&str> = before.secret_fields.iter().map(String::as_str).collect();
                spec.validate(&f).map_err(|e| match e {
                    CatalogError::Invalid { field, reason } => CatalogError::Invalid {
                        field,
                        reason: format!("{reason} (the stored secret does not fit the change; send a new `secret`)"),
                    },
                    other => other,
                })?;
                (before.secret_fields.clone(), None)
            }
        };
        let text = spec_text(spec)?;
        let now = ispvm_proto::time::now_ms();
        let fields_text = fields.join(",");
        let replace = sealed.is_some();
        let new_secret = sealed.flatten();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE notification_channels SET name = $3, kind = $4, spec = $5, secret_fields = $6, \
                   secret = CASE WHEN $7 THEN $8 ELSE secret END, updated_ms = $9 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.kind.as_str()).bind(&text)
            .bind(&fields_text).bind(replace).bind(new_secret.as_deref()).bind(now)
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({
                "before": before.spec, "after": spec, "secret_changed": replace, "secret_fields": fields,
            }));
            tx.commit().await?;
        });
        Ok(Channel {
            spec: spec.clone(),
            secret_fields: fields,
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a channel; its deliveries stay as history.
    pub async fn delete_channel(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let Some(before) = self.channel(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM notification_channels WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "delete", RESOURCE, id, json!({ "before": before.spec }));
            tx.commit().await?;
        });
        Ok(())
    }
}
