use super::*;
use crate::codec::{from_bincode, to_bincode};
use crate::envelope::*;
use crate::metric::MetricName;
use proptest::prelude::*;

const TS: i64 = 1_790_000_000_000;

fn device(key: &str, model: &str) -> DeviceInfo {
    DeviceInfo {
        key: key.into(),
        name: key.to_uppercase(),
        site: "pop1".into(),
        role: DeviceRole::Core,
        mgmt_addr: "127.0.0.1:8728".into(),
        model: model.into(),
        os_version: "7.16.1".into(),
    }
}

fn neighbor(identity: String) -> NeighborInfo {
    NeighborInfo {
        device: "healthy".into(),
        interface: "ether1".into(),
        identity,
        address: "10.0.0.2".into(),
        mac: "4C:5E:0C:00:00:01".into(),
        platform: "MikroTik".into(),
    }
}

fn sample(device: &str, value: f64) -> MetricSample {
    MetricSample {
        entity: EntityKey::Device(device.into()),
        metric: MetricName::DeviceCpuPct,
        ts_ms: TS,
        value,
    }
}

fn accepted(batch: &Batch) -> bool {
    let bytes = to_bincode(batch).expect("encode");
    from_bincode::<Batch>(&bytes, &Limits::default()).is_ok()
}

/// The batch of the bug report: a healthy router, one whose board name holds a NUL, and
/// a neighbour announcing a 4 KB identity. The server refuses it as it stands; cleaned,
/// it is accepted and every item is still there.
#[test]
fn nul_board_name_and_4kb_neighbour_identity_are_cleaned_not_refused() {
    let limits = Limits::default();
    let mut b = Batch::new("agent-a", "acme", 1);
    b.inventory
        .devices
        .push(device("healthy", "CCR2116-12G-4S+"));
    b.inventory.devices.push(device("odd", "CCR\u{0}2116"));
    b.inventory.neighbors.push(neighbor("X".repeat(4096)));
    b.samples.push(sample("healthy", 3.0));
    assert!(!accepted(&b), "the raw batch is refused by the server");

    let cleaned = clean_batch(&mut b, &limits);
    assert!(accepted(&b));
    assert_eq!(cleaned.items_dropped(), 0);
    assert_eq!(cleaned.fields_fixed, 2);
    assert_eq!(b.inventory.devices[1].model, "CCR\u{FFFD}2116");
    let identity = &b.inventory.neighbors[0].identity;
    assert!(identity.len() <= limits.max_id_len && identity.ends_with('…'));
}

#[test]
fn a_64_kib_trap_message_is_cut_and_its_event_kept() {
    let limits = Limits::default();
    let mut b = Batch::new("agent-a", "acme", 1);
    let mut e = Event::new(
        EntityKey::Device("r1".into()),
        EventKind::LoginFailure,
        Severity::Error,
        format!("!trap {}", "é".repeat(32 << 10)),
    );
    for i in 0..100 {
        e.attrs.insert(format!("k{i:03}"), "v\u{7}".into());
    }
    e.attrs.insert("bad\u{0}key".into(), "x".into());
    b.events.push(e);
    let cleaned = clean_batch(&mut b, &limits);
    assert!(accepted(&b));
    assert_eq!(b.events.len(), 1);
    assert!(b.events[0].message.len() <= limits.max_text_len);
    assert_eq!(b.events[0].attrs.len(), limits.max_event_attrs);
    assert_eq!(cleaned.attrs_dropped, 101 - limits.max_event_attrs);
}

#[test]
fn an_item_no_cleaning_can_save_is_dropped_alone() {
    let limits = Limits::default();
    let mut b = Batch::new("agent-a", "acme", 1);
    b.samples.push(sample("r1", 1.0));
    b.samples.push(sample("r1", f64::NAN));
    b.samples.push(sample("bad key", 1.0));
    b.samples.push(sample("r2", 2.0));
    b.inventory.addresses.push(AddressInfo {
        device: "r1".into(),
        interface: "ether1".into(),
        address: "not-an-address".into(),
    });
    b.inventory.addresses.push(AddressInfo {
        device: "r1".into(),
        interface: "ether1".into(),
        address: "10.255.0.1/30".into(),
    });
    let cleaned = clean_batch(&mut b, &limits);
    assert_eq!(cleaned.samples_dropped, 2);
    assert_eq!(cleaned.inventory_dropped, 1);
    assert_eq!(b.samples.len(), 2);
    assert!(accepted(&b));
}

