//! Ingest over HTTPS: `POST /v1/ingest` with a JSON batch (optionally gzip-compressed),
//! mutual TLS as on QUIC.
//!
//! The fallback transport for agents whose network drops UDP, and the door for tools that
//! speak JSON. The TLS handshake requires a client certificate of the deployment CA; the
//! certificate's identity is attached to every request of the connection and checked
//! against the batch exactly as on QUIC. Answers: 200 with the `Ack` when stored; 400
//! malformed or invalid; 401 without a usable identity, 403 for another agent's or
//! tenant's batch and over a device or agent quota (`quota_exceeded` in the body);
//! 413 over the byte or item limits; 415 for an unknown encoding;
//! 429 with `Retry-After` when overloaded; 503 when the store failed.

use super::Ingestor;
use super::tls::IngestTls;
use crate::internal_events::{InternalEvent, PeerConnection, ServerMetrics};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use ispvm_proto::codec::from_json;
use ispvm_proto::{Ack, AckStatus, Batch, RejectCode};
use ispvm_transport::PeerIdentity;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A TLS handshake slower than this is dropped (slowloris).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn status_of(code: RejectCode) -> StatusCode {
    match code {
        RejectCode::Malformed | RejectCode::Invalid | RejectCode::UnsupportedVersion => {
            StatusCode::BAD_REQUEST
        }
        RejectCode::TooLarge | RejectCode::TooManyItems => StatusCode::PAYLOAD_TOO_LARGE,
        RejectCode::Unauthorized | RejectCode::QuotaExceeded => StatusCode::FORBIDDEN,
        RejectCode::Unstorable => StatusCode::UNPROCESSABLE_ENTITY,
        RejectCode::SeqReused => StatusCode::CONFLICT,
        RejectCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        RejectCode::Internal => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The HTTP answer for an acknowledgement.
pub fn ack_response(ack: Ack) -> Response {
    let (status, retry_after) = match &ack.status {
        AckStatus::Accepted { .. } => (StatusCode::OK, None),
        AckStatus::Rejected {
            code,
            retry_after_ms,
            ..
        } => (status_of(*code), *retry_after_ms),
    };
    let mut response = (status, Json(ack)).into_response();
    if let Some(ms) = retry_after {
        let secs = ms.div_ceil(1000).max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

/// Reads the body, inflating gzip within the byte limit (a small compressed body must
/// not expand into gigabytes).
/// Why a body could not be read.
enum BodyError {
    /// A `Content-Encoding` this endpoint does not speak (415).
    Encoding(String),
    /// Bytes that are refused like any bad batch.
    Reject(RejectCode, String),
}

fn body_bytes(headers: &HeaderMap, body: &Bytes, limit: usize) -> Result<Vec<u8>, BodyError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(body.as_ref()).take(limit as u64 + 1);
            reader.read_to_end(&mut out).map_err(|e| {
                BodyError::Reject(RejectCode::Malformed, format!("bad gzip body: {e}"))
            })?;
            if out.len() > limit {
                return Err(BodyError::Reject(
                    RejectCode::TooLarge,
                    format!("batch is over the limit of {limit} bytes once inflated"),
                ));
            }
            Ok(out)
        }
        other => Err(BodyError::Encoding(format!(
            "unsupported content-encoding {other:?}: use gzip or none"
        ))),
    }
}

async fn ingest(
    State(ingestor): State<Arc<Ingestor>>,
    Extension(peer): Extension<Arc<PeerIdentity>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Over its rate, the agent's body is never read.
    if let Err(ack) = ingestor.admit(&peer) {
        return ack_response(*ack);
    }
    let limit = ingestor.limits().max_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let ack = if too_large {
                ingestor.too_large(&peer)
            } else {
                ingestor.reject_now(&peer, RejectCode::Malformed, format!("body not read: {e}"))
            };
            return ack_response(ack);
        }
    };
    let bytes = match body_bytes(&headers, &body, limit) {
        Ok(b) => b,
        Err(BodyError::Encoding(msg)) => {
            let ack = ingestor.reject_now(&peer, RejectCode::Malformed, msg);
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(ack)).into_response();
        }
        Err(BodyError::Reject(code, msg)) => {
            return ack_response(ingestor.reject_now(&peer, code, msg));
        }
    };
    match from_json::<Batch>(&bytes, ingestor.limits()) {
        Ok(batch) => ack_response(ingestor.handle(&peer, batch).await),
        Err(e) => ack_response(ingestor.reject_now(&peer, e.reject_code(), e.to_string())),
    }
}

fn router(ingestor: Arc<Ingestor>) -> Router {
    // The handler reads the body itself, after the rate check, within the byte limit.
    Router::new()
        .route("/v1/ingest", post(ingest))
        .with_state(ingestor)
}

/// Serves HTTPS ingest on `listener` until `stop` turns true, each connection with the
/// acceptor `tls` holds when it arrives; a new revocation list ends the connections made
/// before it.
pub async fn serve(
    listener: TcpListener,
    tls: watch::Receiver<IngestTls>,
    ingestor: Arc<Ingestor>,
    metrics: Arc<ServerMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(ingestor.clone());
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTPS accept failed");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let mut renewed = tls.clone();
        let (acceptor, epoch) = {
            let t = renewed.borrow_and_update();
            (t.https.clone(), t.epoch)
        };
        let app = app.clone();
        let ingestor = ingestor.clone();
        let metrics = metrics.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    PeerConnection {
                        transport: "https",
                        remote,
                        peer: None,
                        refused: Some(&e),
                    }
                    .emit(&metrics);
                    return;
                }
                Err(_) => return,
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or(ispvm_transport::IdentityError::NoCertificate)
                .and_then(PeerIdentity::from_der);
            let peer = match identity {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    PeerConnection {
                        transport: "https",
                        remote,
                        peer: None,
                        refused: Some(&e),
                    }
                    .emit(&metrics);
                    return;
                }
            };
            let Some(_counted) = ingestor.connection("https", remote, &peer) else {
                return;
            };
            let service = TowerToHyperService::new(app.layer(Extension(peer)));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            if renewed.borrow().epoch != epoch {
                return;
            }
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
                _ = renewed.changed() => {
                    tracing::info!(%remote, "HTTPS ingest connection closed: revocation list changed");
                    return;
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "HTTPS ingest connection ended");
            }
        });
    }
}
