//! The on-call pager a scenario pages: a webhook receiver on loopback, registered as the
//! tenant's notification channel, so "notifications sent" counts deliveries that really
//! went out over HTTP (and not the ones a maintenance window or an ack held back).

use anyhow::Context;
use ispvm_server::notify::channel::{ChannelKind, ChannelSecret, ChannelSpec, WebhookSettings};
use ispvm_server::notify::delivery::{DeliveryFilter, DeliveryState};
use ispvm_server::store::{Actor, MasterKey, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The channel's id in the scenario tenant.
const CHANNEL: &str = "scenario-pager";

/// A running receiver and how many requests it answered.
pub struct Pager {
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Pager {
    /// Starts the receiver and registers it as a webhook channel of `tenant`.
    pub async fn start(store: &Store, key: &MasterKey, tenant: &str) -> anyhow::Result<Pager> {
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/page",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { axum::http::StatusCode::OK }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the scenario pager")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "scenario pager stopped");
            }
        });
        let spec = ChannelSpec {
            name: "Scenario pager".into(),
            kind: ChannelKind::Webhook,
            enabled: true,
            min_severity: None,
            webhook: Some(WebhookSettings {
                url: format!("http://{addr}/page"),
                timeout_ms: 2_000,
            }),
            email: None,
        };
        let secret = ChannelSecret {
            webhook_secret: Some("scenario-pager-signing-secret".into()),
            smtp_password: None,
        };
        store
            .tenant(tenant)
            .create_channel(&Actor::system(), Some(key), CHANNEL, &spec, &secret)
            .await
            .context("registering the scenario pager")?;
        Ok(Pager { received, task })
    }

    /// Requests the receiver answered.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits (boundedly) for every transition to be delivered or held, then lists the
/// deliveries that went out: `(incident, planned at ms)`.
pub async fn sent(store: &Store, tenant: &str) -> anyhow::Result<Vec<(u64, i64)>> {
    let ts = store.tenant(tenant);
    for _ in 0..50 {
        if ts.notifications_settled().await? {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let filter = DeliveryFilter {
        state: Some(DeliveryState::Sent),
        ..DeliveryFilter::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = ts.deliveries_page(&filter, after.as_ref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.incident_id, last.seq, last.channel_id.clone()));
        out.extend(
            page.iter()
                .map(|d| (u64::try_from(d.incident_id).unwrap_or(0), d.created_ms)),
        );
        if page.len() < 500 {
            break;
        }
    }
    Ok(out)
}
