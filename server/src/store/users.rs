//! Local users, their roles and their bearer sessions.
//!
//! Passwords arrive here already hashed (argon2id, see `http::auth`); sessions are
//! stored as the SHA-256 of their token, so a copy of the database holds no usable
//! credential. A user belongs to one tenant; the session lookup is the one query that
//! is not tenant-scoped, because it is how the tenant of a request is learned.

use super::audit::{Actor, audit};
use super::catalog::{CatalogError, Page, PageRequest, like_pattern, validate};
use super::{BeginWrite, Store, TenantStore, on_pool};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (argon2 hashes anything, but a megabyte "password" is an
/// attempt to burn CPU).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest username.
pub const MAX_USERNAME_LEN: usize = 64;

/// What a user may do; each role includes the ones below it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything but users, the audit log and secrets.
    #[serde(alias = "read-only")]
    ReadOnly,
    /// Operational writes: sites, devices, interfaces, links, edges, services,
    /// maintenance windows.
    Noc,
    /// Everything in the tenant: users, credential sets, polling profiles, alert rules,
    /// the audit log.
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read_only",
            Role::Noc => "noc",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "read_only" | "read-only" => Some(Role::ReadOnly),
            "noc" => Some(Role::Noc),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What an administrator sets on a user (besides the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub role: Role,
    #[serde(default)]
    pub display_name: String,
    /// A disabled user cannot log in and loses its sessions.
    #[serde(default)]
    pub disabled: bool,
}

impl UserSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::text("display_name", &self.display_name, validate::MAX_NAME_LEN)
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub username: String,
    #[serde(flatten)]
    pub spec: UserSpec,
    /// May create and rename tenants (set at bootstrap, not through the API).
    pub platform_admin: bool,
    pub last_login_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(sqlx::FromRow)]
struct UserRaw {
    username: String,
    display_name: String,
    role: String,
    platform_admin: bool,
    disabled: bool,
    last_login_ms: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
}

impl From<UserRaw> for User {
    fn from(r: UserRaw) -> Self {
        User {
            username: r.username,
            spec: UserSpec {
                // Written by this module from a Role; an unknown value is least trusted.
                role: Role::parse(&r.role).unwrap_or(Role::ReadOnly),
                display_name: r.display_name,
                disabled: r.disabled,
            },
            platform_admin: r.platform_admin,
            last_login_ms: r.last_login_ms,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        }
    }
}

/// What a login needs to know about a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRecord {
    pub password_hash: String,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until_ms: i64,
}

/// The user behind a valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub tenant: String,
    pub username: String,
    pub role: Role,
    pub platform_admin: bool,
    pub expires_ms: i64,
}

/// When repeated failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub after_failures: u32,
    pub lock_ms: i64,
}

const COLUMNS: &str =
    "username, display_name, role, platform_admin, disabled, last_login_ms, created_ms, updated_ms";
const RESOURCE: &str = "user";

/// Usernames follow the id rules, shorter.
pub fn validate_username(username: &str) -> Result<(), CatalogError> {
    validate::id("username", username)?;
    if username.len() > MAX_USERNAME_LEN {
        return Err(CatalogError::invalid(
            "username",
            format!("is over {MAX_USERNAME_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Password rules: long enough to resist guessing, short enough to hash cheaply.
pub fn validate_password(password: &str) -> Result<(), CatalogError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(CatalogError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(CatalogError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

impl Store {
    /// The user of an unexpired session whose token hashes to `token_hash`; `None` for
    /// an unknown or expired token or a disabled user.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionUser>, CatalogError> {
        let row: Option<(String, String, String, bool, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT s.tenant_id, s.username, u.role, u.platform_admin, s.expires_ms FROM sessions s \
                 JOIN users u ON u.tenant_id = s.tenant_id AND u.username = s.username \
                 WHERE s.token_hash = $1 AND s.expires_ms > $2 AND NOT u.disabled",
            )
            .bind(token_hash).bind(now_ms).fetch_optional(pool).await?
        });
        Ok(row.map(
            |(tenant, username, role, platform_admin, expires_ms)| SessionUser {
                tenant,
                username,
                role: Role::parse(&role).unwrap_or(Role::ReadOnly),
                platform_admin,
                expires_ms,
            },
        ))
    }

    /// Ends the session of `token_hash`; returns whether there was one.
    pub async fn end_session(&self, token_hash: &str, actor: &Actor) -> Result<bool, CatalogError> {
        let ended = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let owner: Option<(String, String)> = sqlx::query_as(
                "DELETE FROM sessions WHERE token_hash = $1 RETURNING tenant_id, username",
            )
            .bind(token_hash).fetch_optional(&mut *tx).await?;
            if let Some((tenant, username)) = &owner {
                audit!(tx, tenant.as_str(), actor, "logout", "session", username.as_str(), json!({}));
            }
            tx.commit().await?;
            owner.is_some()
        });
        Ok(ended)
    }

    /// Drops expired sessions.
    pub async fn purge_sessions(&self, now_ms: i64) -> Result<u64, CatalogError> {
        Ok(on_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
                .bind(now_ms).execute(pool).await?.rows_affected()
        }))
    }

    /// Whether any platform administrator exists (else the server bootstraps one).
    pub async fn has_platform_admin(&self) -> Result<bool, CatalogError> {
        let n: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE platform_admin")
                .fetch_one(pool).await?
        });
        Ok(n > 0)
    }
}

