//! The agents' gossip cluster: chitchat over QUIC with mutual TLS.
//!
//! [`transport`] carries chitchat's messages, each checked by [`screen`] first (size
//! bounds, node ids believed only where a certificate proved them); [`node`] runs one agent's membership (its
//! published keys, who is alive, the failure detector's view) and [`members`] is the
//! typed snapshot the rest of the agent reads.

pub mod members;
pub mod node;
pub mod screen;
pub mod transport;

pub use members::{Member, MemberJson, Membership};
pub use node::{GossipConfig, GossipError, GossipNode};
pub use transport::{LinkCuts, QuicTransport, TransportSnapshot, TransportStats};
