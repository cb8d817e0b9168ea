//! Credential sets: how agents log in to routers (RouterOS API, SNMP v2c, SNMP v3).
//!
//! Secrets are write-only: they are sealed under the master key before they reach the
//! database and no read path of the API returns them; a set shows only which secrets it
//! holds (`secret_fields`). [`TenantStore::credential_secret`] opens them for the code
//! that hands credentials to agents.

use super::{CatalogError, Page, PageRequest, like_pattern, stored, validate};
use crate::store::audit::{Actor, audit};
use crate::store::crypto::MasterKey;
use crate::store::{BeginWrite, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

ispvm_proto::text_enum! {
    /// How an agent logs in with a credential set.
    #[derive(utoipa::ToSchema)]
    pub enum CredentialKind {
        RouterOs = "routeros",
        SnmpV2c = "snmp_v2c",
        SnmpV3 = "snmp_v3",
    }
}

ispvm_proto::text_enum! {
    /// SNMPv3 authentication protocol.
    #[derive(utoipa::ToSchema)]
    pub enum AuthProtocol {
        Md5 = "md5",
        Sha1 = "sha1",
        Sha224 = "sha224",
        Sha256 = "sha256",
        Sha384 = "sha384",
        Sha512 = "sha512",
    }
}

ispvm_proto::text_enum! {
    /// SNMPv3 privacy protocol.
    #[derive(utoipa::ToSchema)]
    pub enum PrivProtocol {
        Des = "des",
        Aes128 = "aes128",
        Aes192 = "aes192",
        Aes256 = "aes256",
    }
}
/// Longest secret accepted.
const MAX_SECRET_LEN: usize = 256;

/// The non-secret part of a credential set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    pub name: String,
    pub kind: CredentialKind,
    /// RouterOS user or SNMPv3 security name; empty for SNMP v2c.
    #[serde(default)]
    pub username: String,
    /// SNMPv3 authentication protocol (with `auth_password`).
    #[serde(default)]
    pub auth_protocol: Option<AuthProtocol>,
    /// SNMPv3 privacy protocol (with `priv_password`).
    #[serde(default)]
    pub priv_protocol: Option<PrivProtocol>,
}

/// The secret part: which fields a kind needs is checked against the spec. Never
/// serialised toward clients; its `Debug` shows only which fields are set.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priv_password: Option<String>,
}

impl std::fmt::Debug for CredentialSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSecret({:?}, values redacted)", self.fields())
    }
}

impl CredentialSecret {
    /// Names of the fields that are set.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("password", &self.password),
            ("community", &self.community),
            ("auth_password", &self.auth_password),
            ("priv_password", &self.priv_password),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
    }

    fn validate(&self, kind: CredentialKind) -> Result<(), CatalogError> {
        for (name, value) in [
            ("password", &self.password),
            ("community", &self.community),
            ("auth_password", &self.auth_password),
            ("priv_password", &self.priv_password),
        ] {
            let Some(v) = value else { continue };
            let field = format!("secret.{name}");
            if v.is_empty() {
                return Err(CatalogError::invalid(field, "is empty"));
            }
            if v.len() > MAX_SECRET_LEN {
                return Err(CatalogError::invalid(
                    field,
                    format!("is over {MAX_SECRET_LEN} bytes"),
                ));
            }
            if v.chars().any(char::is_control) {
                return Err(CatalogError::invalid(field, "contains a control character"));
            }
            if kind == CredentialKind::SnmpV3 && v.len() < 8 {
                return Err(CatalogError::invalid(
                    field,
                    "SNMPv3 passwords are at least 8 characters",
                ));
            }
        }
        Ok(())
    }
}

