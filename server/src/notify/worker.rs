//! The notifier's worker: turns stored incident transitions into deliveries (stored
//! before anything is sent), sends the due ones, records each outcome and retries with
//! exponential backoff.
//!
//! Everything it owes is in the store, so a restart resumes where it stopped: a
//! transition not yet planned is planned, a pending delivery is attempted again, a
//! delivery recorded as sent is never sent again. The one window left is an attempt
//! that reached the receiver but whose outcome was not yet recorded when the process
//! died; it is sent again with the same `X-ISPVM-Delivery`, which receivers use to drop
//! the repeat.

use super::channel::ChannelKind;
use super::delivery::{AttemptOutcome, DeliveryState, DueDelivery, UnplannedTransition};
use super::hold::held;
use super::payload::Payload;
use super::{email, webhook};
use crate::internal_events::{NotificationAttempted, ServerMetrics};
use crate::store::{CatalogError, MasterKey, Store, StoreError};
use ispvm_actors::tree::IncidentHook;
use ispvm_telemetry::InternalEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Longest sleep between passes when nothing wakes it.
    pub tick: Duration,
    /// Wait before the first retry; doubled for each further one.
    pub backoff_base_ms: i64,
    /// Longest wait between two attempts.
    pub backoff_cap_ms: i64,
    /// Attempts before a delivery is `failed`.
    pub max_attempts: i64,
    /// Transitions planned, and deliveries attempted, per pass.
    pub batch: i64,
}

impl Default for NotifyOptions {
    /// 1 s doubling to at most 5 min, 8 attempts: about 4 minutes of retries, enough
    /// to ride out a receiver's restart, short enough that a failure is seen while the
    /// incident is still news.
    fn default() -> Self {
        NotifyOptions {
            tick: Duration::from_secs(5),
            backoff_base_ms: 1_000,
            backoff_cap_ms: 300_000,
            max_attempts: 8,
            batch: 100,
        }
    }
}

impl NotifyOptions {
    /// The wait after the `attempts`-th failed attempt.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.backoff_base_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.backoff_cap_ms)
    }
}

/// Why a pass could not finish; the next pass tries again.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The notifier: one per server, over every tenant.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    key: Option<MasterKey>,
    metrics: Arc<ServerMetrics>,
    options: NotifyOptions,
    wake: Arc<Notify>,
    client: reqwest::Client,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub planned: usize,
    pub attempted: usize,
}

