//! Authentication and authorisation: local users with argon2id passwords, opaque bearer
//! tokens stored as their SHA-256, three roles, and the layer every route passes.
//!
//! A login failure answers 401 whatever went wrong (unknown tenant, unknown user, wrong
//! password, disabled or locked account), after the same argon2 work, so the answer
//! does not tell which accounts exist; the reason goes to the audit log. Each client
//! address has a login budget per minute, and failures in a row lock an account for a
//! while.

use super::AppState;
use super::common::ErrorCode;
use super::common::{ApiError, ClientAddr, JsonObject, no_content};
use crate::config::AuthConfig;
use crate::store::users::{LockoutPolicy, Role, SessionUser, validate_password};
use crate::store::{Actor, TenantStore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ispvm_proto::time::now_ms;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, metrics, the OpenAPI document, login.
    Public,
    /// A logged-in user with at least this role.
    Role(Role),
    /// A logged-in administrator with the platform-admin flag (tenant management).
    Platform,
}

impl Access {
    pub const READ: Access = Access::Role(Role::ReadOnly);
    pub const NOC: Access = Access::Role(Role::Noc);
    pub const ADMIN: Access = Access::Role(Role::Admin);

    /// For the OpenAPI document.
    pub fn describe(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Role(Role::ReadOnly) => "read_only",
            Access::Role(Role::Noc) => "noc",
            Access::Role(Role::Admin) => "admin",
            Access::Platform => "platform_admin",
        }
    }

    fn allows(self, user: &SessionUser) -> bool {
        match self {
            Access::Public => true,
            Access::Role(min) => user.role >= min,
            Access::Platform => user.platform_admin && user.role == Role::Admin,
        }
    }
}

/// Settings of authentication that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("[auth] argon2 parameters: {0}")]
    Params(String),
    #[error("cannot hash a password: {0}")]
    Hash(String),
}

/// The authenticated caller of a request, put in its extensions by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub username: String,
    pub role: Role,
    pub platform_admin: bool,
    pub expires_ms: i64,
    /// Client address, for the audit log.
    pub remote: String,
    /// SHA-256 of the bearer token (logout ends this session).
    pub token_hash: String,
}

impl Principal {
    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        Actor {
            username: self.username.clone(),
            remote: self.remote.clone(),
        }
    }

    /// The caller's tenant: the only data it can reach.
    pub fn tenant_store<'a>(&'a self, store: &'a crate::store::Store) -> TenantStore<'a> {
        store.tenant(&self.tenant)
    }
}

/// Password hashing, session lifetime and login throttling.
pub struct Auth {
    params: Params,
    session_ttl_ms: i64,
    lockout: LockoutPolicy,
    per_minute: u32,
    /// Login attempts per client address in the current minute.
    attempts: Mutex<HashMap<IpAddr, (i64, u32)>>,
    /// Verified when the user does not exist, so that case costs the same time.
    dummy_hash: String,
    /// Bounds the argon2 work running at once, whatever the number of requests: each
    /// hash takes `argon2_memory_kib` and a core for a while, so unbounded logins would
    /// exhaust the server's memory and starve ingest.
    work: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Past this many tracked addresses, stale entries are dropped.
const MAX_TRACKED: usize = 10_000;
const MINUTE_MS: i64 = 60_000;

fn params(cfg: &AuthConfig) -> Result<Params, AuthSetupError> {
    Params::new(
        cfg.argon2_memory_kib,
        cfg.argon2_iterations,
        cfg.argon2_parallelism,
        None,
    )
    .map_err(|e| AuthSetupError::Params(e.to_string()))
}

fn hash_with(params: &Params, password: &str) -> Result<String, AuthSetupError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthSetupError::Hash(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthSetupError::Hash(e.to_string()))
}

/// An argon2id PHC string of `password` with the cost `cfg` sets (bootstrap, tests).
pub fn hash_password(password: &str, cfg: &AuthConfig) -> Result<String, AuthSetupError> {
    hash_with(&params(cfg)?, password)
}

