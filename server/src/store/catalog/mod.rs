//! The inventory operators manage through the API: sites, devices and interfaces, links,
//! topology edges, services, agents, credential sets, polling profiles, maintenance
//! windows, alert rules and notification channels.
//!
//! Every write validates its input, checks what it references, changes the rows and
//! appends its audit row in one transaction: bad input changes nothing, and no change
//! goes unaudited. Lists are keyset-paginated on the primary key, so a page never skips
//! or repeats a row when rows are added meanwhile.

mod agents;
mod channels;
mod credentials;
mod devices;
mod edges;
mod links;
mod profiles;
mod rules;
mod services;
mod sites;
pub mod validate;
mod windows;

pub use channels::Channel;
pub use credentials::{CredentialSecret, CredentialSet, CredentialSpec};
pub use devices::{Device, DeviceFilter, DeviceSpec};
pub use edges::{EdgeFilter, EdgeSpec, EntityRef, TopologyEdge};
pub use links::{Endpoint, Link, LinkFilter, LinkSpec};
pub use profiles::{PollingProfile, ProfileSpec};
pub use rules::{
    AlertRule, ImportMode, ImportOutcome, RULES_FORMAT_VERSION, RuleDocument, parse_import,
    parse_rule,
};
pub use services::{Service, ServiceFilter, ServiceSpec};
pub use sites::{Site, SiteSpec};
pub use windows::{MaintenanceFilter, MaintenanceSpec, MaintenanceWindow, Scope};

use super::StoreError;
use crate::store::crypto::SealError;

/// Most rows one page may hold.
pub const MAX_LIMIT: u32 = 1000;
/// Rows per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;

/// Why an inventory operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The input is malformed or breaks a rule; nothing was changed.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The addressed row does not exist in this tenant.
    #[error("{resource} {id:?} not found")]
    NotFound { resource: &'static str, id: String },
    /// The change conflicts with existing rows (duplicate id, row still referenced).
    #[error("{0}")]
    Conflict(String),
    /// The tenant's device quota is reached; nothing was changed.
    #[error("the tenant's quota of {limit} devices is reached")]
    QuotaExceeded { limit: u64 },
    /// Credential secrets cannot be stored: the server was started without a master key.
    #[error(
        "the server has no master key, so it cannot store credential secrets: set ISPVM_MASTER_KEY (base64 of 32 random bytes) and restart"
    )]
    NoMasterKey,
    #[error("credential secret: {0}")]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        // Explicit checks run first and give precise messages; these are the fallbacks
        // for a concurrent writer that got in between.
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return CatalogError::Conflict("a row with this key already exists".into());
            }
            if db.is_foreign_key_violation() {
                return CatalogError::Conflict(
                    "the change references a row that does not exist, or removes one still referenced"
                        .into(),
                );
            }
        }
        CatalogError::Store(StoreError::Db(e))
    }
}

impl CatalogError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CatalogError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(resource: &'static str, id: &str) -> Self {
        CatalogError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }
}

/// A closed-set word read back from the store ([`crate::store::stored_word`]).
pub(crate) fn stored<T>(column: &'static str, word: &str) -> Result<T, CatalogError>
where
    T: std::str::FromStr<Err = ispvm_proto::text_enum::UnknownVariant>,
{
    Ok(crate::store::stored_word(column, word)?)
}

/// One page of a list: `limit` rows after the key `after` (exclusive), in key order.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn new(limit: u32, after: Option<String>) -> Self {
        PageRequest {
            limit: limit.clamp(1, MAX_LIMIT),
            after,
        }
    }

    /// What the SQL `LIMIT` gets: one more row than asked, to tell whether more exist.
    pub(crate) fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// A page of rows; `more` says whether rows follow the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        Page { items: rows, more }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            more: self.more,
        }
    }

    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            more: self.more,
        })
    }
}

/// `%text%` for a case-insensitive `LOWER(col) LIKE $n ESCAPE '\'` search.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// JSON text of a list column.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
