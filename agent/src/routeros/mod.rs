//! RouterOS API collection: the session client ([`client`]), the values RouterOS prints
//! ([`values`]) and the collection plan that turns a router's answers into canonical
//! metrics ([`collector`]).

pub mod client;
pub mod collector;
pub mod routing;
pub mod transport;
pub mod values;

pub use client::{ClientError, Listener, RouterOsClient, SessionConfig};
pub use collector::{Collector, PollOutput};
pub use transport::{TlsOptions, TlsTrust};
