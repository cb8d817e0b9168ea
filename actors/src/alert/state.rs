//! The per-(rule, entity) alert state machine.
//!
//! OK → PENDING (condition true, not yet for `for`) → FIRING → RECOVERING (condition
//! false, within the cool-down) → OK; SUPPRESSED while a maintenance window or an
//! upstream root cause mutes it. The whole state is plain data so it can be persisted
//! after every change and a restarted engine continues exactly where it stopped: an
//! alert that was notified is not notified again.

use serde::{Deserialize, Serialize};

ispvm_proto::text_enum! {
    /// Alert severity. Ordered: critical is worse than warning.
    #[derive(utoipa::ToSchema)]
    pub enum Level {
        Warning = "warning",
        Critical = "critical",
    }
}

ispvm_proto::text_enum! {
    /// Where an alert is in its life.
    #[derive(Default, utoipa::ToSchema)]
    pub enum Phase {
        #[default]
        Ok = "ok",
        Pending = "pending",
        Firing = "firing",
        Recovering = "recovering",
        Suppressed = "suppressed",
    }
}

/// Why an alert holds its value: what was measured, over which window, against what.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// One sentence for people, e.g. "avg ping.loss_pct over 60 s = 35.2 >= 20 (critical)".
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    #[serde(default)]
    pub samples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// Signals behind a multi-signal verdict (reachability), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
}

/// What the engine decided about one (rule, entity) in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The level breached, `None` when the condition is clear.
    pub level: Option<Level>,
    pub explanation: Explanation,
}

/// Timing parameters of a rule, as the state machine needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub for_ms: i64,
    pub cooldown_ms: i64,
    pub flap_transitions: u32,
    pub flap_window_ms: i64,
}

ispvm_proto::text_enum! {
    /// What people are told.
    #[derive(utoipa::ToSchema)]
    pub enum NotificationKind {
        Firing = "firing",
        /// A firing alert got worse (warning → critical).
        Escalated = "escalated",
        Resolved = "resolved",
        /// The alert changes too often; individual changes are not notified until it
        /// settles.
        Flapping = "flapping",
    }
}

/// The persisted state of one (rule, entity).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub phase: Phase,
    /// The level the condition is at (the firing level while firing).
    pub level: Option<Level>,
    pub pending_since_ms: Option<i64>,
    pub fired_ms: Option<i64>,
    pub recovering_since_ms: Option<i64>,
    pub last_change_ms: i64,
    /// The level people were last told is firing; `None` once told it resolved.
    pub notified_level: Option<Level>,
    pub last_notified_ms: Option<i64>,
    pub flapping: bool,
    /// Times the alert started or stopped firing, within the flap window.
    #[serde(default)]
    pub transitions: Vec<i64>,
    /// Why it is suppressed, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// The explanation of the latest verdict that changed something.
    #[serde(default)]
    pub explanation: Explanation,
}

