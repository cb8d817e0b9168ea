//! The topology model: devices and links as a graph kept current one inventory change
//! at a time, and the dependencies read from it.
//!
//! **Derived dependency.** Where an operator declared nothing, a device depends on the
//! network between it and the top of the hierarchy (upstream → edge → core → agg →
//! access): the roots are the devices of the highest role present in each connected
//! part. An entity X is needed by a device when *every* path from the roots to the
//! device goes through X — X dominates it, in the graph's dominator tree from a virtual
//! root above the roots. That is "requires any" over redundant paths by construction:
//! a dual-homed site or a ring has no single dominator below the point where the paths
//! meet, so losing one uplink or one ring segment impacts no device (it degrades
//! redundancy), while a chain makes every hop a single point of failure. Links are
//! nodes between their two devices, so a link can be a cause like a router.
//!
//! **Declared dependency.** An accepted `depends_on` edge states what the network
//! cannot show (a service on its routers, a device on a route reflector). A device with
//! declared dependencies takes them instead of the derived ones; edges of one `from`
//! with group `any` need one member up, with group `all` every member.
//!
//! Changes (a device, a link, an edge added or removed) edit the graph in place; the
//! dominator tree is recomputed once, on the first question after a change, never per
//! evaluation.

use super::kinds::{DependencyGroup, EdgeKind, NodeKind};
use ispvm_proto::DeviceRole;
use petgraph::algo::dominators::{self, Dominators};
use petgraph::graph::{DiGraph, NodeIndex as DiIndex};
use petgraph::stable_graph::{NodeIndex, StableUnGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// A node of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKey {
    Device(String),
    Link(String),
    Site(String),
    Service(String),
}

impl NodeKey {
    pub fn kind(&self) -> NodeKind {
        match self {
            NodeKey::Device(_) => NodeKind::Device,
            NodeKey::Link(_) => NodeKind::Link,
            NodeKey::Site(_) => NodeKind::Site,
            NodeKey::Service(_) => NodeKind::Service,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            NodeKey::Device(id) | NodeKey::Link(id) | NodeKey::Site(id) | NodeKey::Service(id) => {
                id
            }
        }
    }

    pub fn new(kind: NodeKind, id: impl Into<String>) -> Self {
        let id = id.into();
        match kind {
            NodeKind::Device => NodeKey::Device(id),
            NodeKind::Link => NodeKey::Link(id),
            NodeKind::Site => NodeKey::Site(id),
            NodeKind::Service => NodeKey::Service(id),
        }
    }
}

/// Why a change was refused; the model is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("link {link:?} ends on {device:?}, which the topology does not have")]
    UnknownEnd { link: String, device: String },
    #[error("link {0:?} joins a device to itself")]
    SelfLink(String),
    #[error("edge {edge:?}: {node:?} is not in the topology")]
    UnknownNode { edge: String, node: NodeKey },
}

/// How close a role sits to the top of the hierarchy: the roots of derived dependency
/// are the devices of the highest rank present.
fn rank(role: DeviceRole) -> u8 {
    match role {
        DeviceRole::Upstream => 6,
        DeviceRole::Edge => 5,
        DeviceRole::Core => 4,
        DeviceRole::RouteReflector => 3,
        DeviceRole::Agg => 2,
        DeviceRole::PppoeConcentrator | DeviceRole::Access => 1,
        DeviceRole::CustomerEdge => 0,
    }
}

#[derive(Debug, Clone)]
struct Node {
    key: NodeKey,
    /// Devices: their role and site.
    role: Option<DeviceRole>,
    site: Option<String>,
}

/// A declared edge between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Declared {
    kind: EdgeKind,
    from: NodeKey,
    to: NodeKey,
    group: DependencyGroup,
}

/// The dominator tree, indexed by the graph's node indices.
#[derive(Debug)]
struct Derived {
    /// The graph node each view node stands for (`None`: the virtual root).
    from_view: Vec<Option<NodeIndex>>,
    /// Graph node index → view node, by `NodeIndex::index()`.
    to_view: Vec<Option<DiIndex>>,
    /// Immediate dominator → the nodes it immediately dominates, by view index.
    children: Vec<Vec<DiIndex>>,
    doms: Dominators<DiIndex>,
    /// The roots this tree was computed from (searches from the top start there).
    roots: Vec<NodeIndex>,
}

