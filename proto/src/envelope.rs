//! The batch envelope an agent uploads and the acknowledgement the server returns.
//!
//! A batch is the unit of delivery, retry and idempotency: the agent numbers its batches
//! (`seq`, per agent, never reused) so the server can spot gaps and drop replays; events
//! carry an agent-made UUID so a replayed event is stored once; a sample is unique per
//! series (tenant, entity, metric) and timestamp. The layout is versioned by
//! [`FORMAT_VERSION`] and the serde attributes stay within what bincode can encode
//! (no `skip_serializing_if`, no internally tagged enums).
//!
//! Version 2 added [`Batch::cluster`] and [`EventKind::OwnershipChange`]. A server still
//! reads version 1 (what an agent buffered before its upgrade), so an upgrade of the
//! server first, then of the agents, loses nothing.

use crate::cluster_report::ClusterReport;
use crate::metric::MetricName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Version of the batch layout; bumped on any incompatible change.
pub const FORMAT_VERSION: u16 = 2;

/// Oldest version a server still reads.
pub const OLDEST_FORMAT_VERSION: u16 = 1;

/// What an agent sends: samples, events and inventory changes since its last batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub format_version: u16,
    /// The sending agent; must match the identity in its client certificate.
    pub agent_id: String,
    /// The tenant the agent belongs to; must match its certificate too.
    pub tenant_id: String,
    /// When the agent sent (or first tried to send) the batch, Unix ms.
    pub sent_at_ms: i64,
    /// Per-agent sequence number, starting at 1, incremented per new batch.
    pub seq: u64,
    #[serde(default)]
    pub samples: Vec<MetricSample>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub inventory: InventoryPatch,
    /// The agent's view of the gossip cluster, when clustering is on and a report is
    /// due (every few seconds, not in every batch).
    #[serde(default)]
    pub cluster: Option<ClusterReport>,
}

impl Batch {
    /// An empty batch of the current format.
    pub fn new(agent_id: impl Into<String>, tenant_id: impl Into<String>, seq: u64) -> Self {
        Batch {
            format_version: FORMAT_VERSION,
            agent_id: agent_id.into(),
            tenant_id: tenant_id.into(),
            sent_at_ms: crate::time::now_ms(),
            seq,
            samples: Vec::new(),
            events: Vec::new(),
            inventory: InventoryPatch::default(),
            cluster: None,
        }
    }

    /// A batch with this one's header (version, agent, tenant, time, seq) and nothing in
    /// it.
    pub fn clone_header(&self) -> Self {
        Batch {
            format_version: self.format_version,
            agent_id: self.agent_id.clone(),
            tenant_id: self.tenant_id.clone(),
            sent_at_ms: self.sent_at_ms,
            seq: self.seq,
            samples: Vec::new(),
            events: Vec::new(),
            inventory: InventoryPatch::default(),
            cluster: None,
        }
    }

    /// Number of items the batch carries, the figure the server's item limits count.
    pub fn item_count(&self) -> usize {
        self.samples.len()
            + self.events.len()
            + self.inventory.len()
            + self.cluster.as_ref().map_or(0, ClusterReport::item_count)
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }
}

/// The thing a sample or event is about. Interface names and probe targets are entity
/// keys that the server maps to inventory ids, never metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKey {
    /// A device, by its key (unique within the tenant).
    Device(String),
    /// An interface of a device, by the device key and the interface name.
    Interface { device: String, name: String },
    /// A probe target, by its key.
    ProbeTarget(String),
    /// A routing peer of a device (BGP peer address or OSPF router id).
    Peer { device: String, peer: String },
}

impl EntityKey {
    /// The device this entity belongs to, if any.
    pub fn device(&self) -> Option<&str> {
        match self {
            EntityKey::Device(d) => Some(d),
            EntityKey::Interface { device, .. } | EntityKey::Peer { device, .. } => Some(device),
            EntityKey::ProbeTarget(_) => None,
        }
    }

