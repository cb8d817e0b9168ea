//! The multi-vantage reachability matrix: what each agent (vantage) last saw of each
//! probe target, merged from every agent's cluster report.
//!
//! Root-cause analysis asks two questions of it: "can anybody still reach this target?"
//! (a target lost from every vantage is down; lost from one vantage only, the fault sits
//! on that vantage's path) and "does this vantage reach anything?" (a vantage that lost
//! every target is itself cut off, and its alarms say nothing about the targets). Every
//! agent relays rows it learned by gossip, so the same cell arrives several times: the
//! freshest verdict wins, which makes merging order-free and replays harmless.

use ispvm_proto::ReachCell;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Loss at or above which a verdict counts as "cannot reach".
pub const UNREACHABLE_LOSS_PCT: f32 = 100.0;

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub loss_pct: f32,
    pub rtt_us: Option<u32>,
    /// When the vantage's probe round ended, Unix s.
    pub at_s: i64,
    /// The agent whose report delivered the freshest copy (the vantage itself, or a
    /// peer relaying it).
    pub relayed_by: String,
}

impl Verdict {
    pub fn reachable(&self) -> bool {
        self.loss_pct < UNREACHABLE_LOSS_PCT
    }
}

/// How one target looks from every vantage that has a fresh verdict on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetView {
    /// Every fresh vantage reaches it.
    Reachable,
    /// Some vantages reach it and some do not: a path problem, not the target.
    Partial,
    /// No fresh vantage reaches it.
    Unreachable,
    /// No fresh verdict at all.
    Unknown,
}

/// Vantage × target → freshest verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReachMatrix {
    cells: BTreeMap<(String, String), Verdict>,
}

impl ReachMatrix {
    /// Merges `cells` relayed by `relayed_by`, keeping the freshest verdict per cell (on
    /// a tie, the one relayed by the vantage itself).
    pub fn merge<'a>(&mut self, relayed_by: &str, cells: impl IntoIterator<Item = &'a ReachCell>) {
        for c in cells {
            let key = (c.vantage.clone(), c.target.clone());
            let newer = match self.cells.get(&key) {
                None => true,
                Some(old) => {
                    c.at_s > old.at_s
                        || (c.at_s == old.at_s
                            && relayed_by == c.vantage
                            && old.relayed_by != c.vantage)
                }
            };
            if newer {
                self.cells.insert(
                    key,
                    Verdict {
                        loss_pct: c.loss_pct,
                        rtt_us: c.rtt_us,
                        at_s: c.at_s,
                        relayed_by: relayed_by.to_owned(),
                    },
                );
            }
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn get(&self, vantage: &str, target: &str) -> Option<&Verdict> {
        self.cells.get(&(vantage.to_owned(), target.to_owned()))
    }

    /// Every cell, ordered by vantage then target.
    pub fn cells(&self) -> impl Iterator<Item = (&str, &str, &Verdict)> {
        self.cells
            .iter()
            .map(|((v, t), verdict)| (v.as_str(), t.as_str(), verdict))
    }

    pub fn vantages(&self) -> BTreeSet<&str> {
        self.cells.keys().map(|(v, _)| v.as_str()).collect()
    }

    pub fn targets(&self) -> BTreeSet<&str> {
        self.cells.keys().map(|(_, t)| t.as_str()).collect()
    }

    /// Verdicts on `target` no older than `fresh_since_s`, by vantage.
    pub fn column(&self, target: &str, fresh_since_s: i64) -> BTreeMap<&str, &Verdict> {
        self.cells
            .iter()
            .filter(|((_, t), v)| t == target && v.at_s >= fresh_since_s)
            .map(|((vantage, _), v)| (vantage.as_str(), v))
            .collect()
    }

    /// How `target` looks from the vantages with fresh verdicts.
    pub fn target_view(&self, target: &str, fresh_since_s: i64) -> TargetView {
        let column = self.column(target, fresh_since_s);
        let reached = column.values().filter(|v| v.reachable()).count();
        match (reached, column.len()) {
            (_, 0) => TargetView::Unknown,
            (r, n) if r == n => TargetView::Reachable,
            (0, _) => TargetView::Unreachable,
            _ => TargetView::Partial,
        }
    }

    /// Vantages with fresh verdicts of which none is reachable: each is cut off itself
    /// (or all its targets are down, which other vantages tell apart).
    pub fn isolated_vantages(&self, fresh_since_s: i64) -> BTreeSet<&str> {
        let mut any: BTreeMap<&str, bool> = BTreeMap::new();
        for ((vantage, _), v) in &self.cells {
            if v.at_s >= fresh_since_s {
                *any.entry(vantage.as_str()).or_insert(false) |= v.reachable();
            }
        }
        any.into_iter()
            .filter(|(_, reached)| !reached)
            .map(|(v, _)| v)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(vantage: &str, target: &str, loss: f32, at_s: i64) -> ReachCell {
        ReachCell {
            vantage: vantage.into(),
            target: target.into(),
            loss_pct: loss,
            rtt_us: (loss < 100.0).then_some(1_000),
            at_s,
        }
    }

    #[test]
    fn freshest_verdict_wins_whatever_the_order() {
        let old = cell("a1", "dns", 0.0, 100);
        let new = cell("a1", "dns", 100.0, 105);
        let mut one = ReachMatrix::default();
        one.merge("a2", [&new]);
        one.merge("a1", [&old]);
        let mut two = ReachMatrix::default();
        two.merge("a1", [&old]);
        two.merge("a2", [&new]);
        assert_eq!(one, two);
        let v = one.get("a1", "dns").expect("cell");
        assert_eq!((v.at_s, v.relayed_by.as_str()), (105, "a2"));
        // A replay of the old report changes nothing.
        one.merge("a1", [&old]);
        assert_eq!(one, two);
        // Same age: the vantage's own copy is preferred.
        one.merge("a1", [&new]);
        assert_eq!(
            one.get("a1", "dns").map(|v| v.relayed_by.as_str()),
            Some("a1")
        );
    }

    #[test]
    fn target_views_tell_a_dead_target_from_a_broken_path() {
        let mut m = ReachMatrix::default();
        m.merge(
            "a1",
            [
                &cell("a1", "dns", 100.0, 100),
                &cell("a1", "web", 100.0, 100),
                &cell("a1", "cpe", 100.0, 100),
            ],
        );
        m.merge(
            "a2",
            [
                &cell("a2", "dns", 100.0, 100),
                &cell("a2", "web", 0.0, 100),
                &cell("a2", "old", 0.0, 10),
            ],
        );
        assert_eq!(m.target_view("dns", 90), TargetView::Unreachable);
        assert_eq!(m.target_view("web", 90), TargetView::Partial);
        assert_eq!(m.target_view("cpe", 90), TargetView::Unreachable);
        assert_eq!(m.target_view("old", 90), TargetView::Unknown);
        assert_eq!(m.target_view("nowhere", 90), TargetView::Unknown);
        assert_eq!(m.isolated_vantages(90), BTreeSet::from(["a1"]));
        assert_eq!(m.column("web", 90).len(), 2);
        assert_eq!(m.vantages().len(), 2);
        assert_eq!(m.targets().len(), 4);
    }
}
