//! What a simulated router reports, as a pure function of time.
//!
//! A [`RouterModel`] is built once from the topology and never changes: every value a
//! command returns (uptime, CPU load, byte counters, temperatures, PPPoE sessions) is
//! computed from the Unix time of the request. That makes many concurrent API sessions
//! trivially consistent with each other, and lets a test compute what the router must
//! have answered.
//!
//! Interfaces at the two ends of a [`LinkSpec`](crate::LinkSpec) share their curves: what
//! one end transmits, the other receives. Traffic flows mostly "downstream", from the end
//! whose role is closer to the upstream (edge, core) towards the subscribers (agg, access,
//! PPPoE).

use crate::boards::{self, BoardProfile};
use crate::seed;
use crate::topology::{InterfaceSpec, LinkSpec, RosVersion, RouterSpec, Topology};
use crate::traffic::{self, TrafficCurve};
use ispvm_proto::DeviceRole;
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch as a float (the time argument of every model function).
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Reduces a non-negative float to a 64-bit counter, wrapping as the router's would.
fn wrap_counter(value: f64) -> u64 {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if value.is_finite() && value > 0.0 {
        (value % TWO_64) as u64
    } else {
        0
    }
}

/// How far from the upstream a role sits (smaller is closer); decides traffic direction.
fn upstream_rank(role: DeviceRole) -> u8 {
    match role {
        DeviceRole::Upstream => 0,
        DeviceRole::Edge => 1,
        DeviceRole::Core | DeviceRole::RouteReflector => 2,
        DeviceRole::Agg => 3,
        DeviceRole::PppoeConcentrator => 4,
        DeviceRole::Access => 5,
        DeviceRole::CustomerEdge => 6,
    }
}

/// Byte, packet, error and drop counters of one interface at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceCounters {
    pub rx_byte: u64,
    pub tx_byte: u64,
    pub rx_packet: u64,
    pub tx_packet: u64,
    pub rx_error: u64,
    pub tx_error: u64,
    pub rx_drop: u64,
    pub tx_drop: u64,
    pub tx_queue_drop: u64,
}

/// An interface with everything needed to compute its counters.
#[derive(Debug, Clone)]
pub struct InterfaceModel {
    pub spec: InterfaceSpec,
    pub mac: [u8; 6],
    pub rx: TrafficCurve,
    pub tx: TrafficCurve,
    rx_packet_size: f64,
    tx_packet_size: f64,
    rx_error_rate: f64,
    drop_rate: f64,
    pub link_downs: u64,
    /// Unix time of the last link-up.
    pub last_link_up_s: f64,
}

impl InterfaceModel {
    /// `/interface` `mac-address`: `48:8F:5A:0C:1D:2E`.
    pub fn mac_string(&self) -> String {
        let m = self.mac;
        format!(
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// One `/ip/address` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressModel {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub interface: String,
}

impl AddressModel {
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len.min(32)))
        };
        Ipv4Addr::from(u32::from(self.address) & mask)
    }
}

/// One PPPoE subscriber session (`/ppp/active`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppSession {
    pub id: String,
    pub name: String,
    pub caller_id: String,
    pub address: Ipv4Addr,
    pub uptime_s: u64,
    pub session_id: String,
}

/// A simulated router: its spec plus the constants that turn time into values.
#[derive(Debug, Clone)]
pub struct RouterModel {
    pub spec: RouterSpec,
    pub version: RosVersion,
    pub board: &'static BoardProfile,
    seed: u64,
    /// Unix time the router "booted".
    pub boot_s: f64,
    /// Local solar time offset of its site.
    pub utc_offset_s: f64,
    pub interfaces: Vec<InterfaceModel>,
    pub addresses: Vec<AddressModel>,
    /// PPPoE subscribers at the evening peak (0 unless a PPPoE concentrator).
    pppoe_peak: u64,
    /// DHCP leases at the evening peak (0 without a DHCP server).
    dhcp_leases: u64,
    /// The loopback address (else the first address): OSPF router id, iBGP endpoint.
    pub router_id: Ipv4Addr,
    /// Second octet of the subscriber pool `100.x.0.0/16`.
    pool_octet: u8,
    memory_used_share: f64,
    hdd_free_share: f64,
    pub serial_number: String,
}

