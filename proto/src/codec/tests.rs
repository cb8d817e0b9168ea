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
    // The last two bytes are the length of the last vector (inventory neighbours,
    // empty) and the `cluster` option (none): replace them with a claim of 2^60 items.
    bin.pop();
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
        (
            "NUL in a model",
            Box::new(|b| b.inventory.devices[0].model = "CCR\u{0}".into()),
        ),
        (
            "escape in a message",
            Box::new(|b| b.events[0].message = "\u{1b}[2J".into()),
        ),
        (
            "4 KB neighbour identity",
            Box::new(|b| {
                b.inventory.neighbors.push(NeighborInfo {
                    device: "core1".into(),
                    interface: "ether1".into(),
                    identity: "X".repeat(4096),
                    address: String::new(),
                    mac: String::new(),
                    platform: String::new(),
                })
            }),
        ),
        (
            "address without prefix",
            Box::new(|b| {
                b.inventory.addresses.push(AddressInfo {
                    device: "core1".into(),
                    interface: "ether1".into(),
                    address: "10.0.0.1".into(),
                })
            }),
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
        "[^\\p{Cc}]{0,40}",
        proptest::collection::btree_map("[a-z]{1,8}", "[^\\p{Cc}]{0,16}", 0..4),
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

fn sample_report() -> crate::cluster_report::ClusterReport {
    use crate::cluster_report::*;
    ClusterReport {
        at_ms: TS,
        generation: 3,
        site: "pop1".into(),
        gossip_interval_ms: 250,
        phi_threshold: 8.0,
        replication: 1,
        members: vec![MemberView {
            agent: "agent-pop1".into(),
            generation: 3,
            site: "pop1".into(),
            version: "0.1.0".into(),
            capabilities: vec!["routeros".into(), "icmp".into()],
            state: MemberState::Live,
            heartbeat: 120,
            phi: Some(0.4),
            live_for_ms: 30_000,
            cert_expiry_s: Some(TS / 1000 + 86_400),
            routers: 4,
            probes: 2,
            buffer_bytes: 0,
            health: "ok".into(),
        }],
        owned: vec!["core1".into()],
        reach: vec![ReachCell {
            vantage: "agent-pop1".into(),
            target: "dns1".into(),
            loss_pct: 0.0,
            rtt_us: Some(1_200),
            at_s: TS / 1000,
        }],
    }
}

#[test]
fn cluster_report_round_trips_and_counts_as_items() {
    let mut b = sample_batch();
    b.cluster = Some(sample_report());
    let limits = Limits::default();
    let bin = to_bincode(&b).expect("encode");
    assert_eq!(from_bincode::<Batch>(&bin, &limits), Ok(b.clone()));
    let json = to_json(&b).expect("encode");
    assert_eq!(from_json::<Batch>(&json, &limits), Ok(b.clone()));
    assert_eq!(b.item_count(), 2 + 1 + 1 + 3);
}

#[test]
fn cluster_report_field_checks() {
    use crate::cluster_report::ClusterReport;
    let limits = Limits::default();
    type Mutation = Box<dyn Fn(&mut ClusterReport)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("replication 3", Box::new(|r| r.replication = 3)),
        ("interval 0", Box::new(|r| r.gossip_interval_ms = 0)),
        ("negative phi", Box::new(|r| r.members[0].phi = Some(-1.0))),
        ("loss over 100", Box::new(|r| r.reach[0].loss_pct = 101.0)),
        (
            "slash in target",
            Box::new(|r| r.reach[0].target = "a/b".into()),
        ),
        ("empty owned", Box::new(|r| r.owned[0].clear())),
        ("old verdict", Box::new(|r| r.reach[0].at_s = 10)),
        (
            "negative expiry",
            Box::new(|r| r.members[0].cert_expiry_s = Some(-1)),
        ),
        ("empty site", Box::new(|r| r.site.clear())),
        (
            "too many verdicts",
            Box::new(|r| {
                let cell = r.reach[0].clone();
                r.reach = vec![cell; 20_001];
            }),
        ),
    ];
    for (name, mutate) in cases {
        let mut report = sample_report();
        mutate(&mut report);
        let mut b = sample_batch();
        b.cluster = Some(report);
        let bin = to_bincode(&b).expect("encode");
        assert!(
            from_bincode::<Batch>(&bin, &limits).is_err(),
            "{name} accepted"
        );
    }
}

