//! What several benchmarks share: the synthetic ISP they run on.

use ispvm_actors::topology::Topology;
use ispvm_proto::DeviceRole;

/// The shape of a synthetic ISP.
#[derive(Debug, Clone, Copy)]
pub struct IspShape {
    pub pops: usize,
    /// Aggregation routers in each PoP's ring.
    pub ring: usize,
    /// Access routers per aggregation router.
    pub access: usize,
}

/// `pops` PoPs under two upstreams and two edge routers; each PoP has two cores (both
/// on both edges), a ring of `ring` aggregation routers closed on the two cores, and
/// `access` access routers per aggregation router, dual-homed to it and to its ring
/// neighbour. Devices are `pop<P>-core<1|2>`, `pop<P>-agg<I>`, `pop<P>-agg<I>-acc<K>`;
/// links are `<a>~<b>`.
pub fn isp_topology(shape: &IspShape) -> Result<Topology, ispvm_actors::topology::TopologyError> {
    let mut t = Topology::new();
    let link = |t: &mut Topology, x: &str, y: &str| t.upsert_link(&format!("{x}~{y}"), x, y);
    for u in ["up1", "up2"] {
        t.upsert_device(u, DeviceRole::Upstream, None);
    }
    for e in ["edge1", "edge2"] {
        t.upsert_device(e, DeviceRole::Edge, None);
        link(&mut t, "up1", e)?;
        link(&mut t, "up2", e)?;
    }
    for p in 0..shape.pops {
        let site = format!("pop{p}");
        let cores = [format!("{site}-core1"), format!("{site}-core2")];
        for c in &cores {
            t.upsert_device(c, DeviceRole::Core, Some(&site));
            link(&mut t, "edge1", c)?;
            link(&mut t, "edge2", c)?;
        }
        let aggs: Vec<String> = (0..shape.ring).map(|i| format!("{site}-agg{i}")).collect();
        for g in &aggs {
            t.upsert_device(g, DeviceRole::Agg, Some(&site));
        }
        link(&mut t, &cores[0], &aggs[0])?;
        for w in aggs.windows(2) {
            link(&mut t, &w[0], &w[1])?;
        }
        link(&mut t, &aggs[shape.ring - 1], &cores[1])?;
        for (i, g) in aggs.iter().enumerate() {
            let neighbour = &aggs[(i + 1) % shape.ring];
            for k in 0..shape.access {
                let acc = format!("{g}-acc{k}");
                t.upsert_device(&acc, DeviceRole::Access, Some(&site));
                link(&mut t, g, &acc)?;
                link(&mut t, neighbour, &acc)?;
            }
        }
    }
    Ok(t)
}
