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

/// A note an operator left on an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Note {
    pub by: String,
    pub at_ms: i64,
    pub text: String,
}

/// Who acts on an incident, for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionBy {
    pub username: String,
    /// Client address as the server saw it, or empty.
    pub remote: String,
}

/// What an operator does to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum IncidentAction {
    /// Someone is on it; `silence` stops notifications about it until `until_ms` (or
    /// for good when absent).
    Acknowledge {
        #[serde(default)]
        silence: bool,
        #[serde(default)]
        until_ms: Option<i64>,
    },
    /// Withdraws the acknowledgement.
    Unacknowledge,
    /// Gives it to someone (`None`: to nobody).
    Assign {
        assignee: Option<String>,
    },
    AddNote {
        text: String,
    },
}

impl IncidentAction {
    /// The audit log's word for it.
    pub fn verb(&self) -> &'static str {
        match self {
            IncidentAction::Acknowledge { .. } => "acknowledge",
            IncidentAction::Unacknowledge => "unacknowledge",
            IncidentAction::Assign { .. } => "assign",
            IncidentAction::AddNote { .. } => "note",
        }
    }
}

/// Longest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 4_096;
/// Longest assignee name, in bytes.
pub const MAX_ASSIGNEE_BYTES: usize = 128;

/// Why an action was refused; the incident is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no incident {0}")]
    Unknown(u64),
    #[error("a note must have text, at most {MAX_NOTE_BYTES} bytes")]
    BadNote,
    #[error("an assignee is a user name of 1 to {MAX_ASSIGNEE_BYTES} bytes")]
    BadAssignee,
    #[error("until_ms must be in the future")]
    ExpiryPast,
    #[error("the incident is resolved")]
    Resolved,
    #[error("incidents could not be stored: {0}")]
    Store(String),
    #[error("the correlator did not answer")]
    Unavailable,
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
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Every device the fault was seen to affect over the incident's life (impacted, or
    /// lost from some vantage): alerts on them that lag behind the fault belong here.
    #[serde(default)]
    pub related_devices: Vec<String>,
    /// Transitions announced so far (the notifier's idempotence key with the id).
    pub transitions: u32,
    /// Times the fault came back after the incident resolved: a flapping incident
    /// resolves only once it has been quiet for the reopen window, so the on-call is
    /// not told "resolved" and "back" once per flap.
    #[serde(default)]
    pub reopened: u32,
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

    /// Applies an operator's action at `now_ms`.
    pub fn act(
        &mut self,
        by: &str,
        action: &IncidentAction,
        now_ms: i64,
    ) -> Result<(), ActionError> {
        match action {
            IncidentAction::Acknowledge { silence, until_ms } => {
                if !self.is_open() {
                    return Err(ActionError::Resolved);
                }
                if until_ms.is_some_and(|u| u <= now_ms) {
                    return Err(ActionError::ExpiryPast);
                }
                self.ack = Some(Ack {
                    by: by.to_owned(),
                    at_ms: now_ms,
                    silence: *silence,
                    until_ms: *until_ms,
                });
                let how = match (silence, until_ms) {
                    (true, Some(u)) => format!(" (notifications silenced until {u})"),
                    (true, None) => " (notifications silenced)".to_owned(),
                    _ => String::new(),
                };
                self.log(
                    now_ms,
                    TimelineKind::Acknowledged,
                    format!("{by} acknowledged{how}"),
                );
            }
            IncidentAction::Unacknowledge => {
                self.ack = None;
                self.log(
                    now_ms,
                    TimelineKind::Acknowledged,
                    format!("{by} withdrew the acknowledgement"),
                );
            }
            IncidentAction::Assign { assignee } => {
                if assignee
                    .as_ref()
                    .is_some_and(|a| a.trim().is_empty() || a.len() > MAX_ASSIGNEE_BYTES)
                {
                    return Err(ActionError::BadAssignee);
                }
                self.assignee = assignee.clone();
                let to = assignee.as_deref().unwrap_or("nobody");
                self.log(
                    now_ms,
                    TimelineKind::Assigned,
                    format!("{by} assigned it to {to}"),
                );
            }
            IncidentAction::AddNote { text } => {
                if text.trim().is_empty() || text.len() > MAX_NOTE_BYTES {
                    return Err(ActionError::BadNote);
                }
                self.notes.push(Note {
                    by: by.to_owned(),
                    at_ms: now_ms,
                    text: text.clone(),
                });
                self.log(now_ms, TimelineKind::Note, format!("{by}: {text}"));
            }
        }
        self.updated_ms = now_ms;
        Ok(())
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
