//! Incidents (ARCHITECTURE §3): one per real fault, built from the alerts and the
//! root-cause analysis of each correlation cycle.
//!
//! - [`model`]: the incident, its timeline, acknowledgement and transitions.
//! - [`manager`]: opening, grouping, suppression and resolution.
//! - [`title`]: the title a NOC reads aloud.

pub mod manager;
pub mod model;
#[cfg(test)]
mod tests;
pub mod title;

pub use manager::{AlertFact, CycleOutcome, IncidentContext, IncidentPolicy, Incidents};
pub use model::{
    Ack, ActionBy, ActionError, AlertKey, Incident, IncidentAction, IncidentChange, IncidentState,
    Note, Suppressed, TimelineEntry, TimelineKind, Transition,
};
