//! The graph the analysis searches: the topology's devices and links, plus a node per
//! observer (each agent, the server) and per device management plane.
//!
//! Observers and management planes are leaves: traffic enters them and never crosses
//! them, so an agent plugged into two routers does not become a path between them.
//! Which nodes a vantage can no longer reach when a node fails is read from the
//! dominator tree of the graph seen from that vantage: a node cuts off exactly what it
//! dominates.

use super::observations::{SERVER_VANTAGE, Vantage};
use crate::topology::Topology;
use ispvm_proto::DeviceRole;
use std::collections::{HashMap, VecDeque};

/// A node of the analysis graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Node {
    Device(String),
    Link(String),
    /// The management plane (API, SNMP) of a device.
    Api(String),
    Agent(String),
    Server,
}

impl Node {
    /// Transit nodes carry traffic between their neighbours.
    fn transit(&self) -> bool {
        matches!(self, Node::Device(_) | Node::Link(_))
    }

    /// At equal scores the analysis prefers the explanation that claims least: a
    /// management plane before its router, an agent before the router it sits on, a link
    /// (reported down by its live end) before the device beyond it.
    pub(crate) fn modesty(&self) -> u8 {
        match self {
            Node::Api(_) => 0,
            Node::Agent(_) => 1,
            Node::Link(_) => 2,
            Node::Device(_) => 3,
            Node::Server => 4,
        }
    }
}

pub(crate) type Ix = u32;

/// The kinds of named nodes, for lookups by name without building a [`Node`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Device = 0,
    Link = 1,
    Api = 2,
    Agent = 3,
}

/// The graph of one analysis.
#[derive(Debug)]
pub(crate) struct Net {
    pub nodes: Vec<Node>,
    /// Whether each node carries traffic (read per edge in every search).
    transit: Vec<bool>,
    adj: Vec<Vec<Ix>>,
    /// Nodes by kind and name (the server is apart).
    names: [HashMap<String, Ix>; 4],
    server: Option<Ix>,
    /// Device node → its site.
    pub site: Vec<Option<String>>,
    /// Link node → its two end devices.
    pub ends: HashMap<Ix, (Ix, Ix)>,
}

/// The dominator tree seen from one vantage, with what that vantage reaches.
pub(crate) struct DomView {
    idom: Vec<Option<Ix>>,
    pub reached: Vec<bool>,
    root: Ix,
}

impl DomView {
    /// The nodes each node immediately dominates.
    pub fn children(&self) -> Vec<Vec<Ix>> {
        let mut out = vec![Vec::new(); self.idom.len()];
        for (n, d) in self.idom.iter().enumerate() {
            if let Some(d) = d {
                out[*d as usize].push(n as Ix);
            }
        }
        out
    }

    /// `node` and the nodes above it up to (not including) the vantage.
    pub fn ancestors(&self, node: Ix) -> impl Iterator<Item = Ix> + '_ {
        let mut next = self.reached[node as usize].then_some(node);
        std::iter::from_fn(move || {
            let n = next?;
            if n == self.root {
                return None;
            }
            next = self.idom[n as usize];
            Some(n)
        })
    }
}

/// How likely a monitoring agent is to hang off a router of this role (higher: more).
fn attachment_tier(role: DeviceRole) -> u8 {
    match role {
        DeviceRole::Core => 3,
        DeviceRole::Agg => 2,
        DeviceRole::Edge => 1,
        _ => 0,
    }
}

impl Net {
    pub fn build(topology: &mut Topology, vantages: &[Vantage]) -> Net {
        let mut net = Net {
            nodes: Vec::new(),
            transit: Vec::new(),
            adj: Vec::new(),
            names: Default::default(),
            server: None,
            site: Vec::new(),
            ends: HashMap::new(),
        };
        let devices: Vec<(String, DeviceRole, Option<String>)> = topology
            .devices()
            .map(|(id, role, site)| (id.to_owned(), role, site.map(str::to_owned)))
            .collect();
        // Where an agent of a site sits when nobody said: on the site's routers of the
        // highest tier it has (its core, else its aggregation, else its edge), which is
        // where a PoP's monitoring host is plugged in; only a site without any of those
        // has the agent on every router. An agent hung off every router of its site
        // would be a path around the site's own links, and an access router cut off
        // behind its link would look dead to it.
        let mut by_site: HashMap<String, (u8, Vec<Ix>)> = HashMap::new();
        for (id, role, site) in devices {
            let d = net.add(Node::Device(id.clone()), site.clone());
            if let Some(s) = site {
                let tier = attachment_tier(role);
                let slot = by_site.entry(s).or_insert((tier, Vec::new()));
                if tier > slot.0 {
                    *slot = (tier, Vec::new());
                }
                if tier == slot.0 {
                    slot.1.push(d);
                }
            }
            let api = net.add(Node::Api(id), None);
            net.join(d, api);
        }
        let links: Vec<(String, String, String)> = topology
            .links()
            .map(|(l, a, b)| (l.to_owned(), a.to_owned(), b.to_owned()))
            .collect();
        for (l, a, b) in links {
            let (Some(a), Some(b)) = (net.find(Kind::Device, &a), net.find(Kind::Device, &b))
            else {
                continue;
            };
            let ix = net.add(Node::Link(l), None);
            net.join(a, ix);
            net.join(ix, b);
            net.ends.insert(ix, (a, b));
        }
        let roots: Vec<Ix> = topology
            .root_devices()
            .into_iter()
            .filter_map(|d| net.find(Kind::Device, &d))
            .collect();
        let mut server_placed = false;
        for v in vantages {
            let node = if v.id == SERVER_VANTAGE {
                server_placed = true;
                Node::Server
            } else {
                Node::Agent(v.id.clone())
            };
            let known = match &node {
                Node::Server => net.server.is_some(),
                _ => net.find(Kind::Agent, &v.id).is_some(),
            };
            if known {
                continue;
            }
            let mut at: Vec<Ix> = v
                .attached_to
                .iter()
                .filter_map(|d| net.find(Kind::Device, d))
                .collect();
            if at.is_empty() {
                at = v
                    .site
                    .as_ref()
                    .and_then(|s| by_site.get(s).map(|(_, at)| at.clone()))
                    .unwrap_or_else(|| roots.clone());
            }
            let ix = net.add(node, None);
            for d in at {
                net.join(d, ix);
            }
        }
        if !server_placed {
            let ix = net.add(Node::Server, None);
            for d in roots {
                net.join(d, ix);
            }
        }
        net
    }

