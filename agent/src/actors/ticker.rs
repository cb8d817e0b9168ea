//! The timer that drives a periodic actor (a poller, a prober).
//!
//! It waits a random start delay, then queues one message per interval, but never a
//! second while the first is still waiting: a slow router or target never accumulates a
//! backlog of work (and never gets a burst of it when it recovers).

use ractor::{ActorRef, Message};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// A running timer; the actor clears the flag when it starts the queued work and aborts
/// the task when it stops.
pub struct Ticker {
    queued: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Ticker {
    /// Starts sending `make()` to `actor` every `interval` after `delay`.
    pub fn start<M, F>(actor: ActorRef<M>, interval: Duration, delay: Duration, make: F) -> Self
    where
        M: Message,
        F: Fn() -> M + Send + 'static,
    {
        let queued = Arc::new(AtomicBool::new(false));
        let flag = queued.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if flag.swap(true, Ordering::AcqRel) {
                    continue; // the previous tick's work has not started yet
                }
                if actor.cast(make()).is_err() {
                    break;
                }
            }
        });
        Ticker { queued, task }
    }

    /// Called by the actor when it starts the work of a tick.
    pub fn started(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
