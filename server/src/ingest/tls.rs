//! The TLS in force for ingest, renewed when the CA's revocation list changes.
//!
//! `ispvm pki revoke` rewrites `crl.pem`; the server re-reads it every `crl_check_ms`.
//! On a change the QUIC endpoint gets a new configuration, HTTPS a new acceptor, and
//! the epoch moves on: both listeners close the connections made before it, so a
//! revoked agent loses its open connection and its next handshake is refused.

use ispvm_transport::quic::{ALPN_INGEST, server_config};
use ispvm_transport::{TlsError, TlsMaterial, crl_watch};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// ALPN of HTTPS ingest.
const ALPN_HTTPS: &[u8] = b"http/1.1";

/// What both ingest listeners read per connection.
#[derive(Clone)]
pub struct IngestTls {
    /// Moves on with every new revocation list.
    pub epoch: u64,
    pub https: TlsAcceptor,
}

fn https_acceptor(material: &TlsMaterial) -> Result<TlsAcceptor, TlsError> {
    Ok(TlsAcceptor::from(Arc::new(
        material.server_config(&[ALPN_HTTPS])?,
    )))
}

/// The ingest TLS now, and a task that renews it (and `endpoint`'s configuration)
/// whenever the revocation list changes.
pub fn renewing(
    material: &TlsMaterial,
    endpoint: quinn::Endpoint,
    every: Duration,
) -> Result<(watch::Receiver<IngestTls>, JoinHandle<()>), TlsError> {
    let (tx, rx) = watch::channel(IngestTls {
        epoch: 0,
        https: https_acceptor(material)?,
    });
    let task = crl_watch::spawn(material.clone(), every, move |m| {
        match (server_config(m, ALPN_INGEST), https_acceptor(m)) {
            (Ok(quic), Ok(https)) => {
                endpoint.set_server_config(Some(quic));
                tx.send_modify(|t| {
                    t.epoch += 1;
                    t.https = https;
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "new revocation list not applied to ingest");
            }
        }
    });
    Ok((rx, task))
}
