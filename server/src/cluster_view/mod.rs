//! The server's view of each tenant's agent cluster, merged from the agents' reports.
//!
//! Each agent reports what *it* sees (members, its own routers, the reachability verdicts
//! it relays); no single report is the truth. The server keeps the newest report per
//! agent (in the store, so a restart or the other server of an HA pair sees the same)
//! and merges them: a member is live if any agent with a fresh report sees it live, a
//! router's owners are the fresh reporters that say they poll it, and each cell of the
//! reachability matrix is the freshest verdict any agent relayed. The matrix is what
//! root-cause analysis reads ([`ClusterViews::reachability`]).

mod summary;

pub use summary::{
    Convergence, HandoverSummary, MemberSummary, OwnershipSummary, ReachSummary, ReportFreshness,
};

use crate::internal_events::{ServerMetrics, StoredRowUnreadable};
use crate::store::{Store, StoreError, StoredReport};
use ispvm_actors::reach::ReachMatrix;
use ispvm_proto::ClusterReport;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A report older than this (by the server's receive time) no longer counts: its agent
/// is dead, cut off from the server, or no longer clustered. Agents report every 5 s.
pub const REPORT_STALE_AFTER_MS: i64 = 30_000;

/// How long a tenant's merged view is served from memory before it is read again from
/// the store (reports that reached another server show up within this time).
const REFRESH: Duration = Duration::from_secs(5);

/// One tenant's newest reports and what they merge into.
#[derive(Debug, Clone, Default)]
pub struct TenantCluster {
    /// Newest report per agent.
    pub reports: BTreeMap<String, StoredReport>,
    /// Freshest verdict per (vantage, target) over every report.
    pub matrix: ReachMatrix,
}

impl TenantCluster {
    pub fn from_reports(reports: Vec<StoredReport>) -> Self {
        let mut view = TenantCluster::default();
        for r in reports {
            view.add(r);
        }
        view
    }

    /// Takes `r` if it is newer than what the agent reported before.
    fn add(&mut self, r: StoredReport) {
        if self
            .reports
            .get(&r.agent)
            .is_some_and(|old| old.report.at_ms >= r.report.at_ms)
        {
            return;
        }
        self.matrix.merge(&r.agent, &r.report.reach);
        self.reports.insert(r.agent.clone(), r);
    }

    /// Reports received within [`REPORT_STALE_AFTER_MS`] of `now_ms`.
    pub fn fresh(&self, now_ms: i64) -> impl Iterator<Item = &StoredReport> {
        self.reports
            .values()
            .filter(move |r| now_ms.saturating_sub(r.received_ms) <= REPORT_STALE_AFTER_MS)
    }
}

struct Cached {
    loaded: Instant,
    view: Arc<TenantCluster>,
}

/// Every tenant's cluster view, read from the store on demand and kept current by
/// ingest between reads.
#[derive(Clone)]
pub struct ClusterViews {
    store: Store,
    /// Where stored reports that cannot be read are counted.
    metrics: Arc<ServerMetrics>,
    tenants: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for ClusterViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterViews").finish_non_exhaustive()
    }
}

impl ClusterViews {
    pub fn new(store: Store, metrics: Arc<ServerMetrics>) -> Self {
        ClusterViews {
            store,
            metrics,
            tenants: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant's merged view, at most [`REFRESH`] behind the store.
    pub async fn tenant(&self, tenant: &str) -> Result<Arc<TenantCluster>, StoreError> {
        if let Some(c) = self.lock().get(tenant)
            && c.loaded.elapsed() < REFRESH
        {
            return Ok(Arc::clone(&c.view));
        }
        let loaded = Instant::now();
        let read = self.store.tenant(tenant).cluster_reports().await?;
        let reports = StoredRowUnreadable::report(tenant, read, &self.metrics);
        let view = Arc::new(TenantCluster::from_reports(reports));
        self.lock().insert(
            tenant.to_owned(),
            Cached {
                loaded,
                view: Arc::clone(&view),
            },
        );
        Ok(view)
    }

    /// The tenant's reachability matrix, for root-cause analysis.
    pub async fn reachability(&self, tenant: &str) -> Result<ReachMatrix, StoreError> {
        Ok(self.tenant(tenant).await?.matrix.clone())
    }

    /// Ingest stored `report` as `agent`'s newest: the cached view (if any) takes it
    /// at once instead of waiting for the next read of the store.
    pub fn note_report(&self, tenant: &str, agent: &str, report: &ClusterReport, received_ms: i64) {
        let mut tenants = self.lock();
        if let Some(c) = tenants.get_mut(tenant) {
            Arc::make_mut(&mut c.view).add(StoredReport {
                agent: agent.to_owned(),
                received_ms,
                report: report.clone(),
            });
        }
    }
}
