//! Alert rules as JSON documents.
//!
//! A rule is data an operator can export, review, version and import again, so its format
//! is explicit and validated on the way in: a rule that cannot be evaluated is refused
//! when it is loaded, not discovered silently at 3 a.m. when it never fires.

use super::state::Level;
use ispvm_proto::MetricName;
use serde::{Deserialize, Serialize};

/// Longest rule id; the same bound as entity ids at ingest.
pub const MAX_ID_LEN: usize = 128;
/// Most rules one document may carry: well above any real pack, low enough that an
/// import cannot exhaust memory.
pub const MAX_RULES_PER_DOCUMENT: usize = 2_000;
/// Longest evaluation window: a day. Longer windows belong to reports, not alerts.
pub const MAX_WINDOW_S: u64 = 86_400;

/// One alert rule. Unknown fields are refused (see [`Rule::from_value`]): a typo in a
/// threshold's name must not silently turn the threshold off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    /// Stable identity: alert state is keyed by it, so renaming a rule keeps its alerts.
    pub id: String,
    pub name: String,
    /// Bumped by whoever edits the rule, so an export says which revision was running.
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Which entities the rule watches, beyond the kind its type implies.
    #[serde(default)]
    pub scope: Scope,
    /// What is evaluated.
    #[serde(flatten)]
    pub kind: RuleKind,
    /// How samples in a window become one value (ignored by `reachability`).
    #[serde(default)]
    pub window: Window,
    /// Thresholds (ignored by `reachability` and `interface_down`, which are boolean).
    #[serde(default)]
    pub levels: Levels,
    /// How long the condition must hold before the alert fires. Uplinks of
    /// `interface_down` rules fire at once whatever this says.
    #[serde(default)]
    pub for_s: u64,
    /// After the condition clears, how long the alert stays `recovering` before it
    /// resolves; a relapse in that time returns to `firing` without a new notification.
    #[serde(default = "default_cooldown")]
    pub cooldown_s: u64,
    #[serde(default)]
    pub flap: FlapPolicy,
    /// Which evaluation cycle runs the rule; defaults by type.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// The level a yes/no rule fires at. Defaults: reachability and BGP critical;
    /// interface down critical on uplinks, warning elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Level>,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_cooldown() -> u64 {
    120
}

/// What a rule evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleKind {
    /// Is the device down? Combines ping from every vantage, API and SNMP reachability and
    /// how recently anything was heard; API unreachable with ping fine is a
    /// management-plane alert (warning), not a device outage.
    Reachability,
    /// An interface that is enabled but not running.
    InterfaceDown,
    /// A BGP session not established, and optionally one that flaps.
    BgpNotEstablished {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flap_rate: Option<FlapRate>,
    },
    /// Probe loss, percent.
    SlaLoss,
    /// Probe round-trip time, ms.
    SlaRtt,
    /// Probe jitter, ms.
    SlaJitter,
    /// Interface utilisation: the larger of rx and tx over the link's capacity, percent.
    Utilisation,
    /// Interface errors per second.
    ErrorRate,
    /// Any catalogue metric against thresholds (CPU, memory, temperature, …).
    Metric { metric: MetricName },
}

/// Which cycle evaluates a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Every 10 s: reachability, interfaces, BGP.
    Fast,
    /// Every 60 s: SLA, utilisation, errors.
    Medium,
    /// Every 5 min: slow-moving health.
    Slow,
}

impl Schedule {
    pub const ALL: [Schedule; 3] = [Schedule::Fast, Schedule::Medium, Schedule::Slow];

    /// The cycle period at production intervals (the tree's timers may run faster:
    /// see `tree::SchedulePeriods`).
    pub fn period_ms(self) -> i64 {
        match self {
            Schedule::Fast => 10_000,
            Schedule::Medium => 60_000,
            Schedule::Slow => 300_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Fast => "fast",
            Schedule::Medium => "medium",
            Schedule::Slow => "slow",
        }
    }
}

ispvm_proto::text_enum! {
    /// The kind of entity a rule type watches.
    #[derive(utoipa::ToSchema)]
    pub enum EntityKind {
        Device = "device",
        Interface = "interface",
        ProbeTarget = "probe_target",
        Peer = "peer",
    }
}

