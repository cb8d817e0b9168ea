//! The incident notifier: deliveries sent, retried, given up, or held back.

use super::{DeliveryLabel, ServerMetrics};
use crate::notify::channel::ChannelKind;
use crate::notify::delivery::AttemptOutcome;
use ispvm_telemetry::InternalEvent;

/// A delivery was attempted, or held back (silenced, maintenance).
pub struct NotificationAttempted<'a> {
    pub tenant: &'a str,
    pub incident: i64,
    pub seq: i64,
    pub channel: &'a str,
    /// `None` when the channel could not be read (deleted, secret unreadable).
    pub kind: Option<ChannelKind>,
    pub outcome: &'a AttemptOutcome,
    /// Attempts made so far, this one included.
    pub attempts: i64,
}

impl InternalEvent for NotificationAttempted<'_> {
    type Metrics = ServerMetrics;
    const NAME: &'static str = "NotificationAttempted";

    fn log_and_count(&self, m: &ServerMetrics) {
        let outcome = match self.outcome {
            AttemptOutcome::Sent => "sent",
            AttemptOutcome::Retry { .. } => "retried",
            AttemptOutcome::Failed { .. } => "failed",
            AttemptOutcome::Held(s) => s.as_str(),
        };
        m.notification_deliveries
            .get_or_create(&DeliveryLabel {
                channel: self.kind.map_or("unknown", ChannelKind::as_str),
                outcome,
            })
            .inc();
        let (tenant, incident, seq, channel, attempts) = (
            self.tenant,
            self.incident,
            self.seq,
            self.channel,
            self.attempts,
        );
        match self.outcome {
            AttemptOutcome::Sent => {
                tracing::info!(
                    tenant,
                    incident,
                    seq,
                    channel,
                    attempts,
                    "incident notification sent"
                )
            }
            AttemptOutcome::Retry {
                error,
                next_attempt_ms,
            } => {
                tracing::warn!(tenant, incident, seq, channel, attempts, next_attempt_ms, error = %error,
                "incident notification failed; will retry")
            }
            AttemptOutcome::Failed { error } => {
                tracing::error!(tenant, incident, seq, channel, attempts, error = %error,
                "incident notification failed for good")
            }
            AttemptOutcome::Held(s) => tracing::info!(
                tenant,
                incident,
                seq,
                channel,
                held = s.as_str(),
                "incident notification held back, not sent"
            ),
        }
    }
}