impl AlertState {
    /// Whether the state is worth keeping: an OK alert with no flap history is the same
    /// as no state at all.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Ok && self.transitions.is_empty() && !self.flapping
    }

    /// Advances the machine by one evaluation and returns what to notify. `changed`
    /// tells the caller to persist the state.
    pub fn step(
        &mut self,
        verdict: Verdict,
        suppression: Option<&str>,
        now_ms: i64,
        timing: &Timing,
    ) -> Step {
        let before = (self.phase, self.level, self.flapping, self.notified_level);
        let mut notify = Vec::new();
        self.transitions
            .retain(|&t| now_ms.saturating_sub(t) <= timing.flap_window_ms);

        if let Some(reason) = suppression {
            if self.phase != Phase::Suppressed || self.suppressed_by.as_deref() != Some(reason) {
                self.phase = Phase::Suppressed;
                self.suppressed_by = Some(reason.to_owned());
                self.pending_since_ms = None;
                self.explanation = verdict.explanation;
            }
            self.level = verdict.level;
            return self.finish(before, now_ms, notify);
        }
        if self.phase == Phase::Suppressed {
            // Back from a mute: resume as if the alert had been evaluated all along; an
            // alert people were told is firing is still firing until it clears.
            self.suppressed_by = None;
            self.phase = if self.notified_level.is_some() {
                Phase::Firing
            } else {
                Phase::Ok
            };
        }

        match (self.phase, verdict.level) {
            (Phase::Ok, Some(level)) => {
                self.explanation = verdict.explanation;
                self.level = Some(level);
                if timing.for_ms <= 0 {
                    self.fire(level, now_ms, timing, &mut notify);
                } else {
                    self.phase = Phase::Pending;
                    self.pending_since_ms = Some(now_ms);
                }
            }
            (Phase::Pending, Some(level)) => {
                self.level = Some(level);
                self.explanation = verdict.explanation;
                let since = self.pending_since_ms.unwrap_or(now_ms);
                if now_ms.saturating_sub(since) >= timing.for_ms {
                    self.fire(level, now_ms, timing, &mut notify);
                }
            }
            (Phase::Pending, None) => {
                self.phase = Phase::Ok;
                self.level = None;
                self.pending_since_ms = None;
                self.explanation = verdict.explanation;
            }
            (Phase::Firing, Some(level)) => {
                if Some(level) != self.level {
                    self.explanation = verdict.explanation;
                }
                self.level = Some(level);
                self.escalate_if_worse(level, now_ms, &mut notify);
            }
            (Phase::Firing, None) => {
                self.phase = Phase::Recovering;
                self.recovering_since_ms = Some(now_ms);
                self.explanation = verdict.explanation;
                self.transition(now_ms, timing, &mut notify);
            }
            (Phase::Recovering, Some(level)) => {
                // A relapse within the cool-down: firing again, nobody is told twice.
                self.phase = Phase::Firing;
                self.level = Some(level);
                self.recovering_since_ms = None;
                self.explanation = verdict.explanation;
                self.transition(now_ms, timing, &mut notify);
                self.escalate_if_worse(level, now_ms, &mut notify);
            }
            (Phase::Recovering, None) => {
                let since = self.recovering_since_ms.unwrap_or(now_ms);
                if now_ms.saturating_sub(since) >= timing.cooldown_ms {
                    self.resolve(now_ms, &mut notify);
                }
            }
            (Phase::Ok, None) => {
                if self.notified_level.is_some() {
                    // Cleared while muted after having fired: close it for people.
                    self.resolve(now_ms, &mut notify);
                }
            }
            (Phase::Suppressed, _) => {}
        }

        // Flapping ends once the changes in the window fall to half the threshold.
        if self.flapping && (self.transitions.len() as u32) * 2 < timing.flap_transitions.max(2) {
            self.flapping = false;
            if self.phase == Phase::Firing
                && let Some(level) = self.level
                && self.notified_level.is_none()
            {
                self.notify(NotificationKind::Firing, level, now_ms, &mut notify);
            }
        }
        self.finish(before, now_ms, notify)
    }

    fn finish(
        &mut self,
        before: (Phase, Option<Level>, bool, Option<Level>),
        now_ms: i64,
        notify: Vec<(NotificationKind, Level)>,
    ) -> Step {
        let changed = before != (self.phase, self.level, self.flapping, self.notified_level)
            || !notify.is_empty();
        if before.0 != self.phase {
            self.last_change_ms = now_ms;
        }
        Step { changed, notify }
    }

    fn fire(
        &mut self,
        level: Level,
        now_ms: i64,
        timing: &Timing,
        out: &mut Vec<(NotificationKind, Level)>,
    ) {
        self.phase = Phase::Firing;
        self.level = Some(level);
        self.pending_since_ms = None;
        self.fired_ms = Some(now_ms);
        self.transition(now_ms, timing, out);
        if !self.flapping {
            match self.notified_level {
                None => self.notify(NotificationKind::Firing, level, now_ms, out),
                Some(_) => self.escalate_if_worse(level, now_ms, out),
            }
        }
    }

    fn escalate_if_worse(
        &mut self,
        level: Level,
        now_ms: i64,
        out: &mut Vec<(NotificationKind, Level)>,
    ) {
        if !self.flapping && self.notified_level.is_some_and(|n| level > n) {
            self.notify(NotificationKind::Escalated, level, now_ms, out);
        }
    }

    fn resolve(&mut self, now_ms: i64, out: &mut Vec<(NotificationKind, Level)>) {
        let level = self.notified_level.or(self.level);
        self.phase = Phase::Ok;
        self.level = None;
        self.recovering_since_ms = None;
        self.fired_ms = None;
        if let (Some(level), Some(_)) = (level, self.notified_level) {
            out.push((NotificationKind::Resolved, level));
            self.last_notified_ms = Some(now_ms);
        }
        self.notified_level = None;
    }

    fn notify(
        &mut self,
        kind: NotificationKind,
        level: Level,
        now_ms: i64,
        out: &mut Vec<(NotificationKind, Level)>,
    ) {
        out.push((kind, level));
        self.notified_level = Some(level);
        self.last_notified_ms = Some(now_ms);
    }

    /// Records a start or stop of firing and detects flapping.
    fn transition(
        &mut self,
        now_ms: i64,
        timing: &Timing,
        out: &mut Vec<(NotificationKind, Level)>,
    ) {
        self.transitions.push(now_ms);
        if timing.flap_transitions >= 2
            && !self.flapping
            && self.transitions.len() as u32 >= timing.flap_transitions
        {
            self.flapping = true;
            let level = self.level.unwrap_or(Level::Warning);
            out.push((NotificationKind::Flapping, level));
            self.last_notified_ms = Some(now_ms);
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub changed: bool,
    pub notify: Vec<(NotificationKind, Level)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        for_ms: 30_000,
        cooldown_ms: 60_000,
        flap_transitions: 4,
        flap_window_ms: 600_000,
    };

    fn v(level: Option<Level>) -> Verdict {
        Verdict {
            level,
            explanation: Explanation::default(),
        }
    }

    fn kinds(s: &Step) -> Vec<NotificationKind> {
        s.notify.iter().map(|n| n.0).collect()
    }

    const C: Option<Level> = Some(Level::Critical);
    const W: Option<Level> = Some(Level::Warning);

    #[test]
    fn fires_after_for_and_resolves_after_cooldown() {
        let mut a = AlertState::default();
        assert!(kinds(&a.step(v(C), None, 0, &T)).is_empty());
        assert_eq!(a.phase, Phase::Pending);
        assert!(kinds(&a.step(v(C), None, 20_000, &T)).is_empty());
        assert_eq!(
            kinds(&a.step(v(C), None, 30_000, &T)),
            [NotificationKind::Firing]
        );
        assert_eq!(a.phase, Phase::Firing);
        assert!(kinds(&a.step(v(None), None, 40_000, &T)).is_empty());
        assert_eq!(a.phase, Phase::Recovering);
        // Relapse within the cool-down: firing again, no second notification.
        assert!(kinds(&a.step(v(C), None, 50_000, &T)).is_empty());
        assert_eq!(a.phase, Phase::Firing);
        a.step(v(None), None, 60_000, &T);
        assert!(kinds(&a.step(v(None), None, 100_000, &T)).is_empty());
        assert_eq!(
            kinds(&a.step(v(None), None, 120_000, &T)),
            [NotificationKind::Resolved]
        );
        assert_eq!(a.phase, Phase::Ok);
    }

    #[test]
    fn a_short_blip_never_fires() {
        let mut a = AlertState::default();
        a.step(v(W), None, 0, &T);
        a.step(v(None), None, 10_000, &T);
        assert_eq!(a.phase, Phase::Ok);
        assert!(kinds(&a.step(v(W), None, 20_000, &T)).is_empty());
        assert_eq!(a.phase, Phase::Pending, "the for timer restarted");
    }

    #[test]
    fn escalation_notifies_once() {
        let t = Timing { for_ms: 0, ..T };
        let mut a = AlertState::default();
        assert_eq!(
            kinds(&a.step(v(W), None, 0, &t)),
            [NotificationKind::Firing]
        );
        assert_eq!(
            kinds(&a.step(v(C), None, 10_000, &t)),
            [NotificationKind::Escalated]
        );
        assert!(kinds(&a.step(v(W), None, 20_000, &t)).is_empty());
        assert!(
            kinds(&a.step(v(C), None, 30_000, &t)).is_empty(),
            "already told critical"
        );
    }

    #[test]
    fn flapping_is_notified_once_then_quiet() {
        let t = Timing {
            for_ms: 0,
            cooldown_ms: 0,
            ..T
        };
        let mut a = AlertState::default();
        let mut all = Vec::new();
        for i in 0..10 {
            let level = if i % 2 == 0 { C } else { None };
            all.extend(kinds(&a.step(v(level), None, i * 10_000, &t)));
        }
        assert!(a.flapping);
        let flaps = all
            .iter()
            .filter(|k| **k == NotificationKind::Flapping)
            .count();
        assert_eq!(flaps, 1, "{all:?}");
        assert!(
            all.len() <= 5,
            "changes after the flap are not notified: {all:?}"
        );
    }

    #[test]
    fn suppression_mutes_and_resumes() {
        let t = Timing { for_ms: 0, ..T };
        let mut a = AlertState::default();
        let s = a.step(v(C), Some("maintenance mw-1"), 0, &t);
        assert!(s.notify.is_empty());
        assert_eq!(a.phase, Phase::Suppressed);
        // The window ends with the condition still true: now it fires.
        assert_eq!(
            kinds(&a.step(v(C), None, 10_000, &t)),
            [NotificationKind::Firing]
        );
        // Muted while firing, clears while muted: resolved when the mute ends.
        a.step(v(C), Some("maintenance mw-2"), 20_000, &t);
        a.step(v(None), Some("maintenance mw-2"), 30_000, &t);
        assert_eq!(kinds(&a.step(v(None), None, 40_000, &t)), []);
        assert_eq!(a.phase, Phase::Recovering);
    }

    #[test]
    fn state_survives_serialisation() {
        let t = Timing { for_ms: 0, ..T };
        let mut a = AlertState::default();
        a.step(v(C), None, 0, &t);
        let json = serde_json::to_string(&a).expect("serialise");
        let mut b: AlertState = serde_json::from_str(&json).expect("parse");
        assert_eq!(a, b);
        assert!(
            b.step(v(C), None, 10_000, &t).notify.is_empty(),
            "no second notification"
        );
    }
}
