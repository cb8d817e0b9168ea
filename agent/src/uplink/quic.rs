//! The QUIC uplink: one long-lived mutual-TLS connection to the server, one
//! bidirectional stream per batch (bincode out, bincode acknowledgement back).

use ispvm_proto::codec::{from_bincode, to_bincode};
use ispvm_proto::{Ack, Batch, Limits};
use ispvm_transport::TlsMaterial;
use ispvm_transport::quic::{ALPN_INGEST, EndpointError, client_endpoint};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

/// Largest acknowledgement read back; acks are tiny.
const MAX_ACK_BYTES: usize = 64 << 10;

/// Why a batch did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("cannot connect to the server at {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("stream failed: {0}")]
    Stream(String),
    #[error("cannot encode batch: {0}")]
    Encode(String),
    #[error("server sent an unreadable acknowledgement: {0}")]
    BadAck(String),
}

/// A reusable connection to the server's ingest endpoint.
pub struct QuicUplink {
    endpoint: quinn::Endpoint,
    server: SocketAddr,
    server_name: String,
    connection: Option<quinn::Connection>,
    connect_timeout: Duration,
    exchange_timeout: Duration,
}

impl QuicUplink {
    pub fn new(
        server: SocketAddr,
        server_name: String,
        material: &TlsMaterial,
        connect_timeout: Duration,
        exchange_timeout: Duration,
    ) -> Result<Self, UplinkError> {
        Ok(QuicUplink {
            endpoint: client_endpoint(server, material, ALPN_INGEST)?,
            server,
            server_name,
            connection: None,
            connect_timeout,
            exchange_timeout,
        })
    }

    async fn connection(&mut self) -> Result<quinn::Connection, UplinkError> {
        if let Some(c) = &self.connection
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let connecting = self
            .endpoint
            .connect(self.server, &self.server_name)
            .map_err(|e| UplinkError::Connect {
                addr: self.server,
                reason: e.to_string(),
            })?;
        let conn = timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| UplinkError::Timeout(self.connect_timeout))?
            .map_err(|e| UplinkError::Connect {
                addr: self.server,
                reason: e.to_string(),
            })?;
        self.connection = Some(conn.clone());
        Ok(conn)
    }

    /// Sends one batch and waits for the server's acknowledgement.
    pub async fn send(&mut self, batch: &Batch) -> Result<Ack, UplinkError> {
        let bytes = to_bincode(batch).map_err(|e| UplinkError::Encode(e.to_string()))?;
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
        self.endpoint.wait_idle().await;
    }
}

/// A stream error with its causes: "connection lost" alone would hide the server's close
/// reason (e.g. "too many connections").
fn stream_error(e: &dyn std::error::Error) -> UplinkError {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    UplinkError::Stream(text)
}

async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<Ack, UplinkError> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| stream_error(&e))?;
    match send.write_all(bytes).await {
        Ok(()) => send.finish().map_err(|e| stream_error(&e))?,
        // The server stopped reading (a batch over its byte limit, or an agent over its
        // rate): its answer follows.
        Err(quinn::WriteError::Stopped(_)) => {}
        Err(e) => return Err(stream_error(&e)),
    }
    let answer = recv
        .read_to_end(MAX_ACK_BYTES)
        .await
        .map_err(|e| stream_error(&e))?;
    let limits = Limits {
        max_bytes: MAX_ACK_BYTES,
        ..Limits::default()
    };
    from_bincode::<Ack>(&answer, &limits).map_err(|e| UplinkError::BadAck(e.to_string()))
}
