//! The field-by-field checks a decoded batch must pass, one function per kind of item.
//!
//! The server runs them on every batch it reads; the agent runs the very same functions
//! on every item before buffering it ([`crate::clean`]), so an item the server would
//! refuse never reaches the buffer, and one odd item costs that item, not the batch.
//!
//! What a check refuses is also what the store cannot hold: text with NUL (PostgreSQL
//! refuses it in `TEXT`), keys longer than a btree index entry may be (`max_id_len` is
//! far below PostgreSQL's ~2.7 kB), control characters in names (they break logs and
//! URLs), timestamps no clock can produce.

use super::{DecodeError, Limits};
use crate::cluster_report::{ClusterReport, MemberView, ReachCell};
use crate::envelope::{
    AddressInfo, DeviceInfo, EntityKey, Event, InterfaceInfo, MetricSample, NeighborInfo,
};

pub(crate) fn count(what: &'static str, count: usize, limit: usize) -> Result<(), DecodeError> {
    if count > limit {
        return Err(DecodeError::TooManyItems { what, count, limit });
    }
    Ok(())
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), DecodeError> {
    if value.len() > max {
        return Err(invalid(
            field,
            format!("is {} bytes, over {max}", value.len()),
        ));
    }
    Ok(())
}

/// Identifiers (agent, tenant, device key): non-empty, bounded, and made of characters
/// that are safe in URLs, logs and storage keys. `/` is reserved as the separator of
/// composite entity ids. Public so configurations can refuse at load what ingest would
/// refuse in every batch.
pub fn check_id(field: &str, value: &str, limits: &Limits) -> Result<(), DecodeError> {
    if value.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    check_len(field, value, limits.max_id_len)?;
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@')))
    {
        return Err(invalid(field, format!("contains {c:?}")));
    }
    Ok(())
}

/// Names chosen by routers or their neighbours (interface names, peers, neighbour
/// identities): any text without control characters, non-empty, as long as an id at
/// most, because they are parts of storage keys.
pub(crate) fn check_name(field: &str, value: &str, limits: &Limits) -> Result<(), DecodeError> {
    if value.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    check_label(field, value, limits)
}

/// Short labels (a MAC address, a platform, an address as announced): like a name, but
/// may be empty.
pub(crate) fn check_label(field: &str, value: &str, limits: &Limits) -> Result<(), DecodeError> {
    check_len(field, value, limits.max_id_len)?;
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character"));
    }
    Ok(())
}

/// Whether `c` may appear in free text: anything printable, and the line breaks and
/// tabs a multi-line message (a `!trap`, a syslog line) legitimately holds.
pub(crate) fn text_char_allowed(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// Free text (event messages, attribute values, models): bounded, and without NUL or
/// other control characters but line breaks and tabs.
pub(crate) fn check_text(field: &str, value: &str, limits: &Limits) -> Result<(), DecodeError> {
    check_len(field, value, limits.max_text_len)?;
    if let Some(c) = value.chars().find(|c| !text_char_allowed(*c)) {
        return Err(invalid(
            field,
            format!("contains the control character U+{:04X}", u32::from(c)),
        ));
    }
    Ok(())
}

pub(crate) fn check_entity(
    field: &str,
    entity: &EntityKey,
    limits: &Limits,
) -> Result<(), DecodeError> {
    match entity {
        EntityKey::Device(d) => check_id(field, d, limits),
        EntityKey::ProbeTarget(t) => check_id(field, t, limits),
        EntityKey::Interface { device, name } => {
            check_id(field, device, limits)?;
            check_name(field, name, limits)
        }
        EntityKey::Peer { device, peer } => {
            check_id(field, device, limits)?;
            check_name(field, peer, limits)
        }
    }
}

pub(crate) fn check_ts(field: &str, ts_ms: i64) -> Result<(), DecodeError> {
    // 2000-01-01 .. 2200-01-01: anything outside is a broken clock or a forged value.
    const MIN: i64 = 946_684_800_000;
    const MAX: i64 = 7_258_118_400_000;
    if !(MIN..MAX).contains(&ts_ms) {
        return Err(invalid(
            field,
            format!("timestamp {ts_ms} ms is out of range"),
        ));
    }
    Ok(())
}

pub(crate) fn check_sample(i: usize, s: &MetricSample, limits: &Limits) -> Result<(), DecodeError> {
    check_entity(&format!("samples[{i}].entity"), &s.entity, limits)?;
    check_ts(&format!("samples[{i}].ts_ms"), s.ts_ms)?;
    if !s.value.is_finite() {
        return Err(invalid(format!("samples[{i}].value"), "is not finite"));
    }
    Ok(())
}

pub(crate) fn check_event(i: usize, e: &Event, limits: &Limits) -> Result<(), DecodeError> {
    check_entity(&format!("events[{i}].entity"), &e.entity, limits)?;
    check_ts(&format!("events[{i}].ts_ms"), e.ts_ms)?;
    check_text(&format!("events[{i}].message"), &e.message, limits)?;
    count("event attributes", e.attrs.len(), limits.max_event_attrs)?;
    for (k, v) in &e.attrs {
        check_name(&format!("events[{i}].attrs key"), k, limits)?;
        check_text(&format!("events[{i}].attrs[{k}]"), v, limits)?;
    }
    Ok(())
}

pub(crate) fn check_device(i: usize, d: &DeviceInfo, limits: &Limits) -> Result<(), DecodeError> {
    check_id(&format!("inventory.devices[{i}].key"), &d.key, limits)?;
    check_id(&format!("inventory.devices[{i}].site"), &d.site, limits)?;
    for (field, value) in [
        ("name", &d.name),
        ("mgmt_addr", &d.mgmt_addr),
        ("model", &d.model),
        ("os_version", &d.os_version),
    ] {
        check_text(&format!("inventory.devices[{i}].{field}"), value, limits)?;
    }
    Ok(())
}

pub(crate) fn check_interface(
    i: usize,
    itf: &InterfaceInfo,
    limits: &Limits,
) -> Result<(), DecodeError> {
    check_id(
        &format!("inventory.interfaces[{i}].device"),
        &itf.device,
        limits,
    )?;
    check_name(
        &format!("inventory.interfaces[{i}].name"),
        &itf.name,
        limits,
    )?;
    check_label(
        &format!("inventory.interfaces[{i}].kind"),
        &itf.kind,
        limits,
    )
}

/// An interface address must be `address/prefix` with a prefix its family allows: the
/// topology inference computes subnets from it.
pub(crate) fn check_address(i: usize, a: &AddressInfo, limits: &Limits) -> Result<(), DecodeError> {
    let field = |f: &str| format!("inventory.addresses[{i}].{f}");
    check_id(&field("device"), &a.device, limits)?;
    check_name(&field("interface"), &a.interface, limits)?;
    check_label(&field("address"), &a.address, limits)?;
    let (ip, prefix) = a
        .address
        .split_once('/')
        .ok_or_else(|| invalid(field("address"), "has no /prefix"))?;
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| invalid(field("address"), "is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(()),
        _ => Err(invalid(field("address"), "has a prefix out of range")),
    }
}

pub(crate) fn check_neighbor(
    i: usize,
    n: &NeighborInfo,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let field = |f: &str| format!("inventory.neighbors[{i}].{f}");
    check_id(&field("device"), &n.device, limits)?;
    check_name(&field("interface"), &n.interface, limits)?;
    // What a neighbour announces is the neighbour's to choose (MNDP, LLDP, CDP): an
    // identity may be empty, but it is part of a storage key, so it is bounded like one.
    check_label(&field("identity"), &n.identity, limits)?;
    check_label(&field("mac"), &n.mac, limits)?;
    check_label(&field("address"), &n.address, limits)?;
    check_label(&field("platform"), &n.platform, limits)
}

fn check_fraction(field: &str, value: f32, max: f32) -> Result<(), DecodeError> {
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err(invalid(field, format!("{value} is not within 0..={max}")));
    }
    Ok(())
}