/// The MikroTik OUIs MAC addresses are drawn from.
const MIKROTIK_OUIS: [[u8; 3]; 6] = [
    [0x48, 0x8F, 0x5A],
    [0x4C, 0x5E, 0x0C],
    [0x64, 0xD1, 0x54],
    [0xB8, 0x69, 0xF4],
    [0xDC, 0x2C, 0x6E],
    [0x18, 0xFD, 0x74],
];

impl RouterModel {
    /// Builds the model of router `router_id`, which "booted" some days (deterministic per
    /// id) before `started` so uptimes and counters do not all start at zero.
    pub fn from_topology(
        topology: &Topology,
        router_id: &str,
        started: SystemTime,
    ) -> Option<RouterModel> {
        let index = topology.routers.iter().position(|r| r.id == router_id)?;
        let spec = topology.routers.get(index)?.clone();
        let seed = seed::seed_of(&["router", &spec.id]);
        let version = RosVersion::parse(&spec.ros_version).unwrap_or(RosVersion {
            major: 7,
            minor: 16,
            patch: 0,
        });
        let utc_offset_s = traffic::utc_offset_for_longitude(
            topology.site(&spec.site).map(|s| s.lon).unwrap_or(0.0),
        );
        // Most routers have run for weeks; one in eight was rebooted in the last day.
        let uptime_offset = if seed::unit(seed, 1) < 0.125 {
            seed::between(seed, 2, 2.0 * 3600.0, 20.0 * 3600.0)
        } else {
            seed::between(seed, 2, 3.0 * 86_400.0, 120.0 * 86_400.0)
        };
        let boot_s = (unix_seconds(started) - uptime_offset).floor();

        let oui = MIKROTIK_OUIS[(seed % MIKROTIK_OUIS.len() as u64) as usize];
        let mac_base = (seed >> 8) as u32 & 0x00FF_FF00;
        let interfaces = spec
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, iface)| {
                let n = mac_base.wrapping_add(i as u32 + 1);
                let mac = [
                    oui[0],
                    oui[1],
                    oui[2],
                    (n >> 16) as u8,
                    (n >> 8) as u8,
                    n as u8,
                ];
                build_interface(
                    topology,
                    &spec,
                    iface,
                    mac,
                    boot_s,
                    uptime_offset,
                    utc_offset_s,
                )
            })
            .collect();

        let addresses = plan_addresses(topology, index, &spec);
        let pppoe_peak = match spec.pppoe_subscribers {
            Some(n) => u64::from(n),
            None if spec.role == DeviceRole::PppoeConcentrator => {
                seed::int_between(seed, 3, 700, 1900)
            }
            None => 0,
        };
        let router_id = addresses
            .iter()
            .find(|a| a.prefix_len == 32)
            .or_else(|| addresses.first())
            .map_or(Ipv4Addr::UNSPECIFIED, |a| a.address);
        let role_memory = match spec.role {
            DeviceRole::PppoeConcentrator => 0.12,
            DeviceRole::Core | DeviceRole::Edge | DeviceRole::RouteReflector => 0.08,
            _ => 0.0,
        };
        let serial_number = format!("HG{:010X}", seed::derive(seed, 4) & 0xFF_FFFF_FFFF);
        Some(RouterModel {
            version,
            board: boards::profile(&spec.board),
            seed,
            boot_s,
            utc_offset_s,
            interfaces,
            addresses,
            pppoe_peak,
            dhcp_leases: spec.dhcp_leases.map_or(0, u64::from),
            router_id,
            pool_octet: 64 + (index % 64) as u8,
            memory_used_share: seed::between(seed, 5, 0.10, 0.30) + role_memory,
            hdd_free_share: seed::between(seed, 6, 0.45, 0.85),
            serial_number,
            spec,
        })
    }

    /// Seconds since boot.
    pub fn uptime_s(&self, now_s: f64) -> u64 {
        let up = now_s - self.boot_s;
        if up.is_finite() && up > 0.0 {
            up as u64
        } else {
            0
        }
    }

    /// The daily shape at the router's site (≈0.39 at dawn .. 1.0 in the evening).
    pub fn diurnal(&self, now_s: f64) -> f64 {
        traffic::diurnal(now_s, self.utc_offset_s)
    }

    /// `/system/resource` `cpu-load`: follows the day, higher on busy roles, with a
    /// little jitter from second to second.
    pub fn cpu_load(&self, now_s: f64) -> u8 {
        let (base, swing) = match self.spec.role {
            DeviceRole::PppoeConcentrator => (22.0, 38.0),
            DeviceRole::Core => (14.0, 26.0),
            DeviceRole::Edge => (10.0, 20.0),
            DeviceRole::Agg => (5.0, 12.0),
            DeviceRole::RouteReflector => (3.0, 4.0),
            DeviceRole::Upstream => (8.0, 10.0),
            DeviceRole::Access | DeviceRole::CustomerEdge => (2.0, 8.0),
        };
        let personal = seed::between(self.seed, 7, 0.8, 1.25);
        let second = if now_s.is_finite() {
            now_s.floor() as i64
        } else {
            0
        };
        let jitter = seed::between(self.seed ^ second as u64, 8, -3.0, 3.0);
        let load = (base + swing * self.diurnal(now_s)) * personal + jitter;
        load.round().clamp(0.0, 100.0) as u8
    }

    /// `(free, total)` memory in bytes.
    pub fn memory(&self, now_s: f64) -> (u64, u64) {
        let total = self.board.total_memory;
        let drift = 0.02 * self.diurnal(now_s);
        let used = ((self.memory_used_share + drift).clamp(0.0, 0.95) * total as f64) as u64;
        // RouterOS reports in whole KiB.
        ((total - used) & !1023, total)
    }

    /// `(free, total)` storage in bytes.
    pub fn hdd(&self) -> (u64, u64) {
        let total = self.board.total_hdd;
        (((total as f64 * self.hdd_free_share) as u64) & !1023, total)
    }

    /// Board temperature in °C, or `None` on boards without sensors.
    pub fn temperature_c(&self, now_s: f64) -> Option<f64> {
        let idle = self.board.idle_temperature_c?;
        let load = f64::from(self.cpu_load(now_s));
        Some(idle + 2.0 * self.diurnal(now_s) + load * 0.12)
    }

    /// Fan speeds in RPM (empty on fanless boards).
    pub fn fan_rpm(&self, now_s: f64) -> Vec<u32> {
        let temp = self.temperature_c(now_s).unwrap_or(40.0);
        (0..self.board.fans)
            .map(|i| {
                let personal = seed::between(self.seed, 20 + u64::from(i), -120.0, 120.0);
                (3_000.0 + (temp - 35.0).max(0.0) * 90.0 + personal).round() as u32
            })
            .collect()
    }

    /// Supply voltage in volts (0 on boards without sensors).
    pub fn voltage_v(&self, now_s: f64) -> f64 {
        if self.board.idle_temperature_c.is_none() {
            return 0.0;
        }
        let wobble = 0.1 * self.diurnal(now_s) + seed::between(self.seed, 9, -0.1, 0.1);
        self.board.voltage_v + wobble
    }

    /// Counters of interface `index` (in spec order) at `now_s`, with no fault ever.
    pub fn interface_counters(&self, index: usize, now_s: f64) -> Option<InterfaceCounters> {
        let iface = self.interfaces.get(index)?;
        let rx_bytes = iface.rx.bytes_between(self.boot_s, now_s);
        let tx_bytes = iface.tx.bytes_between(self.boot_s, now_s);
        self.counters_from_bytes(index, rx_bytes, tx_bytes, 0.0)
    }

    /// Counters of interface `index` given the bytes it carried since boot and how many of
    /// the transmitted bytes were sent into a full queue (congestion), which drops about
    /// 2 % of those packets on top of the healthy trickle.
    pub fn counters_from_bytes(
        &self,
        index: usize,
        rx_bytes: f64,
        tx_bytes: f64,
        congested_tx_bytes: f64,
    ) -> Option<InterfaceCounters> {
        let iface = self.interfaces.get(index)?;
        let congestion_drops = congested_tx_bytes / iface.tx_packet_size * 0.02;
        let rx_packets = rx_bytes / iface.rx_packet_size;
        let tx_packets = tx_bytes / iface.tx_packet_size;
        Some(InterfaceCounters {
            rx_byte: wrap_counter(rx_bytes),
            tx_byte: wrap_counter(tx_bytes),
            rx_packet: wrap_counter(rx_packets),
            tx_packet: wrap_counter(tx_packets),
            rx_error: wrap_counter(rx_packets * iface.rx_error_rate),
            tx_error: 0,
            rx_drop: wrap_counter(rx_packets * iface.drop_rate * 0.1),
            tx_drop: wrap_counter(tx_packets * iface.drop_rate),
            tx_queue_drop: wrap_counter(tx_packets * iface.drop_rate + congestion_drops),
        })
    }

    /// `(rx, tx)` bits per second of interface `index` at `now_s`.
    pub fn interface_rate_bps(&self, index: usize, now_s: f64) -> Option<(f64, f64)> {
        let iface = self.interfaces.get(index)?;
        Some((iface.rx.rate_bps(now_s), iface.tx.rate_bps(now_s)))
    }

    /// Index of the interface with this name.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.spec.name == name)
    }

    /// Seconds between `boot_s` and `now_s` (0 before boot).
    pub fn uptime_since(boot_s: f64, now_s: f64) -> u64 {
        let up = now_s - boot_s;
        if up.is_finite() && up > 0.0 {
            up as u64
        } else {
            0
        }
    }

    /// DHCP leases at `now_s`: like PPPoE, a few percent fewer at night.
    pub fn dhcp_lease_count(&self, now_s: f64) -> u64 {
        let day = 0.95 + 0.05 * self.diurnal(now_s);
        (self.dhcp_leases as f64 * day).round().max(0.0) as u64
    }

    /// PPPoE subscribers online at `now_s` for a router that booted at `boot_s`: they
    /// reconnect over the first five minutes after a boot.
    pub fn pppoe_session_count_since(&self, boot_s: f64, now_s: f64) -> u64 {
        let ramp = (Self::uptime_since(boot_s, now_s) as f64 / 300.0).min(1.0);
        (self.pppoe_session_count(now_s) as f64 * ramp).round() as u64
    }

    /// PPPoE subscribers online at `now_s`: a few percent fewer at night (CPEs switched
    /// off), with slow churn. Always 0 except on PPPoE concentrators.
    pub fn pppoe_session_count(&self, now_s: f64) -> u64 {
        if self.pppoe_peak == 0 {
            return 0;
        }
        let day = 0.93 + 0.07 * self.diurnal(now_s);
        let minute = if now_s.is_finite() {
            (now_s / 60.0).floor() as i64
        } else {
            0
        };
        let churn = seed::between(self.seed ^ minute as u64, 12, -0.004, 0.004);
        (self.pppoe_peak as f64 * (day + churn)).round().max(0.0) as u64
    }

    /// The first `limit` PPPoE sessions at `now_s`.
    pub fn pppoe_sessions(&self, now_s: f64, limit: usize) -> Vec<PppSession> {
        self.pppoe_sessions_since(self.boot_s, now_s, limit)
    }

    /// The first `limit` PPPoE sessions at `now_s` of a router that booted at `boot_s`.
    pub fn pppoe_sessions_since(&self, boot_s: f64, now_s: f64, limit: usize) -> Vec<PppSession> {
        let count = self
            .pppoe_session_count_since(boot_s, now_s)
            .min(limit as u64);
        let uptime = Self::uptime_since(boot_s, now_s).max(1);
        (0..count)
            .map(|i| {
                let s = seed::derive(self.seed, 1000 + i);
                let subscriber = 10_000 + (s % 90_000);
                let host = 2 + i as u32;
                PppSession {
                    id: format!("*8{:07X}", 0x10_0000 + i),
                    name: format!("sub{subscriber}@demo"),
                    caller_id: format!(
                        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                        0x0C | ((s >> 8) as u8 & 0xF0),
                        (s >> 16) as u8,
                        (s >> 24) as u8,
                        (s >> 32) as u8,
                        (s >> 40) as u8,
                        (s >> 48) as u8
                    ),
                    address: Ipv4Addr::new(100, self.pool_octet, (host >> 8) as u8, host as u8),
                    // Sessions came up at different times since boot.
                    uptime_s: (s >> 20) % uptime,
                    session_id: format!("0x81{:06X}", (s >> 4) & 0xFF_FFFF),
                }
            })
            .collect()
    }
}

