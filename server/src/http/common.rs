//! What every handler shares: JSON errors, bodies, query parameters, cursors and
//! merge-patch.

use crate::store::{CatalogError, Page, PageRequest, StoreError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;

ispvm_proto::text_enum! {
    /// What went wrong, for programs (the message says it for people).
    #[derive(utoipa::ToSchema)]
    pub enum ErrorCode {
        BadRequest = "bad_request",
        Conflict = "conflict",
        Forbidden = "forbidden",
        Invalid = "invalid",
        NoMasterKey = "no_master_key",
        NotFound = "not_found",
        QuotaExceeded = "quota_exceeded",
        SecretUnreadable = "secret_unreadable",
        StoreUnavailable = "store_unavailable",
        TooLarge = "too_large",
        TooManyAttempts = "too_many_attempts",
        Unauthorized = "unauthorized",
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    pub code: ErrorCode,
    /// The offending input field, for `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An API failure: a status and a JSON body [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::Invalid,
                message,
            )
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, what)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid bearer token is required (POST /api/v1/auth/login)",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable,
            "the store is unavailable",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code,
            field: self.field,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ispvm\""),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "API query failed");
        ApiError::unavailable()
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid { field, reason } => {
                let message = format!("{field}: {reason}");
                ApiError::invalid(field, message)
            }
            CatalogError::NotFound { .. } => ApiError::not_found(e.to_string()),
            CatalogError::Conflict(m) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, m)
            }
            CatalogError::QuotaExceeded { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::QuotaExceeded,
                e.to_string(),
            ),
            CatalogError::NoMasterKey => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NoMasterKey,
                e.to_string(),
            ),
            CatalogError::Seal(s) => {
                tracing::error!(error = %s, "a credential secret does not open");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::SecretUnreadable,
                    "a stored credential secret does not open with this server's master key",
                )
            }
            CatalogError::Store(s) => s.into(),
        }
    }
}

/// The request body as JSON. Refuses bodies over the route's limit (413) and non-JSON
/// (400) with a JSON error.
pub struct JsonValue(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::TooLarge,
                    "the request body is over this route's limit",
                )
            } else {
                ApiError::bad_request(e.body_text())
            }
        })?;
        serde_json::from_slice::<Value>(&bytes)
            .map(JsonValue)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
    }
}

/// The request body as a JSON object (422 for other JSON).
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match JsonValue::from_request(req, state).await?.0 {
            Value::Object(map) => Ok(JsonObject(map)),
            _ => Err(ApiError::invalid("body", "the body must be a JSON object")),
        }
    }
}

impl JsonObject {
    /// The object as `T` (unknown fields are refused by `T`).
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        parse_value(Value::Object(self.0))
    }

    /// Removes the members `keys` (those that are present) into an object of their own,
    /// for the fields a body carries beside a spec (a new row's key, a secret).
    pub fn split_off(&mut self, keys: &[&str]) -> JsonObject {
        JsonObject(
            keys.iter()
                .filter_map(|k| self.0.remove(*k).map(|v| ((*k).to_owned(), v)))
                .collect(),
        )
    }

    /// Removes and returns a string member.
    pub fn take_str(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(key, format!("{key}: must be a string"))),
        }
    }
}

/// Reads a JSON value as `T`; a value that does not fit is a 422 naming the field
/// (`role`, `from.kind`), so a caller knows which one to fix.
pub fn parse_value<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(field, e.into_inner().to_string())
    })
}

/// The id of a new row: the body's `id`, or a fresh UUID when it has none.
pub fn take_new_id(body: &mut JsonObject) -> Result<String, ApiError> {
    Ok(body
        .take_str("id")?
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()))
}

