//! QUIC endpoints (quinn) over the mutual-TLS configurations of [`crate::tls`].

use crate::tls::{TlsError, TlsMaterial};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// ALPN of the agent → server ingest protocol (one batch per bidirectional stream).
pub const ALPN_INGEST: &[u8] = b"ispvm-ingest/1";

/// Keep-alive below the idle timeout so a quiet agent keeps its connection.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Batches one agent connection may have in flight at once. An agent sends one batch at
/// a time; the room is for overlap during replays, and the bound keeps one connection
/// from holding hundreds of 4 MiB reads open on the server.
pub const MAX_STREAMS: u32 = 16;

/// The server's side: bounded bidirectional streams, no unidirectional ones (ingest
/// uses none).
fn server_transport() -> Arc<quinn::TransportConfig> {
    let mut t = transport_config();
    t.max_concurrent_bidi_streams(MAX_STREAMS.into());
    t.max_concurrent_uni_streams(0u32.into());
    Arc::new(t)
}

fn transport() -> Arc<quinn::TransportConfig> {
    Arc::new(transport_config())
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // 30 s always fits quinn's VarInt range.
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// Why an endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A QUIC server endpoint on `bind` that accepts only peers with a CA-issued certificate.
pub fn server_endpoint(
    bind: SocketAddr,
    material: &TlsMaterial,
    alpn: &[u8],
) -> Result<quinn::Endpoint, EndpointError> {
    quinn::Endpoint::server(server_config(material, alpn)?, bind)
        .map_err(|source| EndpointError::Bind { addr: bind, source })
}

/// The configuration of [`server_endpoint`], to put in force again when `material`
/// changes (a new revocation list).
pub fn server_config(material: &TlsMaterial, alpn: &[u8]) -> Result<quinn::ServerConfig, TlsError> {
    let tls = material.server_config(&[alpn])?;
    let crypto = QuicServerConfig::try_from(tls).map_err(TlsError::Quic)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(server_transport());
    Ok(config)
}

/// A QUIC client endpoint able to reach `server` (same address family) with our
/// certificate.
pub fn client_endpoint(
    server: SocketAddr,
    material: &TlsMaterial,
    alpn: &[u8],
) -> Result<quinn::Endpoint, EndpointError> {
    client_endpoint_from(server, None, material, alpn)
}

/// [`client_endpoint`] sending from `source` (a port the system picks) when given and
/// of `server`'s family; the system's choice of source address otherwise. A host with
/// several addresses (or the simulator, which tells endpoints apart by address) needs
/// the uplink to leave from a chosen one.
pub fn client_endpoint_from(
    server: SocketAddr,
    source: Option<std::net::IpAddr>,
    material: &TlsMaterial,
    alpn: &[u8],
) -> Result<quinn::Endpoint, EndpointError> {
    let tls = material.client_config(&[alpn])?;
    let crypto = QuicClientConfig::try_from(tls).map_err(TlsError::Quic)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    let bind: SocketAddr = match source {
        Some(ip) if ip.is_ipv4() == server.is_ipv4() => (ip, 0).into(),
        _ if server.is_ipv4() => (Ipv4Addr::UNSPECIFIED, 0).into(),
        _ => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let mut endpoint = quinn::Endpoint::client(bind)
        .map_err(|source| EndpointError::Bind { addr: bind, source })?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}
