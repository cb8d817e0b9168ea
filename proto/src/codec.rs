//! Encoding and bounded decoding of wire messages, in bincode (QUIC uplink) and JSON
//! (HTTPS ingest, debugging).
//!
//! bincode is used at 2.0.1 only through this module, so replacing it touches one file.
//! Decoding untrusted bytes takes explicit [`Limits`]: the byte size is checked before
//! anything is parsed, bincode's allocation budget caps what a forged length prefix can
//! make it reserve, and the decoded batch is then checked field by field. Every failure is
//! a typed [`DecodeError`]; none panics.

pub(crate) mod check;

use crate::cluster_report::ClusterReport;
use crate::envelope::{
    Ack, AckStatus, Batch, Event, FORMAT_VERSION, InventoryPatch, MetricSample,
    OLDEST_FORMAT_VERSION, RejectCode,
};
pub use check::check_id;
use check::{check_cell, check_member, check_text, check_ts, count, invalid};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Ceiling on what bincode may allocate while decoding one message, whatever the
/// configured byte limit: a length prefix claiming more is refused before allocating.
const BINCODE_ALLOC_CEILING: usize = 64 << 20;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<BINCODE_ALLOC_CEILING>()
}

/// Bounds applied when decoding untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Limits {
    /// Largest encoded message accepted, in bytes.
    pub max_bytes: usize,
    pub max_samples: usize,
    pub max_events: usize,
    /// Devices plus interfaces in one inventory patch.
    pub max_inventory_items: usize,
    /// Longest identifier (agent, tenant, device key, interface name), in bytes.
    pub max_id_len: usize,
    /// Longest free text (event message, attribute value, model), in bytes.
    pub max_text_len: usize,
    /// Most attributes on one event.
    pub max_event_attrs: usize,
    /// Most members in one cluster report (a tenant's gossip cluster).
    pub max_cluster_members: usize,
    /// Most reachability verdicts in one cluster report.
    pub max_reach_cells: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 20,
            max_samples: 50_000,
            max_events: 10_000,
            max_inventory_items: 10_000,
            max_id_len: 128,
            max_text_len: 4096,
            max_event_attrs: 32,
            max_cluster_members: 4096,
            max_reach_cells: 20_000,
        }
    }
}

/// Why bytes could not become a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("message is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("format version {found} is not supported (this build speaks {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("{count} {what} in one batch, over the limit of {limit}")]
    TooManyItems {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl DecodeError {
    /// The rejection code the server answers with.
    pub fn reject_code(&self) -> RejectCode {
        match self {
            DecodeError::TooLarge { .. } => RejectCode::TooLarge,
            DecodeError::Malformed(_) => RejectCode::Malformed,
            DecodeError::UnsupportedVersion { .. } => RejectCode::UnsupportedVersion,
            DecodeError::TooManyItems { .. } => RejectCode::TooManyItems,
            DecodeError::Invalid { .. } => RejectCode::Invalid,
        }
    }
}

/// A message that could not be encoded (only a non-serialisable value can cause this).
///
/// The cause is kept as a boxed source so bincode's error type stays inside this module.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode message as {format}: {source}")]
pub struct EncodeError {
    format: &'static str,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// A message whose decoded form must be checked against limits.
pub trait Bounded: Sized {
    fn check(&self, limits: &Limits) -> Result<(), DecodeError>;

    /// Decodes an older bincode layout of the message, when `bytes` are one; `None`
    /// means "the current layout". bincode is not self-describing, so a message that
    /// grew a field needs this to keep reading what was encoded before.
    fn legacy_bincode(_bytes: &[u8]) -> Option<Result<(Self, usize), DecodeError>> {
        None
    }

    /// The message as the current version states it, once checked: a message read from
    /// an older version is held (and encoded again) in the current layout, so it must
    /// also say the current version.
    fn upgraded(self) -> Self {
        self
    }
}

/// Encodes a message as bincode.
pub fn to_bincode<T: Serialize>(message: &T) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(message, bincode_config()).map_err(|e| EncodeError {
        format: "bincode",
        source: Box::new(e),
    })
}

/// Encodes a message as JSON.
pub fn to_json<T: Serialize>(message: &T) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(message).map_err(|e| EncodeError {
        format: "JSON",
        source: Box::new(e),
    })
}

/// Decodes a bincode message from untrusted bytes within `limits`.
pub fn from_bincode<T: DeserializeOwned + Bounded>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<T, DecodeError> {
    check_size(bytes, limits)?;
    let (message, used): (T, usize) = match T::legacy_bincode(bytes) {
        Some(decoded) => decoded?,
        None => bincode::serde::decode_from_slice(bytes, bincode_config())
            .map_err(|e| DecodeError::Malformed(e.to_string()))?,
    };
    if used != bytes.len() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes after the message",
            bytes.len() - used
        )));
    }
    message.check(limits)?;
    Ok(message.upgraded())
}

