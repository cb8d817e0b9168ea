//! LinkActor: one link's state from the running state of the interfaces at its ends.
//!
//! A link is up when both ends run, down when both ends report not running, and
//! "one side down" when they disagree (a unidirectional fault or a stale report) — a
//! distinction the correlator uses as evidence.

use super::ports::LinkSpec;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    Up,
    Down,
    OneSideDown,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    pub spec: LinkSpec,
    pub a_running: Option<(i64, bool)>,
    pub b_running: Option<(i64, bool)>,
    pub status: LinkStatus,
}

pub enum LinkMsg {
    /// `interface.running` of one end: `(device, interface, ts_ms, running)`.
    End {
        device: String,
        interface: String,
        ts_ms: i64,
        running: bool,
    },
    View(RpcReplyPort<LinkView>),
}

#[derive(Default)]
pub struct LinkActor;

fn status(a: Option<(i64, bool)>, b: Option<(i64, bool)>) -> LinkStatus {
    match (a.map(|x| x.1), b.map(|x| x.1)) {
        (Some(true), Some(true)) => LinkStatus::Up,
        (Some(false), Some(false)) => LinkStatus::Down,
        (Some(true), Some(false)) | (Some(false), Some(true)) => LinkStatus::OneSideDown,
        // One end unheard (its router may be down): what the heard end says.
        (Some(false), None) | (None, Some(false)) => LinkStatus::Down,
        (Some(true), None) | (None, Some(true)) => LinkStatus::Up,
        (None, None) => LinkStatus::Unknown,
    }
}

impl Actor for LinkActor {
    type Msg = LinkMsg;
    type State = LinkView;
    type Arguments = LinkSpec;

    async fn pre_start(
        &self,
        _myself: ActorRef<LinkMsg>,
        spec: LinkSpec,
    ) -> Result<LinkView, ActorProcessingErr> {
        Ok(LinkView {
            spec,
            a_running: None,
            b_running: None,
            status: LinkStatus::Unknown,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<LinkMsg>,
        msg: LinkMsg,
        state: &mut LinkView,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LinkMsg::End {
                device,
                interface,
                ts_ms,
                running,
            } => {
                let end = (device, interface);
                let slot = if end == state.spec.a {
                    &mut state.a_running
                } else if end == state.spec.b {
                    &mut state.b_running
                } else {
                    return Ok(());
                };
                if slot.is_none_or(|(t, _)| ts_ms >= t) {
                    *slot = Some((ts_ms, running));
                }
                state.status = status(state.a_running, state.b_running);
            }
            LinkMsg::View(reply) => {
                let _ = reply.send(state.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_both_ends() {
        assert_eq!(status(Some((1, true)), Some((1, true))), LinkStatus::Up);
        assert_eq!(
            status(Some((1, false)), Some((1, true))),
            LinkStatus::OneSideDown
        );
        assert_eq!(status(None, Some((1, false))), LinkStatus::Down);
        assert_eq!(status(None, None), LinkStatus::Unknown);
    }
}