pub(crate) fn check_cluster(r: &ClusterReport, limits: &Limits) -> Result<(), DecodeError> {
    count(
        "cluster members",
        r.members.len(),
        limits.max_cluster_members,
    )?;
    count(
        "reachability verdicts",
        r.reach.len(),
        limits.max_reach_cells,
    )?;
    count("owned routers", r.owned.len(), limits.max_inventory_items)?;
    check_ts("cluster.at_ms", r.at_ms)?;
    check_id("cluster.site", &r.site, limits)?;
    if r.gossip_interval_ms == 0 || r.gossip_interval_ms > 60_000 {
        return Err(invalid(
            "cluster.gossip_interval_ms",
            "must be within 1..=60000",
        ));
    }
    check_fraction("cluster.phi_threshold", r.phi_threshold, 1_000.0)?;
    if !(1..=2).contains(&r.replication) {
        return Err(invalid("cluster.replication", "must be 1 or 2"));
    }
    for (i, m) in r.members.iter().enumerate() {
        check_member(i, m, limits)?;
    }
    for (i, router) in r.owned.iter().enumerate() {
        check_id(&format!("cluster.owned[{i}]"), router, limits)?;
    }
    for (i, c) in r.reach.iter().enumerate() {
        check_cell(i, c, limits)?;
    }
    Ok(())
}

pub(crate) fn check_member(i: usize, m: &MemberView, limits: &Limits) -> Result<(), DecodeError> {
    check_id(&format!("cluster.members[{i}].agent"), &m.agent, limits)?;
    if !m.site.is_empty() {
        check_id(&format!("cluster.members[{i}].site"), &m.site, limits)?;
    }
    check_text(&format!("cluster.members[{i}].version"), &m.version, limits)?;
    check_text(&format!("cluster.members[{i}].health"), &m.health, limits)?;
    count("member capabilities", m.capabilities.len(), 16)?;
    for c in &m.capabilities {
        check_name(&format!("cluster.members[{i}].capabilities"), c, limits)?;
    }
    if let Some(phi) = m.phi {
        check_fraction(&format!("cluster.members[{i}].phi"), phi, f32::MAX)?;
    }
    // Any instant is a possible expiry (CAs issue "never expires" certificates dated
    // 9999), but not one before 1970.
    if m.cert_expiry_s.is_some_and(|at| at < 0) {
        return Err(invalid(
            format!("cluster.members[{i}].cert_expiry_s"),
            "is negative",
        ));
    }
    Ok(())
}

pub(crate) fn check_cell(i: usize, c: &ReachCell, limits: &Limits) -> Result<(), DecodeError> {
    check_id(&format!("cluster.reach[{i}].vantage"), &c.vantage, limits)?;
    check_id(&format!("cluster.reach[{i}].target"), &c.target, limits)?;
    check_fraction(&format!("cluster.reach[{i}].loss_pct"), c.loss_pct, 100.0)?;
    check_ts(
        &format!("cluster.reach[{i}].at_s"),
        c.at_s.saturating_mul(1000),
    )
}