impl EntityKind {
    /// The kind from its stored name (`device`, `interface`, `probe_target`, `peer`).
    pub fn parse(name: &str) -> Option<EntityKind> {
        name.parse().ok()
    }
}

impl RuleKind {
    /// The entities rules of this type watch.
    pub fn entity_kind(&self) -> EntityKind {
        match self {
            RuleKind::Reachability => EntityKind::Device,
            RuleKind::InterfaceDown | RuleKind::Utilisation | RuleKind::ErrorRate => {
                EntityKind::Interface
            }
            RuleKind::BgpNotEstablished { .. } => EntityKind::Peer,
            RuleKind::SlaLoss | RuleKind::SlaRtt | RuleKind::SlaJitter => EntityKind::ProbeTarget,
            RuleKind::Metric { metric } => metric_entity_kind(*metric),
        }
    }

    /// The metric the window reads; `None` for derived values (reachability, utilisation).
    pub fn metric(&self) -> Option<MetricName> {
        match self {
            RuleKind::Reachability | RuleKind::Utilisation => None,
            RuleKind::InterfaceDown => Some(MetricName::InterfaceRunning),
            RuleKind::BgpNotEstablished { .. } => Some(MetricName::BgpSessionState),
            RuleKind::SlaLoss => Some(MetricName::PingLossPct),
            RuleKind::SlaRtt => Some(MetricName::PingRttMs),
            RuleKind::SlaJitter => Some(MetricName::PingJitterMs),
            RuleKind::ErrorRate => Some(MetricName::InterfaceErrors),
            RuleKind::Metric { metric } => Some(*metric),
        }
    }

    /// Whether the rule is a yes/no condition rather than a threshold on a value.
    pub fn is_boolean(&self) -> bool {
        matches!(
            self,
            RuleKind::Reachability | RuleKind::InterfaceDown | RuleKind::BgpNotEstablished { .. }
        )
    }

    /// The cycle a rule of this type runs on unless it says otherwise.
    pub fn default_schedule(&self) -> Schedule {
        match self {
            RuleKind::Reachability
            | RuleKind::InterfaceDown
            | RuleKind::BgpNotEstablished { .. } => Schedule::Fast,
            RuleKind::SlaLoss
            | RuleKind::SlaRtt
            | RuleKind::SlaJitter
            | RuleKind::Utilisation
            | RuleKind::ErrorRate => Schedule::Medium,
            RuleKind::Metric { .. } => Schedule::Slow,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            RuleKind::Reachability => "reachability",
            RuleKind::InterfaceDown => "interface_down",
            RuleKind::BgpNotEstablished { .. } => "bgp_not_established",
            RuleKind::SlaLoss => "sla_loss",
            RuleKind::SlaRtt => "sla_rtt",
            RuleKind::SlaJitter => "sla_jitter",
            RuleKind::Utilisation => "utilisation",
            RuleKind::ErrorRate => "error_rate",
            RuleKind::Metric { .. } => "metric",
        }
    }
}

/// The entity kind a catalogue metric is reported for.
pub fn metric_entity_kind(metric: MetricName) -> EntityKind {
    let name = metric.as_str();
    if name.starts_with("interface.") {
        EntityKind::Interface
    } else if name.starts_with("ping.") {
        EntityKind::ProbeTarget
    } else if name.starts_with("bgp.") || name.starts_with("ospf.") {
        EntityKind::Peer
    } else {
        EntityKind::Device
    }
}

/// Which entities a rule applies to. Empty lists mean "any"; non-empty lists must all
/// match (a tag list matches when the entity has every listed tag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = RuleScope)]
pub struct Scope {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<ispvm_proto::DeviceRole>,
    /// Explicit entity ids (as stored: `device`, `device/interface`, `device/peer`, target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Interfaces flagged as uplinks only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uplink_only: bool,
}

