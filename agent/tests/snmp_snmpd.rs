//! The SNMP collector against a real net-snmp `snmpd` started per test (see
//! `snmp_common`): SNMPv2c and SNMPv3, canonical metrics for the loopback interface,
//! wrong credentials, absent MIBs, walk limits, outages and agent restarts.

mod snmp_common;

use ispvm_agent::snmp::{
    AuthProtocol, PollOutput, SnmpCollector, SnmpConfig, SnmpError, SnmpLimits, V3Credentials,
};
use ispvm_proto::{DeviceRole, EntityKey, EventKind, MetricName};
use snmp_common::{
    COMMUNITY, MT_BOARD, MT_DHCP_LEASES, MT_TEMPERATURE_DC, MT_VERSION, NO_IFX_COMMUNITY, Snmpd,
    SnmpdOptions, V3_AUTH_KEY, V3_AUTH_ONLY_USER, V3_PRIV_KEY, V3_SHA256_USER, V3_USER,
    loopback_traffic,
};
use std::time::{Duration, Instant};

const DEVICE: &str = "lab1";

fn quick() -> SnmpLimits {
    SnmpLimits {
        timeout_ms: 400,
        retries: 1,
        ..SnmpLimits::default()
    }
}

fn collector(config: SnmpConfig) -> SnmpCollector {
    SnmpCollector::new(
        DEVICE,
        "pop1",
        DeviceRole::Edge,
        config.with_limits(quick()),
    )
    .expect("valid configuration")
}

fn v2c(snmpd: &Snmpd, community: &str) -> SnmpCollector {
    collector(SnmpConfig::v2c(snmpd.address(), community))
}

fn device() -> EntityKey {
    EntityKey::Device(DEVICE.into())
}

fn lo() -> EntityKey {
    EntityKey::Interface {
        device: DEVICE.into(),
        name: "lo".into(),
    }
}

fn value(out: &PollOutput, entity: &EntityKey, metric: MetricName) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| &s.entity == entity && s.metric == metric)
        .map(|s| s.value)
}

fn events(out: &PollOutput, kind: EventKind) -> usize {
    out.events.iter().filter(|e| e.kind == kind).count()
}

/// Polls until `lo` shows traffic in both directions (net-snmp caches its interface
/// counters for a few seconds), sending loopback traffic before each poll.
async fn poll_until_lo_rates(c: &mut SnmpCollector) -> PollOutput {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        loopback_traffic(500);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let out = c.poll().await.expect("poll");
        let rx = value(&out, &lo(), MetricName::InterfaceRxBps).unwrap_or(0.0);
        let tx = value(&out, &lo(), MetricName::InterfaceTxBps).unwrap_or(0.0);
        if rx > 0.0 && tx > 0.0 {
            return out;
        }
        assert!(Instant::now() < deadline, "no traffic seen on lo: {out:#?}");
    }
}

/// Every interface a sample names is an interface of the inventory, by name: the ifIndex
/// never shows.
fn assert_interfaces_by_name(out: &PollOutput, inventory: &[String]) {
    for s in &out.samples {
        if let EntityKey::Interface { device, name } = &s.entity {
            assert_eq!(device, DEVICE);
            assert!(inventory.contains(name), "{name} is not in {inventory:?}");
        }
    }
}

