//! Repeated-message suppression.
//!
//! The first occurrence of a message from a source passes and opens a window (30 s by
//! default); repeats of the same message from the same source within the window are
//! suppressed and counted. When the window closes with repeats, one summary event says
//! "repeated N times" (kind `syslog`, the first event's entity, severity and attributes,
//! plus `repeated`, `first_seen_ms`, `last_seen_ms`, `summary_of` and `summary_kind`).
//!
//! State changes keep their order: a different state of the same subject (`link:ether1`
//! goes down, up, down) closes the open window of the previous state at once, so its
//! summary comes before the new state and a flapping link is never reported as stuck in
//! its first state.
//!
//! Memory is bounded: messages are compared by a keyed 64-bit hash, and at most
//! `max_entries` windows are open; beyond that, new messages pass untracked.

use ispvm_proto::{Event, EventKind};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Whether a message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Suppressed,
}

struct Window {
    opened: Instant,
    repeats: u64,
    last_seen_ms: i64,
    state_key: Option<u64>,
    /// The event that opened the window, model of the summary.
    first: Event,
}

pub struct Dedup {
    window: Duration,
    max_entries: usize,
    hasher: RandomState,
    windows: HashMap<(IpAddr, u64), Window>,
    /// The window of the latest state of each subject.
    states: HashMap<(IpAddr, u64), u64>,
}

impl Dedup {
    /// A zero window disables suppression.
    pub fn new(window: Duration, max_entries: usize) -> Dedup {
        Dedup {
            window,
            max_entries,
            hasher: RandomState::new(),
            windows: HashMap::new(),
            states: HashMap::new(),
        }
    }

    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Judges one event from `source`; summaries of windows this closes are appended to
    /// `out` (before the caller pushes the event itself, keeping order).
    pub fn observe(
        &mut self,
        source: IpAddr,
        text: &str,
        state_key: Option<&str>,
        event: &Event,
        now: Instant,
        out: &mut Vec<Event>,
    ) -> Verdict {
        if self.window.is_zero() {
            return Verdict::Pass;
        }
        let key = (source, self.hasher.hash_one(text));
        let state = state_key.map(|s| (source, self.hasher.hash_one(s)));
        // A window of this message that has run out closes now.
        if self
            .windows
            .get(&key)
            .is_some_and(|w| now.duration_since(w.opened) >= self.window)
        {
            self.close(key, out);
        }
        // A new state of the subject closes the previous state's window.
        if let Some(s) = state
            && let Some(&previous) = self.states.get(&s)
            && previous != key.1
        {
            self.close((source, previous), out);
        }
        if let Some(w) = self.windows.get_mut(&key) {
            w.repeats += 1;
            w.last_seen_ms = event.ts_ms;
            return Verdict::Suppressed;
        }
        if self.windows.len() < self.max_entries {
            self.windows.insert(
                key,
                Window {
                    opened: now,
                    repeats: 0,
                    last_seen_ms: event.ts_ms,
                    state_key: state.map(|s| s.1),
                    first: event.clone(),
                },
            );
            if let Some(s) = state {
                self.states.insert(s, key.1);
            }
        }
        Verdict::Pass
    }

    /// Closes the windows that have run out, appending their summaries.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Event>) {
        let window = self.window;
        self.close_where(|w| now.duration_since(w.opened) >= window, out);
    }

    /// Closes every window (shutdown).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        self.close_where(|_| true, out);
    }

    /// Closes the windows `done` selects, oldest first.
    fn close_where(&mut self, done: impl Fn(&Window) -> bool, out: &mut Vec<Event>) {
        let mut keys: Vec<((IpAddr, u64), Instant)> = self
            .windows
            .iter()
            .filter(|(_, w)| done(w))
            .map(|(k, w)| (*k, w.opened))
            .collect();
        keys.sort_by_key(|(_, opened)| *opened);
        for (k, _) in keys {
            self.close(k, out);
        }
    }

    fn close(&mut self, key: (IpAddr, u64), out: &mut Vec<Event>) {
        let Some(w) = self.windows.remove(&key) else {
            return;
        };
        if let Some(s) = w.state_key
            && self.states.get(&(key.0, s)) == Some(&key.1)
        {
            self.states.remove(&(key.0, s));
        }
        if w.repeats > 0 {
            out.push(summary(&w));
        }
    }
}

