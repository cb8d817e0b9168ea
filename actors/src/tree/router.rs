//! RouterActor: the live state of one device (and its interfaces and peers).
//!
//! It holds the newest value of every series of the device, which interfaces run,
//! which BGP/OSPF peers are up and the device's recent events. On (re)start it loads the
//! newest stored values, so a crashed actor comes back with what the store knows.

use super::ports::{DomainStore, StoredPoint};
use crate::alert::{EntityKind, EntityRef};
use ispvm_proto::{Event, EventKind, MetricName, MetricSample};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Recent events kept per device.
const MAX_EVENTS: usize = 16;

/// What a RouterActor answers with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouterView {
    pub device: String,
    /// Newest `(ts_ms, value)` per (entity id, metric).
    pub latest: BTreeMap<(String, MetricName), (i64, f64)>,
    pub interfaces_running: BTreeMap<String, bool>,
    pub peers_up: BTreeMap<String, bool>,
    pub last_heard_ms: Option<i64>,
    pub recent_events: Vec<(i64, EventKind)>,
}

pub enum RouterMsg {
    Observe {
        samples: Vec<MetricSample>,
        events: Vec<Event>,
    },
    View(RpcReplyPort<RouterView>),
    /// Makes the actor fail, as a defect would (supervision tests).
    Crash,
}

pub struct RouterArgs<S> {
    pub tenant: String,
    pub device: String,
    pub store: Arc<S>,
    /// Where a state that could not be restored is reported.
    pub on_event: Option<super::EventHook>,
}

/// The actor; generic over the store it restores from.
pub struct RouterActor<S>(std::marker::PhantomData<fn() -> S>);

impl<S> Default for RouterActor<S> {
    fn default() -> Self {
        RouterActor(std::marker::PhantomData)
    }
}

pub struct RouterState {
    view: RouterView,
    events: VecDeque<(i64, EventKind)>,
}

impl RouterState {
    fn apply(&mut self, entity: &EntityRef, metric: MetricName, ts_ms: i64, value: f64) {
        let slot = self
            .view
            .latest
            .entry((entity.id.clone(), metric))
            .or_insert((ts_ms, value));
        if ts_ms >= slot.0 {
            *slot = (ts_ms, value);
        } else {
            return;
        }
        let tail = || entity.id.split_once('/').map(|(_, t)| t.to_owned());
        match (entity.kind, metric) {
            (EntityKind::Interface, MetricName::InterfaceRunning) => {
                if let Some(name) = tail() {
                    self.view.interfaces_running.insert(name, value >= 0.5);
                }
            }
            (EntityKind::Peer, MetricName::BgpSessionState | MetricName::OspfNeighborState) => {
                if let Some(peer) = tail() {
                    self.view.peers_up.insert(peer, value >= 0.5);
                }
            }
            _ => {}
        }
        self.view.last_heard_ms = Some(self.view.last_heard_ms.map_or(ts_ms, |t| t.max(ts_ms)));
    }
}

impl<S: DomainStore> Actor for RouterActor<S> {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs<S>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        args: RouterArgs<S>,
    ) -> Result<RouterState, ActorProcessingErr> {
        let mut state = RouterState {
            view: RouterView {
                device: args.device.clone(),
                ..RouterView::default()
            },
            events: VecDeque::new(),
        };
        match args.store.device_latest(&args.tenant, &args.device).await {
            Ok(points) => {
                for StoredPoint {
                    entity,
                    metric,
                    ts_ms,
                    value,
                } in points
                {
                    state.apply(&entity, metric, ts_ms, value);
                }
            }
            // Starting empty is better than not starting: live samples fill it in.
            Err(e) => super::TreeEvent::StateNotRestored {
                tenant: args.tenant.clone(),
                kind: super::EntityActor::Router,
                entity: args.device.clone(),
                error: e.to_string(),
            }
            .report(args.on_event.as_ref()),
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RouterMsg::Observe { samples, events } => {
                for s in &samples {
                    state.apply(&EntityRef::from(&s.entity), s.metric, s.ts_ms, s.value);
                }
                for e in events {
                    state.events.push_back((e.ts_ms, e.kind));
                    while state.events.len() > MAX_EVENTS {
                        state.events.pop_front();
                    }
                }
            }
            RouterMsg::View(reply) => {
                let mut view = state.view.clone();
                view.recent_events = state.events.iter().copied().collect();
                let _ = reply.send(view);
            }
            RouterMsg::Crash => return Err("router actor crash requested".into()),
        }
        Ok(())
    }
}