/// The topology of one tenant.
#[derive(Debug, Default)]
pub struct Topology {
    /// Devices and links: the physical graph (a link is a node between its two ends).
    graph: StableUnGraph<Node, ()>,
    index: HashMap<NodeKey, NodeIndex>,
    /// Link id → its two end devices.
    links: HashMap<String, (String, String)>,
    /// Declared edges by id.
    declared: BTreeMap<String, Declared>,
    /// Bumped by every change.
    version: u64,
    derived: Option<Derived>,
}

impl Topology {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes so far: anything that caches a reading compares it.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn changed(&mut self) {
        self.version += 1;
        self.derived = None;
    }

    /// Adds a device or changes its role and site.
    pub fn upsert_device(&mut self, id: &str, role: DeviceRole, site: Option<&str>) {
        let key = NodeKey::Device(id.to_owned());
        match self.index.get(&key) {
            Some(&ix) => {
                let n = &mut self.graph[ix];
                if n.role == Some(role) && n.site.as_deref() == site {
                    return;
                }
                n.role = Some(role);
                n.site = site.map(str::to_owned);
            }
            None => {
                let ix = self.graph.add_node(Node {
                    key: key.clone(),
                    role: Some(role),
                    site: site.map(str::to_owned),
                });
                self.index.insert(key, ix);
            }
        }
        self.changed();
    }

    /// Removes a device, the links that end on it and the edges that name it.
    pub fn remove_device(&mut self, id: &str) {
        let key = NodeKey::Device(id.to_owned());
        let Some(ix) = self.index.remove(&key) else {
            return;
        };
        let ends: Vec<String> = self
            .links
            .iter()
            .filter(|(_, (a, b))| a == id || b == id)
            .map(|(l, _)| l.clone())
            .collect();
        for l in ends {
            self.remove_link(&l);
        }
        self.declared.retain(|_, e| e.from != key && e.to != key);
        self.graph.remove_node(ix);
        self.changed();
    }

    /// Adds a link between two known devices, or moves it.
    pub fn upsert_link(&mut self, id: &str, a: &str, b: &str) -> Result<(), TopologyError> {
        if a == b {
            return Err(TopologyError::SelfLink(id.to_owned()));
        }
        let mut ends = [NodeIndex::end(); 2];
        for (slot, device) in ends.iter_mut().zip([a, b]) {
            *slot = *self
                .index
                .get(&NodeKey::Device(device.to_owned()))
                .ok_or_else(|| TopologyError::UnknownEnd {
                    link: id.to_owned(),
                    device: device.to_owned(),
                })?;
        }
        if self.links.get(id) == Some(&(a.to_owned(), b.to_owned())) {
            return Ok(());
        }
        self.remove_link(id);
        let key = NodeKey::Link(id.to_owned());
        let ix = self.graph.add_node(Node {
            key: key.clone(),
            role: None,
            site: None,
        });
        self.graph.add_edge(ends[0], ix, ());
        self.graph.add_edge(ix, ends[1], ());
        self.index.insert(key, ix);
        self.links
            .insert(id.to_owned(), (a.to_owned(), b.to_owned()));
        self.changed();
        Ok(())
    }

    pub fn remove_link(&mut self, id: &str) {
        let key = NodeKey::Link(id.to_owned());
        if let Some(ix) = self.index.remove(&key) {
            self.graph.remove_node(ix);
            self.links.remove(id);
            self.declared.retain(|_, e| e.from != key && e.to != key);
            self.changed();
        }
    }

    /// Adds or replaces a declared (accepted) edge. Only devices and links take part so
    /// far; edges naming a site or a service are kept for when they do.
    pub fn upsert_edge(
        &mut self,
        id: &str,
        kind: EdgeKind,
        from: NodeKey,
        to: NodeKey,
        group: DependencyGroup,
    ) -> Result<(), TopologyError> {
        for node in [&from, &to] {
            let known = match node {
                NodeKey::Device(_) | NodeKey::Link(_) => self.index.contains_key(node),
                NodeKey::Site(_) | NodeKey::Service(_) => true,
            };
            if !known {
                return Err(TopologyError::UnknownNode {
                    edge: id.to_owned(),
                    node: node.clone(),
                });
            }
        }
        let edge = Declared {
            kind,
            from,
            to,
            group,
        };
        if self.declared.get(id) != Some(&edge) {
            self.declared.insert(id.to_owned(), edge);
            self.changed();
        }
        Ok(())
    }