/// Applies a JSON merge patch (RFC 7396) to `current`'s JSON form and reads the result
/// back as `T`: members of the patch replace, `null` removes (so the field takes its
/// default), nested objects merge. An `id` in the patch must equal `id`.
pub fn merge_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    mut patch: JsonObject,
    id_key: &str,
    id: &str,
) -> Result<T, ApiError> {
    if let Some(given) = patch.take_str(id_key)?
        && given != id
    {
        return Err(ApiError::invalid(id_key, format!("{id_key} cannot change")));
    }
    let mut doc =
        serde_json::to_value(current).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    merge(&mut doc, Value::Object(patch.0));
    parse_value(doc)
}

/// RFC 7396 merge of `patch` into `target`.
pub fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

/// The client's address as the server saw it (not `X-Forwarded-For`: a header anyone
/// can set is no basis for throttling or auditing).
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let resolved = parts
            .extensions
            .get::<super::edge::ResolvedClient>()
            .map(|c| c.0);
        Ok(ClientAddr(resolved.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        })))
    }
}

impl ClientAddr {
    pub fn text(&self) -> String {
        self.0.map(|a| a.to_string()).unwrap_or_default()
    }
}

/// Query parameters, each taken by name; [`Params::finish`] refuses the ones no one
/// took, so a misspelt filter is an error instead of being silently ignored.
pub struct Params(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        Params::new(pairs)
    }
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter {k:?} is given twice"
                )));
            }
        }
        Ok(Params(map))
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        self.0.remove(key).filter(|v| !v.is_empty())
    }

    /// A string parameter of bounded length (ids, tags, search text).
    pub fn short(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.string(key) {
            Some(v) if v.len() > 200 => Err(ApiError::bad_request(format!(
                "query parameter {key:?} is over 200 bytes"
            ))),
            other => Ok(other),
        }
    }

    /// A parameter that names a variant of a closed set (a role, a kind, a state).
    pub fn word<T>(&mut self, key: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr<Err = ispvm_proto::text_enum::UnknownVariant>,
    {
        self.short(key)?
            .map(|v| {
                v.parse()
                    .map_err(|e| ApiError::bad_request(format!("query parameter {key:?}: {e}")))
            })
            .transpose()
    }

    pub fn int(&mut self, key: &str) -> Result<Option<i64>, ApiError> {
        self.string(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!("query parameter {key:?} must be an integer"))
                })
            })
            .transpose()
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.string(key).as_deref() {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(_) => Err(ApiError::bad_request(format!(
                "query parameter {key:?} must be true or false"
            ))),
        }
    }

    /// `limit` (1..=MAX_LIMIT, default DEFAULT_LIMIT) and the decoded `cursor`.
    pub fn page(&mut self) -> Result<(u32, Option<Value>), ApiError> {
        let limit = match self.int("limit")? {
            None => crate::store::catalog::DEFAULT_LIMIT,
            Some(l) if (1..=i64::from(crate::store::catalog::MAX_LIMIT)).contains(&l) => {
                u32::try_from(l).unwrap_or(crate::store::catalog::DEFAULT_LIMIT)
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "limit must be within 1..={}",
                    crate::store::catalog::MAX_LIMIT
                )));
            }
        };
        let cursor = self
            .string("cursor")
            .map(|c| decode_cursor(&c))
            .transpose()?;
        Ok((limit, cursor))
    }

    /// A page keyed by one string (the row id).
    pub fn id_page(&mut self) -> Result<PageRequest, ApiError> {
        let (limit, cursor) = self.page()?;
        let after = match cursor {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(ApiError::bad_request("the cursor is not valid here")),
        };
        Ok(PageRequest::new(limit, after))
    }

    pub fn finish(self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(k) => Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}; this route takes {}",
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                }
            ))),
        }
    }
}

/// A cursor: the last row's key as JSON, base64url. Opaque to clients.
pub fn encode_cursor(key: &Value) -> String {
    URL_SAFE_NO_PAD.encode(key.to_string())
}

