use super::*;
use crate::envelope::*;
use crate::metric::MetricName;
use proptest::prelude::*;
use std::collections::BTreeMap;
use uuid::Uuid;

const TS: i64 = 1_790_000_000_000;

fn sample_batch() -> Batch {
    let mut b = Batch::new("agent-pop1", "acme", 7);
    b.sent_at_ms = TS;
    b.samples.push(MetricSample {
        entity: EntityKey::Device("core1".into()),
        metric: MetricName::DeviceCpuPct,
        ts_ms: TS,
        value: 12.5,
    });
    b.samples.push(MetricSample {
        entity: EntityKey::Interface {
            device: "core1".into(),
            name: "sfp-sfpplus1 uplink".into(),
        },
        metric: MetricName::InterfaceRxBps,
        ts_ms: TS,
        value: 9.4e9,
    });
    let mut attrs = BTreeMap::new();
    attrs.insert("previous".into(), "established".into());
    b.events.push(Event {
        id: Uuid::from_u128(42),
        ts_ms: TS,
        entity: EntityKey::Peer {
            device: "edge1".into(),
            peer: "203.0.113.1".into(),
        },
        kind: EventKind::BgpStateChange,
        severity: Severity::Warning,
        message: "bgp session to 203.0.113.1 went idle".into(),
        attrs,
    });
    b.inventory.devices.push(DeviceInfo {
        key: "core1".into(),
        name: "CORE-1".into(),
        site: "pop1".into(),
        role: DeviceRole::Core,
        mgmt_addr: "127.0.0.1:18728".into(),
        model: "CCR2216-1G-12XS-2XQ".into(),
        os_version: "7.16.1".into(),
    });
    b
}

#[test]
fn bincode_and_json_round_trip() {
    let b = sample_batch();
    let limits = Limits::default();
    let bin = to_bincode(&b).expect("encode");
    assert_eq!(from_bincode::<Batch>(&bin, &limits), Ok(b.clone()));
    let json = to_json(&b).expect("encode");
    assert_eq!(from_json::<Batch>(&json, &limits), Ok(b));
}