fn summary(w: &Window) -> Event {
    let mut e = w.first.clone();
    e.id = Uuid::now_v7();
    e.kind = EventKind::Syslog;
    e.ts_ms = w.last_seen_ms;
    let times = if w.repeats == 1 { "time" } else { "times" };
    let mut message = w.first.message.clone();
    let suffix = format!(" (repeated {} {times})", w.repeats);
    // Keep the summary within the bound the first message had.
    let room = 4096usize.saturating_sub(suffix.len());
    if message.len() > room {
        let mut cut = room;
        while cut > 0 && !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message.push_str(&suffix);
    e.message = message;
    e.attrs.insert("repeated".into(), w.repeats.to_string());
    e.attrs
        .insert("first_seen_ms".into(), w.first.ts_ms.to_string());
    e.attrs
        .insert("last_seen_ms".into(), w.last_seen_ms.to_string());
    e.attrs.insert("summary_of".into(), w.first.id.to_string());
    e.attrs
        .insert("summary_kind".into(), w.first.kind.as_str().to_owned());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispvm_proto::{EntityKey, Severity};

    fn ev(msg: &str, ts: i64) -> Event {
        let mut e = Event::new(
            EntityKey::Device("r1".into()),
            EventKind::Syslog,
            Severity::Info,
            msg.into(),
        );
        e.ts_ms = ts;
        e
    }

    const SRC: &str = "192.0.2.1";

    fn src() -> IpAddr {
        SRC.parse().expect("ip")
    }

    #[test]
    fn repeats_within_the_window_are_summarised() {
        let mut d = Dedup::new(Duration::from_secs(30), 100);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let first = ev("fan failed", 1000);
        assert_eq!(
            d.observe(src(), "fan failed", None, &first, t0, &mut out),
            Verdict::Pass
        );
        for i in 1..=4 {
            let v = d.observe(
                src(),
                "fan failed",
                None,
                &ev("fan failed", 1000 + i),
                t0 + Duration::from_secs(i as u64),
                &mut out,
            );
            assert_eq!(v, Verdict::Suppressed);
        }
        // Another source is another message.
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert_eq!(
            d.observe(other, "fan failed", None, &first, t0, &mut out),
            Verdict::Pass
        );
        d.expire(t0 + Duration::from_secs(29), &mut out);
        assert!(out.is_empty());
        d.expire(t0 + Duration::from_secs(30), &mut out);
        assert_eq!(out.len(), 1);
        let s = &out[0];
        assert_eq!(s.message, "fan failed (repeated 4 times)");
        assert_eq!(s.attrs.get("repeated").map(String::as_str), Some("4"));
        assert_eq!(s.attrs.get("summary_of"), Some(&first.id.to_string()));
        assert_eq!(
            s.attrs.get("last_seen_ms").map(String::as_str),
            Some("1004")
        );
        assert_eq!(s.ts_ms, 1004);
        assert_ne!(s.id, first.id);
        // After the window the message passes again.
        out.clear();
        assert_eq!(
            d.observe(
                src(),
                "fan failed",
                None,
                &first,
                t0 + Duration::from_secs(31),
                &mut out
            ),
            Verdict::Pass
        );
        assert_eq!(d.open_windows(), 1);
    }

    #[test]
    fn a_window_without_repeats_closes_silently() {
        let mut d = Dedup::new(Duration::from_secs(1), 100);
        let t0 = Instant::now();
        let mut out = Vec::new();
        d.observe(src(), "x", None, &ev("x", 1), t0, &mut out);
        d.expire(t0 + Duration::from_secs(2), &mut out);
        assert!(out.is_empty());
        assert_eq!(d.open_windows(), 0);
    }

    #[test]
    fn state_changes_keep_their_order() {
        let mut d = Dedup::new(Duration::from_secs(30), 100);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let k = Some("link:ether1");
        let down = ev("ether1 link down", 1);
        let up = ev("ether1 link up", 2);
        assert_eq!(
            d.observe(src(), "down", k, &down, t0, &mut out),
            Verdict::Pass
        );
        assert_eq!(
            d.observe(src(), "down", k, &down, t0, &mut out),
            Verdict::Suppressed
        );
        // Up closes the down window first: its summary precedes the up event.
        assert_eq!(d.observe(src(), "up", k, &up, t0, &mut out), Verdict::Pass);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attrs.get("repeated").map(String::as_str), Some("1"));
        assert!(out[0].message.ends_with("(repeated 1 time)"));
        // Down again passes: the link really went down again.
        assert_eq!(
            d.observe(src(), "down", k, &down, t0, &mut out),
            Verdict::Pass
        );
        assert_eq!(d.observe(src(), "up", k, &up, t0, &mut out), Verdict::Pass);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bounded_and_disabled() {
        let mut d = Dedup::new(Duration::from_secs(30), 2);
        let t0 = Instant::now();
        let mut out = Vec::new();
        for m in ["a", "b", "c"] {
            d.observe(src(), m, None, &ev(m, 1), t0, &mut out);
        }
        assert_eq!(d.open_windows(), 2);
        // "c" is untracked: its repeat passes too.
        assert_eq!(
            d.observe(src(), "c", None, &ev("c", 1), t0, &mut out),
            Verdict::Pass
        );

        let mut off = Dedup::new(Duration::ZERO, 10);
        assert_eq!(
            off.observe(src(), "a", None, &ev("a", 1), t0, &mut out),
            Verdict::Pass
        );
        assert_eq!(
            off.observe(src(), "a", None, &ev("a", 1), t0, &mut out),
            Verdict::Pass
        );
    }

    #[test]
    fn flush_emits_pending_summaries() {
        let mut d = Dedup::new(Duration::from_secs(30), 10);
        let t0 = Instant::now();
        let mut out = Vec::new();
        d.observe(src(), "a", None, &ev("a", 1), t0, &mut out);
        d.observe(src(), "a", None, &ev("a", 2), t0, &mut out);
        d.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(d.open_windows(), 0);
    }
}