/// The link an interface is an endpoint of, and whether it is end `a`.
fn link_of<'t>(topology: &'t Topology, router: &str, iface: &str) -> Option<(&'t LinkSpec, bool)> {
    topology.links.iter().find_map(|l| {
        if l.endpoint_a() == Some((router, iface)) {
            Some((l, true))
        } else if l.endpoint_b() == Some((router, iface)) {
            Some((l, false))
        } else {
            None
        }
    })
}

fn effective_speed_bps(iface: &InterfaceSpec) -> f64 {
    let mbps = if iface.speed_mbps == 0 {
        1000
    } else {
        iface.speed_mbps
    };
    mbps as f64 * 1e6
}

/// An interface that only carries control traffic (loopbacks) or nothing at all.
fn is_loopback(iface: &InterfaceSpec) -> bool {
    iface.kind == "loopback" || iface.name == "lo" || iface.name.contains("loopback")
}

fn build_interface(
    topology: &Topology,
    router: &RouterSpec,
    iface: &InterfaceSpec,
    mac: [u8; 6],
    boot_s: f64,
    uptime_at_start_s: f64,
    utc_offset_s: f64,
) -> InterfaceModel {
    let s = seed::seed_of(&["interface", &router.id, &iface.name]);
    let (rx, tx) = if let Some((link, is_a)) = link_of(topology, &router.id, &iface.name) {
        let (a_to_b, b_to_a) = link_curves(topology, link);
        if is_a {
            (b_to_a, a_to_b)
        } else {
            (a_to_b, b_to_a)
        }
    } else if is_loopback(iface) {
        (TrafficCurve::idle(), TrafficCurve::idle())
    } else {
        let speed = effective_speed_bps(iface);
        let mgmt = iface.name == "ether1" && !iface.uplink;
        let primary = if mgmt {
            seed::between(s, 1, 0.0005, 0.003)
        } else if iface.uplink {
            seed::between(s, 1, 0.45, 0.8)
        } else {
            seed::between(s, 1, 0.15, 0.6)
        };
        let secondary = primary * seed::between(s, 2, 0.12, 0.35);
        let down = TrafficCurve::new(seed::derive(s, 3), speed, primary, utc_offset_s);
        let up = TrafficCurve::new(seed::derive(s, 4), speed, secondary, utc_offset_s);
        // Uplinks receive the subscribers' downloads; other ports send them on.
        if iface.uplink || mgmt {
            (down, up)
        } else {
            (up, down)
        }
    };
    let packet_size = |curve: &TrafficCurve, other: &TrafficCurve| {
        if curve.peak_bps() >= other.peak_bps() {
            seed::between(s, 5, 1050.0, 1250.0)
        } else {
            seed::between(s, 6, 250.0, 450.0)
        }
    };
    let rx_packet_size = packet_size(&rx, &tx);
    let tx_packet_size = packet_size(&tx, &rx);
    // One optic in ten is dirty and shows a steady trickle of CRC errors.
    let rx_error_rate = if seed::unit(s, 7) < 0.1 { 2e-7 } else { 1e-11 };
    let link_downs = if seed::unit(s, 8) < 0.7 {
        0
    } else {
        seed::int_between(s, 9, 1, 4)
    };
    let last_link_up_s = if link_downs == 0 {
        boot_s + seed::between(s, 10, 8.0, 40.0)
    } else {
        // Some time within the router's uptime at the moment it was modelled.
        boot_s + seed::between(s, 10, 0.1, 0.9) * uptime_at_start_s
    };
    InterfaceModel {
        spec: iface.clone(),
        mac,
        rx,
        tx,
        rx_packet_size,
        tx_packet_size,
        rx_error_rate,
        drop_rate: seed::between(s, 11, 1e-9, 5e-8),
        link_downs,
        last_link_up_s,
    }
}

