//! The development PKI lives in `ispvm-cluster` (agents need it for gossip tests and the
//! server for `ispvm pki`); re-exported here so the server's users keep one path.

pub use ispvm_transport::pki::*;
