//! The poller actor against simulated routers that fail: the circuit breaker opens and
//! closes, and a rebooted router is polled again over a new session.

use ispvm_agent::actors::poller::{Poller, PollerArgs};
use ispvm_agent::actors::uplink::UplinkMsg;
use ispvm_agent::config::{PollConfig, RouterConfig};
use ispvm_agent::internal_events::AgentMetrics;
use ispvm_agent::routeros::PollOutput;
use ispvm_agent::state::AgentState;
use ispvm_agent::testing::UplinkRecorder;
use ispvm_proto::{EventKind, MetricName};
use ispvm_sim::{Fault, Topology, VirtualIsp};
use ractor::{Actor, ActorRef};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Rig {
    isp: VirtualIsp,
    rx: mpsc::UnboundedReceiver<PollOutput>,
    poller: ActorRef<ispvm_agent::actors::poller::PollerMsg>,
    sink: ActorRef<UplinkMsg>,
    state: Arc<AgentState>,
}

async fn rig(router: &str) -> Rig {
    rig_with(router, 200).await
}

async fn rig_with(router: &str, interval_ms: u64) -> Rig {
    let mut topology = Topology::demo();
    topology.timeline.clear();
    // A real CCR takes about a minute to boot; the test does not need to wait that long.
    topology.settings.reboot_s = 2.0;
    let isp = VirtualIsp::start(topology, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("ISP");
    let r = isp.router(router).expect("router");
    let (sink, rx) = UplinkRecorder::spawn().await;
    let state = Arc::new(AgentState::default());
    let poll = PollConfig {
        interval_ms,
        jitter_ms: 0,
        connect_timeout_ms: 500,
        command_timeout_ms: 500,
        breaker_failures: 2,
        breaker_open_ms: 800,
        breaker_open_max_ms: 800,
        ..PollConfig::default()
    };
    let args = PollerArgs {
        router: RouterConfig {
            key: r.spec.id.clone(),
            address: r.addr,
            username: r.credentials.username.clone(),
            password: r.credentials.password.clone(),
            role: r.spec.role,
            site: Some(r.spec.site.clone()),
            tls: None,
            tags: Vec::new(),
            profile: None,
            collector: Default::default(),
            snmp: None,
        },
        site: r.spec.site.clone(),
        poll,
        uplink: sink.clone(),
        metrics: AgentMetrics::new(),
        state: state.clone(),
        limiter: Arc::new(tokio::sync::Semaphore::new(4)),
        source_address: None,
    };
    let (poller, _) = Actor::spawn(None, Poller, args).await.expect("poller");
    Rig {
        isp,
        rx,
        poller,
        sink,
        state,
    }
}

impl Rig {
    /// Reads poll results until one has an event of `kind` (returns every result read).
    async fn until_event(&mut self, kind: EventKind, within: Duration) -> Vec<PollOutput> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let out = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {kind:?} event within {within:?}; saw {:?}",
                        kinds(&seen)
                    )
                })
                .expect("sink open");
            let hit = out.events.iter().any(|e| e.kind == kind);
            seen.push(out);
            if hit {
                return seen;
            }
        }
    }

    async fn stop(self) {
        self.poller.stop(None);
        self.sink.stop(None);
        self.isp.shutdown().await;
    }
}

fn kinds(outputs: &[PollOutput]) -> Vec<EventKind> {
    outputs
        .iter()
        .flat_map(|o| o.events.iter().map(|e| e.kind))
        .collect()
}

fn device_up(out: &PollOutput) -> Option<f64> {
    out.samples
        .iter()
        .find(|s| s.metric == MetricName::DeviceUp)
        .map(|s| s.value)
}

#[tokio::test]
async fn breaker_opens_on_a_dead_management_plane_and_closes_when_it_returns() {
    let mut rig = rig("evr1-acc1").await;
    // Healthy first.
    let first = rig.rx.recv().await.expect("first poll");
    assert_eq!(device_up(&first), Some(1.0));

    let fault = rig
        .isp
        .apply(Fault::ManagementDown {
            router: "evr1-acc1".into(),
        })
        .expect("fault");
    let outage = rig
        .until_event(EventKind::MonitoringDegraded, Duration::from_secs(10))
        .await;
    let events = kinds(&outage);
    assert_eq!(
        events
            .iter()
            .filter(|k| **k == EventKind::ApiUnreachable)
            .count(),
        1,
        "{events:?}"
    );
    assert!(
        outage
            .iter()
            .rev()
            .take(1)
            .all(|o| device_up(o) == Some(0.0))
    );
    assert_eq!(rig.state.snapshot().routers["evr1-acc1"].breaker, "open");

    // While open, polls do not reach the router but keep reporting it unreachable.
    let throttled = tokio::time::timeout(Duration::from_millis(500), rig.rx.recv())
        .await
        .expect("a throttled poll result")
        .expect("sink open");
    assert_eq!(device_up(&throttled), Some(0.0));
    assert!(throttled.events.is_empty());

    rig.isp.clear(fault).expect("clear");
    let back = rig
        .until_event(EventKind::MonitoringRestored, Duration::from_secs(10))
        .await;
    let last = back.last().expect("result");
    assert!(
        last.events
            .iter()
            .any(|e| e.kind == EventKind::ApiRecovered)
    );
    assert_eq!(device_up(last), Some(1.0));
    assert_eq!(rig.state.snapshot().routers["evr1-acc1"].breaker, "closed");
    rig.stop().await;
}

#[tokio::test]
async fn a_rebooted_router_is_polled_again_over_a_new_session() {
    let mut rig = rig("cbr1-agg1").await;
    let first = rig.rx.recv().await.expect("first poll");
    assert_eq!(device_up(&first), Some(1.0));
    rig.isp
        .apply(Fault::Reboot {
            router: "cbr1-agg1".into(),
        })
        .expect("fault");
    let seen = rig
        .until_event(EventKind::Reboot, Duration::from_secs(15))
        .await;
    assert!(
        kinds(&seen).contains(&EventKind::ApiUnreachable),
        "the router was away while booting"
    );
    let last = seen.last().expect("result");
    assert_eq!(device_up(last), Some(1.0));
    let uptime = last
        .samples
        .iter()
        .find(|s| s.metric == MetricName::DeviceUptimeS)
        .map(|s| s.value)
        .expect("uptime");
    assert!(uptime < 60.0, "uptime restarted: {uptime}");
    rig.stop().await;
}

#[tokio::test]
async fn a_link_going_down_is_pushed_before_the_next_poll() {
    // Polls a minute apart: only the router's push can bring the change in seconds.
    let mut rig = rig_with("lis1-core1", 60_000).await;
    let first = rig.rx.recv().await.expect("first poll");
    assert_eq!(device_up(&first), Some(1.0));
    let link = rig
        .isp
        .topology()
        .links
        .iter()
        .find(|l| l.a.starts_with("lis1-core1:"))
        .expect("a link")
        .clone();
    let started = std::time::Instant::now();
    rig.isp
        .apply(Fault::LinkCut {
            a: link.a.clone(),
            b: link.b.clone(),
        })
        .expect("cut");
    let seen = rig
        .until_event(EventKind::LinkDown, Duration::from_secs(5))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let down = seen
        .iter()
        .flat_map(|o| &o.events)
        .find(|e| e.kind == EventKind::LinkDown)
        .expect("event");
    let ifname = link.a.split_once(':').expect("endpoint").1;
    assert_eq!(
        down.entity,
        ispvm_proto::EntityKey::Interface {
            device: "lis1-core1".into(),
            name: ifname.into()
        }
    );
    rig.stop().await;
}
