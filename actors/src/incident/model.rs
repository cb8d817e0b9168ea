//! An incident: one real fault, with its root cause, what it impacts, the alerts it
//! gathered and the ones it silenced, and a timeline of what changed.

use crate::alert::{EntityRef, Level};
use crate::rca::{Cause, CauseEntity, CauseKind, Evidence, Impact, RunnerUp};
use serde::{Deserialize, Serialize};

ispvm_proto::text_enum! {
    /// Where an incident is in its life.
    #[derive(Default, utoipa::ToSchema)]
    pub enum IncidentState {
        #[default]
        Open = "open",
        Resolved = "resolved",
    }
}

ispvm_proto::text_enum! {
    /// A change people are told about (one notification each, never one per alert).
    #[derive(utoipa::ToSchema)]
    pub enum Transition {
        Opened = "opened",
        /// Severity or impact grew.
        Escalated = "escalated",
        /// The analysis now names another root cause.
        RootCauseChanged = "root_cause_changed",
        Resolved = "resolved",
    }
}

ispvm_proto::text_enum! {
    /// What a timeline entry records.
    #[derive(utoipa::ToSchema)]
    pub enum TimelineKind {
        Transition = "transition",
        Evidence = "evidence",
        AlertJoined = "alert_joined",
        AlertSuppressed = "alert_suppressed",
        Acknowledged = "acknowledged",
        Assigned = "assigned",
        Note = "note",
    }
}

/// An alert by its identity: one (rule, entity).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct AlertKey {
    pub rule_id: String,
    pub entity: EntityRef,
}

/// An alert the incident silenced, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Suppressed {
    pub alert: AlertKey,
    /// The upstream entity whose failure explains it.
    pub upstream: CauseEntity,
    /// The strongest evidence for that failure.
    pub evidence: String,
    pub at_ms: i64,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub kind: TimelineKind,
    pub text: String,
}

/// An operator's acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ack {
    pub by: String,
    pub at_ms: i64,
    /// Notifications are not sent while acknowledged with silence.
    pub silence: bool,
    /// The acknowledgement lapses then.
    pub until_ms: Option<i64>,
}

impl Ack {
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.until_ms.is_none_or(|u| now_ms < u)
    }
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Tenant-local number, never reused.
    pub id: u64,
    pub title: String,
    pub state: IncidentState,
    pub severity: Level,
    pub kind: CauseKind,
    pub root_cause: Cause,
    pub confidence: f64,
    pub runner_ups: Vec<RunnerUp>,
    pub evidence: Vec<Evidence>,
    pub impact: Impact,
    /// PPPoE sessions on impacted concentrators just before the fault.
    pub impacted_subscribers: u64,
    pub opened_ms: i64,
    pub updated_ms: i64,
    pub resolved_ms: Option<i64>,
    /// When the fault began, as the evidence dates it.
    pub fault_since_ms: i64,
    pub members: Vec<AlertKey>,
    pub suppressed: Vec<Suppressed>,
    pub timeline: Vec<TimelineEntry>,
    pub ack: Option<Ack>,
    pub assignee: Option<String>,
    /// Transitions announced so far (the notifier's idempotence key with the id).
    pub transitions: u32,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.state == IncidentState::Open
    }

    /// Whether notifications about it are silenced by an acknowledgement now.
    pub fn silenced_at(&self, now_ms: i64) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|a| a.silence && a.active_at(now_ms))
    }

    pub(crate) fn log(&mut self, at_ms: i64, kind: TimelineKind, text: impl Into<String>) {
        self.timeline.push(TimelineEntry {
            at_ms,
            kind,
            text: text.into(),
        });
    }
}

/// A change to announce: the notifier sends exactly one message per value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentChange {
    pub incident: u64,
    pub transition: Transition,
    /// The incident's transition number: (incident, seq) is unique.
    pub seq: u32,
    pub at_ms: i64,
}
