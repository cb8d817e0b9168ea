//! The agents' gossip cluster: chitchat over QUIC with mutual TLS.
//!
//! Agents of one tenant share liveness, router ownership and reachability through it,
//! so a dead agent's routers are taken over within the failure-detection time and
//! root-cause analysis sees the network from several vantage points. The transport
//! (TLS, QUIC, PKI, revocation) is `ispvm-transport`; this crate adds membership
//! ([`gossip`]), the node-state schema ([`node_state`]), ownership ([`ownership`],
//! [`assignment`]).

pub mod assignment;
pub mod gossip;
pub mod node_state;
pub mod ownership;
#[cfg(feature = "testsuite")]
pub mod testing;