    /// The nodes joined to `n` (a vantage's attachment points).
    pub(crate) fn neighbours(&self, n: Ix) -> &[Ix] {
        self.adj.get(n as usize).map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, node: Node, site: Option<String>) -> Ix {
        let ix = self.nodes.len() as Ix;
        let named = match &node {
            Node::Device(n) => Some((Kind::Device, n)),
            Node::Link(n) => Some((Kind::Link, n)),
            Node::Api(n) => Some((Kind::Api, n)),
            Node::Agent(n) => Some((Kind::Agent, n)),
            Node::Server => None,
        };
        match named {
            Some((kind, name)) => {
                self.names[kind as usize].insert(name.clone(), ix);
            }
            None => self.server = Some(ix),
        }
        self.transit.push(node.transit());
        self.nodes.push(node);
        self.adj.push(Vec::new());
        self.site.push(site);
        ix
    }

    fn join(&mut self, a: Ix, b: Ix) {
        self.adj[a as usize].push(b);
        self.adj[b as usize].push(a);
    }

    /// The node of a kind by name.
    pub fn find(&self, kind: Kind, name: &str) -> Option<Ix> {
        self.names[kind as usize].get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn server(&self) -> Ix {
        self.server.unwrap_or(0)
    }

    /// Whether traffic may go from `from` to `to`: into any node, out of a transit node
    /// or of the vantage the walk starts at.
    fn step_ok(&self, from: Ix, to: Ix, root: Ix, failed: &[bool]) -> bool {
        !failed[to as usize] && (from == root || self.transit[from as usize])
    }

    /// What `root` reaches with the `failed` nodes removed.
    pub fn reach(&self, root: Ix, failed: &[bool]) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        if failed[root as usize] {
            return seen;
        }
        seen[root as usize] = true;
        let mut queue = VecDeque::from([root]);
        while let Some(n) = queue.pop_front() {
            for &m in &self.adj[n as usize] {
                if !seen[m as usize] && self.step_ok(n, m, root, failed) {
                    seen[m as usize] = true;
                    queue.push_back(m);
                }
            }
        }
        seen
    }

    /// What `root` reaches with the `failed` nodes removed, as a view without a
    /// dominator tree (its ancestors are each node alone): enough to tell what a set of
    /// failures explains, at the cost of one search.
    pub fn reach_view(&self, root: Ix, failed: &[bool]) -> DomView {
        DomView {
            idom: vec![None; self.len()],
            reached: self.reach(root, failed),
            root,
        }
    }

    /// The dominator tree from `root` with the `failed` nodes removed, by the
    /// iterative algorithm of Cooper, Harvey and Kennedy over the graph's own
    /// adjacency (no copy of the graph per vantage, which is what made a petgraph view
    /// cost more than the search itself on a 10,000-node network).
    pub fn dominators(&self, root: Ix, failed: &[bool]) -> DomView {
        let n = self.len();
        const NONE: u32 = u32::MAX;
        let mut post = vec![NONE; n];
        let mut order: Vec<Ix> = Vec::with_capacity(n);
        let mut reached = vec![false; n];
        if !failed[root as usize] {
            // Iterative depth-first search for the postorder.
            let mut stack: Vec<(Ix, usize)> = vec![(root, 0)];
            reached[root as usize] = true;
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                let adj = &self.adj[node as usize];
                if *next < adj.len() {
                    let m = adj[*next];
                    *next += 1;
                    if !reached[m as usize] && self.step_ok(node, m, root, failed) {
                        reached[m as usize] = true;
                        stack.push((m, 0));
                    }
                } else {
                    post[node as usize] = order.len() as u32;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        let mut idom = vec![NONE; n];
        idom[root as usize] = root;
        let intersect = |idom: &[u32], mut a: Ix, mut b: Ix| {
            while a != b {
                while post[a as usize] < post[b as usize] {
                    a = idom[a as usize];
                }
                while post[b as usize] < post[a as usize] {
                    b = idom[b as usize];
                }
            }
            a
        };
        let mut changed = true;
        while changed {
            changed = false;
            // Reverse postorder, the root (last in postorder) excluded.
            for &node in order.iter().rev().skip(1) {
                let mut new = NONE;
                for &p in &self.adj[node as usize] {
                    if !reached[p as usize]
                        || idom[p as usize] == NONE
                        || !self.step_ok(p, node, root, failed)
                    {
                        continue;
                    }
                    new = if new == NONE {
                        p
                    } else {
                        intersect(&idom, p, new)
                    };
                }
                if new != NONE && idom[node as usize] != new {
                    idom[node as usize] = new;
                    changed = true;
                }
            }
        }
        let idom = idom
            .into_iter()
            .enumerate()
            .map(|(i, d)| (d != NONE && i as Ix != root).then_some(d))
            .collect();
        DomView {
            idom,
            reached,
            root,
        }
    }
}