/// How a window of samples becomes the value compared with the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub func: WindowFunc,
    /// How far back the window reaches.
    pub duration_s: u64,
    /// `percent_failing`: the share of failing samples, percent, at which a level is
    /// breached (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_percent: Option<f64>,
    /// `consecutive_failures`: how many newest samples must fail in a row (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            func: WindowFunc::Last,
            duration_s: 60,
            min_percent: None,
            min_count: None,
        }
    }
}

impl Window {
    pub fn duration_ms(&self) -> i64 {
        i64::try_from(self.duration_s.saturating_mul(1_000)).unwrap_or(i64::MAX)
    }
    pub fn min_percent(&self) -> f64 {
        self.min_percent.unwrap_or(50.0)
    }
    pub fn min_count(&self) -> u32 {
        self.min_count.unwrap_or(3).max(1)
    }
}

/// Aggregations over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowFunc {
    Last,
    Avg,
    Max,
    Min,
    /// Percent of samples in the window that fail (for a threshold rule: breach the
    /// level's threshold; for a boolean metric: read false).
    PercentFailing,
    /// How many of the newest samples fail in a row.
    ConsecutiveFailures,
}

impl WindowFunc {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowFunc::Last => "last",
            WindowFunc::Avg => "avg",
            WindowFunc::Max => "max",
            WindowFunc::Min => "min",
            WindowFunc::PercentFailing => "percent_failing",
            WindowFunc::ConsecutiveFailures => "consecutive_failures",
        }
    }
}

/// Comparison of a value against a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether larger values are worse.
    pub fn rising(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

/// One level's threshold, with its own recovery point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub op: Op,
    pub value: f64,
    /// Hysteresis: once active, the level clears only when the value is back past this
    /// point (below it for `>`/`>=`, above it for `<`/`<=`). Defaults to `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<f64>,
}

impl Threshold {
    /// Whether the level is breached; `active` says whether it already is, which moves
    /// the point of clearing to `recover`.
    pub fn breached(&self, value: f64, active: bool) -> bool {
        if !active {
            return self.op.holds(value, self.value);
        }
        let recover = self.recover.unwrap_or(self.value);
        if self.op.rising() {
            value > recover || (self.recover.is_none() && self.op.holds(value, self.value))
        } else {
            value < recover || (self.recover.is_none() && self.op.holds(value, self.value))
        }
    }
}

/// Warning and critical thresholds of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Levels {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<Threshold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<Threshold>,
}

/// State changes (of the alert, or of a BGP session) within a window that make it
/// "flapping".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapRate {
    pub transitions: u32,
    pub window_s: u64,
}

/// Flap detection for the alert itself: too many firing/clearing changes in a window
/// turn the alert into one "flapping" notification instead of a stream of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FlapPolicy {
    pub transitions: u32,
    pub window_s: u64,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy {
            transitions: 5,
            window_s: 600,
        }
    }
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("not a valid rule document: {0}")]
    Json(String),
    #[error("rule {id:?}: {problem}")]
    Invalid { id: String, problem: String },
    #[error("rule id {0:?} appears twice in the document")]
    DuplicateId(String),
    #[error("a document may hold at most {MAX_RULES_PER_DOCUMENT} rules, this one has {0}")]
    TooMany(usize),
}

/// Every top-level field a rule may have (serde cannot refuse unknown fields on a
/// struct with a flattened enum, so [`Rule::from_value`] checks against this list).
const RULE_FIELDS: &[&str] = &[
    "id",
    "name",
    "version",
    "enabled",
    "description",
    "scope",
    "type",
    "window",
    "levels",
    "for_s",
    "cooldown_s",
    "flap",
    "schedule",
    "severity",
    "flap_rate",
    "metric",
];

impl Rule {
    /// The rule with every duration divided by `speed` (rounded up, at least 1 s where
    /// it was not 0): what a simulation running `speed` times faster than real time
    /// evaluates, so "down for 20 s" still means 20 scenario seconds.
    pub fn time_scaled(&self, speed: f64) -> Rule {
        let scale = |s: u64| -> u64 {
            if s == 0 || !(speed.is_finite() && speed > 0.0) {
                return s;
            }
            ((s as f64 / speed).ceil() as u64).max(1)
        };
        let mut r = self.clone();
        r.for_s = scale(r.for_s);
        r.cooldown_s = scale(r.cooldown_s);
        r.window.duration_s = scale(r.window.duration_s);
        r.flap.window_s = scale(r.flap.window_s);
        if let RuleKind::BgpNotEstablished { flap_rate: Some(f) } = &mut r.kind {
            f.window_s = scale(f.window_s);
        }
        r
    }

