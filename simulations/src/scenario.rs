//! The scenario tables a topology file may carry: how long to run, where the server and
//! the agents sit, maintenance windows, and what the monitoring must conclude about
//! each fault of the `[[timeline]]` (the format issue 13 fixes; `docs/scenarios.md`).
//!
//! ```toml
//! [scenario]
//! duration_s = 420            # scenario seconds to run (required)
//! server_at = "lis1-core1"    # the router the server hangs off (default: the first router)
//! agents = [{ id = "agent-a", site = "lis1", at = "lis1-core2" }]   # default: one per site
//!
//! [[maintenance]]
//! at_s = 200
//! duration_s = 120
//! devices = ["evr1-acc2"]     # or: site = "evr1"
//!
//! [[expect]]
//! name = "core link cut"
//! after_s = 60
//! within_s = 30
//! incident = true
//! root_cause = "lis1-core1:sfp28-1"
//! kind = "link_down"
//! never_down = ["cbr1-agg1"]
//! max_incidents = 1
//! max_notifications = 1
//! min_impacted_subscribers = 0
//! ```
//!
//! The simulator knows routers, interfaces and sites, so it checks every name a
//! scenario uses against them; the words of `kind` belong to the monitoring and are
//! checked by the runner. Every error says on which line of the file it is.

use crate::topology::{Topology, TopologyError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// `[scenario]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Scenario seconds to run.
    pub duration_s: f64,
    /// The router the server hangs off; default the first router of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_at: Option<String>,
    /// The agents; default one per site with routers, `agent-<site>`, on the site's
    /// first router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<AgentSpec>>,
}

/// One agent of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub id: String,
    pub site: String,
    /// The router it is plugged into; default the site's first router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// `[[maintenance]]`: a window during which the named devices (or a whole site) are
/// under maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub at_s: f64,
    pub duration_s: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// `[[expect]]`: what must be concluded about one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Free text for the report.
    pub name: String,
    /// The fault's start: incidents opened from here on are judged.
    pub after_s: f64,
    /// The incident must open within this long.
    pub within_s: f64,
    /// `false`: no incident may open in `[after_s, after_s + within_s]`. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<bool>,
    /// Router id | `router:interface` (a link matches either end) | `site:<id>` |
    /// `agent:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// A root-cause kind (`link_down`, `device_down`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Devices whose status must never be down, and that must get no unsuppressed
    /// device-down alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_down: Vec<String>,
    /// Incidents opened in the window; default 1 when an incident is expected (per
    /// `[[expect]]` block sharing this `after_s`: faults that start together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_incidents: Option<u32>,
    /// Notifications sent in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_notifications: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_impacted_subscribers: Option<u64>,
}

impl ExpectSpec {
    pub fn wants_incident(&self) -> bool {
        self.incident.unwrap_or(true)
    }

    /// The most incidents the window may open.
    pub fn incident_cap(&self) -> Option<u32> {
        self.max_incidents
            .or_else(|| self.wants_incident().then_some(1))
    }
}

/// What `root_cause` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootCauseSpec {
    Router(String),
    /// A router's interface: a link matches when either end is this one.
    Interface {
        router: String,
        interface: String,
    },
    Site(String),
    Agent(String),
}

impl RootCauseSpec {
    pub fn parse(text: &str) -> Option<RootCauseSpec> {
        if let Some(site) = text.strip_prefix("site:") {
            return (!site.is_empty()).then(|| RootCauseSpec::Site(site.to_owned()));
        }
        if let Some(agent) = text.strip_prefix("agent:") {
            return (!agent.is_empty()).then(|| RootCauseSpec::Agent(agent.to_owned()));
        }
        match text.split_once(':') {
            Some((r, i)) if !r.is_empty() && !i.is_empty() => Some(RootCauseSpec::Interface {
                router: r.to_owned(),
                interface: i.to_owned(),
            }),
            Some(_) => None,
            None => (!text.is_empty()).then(|| RootCauseSpec::Router(text.to_owned())),
        }
    }
}

/// An agent as a scenario places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedAgent {
    pub id: String,
    pub site: String,
    /// The router it is plugged into.
    pub at: String,
}