/// Whether `password` matches the PHC string `hash` (with the cost stored in it).
fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new bearer token and the SHA-256 (hex) the server keeps of it.
fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    pub fn new(cfg: &AuthConfig) -> Result<Self, AuthSetupError> {
        let params = params(cfg)?;
        let mut filler = [0u8; 16];
        rand::rng().fill_bytes(&mut filler);
        let dummy_hash = hash_with(&params, &hex::encode(filler))?;
        Ok(Auth {
            params,
            session_ttl_ms: i64::try_from(cfg.session_ttl_s.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            lockout: LockoutPolicy {
                after_failures: cfg.lockout_after_failures,
                lock_ms: i64::try_from(cfg.lockout_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            },
            per_minute: cfg.login_attempts_per_minute,
            attempts: Mutex::new(HashMap::new()),
            dummy_hash,
            work: std::sync::Arc::new(tokio::sync::Semaphore::new(
                cfg.argon2_max_concurrent.max(1),
            )),
        })
    }

    /// Hashes a new password off the async runtime (argon2 is deliberately slow).
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let params = self.params.clone();
        let password = password.to_owned();
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_with(&params, &password)
        })
        .await
        .map_err(|_| ApiError::unavailable())?
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::unavailable()
        })
    }

    async fn verify(&self, hash: Option<String>, password: &str) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_owned();
        let Ok(permit) = self.permit().await else {
            return false;
        };
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify(&hash, &password)
        })
        .await
        .unwrap_or(false);
        known && ok
    }

    /// A slot for one argon2 computation.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        std::sync::Arc::clone(&self.work)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable())
    }

    /// Counts a login attempt from `ip`; `Err(seconds)` when its budget is spent.
    fn admit(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let Ok(mut map) = self.attempts.lock() else {
            return Ok(());
        };
        if map.len() > MAX_TRACKED {
            map.retain(|_, (start, _)| now - *start < MINUTE_MS);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now - entry.0 >= MINUTE_MS {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let wait_ms = MINUTE_MS - (now - entry.0);
            return Err(u64::try_from(wait_ms / 1000 + 1).unwrap_or(60));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The bearer token of a request, if well-formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// The layer in front of every route: resolves the bearer token to a user, checks the
/// route's [`Access`], and hands the handler a [`Principal`].
pub(super) async fn authorize(
    State((state, access, feeds_domain)): State<(AppState, Access, bool)>,
    ClientAddr(addr): ClientAddr,
    mut req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let Some(token) = bearer(req.headers()) else {
        return ApiError::unauthorized().into_response();
    };
    let hash = token_hash(token);
    let user = match state.store.session_user(&hash, now_ms()).await {
        Ok(Some(u)) => u,
        Ok(None) => return ApiError::unauthorized().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !access.allows(&user) {
        return ApiError::forbidden(format!(
            "this needs the {} role; you are {}",
            access.describe(),
            user.role.as_str()
        ))
        .into_response();
    }
    let tenant = user.tenant.clone();
    req.extensions_mut().insert(Principal {
        tenant: user.tenant,
        username: user.username,
        role: user.role,
        platform_admin: user.platform_admin,
        expires_ms: user.expires_ms,
        remote: addr.map(|a| a.to_string()).unwrap_or_default(),
        token_hash: hash,
    });
    let changes = feeds_domain && req.method() != axum::http::Method::GET;
    let response = next.run(req).await;
    // A change to rules, inventory or maintenance reaches the alert engine at once.
    if changes
        && response.status().is_success()
        && let Some(tree) = &state.tree
    {
        tree.reload(&tenant);
    }
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    tenant: String,
    username: String,
    password: String,
}

/// The answer to a client over its budget of password attempts.
fn too_many_attempts(wait_s: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyAttempts,
        "too many password attempts from this address; wait and retry",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait_s.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "invalid tenant, username or password",
    )
}

/// `POST /api/v1/auth/login`.
pub(super) async fn login(
    State(s): State<AppState>,
    addr: ClientAddr,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let ip = addr
        .0
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait_s) = s.auth.admit(ip, now) {
        return Ok(too_many_attempts(wait_s));
    }
    let req: LoginRequest = body.parse()?;
    // Malformed names cannot belong to anyone; they still cost a verification.
    let plausible = crate::store::catalog::validate::id("tenant", &req.tenant).is_ok()
        && crate::store::users::validate_username(&req.username).is_ok()
        && req.password.len() <= crate::store::users::MAX_PASSWORD_LEN;
    let ts = s.store.tenant(&req.tenant);
    let tenant_exists = plausible && ts.exists().await?;
    let record = if tenant_exists {
        ts.login_record(&req.username).await?
    } else {
        None
    };
    let password = if plausible { req.password.as_str() } else { "" };
    let verified = s
        .auth
        .verify(record.as_ref().map(|r| r.password_hash.clone()), password)
        .await;
    let actor = Actor {
        username: req.username.chars().take(64).collect(),
        remote: addr.text(),
    };
    let failure = match &record {
        None => Some("unknown_user"),
        Some(r) if r.disabled => Some("disabled"),
        Some(r) if r.locked_until_ms > now => Some("locked"),
        Some(_) if !verified => Some("bad_password"),
        Some(_) => None,
    };
    if let Some(reason) = failure {
        if tenant_exists {
            // Attempts on a locked account are audited but do not count towards a new
            // lock: otherwise a few requests an hour would keep anyone locked out.
            let counts = reason != "locked";
            ts.login_failed(&actor, reason, s.auth.lockout, counts)
                .await?;
        }
        tracing::info!(tenant = %req.tenant.chars().take(64).collect::<String>(), user = %actor.username, reason, remote = %actor.remote, "login failed");
        return Err(invalid_credentials());
    }
    // Expired sessions go when new ones come, so the table stays the size of the
    // sessions in use.
    if let Err(e) = s.store.purge_sessions(now).await {
        tracing::warn!(error = %e, "purging expired sessions failed");
    }
    let (token, hash) = new_token();
    let expires_ms = now.saturating_add(s.auth.session_ttl_ms);
    ts.login_succeeded(&actor, &hash, expires_ms).await?;
    let user = ts.user(&req.username).await?;
    let (role, platform_admin) = user
        .map(|u| (u.spec.role, u.platform_admin))
        .unwrap_or((Role::ReadOnly, false));
    Ok(Json(LoginResponse {
        token,
        token_type: "Bearer",
        expires_ms,
        tenant: req.tenant,
        username: req.username,
        role,
        platform_admin,
    })
    .into_response())
}

/// A successful login.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// When the token stops working, Unix ms.
    expires_ms: i64,
    tenant: String,
    username: String,
    role: Role,
    platform_admin: bool,
}

/// Who the token belongs to.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    tenant: String,
    username: String,
    display_name: String,
    role: Role,
    platform_admin: bool,
    /// When the token stops working, Unix ms.
    expires_ms: i64,
}