    pub fn remove_edge(&mut self, id: &str) {
        if self.declared.remove(id).is_some() {
            self.changed();
        }
    }

    /// Nodes with declared `depends_on` edges: they take those, not the derived ones.
    fn declared_dependents(&self) -> BTreeSet<&NodeKey> {
        self.declared
            .values()
            .filter(|e| e.kind == EdgeKind::DependsOn)
            .map(|e| &e.from)
            .collect()
    }

    /// The roots of derived dependency: in each connected part, its devices of the
    /// highest rank.
    fn roots(&self) -> Vec<NodeIndex> {
        let bound = self.graph.node_bound();
        let mut seen = vec![false; bound];
        let mut roots = Vec::new();
        let mut part = Vec::new();
        let mut queue = VecDeque::new();
        for start in self.graph.node_indices() {
            if seen[start.index()] {
                continue;
            }
            part.clear();
            seen[start.index()] = true;
            queue.push_back(start);
            while let Some(ix) = queue.pop_front() {
                part.push(ix);
                for n in self.graph.neighbors(ix) {
                    if !seen[n.index()] {
                        seen[n.index()] = true;
                        queue.push_back(n);
                    }
                }
            }
            let top = part
                .iter()
                .filter_map(|ix| self.graph[*ix].role.map(rank))
                .max();
            roots.extend(
                part.iter()
                    .filter(|ix| top.is_some() && self.graph[**ix].role.map(rank) == top),
            );
        }
        roots
    }

    /// The directed view (both directions of every physical edge, a virtual root above
    /// the roots and above every device with declared dependencies) and its dominator
    /// tree.
    fn derive(&self) -> Derived {
        let bound = self.graph.node_bound();
        let mut view: DiGraph<(), ()> = DiGraph::with_capacity(
            self.graph.node_count() + 1,
            self.graph.edge_count() * 2 + 64,
        );
        let root = view.add_node(());
        let mut to_view = vec![None; bound];
        let mut from_view = vec![None];
        for ix in self.graph.node_indices() {
            to_view[ix.index()] = Some(view.add_node(()));
            from_view.push(Some(ix));
        }
        let at = |ix: NodeIndex| to_view[ix.index()];
        for e in self.graph.edge_references() {
            if let (Some(a), Some(b)) = (at(e.source()), at(e.target())) {
                view.add_edge(a, b, ());
                view.add_edge(b, a, ());
            }
        }
        let roots = self.roots();
        for &ix in &roots {
            if let Some(v) = at(ix) {
                view.add_edge(root, v, ());
            }
        }
        for key in self.declared_dependents() {
            if let Some(v) = self.index.get(key).and_then(|ix| at(*ix)) {
                view.add_edge(root, v, ());
            }
        }
        let doms = dominators::simple_fast(&view, root);
        let mut children = vec![Vec::new(); view.node_count()];
        for n in view.node_indices() {
            if let Some(d) = doms.immediate_dominator(n) {
                children[d.index()].push(n);
            }
        }
        Derived {
            from_view,
            to_view,
            children,
            doms,
            roots,
        }
    }

    /// The dominator tree of the current graph, computed on the first question after a
    /// change.
    fn derived(&mut self) -> &Derived {
        let d = match self.derived.take() {
            Some(d) => d,
            None => self.derive(),
        };
        self.derived.insert(d)
    }

    /// What `node` needs, derived from the network: the nearest entity on every path
    /// between it and the top of the hierarchy. `None` for a root, for a node with
    /// declared dependencies, and for a node the topology does not have.
    pub fn derived_dependency(&mut self, node: &NodeKey) -> Option<NodeKey> {
        let ix = *self.index.get(node)?;
        let d = self.derived();
        let v = d.to_view.get(ix.index()).copied().flatten()?;
        let idom = d.doms.immediate_dominator(v)?;
        let g = d.from_view.get(idom.index()).copied().flatten()?;
        Some(self.graph[g].key.clone())
    }

    /// Everything that fails when `cause` fails: the cause, what it dominates, the links
    /// that end on a failed device, and what depends on any of them through declared
    /// edges (by their groups).
    pub fn impact_of(&mut self, cause: &NodeKey) -> BTreeSet<NodeKey> {
        self.impact_of_all(std::slice::from_ref(cause))
    }

