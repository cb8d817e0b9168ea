//! The agent's supervision tree: a supervisor over one poller per router and the uplink.

pub mod poller;
pub mod prober;
pub mod source;
pub mod supervisor;
pub mod syslog;
pub mod ticker;
pub mod uplink;

pub use supervisor::{AgentSupervisor, SupervisorArgs, SupervisorMsg};
