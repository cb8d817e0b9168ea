//! SNMP collection (SNMPv2c and SNMPv3 USM) for devices polled without the RouterOS API,
//! or besides it.
//!
//! - [`config`]: what to poll and with which credentials and limits;
//! - [`oids`]: every OID read, documented with the metric or inventory field it feeds;
//! - [`service`]: the collector, [`SnmpCollector`], which turns IF-MIB, SNMPv2-MIB,
//!   HOST-RESOURCES-MIB and MikroTik MIB answers into the canonical metrics, events and
//!   inventory of [`PollOutput`], the same shape the RouterOS collector produces;
//! - `session` (private): requests with timeouts and retries, and bounded GETBULK walks.
//!
//! A poller drives it like the RouterOS collector:
//!
//! ```no_run
//! # async fn run() -> Result<(), ispvm_agent::snmp::SnmpError> {
//! use ispvm_agent::snmp::{SnmpCollector, SnmpConfig};
//! use ispvm_proto::DeviceRole;
//!
//! let config = SnmpConfig::v2c("10.0.0.1:161", "public");
//! let mut collector = SnmpCollector::new("edge1", "pop1", DeviceRole::Edge, config)?;
//! let output = match collector.poll().await {
//!     Ok(output) => output,
//!     Err(error) => collector.unreachable(&error),
//! };
//! # let _ = output;
//! # Ok(())
//! # }
//! ```

pub mod collector;
pub mod config;
pub mod oids;
pub mod session;

pub use crate::routeros::PollOutput;
pub use collector::{PollStats, SnmpCollector};
pub use config::{
    AuthProtocol, PrivProtocol, Secret, SecurityLevel, SnmpConfig, SnmpCredentials, SnmpLimits,
    V3Credentials,
};
pub use session::SnmpError;