/// `(a→b, b→a)` curves of a link, shared by both of its ends.
fn link_curves(topology: &Topology, link: &LinkSpec) -> (TrafficCurve, TrafficCurve) {
    let end = |ep: Option<(&str, &str)>| {
        let (rid, iname) = ep?;
        let router = topology.router(rid)?;
        let iface = router.interfaces.iter().find(|i| i.name == iname)?;
        Some((router, iface))
    };
    let a = end(link.endpoint_a());
    let b = end(link.endpoint_b());
    let mut capacity = link.capacity_mbps as f64 * 1e6;
    for (_, iface) in [a, b].into_iter().flatten() {
        if iface.speed_mbps > 0 {
            capacity = capacity.min(effective_speed_bps(iface));
        }
    }
    let s = seed::seed_of(&["link", &link.a, &link.b]);
    let rank =
        |e: Option<(&RouterSpec, &InterfaceSpec)>| e.map_or(3, |(r, _)| upstream_rank(r.role));
    // Downloads flow away from the upstream; between equals a coin decides.
    let a_is_upstream = match rank(a).cmp(&rank(b)) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => seed::unit(s, 1) < 0.5,
    };
    let offset = a
        .and_then(|(r, _)| topology.site(&r.site))
        .map_or(0.0, |site| traffic::utc_offset_for_longitude(site.lon));
    // A route reflector only carries BGP and management: a trickle, not subscriber traffic.
    let control_only = [a, b]
        .into_iter()
        .flatten()
        .any(|(r, _)| r.role == DeviceRole::RouteReflector);
    let primary = if control_only {
        seed::between(s, 2, 0.0002, 0.002)
    } else {
        seed::between(s, 2, 0.3, 0.7)
    };
    let secondary = primary * seed::between(s, 3, 0.15, 0.4);
    let (ab, ba) = if a_is_upstream {
        (primary, secondary)
    } else {
        (secondary, primary)
    };
    (
        TrafficCurve::new(seed::derive(s, 4), capacity, ab, offset),
        TrafficCurve::new(seed::derive(s, 5), capacity, ba, offset),
    )
}

