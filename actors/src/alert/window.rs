//! Recent samples of one series, kept for windowed evaluation.
//!
//! The engine keeps only what its longest window needs, in a bounded ring per series,
//! so evaluation reads memory and never the database on the hot path.

use super::rule::{Threshold, Window, WindowFunc};
use std::collections::VecDeque;

/// Most samples one series keeps. A 10 s series over a one-hour window needs 360; more
/// than this means a source reports far faster than any rule can use.
pub const MAX_SAMPLES_PER_SERIES: usize = 1_024;

/// One observation: when, what, and from which vantage (agent index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub value: f64,
    pub vantage: u16,
}

/// A series' recent points, oldest first.
#[derive(Debug, Clone, Default)]
pub struct SeriesWindow {
    points: VecDeque<Point>,
}

/// What a window aggregation saw, for the alert's explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub value: f64,
    pub samples: usize,
    pub from_ms: i64,
    pub to_ms: i64,
}

impl SeriesWindow {
    /// Adds a point, keeping time order (a late point is inserted in place; a point with
    /// the same time and vantage replaces the old one, as a replayed batch would).
    pub fn push(&mut self, p: Point) {
        match self.points.back() {
            Some(last) if last.ts_ms >= p.ts_ms => {
                let at = self.points.partition_point(|q| q.ts_ms < p.ts_ms);
                let mut i = at;
                while i < self.points.len() && self.points[i].ts_ms == p.ts_ms {
                    if self.points[i].vantage == p.vantage {
                        self.points[i] = p;
                        return;
                    }
                    i += 1;
                }
                self.points.insert(i, p);
            }
            _ => self.points.push_back(p),
        }
        while self.points.len() > MAX_SAMPLES_PER_SERIES {
            self.points.pop_front();
        }
    }

