//! Wire types shared by the agent, the server and the cluster, and their codecs.
//!
//! Everything that crosses a process boundary is defined here so that the agent and the
//! server cannot drift apart: the versioned batch envelope an agent uploads, the canonical
//! metric catalogue, events, inventory patches and the server's acknowledgement. The
//! RouterOS API sentence codec lives here too because both the agent's client and the
//! simulator speak it. This crate does no I/O.

pub mod clean;
pub mod cluster_report;
pub mod codec;
pub mod envelope;
pub mod metric;
pub mod routeros;
pub mod settings;
pub mod text_enum;
pub mod time;

pub use cluster_report::{ClusterReport, MemberState, MemberView, ReachCell};
pub use codec::{DecodeError, EncodeError, Limits};
pub use envelope::{
    Ack, AckStatus, AddressInfo, Batch, DeviceInfo, DeviceRole, EntityKey, Event, EventKind,
    FORMAT_VERSION, InterfaceInfo, InventoryPatch, MetricSample, NeighborInfo,
    OLDEST_FORMAT_VERSION, RejectCode, Severity,
};
pub use metric::{MetricName, OPENMETRICS_CONTENT_TYPE};
