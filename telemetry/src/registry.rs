//! A `prometheus-client` registry that keeps a catalog of what it holds.

use crate::catalog::{Catalog, MetricType};
use crate::event::EventLog;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::hash::Hash;

/// The names of a label set's labels, in order (see [`label_set!`](crate::label_set)).
pub trait LabelNames {
    const NAMES: &'static [&'static str];
}

/// What a family's label set must be: encodable, hashable, and naming its labels.
pub trait Labels:
    LabelNames + EncodeLabelSet + Clone + Hash + Eq + Send + Sync + std::fmt::Debug + 'static
{
}

impl<T> Labels for T where
    T: LabelNames + EncodeLabelSet + Clone + Hash + Eq + Send + Sync + std::fmt::Debug + 'static
{
}

/// The bucket bounds of a histogram family: every member is made with the same.
#[derive(Debug, Clone, Copy)]
pub struct Buckets(pub &'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Where a process registers its metrics: the exposition for `/metrics`, the catalog
/// for `docs/metrics.md`, and the event log its events note themselves in.
#[derive(Debug)]
pub struct MetricsRegistry {
    registry: Registry,
    prefix: &'static str,
    catalog: Catalog,
    events: EventLog,
}

impl MetricsRegistry {
    /// Every metric's name starts with `prefix` (`ispvm_agent`, `ispvm_server`).
    pub fn new(prefix: &'static str) -> Self {
        MetricsRegistry {
            registry: Registry::with_prefix(prefix),
            prefix,
            catalog: Catalog::default(),
            events: EventLog::default(),
        }
    }

    /// Registers `metric` under `name` and notes it in the catalogue; every kind of
    /// metric goes through here, so none can be exported undocumented.
    fn register<M>(
        &mut self,
        name: &str,
        help: &'static str,
        metric_type: MetricType,
        labels: &'static [&'static str],
        metric: M,
    ) -> M
    where
        M: prometheus_client::registry::Metric + Clone,
    {
        self.catalog
            .add(self.prefix, name, metric_type, labels, help);
        self.registry.register(name, help, metric.clone());
        metric
    }

    pub fn counter(&mut self, name: &str, help: &'static str) -> Counter {
        self.register(name, help, MetricType::Counter, &[], Counter::default())
    }

    pub fn counters<L: Labels>(&mut self, name: &str, help: &'static str) -> Family<L, Counter> {
        self.register(name, help, MetricType::Counter, L::NAMES, Family::default())
    }

    pub fn gauge(&mut self, name: &str, help: &'static str) -> Gauge {
        self.register(name, help, MetricType::Gauge, &[], Gauge::default())
    }

    pub fn gauges<L: Labels>(&mut self, name: &str, help: &'static str) -> Family<L, Gauge> {
        self.register(name, help, MetricType::Gauge, L::NAMES, Family::default())
    }

    pub fn histogram(&mut self, name: &str, help: &'static str, buckets: Buckets) -> Histogram {
        self.register(name, help, MetricType::Histogram, &[], buckets.new_metric())
    }

    pub fn histograms<L: Labels>(
        &mut self,
        name: &str,
        help: &'static str,
        buckets: Buckets,
    ) -> Family<L, Histogram, Buckets> {
        let family = Family::new_with_constructor(buckets);
        self.register(name, help, MetricType::Histogram, L::NAMES, family)
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The log every event emitted against these metrics notes itself in; clone it into
    /// each metrics struct built on this registry.
    pub fn events(&self) -> &EventLog {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::label_set! {
        struct Reason {
            reason: &'static str,
        }
    }

    #[test]
    fn the_catalog_names_what_a_scrape_shows_even_for_families_never_used() {
        let mut r = MetricsRegistry::new("ispvm_test");
        let dropped = r.counters::<Reason>("items_dropped", "Items dropped, by reason");
        let depth = r.gauge("queue_depth", "Items waiting");
        let _took = r.histogram("took_seconds", "Time taken", Buckets(&[0.1, 1.0]));

        let docs = r.catalog().docs();
        assert_eq!(docs.len(), 3);
        let d = r
            .catalog()
            .get("ispvm_test_items_dropped_total")
            .expect("counter");
        assert_eq!(d.labels, &["reason"]);
        assert_eq!(d.metric_type, MetricType::Counter);
        assert!(r.catalog().get("ispvm_test_queue_depth").is_some());
        assert!(r.catalog().get("ispvm_test_took_seconds").is_some());

        // The catalog's names are the exposition's.
        dropped.get_or_create(&Reason { reason: "oversize" }).inc();
        depth.set(3);
        let text = r.encode();
        assert!(
            text.contains("ispvm_test_items_dropped_total{reason=\"oversize\"} 1"),
            "{text}"
        );
        assert!(text.contains("ispvm_test_queue_depth 3"), "{text}");

        let table = r.catalog().markdown_table();
        let first = table.lines().nth(2).expect("a row");
        assert!(
            first.starts_with("| `ispvm_test_items_dropped_total` | counter | `reason` |"),
            "{table}"
        );
    }
}