#[test]
fn json_uses_stable_names() {
    let json = String::from_utf8(to_json(&sample_batch()).expect("encode")).expect("utf8");
    assert!(json.contains("\"metric\":\"device.cpu_pct\""), "{json}");
    assert!(json.contains("\"kind\":\"bgp_state_change\""), "{json}");
    assert!(json.contains("\"role\":\"core\""), "{json}");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let limits = Limits {
        max_bytes: 16,
        ..Limits::default()
    };
    let bin = to_bincode(&sample_batch()).expect("encode");
    assert!(matches!(
        from_bincode::<Batch>(&bin, &limits),
        Err(DecodeError::TooLarge { limit: 16, .. })
    ));
    let json = to_json(&sample_batch()).expect("encode");
    assert!(matches!(
        from_json::<Batch>(&json, &limits),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn too_many_items_is_refused() {
    let limits = Limits {
        max_samples: 1,
        ..Limits::default()
    };
    let bin = to_bincode(&sample_batch()).expect("encode");
    let err = from_bincode::<Batch>(&bin, &limits).expect_err("must refuse");
    assert!(
        matches!(
            err,
            DecodeError::TooManyItems {
                what: "samples",
                count: 2,
                limit: 1
            }
        ),
        "{err}"
    );
    assert_eq!(err.reject_code(), RejectCode::TooManyItems);
}

#[test]
fn garbage_and_truncation_are_malformed() {
    let limits = Limits::default();
    assert!(matches!(
        from_bincode::<Batch>(b"\xff\xff\xff\xff\xff\xff", &limits),
        Err(DecodeError::Malformed(_))
    ));
    let bin = to_bincode(&sample_batch()).expect("encode");
    for cut in [0, 1, bin.len() / 2, bin.len() - 1] {
        assert!(
            matches!(
                from_bincode::<Batch>(&bin[..cut], &limits),
                Err(DecodeError::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
    let mut trailing = bin.clone();
    trailing.push(0);
    assert!(matches!(
        from_bincode::<Batch>(&trailing, &limits),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        from_json::<Batch>(b"{\"format_version\":1}", &limits),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn forged_length_prefix_does_not_allocate() {
    // A valid batch whose last vector claims 2^60 items: bincode must refuse the claim
    // instead of reserving memory for it.
    let mut b = sample_batch();
    b.samples.clear();
    b.events.clear();
    b.inventory = InventoryPatch::default();
    let mut bin = to_bincode(&b).expect("encode");
    // The last byte is the length of the last vector (inventory neighbours, empty):
    // replace it with a claim of 2^60 items.
    bin.pop();
    bin.push(0xfd); // varint marker for u64
    bin.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        from_bincode::<Batch>(&bin, &Limits::default()),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn field_checks() {
    let limits = Limits::default();
    type Mutation = Box<dyn Fn(&mut Batch)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("version", Box::new(|b| b.format_version = 99)),
        ("empty agent", Box::new(|b| b.agent_id.clear())),
        ("slash in tenant", Box::new(|b| b.tenant_id = "a/b".into())),
        ("seq 0", Box::new(|b| b.seq = 0)),
        ("nan", Box::new(|b| b.samples[0].value = f64::NAN)),
        ("old ts", Box::new(|b| b.samples[0].ts_ms = 5)),
        (
            "control char",
            Box::new(|b| {
                b.samples[1].entity = EntityKey::Interface {
                    device: "core1".into(),
                    name: "eth\n1".into(),
                }
            }),
        ),
        (
            "long message",
            Box::new(|b| b.events[0].message = "x".repeat(5000)),
        ),
    ];
    for (name, mutate) in cases {
        let mut b = sample_batch();
        mutate(&mut b);
        let bin = to_bincode(&b).expect("encode");
        assert!(
            from_bincode::<Batch>(&bin, &limits).is_err(),
            "{name} accepted"
        );
        let json = to_json(&b).map(|j| from_json::<Batch>(&j, &limits));
        // NaN has no JSON form; every other case must also be refused from JSON.
        if let Ok(decoded) = json {
            assert!(decoded.is_err(), "{name} accepted from JSON");
        }
    }
}

#[test]
fn ack_round_trip() {
    let ack = Ack::rejected(3, RejectCode::Overloaded, "slow down");
    let bin = to_bincode(&ack).expect("encode");
    assert_eq!(from_bincode::<Ack>(&bin, &Limits::default()), Ok(ack));
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:@-]{1,24}"
}

fn entity() -> impl Strategy<Value = EntityKey> {
    prop_oneof![
        id().prop_map(EntityKey::Device),
        (id(), "[ -~]{1,20}").prop_map(|(device, name)| EntityKey::Interface { device, name }),
        id().prop_map(EntityKey::ProbeTarget),
        (id(), "[0-9.]{1,15}").prop_map(|(device, peer)| EntityKey::Peer { device, peer }),
    ]
}

fn ts() -> impl Strategy<Value = i64> {
    946_684_800_000i64..7_258_118_400_000
}

fn sample() -> impl Strategy<Value = MetricSample> {
    (
        entity(),
        0..MetricName::ALL.len(),
        ts(),
        proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
    )
        .prop_map(|(entity, m, ts_ms, value)| MetricSample {
            entity,
            metric: MetricName::ALL[m],
            ts_ms,
            value,
        })
}

fn event() -> impl Strategy<Value = Event> {
    (
        entity(),
        any::<u128>(),
        ts(),
        ".{0,40}",
        proptest::collection::btree_map("[a-z]{1,8}", ".{0,16}", 0..4),
    )
        .prop_map(|(entity, id, ts_ms, message, attrs)| Event {
            id: Uuid::from_u128(id),
            ts_ms,
            entity,
            kind: EventKind::Syslog,
            severity: Severity::Notice,
            message,
            attrs,
        })
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        id(),
        id(),
        1u64..,
        ts(),
        proptest::collection::vec(sample(), 0..20),
        proptest::collection::vec(event(), 0..5),
    )
        .prop_map(|(agent, tenant, seq, sent, samples, events)| {
            let mut b = Batch::new(agent, tenant, seq);
            b.sent_at_ms = sent;
            b.samples = samples;
            b.events = events;
            b
        })
}

proptest! {
    #[test]
    fn any_valid_batch_round_trips(b in batch()) {
        let limits = Limits::default();
        let bin = to_bincode(&b).expect("encode");
        prop_assert_eq!(from_bincode::<Batch>(&bin, &limits), Ok(b.clone()));
        let json = to_json(&b).expect("encode");
        prop_assert_eq!(from_json::<Batch>(&json, &limits), Ok(b));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let limits = Limits::default();
        let _ = from_bincode::<Batch>(&bytes, &limits);
        let _ = from_json::<Batch>(&bytes, &limits);
    }
}
