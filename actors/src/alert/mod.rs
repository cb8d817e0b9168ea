//! The stateful alert engine (ARCHITECTURE §3): rules as JSON documents, windows over
//! recent samples, a persisted per-(rule, entity) state machine, multi-signal
//! reachability and an explanation on every alert.

pub mod engine;
pub mod entity;
pub mod reachability;
pub mod rule;
pub mod state;
pub mod window;

pub use engine::{AlertChange, CycleStats, Engine, Notification};
pub use entity::{EntityAttrs, EntityRef, MaintenanceWindow};
pub use rule::{
    EntityKind, Levels, Op, Rule, RuleError, RuleKind, Schedule, Scope, Threshold, Window,
    WindowFunc, export_document, parse_document,
};
pub use state::{AlertState, Explanation, Level, NotificationKind, Phase};

/// The rules a new tenant starts with: device down, uplinks, BGP, SLA, utilisation,
/// errors and health, with thresholds an ISP NOC would pick on day one.
pub const STARTER_PACK_JSON: &str = include_str!("starter-pack.json");

/// The starter pack, parsed.
pub fn starter_pack() -> Vec<Rule> {
    // The pack is compiled in and covered by a test; an error here is a build defect.
    parse_document(STARTER_PACK_JSON).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starter_pack_is_valid() {
        let rules = super::parse_document(super::STARTER_PACK_JSON).expect("valid pack");
        assert!(rules.len() >= 10);
    }
}
