//! Secure transport between ISPVisualMonitor processes.
//!
//! Every link between an agent, another agent and the server is QUIC with mutual TLS:
//! both ends present a certificate issued by the deployment's CA and both verify the
//! other's. This crate builds those configurations ([`tls`]), the QUIC endpoints
//! ([`quic`]) and reads who the peer is from its certificate ([`identity`]). Gossip
//! membership (chitchat) over the same transport grows here too. No code path disables
//! certificate verification.

pub mod assignment;
pub mod crl_watch;
pub mod gossip;
pub mod identity;
pub mod node_state;
pub mod ownership;
pub mod pki;
pub mod quic;
pub mod refusal;
pub mod testing;
pub mod tls;

pub use identity::{IdentityError, PeerIdentity};
pub use tls::{TlsError, TlsMaterial};
