//! The items of the system, interface, IP and PPP menus.
//!
//! Each function produces the `!re` items of one `print`, in the order and with the
//! attribute names RouterOS uses, from the router's model and the live network state.

use crate::commands::{Ctx, Item, PPP_ACTIVE_PRINT_CAP};
use crate::ros_format::{self, Civil};
use crate::router_state::RouterModel;

pub fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

pub fn iso_dates(model: &RouterModel) -> bool {
    ros_format::uses_iso_dates(model.version)
}

pub fn identity(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    vec![vec![("name", model.spec.identity.clone())]]
}

pub fn resource(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    let now_s = ctx.now_s;
    let uptime = RouterModel::uptime_since(ctx.boot_s(), now_s);
    let (free_mem, total_mem) = model.memory(now_s);
    let (free_hdd, total_hdd) = model.hdd();
    let build = Civil::from_unix(ros_format::build_time_unix(model.version));
    let build_time = if iso_dates(model) {
        build.date_time(true)
    } else {
        // v6 capitalises the month here: `Feb/12/2024 10:43:56`.
        let mut text = build.date_time(false);
        if let Some(first) = text.get(..1) {
            text = first.to_ascii_uppercase() + text.get(1..).unwrap_or("");
        }
        text
    };
    let b = model.board;
    vec![vec![
        ("uptime", ros_format::duration(uptime)),
        (
            "version",
            ros_format::version_string(&model.spec.ros_version, model.version),
        ),
        ("build-time", build_time),
        ("free-memory", free_mem.to_string()),
        ("total-memory", total_mem.to_string()),
        ("cpu", b.cpu.to_owned()),
        ("cpu-count", b.cpu_count.to_string()),
        ("cpu-frequency", b.cpu_frequency_mhz.to_string()),
        ("cpu-load", model.cpu_load(now_s).to_string()),
        ("free-hdd-space", free_hdd.to_string()),
        ("total-hdd-space", total_hdd.to_string()),
        ("write-sect-since-reboot", (uptime / 40).to_string()),
        ("write-sect-total", (uptime / 40 + 180_000).to_string()),
        ("bad-blocks", "0".to_owned()),
        ("architecture-name", b.architecture.to_owned()),
        ("board-name", model.spec.board.clone()),
        ("platform", "MikroTik".to_owned()),
    ]]
}

pub fn routerboard(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    if !model.board.routerboard {
        return vec![vec![("routerboard", bool_text(false))]];
    }
    let factory = if model.version.major >= 7 {
        "7.1"
    } else {
        "6.45.9"
    };
    let firmware = model.spec.ros_version.clone();
    vec![vec![
        ("routerboard", bool_text(true)),
        ("board-name", model.spec.board.clone()),
        ("model", model.spec.board.clone()),
        ("serial-number", model.serial_number.clone()),
        ("firmware-type", model.board.architecture.to_owned()),
        ("factory-firmware", factory.to_owned()),
        ("current-firmware", firmware.clone()),
        ("upgrade-firmware", firmware),
    ]]
}

pub fn clock(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    let now_s = ctx.now_s;
    let now = Civil::from_unix(if now_s.is_finite() { now_s as i64 } else { 0 });
    vec![vec![
        ("time", now.time()),
        ("date", now.date(iso_dates(model))),
        ("time-zone-autodetect", bool_text(false)),
        ("time-zone-name", "UTC".to_owned()),
        ("gmt-offset", "+00:00".to_owned()),
        ("dst-active", bool_text(false)),
    ]]
}

/// v7 lists one item per sensor (`name`, `value`, `type` = unit); v6 has one item with a
/// property per sensor. Boards without sensors (CHR) list nothing.
pub fn health(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    let now_s = ctx.now_s;
    let Some(temp) = model.temperature_c(now_s) else {
        return Vec::new();
    };
    let cpu_temp = temp + 8.0 + f64::from(model.cpu_load(now_s)) * 0.1;
    let voltage = format!("{:.1}", model.voltage_v(now_s));
    let fans = model.fan_rpm(now_s);
    if model.version.major >= 7 {
        let mut sensors: Vec<(String, String, &str)> = vec![
            ("voltage".to_owned(), voltage, "V"),
            ("temperature".to_owned(), format!("{temp:.0}"), "C"),
            ("cpu-temperature".to_owned(), format!("{cpu_temp:.0}"), "C"),
        ];
        for (i, rpm) in fans.iter().enumerate() {
            sensors.push((format!("fan{}-speed", i + 1), rpm.to_string(), "RPM"));
        }
        sensors
            .into_iter()
            .enumerate()
            .map(|(i, (name, value, unit))| {
                vec![
                    (".id", format!("*{:X}", i + 1)),
                    ("name", name),
                    ("value", value),
                    ("type", unit.to_owned()),
                ]
            })
            .collect()
    } else {
        let mut item: Item = vec![
            ("voltage", voltage),
            ("temperature", format!("{temp:.0}")),
            ("cpu-temperature", format!("{cpu_temp:.0}")),
        ];
        const FAN_KEYS: [&str; 4] = ["fan1-speed", "fan2-speed", "fan3-speed", "fan4-speed"];
        for (key, rpm) in FAN_KEYS.iter().zip(fans) {
            item.push((key, rpm.to_string()));
        }
        vec![item]
    }
}

