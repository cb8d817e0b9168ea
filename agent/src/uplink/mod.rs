//! Delivery of batches to the server: the transports (QUIC, HTTPS), the task that
//! sends the disk buffer, the durable batch numbers, and the quarantine of batches that
//! will not be sent again.

pub mod delivery;
pub mod error;
pub mod https;
pub mod quarantine;
pub mod quic;
pub mod requeue;
pub mod seq;

pub use error::UplinkError;
pub use https::HttpsUplink;
pub use quic::QuicUplink;