    /// [`Topology::impact_of`] for several causes failing together.
    pub fn impact_of_all(&mut self, causes: &[NodeKey]) -> BTreeSet<NodeKey> {
        self.derived();
        let Some(d) = self.derived.as_ref() else {
            return BTreeSet::new();
        };
        let mut failed = vec![false; self.graph.node_bound()];
        let mut out: BTreeSet<NodeKey> = BTreeSet::new();
        // Causes outside the physical graph (a site, a service) can still be named by
        // declared edges.
        for c in causes {
            if !self.index.contains_key(c) {
                out.insert(c.clone());
            }
        }
        let mut pending: Vec<NodeIndex> = causes
            .iter()
            .filter_map(|c| self.index.get(c).copied())
            .collect();
        // One cause cuts exactly what it dominates; several can cut more together
        // (both uplinks of a dual-homed site), which a search from the roots finds.
        let mut several = pending.len() > 1;
        loop {
            while let Some(ix) = pending.pop() {
                if std::mem::replace(&mut failed[ix.index()], true) {
                    continue;
                }
                out.insert(self.graph[ix].key.clone());
                let Some(start) = d.to_view.get(ix.index()).copied().flatten() else {
                    continue;
                };
                let mut stack = vec![start];
                while let Some(v) = stack.pop() {
                    for &c in &d.children[v.index()] {
                        if let Some(g) = d.from_view.get(c.index()).copied().flatten()
                            && !failed[g.index()]
                        {
                            pending.push(g);
                        }
                        stack.push(c);
                    }
                }
            }
            if several {
                several = false;
                pending.extend(self.unreachable_without(&d.roots, &failed));
            }
            // A link fails with either of its ends: the links of a failed device are its
            // neighbours in the graph.
            for ix in self.graph.node_indices() {
                if failed[ix.index()] && self.graph[ix].role.is_some() {
                    for n in self.graph.neighbors(ix) {
                        if !failed[n.index()] {
                            pending.push(n);
                        }
                    }
                }
            }
            // Declared dependencies, by group.
            let is_failed = |k: &NodeKey| match self.index.get(k) {
                Some(ix) => failed[ix.index()],
                None => out.contains(k),
            };
            let mut groups: BTreeMap<(&NodeKey, DependencyGroup), Vec<&NodeKey>> = BTreeMap::new();
            for e in self
                .declared
                .values()
                .filter(|e| e.kind == EdgeKind::DependsOn)
            {
                groups.entry((&e.from, e.group)).or_default().push(&e.to);
            }
            let mut more_outside = Vec::new();
            for ((from, group), to) in groups {
                if is_failed(from) {
                    continue;
                }
                let hit = match group {
                    DependencyGroup::All => to.iter().any(|t| is_failed(t)),
                    DependencyGroup::Any => to.iter().all(|t| is_failed(t)),
                };
                if hit {
                    match self.index.get(from) {
                        Some(&ix) => {
                            pending.push(ix);
                            several = true;
                        }
                        None => more_outside.push(from.clone()),
                    }
                }
            }
            let grew = !more_outside.is_empty();
            out.extend(more_outside);
            if pending.is_empty() && !grew {
                return out;
            }
        }
    }

    /// Devices and links the roots no longer reach when the `failed` ones are removed.
    fn unreachable_without(&self, roots: &[NodeIndex], failed: &[bool]) -> Vec<NodeIndex> {
        let mut reached = vec![false; self.graph.node_bound()];
        let mut queue = VecDeque::new();
        let declared = self.declared_dependents();
        let starts = roots
            .iter()
            .copied()
            .chain(declared.iter().filter_map(|k| self.index.get(*k).copied()));
        for ix in starts {
            if !failed[ix.index()] && !reached[ix.index()] {
                reached[ix.index()] = true;
                queue.push_back(ix);
            }
        }
        while let Some(ix) = queue.pop_front() {
            for n in self.graph.neighbors(ix) {
                if !failed[n.index()] && !reached[n.index()] {
                    reached[n.index()] = true;
                    queue.push_back(n);
                }
            }
        }
        self.graph
            .node_indices()
            .filter(|ix| !reached[ix.index()] && !failed[ix.index()])
            .collect()
    }