    /// Drops points older than `horizon_ms`.
    pub fn prune(&mut self, horizon_ms: i64) {
        while self.points.front().is_some_and(|p| p.ts_ms < horizon_ms) {
            self.points.pop_front();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// The newest point.
    pub fn last(&self) -> Option<Point> {
        self.points.back().copied()
    }

    /// Points within `[now - duration, now]`, oldest first.
    pub fn within(&self, now_ms: i64, duration_ms: i64) -> impl Iterator<Item = &Point> {
        let from = now_ms.saturating_sub(duration_ms);
        let start = self.points.partition_point(|p| p.ts_ms < from);
        self.points
            .range(start..)
            .filter(move |p| p.ts_ms <= now_ms)
    }

    /// The newest point of each vantage within the window.
    pub fn latest_per_vantage(&self, now_ms: i64, duration_ms: i64) -> Vec<Point> {
        let mut out: Vec<Point> = Vec::new();
        for p in self.within(now_ms, duration_ms) {
            match out.iter_mut().find(|q| q.vantage == p.vantage) {
                Some(q) => *q = *p,
                None => out.push(*p),
            }
        }
        out
    }

    /// Aggregates the window. `failing` says whether one sample fails (used by the
    /// counting functions). `None` when the window holds no sample.
    pub fn aggregate(
        &self,
        window: &Window,
        now_ms: i64,
        failing: impl Fn(f64) -> bool,
    ) -> Option<Aggregate> {
        let mut n = 0usize;
        let (mut sum, mut min, mut max) = (0.0f64, f64::INFINITY, f64::NEG_INFINITY);
        let (mut failed, mut run) = (0usize, 0usize);
        let (mut from_ms, mut to_ms, mut last) = (i64::MAX, i64::MIN, 0.0);
        for p in self.within(now_ms, window.duration_ms()) {
            n += 1;
            sum += p.value;
            min = min.min(p.value);
            max = max.max(p.value);
            if failing(p.value) {
                failed += 1;
                run += 1;
            } else {
                run = 0;
            }
            from_ms = from_ms.min(p.ts_ms);
            to_ms = to_ms.max(p.ts_ms);
            last = p.value;
        }
        if n == 0 {
            return None;
        }
        let value = match window.func {
            WindowFunc::Last => last,
            WindowFunc::Avg => sum / n as f64,
            WindowFunc::Max => max,
            WindowFunc::Min => min,
            WindowFunc::PercentFailing => failed as f64 * 100.0 / n as f64,
            WindowFunc::ConsecutiveFailures => run as f64,
        };
        Some(Aggregate {
            value,
            samples: n,
            from_ms,
            to_ms,
        })
    }
}

/// Whether a window breaches a level: counting functions compare their count with the
/// window's minimum; value functions compare the value with the threshold (with
/// hysteresis when the level is already active).
pub fn level_breached(window: &Window, agg: &Aggregate, t: &Threshold, active: bool) -> bool {
    match window.func {
        WindowFunc::PercentFailing => agg.value >= window.min_percent(),
        WindowFunc::ConsecutiveFailures => agg.value >= f64::from(window.min_count()),
        _ => t.breached(agg.value, active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::Op;

    fn w(func: WindowFunc, duration_s: u64) -> Window {
        Window {
            func,
            duration_s,
            ..Window::default()
        }
    }

    fn series(values: &[(i64, f64)]) -> SeriesWindow {
        let mut s = SeriesWindow::default();
        for &(ts_ms, value) in values {
            s.push(Point {
                ts_ms,
                value,
                vantage: 0,
            });
        }
        s
    }

    #[test]
    fn aggregates_only_the_window() {
        let s = series(&[(0, 100.0), (50_000, 10.0), (60_000, 20.0), (70_000, 30.0)]);
        let agg = |f| {
            s.aggregate(&w(f, 30), 70_000, |v| v > 15.0)
                .expect("points")
        };
        assert_eq!(agg(WindowFunc::Avg).value, 20.0);
        assert_eq!(agg(WindowFunc::Avg).samples, 3);
        assert_eq!(agg(WindowFunc::Max).value, 30.0);
        assert_eq!(agg(WindowFunc::Min).value, 10.0);
        assert_eq!(agg(WindowFunc::Last).value, 30.0);
        assert!((agg(WindowFunc::PercentFailing).value - 66.666).abs() < 0.01);
        assert_eq!(agg(WindowFunc::ConsecutiveFailures).value, 2.0);
        assert!(
            s.aggregate(&w(WindowFunc::Avg, 5), 200_000, |_| true)
                .is_none()
        );
    }

    #[test]
    fn late_and_replayed_points_keep_order_without_duplicates() {
        let mut s = series(&[(10, 1.0), (30, 3.0)]);
        s.push(Point {
            ts_ms: 20,
            value: 2.0,
            vantage: 0,
        });
        s.push(Point {
            ts_ms: 30,
            value: 3.0,
            vantage: 0,
        });
        s.push(Point {
            ts_ms: 30,
            value: 9.0,
            vantage: 1,
        });
        let ts: Vec<(i64, u16)> = s.within(100, 1_000).map(|p| (p.ts_ms, p.vantage)).collect();
        assert_eq!(ts, vec![(10, 0), (20, 0), (30, 0), (30, 1)]);
        assert_eq!(s.latest_per_vantage(100, 1_000).len(), 2);
        s.prune(25);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn counting_functions_use_their_minimums() {
        let t = Threshold {
            op: Op::Gt,
            value: 5.0,
            recover: None,
        };
        let s = series(&[(1_000, 9.0), (2_000, 9.0), (3_000, 1.0)]);
        let mut win = w(WindowFunc::PercentFailing, 60);
        let agg = s
            .aggregate(&win, 3_000, |v| t.op.holds(v, t.value))
            .expect("points");
        assert!(level_breached(&win, &agg, &t, false), "66% >= 50%");
        win.min_percent = Some(80.0);
        assert!(!level_breached(&win, &agg, &t, false));
        let win = w(WindowFunc::ConsecutiveFailures, 60);
        let agg = s
            .aggregate(&win, 2_000, |v| t.op.holds(v, t.value))
            .expect("points");
        assert!(!level_breached(&win, &agg, &t, false), "2 < 3");
    }
}
