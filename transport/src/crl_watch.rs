//! Applying a new certificate revocation list without a restart.
//!
//! `ispvm pki revoke` rewrites `crl.pem` beside the CA. Every process that holds TLS
//! material (agents' gossip, the server's ingest) re-reads it periodically and, when it
//! changed, rebuilds its TLS configurations and drops the connections made under the old
//! list: peers reconnect at once, and a revoked peer's handshake fails. A revoked agent is
//! therefore cut off within one check interval, not at the next restart.

use crate::tls::TlsMaterial;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often `crl.pem` is checked by default.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Checks `material`'s revocation list every `every` and calls `apply` with the new
/// material whenever the file's list differs from the one in force. An unreadable file
/// keeps the list in force (logged once per distinct error), so a half-written or
/// broken CRL never lifts a revocation.
pub fn spawn(
    mut material: TlsMaterial,
    every: Duration,
    mut apply: impl FnMut(&TlsMaterial) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        let mut last_error: Option<String> = None;
        loop {
            tick.tick().await;
            match material.with_current_crls() {
                Ok(Some(new)) => {
                    tracing::info!(
                        lists = new.crls.len(),
                        "certificate revocation list changed; applying it and reconnecting peers"
                    );
                    apply(&new);
                    material = new;
                    last_error = None;
                }
                Ok(None) => last_error = None,
                Err(e) => {
                    let e = e.to_string();
                    if last_error.as_ref() != Some(&e) {
                        tracing::warn!(error = %e, "cannot read the revocation list; the one in force stays");
                        last_error = Some(e);
                    }
                }
            }
        }
    })
}
