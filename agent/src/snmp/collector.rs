//! The SNMP collector of one device: what it asks, and how the answers become the same
//! canonical metrics, events and inventory the RouterOS API collector produces.
//!
//! A poll is one GET of the scalars (system group, MikroTik health and identity, and for
//! SNMPv3 the engine), then one GETBULK walk of every table column it needs side by side
//! (IF-MIB ifTable + ifXTable, HOST-RESOURCES-MIB processors and storage, and the MikroTik
//! gauge table when no scalar temperature answered). Inventory polls add a walk of
//! IP-MIB's ipAddrTable. One request is in flight at a time.
//!
//! Interfaces are rows of the IF-MIB tables, indexed by `ifIndex`. The index stays inside
//! the collector (it keys counter state); samples and inventory name an interface by
//! `ifName`, or `ifDescr` when the agent has no `ifName`, as
//! `EntityKey::Interface { device, name }`.

use super::config::{DEFAULT_PORT, SnmpConfig, SnmpCredentials};
use super::oids::{self, Oid};
use super::session::{Columns, EngineCache, Session, SnmpError, Value, Varbind};
use crate::rates::{CounterRates, CounterWidth};
use crate::routeros::PollOutput;
use ispvm_proto::time::now_ms;
use ispvm_proto::{
    AddressInfo, DeviceInfo, DeviceRole, EntityKey, Event, EventKind, InterfaceInfo,
    InventoryPatch, MetricName, MetricSample, Severity,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

/// Inventory is re-sent at least this often (in polls) so a server that lost it heals.
const SLOW_EVERY: u64 = 60;
/// Longest interface name kept; longer names are cut.
const MAX_NAME: usize = 128;
/// Longest inventory text (model, version, device name) kept.
const MAX_TEXT: usize = 255;
/// sysUpTime is a 32-bit count of hundredths of a second: it wraps after ~497 days.
const TICKS_PER_WRAP: u64 = 1 << 32;
/// Temperatures outside this range are sensor errors, not readings.
const PLAUSIBLE_C: std::ops::RangeInclusive<f64> = -60.0..=200.0;

/// Scalars read on every poll.
const SCALARS: [Oid; 8] = [
    oids::SYS_DESCR,
    oids::SYS_UPTIME,
    oids::SYS_NAME,
    oids::MTXR_HL_TEMPERATURE,
    oids::MTXR_HL_PROCESSOR_TEMPERATURE,
    oids::MTXR_DHCP_LEASE_COUNT,
    oids::MTXR_LIC_VERSION,
    oids::MTXR_BOARD_NAME,
];
/// Scalars added over SNMPv3.
const ENGINE_SCALARS: [Oid; 3] = [
    oids::SNMP_ENGINE_ID,
    oids::SNMP_ENGINE_BOOTS,
    oids::SNMP_ENGINE_TIME,
];

/// Columns walked on every poll; the position in this list is the column's index in the
/// walk's result.
const COLUMNS: [Oid; 18] = [
    oids::IF_DESCR,
    oids::IF_TYPE,
    oids::IF_ADMIN_STATUS,
    oids::IF_OPER_STATUS,
    oids::IF_IN_OCTETS,
    oids::IF_IN_DISCARDS,
    oids::IF_IN_ERRORS,
    oids::IF_OUT_OCTETS,
    oids::IF_OUT_DISCARDS,
    oids::IF_OUT_ERRORS,
    oids::IF_NAME,
    oids::IF_HC_IN_OCTETS,
    oids::IF_HC_OUT_OCTETS,
    oids::HR_PROCESSOR_LOAD,
    oids::HR_STORAGE_TYPE,
    oids::HR_STORAGE_UNITS,
    oids::HR_STORAGE_SIZE,
    oids::HR_STORAGE_USED,
];
/// MikroTik gauge columns, appended when no scalar temperature answered.
const GAUGE_COLUMNS: [Oid; 3] = [
    oids::MTXR_GAUGE_NAME,
    oids::MTXR_GAUGE_VALUE,
    oids::MTXR_GAUGE_UNIT,
];

/// What one poll read, before any state is touched.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub sys_descr: Option<String>,
    pub sys_name: Option<String>,
    pub uptime_ticks: Option<u32>,
    /// mtxrHlTemperature, tenths of °C.
    pub board_temp_dc: Option<i64>,
    /// mtxrHlProcessorTemperature, tenths of °C.
    pub cpu_temp_dc: Option<i64>,
    pub dhcp_leases: Option<u64>,
    pub ros_version: Option<String>,
    pub board_name: Option<String>,
    /// IF-MIB rows by ifIndex.
    pub interfaces: BTreeMap<u32, IfRow>,
    /// hrProcessorLoad of every processor.
    pub cpu_loads: Vec<i64>,
    /// hrStorageTable rows by hrStorageIndex.
    pub storage: BTreeMap<u32, StorageRow>,
    /// mtxrGaugeTable rows by index.
    pub gauges: BTreeMap<u32, GaugeRow>,
    /// When the tables were read, Unix ms.
    pub ts_ms: i64,
}

/// One IF-MIB row (ifTable and ifXTable share the ifIndex).
#[derive(Debug, Clone, Default)]
pub(crate) struct IfRow {
    pub descr: Option<String>,
    pub name: Option<String>,
    pub if_type: Option<i64>,
    pub admin: Option<i64>,
    pub oper: Option<i64>,
    pub in_octets: Option<Value>,
    pub out_octets: Option<Value>,
    pub hc_in_octets: Option<Value>,
    pub hc_out_octets: Option<Value>,
    pub in_errors: Option<Value>,
    pub out_errors: Option<Value>,
    pub in_discards: Option<Value>,
    pub out_discards: Option<Value>,
}