/// `POST /api/v1/auth/logout`: ends the session of the token used.
pub(super) async fn logout(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    s.store.end_session(&p.token_hash, &p.actor()).await?;
    Ok(no_content())
}

/// `GET /api/v1/auth/me`.
pub(super) async fn me(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let display_name = p
        .tenant_store(&s.store)
        .user(&p.username)
        .await?
        .map(|u| u.spec.display_name)
        .unwrap_or_default();
    Ok(Json(Me {
        tenant: p.tenant,
        username: p.username,
        display_name,
        role: p.role,
        platform_admin: p.platform_admin,
        expires_ms: p.expires_ms,
    })
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: a user changes its own password; every session of the
/// user ends, this one included.
pub(super) async fn change_password(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    addr: ClientAddr,
    body: JsonObject,
) -> Result<Response, ApiError> {
    // Each attempt verifies the current password: the same budget as logins, so a
    // stolen session cannot guess the password at argon2's expense.
    let ip = addr
        .0
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait_s) = s.auth.admit(ip, now_ms()) {
        return Ok(too_many_attempts(wait_s));
    }
    let req: PasswordChange = body.parse()?;
    validate_password(&req.new_password)?;
    let ts = p.tenant_store(&s.store);
    let record = ts.login_record(&p.username).await?;
    let current_ok = req.current_password.len() <= crate::store::users::MAX_PASSWORD_LEN
        && s.auth
            .verify(record.map(|r| r.password_hash), &req.current_password)
            .await;
    if !current_ok {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    let Some(user) = ts.user(&p.username).await? else {
        return Err(ApiError::unauthorized());
    };
    let hash = s.auth.hash(&req.new_password).await?;
    ts.update_user(&p.actor(), &p.username, &user.spec, Some(&hash))
        .await?;
    Ok(no_content())
}
