//! The poller actor: one per router, holding its single API session and collection state.
//!
//! Polls are driven by a timer task that only queues a poll when none is waiting, so a
//! slow router never accumulates a backlog of polls (and never gets a burst of them when
//! it recovers).

use super::source::Source;
use super::ticker::Ticker;
use super::uplink::UplinkMsg;
use crate::breaker::{Breaker, Transition};
use crate::config::{PollConfig, RouterConfig};
use crate::internal_events::{
    AgentMetrics, BreakerChanged, InternalEvent, PollDropped, PollFinished,
};
use crate::routeros::RouterOsClient;
use crate::state::AgentState;
use ispvm_proto::routeros::Command;
use ispvm_proto::time::now_ms;
use ispvm_proto::{EntityKey, Event, EventKind, Severity};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub enum PollerMsg {
    Poll,
    /// The router pushed an interface change (`/interface/listen`).
    InterfacePushed(ispvm_proto::routeros::Reply),
    /// The uplink was restarted: send data to the new one.
    SetUplink(ActorRef<UplinkMsg>),
}

pub struct PollerArgs {
    pub router: RouterConfig,
    pub site: String,
    pub poll: PollConfig,
    pub uplink: ActorRef<UplinkMsg>,
    pub metrics: Arc<AgentMetrics>,
    pub state: Arc<AgentState>,
    /// The agent-wide cap on polls running at once.
    pub limiter: Arc<Semaphore>,
    /// The agent's `source_address`: where its connections to the router leave from.
    pub source_address: Option<std::net::IpAddr>,
}

pub struct PollerState {
    source: Source,
    breaker: Breaker,
    limiter: Arc<Semaphore>,
    uplink: ActorRef<UplinkMsg>,
    metrics: Arc<AgentMetrics>,
    state: Arc<AgentState>,
    ticker: Ticker,
    /// Forwards `/interface/listen` pushes of the current session.
    listen: Option<tokio::task::JoinHandle<()>>,
}

pub struct Poller;

impl Actor for Poller {
    type Msg = PollerMsg;
    type State = PollerState;
    type Arguments = PollerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let r = &args.router;
        let schedule = args.poll.schedule_for(r)?;
        let site = r.site.clone().unwrap_or(args.site);
        let source = Source::new(r, site, &args.poll, &schedule, args.source_address)?;
        let jitter = Duration::from_millis(rand::rng().random_range(0..=args.poll.jitter_ms));
        let ticker = Ticker::start(myself, schedule.interval, jitter, || PollerMsg::Poll);
        args.state
            .update_router(&r.key, |s| s.address = r.address.to_string());
        Ok(PollerState {
            source,
            breaker: Breaker::new(args.poll.breaker()),
            limiter: args.limiter,
            uplink: args.uplink,
            metrics: args.metrics,
            state: args.state,
            ticker,
            listen: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PollerMsg::SetUplink(uplink) => state.uplink = uplink,
            PollerMsg::Poll => {
                state.ticker.started();
                state.poll(&myself).await;
            }
            PollerMsg::InterfacePushed(item) => {
                let out = state.source.interface_pushed(&item);
                if !out.samples.is_empty() {
                    let _ = state.uplink.cast(UplinkMsg::Collected(out));
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(l) = state.listen.take() {
            l.abort();
        }
        Ok(())
    }
}

impl PollerState {
    /// Reports a breaker change: telemetry, and an event for the NOC when monitoring of
    /// the router degrades or recovers.
    fn breaker_changed(&self, transition: Transition, output: &mut crate::routeros::PollOutput) {
        let router = self.source.device();
        BreakerChanged { router, transition }.emit(&self.metrics);
        let entity = EntityKey::Device(router.to_owned());
        match transition {
            Transition::Opened { failures, retry_in } => {
                let mut e = Event::new(
                    entity,
                    EventKind::MonitoringDegraded,
                    Severity::Warning,
                    format!(
                        "polling of {router} throttled after {failures} failed polls; next probe in {} s",
                        retry_in.as_secs()
                    ),
                );
                e.attrs.insert("failures".into(), failures.to_string());
                e.attrs
                    .insert("retry_in_s".into(), retry_in.as_secs().to_string());
                output.events.push(e);
            }
            Transition::Closed => output.events.push(Event::new(
                entity,
                EventKind::MonitoringRestored,
                Severity::Notice,
                format!("polling of {router} back to its schedule"),
            )),
            Transition::Reopened { .. } => {}
        }
    }

    /// Subscribes to interface changes on a new session, where the router supports it;
    /// a router that does not simply stays on polling.
    async fn subscribe(&mut self, myself: &ActorRef<PollerMsg>, client: &RouterOsClient) {
        if let Some(old) = self.listen.take() {
            old.abort();
        }
        let listen =
            Command::new("/interface/listen").with_proplist(["name", "running", "disabled"]);
        let mut listener = match client.listen(&listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(router = %self.source.device(), error = %e, "no interface push updates");
                return;
            }
        };
        let myself = myself.clone();
        self.listen = Some(tokio::spawn(async move {
            while let Some(next) = listener.next().await {
                let Ok(item) = next else { break };
                if myself.cast(PollerMsg::InterfacePushed(item)).is_err() {
                    break;
                }
            }
        }));
    }

    async fn poll(&mut self, myself: &ActorRef<PollerMsg>) {
        if !self.breaker.allows(Instant::now()) {
            let output = self.source.still_unreachable();
            if self.uplink.cast(UplinkMsg::Collected(output)).is_err() {
                PollDropped {
                    router: self.source.device(),
                }
                .emit(&self.metrics);
            }
            return;
        }
        // The agent-wide cap: waiting here is cheaper than piling work on the PoP.
        let Ok(_slot) = self.limiter.clone().acquire_owned().await else {
            return;
        };
        let started = Instant::now();
        let result = match self.source.connect().await {
            Ok(opened) => {
                if let Some(client) = opened {
                    self.subscribe(myself, &client).await;
                }
                self.source.poll().await
            }
            Err(e) => Err(e),
        };
        let ts = now_ms();
        let key = self.source.device().to_owned();
        let output = match result {
            Ok(out) => {
                PollFinished {
                    router: &key,
                    took: started.elapsed(),
                    error: None,
                }
                .emit(&self.metrics);
                let n = out.samples.len();
                self.state.update_router(&key, |s| {
                    s.last_poll_ms = Some(ts);
                    s.last_ok_ms = Some(ts);
                    s.last_error = None;
                    s.consecutive_failures = 0;
                    s.samples_last_poll = n;
                    s.breaker = "closed";
                });
                let mut out = out;
                if let Some(t) = self.breaker.record_success() {
                    self.breaker_changed(t, &mut out);
                }
                out
            }
            Err(e) => {
                PollFinished {
                    router: &key,
                    took: started.elapsed(),
                    error: Some(&e),
                }
                .emit(&self.metrics);
                self.state.update_router(&key, |s| {
                    s.last_poll_ms = Some(ts);
                    s.last_error = Some(e.to_string());
                    s.consecutive_failures += 1;
                    s.samples_last_poll = 0;
                });
                let mut out = self.source.unreachable(&e);
                let jitter = rand::rng().random_range(0.0..=1.0);
                if let Some(t) = self.breaker.record_failure(Instant::now(), jitter) {
                    self.breaker_changed(t, &mut out);
                }
                let breaker = self.breaker.state().as_str();
                self.state.update_router(&key, |s| s.breaker = breaker);
                out
            }
        };
        if self.uplink.cast(UplinkMsg::Collected(output)).is_err() {
            PollDropped { router: &key }.emit(&self.metrics);
        }
    }
}