/// One hrStorageTable row.
#[derive(Debug, Clone, Default)]
pub(crate) struct StorageRow {
    pub kind: Option<Vec<u64>>,
    pub units: Option<u64>,
    pub size: Option<u64>,
    pub used: Option<u64>,
}

/// One mtxrGaugeTable row.
#[derive(Debug, Clone, Default)]
pub(crate) struct GaugeRow {
    pub name: Option<String>,
    pub value: Option<i64>,
    pub unit: Option<i64>,
}

/// Which counter of an interface a rate is for; `wide` separates a 64-bit reading from a
/// 32-bit one should an agent switch between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CounterKind {
    RxOctets { wide: bool },
    TxOctets { wide: bool },
    InErrors,
    OutErrors,
    InDiscards,
    OutDiscards,
}

/// sysUpTime with reboot and wrap detection.
#[derive(Debug, Default)]
struct Uptime {
    last: Option<(u32, i64)>,
    wraps: u64,
}

impl Uptime {
    /// Records a reading; returns the uptime in whole seconds and whether the device
    /// restarted since the previous reading. sysUpTime going backwards is a restart unless
    /// the counter merely wrapped, which shows as the reading being where the previous one
    /// plus the elapsed time lands modulo 2^32.
    fn observe(&mut self, ticks: u32, ts_ms: i64) -> (u64, bool) {
        let mut restarted = false;
        if let Some((last, last_ts)) = self.last
            && ticks < last
        {
            let elapsed_cs = u64::try_from(ts_ms.saturating_sub(last_ts)).unwrap_or(0) / 10;
            let expected = u64::from(last) + elapsed_cs;
            let wrapped_to = u64::from(ticks) + TICKS_PER_WRAP;
            let slack = elapsed_cs / 2 + 1_000;
            if expected >= TICKS_PER_WRAP && expected.abs_diff(wrapped_to) <= slack {
                self.wraps += 1;
            } else {
                self.wraps = 0;
                restarted = true;
            }
        }
        self.last = Some((ticks, ts_ms));
        let total = self
            .wraps
            .saturating_mul(TICKS_PER_WRAP)
            .saturating_add(u64::from(ticks));
        (total / 100, restarted)
    }
}

/// What the last poll cost, for the agent's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Requests sent, resends included.
    pub requests: u32,
    /// A walk stopped at `max_oids_per_walk`.
    pub truncated: bool,
    /// SNMPv3 engine discoveries (0 when the engine learned on an earlier poll served).
    pub discoveries: u32,
}

/// Collection state of one device polled over SNMP.
pub struct SnmpCollector {
    device: String,
    site: String,
    role: DeviceRole,
    config: SnmpConfig,
    /// SNMPv3 engine and localized keys learned on an earlier poll.
    engine: Option<EngineCache>,
    /// Counter readings per interface, keyed by (ifIndex, name) so a reused index with a
    /// new name starts afresh; interfaces that disappear are dropped.
    counters: HashMap<(u32, String), CounterRates<CounterKind>>,
    uptime: Uptime,
    /// Interface names last sent as inventory.
    inventory_names: BTreeSet<String>,
    polls: u64,
    last_inventory_poll: Option<u64>,
    reachable: Option<bool>,
    stats: PollStats,
}

impl std::fmt::Debug for SnmpCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpCollector")
            .field("device", &self.device)
            .field("config", &self.config)
            .field("interfaces", &self.counters.len())
            .field("polls", &self.polls)
            .field("reachable", &self.reachable)
            .finish_non_exhaustive()
    }
}

fn sample(entity: EntityKey, metric: MetricName, ts_ms: i64, value: f64) -> MetricSample {
    MetricSample {
        entity,
        metric,
        ts_ms,
        value,
    }
}

/// An Integer32 an agent may have sent as a negative number for a value above 2^31.
fn unsigned32(value: &Value) -> Option<u64> {
    match *value {
        Value::Int(i) if i < 0 => i32::try_from(i).ok().map(|v| u64::from(v.cast_unsigned())),
        _ => value.as_u64(),
    }
}

/// Rows of a walked column whose index is one arc (ifIndex, hrStorageIndex, ...).
fn rows(column: &[(Vec<u64>, Value)]) -> impl Iterator<Item = (u32, &Value)> {
    column
        .iter()
        .filter_map(|(index, value)| match index.as_slice() {
            [i] => u32::try_from(*i).ok().map(|i| (i, value)),
            _ => None,
        })
}

/// A counter reading, its width taken from its SNMP type.
fn counter(value: Option<&Value>) -> Option<(u64, CounterWidth)> {
    match value? {
        Value::Counter64(v) => Some((*v, CounterWidth::Bits64)),
        Value::Counter32(v) => Some((u64::from(*v), CounterWidth::Bits32)),
        _ => None,
    }
}

/// Sum of two per-direction rates: nothing when neither counter exists or one that exists
/// has no rate yet.
fn sum_rates(a: Option<Option<f64>>, b: Option<Option<f64>>) -> Option<f64> {
    match (a, b) {
        (None, None) | (Some(None), _) | (_, Some(None)) => None,
        (a, b) => Some(a.flatten().unwrap_or(0.0) + b.flatten().unwrap_or(0.0)),
    }
}

