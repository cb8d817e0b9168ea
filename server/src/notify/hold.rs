//! Whether a transition is held back rather than sent: silenced by an acknowledgement,
//! or about a fault inside an active maintenance window.

use super::delivery::DeliveryState;
use crate::store::catalog::Scope;
use ispvm_actors::incident::Incident;
use ispvm_actors::rca::CauseEntity;
use ispvm_proto::DeviceRole;
use std::collections::BTreeMap;

/// A device as maintenance scopes select it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    pub site: String,
    pub role: Option<DeviceRole>,
    pub tags: Vec<String>,
}

/// The active maintenance windows' scopes and the inventory they select from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintenanceView {
    pub scopes: Vec<Scope>,
    pub devices: BTreeMap<String, DeviceFacts>,
    /// Link id → its two end devices.
    pub links: BTreeMap<String, [String; 2]>,
}

impl MaintenanceView {
    fn covers_device(&self, id: &str) -> bool {
        let facts = self.devices.get(id);
        self.scopes.iter().any(|s| {
            s.all
                || s.devices.iter().any(|d| d == id)
                || facts.is_some_and(|f| {
                    s.sites.contains(&f.site)
                        || f.role.is_some_and(|r| s.roles.contains(&r))
                        || f.tags.iter().any(|t| s.tags.contains(t))
                })
        })
    }

    fn covers_site(&self, id: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.all || s.sites.iter().any(|x| x == id))
    }

    fn covers_link(&self, id: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s.all || s.links.iter().any(|l| l == id))
            || self
                .links
                .get(id)
                .is_some_and(|ends| ends.iter().all(|d| self.covers_device(d)))
    }

    /// Whether the root cause (its device, link or site) is in maintenance.
    fn covers_cause(&self, cause: &CauseEntity) -> bool {
        match cause {
            CauseEntity::Link { id } => self.covers_link(id),
            CauseEntity::Site { id } => self.covers_site(id),
            CauseEntity::Agent { .. } => false,
            other => other.device().is_some_and(|d| self.covers_device(d)),
        }
    }
}

/// Whether an incident is about work someone announced: its root cause is inside an
/// active window, or every device it impacts is (a planned reload of a whole site).
pub fn in_maintenance(incident: &Incident, view: &MaintenanceView) -> bool {
    if view.scopes.is_empty() {
        return false;
    }
    view.covers_cause(&incident.root_cause.entity)
        || (!incident.impact.devices.is_empty()
            && incident
                .impact
                .devices
                .iter()
                .all(|d| view.covers_device(d)))
}

/// The state a delivery about `incident` is held in at `now_ms`, or `None` to send it.
/// Silencing wins over maintenance: an operator said so explicitly.
pub fn held(incident: &Incident, view: &MaintenanceView, now_ms: i64) -> Option<DeliveryState> {
    if incident.silenced_at(now_ms) {
        Some(DeliveryState::Silenced)
    } else if in_maintenance(incident, view) {
        Some(DeliveryState::Maintenance)
    } else {
        None
    }
}
