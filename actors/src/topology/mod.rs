//! The network as a graph: what depends on what, so that a fault is explained by one
//! root cause and its impact is known (ARCHITECTURE §3).
//!
//! - [`kinds`]: the closed sets of the topology (edge kinds, dependency groups, states).
//! - [`graph`]: the model, kept current one inventory change at a time.

pub mod graph;
pub mod kinds;

pub use graph::{NodeKey, Topology, TopologyError};
pub use kinds::{DependencyGroup, EdgeKind, EdgeSource, EdgeState, NodeKind};
