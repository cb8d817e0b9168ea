//! What a process exports, as data: the source of `docs/metrics.md`.

use std::fmt::Write;

/// The OpenMetrics type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }

    /// The name a scrape shows for a metric registered as `name`: OpenMetrics counters
    /// end in `_total`; a histogram's series add `_bucket`, `_sum` and `_count`.
    fn exposed(self, name: &str) -> String {
        match self {
            MetricType::Counter => format!("{name}_total"),
            MetricType::Gauge | MetricType::Histogram => name.to_string(),
        }
    }
}

/// One registered metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricDoc {
    /// The name a scrape shows (prefix included, `_total` on counters).
    pub name: String,
    pub metric_type: MetricType,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Every metric one registry holds, in registration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    docs: Vec<MetricDoc>,
}

impl Catalog {
    pub(crate) fn add(
        &mut self,
        prefix: &str,
        name: &str,
        metric_type: MetricType,
        labels: &'static [&'static str],
        help: &'static str,
    ) {
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}_{name}")
        };
        self.docs.push(MetricDoc {
            name: metric_type.exposed(&full),
            metric_type,
            labels,
            help,
        });
    }

    pub fn docs(&self) -> &[MetricDoc] {
        &self.docs
    }

    /// Looks a metric up by the name a scrape shows.
    pub fn get(&self, name: &str) -> Option<&MetricDoc> {
        self.docs.iter().find(|d| d.name == name)
    }

    /// A Markdown table of the metrics, sorted by name so the file changes only where
    /// a metric does.
    pub fn markdown_table(&self) -> String {
        let mut docs: Vec<&MetricDoc> = self.docs.iter().collect();
        docs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out =
            String::from("| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n");
        for d in docs {
            let labels = if d.labels.is_empty() {
                String::new()
            } else {
                d.labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // Writing into a String cannot fail.
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                d.name,
                d.metric_type.as_str(),
                labels,
                d.help.replace('|', "\\|")
            );
        }
        out
    }
}
