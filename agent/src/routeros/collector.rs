//! The RouterOS API collection plan for one router and its translation into canonical
//! metrics, events and inventory.
//!
//! Tiers (ARCHITECTURE §3): every poll reads what reachability and fast alerting need
//! (resource, interfaces, BGP, OSPF); every `medium_every` polls the counts and sensors
//! (PPPoE sessions, DHCP leases, health); inventory (identity, addresses, discovery
//! neighbours) is read on the first poll, when the interface set changes, and every
//! `slow_every` polls. Paths follow the detected RouterOS version (v7 `/routing/bgp/session`,
//! v6 `/routing/bgp/peer`); a path a router lacks (no routing package, no DHCP server)
//! answers with a trap, which is taken as "nothing there", not as a failed poll.

use super::client::{ClientError, RouterOsClient};
use super::routing::{PeerTracker, Protocol, bgp_readings, ospf_readings};
use super::values::{parse_bool, parse_duration_s, version_number};
use crate::rates::{CounterRates, CounterWidth};
use ispvm_proto::routeros::{Command, Reply};
use ispvm_proto::time::now_ms;
use ispvm_proto::{
    AddressInfo, DeviceInfo, DeviceRole, EntityKey, Event, EventKind, InterfaceInfo,
    InventoryPatch, MetricName, MetricSample, NeighborInfo, Severity,
};
use std::collections::{BTreeSet, HashMap};

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

/// Collection state of one router: identity, previous counters, routing peers,
/// reachability.
#[derive(Debug)]
pub struct Collector {
    device: String,
    site: String,
    role: DeviceRole,
    mgmt_addr: String,
    rates: CounterRates<Counter>,
    last_uptime_s: Option<u64>,
    interfaces: BTreeSet<String>,
    polls: u64,
    last_inventory_poll: Option<u64>,
    reachable: Option<bool>,
    bgp: PeerTracker,
    ospf: PeerTracker,
    /// Last known `running` of each interface and when it was recorded, so a change
    /// becomes one event whether a poll or a push saw it first, and two reports never
    /// share a timestamp (a series holds one value per instant).
    running: HashMap<String, (bool, i64)>,
    /// Medium-tier reads happen on one poll in this many.
    medium_every: u64,
    /// Inventory is re-read at least this often (in polls) so a server that lost it heals.
    slow_every: u64,
    /// The configuration hash is taken on one poll in this many.
    daily_every: u64,
    config_hash: Option<String>,
}

fn num(reply: &Reply, key: &str) -> Option<u64> {
    reply.get(key)?.parse().ok()
}

/// Items of an optional path: a trap (path absent on this router) is "no items".
fn optional(result: Result<Vec<Reply>, ClientError>) -> Result<Vec<Reply>, ClientError> {
    match result {
        Err(ClientError::Trap { .. }) => Ok(Vec::new()),
        other => other,
    }
}

