//! Sample batches with the shape agents send.

use ispvm_proto::{
    Batch, DeviceInfo, DeviceRole, EntityKey, Event, EventKind, InterfaceInfo, MetricName,
    MetricSample, Severity,
};

/// A fixed instant (2026-09-21) the sample batches are stamped from.
pub const T0: i64 = 1_790_000_000_000;

/// A batch with one device (two interfaces), four samples and one event.
pub fn batch(agent: &str, tenant: &str, seq: u64, device: &str) -> Batch {
    let mut b = Batch::new(agent, tenant, seq);
    b.inventory.devices.push(DeviceInfo {
        key: device.into(),
        name: device.to_uppercase(),
        site: "pop1".into(),
        role: DeviceRole::Core,
        mgmt_addr: "127.0.0.1:8728".into(),
        model: "CCR2216-1G-12XS-2XQ".into(),
        os_version: "7.16.1".into(),
    });
    for name in ["sfp-sfpplus1", "ether1"] {
        b.inventory.interfaces.push(InterfaceInfo {
            device: device.into(),
            name: name.into(),
            kind: "ether".into(),
            disabled: false,
        });
    }
    let dev = EntityKey::Device(device.into());
    let itf = EntityKey::Interface {
        device: device.into(),
        name: "sfp-sfpplus1".into(),
    };
    let ts = T0 + seq as i64 * 10_000;
    for (entity, metric, value) in [
        (dev.clone(), MetricName::DeviceUp, 1.0),
        (dev.clone(), MetricName::DeviceCpuPct, 17.0),
        (dev.clone(), MetricName::DeviceUptimeS, 86_400.0),
        (itf, MetricName::InterfaceRxBps, 1.5e9),
    ] {
        b.samples.push(MetricSample {
            entity,
            metric,
            ts_ms: ts,
            value,
        });
    }
    let mut e = Event::new(
        dev,
        EventKind::Reboot,
        Severity::Warning,
        format!("{device} rebooted"),
    );
    e.ts_ms = ts;
    b.events.push(e);
    b
}