    /// Parses and validates one rule.
    pub fn from_json(text: &str) -> Result<Rule, RuleError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| RuleError::Json(e.to_string()))?;
        Rule::from_value(value)
    }

    /// Validates one rule given as a JSON value, refusing unknown fields.
    pub fn from_value(value: serde_json::Value) -> Result<Rule, RuleError> {
        let serde_json::Value::Object(map) = &value else {
            return Err(RuleError::Json("a rule must be a JSON object".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
            let id = map.get("id").and_then(|v| v.as_str()).unwrap_or_default();
            return Err(RuleError::Invalid {
                id: id.to_owned(),
                problem: format!("unknown field {unknown:?}"),
            });
        }
        let rule: Rule =
            serde_json::from_value(value).map_err(|e| RuleError::Json(e.to_string()))?;
        rule.validate()?;
        Ok(rule)
    }

    /// The cycle that evaluates this rule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
            .unwrap_or_else(|| self.kind.default_schedule())
    }

    /// Checks what serde cannot: ids, bounds and that thresholds make sense.
    pub fn validate(&self) -> Result<(), RuleError> {
        let bad = |problem: &str| RuleError::Invalid {
            id: self.id.clone(),
            problem: problem.to_owned(),
        };
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN {
            return Err(bad("id must be 1 to 128 characters"));
        }
        if !self
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad("id may hold only letters, digits, '-', '_' and '.'"));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(bad("name must be 1 to 200 characters"));
        }
        if self.window.duration_s == 0 || self.window.duration_s > MAX_WINDOW_S {
            return Err(bad("window.duration_s must be 1 to 86400"));
        }
        if self
            .window
            .min_percent
            .is_some_and(|p| !(p > 0.0 && p <= 100.0))
        {
            return Err(bad("window.min_percent must be above 0 and at most 100"));
        }
        if self.window.min_count.is_some_and(|c| c == 0 || c > 10_000) {
            return Err(bad("window.min_count must be 1 to 10000"));
        }
        for (what, secs) in [
            ("for_s", self.for_s),
            ("cooldown_s", self.cooldown_s),
            ("flap.window_s", self.flap.window_s),
        ] {
            if secs > MAX_WINDOW_S {
                return Err(bad(&format!("{what} must be at most 86400")));
            }
        }
        if let RuleKind::BgpNotEstablished { flap_rate: Some(f) } = &self.kind
            && (f.transitions < 2 || f.window_s == 0 || f.window_s > MAX_WINDOW_S)
        {
            return Err(bad(
                "flap_rate needs at least 2 transitions and a window of 1 to 86400 s",
            ));
        }
        if self.kind.is_boolean() {
            return Ok(());
        }
        let (warn, crit) = (self.levels.warn, self.levels.critical);
        if warn.is_none() && crit.is_none() {
            return Err(bad("a threshold rule needs levels.warn or levels.critical"));
        }
        for t in [warn, crit].into_iter().flatten() {
            if !t.value.is_finite() || t.recover.is_some_and(|r| !r.is_finite()) {
                return Err(bad("thresholds must be finite numbers"));
            }
            if let Some(r) = t.recover {
                let wrong_side = if t.op.rising() {
                    r > t.value
                } else {
                    r < t.value
                };
                if wrong_side {
                    return Err(bad(
                        "recover must lie on the healthy side of the threshold (hysteresis)",
                    ));
                }
            }
        }
        if let (Some(w), Some(c)) = (warn, crit) {
            if w.op.rising() != c.op.rising() {
                return Err(bad("warn and critical must compare in the same direction"));
            }
            let ordered = if c.op.rising() {
                c.value >= w.value
            } else {
                c.value <= w.value
            };
            if !ordered {
                return Err(bad("critical must be at least as severe as warn"));
            }
        }
        Ok(())
    }
}