#[test]
fn cutting_never_splits_a_character() {
    let limits = Limits {
        max_id_len: 10,
        ..Limits::default()
    };
    let mut s = "ééééééé".to_string(); // 14 bytes
    assert!(clean_name(&mut s, &limits));
    assert!(s.len() <= 10 && s.ends_with('…'), "{s:?}");
    let mut short = "ok".to_string();
    assert!(!clean_name(&mut short, &limits));
}

#[test]
fn pack_splits_within_every_limit_and_keeps_order() {
    let limits = Limits {
        max_bytes: 16 << 10,
        max_samples: 300,
        max_events: 5,
        ..Limits::default()
    };
    let mut b = Batch::new("agent-a", "acme", 0);
    for i in 0..1000 {
        b.samples.push(sample("r1", f64::from(i)));
    }
    for i in 0..12 {
        b.events.push(Event::new(
            EntityKey::Device("r1".into()),
            EventKind::Syslog,
            Severity::Info,
            format!("{i} {}", "x".repeat(2000)),
        ));
    }
    b.inventory.devices.push(device("r1", "CCR"));
    let mut seq = 41;
    let packed = pack(b, &limits, &mut seq).expect("pack");
    assert_eq!(packed.dropped, 0);
    let n = packed.batches.len();
    assert!(n > 1);
    assert_eq!(seq, 41 + n as u64);
    let mut values = Vec::new();
    let mut events = Vec::new();
    for (i, (batch, bytes)) in packed.batches.iter().enumerate() {
        assert_eq!(batch.seq, 41 + i as u64);
        assert_eq!(bytes, &to_bincode(batch).expect("encode"));
        assert_eq!(from_bincode::<Batch>(bytes, &limits).as_ref(), Ok(batch));
        values.extend(batch.samples.iter().map(|s| s.value));
        events.extend(batch.events.iter().map(|e| e.message.clone()));
    }
    assert_eq!(values, (0..1000).map(f64::from).collect::<Vec<_>>());
    assert_eq!(events.len(), 12);
    assert!(events.windows(2).all(|w| {
        let n = |s: &str| s.split(' ').next().and_then(|x| x.parse::<u32>().ok());
        n(&w[0]) < n(&w[1])
    }));
}

#[test]
fn an_item_too_big_for_any_batch_is_dropped_and_counted() {
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::default()
    };
    let mut b = Batch::new("agent-a", "acme", 0);
    b.samples.push(sample("r1", 1.0));
    b.events.push(Event::new(
        EntityKey::Device("r1".into()),
        EventKind::Syslog,
        Severity::Info,
        "y".repeat(4000),
    ));
    let mut seq = 1;
    let packed = pack(b, &limits, &mut seq).expect("pack");
    assert_eq!(packed.dropped, 1);
    assert_eq!(packed.batches.len(), 1);
    assert_eq!(packed.batches[0].0.samples.len(), 1);
}

fn router_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ".{0,10}".prop_map(|s| format!("{s}\u{0}{s}")),
        (0usize..6000).prop_map(|n| "N".repeat(n)),
        prop::collection::vec(any::<char>(), 0..300).prop_map(|v| v.into_iter().collect()),
    ]
}

proptest! {
    /// Whatever a router or its neighbours say, the cleaned batch is one the server takes.
    #[test]
    fn any_router_text_cleans_into_an_accepted_batch(
        name in router_text(),
        model in router_text(),
        itf in router_text(),
        identity in router_text(),
        platform in router_text(),
        message in router_text(),
        attr in router_text(),
    ) {
        let limits = Limits::default();
        let mut b = Batch::new("agent-a", "acme", 1);
        let mut d = device("r1", &model);
        d.name = name;
        b.inventory.devices.push(d);
        b.inventory.interfaces.push(InterfaceInfo {
            device: "r1".into(), name: itf.clone(), kind: attr.clone(), disabled: false,
        });
        let mut n = neighbor(identity);
        n.platform = platform;
        n.interface = itf.clone();
        b.inventory.neighbors.push(n);
        let mut e = Event::new(
            EntityKey::Interface { device: "r1".into(), name: itf },
            EventKind::LinkDown, Severity::Warning, message,
        );
        e.attrs.insert(attr.clone(), attr);
        b.events.push(e);
        clean_batch(&mut b, &limits);
        let mut seq = 1;
        for (batch, bytes) in pack(b, &limits, &mut seq).expect("pack").batches {
            prop_assert_eq!(from_bincode::<Batch>(&bytes, &limits), Ok(batch));
        }
    }
}