/// Decodes a JSON message from untrusted bytes within `limits`.
pub fn from_json<T: DeserializeOwned + Bounded>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<T, DecodeError> {
    check_size(bytes, limits)?;
    let message: T =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    message.check(limits)?;
    Ok(message.upgraded())
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

/// The first fields of every batch layout, to read a batch's number from bytes whose
/// body is refused (a quarantined batch is still reported by its number).
#[derive(serde::Deserialize)]
struct BatchHeader {
    _format_version: u16,
    _agent_id: String,
    _tenant_id: String,
    _sent_at_ms: i64,
    seq: u64,
}

/// The `seq` of an encoded batch, read from its header alone: `None` when not even the
/// header decodes.
pub fn batch_seq(bytes: &[u8]) -> Option<u64> {
    bincode::serde::decode_from_slice::<BatchHeader, _>(bytes, bincode_config())
        .ok()
        .map(|(h, _)| h.seq)
}

/// The batch layout of format version 1: everything but `cluster`.
#[derive(serde::Deserialize)]
struct BatchV1 {
    format_version: u16,
    agent_id: String,
    tenant_id: String,
    sent_at_ms: i64,
    seq: u64,
    samples: Vec<MetricSample>,
    events: Vec<Event>,
    inventory: InventoryPatch,
}

impl From<BatchV1> for Batch {
    fn from(v1: BatchV1) -> Self {
        Batch {
            format_version: v1.format_version,
            agent_id: v1.agent_id,
            tenant_id: v1.tenant_id,
            sent_at_ms: v1.sent_at_ms,
            seq: v1.seq,
            samples: v1.samples,
            events: v1.events,
            inventory: v1.inventory,
            cluster: None,
        }
    }
}

impl Bounded for Batch {
    /// The version is the first field, and bincode's varint writes a `u16` below 251 as
    /// that one byte.
    fn legacy_bincode(bytes: &[u8]) -> Option<Result<(Self, usize), DecodeError>> {
        if bytes.first() != Some(&1) {
            return None;
        }
        Some(
            bincode::serde::decode_from_slice::<BatchV1, _>(bytes, bincode_config())
                .map(|(v1, used)| (Batch::from(v1), used))
                .map_err(|e| DecodeError::Malformed(e.to_string())),
        )
    }

    fn upgraded(mut self) -> Self {
        self.format_version = FORMAT_VERSION;
        self
    }

    fn check(&self, limits: &Limits) -> Result<(), DecodeError> {
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(DecodeError::UnsupportedVersion {
                found: self.format_version,
                supported: FORMAT_VERSION,
            });
        }
        count("samples", self.samples.len(), limits.max_samples)?;
        count("events", self.events.len(), limits.max_events)?;
        count(
            "inventory items",
            self.inventory.len(),
            limits.max_inventory_items,
        )?;
        check_id("agent_id", &self.agent_id, limits)?;
        check_id("tenant_id", &self.tenant_id, limits)?;
        check_ts("sent_at_ms", self.sent_at_ms)?;
        if self.seq == 0 {
            return Err(invalid("seq", "must start at 1"));
        }
        for (i, s) in self.samples.iter().enumerate() {
            check::check_sample(i, s, limits)?;
        }
        for (i, e) in self.events.iter().enumerate() {
            check::check_event(i, e, limits)?;
        }
        let inv = &self.inventory;
        for (i, d) in inv.devices.iter().enumerate() {
            check::check_device(i, d, limits)?;
        }
        for (i, itf) in inv.interfaces.iter().enumerate() {
            check::check_interface(i, itf, limits)?;
        }
        for (i, a) in inv.addresses.iter().enumerate() {
            check::check_address(i, a, limits)?;
        }
        for (i, n) in inv.neighbors.iter().enumerate() {
            check::check_neighbor(i, n, limits)?;
        }
        if let Some(report) = &self.cluster {
            check::check_cluster(report, limits)?;
        }
        Ok(())
    }
}

/// Drops from `report` what the server would refuse, so that one odd value learnt from a
/// peer (a site name with a space, a clock far off) costs that entry, not the batch the
/// report rides with. Returns how many entries were dropped. The report's own fields are
/// the agent's configuration, validated when it was loaded.
pub fn retain_valid(report: &mut ClusterReport, limits: &Limits) -> usize {
    let before = report.item_count();
    report
        .members
        .retain(|m| check_member(0, m, limits).is_ok());
    report.members.truncate(limits.max_cluster_members);
    report
        .owned
        .retain(|r| check_id("cluster.owned", r, limits).is_ok());
    report.owned.truncate(limits.max_inventory_items);
    report.reach.retain(|c| check_cell(0, c, limits).is_ok());
    report.reach.truncate(limits.max_reach_cells);
    before - report.item_count()
}

impl Bounded for Ack {
    fn check(&self, limits: &Limits) -> Result<(), DecodeError> {
        if let AckStatus::Rejected { message, .. } = &self.status {
            check_text("ack.message", message, limits)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