    /// Kind and id as stored by the server: the kind is a short fixed word, the id joins
    /// the parts with `/`, which device keys may not contain.
    pub fn storage_parts(&self) -> (&'static str, String) {
        match self {
            EntityKey::Device(d) => ("device", d.clone()),
            EntityKey::Interface { device, name } => ("interface", format!("{device}/{name}")),
            EntityKey::ProbeTarget(t) => ("probe_target", t.clone()),
            EntityKey::Peer { device, peer } => ("peer", format!("{device}/{peer}")),
        }
    }
}

/// One measurement of one canonical metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub entity: EntityKey,
    pub metric: MetricName,
    /// When the value was measured, Unix ms.
    pub ts_ms: i64,
    pub value: f64,
}

crate::text_enum! {
    /// Severity of an event, ordered from least to most severe.
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum Severity {
        Debug = "debug",
        Info = "info",
        Notice = "notice",
        Warning = "warning",
        Error = "error",
        Critical = "critical",
    }
}

crate::text_enum! {
    /// What happened. The set grows with the collectors; unknown kinds need a new
    /// format version (bincode numbers the variants in this order: append only).
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum EventKind {
        /// The management API stopped answering.
        ApiUnreachable = "api_unreachable",
        /// The management API answers again.
        ApiRecovered = "api_recovered",
        /// The router's uptime went backwards: it rebooted.
        Reboot = "reboot",
        LinkDown = "link_down",
        LinkUp = "link_up",
        BgpStateChange = "bgp_state_change",
        OspfStateChange = "ospf_state_change",
        LoginFailure = "login_failure",
        /// The agent lowered its poll rate for a device (breaker open) or lost a
        /// collector.
        MonitoringDegraded = "monitoring_degraded",
        /// An agent actor crashed and was restarted.
        ActorRestart = "actor_restart",
        /// The agent's buffer dropped data to stay within its size cap.
        BufferOverflow = "buffer_overflow",
        /// A syslog message that maps to no more specific kind.
        Syslog = "syslog",
        /// The agent polls a device normally again after `MonitoringDegraded`.
        MonitoringRestored = "monitoring_restored",
        /// The hash of a device's configuration changed (daily tier).
        ConfigChanged = "config_changed",
        /// An agent started or stopped polling a router because cluster ownership moved
        /// (failover, a join, a leave, a heal). Format version 2.
        OwnershipChange = "ownership_change",
    }
}

/// Something that happened at a point in time, with an agent-made id that makes
/// replays harmless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub ts_ms: i64,
    pub entity: EntityKey,
    pub kind: EventKind,
    pub severity: Severity,
    pub message: String,
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl Event {
    /// A new event with a fresh time-ordered id, stamped now.
    pub fn new(entity: EntityKey, kind: EventKind, severity: Severity, message: String) -> Self {
        Event {
            id: Uuid::now_v7(),
            ts_ms: crate::time::now_ms(),
            entity,
            kind,
            severity,
            message,
            attrs: BTreeMap::new(),
        }
    }
}

crate::text_enum! {
    /// Role of a device in the ISP's network (ARCHITECTURE §3).
    #[derive(Default)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum DeviceRole {
        Core = "core",
        Agg = "agg",
        #[default]
        Access = "access",
        Edge = "edge",
        CustomerEdge = "customer_edge",
        Upstream = "upstream",
        RouteReflector = "route_reflector",
        PppoeConcentrator = "pppoe_concentrator",
    }
}

/// Inventory facts an agent learned (identity, model, interfaces). The server merges them
/// into its inventory; operator-set fields are never overwritten by a patch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InventoryPatch {
    #[serde(default)]
    pub devices: Vec<DeviceInfo>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
    #[serde(default)]
    pub addresses: Vec<AddressInfo>,
    #[serde(default)]
    pub neighbors: Vec<NeighborInfo>,
}

impl InventoryPatch {
    pub fn len(&self) -> usize {
        self.devices.len() + self.interfaces.len() + self.addresses.len() + self.neighbors.len()
    }

