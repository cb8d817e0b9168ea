//! The prober actor: one per probe target. Every `interval_ms` it runs one round (ICMP
//! echoes through the agent's shared pinger, or TCP connects) and sends the round's
//! `ping.*` samples for `EntityKey::ProbeTarget(key)` to the uplink.
//!
//! Like the poller, rounds are driven by a timer task that queues a round only when none
//! is waiting, so a round that overruns (a slow resolver) skips a tick instead of piling
//! rounds up. Traceroutes run in their own task so the schedule of rounds is not held up
//! by a diagnostic that may take many timeouts.

use super::ticker::Ticker;
use super::uplink::UplinkMsg;
use crate::internal_events::InternalEvent;
use crate::internal_events::probe::{
    ProberRunning, RoundDropped, RoundFinished, TracerouteFinished,
};
use crate::probe::{
    Hop, IcmpPinger, ProbeError, ProbeMetrics, ProbeTarget, ProbeTargetConfig, RoundReport,
    resolve, traceroute,
};
use crate::routeros::PollOutput;
use ispvm_proto::time::now_ms;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum ProberMsg {
    /// Run a round now (sent by the timer).
    Probe,
    /// The uplink was restarted: send samples to the new one.
    SetUplink(ActorRef<UplinkMsg>),
    /// The last round's report, `None` before the first round.
    LastRound(RpcReplyPort<Option<RoundReport>>),
    /// Trace the path to the target: at most `max_hops` hops, `timeout` per hop.
    Traceroute {
        max_hops: u8,
        timeout: Duration,
        reply: RpcReplyPort<Result<Vec<Hop>, ProbeError>>,
    },
}

/// What the supervisor passes to start a prober.
pub struct ProberArgs {
    pub target: ProbeTargetConfig,
    /// The agent's shared ICMP sockets (one `IcmpPinger` per agent).
    pub pinger: Arc<IcmpPinger>,
    pub uplink: ActorRef<UplinkMsg>,
    pub metrics: Arc<ProbeMetrics>,
    /// Largest random delay before the first round, spreading targets over the
    /// interval; the interval itself is a good value, 0 starts at once.
    pub start_jitter_ms: u64,
}

pub struct ProberState {
    target: ProbeTarget,
    pinger: Arc<IcmpPinger>,
    uplink: ActorRef<UplinkMsg>,
    metrics: Arc<ProbeMetrics>,
    last: Option<RoundReport>,
    ticker: Ticker,
}

pub struct Prober;

impl Actor for Prober {
    type Msg = ProberMsg;
    type State = ProberState;
    type Arguments = ProberArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let target = ProbeTarget::new(args.target, &args.pinger)?;
        let delay = Duration::from_millis(rand::rng().random_range(0..=args.start_jitter_ms));
        let ticker = Ticker::start(myself, target.config().interval(), delay, || {
            ProberMsg::Probe
        });
        ProberRunning {
            target: target.key(),
            running: true,
        }
        .emit(&args.metrics);
        Ok(ProberState {
            target,
            pinger: args.pinger,
            uplink: args.uplink,
            metrics: args.metrics,
            last: None,
            ticker,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProberMsg::Probe => {
                state.ticker.started();
                state.round().await;
            }
            ProberMsg::SetUplink(uplink) => state.uplink = uplink,
            ProberMsg::LastRound(reply) => {
                let _ = reply.send(state.last.clone());
            }
            ProberMsg::Traceroute {
                max_hops,
                timeout,
                reply,
            } => {
                let key = state.target.key().to_owned();
                let address = state.target.config().address.clone();
                let metrics = state.metrics.clone();
                tokio::spawn(async move {
                    let result = match resolve(&address, timeout).await {
                        Ok(ip) => traceroute(ip, max_hops, timeout).await,
                        Err(e) => Err(e),
                    };
                    TracerouteFinished {
                        target: &key,
                        hops: result.as_ref().map(Vec::len),
                    }
                    .emit(&metrics);
                    let _ = reply.send(result);
                });
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        ProberRunning {
            target: state.target.key(),
            running: false,
        }
        .emit(&state.metrics);
        Ok(())
    }
}

impl ProberState {
    async fn round(&mut self) {
        // Samples carry the start of the round: it follows the schedule, so consecutive
        // rounds never share a timestamp even when one of them ran long.
        let ts_ms = now_ms();
        let started = Instant::now();
        let result = self.target.round(&self.pinger).await;
        let took = started.elapsed();
        let kind = self.target.config().kind.as_str();
        RoundFinished {
            target: self.target.key(),
            kind,
            took,
            outcome: result.as_ref().map(|(_, stats)| stats),
        }
        .emit(&self.metrics);
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let report = match result {
            Ok((ip, stats)) => {
                let samples = self.target.samples(ts_ms, &stats);
                if !samples.is_empty() {
                    let out = PollOutput {
                        samples,
                        ..PollOutput::default()
                    };
                    if self.uplink.cast(UplinkMsg::Collected(out)).is_err() {
                        RoundDropped {
                            target: self.target.key(),
                        }
                        .emit(&self.metrics);
                    }
                }
                RoundReport {
                    ts_ms,
                    address: Some(ip),
                    stats: Some(stats),
                    error: None,
                    took_ms,
                }
            }
            // Nothing was measured (no socket, no address): no samples, so the server sees
            // the series go stale rather than a loss the network never had.
            Err(e) => RoundReport {
                ts_ms,
                address: None,
                stats: None,
                error: Some(e.to_string()),
                took_ms,
            },
        };
        self.last = Some(report);
    }
}