impl CredentialSpec {
    /// Checks the fields against the secret fields the set holds (or will hold).
    pub fn validate(&self, secret_fields: &[&str]) -> Result<(), CatalogError> {
        validate::name("name", &self.name)?;
        validate::text("username", &self.username, validate::MAX_NAME_LEN)?;
        let has = |f: &str| secret_fields.contains(&f);
        let only = |allowed: &[&str]| -> Result<(), CatalogError> {
            match secret_fields.iter().find(|f| !allowed.contains(f)) {
                Some(f) => Err(CatalogError::invalid(
                    format!("secret.{f}"),
                    format!("does not belong to a {} credential set", self.kind),
                )),
                None => Ok(()),
            }
        };
        let no_protocols = || -> Result<(), CatalogError> {
            if self.auth_protocol.is_some() || self.priv_protocol.is_some() {
                return Err(CatalogError::invalid(
                    "auth_protocol",
                    "only SNMPv3 sets have protocols",
                ));
            }
            Ok(())
        };
        match self.kind {
            CredentialKind::RouterOs => {
                if self.username.is_empty() {
                    return Err(CatalogError::invalid("username", "is required"));
                }
                no_protocols()?;
                only(&["password"])?;
                if !has("password") {
                    return Err(CatalogError::invalid("secret.password", "is required"));
                }
            }
            CredentialKind::SnmpV2c => {
                if !self.username.is_empty() {
                    return Err(CatalogError::invalid(
                        "username",
                        "SNMP v2c has no user; leave it empty",
                    ));
                }
                no_protocols()?;
                only(&["community"])?;
                if !has("community") {
                    return Err(CatalogError::invalid("secret.community", "is required"));
                }
            }
            CredentialKind::SnmpV3 => {
                if self.username.is_empty() {
                    return Err(CatalogError::invalid("username", "is required"));
                }
                only(&["auth_password", "priv_password"])?;
                if self.auth_protocol.is_some() != has("auth_password") {
                    return Err(CatalogError::invalid(
                        "auth_protocol",
                        "auth_protocol and secret.auth_password go together",
                    ));
                }
                if self.priv_protocol.is_some() != has("priv_password") {
                    return Err(CatalogError::invalid(
                        "priv_protocol",
                        "priv_protocol and secret.priv_password go together",
                    ));
                }
                if self.priv_protocol.is_some() && self.auth_protocol.is_none() {
                    return Err(CatalogError::invalid(
                        "priv_protocol",
                        "SNMPv3 privacy needs authentication",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A credential set as the API shows it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CredentialSet {
    pub id: String,
    #[serde(flatten)]
    pub spec: CredentialSpec,
    pub has_secret: bool,
    pub secret_fields: Vec<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct CredentialRaw {
    id: String,
    name: String,
    kind: String,
    username: String,
    auth_protocol: Option<String>,
    priv_protocol: Option<String>,
    secret_fields: String,
    created_ms: i64,
    updated_ms: i64,
}

impl TryFrom<CredentialRaw> for CredentialSet {
    type Error = CatalogError;

    fn try_from(r: CredentialRaw) -> Result<Self, CatalogError> {
        let secret_fields: Vec<String> = r
            .secret_fields
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(CredentialSet {
            id: r.id,
            spec: CredentialSpec {
                name: r.name,
                kind: stored("kind", &r.kind)?,
                username: r.username,
                auth_protocol: r
                    .auth_protocol
                    .map(|p| stored("auth_protocol", &p))
                    .transpose()?,
                priv_protocol: r
                    .priv_protocol
                    .map(|p| stored("priv_protocol", &p))
                    .transpose()?,
            },
            has_secret: !secret_fields.is_empty(),
            secret_fields,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

const COLUMNS: &str =
    "id, name, kind, username, auth_protocol, priv_protocol, secret_fields, created_ms, updated_ms";
const RESOURCE: &str = "credential_set";

/// What binds a sealed secret to its row: tenant and credential id.
fn aad(tenant: &str, id: &str) -> Vec<u8> {
    format!("ispvm-credential-v1\0{tenant}\0{id}").into_bytes()
}

/// Seals a validated secret for storage.
fn seal(
    key: Option<&MasterKey>,
    tenant: &str,
    id: &str,
    secret: &CredentialSecret,
) -> Result<String, CatalogError> {
    let key = key.ok_or(CatalogError::NoMasterKey)?;
    let plain =
        serde_json::to_vec(secret).map_err(|e| CatalogError::invalid("secret", e.to_string()))?;
    Ok(key.seal(&aad(tenant, id), &plain)?)
}

impl TenantStore<'_> {
    pub async fn credentials_page(
        &self,
        kind: Option<CredentialKind>,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CredentialSet>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM credential_sets WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR kind = $3) \
             AND ($4 IS NULL OR LOWER(id) LIKE $4 ESCAPE '\\' OR LOWER(name) LIKE $4 ESCAPE '\\') \
             ORDER BY id LIMIT $5"
        );
        let rows: Vec<CredentialRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(kind.map(CredentialKind::as_str)).bind(pattern.as_deref())
                .bind(page.fetch())
                .fetch_all(pool).await?
        });
        Page::from_rows(rows, page.limit).try_map(CredentialSet::try_from)
    }

    pub async fn credential_set(&self, id: &str) -> Result<Option<CredentialSet>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM credential_sets WHERE tenant_id = $1 AND id = $2");
        let row: Option<CredentialRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(id).fetch_optional(pool).await?
        });
        row.map(CredentialSet::try_from).transpose()
    }

    /// The set with its secret opened: for handing credentials to agents, never to the
    /// API.
    pub async fn credential_secret(
        &self,
        key: &MasterKey,
        id: &str,
    ) -> Result<Option<(CredentialSet, CredentialSecret)>, CatalogError> {
        let Some(set) = self.credential_set(id).await? else {
            return Ok(None);
        };
        let sealed: String = on_pool!(self.store, pool => {
            sqlx::query_scalar("SELECT secret FROM credential_sets WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_one(pool).await?
        });
        let plain = key.open(&aad(self.tenant, id), &sealed)?;
        let secret = serde_json::from_slice(&plain)
            .map_err(|_| CatalogError::Seal(crate::store::crypto::SealError::Malformed))?;
        Ok(Some((set, secret)))
    }

    /// Creates a set; needs the master key to seal its secret.
    pub async fn create_credential_set(
        &self,
        actor: &Actor,
        key: Option<&MasterKey>,
        id: &str,
        spec: &CredentialSpec,
        secret: &CredentialSecret,
    ) -> Result<CredentialSet, CatalogError> {
        validate::id("id", id)?;
        secret.validate(spec.kind)?;
        let fields = secret.fields();
        spec.validate(&fields)?;
        let sealed = seal(key, self.tenant, id, secret)?;
        let now = ispvm_proto::time::now_ms();
        let fields_text = fields.join(",");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM credential_sets WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant).bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("credential set {id:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO credential_sets (tenant_id, id, name, kind, username, auth_protocol, priv_protocol, \
                   secret_fields, secret, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.kind.as_str()).bind(&spec.username)
            .bind(spec.auth_protocol.map(AuthProtocol::as_str)).bind(spec.priv_protocol.map(PrivProtocol::as_str)).bind(&fields_text)
            .bind(&sealed).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, id, json!({ "after": spec, "secret_fields": fields }));
            tx.commit().await?;
        });
        Ok(CredentialSet {
            id: id.to_owned(),
            spec: spec.clone(),
            has_secret: !fields.is_empty(),
            secret_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Changes a set. Without `secret` the stored one is kept (and must still fit the
    /// spec); with one, it replaces the stored secret entirely.
    pub async fn update_credential_set(
        &self,
        actor: &Actor,
        key: Option<&MasterKey>,
        id: &str,
        spec: &CredentialSpec,
        secret: Option<&CredentialSecret>,
    ) -> Result<CredentialSet, CatalogError> {
        let Some(before) = self.credential_set(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        let (fields, sealed): (Vec<String>, Option<String>) = match secret {
            Some(s) => {
                s.validate(spec.kind)?;
                let f: Vec<&str> = s.fields();
                spec.validate(&f)?;
                let sealed = seal(key, self.tenant, id, s)?;
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
        let now = ispvm_proto::time::now_ms();
        let fields_text = fields.join(",");
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
                "UPDATE credential_sets SET name = $3, kind = $4, username = $5, auth_protocol = $6, priv_protocol = $7, \
                   secret_fields = $8, secret = COALESCE($9, secret), updated_ms = $10 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant).bind(id).bind(&spec.name).bind(spec.kind.as_str()).bind(&spec.username)
            .bind(spec.auth_protocol.map(AuthProtocol::as_str)).bind(spec.priv_protocol.map(PrivProtocol::as_str)).bind(&fields_text)
            .bind(sealed.as_deref()).bind(now)
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, id));
            }
            audit!(tx, self.tenant, actor, "update", RESOURCE, id, json!({
                "before": before.spec, "after": spec, "secret_changed": sealed.is_some(), "secret_fields": fields,
            }));
            tx.commit().await?;
        });
        Ok(CredentialSet {
            spec: spec.clone(),
            has_secret: !fields.is_empty(),
            secret_fields: fields,
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a set no device uses.
    pub async fn delete_credential_set(&self, actor: &Actor, id: &str) -> Result<(), CatalogError> {
        let Some(before) = self.credential_set(id).await? else {
            return Err(CatalogError::not_found(RESOURCE, id));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND credential_set_id = $2")
                .bind(self.tenant).bind(id).fetch_one(&mut *tx).await?;
            if users > 0 {
                return Err(CatalogError::Conflict(format!(
                    "credential set {id:?} is used by {users} devices; change them first"
                )));
            }
            let deleted = sqlx::query("DELETE FROM credential_sets WHERE tenant_id = $1 AND id = $2")
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