/// What a version-1 agent encoded (the layout before `cluster`), field for field.
#[derive(serde::Serialize)]
struct BatchV1Out<'a> {
    format_version: u16,
    agent_id: &'a str,
    tenant_id: &'a str,
    sent_at_ms: i64,
    seq: u64,
    samples: &'a [MetricSample],
    events: &'a [Event],
    inventory: &'a InventoryPatch,
}

#[test]
fn version_1_batches_buffered_before_an_upgrade_still_decode() {
    let b = sample_batch();
    let v1 = BatchV1Out {
        format_version: 1,
        agent_id: &b.agent_id,
        tenant_id: &b.tenant_id,
        sent_at_ms: b.sent_at_ms,
        seq: b.seq,
        samples: &b.samples,
        events: &b.events,
        inventory: &b.inventory,
    };
    let bin = to_bincode(&v1).expect("encode");
    let decoded = from_bincode::<Batch>(&bin, &Limits::default()).expect("v1 decodes");
    // Held, and encoded again, as the current version.
    assert_eq!(decoded.format_version, FORMAT_VERSION);
    assert_eq!(decoded.cluster, None);
    assert_eq!(decoded.samples, b.samples);
    assert_eq!(decoded.events, b.events);
    let again = to_bincode(&decoded).expect("encode");
    assert_eq!(
        from_bincode::<Batch>(&again, &Limits::default()),
        Ok(decoded.clone())
    );
    // JSON of version 1 has no `cluster` field either.
    let mut json: serde_json::Value =
        serde_json::from_slice(&to_json(&b).expect("encode")).expect("json");
    json["format_version"] = 1.into();
    json.as_object_mut().expect("object").remove("cluster");
    let bytes = serde_json::to_vec(&json).expect("encode");
    assert_eq!(
        from_json::<Batch>(&bytes, &Limits::default()).map(|d| d.format_version),
        Ok(FORMAT_VERSION)
    );
    // A version-2 layout claiming version 1 is refused, not misread.
    let mut wrong = b.clone();
    wrong.format_version = 1;
    let bin = to_bincode(&wrong).expect("encode");
    assert!(matches!(
        from_bincode::<Batch>(&bin, &Limits::default()),
        Err(DecodeError::Malformed(_))
    ));
}

/// The fuzzers' hand-written seeds must stay valid batches, or they seed nothing.
#[test]
fn fuzz_seeds_are_valid_batches() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/batch_json");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        let batch = from_json::<Batch>(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(batch.format_version, FORMAT_VERSION);
        seen += 1;
    }
    assert!(seen >= 3, "seeds missing from {}", dir.display());
}

#[test]
fn odd_entries_learnt_from_peers_are_dropped_before_sending_not_the_batch() {
    let limits = Limits::default();
    let mut report = sample_report();
    // A certificate that "never expires" is fine.
    report.members[0].cert_expiry_s = Some(253_402_300_799);
    let mut odd = report.members[0].clone();
    odd.agent = "agent pop2".into();
    report.members.push(odd);
    let mut cell = report.reach[0].clone();
    cell.at_s = 5;
    report.reach.push(cell);
    report.owned.push("a/b".into());
    assert_eq!(retain_valid(&mut report, &limits), 3);
    assert_eq!(report, {
        let mut r = sample_report();
        r.members[0].cert_expiry_s = Some(253_402_300_799);
        r
    });
    let mut b = sample_batch();
    b.cluster = Some(report);
    let bin = to_bincode(&b).expect("encode");
    assert_eq!(from_bincode::<Batch>(&bin, &limits), Ok(b));
}

#[test]
fn a_batch_number_reads_from_the_header_alone() {
    let mut b = sample_batch();
    b.seq = 123_456_789;
    b.events[0].message = "\u{0}".into();
    let bin = to_bincode(&b).expect("encode");
    assert!(from_bincode::<Batch>(&bin, &Limits::default()).is_err());
    assert_eq!(batch_seq(&bin), Some(123_456_789));
    assert_eq!(batch_seq(&bin[..3]), None);
}