/// Refuses a change that would leave the tenant without an enabled administrator;
/// inside the transaction `$tx`.
macro_rules! keep_an_admin {
    ($tx:ident, $tenant:expr, $username:expr) => {{
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND username <> $2 AND role = 'admin' AND NOT disabled",
        )
        .bind($tenant).bind($username).fetch_one(&mut *$tx).await?;
        if others == 0 {
            return Err(CatalogError::Conflict(
                "this is the tenant's last enabled administrator; make another one first".into(),
            ));
        }
    }};
}

impl TenantStore<'_> {
    pub async fn users_page(
        &self,
        role: Option<Role>,
        q: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<User>, CatalogError> {
        let pattern = q.map(like_pattern);
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND ($2 IS NULL OR username > $2) \
             AND ($3 IS NULL OR role = $3) \
             AND ($4 IS NULL OR LOWER(username) LIKE $4 ESCAPE '\\' OR LOWER(display_name) LIKE $4 ESCAPE '\\') \
             ORDER BY username LIMIT $5"
        );
        let rows: Vec<UserRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql)
                .bind(self.tenant).bind(page.after.as_deref()).bind(role.map(Role::as_str))
                .bind(pattern.as_deref()).bind(page.fetch())
                .fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, page.limit).map(User::from))
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND username = $2");
        let row: Option<UserRaw> = on_pool!(self.store, pool => {
            sqlx::query_as(&sql).bind(self.tenant).bind(username).fetch_optional(pool).await?
        });
        Ok(row.map(User::from))
    }

    /// Creates a user with an already-hashed password.
    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        spec: &UserSpec,
        password_hash: &str,
        platform_admin: bool,
    ) -> Result<User, CatalogError> {
        validate_username(username)?;
        spec.validate()?;
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM users WHERE tenant_id = $1 AND username = $2")
                .bind(self.tenant).bind(username).fetch_optional(&mut *tx).await?;
            if exists.is_some() {
                return Err(CatalogError::Conflict(format!("user {username:?} already exists")));
            }
            sqlx::query(
                "INSERT INTO users (tenant_id, username, display_name, role, password_hash, platform_admin, disabled, \
                   created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(self.tenant).bind(username).bind(&spec.display_name).bind(spec.role.as_str())
            .bind(password_hash).bind(platform_admin).bind(spec.disabled).bind(now)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "create", RESOURCE, username, json!({ "after": spec, "platform_admin": platform_admin }));
            tx.commit().await?;
        });
        Ok(User {
            username: username.to_owned(),
            spec: spec.clone(),
            platform_admin,
            last_login_ms: None,
            created_ms: now,
            updated_ms: now,
        })
    }

    /// Changes a user; a new password or disabling ends the user's sessions.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        spec: &UserSpec,
        password_hash: Option<&str>,
    ) -> Result<User, CatalogError> {
        spec.validate()?;
        let Some(before) = self.user(username).await? else {
            return Err(CatalogError::not_found(RESOURCE, username));
        };
        let now = ispvm_proto::time::now_ms();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            if before.spec.role == Role::Admin && !before.spec.disabled && (spec.role != Role::Admin || spec.disabled) {
                keep_an_admin!(tx, self.tenant, username);
            }
            let changed = sqlx::query(
                "UPDATE users SET display_name = $3, role = $4, disabled = $5, \
                   password_hash = COALESCE($6, password_hash), updated_ms = $7 WHERE tenant_id = $1 AND username = $2",
            )
            .bind(self.tenant).bind(username).bind(&spec.display_name).bind(spec.role.as_str())
            .bind(spec.disabled).bind(password_hash).bind(now)
            .execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                return Err(CatalogError::not_found(RESOURCE, username));
            }
            if password_hash.is_some() || spec.disabled {
                sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND username = $2")
                    .bind(self.tenant).bind(username).execute(&mut *tx).await?;
            }
            audit!(tx, self.tenant, actor, "update", RESOURCE, username, json!({
                "before": before.spec, "after": spec, "password_changed": password_hash.is_some(),
            }));
            tx.commit().await?;
        });
        Ok(User {
            spec: spec.clone(),
            updated_ms: now,
            ..before
        })
    }

    /// Deletes a user and its sessions (never the tenant's last administrator).
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<(), CatalogError> {
        let Some(before) = self.user(username).await? else {
            return Err(CatalogError::not_found(RESOURCE, username));
        };
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            if before.spec.role == Role::Admin && !before.spec.disabled {
                keep_an_admin!(tx, self.tenant, username);
            }
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND username = $2")
                .bind(self.tenant).bind(username).execute(&mut *tx).await?;
            let deleted = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND username = $2")
                .bind(self.tenant).bind(username).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(CatalogError::not_found(RESOURCE, username));
            }
            audit!(tx, self.tenant, actor, "delete", RESOURCE, username, json!({ "before": before.spec }));
            tx.commit().await?;
        });
        Ok(())
    }

    /// The password hash and lock state of a user, for a login.
    pub async fn login_record(&self, username: &str) -> Result<Option<LoginRecord>, CatalogError> {
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as(
                "SELECT password_hash, disabled, failed_logins, locked_until_ms FROM users \
                 WHERE tenant_id = $1 AND username = $2",
            )
            .bind(self.tenant).bind(username).fetch_optional(pool).await?
        }))
    }

    /// Records a successful login: clears the failure count, stores the session.
    pub async fn login_succeeded(
        &self,
        actor: &Actor,
        token_hash: &str,
        expires_ms: i64,
    ) -> Result<(), CatalogError> {
        let now = ispvm_proto::time::now_ms();
        let username = actor.username.as_str();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE users SET failed_logins = 0, locked_until_ms = 0, last_login_ms = $3 \
                 WHERE tenant_id = $1 AND username = $2",
            )
            .bind(self.tenant).bind(username).bind(now).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, tenant_id, username, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash).bind(self.tenant).bind(username).bind(now).bind(expires_ms)
            .execute(&mut *tx).await?;
            audit!(tx, self.tenant, actor, "login", "session", username, json!({ "expires_ms": expires_ms }));
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a failed login (`reason` is for the audit log only, never the client) and
    /// locks the account after too many failures in a row.
    pub async fn login_failed(
        &self,
        actor: &Actor,
        reason: &str,
        policy: LockoutPolicy,
        counts: bool,
    ) -> Result<(), CatalogError> {
        let now = ispvm_proto::time::now_ms();
        let username = actor.username.as_str();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin_write().await?;
            let failed: Option<i64> = if !counts { None } else { sqlx::query_scalar(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE tenant_id = $1 AND username = $2 \
                 RETURNING failed_logins",
            )
            .bind(self.tenant).bind(username).fetch_optional(&mut *tx).await? };
            let mut locked = false;
            if let Some(n) = failed
                && policy.after_failures > 0
                && n >= i64::from(policy.after_failures)
            {
                sqlx::query(
                    "UPDATE users SET failed_logins = 0, locked_until_ms = $3 WHERE tenant_id = $1 AND username = $2",
                )
                .bind(self.tenant).bind(username).bind(now.saturating_add(policy.lock_ms))
                .execute(&mut *tx).await?;
                locked = true;
            }
            audit!(tx, self.tenant, actor, "login_failed", "session", username, json!({ "reason": reason, "locked": locked }));
            tx.commit().await?;
        });
        Ok(())
    }
}
