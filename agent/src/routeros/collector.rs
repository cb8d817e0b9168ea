//! The RouterOS API collection plan for one router and its translation into canonical
//! metrics, events and inventory.

use super::client::{ClientError, RouterOsClient};
use super::values::{parse_bool, parse_duration_s, version_number};
use crate::normalise::{CounterRates, CounterWidth};
use ispvm_proto::routeros::{Command, Reply};
use ispvm_proto::time::now_ms;
use ispvm_proto::{
    DeviceInfo, DeviceRole, EntityKey, Event, EventKind, InterfaceInfo, InventoryPatch, MetricName,
    MetricSample, Severity,
};
use std::collections::BTreeSet;

/// Inventory is re-sent at least this often (in polls) so a server that lost it heals.
const INVENTORY_EVERY_POLLS: u32 = 60;

/// What one poll produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PollOutput {
    pub samples: Vec<MetricSample>,
    pub events: Vec<Event>,
    pub inventory: InventoryPatch,
}

/// Which of an interface's counters a rate is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counter {
    RxBytes(String),
    TxBytes(String),
    Errors(String),
    Drops(String),
}

/// Collection state of one router: identity, previous counters, reachability.
#[derive(Debug)]
pub struct Collector {
    device: String,
    site: String,
    role: DeviceRole,
    mgmt_addr: String,
    rates: CounterRates<Counter>,
    last_uptime_s: Option<u64>,
    interfaces: BTreeSet<String>,
    polls_since_inventory: u32,
    reachable: Option<bool>,
}

fn num(reply: &Reply, key: &str) -> Option<u64> {
    reply.get(key)?.parse().ok()
}

impl Collector {
    pub fn new(device: String, site: String, role: DeviceRole, mgmt_addr: String) -> Self {
        Collector {
            device,
            site,
            role,
            mgmt_addr,
            rates: CounterRates::default(),
            last_uptime_s: None,
            interfaces: BTreeSet::new(),
            polls_since_inventory: INVENTORY_EVERY_POLLS,
            reachable: None,
        }
    }

    fn sample(
        &self,
        entity: EntityKey,
        metric: MetricName,
        ts_ms: i64,
        value: f64,
    ) -> MetricSample {
        MetricSample {
            entity,
            metric,
            ts_ms,
            value,
        }
    }

    fn device_entity(&self) -> EntityKey {
        EntityKey::Device(self.device.clone())
    }