    /// Every device with its role and site.
    pub fn devices(&self) -> impl Iterator<Item = (&str, DeviceRole, Option<&str>)> + '_ {
        self.graph
            .node_weights()
            .filter_map(|n| match (&n.key, n.role) {
                (NodeKey::Device(id), Some(role)) => Some((id.as_str(), role, n.site.as_deref())),
                _ => None,
            })
    }

    /// Every link with its two end devices.
    pub fn links(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.links
            .iter()
            .map(|(id, (a, b))| (id.as_str(), a.as_str(), b.as_str()))
    }

    /// The role and site of a device the model has.
    pub fn device(&self, id: &str) -> Option<(DeviceRole, Option<&str>)> {
        let ix = self.index.get(&NodeKey::Device(id.to_owned()))?;
        let n = &self.graph[*ix];
        Some((n.role?, n.site.as_deref()))
    }

    /// The two end devices of a link the model has.
    pub fn link_ends(&self, id: &str) -> Option<(&str, &str)> {
        self.links.get(id).map(|(a, b)| (a.as_str(), b.as_str()))
    }

    /// The devices derived dependency starts from: the highest role of each connected
    /// part (where a monitor with no better knowledge assumes the way out is).
    pub fn root_devices(&mut self) -> Vec<String> {
        let roots = self.derived().roots.clone();
        roots
            .into_iter()
            .map(|ix| self.graph[ix].key.id().to_owned())
            .collect()
    }

    /// How many devices and links the model holds.
    pub fn counts(&self) -> (usize, usize) {
        (self.graph.node_count() - self.links.len(), self.links.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> NodeKey {
        NodeKey::Device(id.into())
    }

    fn link(id: &str) -> NodeKey {
        NodeKey::Link(id.into())
    }

    fn devices(set: &BTreeSet<NodeKey>) -> Vec<&str> {
        set.iter()
            .filter(|k| matches!(k, NodeKey::Device(_)))
            .map(NodeKey::id)
            .collect()
    }

    /// upstream — edge — core — agg — access, one link each.
    fn chain() -> Topology {
        let mut t = Topology::new();
        for (id, role) in [
            ("up", DeviceRole::Upstream),
            ("edge", DeviceRole::Edge),
            ("core", DeviceRole::Core),
            ("agg", DeviceRole::Agg),
            ("acc", DeviceRole::Access),
        ] {
            t.upsert_device(id, role, Some("pop"));
        }
        for (l, a, b) in [
            ("up-edge", "up", "edge"),
            ("edge-core", "edge", "core"),
            ("core-agg", "core", "agg"),
            ("agg-acc", "agg", "acc"),
        ] {
            t.upsert_link(l, a, b).expect("link");
        }
        t
    }

    #[test]
    fn in_a_chain_every_hop_is_a_single_point_of_failure() {
        let mut t = chain();
        assert_eq!(
            devices(&t.impact_of(&link("edge-core"))),
            ["acc", "agg", "core"]
        );
        let impact = t.impact_of(&dev("core"));
        assert_eq!(devices(&impact), ["acc", "agg", "core"]);
        // The links below fail with it, the one above does not.
        assert!(impact.contains(&link("core-agg")) && impact.contains(&link("edge-core")));
        assert!(!impact.contains(&link("up-edge")));
        assert_eq!(t.derived_dependency(&dev("acc")), Some(link("agg-acc")));
        assert_eq!(t.derived_dependency(&dev("up")), None, "a root");
    }

    #[test]
    fn a_dual_homed_site_and_a_ring_lose_redundancy_not_service() {
        let mut t = Topology::new();
        t.upsert_device("core", DeviceRole::Core, Some("a"));
        for id in ["agg1", "agg2", "agg3", "agg4"] {
            t.upsert_device(id, DeviceRole::Agg, Some("b"));
        }
        t.upsert_device("acc", DeviceRole::Access, Some("c"));
        // A ring core → agg1 → agg2 → agg3 → agg4 → core; acc dual-homed to agg2, agg3.
        for (l, a, b) in [
            ("c-1", "core", "agg1"),
            ("1-2", "agg1", "agg2"),
            ("2-3", "agg2", "agg3"),
            ("3-4", "agg3", "agg4"),
            ("4-c", "agg4", "core"),
            ("2-acc", "agg2", "acc"),
            ("3-acc", "agg3", "acc"),
        ] {
            t.upsert_link(l, a, b).expect("link");
        }
        // Any one ring segment or uplink: no device lost.
        for l in ["c-1", "1-2", "2-3", "3-4", "4-c", "2-acc", "3-acc"] {
            assert!(devices(&t.impact_of(&link(l))).is_empty(), "{l}");
        }
        assert_eq!(devices(&t.impact_of(&dev("agg2"))), ["agg2"]);
        // Everything hangs off the core.
        assert_eq!(t.derived_dependency(&dev("acc")), Some(dev("core")));
        // Two cuts at once isolate what lies between them.
        let both = t.impact_of_all(&[link("c-1"), link("3-4")]);
        assert_eq!(devices(&both), ["acc", "agg1", "agg2", "agg3"]);
    }

    #[test]
    fn declared_dependencies_take_precedence_and_honour_their_group() {
        let mut t = chain();
        t.upsert_device("rr1", DeviceRole::RouteReflector, Some("pop"));
        t.upsert_device("rr2", DeviceRole::RouteReflector, Some("pop"));
        t.upsert_link("core-rr1", "core", "rr1").expect("link");
        t.upsert_link("core-rr2", "core", "rr2").expect("link");
        // The edge router needs one of the two reflectors.
        for (id, rr) in [("e1", "rr1"), ("e2", "rr2")] {
            t.upsert_edge(
                id,
                EdgeKind::DependsOn,
                dev("edge"),
                dev(rr),
                DependencyGroup::Any,
            )
            .expect("edge");
        }
        assert!(!t.impact_of(&dev("rr1")).contains(&dev("edge")));
        let both = t.impact_of_all(&[dev("rr1"), dev("rr2")]);
        assert!(both.contains(&dev("edge")));
        // What hangs off the edge router physically goes with it.
        assert!(both.contains(&dev("acc")));
        // Group all: one is enough.
        t.upsert_edge(
            "e2",
            EdgeKind::DependsOn,
            dev("edge"),
            dev("rr2"),
            DependencyGroup::All,
        )
        .expect("edge");
        t.upsert_edge(
            "e1",
            EdgeKind::DependsOn,
            dev("edge"),
            dev("rr1"),
            DependencyGroup::All,
        )
        .expect("edge");
        assert!(t.impact_of(&dev("rr2")).contains(&dev("edge")));
        // Evidence edges are not dependencies.
        t.remove_edge("e1");
        t.remove_edge("e2");
        t.upsert_edge(
            "bgp",
            EdgeKind::BgpPeer,
            dev("edge"),
            dev("rr1"),
            DependencyGroup::All,
        )
        .expect("edge");
        assert!(!t.impact_of(&dev("rr1")).contains(&dev("edge")));
    }

    #[test]
    fn changes_apply_in_place_and_bad_ones_change_nothing() {
        let mut t = chain();
        let v = t.version();
        assert_eq!(
            t.upsert_link("x", "acc", "ghost"),
            Err(TopologyError::UnknownEnd {
                link: "x".into(),
                device: "ghost".into()
            })
        );
        assert_eq!(
            t.upsert_link("y", "acc", "acc"),
            Err(TopologyError::SelfLink("y".into()))
        );
        assert!(
            t.upsert_edge(
                "z",
                EdgeKind::DependsOn,
                dev("acc"),
                dev("ghost"),
                DependencyGroup::All
            )
            .is_err()
        );
        assert_eq!(t.version(), v, "refused changes change nothing");
        // The same facts again are not a change.
        t.upsert_device("acc", DeviceRole::Access, Some("pop"));
        t.upsert_link("agg-acc", "agg", "acc").expect("same link");
        assert_eq!(t.version(), v);
        // A second uplink for the access router makes the aggregation router no longer
        // a single point of failure for it.
        t.upsert_link("core-acc", "core", "acc").expect("link");
        assert!(!t.impact_of(&dev("agg")).contains(&dev("acc")));
        t.remove_link("core-acc");
        assert!(t.impact_of(&dev("agg")).contains(&dev("acc")));
        t.remove_device("agg");
        assert_eq!(t.counts(), (4, 2));
        // With the aggregation router gone the access router is a part of its own, and
        // its own root.
        assert!(
            devices(&t.impact_of(&dev("core")))
                .iter()
                .all(|d| *d != "acc")
        );
    }
}
