//! The HTTPS uplink: the same batches as JSON over HTTPS with mutual TLS, for networks
//! that drop UDP (and so QUIC). One request per batch, gzip-compressed; the answer is the
//! same `Ack` the QUIC uplink gets, with 429 + `Retry-After` for backpressure.

use super::UplinkError;
use super::error::Cause;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header;
use hyper_util::rt::TokioIo;
use ispvm_proto::codec::{from_json, to_json};
use ispvm_proto::{Ack, Batch, Limits};
use ispvm_transport::TlsMaterial;
use rustls::pki_types::ServerName;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Largest answer read back.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// A client of the server's `POST /v1/ingest`.
pub struct HttpsUplink {
    server: SocketAddr,
    server_name: String,
    connector: tokio_rustls::TlsConnector,
    timeout: Duration,
    /// The agent's `source_address`, bound by every connection.
    source: Option<std::net::IpAddr>,
}

impl HttpsUplink {
    pub fn new(
        server: SocketAddr,
        server_name: String,
        material: &TlsMaterial,
        timeout: Duration,
    ) -> Result<Self, UplinkError> {
        let config = material
            .client_config(&[b"http/1.1"])
            .map_err(|e| UplinkError::connect(server, e))?;
        Ok(HttpsUplink {
            server,
            server_name,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
            source: None,
        })
    }

    /// The same client connecting from `source` (the agent's `source_address`).
    pub fn with_source(mut self, source: Option<std::net::IpAddr>) -> Self {
        self.source = source;
        self
    }

    /// Sends one batch (gzip-compressed JSON) and returns the server's acknowledgement.
    pub async fn send(&self, batch: &Batch) -> Result<Ack, UplinkError> {
        let json = to_json(batch)?;
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        let body = gz
            .write_all(&json)
            .and_then(|()| gz.finish())
            .map_err(UplinkError::Compress)?;
        let (status, _, answer) = self.post_raw(body, Some("gzip")).await?;
        let limits = Limits {
            max_bytes: MAX_ANSWER_BYTES,
            ..Limits::default()
        };
        from_json::<Ack>(&answer, &limits).map_err(|source| UplinkError::BadAck {
            status: Some(status),
            source,
        })
    }

    /// Posts a body as it is and returns the status, `Retry-After` and body (tests use it
    /// to send malformed input).
    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> Result<(u16, Option<String>, Vec<u8>), UplinkError> {
        timeout(self.timeout, self.exchange(body, encoding))
            .await
            .map_err(|_| UplinkError::Timeout(self.timeout))?
    }

    async fn exchange(
        &self,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> Result<(u16, Option<String>, Vec<u8>), UplinkError> {
        let connect_err = |e: Cause| UplinkError::connect(self.server, e);
        let tcp: TcpStream = crate::source_address::tcp_connect(self.server, self.source)
            .await
            .map_err(|e| connect_err(e.into()))?;
        let name =
            ServerName::try_from(self.server_name.clone()).map_err(|e| connect_err(e.into()))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| connect_err(e.into()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(UplinkError::stream)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = hyper::Request::post("/v1/ingest")
            .header(header::HOST, self.server_name.as_str())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(e) = encoding {
            request = request.header(header::CONTENT_ENCODING, e);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(UplinkError::stream)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(UplinkError::stream)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(UplinkError::stream)?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok((status, retry_after, answer))
    }
}