/// Resolves `host[:port]`, `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port`.
async fn resolve(address: &str) -> Result<SocketAddr, SnmpError> {
    let address = address.trim();
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let target = if address.contains(':') {
        address.to_owned()
    } else {
        format!("{address}:{DEFAULT_PORT}")
    };
    let failed = |detail: String| SnmpError::Resolve {
        address: address.to_owned(),
        detail,
    };
    tokio::net::lookup_host(&target)
        .await
        .map_err(|e| failed(e.to_string()))?
        .next()
        .ok_or_else(|| failed("the name has no address".into()))
}

impl SnmpCollector {
    /// A collector for `device`; fails when the configuration is invalid.
    pub fn new(
        device: impl Into<String>,
        site: impl Into<String>,
        role: DeviceRole,
        config: SnmpConfig,
    ) -> Result<Self, SnmpError> {
        config.validate()?;
        Ok(SnmpCollector {
            device: device.into(),
            site: site.into(),
            role,
            config,
            engine: None,
            counters: HashMap::new(),
            uptime: Uptime::default(),
            inventory_names: BTreeSet::new(),
            polls: 0,
            last_inventory_poll: None,
            reachable: None,
            stats: PollStats::default(),
        })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn config(&self) -> &SnmpConfig {
        &self.config
    }

    /// Requests and truncation of the last poll.
    pub fn last_poll_stats(&self) -> PollStats {
        self.stats
    }

    /// Polls the device once. On an error, report it with [`SnmpCollector::unreachable`].
    pub async fn poll(&mut self) -> Result<PollOutput, SnmpError> {
        let limits = &self.config.limits;
        let (deadline, timeout_ms) = (limits.poll_timeout(), limits.poll_timeout_ms);
        match tokio::time::timeout(deadline, self.poll_within_deadline()).await {
            Ok(result) => result,
            Err(_) => Err(SnmpError::Deadline {
                address: self.config.address.clone(),
                timeout_ms,
            }),
        }
    }

    async fn poll_within_deadline(&mut self) -> Result<PollOutput, SnmpError> {
        self.stats = PollStats::default();
        let addr = resolve(&self.config.address).await?;
        let mut session = Session::new(addr, &self.config, self.engine.clone());
        let collected = self.collect(&mut session).await;
        let snapshot = match collected {
            Err(e) if session.uses_cached_engine() && e.is_auth() => {
                // The engine the keys were localized to is gone (device replaced or its
                // SNMP engine reset): discover it again, once.
                tracing::info!(device = %self.device, error = %e, "SNMPv3 engine changed; rediscovering");
                self.engine = None;
                self.note(&session);
                session = Session::new(addr, &self.config, None);
                self.collect(&mut session).await
            }
            other => other,
        };
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(e) => {
                self.note(&session);
                return Err(e);
            }
        };
        let (mut out, interfaces) = self.process(&snapshot);
        let names: BTreeSet<String> = interfaces.iter().map(|(_, i)| i.name.clone()).collect();
        let inventory_due = names != self.inventory_names
            || self
                .last_inventory_poll
                .is_none_or(|at| self.polls.saturating_sub(at) >= SLOW_EVERY);
        if inventory_due {
            let addresses = match session
                .walk(&[oids::IP_AD_ENT_IF_INDEX, oids::IP_AD_ENT_NET_MASK])
                .await
            {
                Ok(columns) => self.addresses(&columns, &interfaces),
                Err(e) => {
                    tracing::debug!(device = %self.device, error = %e, "no IP addresses over SNMP");
                    Vec::new()
                }
            };
            out.inventory = self.inventory(&snapshot, interfaces, addresses);
            self.inventory_names = names;
            self.last_inventory_poll = Some(self.polls);
        }
        self.note(&session);
        self.polls += 1;
        Ok(out)
    }

    fn note(&mut self, session: &Session) {
        self.stats.requests = self.stats.requests.saturating_add(session.requests);
        self.stats.truncated |= session.truncated;
        self.stats.discoveries = self.stats.discoveries.saturating_add(session.discoveries);
    }

    /// Reads everything a poll needs.
    async fn collect(&mut self, session: &mut Session) -> Result<Snapshot, SnmpError> {
        let v3 = match &self.config.credentials {
            SnmpCredentials::V3(v3) => Some(v3.clone()),
            SnmpCredentials::V2c { .. } => None,
        };
        let mut scalars: Vec<Oid> = SCALARS.to_vec();
        if v3.is_some() {
            scalars.extend(ENGINE_SCALARS);
        }
        let got = session.get(&scalars).await?;
        let find = |oid: Oid| -> Option<&Value> {
            got.iter()
                .find(|vb: &&Varbind| vb.oid == oid)
                .map(|vb| &vb.value)
                .filter(|v| !v.is_absent())
        };
        let mut snap = Snapshot {
            sys_descr: find(oids::SYS_DESCR).and_then(|v| v.as_text(MAX_TEXT)),
            sys_name: find(oids::SYS_NAME).and_then(|v| v.as_text(MAX_TEXT)),
            uptime_ticks: find(oids::SYS_UPTIME).and_then(|v| match v {
                Value::Ticks(t) => Some(*t),
                other => other.as_u64().and_then(|t| u32::try_from(t).ok()),
            }),
            board_temp_dc: find(oids::MTXR_HL_TEMPERATURE).and_then(Value::as_i64),
            cpu_temp_dc: find(oids::MTXR_HL_PROCESSOR_TEMPERATURE).and_then(Value::as_i64),
            dhcp_leases: find(oids::MTXR_DHCP_LEASE_COUNT).and_then(Value::as_u64),
            ros_version: find(oids::MTXR_LIC_VERSION).and_then(|v| v.as_text(MAX_TEXT)),
            board_name: find(oids::MTXR_BOARD_NAME).and_then(|v| v.as_text(MAX_TEXT)),
            ..Snapshot::default()
        };
        if let Some(v3) = v3 {
            let engine_id = match find(oids::SNMP_ENGINE_ID) {
                Some(Value::Bytes(id)) if !id.is_empty() => Some(id.clone()),
                _ => None,
            };
            let boots = find(oids::SNMP_ENGINE_BOOTS).and_then(Value::as_i64);
            let time = find(oids::SNMP_ENGINE_TIME).and_then(Value::as_i64);
            if let (Some(id), Some(boots), Some(time)) = (engine_id, boots, time) {
                self.remember_engine(v3.security(), id, boots, time);
            }
        }

        let temperature_scalar = snap.board_temp_dc.is_some() || snap.cpu_temp_dc.is_some();
        let mut columns: Vec<Oid> = COLUMNS.to_vec();
        if !temperature_scalar {
            columns.extend(GAUGE_COLUMNS);
        }
        let walked = session.walk(&columns).await?;
        snap.ts_ms = now_ms();
        fill_tables(&mut snap, &walked);
        Ok(snap)
    }

