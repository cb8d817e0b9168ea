//! Deliveries: one per (incident transition, channel), the unit the notifier stores
//! before it sends, retries and reports.

use ispvm_actors::incident::Transition;
use serde::Serialize;

ispvm_proto::text_enum! {
    /// Where a delivery is.
    #[derive(utoipa::ToSchema)]
    pub enum DeliveryState {
        /// Not sent yet, or to be retried at `next_attempt_ms`.
        Pending = "pending",
        /// The channel accepted it (a 2xx answer, or the SMTP server took the mail).
        Sent = "sent",
        /// Every attempt failed; `last_error` says why.
        Failed = "failed",
        /// An acknowledgement silenced the incident: not sent.
        Silenced = "silenced",
        /// What failed is inside an active maintenance window: not sent.
        Maintenance = "maintenance",
    }
}

impl DeliveryState {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        self != DeliveryState::Pending
    }
}

/// What identifies a delivery, everywhere: (tenant, incident, transition number,
/// channel).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    pub tenant: String,
    pub incident: i64,
    pub seq: i64,
    pub channel: String,
}

impl DeliveryKey {
    /// `tenant:incident:seq:channel`, the `X-ISPVM-Delivery` header: the same on every
    /// attempt, so a receiver can drop a repeat.
    pub fn delivery_id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.tenant, self.incident, self.seq, self.channel
        )
    }
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = NotificationDelivery)]
pub struct DeliveryRow {
    /// The idempotency key receivers see (`X-ISPVM-Delivery`).
    pub delivery_id: String,
    pub incident_id: i64,
    /// The transition's number within the incident.
    pub seq: i64,
    pub transition: Transition,
    pub channel_id: String,
    pub state: DeliveryState,
    pub attempts: i64,
    /// When the next attempt is due (pending ones).
    pub next_attempt_ms: i64,
    /// What the last failed attempt met.
    pub last_error: Option<String>,
    pub sent_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A transition the notifier has not yet turned into deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnplannedTransition {
    pub tenant: String,
    pub incident: i64,
    pub seq: i64,
    pub transition: Transition,
    pub at_ms: i64,
}

/// A pending delivery whose attempt is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub key: DeliveryKey,
    pub transition: Transition,
    pub at_ms: i64,
    pub attempts: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Sent,
    /// Failed; retried at `next_attempt_ms`.
    Retry {
        error: String,
        next_attempt_ms: i64,
    },
    /// Failed for the last time (or cannot ever succeed).
    Failed {
        error: String,
    },
    /// Not sent after all: silenced or in maintenance since it was planned.
    Held(DeliveryState),
}

/// Which deliveries a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub incident: Option<i64>,
    pub channel: Option<String>,
}
