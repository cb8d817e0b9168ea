//! What the engine knows about the entities it watches: identity and the attributes
//! scope selectors and maintenance windows match on.

use super::rule::{EntityKind, Scope};
use ispvm_proto::EntityKey;
use serde::{Deserialize, Serialize};

/// An entity by kind and stored id (`device`, `device/interface`, `device/peer`, target).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[schema(as = AlertEntity)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub id: String,
}

impl EntityRef {
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        EntityRef {
            kind,
            id: id.into(),
        }
    }

    pub fn device(id: impl Into<String>) -> Self {
        EntityRef::new(EntityKind::Device, id)
    }

    /// The device part of the id, for entities that belong to a device.
    pub fn device_id(&self) -> Option<&str> {
        match self.kind {
            EntityKind::Device => Some(&self.id),
            EntityKind::Interface | EntityKind::Peer => self.id.split('/').next(),
            EntityKind::ProbeTarget => None,
        }
    }
}

impl From<&EntityKey> for EntityRef {
    fn from(key: &EntityKey) -> Self {
        let (kind, id) = key.storage_parts();
        let kind = match kind {
            "device" => EntityKind::Device,
            "interface" => EntityKind::Interface,
            "peer" => EntityKind::Peer,
            _ => EntityKind::ProbeTarget,
        };
        EntityRef { kind, id }
    }
}

impl std::fmt::Display for EntityRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.id)
    }
}

/// Operator and discovered attributes of an entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntityAttrs {
    pub site: Option<String>,
    pub role: Option<ispvm_proto::DeviceRole>,
    pub tags: Vec<String>,
    /// Interfaces: flagged as an uplink by an operator.
    pub uplink: bool,
    /// Interfaces: administratively disabled, so "not running" is intended.
    pub disabled: bool,
    /// Interfaces: the capacity utilisation is measured against, bit/s.
    pub capacity_bps: Option<f64>,
    /// Probe targets: the device the probe checks, which makes its loss a reachability
    /// signal for that device.
    pub device: Option<String>,
}

/// Whether `scope` selects the entity; `parent` holds the attributes of the device an
/// interface or peer belongs to (site, role and tags are inherited from it).
pub fn scope_matches(
    scope: &Scope,
    entity: &EntityRef,
    attrs: &EntityAttrs,
    parent: Option<&EntityAttrs>,
) -> bool {
    let site = attrs.site.as_ref().or(parent.and_then(|p| p.site.as_ref()));
    let role = attrs.role.as_ref().or(parent.and_then(|p| p.role.as_ref()));
    if !scope.sites.is_empty() && !site.is_some_and(|s| scope.sites.contains(s)) {
        return false;
    }
    if !scope.roles.is_empty() && !role.is_some_and(|r| scope.roles.contains(r)) {
        return false;
    }
    if !scope.tags.is_empty() {
        let has = |t: &String| attrs.tags.contains(t) || parent.is_some_and(|p| p.tags.contains(t));
        if !scope.tags.iter().all(has) {
            return false;
        }
    }
    if !scope.ids.is_empty() {
        let device = entity.device_id().or(attrs.device.as_deref());
        let hit = scope
            .ids
            .iter()
            .any(|id| *id == entity.id || device.is_some_and(|d| d == id));
        if !hit {
            return false;
        }
    }
    if scope.uplink_only && !(entity.kind == EntityKind::Interface && attrs.uplink) {
        return false;
    }
    true
}

/// A planned-work window: alerts of the entities it selects are suppressed while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: String,
    pub scope: Scope,
    pub starts_ms: i64,
    pub ends_ms: i64,
    #[serde(default)]
    pub reason: String,
}

impl MaintenanceWindow {
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_inherit_site_and_tags_from_their_device() {
        let dev = EntityAttrs {
            site: Some("pop-a".into()),
            role: Some(ispvm_proto::DeviceRole::Core),
            tags: vec!["gold".into()],
            ..EntityAttrs::default()
        };
        let itf = EntityAttrs {
            uplink: true,
            ..EntityAttrs::default()
        };
        let e = EntityRef::new(EntityKind::Interface, "r1/ether1");
        let scope = Scope {
            sites: vec!["pop-a".into()],
            tags: vec!["gold".into()],
            ids: vec!["r1".into()],
            uplink_only: true,
            ..Scope::default()
        };
        assert!(scope_matches(&scope, &e, &itf, Some(&dev)));
        let other = Scope {
            sites: vec!["pop-b".into()],
            ..Scope::default()
        };
        assert!(!scope_matches(&other, &e, &itf, Some(&dev)));
        assert!(!scope_matches(
            &scope,
            &e,
            &EntityAttrs::default(),
            Some(&dev)
        ));
    }
}