    fn remember_engine(&mut self, fresh: snmp2::v3::Security, id: Vec<u8>, boots: i64, time: i64) {
        match &mut self.engine {
            Some(cache) if cache.engine_id == id => cache.refresh(boots, time),
            _ => match EngineCache::new(fresh, id, boots, time) {
                Ok(cache) => self.engine = Some(cache),
                Err(e) => {
                    tracing::debug!(device = %self.device, error = %e, "cannot keep SNMPv3 keys");
                    self.engine = None;
                }
            },
        }
    }

    /// Turns a snapshot into samples and events, updating rates, uptime and reachability.
    /// Returns the interfaces found, by ifIndex, for the inventory.
    pub(crate) fn process(&mut self, snap: &Snapshot) -> (PollOutput, Vec<(u32, InterfaceInfo)>) {
        let ts = snap.ts_ms;
        let dev = EntityKey::Device(self.device.clone());
        let mut out = PollOutput::default();
        out.samples
            .push(sample(dev.clone(), MetricName::DeviceUp, ts, 1.0));
        if self.reachable == Some(false) {
            out.events.push(Event::new(
                dev.clone(),
                EventKind::ApiRecovered,
                Severity::Notice,
                format!("SNMP agent of {} answers again", self.device),
            ));
        }
        self.reachable = Some(true);

        if let Some(ticks) = snap.uptime_ticks {
            let (uptime_s, restarted) = self.uptime.observe(ticks, ts);
            if restarted {
                self.counters.clear();
                out.events.push(Event::new(
                    dev.clone(),
                    EventKind::Reboot,
                    Severity::Warning,
                    format!(
                        "{} restarted (SNMP sysUpTime went back to {uptime_s} s)",
                        self.device
                    ),
                ));
            }
            out.samples.push(sample(
                dev.clone(),
                MetricName::DeviceUptimeS,
                ts,
                uptime_s as f64,
            ));
        }
        if !snap.cpu_loads.is_empty() {
            let sum: f64 = snap
                .cpu_loads
                .iter()
                .map(|l| (*l).clamp(0, 100) as f64)
                .sum();
            let avg = sum / snap.cpu_loads.len() as f64;
            out.samples
                .push(sample(dev.clone(), MetricName::DeviceCpuPct, ts, avg));
        }
        if let Some(pct) = memory_used_pct(&snap.storage) {
            out.samples
                .push(sample(dev.clone(), MetricName::DeviceMemUsedPct, ts, pct));
        }
        if let Some(t) = temperature(snap) {
            out.samples
                .push(sample(dev.clone(), MetricName::DeviceTemperatureC, ts, t));
        }
        if let Some(n) = snap.dhcp_leases {
            out.samples
                .push(sample(dev, MetricName::DhcpLeases, ts, n as f64));
        }
        let interfaces = self.interface_samples(snap, &mut out);
        (out, interfaces)
    }