pub fn interfaces(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    let now_s = ctx.now_s;
    let iso = iso_dates(model);
    model
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let live = ctx.interface(i);
            let c = live.counters;
            let kind = iface.spec.kind.as_str();
            let (mtu, actual_mtu) = match kind {
                "bridge" if model.version.major >= 7 => ("auto", "1500"),
                "pppoe-in" | "pppoe-out" => ("1480", "1480"),
                _ => ("1500", "1500"),
            };
            let last_up = live.last_link_up_s.min(now_s);
            let mut item: Item = vec![
                (".id", format!("*{:X}", i + 1)),
                ("name", iface.spec.name.clone()),
            ];
            if kind == "ether" {
                item.push(("default-name", iface.spec.name.clone()));
            }
            item.push(("type", kind.to_owned()));
            item.push(("mtu", mtu.to_owned()));
            item.push(("actual-mtu", actual_mtu.to_owned()));
            match kind {
                "ether" => item.push(("l2mtu", "1592".to_owned())),
                "vlan" => item.push(("l2mtu", "1588".to_owned())),
                _ => {}
            }
            item.push(("mac-address", iface.mac_string()));
            item.push((
                "last-link-up-time",
                Civil::from_unix(if last_up.is_finite() {
                    last_up as i64
                } else {
                    0
                })
                .date_time(iso),
            ));
            item.push(("link-downs", live.link_downs.to_string()));
            item.extend([
                ("rx-byte", c.rx_byte.to_string()),
                ("tx-byte", c.tx_byte.to_string()),
                ("rx-packet", c.rx_packet.to_string()),
                ("tx-packet", c.tx_packet.to_string()),
                ("rx-drop", c.rx_drop.to_string()),
                ("tx-drop", c.tx_drop.to_string()),
                ("tx-queue-drop", c.tx_queue_drop.to_string()),
                ("rx-error", c.rx_error.to_string()),
                ("tx-error", c.tx_error.to_string()),
                ("running", bool_text(live.running)),
                ("disabled", bool_text(false)),
            ]);
            item
        })
        .collect()
}

pub fn ip_addresses(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    model
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vec![
                (".id", format!("*{:X}", i + 1)),
                ("address", format!("{}/{}", a.address, a.prefix_len)),
                ("network", a.network().to_string()),
                ("interface", a.interface.clone()),
                ("actual-interface", a.interface.clone()),
                ("invalid", bool_text(false)),
                ("dynamic", bool_text(false)),
                ("disabled", bool_text(false)),
            ]
        })
        .collect()
}

pub fn ppp_active(ctx: &Ctx) -> Vec<Item> {
    let model = ctx.model;
    let now_s = ctx.now_s;
    model
        .pppoe_sessions_since(ctx.boot_s(), now_s, PPP_ACTIVE_PRINT_CAP)
        .into_iter()
        .map(|s| {
            vec![
                (".id", s.id),
                ("name", s.name),
                ("service", "pppoe".to_owned()),
                ("caller-id", s.caller_id),
                ("encoding", String::new()),
                ("address", s.address.to_string()),
                ("uptime", ros_format::duration(s.uptime_s)),
                ("session-id", s.session_id),
                ("limit-bytes-in", "0".to_owned()),
                ("limit-bytes-out", "0".to_owned()),
                ("radius", bool_text(true)),
            ]
        })
        .collect()
}

pub fn ppp_active_count(ctx: &Ctx) -> u64 {
    let model = ctx.model;
    let now_s = ctx.now_s;
    model.pppoe_session_count_since(ctx.boot_s(), now_s)
}

pub fn dhcp_lease_count(ctx: &Ctx) -> u64 {
    ctx.model.dhcp_lease_count(ctx.now_s)
}

/// The first leases of the router's DHCP server (`count-only` counts them all).
pub fn dhcp_leases(ctx: &Ctx) -> Vec<Item> {
    let count = dhcp_lease_count(ctx).min(crate::commands::DHCP_LEASE_PRINT_CAP as u64);
    let id = &ctx.model.spec.id;
    (0..count)
        .map(|i| {
            let s = crate::seed::seed_of(&["lease", id, &i.to_string()]);
            let mac = format!(
                "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                0x02 | ((s >> 8) as u8 & 0xFC),
                (s >> 16) as u8,
                (s >> 24) as u8,
                (s >> 32) as u8,
                (s >> 40) as u8,
                (s >> 48) as u8
            );
            let host = 10 + i;
            let address = format!("192.168.{}.{}", 88 + host / 250, host % 250 + 2);
            vec![
                (".id", format!("*{:X}", i + 1)),
                ("address", address.clone()),
                ("mac-address", mac.clone()),
                ("client-id", format!("1:{}", mac.to_ascii_lowercase())),
                ("server", "dhcp-customers".to_owned()),
                ("status", "bound".to_owned()),
                (
                    "expires-after",
                    ros_format::duration(600 + (s >> 20) % 1800),
                ),
                ("last-seen", ros_format::duration((s >> 30) % 600)),
                ("active-address", address),
                ("active-mac-address", mac),
                ("host-name", format!("cpe-{:04x}", s & 0xFFFF)),
                ("radius", bool_text(false)),
                ("dynamic", bool_text(true)),
                ("blocked", bool_text(false)),
                ("disabled", bool_text(false)),
            ]
        })
        .collect()
}
