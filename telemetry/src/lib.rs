//! The telemetry contract of every ISPVisualMonitor process.
//!
//! Three rules, modelled on Vector's `internal_events`:
//!
//! - Each thing that happens inside a process and matters to an operator is a type that
//!   implements [`InternalEvent`]: its one `log_and_count` writes the log line and moves
//!   the metrics, so a log line and its counter can never disagree, and a call site is one
//!   line long. Every place that drops or loses data emits one.
//! - Every metric is registered through a [`MetricsRegistry`], which keeps its name, type,
//!   labels and help in a [`Catalog`]: `docs/metrics.md` is rendered from the catalogs, and
//!   a test fails when the file is stale. (`prometheus-client` writes no line for an empty
//!   family and offers no list of what was registered, so the catalog is kept here.)
//! - Tests ask the [`EventLog`] which events were emitted, by type, instead of scraping
//!   the text of `/metrics`.

mod catalog;
mod event;
mod registry;

pub use catalog::{Catalog, MetricDoc, MetricType};
pub use event::{EventLog, InternalEvent};
pub use registry::{Buckets, LabelNames, MetricsRegistry};

/// Declares a label set: a struct whose fields are the labels of a metric family, with
/// the `prometheus-client` encoding and the label names the catalog documents.
///
/// The crate using it needs `prometheus-client` as a dependency (the derive names it).
#[macro_export]
macro_rules! label_set {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet)]
        $vis struct $name { $($(#[$fmeta])* $fvis $field: $ty),* }

        impl $crate::LabelNames for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}
