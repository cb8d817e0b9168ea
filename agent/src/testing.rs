//! Test helpers for the agent's own tests and those of crates that drive it (feature
//! `testsuite`; never in a production build).

use crate::actors::uplink::UplinkMsg;
use crate::routeros::PollOutput;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

/// Stands in for the uplink: hands every collected output to the test, and each single
/// event as an output holding just that event; answers a drain with "nothing left".
pub struct UplinkRecorder;

impl UplinkRecorder {
    /// A running recorder and what it records.
    pub async fn spawn() -> (ActorRef<UplinkMsg>, mpsc::UnboundedReceiver<PollOutput>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (actor, _) = Actor::spawn(None, UplinkRecorder, tx)
            .await
            .expect("the uplink recorder starts");
        (actor, rx)
    }
}

impl Actor for UplinkRecorder {
    type Msg = UplinkMsg;
    type State = mpsc::UnboundedSender<PollOutput>;
    type Arguments = mpsc::UnboundedSender<PollOutput>;

    async fn pre_start(
        &self,
        _: ActorRef<UplinkMsg>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle(
        &self,
        _: ActorRef<UplinkMsg>,
        msg: UplinkMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UplinkMsg::Collected(out) => {
                let _ = tx.send(out);
            }
            UplinkMsg::Event(e) => {
                let _ = tx.send(PollOutput {
                    events: vec![e],
                    ..PollOutput::default()
                });
            }
            UplinkMsg::Drain(reply) => {
                let _ = reply.send(0);
            }
            UplinkMsg::Flush | UplinkMsg::Cluster(_) => {}
        }
        Ok(())
    }
}
