//! The QUIC ingest listener: mutual TLS (only CA-issued client certificates get past the
//! handshake), one bidirectional stream per batch, bincode in, bincode acknowledgement out.
//! An agent holds at most a few connections (`[quic] max_connections_per_agent`), each
//! with at most [`ispvm_transport::quic::MAX_STREAMS`] batches in flight.

use super::Ingestor;
use super::tls::IngestTls;
use crate::internal_events::{InternalEvent, PeerConnection, ServerMetrics};
use ispvm_proto::codec::to_bincode;
use ispvm_proto::{Ack, RejectCode};
use ispvm_transport::PeerIdentity;
use std::sync::Arc;
use tokio::sync::watch;

/// Serves `endpoint` until `stop` turns true. A connection is closed when `tls` moves
/// to a new epoch (a new revocation list): the agent reconnects under the new list.
pub async fn serve(
    endpoint: quinn::Endpoint,
    ingestor: Arc<Ingestor>,
    metrics: Arc<ServerMetrics>,
    tls: watch::Receiver<IngestTls>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = stop.changed() => break,
        };
        let Some(incoming) = incoming else { break };
        let ingestor = ingestor.clone();
        let metrics = metrics.clone();
        let mut tls = tls.clone();
        let epoch = tls.borrow_and_update().epoch;
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    PeerConnection {
                        transport: "quic",
                        remote,
                        peer: None,
                        refused: Some(&e),
                    }
                    .emit(&metrics);
                    return;
                }
            };
            let peer = match PeerIdentity::of_connection(&conn) {
                Ok(p) => p,
                Err(e) => {
                    PeerConnection {
                        transport: "quic",
                        remote,
                        peer: None,
                        refused: Some(&e),
                    }
                    .emit(&metrics);
                    conn.close(1u32.into(), b"certificate states no identity");
                    return;
                }
            };
            PeerConnection {
                transport: "quic",
                remote,
                peer: Some(&peer.common_name),
                refused: None,
            }
            .emit(&metrics);
            // A handshake that raced a new revocation list is redone under it.
            if tls.borrow().epoch != epoch {
                conn.close(2u32.into(), b"revocation list changed");
                return;
            }
            let Some(_counted) = ingestor.connection("quic", remote, &peer) else {
                conn.close(3u32.into(), b"too many connections");
                return;
            };
            tokio::select! {
                _ = serve_connection(conn.clone(), Arc::new(peer), ingestor) => {}
                _ = tls.changed() => conn.close(2u32.into(), b"revocation list changed"),
            }
        });
    }
    endpoint.close(0u32.into(), b"server stopping");
    endpoint.wait_idle().await;
}

async fn serve_connection(
    conn: quinn::Connection,
    peer: Arc<PeerIdentity>,
    ingestor: Arc<Ingestor>,
) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(peer = %peer.common_name, reason = %e, "agent connection closed");
                return;
            }
        };
        let peer = peer.clone();
        let ingestor = ingestor.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_stream(send, recv, &peer, &ingestor).await {
                tracing::debug!(peer = %peer.common_name, error = %e, "ingest stream failed");
            }
        });
    }
}

async fn serve_stream(
    send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: &PeerIdentity,
    ingestor: &Ingestor,
) -> Result<(), String> {
    let read = match ingestor.admit(peer) {
        Ok(()) => recv.read_to_end(ingestor.limits().max_bytes).await,
        Err(ack) => {
            // Over its rate: the batch is not read; the agent keeps it and retries.
            let _ = recv.stop(0u32.into());
            return answer(send, &ack).await;
        }
    };
    let ack = match read {
        Ok(bytes) => ingestor.handle_bincode(peer, &bytes).await,
        Err(quinn::ReadToEndError::TooLong) => {
            // Tell the agent to stop sending the rest; it still reads our answer.
            let _ = recv.stop(0u32.into());
            ingestor.too_large(peer)
        }
        Err(e) => return Err(e.to_string()),
    };
    answer(send, &ack).await
}

/// Writes `ack` on the stream and waits until the agent has it.
async fn answer(mut send: quinn::SendStream, ack: &Ack) -> Result<(), String> {
    let bytes = match to_bincode(ack) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an acknowledgement");
            to_bincode(&Ack::rejected(
                ack.seq,
                RejectCode::Internal,
                "internal error",
            ))
            .map_err(|e| e.to_string())?
        }
    };
    send.write_all(&bytes).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    // Wait until the agent has the answer before the stream is dropped.
    let _ = send.stopped().await;
    Ok(())
}
