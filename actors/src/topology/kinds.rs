//! The words of the topology (ARCHITECTURE §3): what an edge says, whom it joins, how
//! dependencies combine, and who proposed it.
//!
//! The server's catalog stores edges with these types and the topology model reasons
//! over them; both read the same closed sets.

ispvm_proto::text_enum! {
    /// What an edge says about its two ends.
    #[derive(utoipa::ToSchema)]
    pub enum EdgeKind {
        /// `from` fails when `to` fails (suppression and impact follow it).
        DependsOn = "depends_on",
        /// Physical or logical adjacency.
        ConnectedTo = "connected_to",
        /// A BGP session: evidence, not adjacency (it may run between loopbacks).
        BgpPeer = "bgp_peer",
        /// An OSPF adjacency: evidence (it may run over a tunnel).
        OspfNeighbor = "ospf_neighbor",
    }
}

ispvm_proto::text_enum! {
    /// How the `depends_on` edges of one `from` combine.
    #[derive(Default, utoipa::ToSchema)]
    pub enum DependencyGroup {
        /// Each of these edges is required.
        #[default]
        All = "all",
        /// At least one of these edges must be up (redundant uplinks, rings).
        Any = "any",
    }
}

ispvm_proto::text_enum! {
    /// Whether an edge takes part in the topology.
    #[derive(Default, utoipa::ToSchema)]
    pub enum EdgeState {
        /// Inferred, waiting for an operator.
        Proposed = "proposed",
        #[default]
        Accepted = "accepted",
        /// An operator said no; kept so inference does not propose it again.
        Rejected = "rejected",
    }
}

ispvm_proto::text_enum! {
    /// Who made an edge.
    #[derive(utoipa::ToSchema)]
    pub enum EdgeSource {
        Operator = "operator",
        Inferred = "inferred",
    }
}

ispvm_proto::text_enum! {
    /// What an edge may join.
    #[derive(utoipa::ToSchema)]
    pub enum NodeKind {
        Device = "device",
        Link = "link",
        Site = "site",
        Service = "service",
    }
}
