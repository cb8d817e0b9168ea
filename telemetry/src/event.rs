//! Internal events and the log of which were emitted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Something that happened inside a process: it logs and counts itself in one place.
///
/// Implement [`log_and_count`](InternalEvent::log_and_count); call
/// [`emit`](InternalEvent::emit), which also notes the event in the metrics' [`EventLog`].
pub trait InternalEvent: Sized {
    /// The metrics this event moves.
    type Metrics: AsRef<EventLog>;

    /// The event's name in the [`EventLog`]; by convention the type's name.
    const NAME: &'static str;

    /// Writes the log line and moves the metrics.
    fn log_and_count(&self, metrics: &Self::Metrics);

    /// The name noted in the [`EventLog`]: [`NAME`](InternalEvent::NAME), unless an enum
    /// of related events names each variant.
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn emit(self, metrics: &Self::Metrics) {
        self.log_and_count(metrics);
        metrics.as_ref().note(self.name());
    }
}

/// How many times each event was emitted since the process (or the test) began.
///
/// This is what tests read to check that something happened: it cannot drift from the
/// metrics because the same `emit` feeds both. One lock per event is cheap at the rates
/// events happen (per batch, per poll), never per sample.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl EventLog {
    fn note(&self, name: &'static str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(name).or_default() += 1;
    }

    /// Times the event `E` was emitted.
    pub fn count<E: InternalEvent>(&self) -> u64 {
        self.count_named(E::NAME)
    }

    /// Times an event of that name was emitted.
    pub fn count_named(&self, name: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(name).copied().unwrap_or(0)
    }

    /// Every event emitted so far with its count.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AsRef<EventLog> for EventLog {
    fn as_ref(&self) -> &EventLog {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dropped(u64);

    impl InternalEvent for Dropped {
        type Metrics = EventLog;
        const NAME: &'static str = "Dropped";
        fn log_and_count(&self, _: &EventLog) {
            assert!(self.0 > 0);
        }
    }

    #[test]
    fn emitted_events_are_counted_by_type_and_shared_between_clones() {
        let log = EventLog::default();
        let clone = log.clone();
        assert_eq!(log.count::<Dropped>(), 0);
        Dropped(1).emit(&clone);
        Dropped(2).emit(&log);
        assert_eq!(log.count::<Dropped>(), 2);
        assert_eq!(clone.count_named("Dropped"), 2);
        assert_eq!(log.count_named("Other"), 0);
        assert_eq!(log.snapshot().len(), 1);
    }
}
