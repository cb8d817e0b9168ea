//! Memory per RouterActor: spawns N actors, gives each the live state of a typical
//! access router (device health, four interfaces, two BGP peers) and divides the growth
//! of the process's resident memory by N.
//!
//! `cargo run --release -p ispvm-sim --bin bench-router-actors -- [--routers N]`

use ispvm_actors::alert::{
    AlertChange, AlertState, EntityAttrs, EntityRef, MaintenanceWindow, Rule,
};
use ispvm_actors::tree::router::{RouterActor, RouterArgs, RouterMsg};
use ispvm_actors::tree::{
    DisplayNames, DomainStore, LinkSpec, PortError, StoredIncidents, StoredPoint,
};
use ispvm_proto::{EntityKey, MetricName, MetricSample};
use ractor::Actor;
use std::sync::Arc;

/// A store with nothing in it: the actors start empty and are filled by samples.
struct Empty;

impl DomainStore for Empty {
    async fn tenants(&self) -> Result<Vec<String>, PortError> {
        Ok(Vec::new())
    }
    async fn rules(&self, _: &str) -> Result<Vec<Rule>, PortError> {
        Ok(Vec::new())
    }
    async fn alert_states(
        &self,
        _: &str,
    ) -> Result<Vec<(String, EntityRef, AlertState)>, PortError> {
        Ok(Vec::new())
    }
    async fn save_alert_changes(&self, _: &str, _: &[AlertChange]) -> Result<(), PortError> {
        Ok(())
    }
    async fn entities(&self, _: &str) -> Result<Vec<(EntityRef, EntityAttrs)>, PortError> {
        Ok(Vec::new())
    }
    async fn maintenance_windows(&self, _: &str) -> Result<Vec<MaintenanceWindow>, PortError> {
        Ok(Vec::new())
    }
    async fn links(&self, _: &str) -> Result<Vec<LinkSpec>, PortError> {
        Ok(Vec::new())
    }
    async fn recent_points(&self, _: &str, _: i64) -> Result<Vec<StoredPoint>, PortError> {
        Ok(Vec::new())
    }
    async fn device_latest(&self, _: &str, _: &str) -> Result<Vec<StoredPoint>, PortError> {
        Ok(Vec::new())
    }
    async fn save_incident_action(
        &self,
        _: &str,
        _: &ispvm_actors::incident::Incident,
        _: &ispvm_actors::incident::ActionBy,
        _: &ispvm_actors::incident::IncidentAction,
    ) -> Result<(), PortError> {
        Ok(())
    }
    async fn display_names(&self, _: &str) -> Result<DisplayNames, PortError> {
        Ok(DisplayNames::default())
    }
    async fn incidents(&self, _: &str, _: i64) -> Result<StoredIncidents, PortError> {
        Ok(StoredIncidents::default())
    }
    async fn save_incidents(
        &self,
        _: &str,
        _: &[ispvm_actors::incident::Incident],
        _: &[ispvm_actors::incident::IncidentChange],
    ) -> Result<(), PortError> {
        Ok(())
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn samples(dev: &str) -> Vec<MetricSample> {
    let mut out = Vec::new();
    let mut push = |entity: EntityKey, metric: MetricName, value: f64| {
        out.push(MetricSample {
            entity,
            metric,
            ts_ms: 1_700_000_000_000,
            value,
        })
    };
    for m in [
        MetricName::DeviceUp,
        MetricName::DeviceCpuPct,
        MetricName::DeviceMemUsedPct,
        MetricName::DeviceUptimeS,
        MetricName::DeviceTemperatureC,
    ] {
        push(EntityKey::Device(dev.into()), m, 1.0);
    }
    for i in 0..4 {
        for m in [
            MetricName::InterfaceRunning,
            MetricName::InterfaceRxBps,
            MetricName::InterfaceTxBps,
            MetricName::InterfaceErrors,
        ] {
            let itf = EntityKey::Interface {
                device: dev.into(),
                name: format!("ether{i}"),
            };
            push(itf, m, 1.0);
        }
    }
    for p in 0..2 {
        for m in [MetricName::BgpSessionState, MetricName::BgpPrefixesIn] {
            let peer = EntityKey::Peer {
                device: dev.into(),
                peer: format!("10.0.{p}.1"),
            };
            push(peer, m, 1.0);
        }
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--routers")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let store = Arc::new(Empty);
    let before = rss_bytes();
    let mut actors = Vec::with_capacity(n);
    for r in 0..n {
        let device = format!("r{r}");
        let args = RouterArgs {
            tenant: "bench".into(),
            device: device.clone(),
            store: Arc::clone(&store),
            on_event: None,
        };
        let (actor, handle) = Actor::spawn(None, RouterActor::<Empty>::default(), args).await?;
        actor.cast(RouterMsg::Observe {
            samples: samples(&device),
            events: Vec::new(),
        })?;
        actors.push((actor, handle));
    }
    // Every actor has applied its samples once it answers a view.
    for (a, _) in &actors {
        ractor::call!(a, RouterMsg::View)?;
    }
    let after = rss_bytes();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{n} RouterActors with 30 live series each: resident memory +{:.1} MiB, {:.0} bytes per actor",
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0),
        per
    );
    for (a, h) in actors {
        a.stop(None);
        let _ = h.await;
    }
    Ok(())
}