#[tokio::test]
async fn v2c_poll_gives_canonical_metrics_for_lo() {
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let mut c = v2c(&snmpd, COMMUNITY);
    let first = c.poll().await.expect("first poll");
    assert_eq!(value(&first, &device(), MetricName::DeviceUp), Some(1.0));
    assert!(value(&first, &device(), MetricName::DeviceUptimeS).is_some());
    let mem = value(&first, &device(), MetricName::DeviceMemUsedPct).expect("memory");
    assert!(mem > 0.0 && mem <= 100.0, "{mem}");
    assert_eq!(
        value(&first, &lo(), MetricName::InterfaceRunning),
        Some(1.0)
    );
    // No rates from a single reading.
    assert_eq!(value(&first, &lo(), MetricName::InterfaceRxBps), None);
    // No MikroTik MIB on this agent: nothing invented.
    assert_eq!(
        value(&first, &device(), MetricName::DeviceTemperatureC),
        None
    );
    assert_eq!(value(&first, &device(), MetricName::DhcpLeases), None);
    assert!(first.events.is_empty(), "{:?}", first.events);

    // Inventory on the first poll: the device, its interfaces by name, lo's address.
    let inv = &first.inventory;
    assert_eq!(inv.devices.len(), 1);
    assert_eq!(inv.devices[0].key, DEVICE);
    assert!(!inv.devices[0].name.is_empty());
    assert!(
        inv.devices[0].model.starts_with("Linux"),
        "{:?}",
        inv.devices[0]
    );
    assert_eq!(inv.devices[0].mgmt_addr, snmpd.address());
    let lo_info = inv
        .interfaces
        .iter()
        .find(|i| i.name == "lo")
        .expect("lo in the inventory");
    assert_eq!(lo_info.kind, "loopback");
    assert!(!lo_info.disabled);
    assert!(
        inv.addresses
            .iter()
            .any(|a| a.interface == "lo" && a.address == "127.0.0.1/8"),
        "{:?}",
        inv.addresses
    );
    let names: Vec<String> = inv.interfaces.iter().map(|i| i.name.clone()).collect();
    assert_interfaces_by_name(&first, &names);

    // Rates after traffic between polls, from the 64-bit counters.
    let later = poll_until_lo_rates(&mut c).await;
    let rx = value(&later, &lo(), MetricName::InterfaceRxBps).expect("rx");
    let tx = value(&later, &lo(), MetricName::InterfaceTxBps).expect("tx");
    assert!(rx > 0.0 && tx > 0.0, "rx {rx} tx {tx}");
    assert_eq!(value(&later, &lo(), MetricName::InterfaceErrors), Some(0.0));
    assert_eq!(value(&later, &lo(), MetricName::InterfaceDrops), Some(0.0));
    let uptime = value(&later, &device(), MetricName::DeviceUptimeS).expect("uptime");
    assert!(uptime >= 1.0, "{uptime}");
    // Inventory is not repeated while nothing changed.
    assert!(later.inventory.is_empty());
    assert_interfaces_by_name(&later, &names);
    assert!(!c.last_poll_stats().truncated);
}