    fn interface_samples(
        &mut self,
        snap: &Snapshot,
        out: &mut PollOutput,
    ) -> Vec<(u32, InterfaceInfo)> {
        let ts = snap.ts_ms;
        let mut taken: HashSet<String> = HashSet::new();
        let mut seen: HashSet<(u32, String)> = HashSet::new();
        let mut inventory = Vec::new();
        for (&if_index, row) in &snap.interfaces {
            let Some(base) = row.name.clone().or_else(|| row.descr.clone()) else {
                continue;
            };
            // Two rows with one name (some agents do that) keep distinct entities.
            let name = if taken.contains(&base) {
                format!("{base}#{if_index}")
            } else {
                base
            };
            taken.insert(name.clone());
            let entity = EntityKey::Interface {
                device: self.device.clone(),
                name: name.clone(),
            };
            if let Some(oper) = row.oper {
                let running = if oper == 1 { 1.0 } else { 0.0 };
                out.samples.push(sample(
                    entity.clone(),
                    MetricName::InterfaceRunning,
                    ts,
                    running,
                ));
            }
            let key = (if_index, name.clone());
            let rates = self.counters.entry(key.clone()).or_default();
            seen.insert(key);
            let mut rate = |kind: CounterKind, reading: Option<(u64, CounterWidth)>| {
                reading.map(|(value, width)| rates.update(kind, value, ts, width))
            };
            // 64-bit counters when the agent has them, else the 32-bit ones.
            let rx = counter(row.hc_in_octets.as_ref()).or(counter(row.in_octets.as_ref()));
            let tx = counter(row.hc_out_octets.as_ref()).or(counter(row.out_octets.as_ref()));
            let wide =
                |r: &Option<(u64, CounterWidth)>| matches!(r, Some((_, CounterWidth::Bits64)));
            let rx_kind = CounterKind::RxOctets { wide: wide(&rx) };
            let tx_kind = CounterKind::TxOctets { wide: wide(&tx) };
            let rx_bps = rate(rx_kind, rx).flatten().map(|r| r * 8.0);
            let tx_bps = rate(tx_kind, tx).flatten().map(|r| r * 8.0);
            let errors = sum_rates(
                rate(CounterKind::InErrors, counter(row.in_errors.as_ref())),
                rate(CounterKind::OutErrors, counter(row.out_errors.as_ref())),
            );
            let drops = sum_rates(
                rate(CounterKind::InDiscards, counter(row.in_discards.as_ref())),
                rate(CounterKind::OutDiscards, counter(row.out_discards.as_ref())),
            );
            for (metric, value) in [
                (MetricName::InterfaceRxBps, rx_bps),
                (MetricName::InterfaceTxBps, tx_bps),
                (MetricName::InterfaceErrors, errors),
                (MetricName::InterfaceDrops, drops),
            ] {
                if let Some(value) = value {
                    out.samples.push(sample(entity.clone(), metric, ts, value));
                }
            }
            inventory.push((
                if_index,
                InterfaceInfo {
                    device: self.device.clone(),
                    name,
                    kind: row
                        .if_type
                        .map(oids::if_type_name)
                        .unwrap_or_else(|| "unknown".to_owned()),
                    disabled: row.admin == Some(2),
                },
            ));
        }
        self.counters.retain(|key, _| seen.contains(key));
        inventory
    }

    /// IPv4 addresses of ipAddrTable, on the interfaces their ifIndex names.
    fn addresses(
        &self,
        columns: &Columns,
        interfaces: &[(u32, InterfaceInfo)],
    ) -> Vec<AddressInfo> {
        let names: HashMap<u32, &str> = interfaces
            .iter()
            .map(|(i, info)| (*i, info.name.as_str()))
            .collect();
        let (Some(if_index), Some(masks)) = (columns.first(), columns.get(1)) else {
            return Vec::new();
        };
        let masks: HashMap<&[u64], &Value> = masks.iter().map(|(i, v)| (i.as_slice(), v)).collect();
        let mut out = Vec::new();
        for (index, value) in if_index {
            let [a, b, c, d] = index.as_slice() else {
                continue;
            };
            let octets = [a, b, c, d].map(|o| u8::try_from(*o).ok());
            let [Some(a), Some(b), Some(c), Some(d)] = octets else {
                continue;
            };
            let Some(name) = value
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .and_then(|i| names.get(&i))
            else {
                continue;
            };
            let prefix = match masks.get(index.as_slice()) {
                Some(Value::IpAddress(mask)) => u32::from_be_bytes(*mask).leading_ones(),
                _ => 32,
            };
            out.push(AddressInfo {
                device: self.device.clone(),
                interface: (*name).to_owned(),
                address: format!("{a}.{b}.{c}.{d}/{prefix}"),
            });
        }
        out
    }

    fn inventory(
        &self,
        snap: &Snapshot,
        interfaces: Vec<(u32, InterfaceInfo)>,
        addresses: Vec<AddressInfo>,
    ) -> InventoryPatch {
        let first_line = |s: &String| s.lines().next().unwrap_or_default().trim().to_owned();
        InventoryPatch {
            devices: vec![DeviceInfo {
                key: self.device.clone(),
                name: snap.sys_name.clone().unwrap_or_else(|| self.device.clone()),
                site: self.site.clone(),
                role: self.role,
                mgmt_addr: self.config.address.clone(),
                model: snap
                    .board_name
                    .clone()
                    .or_else(|| snap.sys_descr.as_ref().map(first_line))
                    .unwrap_or_default(),
                os_version: snap.ros_version.clone().unwrap_or_default(),
            }],
            interfaces: interfaces.into_iter().map(|(_, info)| info).collect(),
            addresses,
            neighbors: Vec::new(),
        }
    }

    /// What a failed poll reports: `device.up` 0, and an event when the agent was
    /// answering before (not on every failed poll, so an outage is one event).
    pub fn unreachable(&mut self, error: &SnmpError) -> PollOutput {
        let dev = EntityKey::Device(self.device.clone());
        let mut out = PollOutput::default();
        out.samples
            .push(sample(dev.clone(), MetricName::DeviceUp, now_ms(), 0.0));
        if self.reachable != Some(false) {
            out.events.push(Event::new(
                dev,
                EventKind::ApiUnreachable,
                Severity::Warning,
                format!("SNMP agent of {} does not answer: {error}", self.device),
            ));
        }
        self.reachable = Some(false);
        out
    }

    /// What a poll skipped by an open breaker reports: the agent is still taken as not
    /// answering, without touching the device.
    pub fn still_unreachable(&self) -> PollOutput {
        let mut out = PollOutput::default();
        out.samples.push(sample(
            EntityKey::Device(self.device.clone()),
            MetricName::DeviceUp,
            now_ms(),
            0.0,
        ));
        out
    }
}