    /// Appends another patch (a later poll's facts come after earlier ones).
    pub fn extend(&mut self, other: InventoryPatch) {
        self.devices.extend(other.devices);
        self.interfaces.extend(other.interfaces);
        self.addresses.extend(other.addresses);
        self.neighbors.extend(other.neighbors);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an agent knows of a device it polls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub key: String,
    /// The router's own identity (`/system/identity`).
    pub name: String,
    pub site: String,
    pub role: DeviceRole,
    /// Address the agent polls, `host:port`.
    pub mgmt_addr: String,
    pub model: String,
    pub os_version: String,
}

/// What an agent knows of one interface of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub device: String,
    pub name: String,
    /// RouterOS interface type, e.g. `ether`, `vlan`, `pppoe-in`.
    pub kind: String,
    pub disabled: bool,
}

/// An IP address configured on an interface (`/ip/address`): with neighbours, the
/// evidence topology inference works from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressInfo {
    pub device: String,
    pub interface: String,
    /// Address with prefix length, e.g. `10.255.0.1/30`.
    pub address: String,
}

/// A device seen on an interface by discovery (`/ip/neighbor`: MNDP, CDP, LLDP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighborInfo {
    pub device: String,
    pub interface: String,
    /// The neighbour's identity (its name), as it announces it.
    pub identity: String,
    pub address: String,
    pub mac: String,
    pub platform: String,
}

/// The server's answer to one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The `seq` of the batch answered, or 0 when the batch could not be read.
    pub seq: u64,
    pub status: AckStatus,
}

/// Whether a batch was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Stored (or already stored: a replay). The agent may drop the batch.
    Accepted {
        samples_stored: u32,
        samples_duplicate: u32,
        events_stored: u32,
        events_duplicate: u32,
        /// The whole batch was seen before; nothing new was stored.
        duplicate_batch: bool,
    },
    /// Not stored. Whether to retry depends on the code.
    Rejected {
        code: RejectCode,
        message: String,
        /// For `Overloaded`: how long to wait before retrying.
        retry_after_ms: Option<u64>,
    },
}

/// Why a batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The bytes are not a batch. Retrying the same bytes is pointless.
    Malformed,
    /// More bytes than the server accepts.
    TooLarge,
    /// More samples, events or inventory items than the server accepts.
    TooManyItems,
    /// A format version the server does not speak.
    UnsupportedVersion,
    /// Decoded fine but a field is out of bounds (empty id, NaN value, ...).
    Invalid,
    /// The batch claims an agent or tenant other than the certificate's.
    Unauthorized,
    /// The server is busy; retry after `retry_after_ms`.
    Overloaded,
    /// The server failed to store the batch; retry later.
    Internal,
    /// Storing the batch would take the tenant over a quota of its inventory (devices,
    /// agents). Resending the same batch cannot help until an operator raises the quota,
    /// so the agent drops it. (Over the ingest *rate* quota a batch is `Overloaded`.)
    /// Appended last: the bincode index of every earlier code is unchanged.
    QuotaExceeded,
    /// The store refused an item of the batch in a way that a retry would repeat (a value
    /// the database cannot hold that the checks let through). The message names the
    /// item. Resending cannot help: the agent sets the batch aside (quarantine) and goes
    /// on with the next one.
    Unstorable,
    /// A batch with this `seq` was stored before with other content: the agent reused a
    /// sequence number (its state was lost or rolled back). Nothing was stored. The
    /// agent numbers the batch anew, above any number it used, and sends it again.
    SeqReused,
}

impl RejectCode {
    /// Whether resending the same batch later can succeed.
    pub const fn is_retryable(self) -> bool {
        matches!(self, RejectCode::Overloaded | RejectCode::Internal)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::TooLarge => "too_large",
            RejectCode::TooManyItems => "too_many_items",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::Invalid => "invalid",
            RejectCode::Unauthorized => "unauthorized",
            RejectCode::Overloaded => "overloaded",
            RejectCode::Internal => "internal",
            RejectCode::QuotaExceeded => "quota_exceeded",
            RejectCode::Unstorable => "unstorable",
            RejectCode::SeqReused => "seq_reused",
        }
    }
}

impl Ack {
    /// A rejection with no retry hint.
    pub fn rejected(seq: u64, code: RejectCode, message: impl Into<String>) -> Self {
        Ack {
            seq,
            status: AckStatus::Rejected {
                code,
                message: message.into(),
                retry_after_ms: None,
            },
        }
    }
}