/// Parses a document of rules (a JSON array, or `{"rules": [...]}` as exported) and
/// validates every rule; one bad rule refuses the whole document.
pub fn parse_document(text: &str) -> Result<Vec<Rule>, RuleError> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| RuleError::Json(e.to_string()))?;
    let items = match doc {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut map) => match map.remove("rules") {
            Some(serde_json::Value::Array(items)) => items,
            _ => {
                return Err(RuleError::Json(
                    "expected an array of rules or {\"rules\": [...]}".into(),
                ));
            }
        },
        _ => {
            return Err(RuleError::Json(
                "expected an array of rules or {\"rules\": [...]}".into(),
            ));
        }
    };
    if items.len() > MAX_RULES_PER_DOCUMENT {
        return Err(RuleError::TooMany(items.len()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(items.len());
    for item in items {
        let r = Rule::from_value(item)?;
        if !seen.insert(r.id.clone()) {
            return Err(RuleError::DuplicateId(r.id));
        }
        rules.push(r);
    }
    Ok(rules)
}

/// The export format: `{"version": 1, "rules": [...]}`.
pub fn export_document(rules: &[Rule]) -> serde_json::Value {
    serde_json::json!({ "version": 1, "rules": rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_rule_round_trips() {
        let text = r#"{"id":"sla-loss","name":"Probe loss","type":"sla_loss",
            "window":{"func":"avg","duration_s":120},
            "levels":{"warn":{"op":">=","value":5,"recover":2},"critical":{"op":">=","value":20}},
            "for_s":60,"scope":{"sites":["pop-a"]}}"#;
        let r = Rule::from_json(text).expect("valid");
        assert_eq!(r.kind, RuleKind::SlaLoss);
        assert_eq!(r.schedule(), Schedule::Medium);
        let back = serde_json::to_string(&r).expect("serialises");
        assert_eq!(Rule::from_json(&back).expect("round trip"), r);
    }

    #[test]
    fn invalid_rules_are_refused_with_a_reason() {
        let cases = [
            (r#"{"id":"","name":"x","type":"reachability"}"#, "id"),
            (
                r#"{"id":"a b","name":"x","type":"reachability"}"#,
                "letters",
            ),
            (r#"{"id":"x","name":"x","type":"sla_rtt"}"#, "levels"),
            (
                r#"{"id":"x","name":"x","type":"sla_rtt","levels":{"warn":{"op":">","value":10,"recover":20}}}"#,
                "healthy side",
            ),
            (
                r#"{"id":"x","name":"x","type":"sla_rtt","levels":{"warn":{"op":">","value":50},"critical":{"op":">","value":10}}}"#,
                "severe",
            ),
            (r#"{"id":"x","name":"x","type":"nope"}"#, "unknown variant"),
            (
                r#"{"id":"x","name":"x","type":"reachability","for":30}"#,
                "unknown field \"for\"",
            ),
            (
                r#"{"id":"x","name":"x","type":"metric","metric":"device.nope","levels":{"warn":{"op":">","value":1}}}"#,
                "device.nope",
            ),
        ];
        for (text, needle) in cases {
            let e = Rule::from_json(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn hysteresis_moves_the_clearing_point() {
        let t = Threshold {
            op: Op::Gt,
            value: 90.0,
            recover: Some(80.0),
        };
        assert!(!t.breached(85.0, false));
        assert!(t.breached(91.0, false));
        assert!(
            t.breached(85.0, true),
            "still active above the recover point"
        );
        assert!(!t.breached(79.0, true));
    }

    #[test]
    fn documents_refuse_duplicates() {
        let r = r#"{"id":"a","name":"A","type":"reachability"}"#;
        assert!(parse_document(&format!("[{r}]")).is_ok());
        assert!(parse_document(&format!("{{\"rules\":[{r}]}}")).is_ok());
        assert_eq!(
            parse_document(&format!("[{r},{r}]")),
            Err(RuleError::DuplicateId("a".into()))
        );
    }
}
