//! The QUIC uplink: one long-lived mutual-TLS connection to the server, one
//! bidirectional stream per batch (bincode out, bincode acknowledgement back).
//!
//! The server may be given as several addresses or DNS names (`[server] addr`); every
//! name is resolved again at each connection attempt (a DNS change takes effect at the
//! next reconnect), and the addresses are tried in turn, starting with the one that
//! last worked, until one answers.

use super::UplinkError;
use ispvm_proto::codec::{from_bincode, to_bincode};
use ispvm_proto::{Ack, Batch, Limits};
use ispvm_transport::TlsMaterial;
use ispvm_transport::quic::{ALPN_INGEST, client_endpoint_from};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::timeout;

/// Largest acknowledgement read back; acks are tiny.
const MAX_ACK_BYTES: usize = 64 << 10;

/// A reusable connection to the server's ingest endpoint.
pub struct QuicUplink {
    /// One client endpoint per address family, made when first needed.
    endpoints: Vec<(bool, quinn::Endpoint)>,
    material: TlsMaterial,
    /// `host:port` or `ip:port`, as configured.
    targets: Vec<String>,
    /// The address that answered last, tried first.
    last_good: Option<SocketAddr>,
    server_name: String,
    connection: Option<quinn::Connection>,
    connect_timeout: Duration,
    exchange_timeout: Duration,
    /// The agent's `source_address`: the endpoint of its family binds it.
    source: Option<IpAddr>,
}

impl QuicUplink {
    pub fn new(
        server: SocketAddr,
        server_name: String,
        material: &TlsMaterial,
        connect_timeout: Duration,
        exchange_timeout: Duration,
    ) -> Result<Self, UplinkError> {
        Self::to_any(
            vec![server.to_string()],
            server_name,
            material,
            connect_timeout,
            exchange_timeout,
        )
    }

    /// An uplink to whichever of `targets` (`host:port` or `ip:port`) answers.
    pub fn to_any(
        targets: Vec<String>,
        server_name: String,
        material: &TlsMaterial,
        connect_timeout: Duration,
        exchange_timeout: Duration,
    ) -> Result<Self, UplinkError> {
        Ok(QuicUplink {
            endpoints: Vec::new(),
            material: material.clone(),
            targets,
            last_good: None,
            server_name,
            connection: None,
            connect_timeout,
            exchange_timeout,
            source: None,
        })
    }

    /// The same uplink sending from `source` (the agent's `source_address`).
    pub fn with_source(mut self, source: Option<IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// The client endpoint for `addr`'s address family.
    fn endpoint_for(&mut self, addr: SocketAddr) -> Result<quinn::Endpoint, UplinkError> {
        if let Some((_, e)) = self.endpoints.iter().find(|(v4, _)| *v4 == addr.is_ipv4()) {
            return Ok(e.clone());
        }
        let e = client_endpoint_from(addr, self.source, &self.material, ALPN_INGEST)?;
        self.endpoints.push((addr.is_ipv4(), e.clone()));
        Ok(e)
    }

    /// Every address the targets resolve to now, the last good one first.
    async fn addresses(&self) -> Result<Vec<SocketAddr>, UplinkError> {
        let mut out = Vec::new();
        let mut last_error = None;
        for target in &self.targets {
            match tokio::net::lookup_host(target.as_str()).await {
                Ok(found) => out.extend(found.filter(|a| !out.contains(a)).collect::<Vec<_>>()),
                Err(source) => {
                    last_error = Some(UplinkError::Resolve {
                        target: target.clone(),
                        source,
                    })
                }
            }
        }
        if out.is_empty() {
            return Err(last_error.unwrap_or(UplinkError::NoAddress));
        }
        if let Some(good) = self.last_good
            && let Some(i) = out.iter().position(|a| *a == good)
        {
            out[..=i].rotate_right(1);
        }
        Ok(out)
    }

    async fn connection(&mut self) -> Result<quinn::Connection, UplinkError> {
        if let Some(c) = &self.connection
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let mut last_error = None;
        for addr in self.addresses().await? {
            match self.connect_to(addr).await {
                Ok(conn) => {
                    self.last_good = Some(addr);
                    self.connection = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "server address did not answer; trying the next");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(UplinkError::Timeout(self.connect_timeout)))
    }

    async fn connect_to(&mut self, addr: SocketAddr) -> Result<quinn::Connection, UplinkError> {
        let connecting = self
            .endpoint_for(addr)?
            .connect(addr, &self.server_name)
            .map_err(|e| UplinkError::connect(addr, e))?;
        timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| UplinkError::Timeout(self.connect_timeout))?
            .map_err(|e| UplinkError::connect(addr, e))
    }

    /// Sends one batch and waits for the server's acknowledgement.
    pub async fn send(&mut self, batch: &Batch) -> Result<Ack, UplinkError> {
        let bytes = to_bincode(batch)?;
        self.send_bytes(&bytes).await
    }

    /// Sends already-encoded bytes (tests use it to send malformed batches).
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<Ack, UplinkError> {
        let conn = self.connection().await?;
        let result = timeout(self.exchange_timeout, exchange(&conn, bytes)).await;
        match result {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(e)) => {
                // A broken stream usually means a broken connection: start afresh.
                self.connection = None;
                Err(e)
            }
            Err(_) => {
                self.connection = None;
                Err(UplinkError::Timeout(self.exchange_timeout))
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(&mut self) {
        if let Some(c) = self.connection.take() {
            c.close(0u32.into(), b"agent stopping");
        }
        for (_, e) in &self.endpoints {
            e.wait_idle().await;
        }
    }
}

async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<Ack, UplinkError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(UplinkError::stream)?;
    match send.write_all(bytes).await {
        Ok(()) => send.finish().map_err(UplinkError::stream)?,
        // The server stopped reading (a batch over its byte limit, or an agent over its
        // rate): its answer follows.
        Err(quinn::WriteError::Stopped(_)) => {}
        Err(e) => return Err(UplinkError::stream(e)),
    }
    let answer = recv
        .read_to_end(MAX_ACK_BYTES)
        .await
        .map_err(UplinkError::stream)?;
    let limits = Limits {
        max_bytes: MAX_ACK_BYTES,
        ..Limits::default()
    };
    from_bincode::<Ack>(&answer, &limits).map_err(|source| UplinkError::BadAck {
        status: None,
        source,
    })
}
