//! ProbeTargetActor: what every vantage measures toward one probe target.

use ispvm_proto::{MetricName, MetricSample};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeMap;

/// Newest loss, RTT and jitter per vantage (agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeView {
    pub target: String,
    /// `vantage → metric → (ts_ms, value)`.
    pub by_vantage: BTreeMap<String, BTreeMap<MetricName, (i64, f64)>>,
}

pub enum ProbeMsg {
    Observe {
        vantage: String,
        samples: Vec<MetricSample>,
    },
    View(RpcReplyPort<ProbeView>),
}

#[derive(Default)]
pub struct ProbeTargetActor;

impl Actor for ProbeTargetActor {
    type Msg = ProbeMsg;
    type State = ProbeView;
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<ProbeMsg>,
        target: String,
    ) -> Result<ProbeView, ActorProcessingErr> {
        Ok(ProbeView {
            target,
            by_vantage: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        state: &mut ProbeView,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Observe { vantage, samples } => {
                let slot = state.by_vantage.entry(vantage).or_default();
                for s in samples {
                    let e = slot.entry(s.metric).or_insert((s.ts_ms, s.value));
                    if s.ts_ms >= e.0 {
                        *e = (s.ts_ms, s.value);
                    }
                }
            }
            ProbeMsg::View(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        Ok(())
    }
}