/// Why a scenario file cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML, a wrong type or an unknown key (the message carries line and column).
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    #[error("{}{source}", line_prefix(*line))]
    Topology {
        line: Option<usize>,
        #[source]
        source: TopologyError,
    },
    #[error("{}{message}", line_prefix(*line))]
    Invalid {
        line: Option<usize>,
        message: String,
    },
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

/// The 1-based line where `needle` first appears quoted (`"needle"`), else bare.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    let quoted = format!("\"{needle}\"");
    let at = text.find(&quoted).or_else(|| text.find(needle))?;
    Some(text[..at].matches('\n').count() + 1)
}

/// The line of the `n`-th (0-based) occurrence of a table header such as `[[expect]]`.
pub fn line_of_table(text: &str, header: &str, n: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(header))
        .nth(n)
        .map(|(i, _)| i + 1)
}

impl TopologyError {
    /// The line of `text` the error is about, as well as can be told.
    pub fn line_in(&self, text: &str) -> Option<usize> {
        use TopologyError as E;
        match self {
            E::Parse(_) | E::EmptySiteId | E::EmptyRouterId | E::BadSetting(_) => None,
            E::DuplicateSite(s) | E::ColonInRouterId(s) | E::DuplicateRouter(s) => line_of(text, s),
            E::BadEndpoint(s) | E::InterfaceInTwoLinks(s) => line_of(text, s),
            E::UnknownSite { site, .. } => line_of(text, site),
            E::BadVersion { version, .. } => line_of(text, version),
            E::EmptyInterfaceName { router } => line_of(text, router),
            E::DuplicateInterface { interface, .. } => line_of(text, interface),
            E::UnknownRouter { endpoint, .. } | E::UnknownInterface { endpoint, .. } => {
                line_of(text, endpoint)
            }
            E::SelfLink { a, .. } | E::ZeroCapacity { a, .. } => line_of(text, a),
            E::BadBgp { index, .. } => line_of_table(text, "[[bgp]]", *index),
            E::BadProbeTarget { id, .. } => line_of(text, id),
            E::BadTimeline { index, .. } | E::TimelineFault { index, .. } => {
                line_of_table(text, "[[timeline]]", *index)
            }
        }
    }
}

impl ScenarioError {
    fn invalid(text: &str, needle: &str, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            line: line_of(text, needle),
            message,
        }
    }
}

impl Topology {
    /// Parses and validates a scenario file: a topology file with the scenario tables.
    pub fn from_scenario_toml(text: &str) -> Result<Topology, ScenarioError> {
        let t: Topology = toml::from_str(text)?;
        t.validate().map_err(|source| ScenarioError::Topology {
            line: source.line_in(text),
            source,
        })?;
        t.validate_scenario(text)?;
        Ok(t)
    }

    fn has_router(&self, id: &str) -> bool {
        self.routers.iter().any(|r| r.id == id)
    }

    fn check_router(&self, text: &str, id: &str, what: &str) -> Result<(), ScenarioError> {
        if self.has_router(id) {
            Ok(())
        } else {
            Err(ScenarioError::invalid(
                text,
                id,
                format!("{what} {id:?} is not a router of this file"),
            ))
        }
    }

    fn check_site(&self, text: &str, id: &str, what: &str) -> Result<(), ScenarioError> {
        if self.sites.iter().any(|s| s.id == id) {
            Ok(())
        } else {
            Err(ScenarioError::invalid(
                text,
                id,
                format!("{what} {id:?} is not a site of this file"),
            ))
        }
    }