    /// Polls the router once over an open session.
    pub async fn poll(&mut self, client: &mut RouterOsClient) -> Result<PollOutput, ClientError> {
        let mut out = PollOutput::default();
        let resource = client
            .print(&Command::new("/system/resource/print").with_proplist([
                "uptime",
                "version",
                "cpu-load",
                "free-memory",
                "total-memory",
                "board-name",
            ]))
            .await?;
        let interfaces = client
            .print(&Command::new("/interface/print").with_proplist([
                "name", "type", "running", "disabled", "rx-byte", "tx-byte", "rx-error",
                "tx-error", "rx-drop", "tx-drop",
            ]))
            .await?;
        let ts = now_ms();
        let dev = self.device_entity();

        out.samples
            .push(self.sample(dev.clone(), MetricName::DeviceUp, ts, 1.0));
        if self.reachable == Some(false) {
            out.events.push(Event::new(
                dev.clone(),
                EventKind::ApiRecovered,
                Severity::Notice,
                format!("RouterOS API of {} answers again", self.device),
            ));
        }
        self.reachable = Some(true);

        let resource = resource.first();
        if let Some(r) = resource {
            if let Some(cpu) = num(r, "cpu-load") {
                out.samples.push(self.sample(
                    dev.clone(),
                    MetricName::DeviceCpuPct,
                    ts,
                    cpu as f64,
                ));
            }
            if let (Some(free), Some(total)) = (num(r, "free-memory"), num(r, "total-memory"))
                && total > 0
            {
                let used = total.saturating_sub(free) as f64 * 100.0 / total as f64;
                out.samples
                    .push(self.sample(dev.clone(), MetricName::DeviceMemUsedPct, ts, used));
            }
            if let Some(uptime) = r.get("uptime").and_then(parse_duration_s) {
                if self.last_uptime_s.is_some_and(|last| uptime < last) {
                    self.rates.clear();
                    out.events.push(Event::new(
                        dev.clone(),
                        EventKind::Reboot,
                        Severity::Warning,
                        format!("{} rebooted (uptime now {uptime} s)", self.device),
                    ));
                }
                self.last_uptime_s = Some(uptime);
                out.samples.push(self.sample(
                    dev.clone(),
                    MetricName::DeviceUptimeS,
                    ts,
                    uptime as f64,
                ));
            }
        }

        let mut names = BTreeSet::new();
        let mut inventory_interfaces = Vec::new();
        for itf in &interfaces {
            let Some(name) = itf.get("name").filter(|n| !n.is_empty()) else {
                continue;
            };
            names.insert(name.to_owned());
            let entity = EntityKey::Interface {
                device: self.device.clone(),
                name: name.to_owned(),
            };
            let disabled = itf.get("disabled").and_then(parse_bool).unwrap_or(false);
            inventory_interfaces.push(InterfaceInfo {
                device: self.device.clone(),
                name: name.to_owned(),
                kind: itf.get("type").unwrap_or("unknown").to_owned(),
                disabled,
            });
            if let Some(running) = itf.get("running").and_then(parse_bool) {
                out.samples.push(self.sample(
                    entity.clone(),
                    MetricName::InterfaceRunning,
                    ts,
                    if running { 1.0 } else { 0.0 },
                ));
            }
            let pairs = [
                (
                    Counter::RxBytes(name.to_owned()),
                    MetricName::InterfaceRxBps,
                    num(itf, "rx-byte"),
                    8.0,
                ),
                (
                    Counter::TxBytes(name.to_owned()),
                    MetricName::InterfaceTxBps,
                    num(itf, "tx-byte"),
                    8.0,
                ),
                (
                    Counter::Errors(name.to_owned()),
                    MetricName::InterfaceErrors,
                    num(itf, "rx-error")
                        .zip(num(itf, "tx-error"))
                        .map(|(a, b)| a.saturating_add(b)),
                    1.0,
                ),
                (
                    Counter::Drops(name.to_owned()),
                    MetricName::InterfaceDrops,
                    num(itf, "rx-drop")
                        .zip(num(itf, "tx-drop"))
                        .map(|(a, b)| a.saturating_add(b)),
                    1.0,
                ),
            ];
            for (counter, metric, value, scale) in pairs {
                let Some(value) = value else { continue };
                if let Some(rate) = self.rates.update(counter, value, ts, CounterWidth::Bits64) {
                    out.samples
                        .push(self.sample(entity.clone(), metric, ts, rate * scale));
                }
            }
        }

        self.polls_since_inventory += 1;
        if names != self.interfaces || self.polls_since_inventory >= INVENTORY_EVERY_POLLS {
            let identity = client
                .print(&Command::new("/system/identity/print").with_proplist(["name"]))
                .await?;
            let name = identity
                .first()
                .and_then(|r| r.get("name"))
                .unwrap_or(&self.device)
                .to_owned();
            out.inventory.devices.push(DeviceInfo {
                key: self.device.clone(),
                name,
                site: self.site.clone(),
                role: self.role,
                mgmt_addr: self.mgmt_addr.clone(),
                model: resource
                    .and_then(|r| r.get("board-name"))
                    .unwrap_or("")
                    .to_owned(),
                os_version: version_number(resource.and_then(|r| r.get("version")).unwrap_or(""))
                    .to_owned(),
            });
            out.inventory.interfaces = inventory_interfaces;
            self.interfaces = names;
            self.polls_since_inventory = 0;
        }
        Ok(out)
    }

    /// What a failed poll reports: `device.up` 0, and an event when the API was answering
    /// before (not on every failed poll, so an outage is one event).
    pub fn unreachable(&mut self, error: &ClientError) -> PollOutput {
        let ts = now_ms();
        let dev = self.device_entity();
        let mut out = PollOutput::default();
        out.samples
            .push(self.sample(dev.clone(), MetricName::DeviceUp, ts, 0.0));
        if self.reachable != Some(false) {
            out.events.push(Event::new(
                dev,
                EventKind::ApiUnreachable,
                Severity::Warning,
                format!("RouterOS API of {} does not answer: {error}", self.device),
            ));
        }
        self.reachable = Some(false);
        out
    }

    /// What a poll skipped by an open breaker reports: the API is still taken as not
    /// answering (the last attempt failed), without touching the router.
    pub fn still_unreachable(&self) -> PollOutput {
        let mut out = PollOutput::default();
        out.samples.push(self.sample(self.device_entity(), MetricName::DeviceUp, now_ms(), 0.0));
        out
    }

    pub fn device(&self) -> &str {
        &self.device
    }
}
