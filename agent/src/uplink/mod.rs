//! Delivery of batches to the server.

pub mod quic;

pub use quic::{QuicUplink, UplinkError};