/// The error and its sources, one line: reqwest's own message ("error sending
/// request") says little without them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl Notifier {
    pub fn new(
        store: Store,
        key: Option<MasterKey>,
        metrics: Arc<ServerMetrics>,
        options: NotifyOptions,
    ) -> Result<Self, NotifyError> {
        Ok(Notifier {
            store,
            key,
            metrics,
            options,
            wake: Arc::new(Notify::new()),
            client: webhook::client().map_err(NotifyError::Client)?,
        })
    }

    /// The correlator's `on_incident` hook: a persisted transition wakes the worker at
    /// once instead of at its next tick.
    pub fn hook(&self) -> IncidentHook {
        let wake = Arc::clone(&self.wake);
        Arc::new(move |_, _, _| wake.notify_one())
    }

    /// Wakes the worker (tests, and anything else that stored transitions).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts the worker; it runs until `stop` turns true.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    /// The worker loop: a pass, then sleep until woken, the next retry is due, or the
    /// tick; a full batch goes on at once. An attempt in flight when `stop` turns is
    /// abandoned (it stays pending and is retried after the restart).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let pass = tokio::select! {
                r = self.pass() => r,
                _ = stop.changed() => return,
            };
            let full = match pass {
                Ok(r) => r.planned >= self.batch_len() || r.attempted >= self.batch_len(),
                Err(e) => {
                    tracing::warn!(error = %e, "notifier pass failed; retrying");
                    false
                }
            };
            if full {
                continue;
            }
            let sleep = self.until_next_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn batch_len(&self) -> usize {
        usize::try_from(self.options.batch).unwrap_or(usize::MAX)
    }

    async fn until_next_due(&self) -> Duration {
        let now = ispvm_proto::time::now_ms();
        match self.store.next_delivery_due().await {
            Ok(Some(due)) => {
                let ms = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                Duration::from_millis(ms).min(self.options.tick)
            }
            _ => self.options.tick,
        }
    }

    /// One pass: plan what is unplanned, attempt what is due.
    pub async fn pass(&self) -> Result<PassReport, NotifyError> {
        let mut report = PassReport::default();
        let now = ispvm_proto::time::now_ms();
        for t in self.store.unplanned_transitions(self.options.batch).await? {
            self.plan(&t, now).await?;
            report.planned += 1;
        }
        let now = ispvm_proto::time::now_ms();
        for d in self.store.due_deliveries(now, self.options.batch).await? {
            self.attempt(&d).await?;
            report.attempted += 1;
        }
        Ok(report)
    }

    /// One delivery per channel that takes the incident, held when it is silenced or in
    /// maintenance; stored in one transaction with the transition marked planned.
    async fn plan(&self, t: &UnplannedTransition, now: i64) -> Result<(), NotifyError> {
        let ts = self.store.tenant(&t.tenant);
        let incident = match ts.incident(t.incident).await {
            Ok(i) => i,
            Err(e @ StoreError::Document { .. }) => {
                tracing::error!(tenant = %t.tenant, incident = t.incident, error = %e,
                    "incident unreadable: its transition is not notified");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let mut deliveries = Vec::new();
        if let Some(incident) = incident {
            let view = ts.maintenance_view(now).await?;
            let hold = held(&incident, &view, now);
            for c in ts.channels().await? {
                if c.spec.accepts(incident.severity) {
                    deliveries.push((c.id, c.spec.kind, hold.unwrap_or(DeliveryState::Pending)));
                }
            }
        }
        let rows: Vec<(String, DeliveryState)> =
            deliveries.iter().map(|(c, _, s)| (c.clone(), *s)).collect();
        ts.plan_deliveries(t, &rows, now).await?;
        for (channel, kind, state) in &deliveries {
            if *state != DeliveryState::Pending {
                NotificationAttempted {
                    tenant: &t.tenant,
                    incident: t.incident,
                    seq: t.seq,
                    channel,
                    kind: Some(*kind),
                    outcome: &AttemptOutcome::Held(*state),
                    attempts: 0,
                }
                .emit(&self.metrics);
            }
        }
        Ok(())
    }

    /// Sends one due delivery and records what came of it.
    async fn attempt(&self, d: &DueDelivery) -> Result<(), NotifyError> {
        let (outcome, kind) = self.try_send(d).await?;
        let now = ispvm_proto::time::now_ms();
        self.store
            .tenant(&d.key.tenant)
            .record_attempt(&d.key, &outcome, now)
            .await?;
        NotificationAttempted {
            tenant: &d.key.tenant,
            incident: d.key.incident,
            seq: d.key.seq,
            channel: &d.key.channel,
            kind,
            outcome: &outcome,
            attempts: d.attempts + i64::from(!matches!(outcome, AttemptOutcome::Held(_))),
        }
        .emit(&self.metrics);
        Ok(())
    }

    fn failure(&self, d: &DueDelivery, error: String) -> AttemptOutcome {
        let attempts = d.attempts + 1;
        if attempts >= self.options.max_attempts {
            AttemptOutcome::Failed { error }
        } else {
            AttemptOutcome::Retry {
                error,
                next_attempt_ms: ispvm_proto::time::now_ms()
                    .saturating_add(self.options.backoff_ms(attempts)),
            }
        }
    }

    async fn try_send(
        &self,
        d: &DueDelivery,
    ) -> Result<(AttemptOutcome, Option<ChannelKind>), NotifyError> {
        let ts = self.store.tenant(&d.key.tenant);
        let gone = |what: &str| AttemptOutcome::Failed {
            error: what.to_owned(),
        };
        let Some(incident) = ts.incident(d.key.incident).await? else {
            return Ok((gone("the incident no longer exists"), None));
        };
        let (channel, secret) = match ts.channel_secret(self.key.as_ref(), &d.key.channel).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok((gone("the channel was deleted"), None)),
            Err(e @ (CatalogError::Seal(_) | CatalogError::NoMasterKey)) => {
                return Ok((gone(&chain(&e)), None));
            }
            Err(e) => return Err(e.into()),
        };
        let kind = Some(channel.spec.kind);
        if !channel.spec.enabled {
            return Ok((gone("the channel was disabled"), kind));
        }
        let now = ispvm_proto::time::now_ms();
        let view = ts.maintenance_view(now).await?;
        if let Some(state) = held(&incident, &view, now) {
            return Ok((AttemptOutcome::Held(state), kind));
        }
        let id = d.key.delivery_id();
        let payload = Payload::new(
            &d.key.tenant,
            &incident,
            d.transition,
            d.key.seq,
            d.at_ms,
            id.clone(),
        );
        let sent = match (&channel.spec.webhook, &channel.spec.email) {
            (Some(w), _) if channel.spec.kind == ChannelKind::Webhook => {
                match serde_json::to_vec(&payload) {
                    Ok(body) => {
                        webhook::send(&self.client, w, secret.webhook_secret.as_deref(), &id, body)
                            .await
                            .map_err(|e| chain(&e))
                    }
                    Err(e) => Err(chain(&e)),
                }
            }
            (_, Some(e)) if channel.spec.kind == ChannelKind::Email => email::send(
                e,
                secret.smtp_password.as_deref(),
                &payload.subject(),
                payload.text(),
                &id,
            )
            .await
            .map_err(|e| chain(&e)),
            _ => Err("the channel has no settings for its kind".to_owned()),
        };
        Ok(match sent {
            Ok(()) => (AttemptOutcome::Sent, kind),
            Err(error) => (self.failure(d, error), kind),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let o = NotifyOptions::default();
        assert_eq!(o.backoff_ms(1), 1_000);
        assert_eq!(o.backoff_ms(2), 2_000);
        assert_eq!(o.backoff_ms(4), 8_000);
        assert_eq!(o.backoff_ms(20), 300_000);
        assert_eq!(o.backoff_ms(i64::MAX), 300_000);
    }
}
