//! Delivery of batches to the server.

pub mod https;
pub mod quic;

pub use https::HttpsUplink;
pub use quic::{QuicUplink, UplinkError};