#[tokio::test]
async fn v2c_cpu_load_once_snmpd_has_a_minute_of_history() {
    // net-snmp reports hrProcessorLoad as the load over the last minute, so the column is
    // empty for the first minute of the agent's life; the collector simply emits no
    // `device.cpu_pct` until it is there.
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let mut c = v2c(&snmpd, COMMUNITY);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = c.poll().await.expect("poll");
        if let Some(cpu) = value(&out, &device(), MetricName::DeviceCpuPct) {
            assert!((0.0..=100.0).contains(&cpu), "{cpu}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no hrProcessorLoad after 2 minutes"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn falls_back_to_if_descr_and_32_bit_counters_without_if_x_table() {
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let mut c = v2c(&snmpd, NO_IFX_COMMUNITY);
    let first = c.poll().await.expect("first poll");
    // ifName is hidden: lo is named by its ifDescr, which is also "lo" on Linux.
    assert_eq!(
        value(&first, &lo(), MetricName::InterfaceRunning),
        Some(1.0)
    );
    let later = poll_until_lo_rates(&mut c).await;
    assert!(value(&later, &lo(), MetricName::InterfaceRxBps).is_some_and(|r| r > 0.0));
}

#[tokio::test]
async fn v3_auth_priv_sha_aes_works_and_survives_an_agent_restart() {
    let mut snmpd = Snmpd::start(SnmpdOptions::default());
    let creds = V3Credentials::auth_priv(V3_USER, V3_AUTH_KEY, V3_PRIV_KEY);
    let mut c = collector(SnmpConfig::v3(snmpd.address(), creds));
    let first = c.poll().await.expect("v3 poll");
    assert_eq!(value(&first, &device(), MetricName::DeviceUp), Some(1.0));
    assert_eq!(
        value(&first, &lo(), MetricName::InterfaceRunning),
        Some(1.0)
    );
    assert!(value(&first, &device(), MetricName::DeviceMemUsedPct).is_some());
    assert!(first.inventory.interfaces.iter().any(|i| i.name == "lo"));
    assert_eq!(c.last_poll_stats().discoveries, 1);

    // The second poll reuses the engine and keys learned by the first: no discovery.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let second = c.poll().await.expect("second v3 poll");
    assert_eq!(value(&second, &device(), MetricName::DeviceUp), Some(1.0));
    assert_eq!(c.last_poll_stats().discoveries, 0);

    // After a restart the engine boots again; the collector resynchronises by itself
    // and sees the restart as a reboot.
    snmpd.restart();
    let third = c.poll().await.expect("v3 poll after a restart");
    assert_eq!(value(&third, &device(), MetricName::DeviceUp), Some(1.0));
    assert_eq!(events(&third, EventKind::Reboot), 1, "{:?}", third.events);
    // Same engine, one more boot: resynchronised from the agent's report, no discovery.
    assert_eq!(c.last_poll_stats().discoveries, 0);

    // A replaced device answers as another engine: the kept keys are useless, and the
    // collector discovers the new engine within the same poll.
    snmpd.restart_as_new_engine("ispvm-replaced");
    let fourth = c.poll().await.expect("v3 poll of a new engine");
    assert_eq!(value(&fourth, &device(), MetricName::DeviceUp), Some(1.0));
    assert_eq!(c.last_poll_stats().discoveries, 1);
}

#[tokio::test]
async fn v3_sha256_auth_priv_and_auth_no_priv_work() {
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let sha256 = V3Credentials::auth_priv(V3_SHA256_USER, V3_AUTH_KEY, V3_PRIV_KEY)
        .with_auth_protocol(AuthProtocol::Sha256);
    let out = collector(SnmpConfig::v3(snmpd.address(), sha256))
        .poll()
        .await
        .expect("SHA-256 poll");
    assert_eq!(value(&out, &lo(), MetricName::InterfaceRunning), Some(1.0));

    let auth_only = V3Credentials::auth_no_priv(V3_AUTH_ONLY_USER, V3_AUTH_KEY);
    let out = collector(SnmpConfig::v3(snmpd.address(), auth_only))
        .poll()
        .await
        .expect("authNoPriv poll");
    assert_eq!(value(&out, &lo(), MetricName::InterfaceRunning), Some(1.0));
}

#[tokio::test]
async fn wrong_community_is_a_clear_timeout() {
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let mut c = v2c(&snmpd, "not-the-community");
    let started = Instant::now();
    let err = c.poll().await.expect_err("wrong community");
    assert!(
        matches!(err, SnmpError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(err.to_string().contains("wrong community"), "{err}");
    // Two attempts of 400 ms, not the 30 s poll deadline.
    assert!(started.elapsed() < Duration::from_secs(3));
    let out = c.unreachable(&err);
    assert_eq!(value(&out, &device(), MetricName::DeviceUp), Some(0.0));
    assert_eq!(events(&out, EventKind::ApiUnreachable), 1);
    assert!(
        out.events[0].message.contains("SNMP"),
        "{}",
        out.events[0].message
    );
}

#[tokio::test]
async fn wrong_v3_credentials_fail_clearly() {
    let snmpd = Snmpd::start(SnmpdOptions::default());

    let wrong_auth = V3Credentials::auth_priv(V3_USER, "not-the-auth-key", V3_PRIV_KEY);
    let err = collector(SnmpConfig::v3(snmpd.address(), wrong_auth))
        .poll()
        .await
        .expect_err("wrong auth key");
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("authentication key"), "{err}");

    let unknown = V3Credentials::auth_priv("nobody", V3_AUTH_KEY, V3_PRIV_KEY);
    let err = collector(SnmpConfig::v3(snmpd.address(), unknown))
        .poll()
        .await
        .expect_err("unknown user");
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("unknown user"), "{err}");

    // The agent drops what it cannot decrypt: a wrong privacy key is a timeout that says
    // so.
    let wrong_priv = V3Credentials::auth_priv(V3_USER, V3_AUTH_KEY, "not-the-priv-key");
    let err = collector(SnmpConfig::v3(snmpd.address(), wrong_priv))
        .poll()
        .await
        .expect_err("wrong privacy key");
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("privacy key"), "{err}");

    // A user the agent only allows authNoPriv cannot be used with a privacy key either.
    let too_much = V3Credentials::auth_priv(V3_AUTH_ONLY_USER, V3_AUTH_KEY, V3_PRIV_KEY);
    let err = collector(SnmpConfig::v3(snmpd.address(), too_much))
        .poll()
        .await
        .expect_err("security level the user lacks");
    assert!(err.is_auth() || err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn mikrotik_mib_is_read_where_present() {
    let snmpd = Snmpd::start(SnmpdOptions { mikrotik: true });
    let mut c = v2c(&snmpd, COMMUNITY);
    let out = c.poll().await.expect("poll");
    assert_eq!(
        value(&out, &device(), MetricName::DeviceTemperatureC),
        Some(MT_TEMPERATURE_DC as f64 / 10.0)
    );
    assert_eq!(
        value(&out, &device(), MetricName::DhcpLeases),
        Some(MT_DHCP_LEASES as f64)
    );
    let info = &out.inventory.devices[0];
    assert_eq!(info.model, MT_BOARD);
    assert_eq!(info.os_version, MT_VERSION);
}

#[tokio::test]
async fn walk_limits_are_honoured() {
    let snmpd = Snmpd::start(SnmpdOptions::default());
    let limits = SnmpLimits {
        max_repetitions: 1,
        max_oids_per_walk: 5,
        ..quick()
    };
    let mut c = SnmpCollector::new(
        DEVICE,
        "pop1",
        DeviceRole::Edge,
        SnmpConfig::v2c(snmpd.address(), COMMUNITY).with_limits(limits),
    )
    .expect("valid configuration");
    let out = c.poll().await.expect("a truncated walk is still a poll");
    assert_eq!(value(&out, &device(), MetricName::DeviceUp), Some(1.0));
    let stats = c.last_poll_stats();
    assert!(stats.truncated);
    // One GET, and walk requests of one repetition each, bounded by the budget.
    assert!(stats.requests <= 1 + 5 + 2, "{stats:?}");
}

#[tokio::test]
async fn an_outage_is_one_event_and_a_restart_is_a_reboot() {
    let mut snmpd = Snmpd::start(SnmpdOptions::default());
    let mut c = v2c(&snmpd, COMMUNITY);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = c.poll().await.expect("poll");
    assert!(value(&before, &device(), MetricName::DeviceUptimeS).is_some_and(|u| u >= 1.0));

    snmpd.stop();
    let err = c.poll().await.expect_err("agent stopped");
    let down = c.unreachable(&err);
    assert_eq!(value(&down, &device(), MetricName::DeviceUp), Some(0.0));
    assert_eq!(events(&down, EventKind::ApiUnreachable), 1, "{err}");
    let err = c.poll().await.expect_err("agent still stopped");
    assert_eq!(events(&c.unreachable(&err), EventKind::ApiUnreachable), 0);

    snmpd.restart();
    let back = c.poll().await.expect("poll after the restart");
    assert_eq!(value(&back, &device(), MetricName::DeviceUp), Some(1.0));
    assert_eq!(events(&back, EventKind::ApiRecovered), 1);
    assert_eq!(events(&back, EventKind::Reboot), 1, "{:?}", back.events);
    // Counters were forgotten with the reboot: no rate across it.
    assert_eq!(value(&back, &lo(), MetricName::InterfaceRxBps), None);
}

/// A router configured for SNMP is polled by the same poller actor as a RouterOS one:
/// same canonical metrics, same breaker.
#[tokio::test]
async fn a_poller_collects_over_snmp_when_configured_so() {
    use ispvm_agent::actors::poller::{Poller, PollerArgs};
    use ispvm_agent::config::{CollectorKind, PollConfig, RouterConfig};
    use ractor::Actor;
    use std::sync::Arc;

    let snmpd = Snmpd::start(SnmpdOptions::default());
    let (sink, mut rx) = ispvm_agent::testing::UplinkRecorder::spawn().await;
    let router = RouterConfig {
        key: "snmp-host".into(),
        address: "127.0.0.1:8728".parse().expect("addr"),
        username: String::new(),
        password: String::new(),
        role: ispvm_proto::DeviceRole::Access,
        site: Some("lab".into()),
        tls: None,
        tags: Vec::new(),
        profile: None,
        collector: CollectorKind::Snmp,
        snmp: Some(SnmpConfig::v2c(snmpd.address(), COMMUNITY)),
    };
    let args = PollerArgs {
        router,
        site: "lab".into(),
        poll: PollConfig {
            interval_ms: 500,
            jitter_ms: 0,
            ..PollConfig::default()
        },
        uplink: sink.clone(),
        metrics: ispvm_agent::internal_events::AgentMetrics::new(),
        state: Arc::new(ispvm_agent::state::AgentState::default()),
        limiter: Arc::new(tokio::sync::Semaphore::new(2)),
        source_address: None,
    };
    let (poller, _) = Actor::spawn(None, Poller, args).await.expect("poller");
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("a poll within 10 s")
        .expect("sink open");
    let up = out
        .samples
        .iter()
        .find(|s| s.metric == MetricName::DeviceUp)
        .map(|s| s.value);
    assert_eq!(up, Some(1.0), "{out:?}");
    assert!(
        out.samples
            .iter()
            .any(|s| s.metric == MetricName::DeviceUptimeS)
    );
    poller.stop(None);
    sink.stop(None);
}