/// The external BGP peer reached over this interface, if a session says so.
fn external_peer_over(topology: &Topology, router: &str, iface: &str) -> Option<Ipv4Addr> {
    topology.bgp.iter().find_map(|s| {
        let via = s.via.as_deref()?.split_once(':')?;
        (via == (router, iface)).then_some(s.peer_address).flatten()
    })
}

/// Addresses: a `/30` from `10.255.0.0/16` per link (end a .1, end b .2), a `/32` per
/// loopback, the other host of an external BGP peer's `/30` on the interface a session
/// runs `via`, a transit `/30` from `203.0.113.0/24` per other unlinked uplink, a `/24` per other
/// interface. PPPoE server interfaces (`pppoe-in`) get none (they are dynamic).
fn plan_addresses(
    topology: &Topology,
    router_index: usize,
    router: &RouterSpec,
) -> Vec<AddressModel> {
    // Uplinks without a link are numbered across the whole ISP so transit /30s differ.
    // One pass over the links, not one per interface: this runs for every router, and
    // a scan per interface made a 2,000-router ISP take half a minute to start.
    let linked: std::collections::HashSet<(&str, &str)> = topology
        .links
        .iter()
        .flat_map(|l| [l.endpoint_a(), l.endpoint_b()])
        .flatten()
        .collect();
    let mut transit_index = topology
        .routers
        .iter()
        .take(router_index)
        .flat_map(|r| r.interfaces.iter().map(move |i| (r, i)))
        .filter(|(r, i)| i.uplink && !linked.contains(&(r.id.as_str(), i.name.as_str())))
        .count() as u32;
    let mut out = Vec::new();
    for (i, iface) in router.interfaces.iter().enumerate() {
        if iface.kind == "pppoe-in" {
            continue;
        }
        let link = topology.links.iter().enumerate().find_map(|(k, l)| {
            if l.endpoint_a() == Some((router.id.as_str(), iface.name.as_str())) {
                Some((k, 1))
            } else if l.endpoint_b() == Some((router.id.as_str(), iface.name.as_str())) {
                Some((k, 2))
            } else {
                None
            }
        });
        let (address, prefix_len) = if let Some((k, host)) = link {
            let k = k as u32;
            (
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 255, 0, 0)) + (k % 16_384) * 4 + host),
                30,
            )
        } else if is_loopback(iface) {
            (
                Ipv4Addr::new(
                    10,
                    0,
                    (router_index / 250) as u8,
                    (router_index % 250) as u8 + 1,
                ),
                32,
            )
        } else if let Some(peer) = external_peer_over(topology, &router.id, &iface.name) {
            // The other host of the upstream's /30, so the eBGP session is on-link.
            let p = u32::from(peer);
            let host = if p & 3 == 1 { 2 } else { 1 };
            (Ipv4Addr::from((p & !3) | host), 30)
        } else if iface.uplink {
            let n = transit_index % 64;
            transit_index += 1;
            (Ipv4Addr::new(203, 0, 113, (n * 4 + 2) as u8), 30)
        } else {
            (
                Ipv4Addr::new(10, 100 + (router_index % 150) as u8, (i % 256) as u8, 1),
                24,
            )
        };
        out.push(AddressModel {
            address,
            prefix_len,
            interface: iface.name.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn demo_model(id: &str) -> RouterModel {
        let started = UNIX_EPOCH + Duration::from_secs(1_732_000_000);
        RouterModel::from_topology(&Topology::demo(), id, started).expect("router exists")
    }

    #[test]
    fn link_ends_mirror_each_other() {
        let t = Topology::demo();
        let link = &t.links[0];
        let (ra, ia) = link.endpoint_a().expect("valid");
        let (rb, ib) = link.endpoint_b().expect("valid");
        let a = demo_model(ra);
        let b = demo_model(rb);
        let now = 1_732_050_000.0;
        let (a_rx, a_tx) = a
            .interface_rate_bps(a.interface_index(ia).expect("iface"), now)
            .expect("iface");
        let (b_rx, b_tx) = b
            .interface_rate_bps(b.interface_index(ib).expect("iface"), now)
            .expect("iface");
        assert_eq!(a_tx, b_rx);
        assert_eq!(a_rx, b_tx);
        assert!(a_tx > 0.0 && a_rx > 0.0);
    }

    #[test]
    fn values_are_plausible() {
        let t = Topology::demo();
        let now = 1_732_050_000.0;
        for spec in &t.routers {
            let m = demo_model(&spec.id);
            assert!(m.uptime_s(now) > 3600, "{}", spec.id);
            let (free, total) = m.memory(now);
            assert!(free < total && free > total / 4);
            assert!(m.cpu_load(now) <= 100);
            for (i, iface) in spec.interfaces.iter().enumerate() {
                let c = m.interface_counters(i, now).expect("iface");
                let (rx, tx) = m.interface_rate_bps(i, now).expect("iface");
                let speed = effective_speed_bps(iface);
                assert!(rx <= speed && tx <= speed, "{} {}", spec.id, iface.name);
                if !is_loopback(iface) {
                    assert!(
                        c.rx_byte > 0 && c.tx_packet > 0,
                        "{} {}",
                        spec.id,
                        iface.name
                    );
                }
                assert!(c.rx_packet <= c.rx_byte);
            }
            assert_eq!(
                m.addresses.len(),
                spec.interfaces
                    .iter()
                    .filter(|i| i.kind != "pppoe-in")
                    .count()
            );
            let sessions = m.pppoe_session_count(now);
            if spec.role == DeviceRole::PppoeConcentrator {
                assert!((600..=2000).contains(&sessions), "{sessions}");
                assert_eq!(m.pppoe_sessions(now, 50).len(), 50);
            } else {
                assert_eq!(sessions, 0);
            }
        }
        let core = demo_model("lis1-core1");
        let rr = demo_model("lis1-rr1");
        let bng = demo_model("lis1-bng1");
        // Averaged over a day, busy roles load their CPU more.
        let avg = |m: &RouterModel| {
            (0..96)
                .map(|q| f64::from(m.cpu_load(now + f64::from(q) * 900.0)))
                .sum::<f64>()
                / 96.0
        };
        assert!(avg(&bng) > avg(&rr) && avg(&core) > avg(&rr));
        // The route reflector's links carry control traffic only.
        for i in 0..rr.interfaces.len() {
            let (rx, tx) = rr.interface_rate_bps(i, now).expect("iface");
            assert!(rx < 30e6 && tx < 30e6, "{rx} {tx}");
        }
    }

    #[test]
    fn counters_wrap_instead_of_saturating() {
        assert_eq!(wrap_counter(18_446_744_073_709_551_616.0 + 4096.0), 4096);
        assert_eq!(wrap_counter(-5.0), 0);
        assert_eq!(wrap_counter(f64::NAN), 0);
    }

    #[test]
    fn networks() {
        let a = AddressModel {
            address: Ipv4Addr::new(10, 255, 0, 6),
            prefix_len: 30,
            interface: "x".into(),
        };
        assert_eq!(a.network(), Ipv4Addr::new(10, 255, 0, 4));
        let z = AddressModel {
            prefix_len: 0,
            ..a.clone()
        };
        assert_eq!(z.network(), Ipv4Addr::UNSPECIFIED);
    }
}
