//! Secure transport between ISPVisualMonitor processes.
//!
//! Every link between an agent, another agent and the server is QUIC (or HTTPS) with
//! mutual TLS: both ends present a certificate issued by the deployment's CA and both
//! verify the other's, against the CA's revocation list. This crate builds those
//! configurations ([`tls`]), the QUIC endpoints ([`quic`]), reads who the peer is from
//! its certificate ([`identity`]), re-reads the revocation list while running
//! ([`crl_watch`]), counts refused peers by reason ([`refusal`]) and runs the
//! development PKI behind `ispvm pki` ([`pki`]). No code path disables certificate
//! verification.
//!
//! It knows nothing of gossip: the server links it without linking chitchat, and the
//! agents' cluster (`ispvm-cluster`) builds on it.

pub mod crl_watch;
pub mod identity;
pub mod pki;
pub mod quic;
pub mod refusal;
pub mod tls;

pub use identity::{IdentityError, PeerIdentity};
pub use tls::{TlsError, TlsMaterial};