/// A count from an optional path; `None` when the router lacks it.
fn optional_count(result: Result<u64, ClientError>) -> Result<Option<u64>, ClientError> {
    match result {
        Ok(n) => Ok(Some(n)),
        Err(ClientError::Trap { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// SHA-256 over menus of configuration, item by item, attribute by attribute.
fn hash_config(menus: &[(&str, &[Reply])]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (path, items) in menus {
        for item in *items {
            hash.update(path.as_bytes());
            for (k, v) in &item.attributes {
                hash.update([0x1f]);
                hash.update(k.as_bytes());
                hash.update(b"=");
                hash.update(v.as_bytes());
            }
            hash.update(b"\n");
        }
    }
    hex::encode(hash.finalize())
}

fn is_v7(version: &str) -> bool {
    version_number(version)
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 7)
}

/// The temperature a health reply reports: v7 lists sensors as items with `name` and
/// `value`, v6 gives one item with a `temperature` attribute.
fn temperature(items: &[Reply]) -> Option<f64> {
    let by_name = |name: &str| {
        items
            .iter()
            .find(|r| r.get("name") == Some(name))
            .and_then(|r| r.get("value"))
            .and_then(|v| v.parse().ok())
    };
    let v6 = |key: &str| {
        items
            .first()
            .and_then(|r| r.get(key))
            .and_then(|v| v.parse().ok())
    };
    by_name("temperature")
        .or_else(|| by_name("cpu-temperature"))
        .or_else(|| v6("temperature"))
        .or_else(|| v6("cpu-temperature"))
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
            polls: 0,
            last_inventory_poll: None,
            reachable: None,
            bgp: PeerTracker::new(Protocol::Bgp),
            ospf: PeerTracker::new(Protocol::Ospf),
            running: HashMap::new(),
            medium_every: 6,
            slow_every: 60,
            daily_every: 8_640,
            config_hash: None,
        }
    }

    /// Sets how often the daily tier (configuration hash) runs, in polls.
    #[must_use]
    pub fn with_daily(mut self, daily_every: u64) -> Self {
        self.daily_every = daily_every.max(1);
        self
    }

    /// A SHA-256 over the configuration the API shows (packages, interfaces, addresses),
    /// so a change made on the router, by anyone, is noticed within a day.
    async fn config_hash(&self, client: &RouterOsClient) -> Result<String, ClientError> {
        let packages =
            Command::new("/system/package/print").with_proplist(["name", "version", "disabled"]);
        let interfaces = Command::new("/interface/print")
            .with_proplist(["name", "type", "mtu", "disabled", "comment"]);
        let addresses =
            Command::new("/ip/address/print").with_proplist(["address", "interface", "disabled"]);
        let (p, i, a) = tokio::join!(
            client.print(&packages),
            client.print(&interfaces),
            client.print(&addresses)
        );
        Ok(hash_config(&[
            ("package", &optional(p)?),
            ("interface", &i?),
            ("address", &optional(a)?),
        ]))
    }

    /// The daily tier: a `config_changed` event when the hash differs from the last one.
    async fn daily(
        &mut self,
        client: &RouterOsClient,
        ts: i64,
        out: &mut PollOutput,
    ) -> Result<(), ClientError> {
        let hash = self.config_hash(client).await?;
        if let Some(previous) = self.config_hash.as_ref().filter(|p| **p != hash) {
            let mut e = Event::new(
                self.device_entity(),
                EventKind::ConfigChanged,
                Severity::Notice,
                format!("the configuration of {} changed", self.device),
            );
            e.ts_ms = ts;
            e.attrs.insert("previous_hash".into(), previous.clone());
            e.attrs.insert("hash".into(), hash.clone());
            out.events.push(e);
        }
        self.config_hash = Some(hash);
        Ok(())
    }

    /// Sets how often the medium and slow tiers run, in polls.
    #[must_use]
    pub fn with_tiers(mut self, medium_every: u64, slow_every: u64) -> Self {
        self.medium_every = medium_every.max(1);
        self.slow_every = slow_every.max(1);
        self
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
    pub async fn poll(&mut self, client: &RouterOsClient) -> Result<PollOutput, ClientError> {
        let resource_cmd = Command::new("/system/resource/print").with_proplist([
            "uptime",
            "version",
            "cpu-load",
            "free-memory",
            "total-memory",
            "board-name",
        ]);
        let interface_cmd = Command::new("/interface/print").with_proplist([
            "name", "type", "running", "disabled", "rx-byte", "tx-byte", "rx-error", "tx-error",
            "rx-drop", "tx-drop",
        ]);
        let ospf_cmd = Command::new("/routing/ospf/neighbor/print").with_proplist([
            "router-id",
            "address",
            "state",
        ]);
        let (resource, interfaces, ospf) = tokio::join!(
            client.print(&resource_cmd),
            client.print(&interface_cmd),
            client.print(&ospf_cmd),
        );
        let (resource, interfaces, ospf) = (resource?, interfaces?, optional(ospf)?);
        let resource = resource.first();
        let v7 = resource.and_then(|r| r.get("version")).is_none_or(is_v7);
        let bgp_cmd = if v7 {
            Command::new("/routing/bgp/session/print").with_proplist([
                "remote.address",
                "established",
                "prefix-count",
            ])
        } else {
            Command::new("/routing/bgp/peer/print").with_proplist([
                "remote-address",
                "state",
                "established",
                "prefix-count",
            ])
        };
        let bgp = optional(client.print(&bgp_cmd).await)?;

        let medium = self.polls.is_multiple_of(self.medium_every);
        let health_cmd = Command::new("/system/health/print");
        let (health, ppp, dhcp) = if medium {
            let (h, p, d) = tokio::join!(
                client.print(&health_cmd),
                client.count("/ppp/active"),
                client.count("/ip/dhcp-server/lease"),
            );
            (optional(h)?, optional_count(p)?, optional_count(d)?)
        } else {
            (Vec::new(), None, None)
        };

        let ts = now_ms();
        let dev = self.device_entity();
        let mut out = PollOutput::default();
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

        if let Some(r) = resource {
            self.resource_samples(r, ts, &mut out);
        }
        if let Some(t) = temperature(&health) {
            out.samples
                .push(self.sample(dev.clone(), MetricName::DeviceTemperatureC, ts, t));
        }
        if let Some(n) = ppp {
            out.samples.push(self.sample(
                dev.clone(),
                MetricName::PppoeActiveSessions,
                ts,
                n as f64,
            ));
        }
        if let Some(n) = dhcp {
            out.samples
                .push(self.sample(dev.clone(), MetricName::DhcpLeases, ts, n as f64));
        }
        let inventory_interfaces = self.interface_samples(&interfaces, ts, &mut out);
        self.bgp.update(
            &self.device,
            &bgp_readings(&bgp, v7),
            ts,
            &mut out.samples,
            &mut out.events,
        );
        self.ospf.update(
            &self.device,
            &ospf_readings(&ospf),
            ts,
            &mut out.samples,
            &mut out.events,
        );

        let names: BTreeSet<String> = inventory_interfaces
            .iter()
            .map(|i| i.name.clone())
            .collect();
        let inventory_due = names != self.interfaces
            || self
                .last_inventory_poll
                .is_none_or(|at| self.polls.saturating_sub(at) >= self.slow_every);
        if inventory_due {
            out.inventory = self
                .inventory(client, resource, inventory_interfaces)
                .await?;
            self.interfaces = names;
            self.last_inventory_poll = Some(self.polls);
        }
        if self.polls.is_multiple_of(self.daily_every) {
            self.daily(client, ts, &mut out).await?;
        }
        self.polls += 1;
        Ok(out)
    }

    fn resource_samples(&mut self, r: &Reply, ts: i64, out: &mut PollOutput) {
        let dev = self.device_entity();
        if let Some(cpu) = num(r, "cpu-load") {
            out.samples
                .push(self.sample(dev.clone(), MetricName::DeviceCpuPct, ts, cpu as f64));
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
            out.samples
                .push(self.sample(dev, MetricName::DeviceUptimeS, ts, uptime as f64));
        }
    }

    /// Interface state and rates; returns the interfaces for the inventory.
    fn interface_samples(
        &mut self,
        interfaces: &[Reply],
        ts: i64,
        out: &mut PollOutput,
    ) -> Vec<InterfaceInfo> {
        let mut inventory = Vec::new();
        for itf in interfaces {
            let Some(name) = itf.get("name").filter(|n| !n.is_empty()) else {
                continue;
            };
            let entity = EntityKey::Interface {
                device: self.device.clone(),
                name: name.to_owned(),
            };
            inventory.push(InterfaceInfo {
                device: self.device.clone(),
                name: name.to_owned(),
                kind: itf.get("type").unwrap_or("unknown").to_owned(),
                disabled: itf.get("disabled").and_then(parse_bool).unwrap_or(false),
            });
            if let Some(running) = itf.get("running").and_then(parse_bool) {
                self.record_running(name, running, ts, out);
            }
            let sum = |a: &str, b: &str| {
                num(itf, a)
                    .zip(num(itf, b))
                    .map(|(x, y)| x.saturating_add(y))
            };
            let counters = [
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
                    sum("rx-error", "tx-error"),
                    1.0,
                ),
                (
                    Counter::Drops(name.to_owned()),
                    MetricName::InterfaceDrops,
                    sum("rx-drop", "tx-drop"),
                    1.0,
                ),
            ];
            for (counter, metric, value, scale) in counters {
                let Some(value) = value else { continue };
                if let Some(rate) = self.rates.update(counter, value, ts, CounterWidth::Bits64) {
                    out.samples
                        .push(self.sample(entity.clone(), metric, ts, rate * scale));
                }
            }
        }
        inventory
    }

    /// An interface's running state: a sample, and a link event when it changed.
    fn record_running(&mut self, name: &str, running: bool, ts: i64, out: &mut PollOutput) {
        let entity = EntityKey::Interface {
            device: self.device.clone(),
            name: name.to_owned(),
        };
        let value = if running { 1.0 } else { 0.0 };
        let previous = self.running.get(name).copied();
        let ts = previous.map_or(ts, |(_, last)| ts.max(last + 1));
        out.samples
            .push(self.sample(entity.clone(), MetricName::InterfaceRunning, ts, value));
        self.running.insert(name.to_owned(), (running, ts));
        if previous.is_some_and(|(was, _)| was != running) {
            let (kind, severity, word) = if running {
                (EventKind::LinkUp, Severity::Notice, "up")
            } else {
                (EventKind::LinkDown, Severity::Warning, "down")
            };
            let mut e = Event::new(
                entity,
                kind,
                severity,
                format!("{} {name} is {word}", self.device),
            );
            e.ts_ms = ts;
            out.events.push(e);
        }
    }

    /// A pushed interface change (`/interface/listen`): seen in about a second instead
    /// of at the next poll.
    pub fn interface_pushed(&mut self, item: &Reply) -> PollOutput {
        let mut out = PollOutput::default();
        if let (Some(name), Some(running)) =
            (item.get("name"), item.get("running").and_then(parse_bool))
        {
            self.record_running(name, running, now_ms(), &mut out);
        }
        out
    }

    /// The slow tier: identity, addresses and discovery neighbours.
    async fn inventory(
        &self,
        client: &RouterOsClient,
        resource: Option<&Reply>,
        interfaces: Vec<InterfaceInfo>,
    ) -> Result<InventoryPatch, ClientError> {
        let identity_cmd = Command::new("/system/identity/print").with_proplist(["name"]);
        let address_cmd =
            Command::new("/ip/address/print").with_proplist(["address", "interface", "disabled"]);
        let neighbor_cmd = Command::new("/ip/neighbor/print").with_proplist([
            "interface",
            "address",
            "mac-address",
            "identity",
            "platform",
        ]);
        let (identity, addresses, neighbors) = tokio::join!(
            client.print(&identity_cmd),
            client.print(&address_cmd),
            client.print(&neighbor_cmd),
        );
        let (identity, addresses, neighbors) =
            (identity?, optional(addresses)?, optional(neighbors)?);
        let name = identity
            .first()
            .and_then(|r| r.get("name"))
            .unwrap_or(&self.device)
            .to_owned();
        let text = |r: &Reply, k: &str| r.get(k).unwrap_or("").to_owned();
        Ok(InventoryPatch {
            devices: vec![DeviceInfo {
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
            }],
            interfaces,
            addresses: addresses
                .iter()
                .filter(|a| a.get("disabled").and_then(parse_bool) != Some(true))
                .filter_map(|a| {
                    Some(AddressInfo {
                        device: self.device.clone(),
                        interface: a.get("interface").filter(|s| !s.is_empty())?.to_owned(),
                        address: a.get("address").filter(|s| !s.is_empty())?.to_owned(),
                    })
                })
                .collect(),
            neighbors: neighbors
                .iter()
                .filter_map(|n| {
                    Some(NeighborInfo {
                        device: self.device.clone(),
                        interface: n.get("interface").filter(|s| !s.is_empty())?.to_owned(),
                        identity: text(n, "identity"),
                        address: text(n, "address"),
                        mac: text(n, "mac-address"),
                        platform: text(n, "platform"),
                    })
                })
                .collect(),
        })
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
        out.samples
            .push(self.sample(self.device_entity(), MetricName::DeviceUp, now_ms(), 0.0));
        out
    }

    pub fn device(&self) -> &str {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_proto::routeros::ReplyKind;

    #[test]
    fn the_config_hash_sees_any_change() {
        let itf = |mtu: &str| {
            Reply::new(ReplyKind::Re)
                .with_attr("name", "ether1")
                .with_attr("mtu", mtu)
        };
        let a = hash_config(&[("interface", &[itf("1500")])]);
        assert_eq!(a, hash_config(&[("interface", &[itf("1500")])]));
        assert_ne!(a, hash_config(&[("interface", &[itf("9000")])]));
        assert_ne!(a, hash_config(&[("address", &[itf("1500")])]));
        assert_ne!(
            a,
            hash_config(&[("interface", &[itf("1500"), itf("1500")])])
        );
    }

    #[test]
    fn versions_and_health_formats() {
        assert!(is_v7("7.16.1 (stable)"));
        assert!(!is_v7("6.49.15 (long-term)"));
        let v7 = [
            Reply::new(ReplyKind::Re)
                .with_attr("name", "voltage")
                .with_attr("value", "24.1"),
            Reply::new(ReplyKind::Re)
                .with_attr("name", "temperature")
                .with_attr("value", "41"),
        ];
        assert_eq!(temperature(&v7), Some(41.0));
        let v6 = [Reply::new(ReplyKind::Re)
            .with_attr("voltage", "24")
            .with_attr("temperature", "39")];
        assert_eq!(temperature(&v6), Some(39.0));
        assert_eq!(temperature(&[]), None);
    }
}
