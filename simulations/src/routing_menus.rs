//! The items of the routing menus: BGP (v7 `session`, v6 `peer`), OSPF neighbours and
//! `/ip/neighbor`, from the live control plane in [`crate::routing`].

use crate::commands::{Ctx, Item};
use crate::menus::bool_text;
use crate::ros_format;

/// `/routing/bgp/session/print` (RouterOS 7): attributes with dotted names.
pub fn bgp_sessions_v7(ctx: &Ctx) -> Vec<Item> {
    ctx.net
        .bgp_sessions(ctx.router, ctx.now_s)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut item: Item = vec![
                (".id", format!("*{:X}", i + 1)),
                ("name", format!("{}-1", s.name)),
                ("remote.address", s.remote_address.to_string()),
                ("remote.as", s.remote_as.to_string()),
                ("local.address", s.local_address.to_string()),
                ("local.as", s.local_as.to_string()),
                ("established", bool_text(s.established)),
            ];
            if s.established {
                item.push(("uptime", ros_format::duration(s.uptime_s)));
            }
            item.push(("prefix-count", s.prefixes.to_string()));
            item
        })
        .collect()
}

/// `/routing/bgp/peer/print` (RouterOS 6).
pub fn bgp_peers_v6(ctx: &Ctx) -> Vec<Item> {
    let now_s = ctx.now_s;
    ctx.net
        .bgp_sessions(ctx.router, now_s)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let state = if s.established {
                "established"
            } else if s.disabled {
                "idle"
            } else if (now_s / 10.0).floor().rem_euclid(3.0) < 1.0 {
                "connect"
            } else {
                "active"
            };
            let mut item: Item = vec![
                (".id", format!("*{:X}", i + 1)),
                ("name", s.name),
                ("instance", "default".to_owned()),
                ("remote-address", s.remote_address.to_string()),
                ("remote-as", s.remote_as.to_string()),
                ("state", state.to_owned()),
                ("established", bool_text(s.established)),
            ];
            if s.established {
                item.push(("uptime", ros_format::duration(s.uptime_s)));
            }
            item.extend([
                ("prefix-count", s.prefixes.to_string()),
                ("updates-sent", s.updates_sent.to_string()),
                ("updates-received", s.updates_received.to_string()),
                ("disabled", bool_text(s.disabled)),
            ]);
            item
        })
        .collect()
}

/// RouterOS 7 names the backbone area `backbone`; other areas keep their configured name.
fn v7_area_name(area: &str) -> String {
    match area {
        "0" | "0.0.0.0" | "backbone" => "backbone".to_owned(),
        other => other.to_owned(),
    }
}

/// `/routing/ospf/neighbor/print`: v7 and v6 list different attributes.
pub fn ospf_neighbors(ctx: &Ctx) -> Vec<Item> {
    let v7 = ctx.model.version.major >= 7;
    ctx.net
        .ospf_neighbors(ctx.router, ctx.now_s)
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let id = (".id", format!("*{:X}", i + 1));
            let tail = [
                ("state", "Full".to_owned()),
                ("state-changes", n.state_changes.to_string()),
                ("adjacency", ros_format::duration(n.adjacency_s)),
            ];
            let mut item: Item = if v7 {
                vec![
                    id,
                    ("instance", "default-v2".to_owned()),
                    ("area", v7_area_name(&n.area)),
                    ("address", n.address.to_string()),
                    ("router-id", n.router_id.to_string()),
                ]
            } else {
                vec![
                    id,
                    ("instance", "default".to_owned()),
                    ("router-id", n.router_id.to_string()),
                    ("address", n.address.to_string()),
                    ("interface", n.interface),
                    ("priority", "1".to_owned()),
                ]
            };
            item.extend(tail);
            item
        })
        .collect()
}

/// `/ip/neighbor/print`: what MNDP discovered on each link that is up.
pub fn ip_neighbors(ctx: &Ctx) -> Vec<Item> {
    ctx.net
        .ip_neighbors(ctx.router, ctx.now_s)
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                (".id", format!("*{:X}", i + 1)),
                ("interface", n.interface),
                (
                    "address",
                    n.address.map(|a| a.to_string()).unwrap_or_default(),
                ),
                ("mac-address", n.mac_address),
                ("identity", n.identity),
                ("platform", "MikroTik".to_owned()),
                ("version", n.version),
                ("board", n.board),
            ]
        })
        .collect()
}