fn decode_cursor(text: &str) -> Result<Value, ApiError> {
    let bad = || ApiError::bad_request("the cursor is not one this server issued");
    if text.len() > 1024 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The body of every list answer (its schema: `ApiSchema::list_of`).
#[derive(Debug, Serialize)]
pub struct ListBody<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: Serialize> ListBody<T> {
    /// Everything there is, in one page.
    pub fn all(items: Vec<T>) -> Response {
        Json(ListBody {
            items,
            next_cursor: None,
        })
        .into_response()
    }
}

/// A list response: `{"items": [...], "next_cursor": ...}`.
pub fn list<T: Serialize>(page: Page<T>, key: impl Fn(&T) -> Value) -> Response {
    let next_cursor = if page.more {
        page.items.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Json(ListBody {
        items: page.items,
        next_cursor,
    })
    .into_response()
}

/// `201 Created` with the new row.
pub fn created<T: Serialize>(item: T) -> Response {
    (StatusCode::CREATED, Json(item)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `404` for a row that does not exist in the caller's tenant (whether it exists in
/// another tenant is not told).
pub fn missing(resource: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("{resource} {id:?} not found"))
}

/// Handlers to get, create, merge-patch and delete one kind of id-keyed row, given the
/// store methods that do it. Lists differ in their filters and are written by hand.
macro_rules! crud {
    (
        resource: $res:literal, spec: $Spec:ty,
        get: $get:ident => $sget:ident,
        create: $create:ident => $screate:ident,
        patch: $patch:ident => $supdate:ident,
        delete: $delete:ident => $sdelete:ident $(,)?
    ) => {
        pub(super) async fn $get(
            axum::extract::State(s): axum::extract::State<$crate::http::AppState>,
            axum::Extension(p): axum::Extension<$crate::http::Principal>,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<axum::response::Response, $crate::http::ApiError> {
            let item = p
                .tenant_store(&s.store)
                .$sget(&id)
                .await?
                .ok_or_else(|| $crate::http::common::missing($res, &id))?;
            Ok(axum::response::IntoResponse::into_response(axum::Json(
                item,
            )))
        }

        pub(super) async fn $create(
            axum::extract::State(s): axum::extract::State<$crate::http::AppState>,
            axum::Extension(p): axum::Extension<$crate::http::Principal>,
            mut body: $crate::http::common::JsonObject,
        ) -> Result<axum::response::Response, $crate::http::ApiError> {
            let id = $crate::http::common::take_new_id(&mut body)?;
            let spec: $Spec = body.parse()?;
            let item = p
                .tenant_store(&s.store)
                .$screate(&p.actor(), &id, &spec)
                .await?;
            Ok($crate::http::common::created(item))
        }

        pub(super) async fn $patch(
            axum::extract::State(s): axum::extract::State<$crate::http::AppState>,
            axum::Extension(p): axum::Extension<$crate::http::Principal>,
            axum::extract::Path(id): axum::extract::Path<String>,
            body: $crate::http::common::JsonObject,
        ) -> Result<axum::response::Response, $crate::http::ApiError> {
            let ts = p.tenant_store(&s.store);
            let current = ts
                .$sget(&id)
                .await?
                .ok_or_else(|| $crate::http::common::missing($res, &id))?;
            let spec: $Spec = $crate::http::common::merge_patch(&current.spec, body, "id", &id)?;
            let item = ts.$supdate(&p.actor(), &id, &spec).await?;
            Ok(axum::response::IntoResponse::into_response(axum::Json(
                item,
            )))
        }

        pub(super) async fn $delete(
            axum::extract::State(s): axum::extract::State<$crate::http::AppState>,
            axum::Extension(p): axum::Extension<$crate::http::Principal>,
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> Result<axum::response::Response, $crate::http::ApiError> {
            p.tenant_store(&s.store).$sdelete(&p.actor(), &id).await?;
            Ok($crate::http::common::no_content())
        }
    };
}
pub(crate) use crud;