    fn validate_scenario(&self, text: &str) -> Result<(), ScenarioError> {
        if let Some(s) = &self.scenario {
            if !(s.duration_s.is_finite() && s.duration_s > 0.0) {
                return Err(ScenarioError::invalid(
                    text,
                    "duration_s",
                    format!("[scenario] duration_s must be > 0, not {}", s.duration_s),
                ));
            }
            if let Some(at) = &s.server_at {
                self.check_router(text, at, "server_at")?;
            }
            let mut ids = HashSet::new();
            for a in s.agents.iter().flatten() {
                if a.id.is_empty() || !ids.insert(a.id.as_str()) {
                    return Err(ScenarioError::invalid(
                        text,
                        &a.id,
                        format!("agent id {:?} is empty or used twice", a.id),
                    ));
                }
                self.check_site(text, &a.site, &format!("agent {:?}: site", a.id))?;
                if let Some(at) = &a.at {
                    self.check_router(text, at, &format!("agent {:?}: at", a.id))?;
                    if self.router(at).is_some_and(|r| r.site != a.site) {
                        return Err(ScenarioError::invalid(
                            text,
                            at,
                            format!(
                                "agent {:?} is in site {:?} but sits on {at:?} of another site",
                                a.id, a.site
                            ),
                        ));
                    }
                }
            }
        }
        for (n, m) in self.maintenance.iter().enumerate() {
            let line = line_of_table(text, "[[maintenance]]", n);
            let bad = |message: String| ScenarioError::Invalid { line, message };
            if !(m.at_s.is_finite()
                && m.at_s >= 0.0
                && m.duration_s.is_finite()
                && m.duration_s > 0.0)
            {
                return Err(bad(
                    "a maintenance window needs at_s >= 0 and duration_s > 0".into(),
                ));
            }
            if m.devices.is_empty() == m.site.is_none() {
                return Err(bad(
                    "a maintenance window names devices or a site (one of the two)".into(),
                ));
            }
            for d in &m.devices {
                self.check_router(text, d, "maintenance device")?;
            }
            if let Some(s) = &m.site {
                self.check_site(text, s, "maintenance site")?;
            }
        }
        let agents: Vec<String> = self.scenario_agents().into_iter().map(|a| a.id).collect();
        for t in &self.timeline {
            if let crate::faults::Fault::AgentDown { agent } = &t.fault
                && !agents.iter().any(|a| a == agent)
            {
                return Err(ScenarioError::invalid(
                    text,
                    agent,
                    format!(
                        "agent_down names {agent:?}, which is not an agent of this scenario (agents: {})",
                        agents.join(", ")
                    ),
                ));
            }
        }
        for (n, e) in self.expect.iter().enumerate() {
            let line = line_of_table(text, "[[expect]]", n);
            let bad = |message: String| ScenarioError::Invalid { line, message };
            if !(e.after_s.is_finite()
                && e.after_s >= 0.0
                && e.within_s.is_finite()
                && e.within_s > 0.0)
            {
                return Err(bad(format!(
                    "expect {:?}: after_s must be >= 0 and within_s > 0",
                    e.name
                )));
            }
            for d in &e.never_down {
                self.check_router(text, d, &format!("expect {:?}: never_down", e.name))?;
            }
            if let Some(rc) = &e.root_cause {
                let Some(spec) = RootCauseSpec::parse(rc) else {
                    return Err(ScenarioError::invalid(
                        text,
                        rc,
                        format!(
                            "expect {:?}: root_cause {rc:?} is not router | router:interface | site:<id> | agent:<id>",
                            e.name
                        ),
                    ));
                };
                match spec {
                    RootCauseSpec::Router(r) => self.check_router(text, &r, "root_cause")?,
                    RootCauseSpec::Interface { router, interface } => {
                        if !self.has_interface(&router, &interface) {
                            return Err(ScenarioError::invalid(
                                text,
                                rc,
                                format!(
                                    "root_cause {rc:?}: router {router:?} has no interface {interface:?}"
                                ),
                            ));
                        }
                    }
                    RootCauseSpec::Site(s) => self.check_site(text, &s, "root_cause site")?,
                    RootCauseSpec::Agent(a) => {
                        if !agents.contains(&a) {
                            return Err(ScenarioError::invalid(
                                text,
                                rc,
                                format!("root_cause {rc:?} names no agent of this scenario"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The agents of the scenario: as listed, or one per site that has routers.
    pub fn scenario_agents(&self) -> Vec<PlacedAgent> {
        let first_in = |site: &str| {
            self.routers
                .iter()
                .find(|r| r.site == site)
                .map(|r| r.id.clone())
        };
        match self.scenario.as_ref().and_then(|s| s.agents.as_ref()) {
            Some(list) => list
                .iter()
                .filter_map(|a| {
                    let at = a.at.clone().or_else(|| first_in(&a.site))?;
                    Some(PlacedAgent {
                        id: a.id.clone(),
                        site: a.site.clone(),
                        at,
                    })
                })
                .collect(),
            None => self
                .sites
                .iter()
                .filter_map(|s| {
                    Some(PlacedAgent {
                        id: format!("agent-{}", s.id),
                        site: s.id.clone(),
                        at: first_in(&s.id)?,
                    })
                })
                .collect(),
        }
    }

    /// The router the server hangs off.
    pub fn server_router(&self) -> Option<&str> {
        self.scenario
            .as_ref()
            .and_then(|s| s.server_at.as_deref())
            .or_else(|| self.routers.first().map(|r| r.id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "two sites"
[[sites]]
id = "a"
name = "A"
lat = 0.0
lon = 0.0
[[sites]]
id = "b"
name = "B"
lat = 1.0
lon = 1.0
[[routers]]
id = "a-core"
identity = "A-CORE"
site = "a"
role = "core"
ros_version = "7.16.1"
board = "CHR"
interfaces = [{ name = "ether1", kind = "ether", speed_mbps = 1000 }]
[[routers]]
id = "b-agg"
identity = "B-AGG"
site = "b"
role = "agg"
ros_version = "7.16.1"
board = "CHR"
interfaces = [{ name = "ether1", kind = "ether", speed_mbps = 1000 }]
[[links]]
a = "a-core:ether1"
b = "b-agg:ether1"
capacity_mbps = 1000
[[timeline]]
at_s = 60
fault = { kind = "link_cut", a = "a-core:ether1", b = "b-agg:ether1" }
[scenario]
duration_s = 200
"#;

    fn with(extra: &str) -> Result<Topology, ScenarioError> {
        Topology::from_scenario_toml(&format!("{BASE}{extra}"))
    }

    #[test]
    fn a_scenario_parses_with_its_defaults() {
        let t = with(
            "[[expect]]\nname = \"cut\"\nafter_s = 60\nwithin_s = 30\nroot_cause = \"a-core:ether1\"\nkind = \"link_down\"\n",
        )
        .expect("valid");
        let agents = t.scenario_agents();
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0].id, "agent-a");
        assert_eq!(agents[1].at, "b-agg");
        assert_eq!(t.server_router(), Some("a-core"));
        assert_eq!(t.expect[0].incident_cap(), Some(1));
        assert_eq!(
            RootCauseSpec::parse("a-core:ether1"),
            Some(RootCauseSpec::Interface {
                router: "a-core".into(),
                interface: "ether1".into()
            })
        );
    }

    fn message(r: Result<Topology, ScenarioError>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_with_its_line() {
        let m = message(with(
            "[[expect]]\nname = \"x\"\nafter_s = 1\nwithin_s = 2\nwithn_s = 3\n",
        ));
        assert!(m.contains("withn_s"), "{m}");
        assert!(m.contains("line 42"), "{m}");
    }

    #[test]
    fn an_unknown_router_is_an_error_with_its_line() {
        let m = message(with(
            "[[expect]]\nname = \"x\"\nafter_s = 1\nwithin_s = 2\nnever_down = [\"c-ghost\"]\n",
        ));
        assert_eq!(
            m,
            "line 42: expect \"x\": never_down \"c-ghost\" is not a router of this file"
        );
        let m = message(with(
            "[[expect]]\nname = \"x\"\nafter_s = 1\nwithin_s = 2\nroot_cause = \"a-core:sfp9\"\n",
        ));
        assert!(m.starts_with("line 42: root_cause"), "{m}");
        let bad_link = BASE.replace(
            "b = \"b-agg:ether1\"\ncapacity",
            "b = \"b-ghost:ether1\"\ncapacity",
        );
        let m = message(Topology::from_scenario_toml(&bad_link));
        assert!(m.starts_with("line 31: "), "{m}");
    }

    #[test]
    fn an_impossible_fault_is_an_error_with_its_line() {
        let m = message(with(
            "[[timeline]]\nat_s = 90\nfault = { kind = \"agent_down\", agent = \"agent-zz\" }\n",
        ));
        assert!(
            m.starts_with("line 40: agent_down names \"agent-zz\""),
            "{m}"
        );
        let cut_nothing = BASE.replace(
            "fault = { kind = \"link_cut\", a = \"a-core:ether1\", b = \"b-agg:ether1\" }",
            "fault = { kind = \"link_cut\", a = \"a-core:ether1\", b = \"a-core:ether1\" }",
        );
        let m = message(Topology::from_scenario_toml(&cut_nothing));
        assert!(m.starts_with("line 33: timeline entry 0"), "{m}");
    }
}