/// Sorts walked columns (in [`COLUMNS`] order, then [`GAUGE_COLUMNS`]) into the snapshot.
fn fill_tables(snap: &mut Snapshot, walked: &Columns) {
    let column = |i: usize| walked.get(i).map(Vec::as_slice).unwrap_or_default();
    type IfField = fn(&mut IfRow, &Value);
    let if_fields: [IfField; 13] = [
        |r, v| r.descr = v.as_text(MAX_NAME),
        |r, v| r.if_type = v.as_i64(),
        |r, v| r.admin = v.as_i64(),
        |r, v| r.oper = v.as_i64(),
        |r, v| r.in_octets = Some(v.clone()),
        |r, v| r.in_discards = Some(v.clone()),
        |r, v| r.in_errors = Some(v.clone()),
        |r, v| r.out_octets = Some(v.clone()),
        |r, v| r.out_discards = Some(v.clone()),
        |r, v| r.out_errors = Some(v.clone()),
        |r, v| r.name = v.as_text(MAX_NAME),
        |r, v| r.hc_in_octets = Some(v.clone()),
        |r, v| r.hc_out_octets = Some(v.clone()),
    ];
    // ifDescr, ifType, ifOperStatus or ifName make a row; counters alone do not.
    const DEFINING: [usize; 4] = [0, 1, 3, 10];
    for i in DEFINING {
        for (if_index, _) in rows(column(i)) {
            snap.interfaces.entry(if_index).or_default();
        }
    }
    for (i, set) in if_fields.iter().enumerate() {
        for (if_index, value) in rows(column(i)) {
            if let Some(row) = snap.interfaces.get_mut(&if_index) {
                set(row, value);
            }
        }
    }
    snap.cpu_loads = rows(column(13)).filter_map(|(_, v)| v.as_i64()).collect();
    for (index, value) in rows(column(14)) {
        if let Value::Oid(kind) = value {
            snap.storage.entry(index).or_default().kind = Some(kind.clone());
        }
    }
    type StorageField = fn(&mut StorageRow, Option<u64>);
    let storage_fields: [(usize, StorageField); 3] = [
        (15, |r, v| r.units = v),
        (16, |r, v| r.size = v),
        (17, |r, v| r.used = v),
    ];
    for (i, set) in storage_fields {
        for (index, value) in rows(column(i)) {
            if let Some(row) = snap.storage.get_mut(&index) {
                set(row, unsigned32(value));
            }
        }
    }
    let gauges = COLUMNS.len();
    for (index, value) in rows(column(gauges)) {
        snap.gauges.entry(index).or_default().name = value.as_text(MAX_NAME);
    }
    for (index, value) in rows(column(gauges + 1)) {
        if let Some(row) = snap.gauges.get_mut(&index) {
            row.value = value.as_i64();
        }
    }
    for (index, value) in rows(column(gauges + 2)) {
        if let Some(row) = snap.gauges.get_mut(&index) {
            row.unit = value.as_i64();
        }
    }
}

/// Used share of the RAM rows of hrStorageTable, in percent.
fn memory_used_pct(storage: &BTreeMap<u32, StorageRow>) -> Option<f64> {
    let (mut size, mut used) = (0u128, 0u128);
    for row in storage.values() {
        if row.kind.as_deref() != Some(oids::HR_STORAGE_RAM) {
            continue;
        }
        let (Some(units), Some(s), Some(u)) = (row.units, row.size, row.used) else {
            continue;
        };
        let units = u128::from(units.max(1));
        size += u128::from(s) * units;
        used += u128::from(u.min(s)) * units;
    }
    (size > 0).then(|| used as f64 * 100.0 / size as f64)
}

