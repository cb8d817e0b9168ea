//! Titles a NOC reads aloud: "Core link LIS1-CORE1 sfp28-1 ↔ LIS1-CORE2 sfp-sfpplus1 down".

use super::manager::IncidentContext;
use crate::rca::{Cause, CauseEntity, CauseKind};
use ispvm_proto::DeviceRole;

fn role_word(role: DeviceRole) -> &'static str {
    match role {
        DeviceRole::Core => "Core router",
        DeviceRole::Agg => "Aggregation router",
        DeviceRole::Access => "Access router",
        DeviceRole::Edge => "Edge router",
        DeviceRole::CustomerEdge => "Customer router",
        DeviceRole::Upstream => "Upstream router",
        DeviceRole::RouteReflector => "Route reflector",
        DeviceRole::PppoeConcentrator => "PPPoE concentrator",
    }
}

/// The tier of a link: the lower of its ends' roles (a core–aggregation link belongs
/// to the aggregation tier).
fn link_tier(roles: [Option<DeviceRole>; 2]) -> &'static str {
    let rank = |r: Option<DeviceRole>| match r {
        Some(DeviceRole::Upstream | DeviceRole::Edge) => 4,
        Some(DeviceRole::Core | DeviceRole::RouteReflector) => 3,
        Some(DeviceRole::Agg) => 2,
        Some(_) => 1,
        None => 0,
    };
    match rank(roles[0]).min(rank(roles[1])) {
        4 => "Edge link",
        3 => "Core link",
        2 => "Aggregation link",
        _ => "Link",
    }
}

fn device_name(ctx: &dyn IncidentContext, id: &str) -> String {
    ctx.device(id)
        .map(|(name, _)| name)
        .unwrap_or_else(|| id.to_owned())
}

fn link_words(ctx: &dyn IncidentContext, id: &str) -> (String, &'static str) {
    match ctx.link(id) {
        Some([(a, ia), (b, ib)]) => {
            let roles = [ctx.device(&a).map(|d| d.1), ctx.device(&b).map(|d| d.1)];
            (
                format!(
                    "{} {ia} ↔ {} {ib}",
                    device_name(ctx, &a),
                    device_name(ctx, &b)
                ),
                link_tier(roles),
            )
        }
        None => (id.to_owned(), "Link"),
    }
}

/// The title of an incident with this root cause.
pub fn title(cause: &Cause, ctx: &dyn IncidentContext) -> String {
    match (&cause.kind, &cause.entity) {
        (CauseKind::DeviceDown, CauseEntity::Device { id }) => {
            let (name, role) = ctx
                .device(id)
                .map_or((id.clone(), "Router"), |(n, r)| (n, role_word(r)));
            format!("{role} {name} down")
        }
        (CauseKind::LinkDown, CauseEntity::Link { id }) => {
            let (ends, tier) = link_words(ctx, id);
            format!("{tier} {ends} down")
        }
        (CauseKind::RedundancyDegraded, CauseEntity::Link { id }) => {
            let (ends, tier) = link_words(ctx, id);
            format!(
                "Redundancy degraded: {} {ends} down, traffic rerouted",
                tier.to_lowercase()
            )
        }
        (CauseKind::Congestion, CauseEntity::Link { id }) => {
            let (ends, tier) = link_words(ctx, id);
            format!("{tier} {ends} congested")
        }
        (CauseKind::SiteIsolated, CauseEntity::Site { id }) => {
            let name = ctx.site(id).unwrap_or_else(|| id.clone());
            format!("Site {name} isolated: every link into it is down")
        }
        (CauseKind::UpstreamLost, CauseEntity::Interface { device, interface }) => format!(
            "Upstream provider down on {} {interface}",
            device_name(ctx, device)
        ),
        (CauseKind::BgpDown, CauseEntity::BgpSession { device, peer, .. }) => {
            let peer = ctx.device(peer).map_or_else(|| peer.clone(), |(n, _)| n);
            format!("BGP session {} → {peer} down", device_name(ctx, device))
        }
        (CauseKind::ManagementPlane, e) => format!(
            "Management plane of {} unreachable (router still forwarding)",
            e.device()
                .map_or_else(|| e.to_string(), |d| device_name(ctx, d))
        ),
        (CauseKind::AgentLost, CauseEntity::Agent { id }) => {
            format!("Monitoring agent {id} lost (its routers taken over)")
        }
        (kind, entity) => format!("{} on {entity}", kind.as_str().replace('_', " ")),
    }
}