/// The device temperature: MikroTik board sensor, else its CPU sensor (both in tenths of
/// a degree), else the v7 gauge named `temperature`, `cpu-temperature` or the first one
/// in Celsius (whole degrees).
fn temperature(snap: &Snapshot) -> Option<f64> {
    let plausible = |t: f64| PLAUSIBLE_C.contains(&t).then_some(t);
    let tenths = |dc: Option<i64>| dc.and_then(|dc| plausible(dc as f64 / 10.0));
    if let Some(t) = tenths(snap.board_temp_dc).or_else(|| tenths(snap.cpu_temp_dc)) {
        return Some(t);
    }
    let celsius: Vec<&GaugeRow> = snap
        .gauges
        .values()
        .filter(|g| g.unit == Some(oids::MTXR_GAUGE_UNIT_CELSIUS) && g.value.is_some())
        .collect();
    let named = |name: &str| {
        celsius
            .iter()
            .find(|g| g.name.as_deref() == Some(name))
            .copied()
    };
    named("temperature")
        .or_else(|| named("cpu-temperature"))
        .or_else(|| celsius.first().copied())
        .and_then(|g| g.value)
        .and_then(|v| plausible(v as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::SnmpConfig;

    fn collector() -> SnmpCollector {
        SnmpCollector::new(
            "r1",
            "pop1",
            DeviceRole::Edge,
            SnmpConfig::v2c("192.0.2.1", "public"),
        )
        .expect("valid config")
    }

    fn value_of(out: &PollOutput, entity: &EntityKey, metric: MetricName) -> Option<f64> {
        out.samples
            .iter()
            .find(|s| &s.entity == entity && s.metric == metric)
            .map(|s| s.value)
    }

    fn itf(name: &str) -> EntityKey {
        EntityKey::Interface {
            device: "r1".into(),
            name: name.into(),
        }
    }

    fn row(name: &str, in32: u32, out32: u32, hc: Option<(u64, u64)>) -> IfRow {
        IfRow {
            descr: Some(format!("{name} descr")),
            name: Some(name.to_owned()),
            if_type: Some(6),
            admin: Some(1),
            oper: Some(1),
            in_octets: Some(Value::Counter32(in32)),
            out_octets: Some(Value::Counter32(out32)),
            hc_in_octets: hc.map(|(i, _)| Value::Counter64(i)),
            hc_out_octets: hc.map(|(_, o)| Value::Counter64(o)),
            in_errors: Some(Value::Counter32(0)),
            out_errors: Some(Value::Counter32(0)),
            in_discards: Some(Value::Counter32(0)),
            out_discards: None,
        }
    }

    #[test]
    fn rates_prefer_64_bit_and_fall_back_to_32_bit_with_wrap() {
        let mut c = collector();
        let mut snap = Snapshot {
            ts_ms: 1_000_000,
            uptime_ticks: Some(1_000),
            ..Snapshot::default()
        };
        snap.interfaces
            .insert(1, row("ether1", 5, 5, Some((1_000, 2_000))));
        snap.interfaces
            .insert(2, row("ether2", u32::MAX - 999, 0, None));
        let (first, inventory) = c.process(&snap);
        assert_eq!(
            value_of(&first, &itf("ether1"), MetricName::InterfaceRxBps),
            None
        );
        assert_eq!(inventory.len(), 2);
        assert_eq!(inventory[0].1.kind, "ether");

        snap.ts_ms += 1_000;
        snap.uptime_ticks = Some(1_100);
        // 64-bit: +1000 B in, +4000 B out in one second; 32-bit: in wrapped by 2000.
        snap.interfaces
            .insert(1, row("ether1", 5, 5, Some((2_000, 6_000))));
        let mut e2 = row("ether2", 1_000, 100, None);
        e2.in_errors = Some(Value::Counter32(3));
        e2.out_errors = Some(Value::Counter32(2));
        e2.in_discards = Some(Value::Counter32(7));
        snap.interfaces.insert(2, e2);
        let (second, _) = c.process(&snap);
        let rx1 = value_of(&second, &itf("ether1"), MetricName::InterfaceRxBps);
        let tx1 = value_of(&second, &itf("ether1"), MetricName::InterfaceTxBps);
        assert_eq!((rx1, tx1), (Some(8_000.0), Some(32_000.0)));
        let rx2 = value_of(&second, &itf("ether2"), MetricName::InterfaceRxBps);
        assert_eq!(rx2, Some(2_000.0 * 8.0));
        assert_eq!(
            value_of(&second, &itf("ether2"), MetricName::InterfaceErrors),
            Some(5.0)
        );
        // ifOutDiscards is absent: drops are the in-discards alone.
        assert_eq!(
            value_of(&second, &itf("ether2"), MetricName::InterfaceDrops),
            Some(7.0)
        );
        assert_eq!(
            value_of(&second, &itf("ether2"), MetricName::InterfaceRunning),
            Some(1.0)
        );
        assert!(second.events.is_empty());
    }

    #[test]
    fn reboot_clears_rates_and_is_one_event() {
        let mut c = collector();
        let mut snap = Snapshot {
            ts_ms: 10_000,
            uptime_ticks: Some(500_000),
            ..Snapshot::default()
        };
        snap.interfaces
            .insert(1, row("ether1", 0, 0, Some((10, 10))));
        c.process(&snap);
        snap.ts_ms += 10_000;
        snap.uptime_ticks = Some(300);
        snap.interfaces
            .insert(1, row("ether1", 0, 0, Some((20, 20))));
        let (out, _) = c.process(&snap);
        let reboots = out
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Reboot)
            .count();
        assert_eq!(reboots, 1);
        assert_eq!(
            value_of(
                &out,
                &EntityKey::Device("r1".into()),
                MetricName::DeviceUptimeS
            ),
            Some(3.0)
        );
        // The counters started over: no rate from readings across the reboot.
        assert_eq!(
            value_of(&out, &itf("ether1"), MetricName::InterfaceRxBps),
            None
        );
    }

    #[test]
    fn uptime_wrap_is_not_a_reboot() {
        let mut u = Uptime::default();
        let near_top = u32::MAX - 500; // 5 s before the wrap
        assert!(!u.observe(near_top, 0).1);
        // 10 s later the counter reads 500 ticks past zero.
        let (uptime, restarted) = u.observe(499, 10_000);
        assert!(!restarted);
        assert_eq!(uptime, (TICKS_PER_WRAP + 499) / 100);
        // A real restart afterwards is still seen.
        assert!(u.observe(10, 20_000).1);
    }

    #[test]
    fn names_fall_back_and_stay_unique() {
        let mut c = collector();
        let mut snap = Snapshot::default();
        let mut only_descr = row("x", 0, 0, None);
        only_descr.name = None;
        only_descr.descr = Some("eth0".into());
        snap.interfaces.insert(3, only_descr);
        snap.interfaces.insert(4, row("eth0", 0, 0, None));
        let mut nameless = row("y", 0, 0, None);
        nameless.name = None;
        nameless.descr = None;
        snap.interfaces.insert(5, nameless);
        let mut down = row("ether9", 0, 0, None);
        down.admin = Some(2);
        down.oper = Some(2);
        snap.interfaces.insert(9, down);
        let (out, inventory) = c.process(&snap);
        let names: Vec<&str> = inventory.iter().map(|(_, i)| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "eth0#4", "ether9"]);
        assert!(inventory[2].1.disabled);
        assert_eq!(
            value_of(&out, &itf("ether9"), MetricName::InterfaceRunning),
            Some(0.0)
        );
        // The ifIndex never leaves the collector except to split equal names.
        for s in &out.samples {
            if let EntityKey::Interface { name, .. } = &s.entity {
                assert!(!name.starts_with(char::is_numeric), "{name}");
            }
        }
    }

    #[test]
    fn host_resources_and_mikrotik_health() {
        let mut snap = Snapshot {
            cpu_loads: vec![10, 30, 200],
            board_temp_dc: Some(415),
            cpu_temp_dc: Some(520),
            dhcp_leases: Some(17),
            ..Snapshot::default()
        };
        snap.storage.insert(
            1,
            StorageRow {
                kind: Some(oids::HR_STORAGE_RAM.to_vec()),
                units: Some(1024),
                size: Some(1000),
                used: Some(250),
            },
        );
        snap.storage.insert(
            2,
            StorageRow {
                kind: Some(vec![1, 3, 6, 1, 2, 1, 25, 2, 1, 4]),
                units: Some(4096),
                size: Some(1000),
                used: Some(1000),
            },
        );
        let mut c = collector();
        let (out, _) = c.process(&snap);
        let dev = EntityKey::Device("r1".into());
        // Loads are clamped to 0..=100 before averaging.
        assert_eq!(
            value_of(&out, &dev, MetricName::DeviceCpuPct),
            Some(140.0 / 3.0)
        );
        assert_eq!(
            value_of(&out, &dev, MetricName::DeviceMemUsedPct),
            Some(25.0)
        );
        assert_eq!(
            value_of(&out, &dev, MetricName::DeviceTemperatureC),
            Some(41.5)
        );
        assert_eq!(value_of(&out, &dev, MetricName::DhcpLeases), Some(17.0));

        snap.board_temp_dc = None;
        assert_eq!(temperature(&snap), Some(52.0));
        snap.cpu_temp_dc = Some(-2_731); // a sensor error, not a reading
        snap.gauges.insert(
            1,
            GaugeRow {
                name: Some("cpu-temperature".into()),
                value: Some(48),
                unit: Some(1),
            },
        );
        snap.gauges.insert(
            2,
            GaugeRow {
                name: Some("voltage".into()),
                value: Some(240),
                unit: Some(3),
            },
        );
        assert_eq!(temperature(&snap), Some(48.0));
        snap.gauges.clear();
        assert_eq!(temperature(&snap), None);
        assert_eq!(unsigned32(&Value::Int(-1)), Some(u64::from(u32::MAX)));
    }

    #[test]
    fn tables_are_sorted_into_rows() {
        let mut walked: Columns = vec![Vec::new(); COLUMNS.len() + GAUGE_COLUMNS.len()];
        let b = |s: &str| Value::Bytes(s.as_bytes().to_vec());
        walked[0].push((vec![1], b("lo")));
        walked[3].push((vec![1], Value::Int(1)));
        walked[11].push((vec![1], Value::Counter64(42)));
        // A row only ifName defines still gets the counters of the columns before it.
        walked[10].push((vec![2], b("ether2")));
        walked[4].push((vec![2], Value::Counter32(9)));
        // A counter for a row no defining column named is ignored.
        walked[11].push((vec![77], Value::Counter64(1)));
        // A two-arc index is not an IF-MIB row.
        walked[0].push((vec![1, 2], b("odd")));
        walked[13].push((vec![196_608], Value::Int(12)));
        walked[14].push((vec![1], Value::Oid(oids::HR_STORAGE_RAM.to_vec())));
        walked[15].push((vec![1], Value::Int(1024)));
        walked[16].push((vec![1], Value::Int(-2)));
        walked[17].push((vec![1], Value::Int(5)));
        walked[18].push((vec![1], b("temperature")));
        walked[19].push((vec![1], Value::Gauge32(44)));
        walked[20].push((vec![1], Value::Int(1)));
        let mut snap = Snapshot::default();
        fill_tables(&mut snap, &walked);
        assert_eq!(snap.interfaces.len(), 2);
        assert_eq!(snap.interfaces[&2].in_octets, Some(Value::Counter32(9)));
        let lo = &snap.interfaces[&1];
        assert_eq!(lo.descr.as_deref(), Some("lo"));
        assert_eq!(lo.oper, Some(1));
        assert_eq!(lo.hc_in_octets, Some(Value::Counter64(42)));
        assert_eq!(snap.cpu_loads, [12]);
        assert_eq!(snap.storage[&1].size, Some(u64::from(u32::MAX) - 1));
        assert_eq!(snap.gauges[&1].value, Some(44));
        // Short or missing columns are fine.
        let mut empty = Snapshot::default();
        fill_tables(&mut empty, &Vec::new());
        assert!(empty.interfaces.is_empty());
    }

    #[test]
    fn unreachable_is_one_event_per_outage() {
        let mut c = collector();
        let err = SnmpError::Config("x".into());
        let first = c.unreachable(&err);
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].kind, EventKind::ApiUnreachable);
        assert!(first.events[0].message.contains("SNMP"));
        assert!(c.unreachable(&err).events.is_empty());
        assert_eq!(c.still_unreachable().samples[0].value, 0.0);
        let (back, _) = c.process(&Snapshot::default());
        assert_eq!(back.events[0].kind, EventKind::ApiRecovered);
    }

    #[tokio::test]
    async fn addresses_resolve() {
        async fn port(a: &str) -> Option<u16> {
            resolve(a).await.ok().map(|s| s.port())
        }
        assert_eq!(port("192.0.2.1").await, Some(161));
        assert_eq!(port("192.0.2.1:1161").await, Some(1161));
        assert_eq!(port("[2001:db8::1]").await, Some(161));
        assert_eq!(port("[2001:db8::1]:16100").await, Some(16100));
        assert_eq!(port("localhost").await, Some(161));
        assert!(matches!(
            resolve("localhost:not-a-port").await,
            Err(SnmpError::Resolve { .. })
        ));
    }
}
