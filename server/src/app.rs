//! Wiring of a running server: store, QUIC ingest, HTTP.

use crate::config::ServerConfig;
use crate::domain::StoreDomain;
use crate::http::{AppState, AuthSetupError};
use crate::ingest::Ingestor;
use crate::internal_events::{
    AlertCycle, AlertNotified, EntityNotWatched, InternalEvent, ServerMetrics,
};
use crate::store::{Store, StoreError};
use ispvm_actors::StatusPolicy;
use ispvm_actors::tree::{MonitorTree, SystemClock, TreeOptions};
use ispvm_transport::quic::{ALPN_INGEST, EndpointError, server_endpoint};
use ispvm_transport::{TlsError, TlsMaterial};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "TLS material: {0} (create it with `ispvm pki init` and `ispvm pki issue --kind server --name server`)"
    )]
    Tls(#[from] TlsError),
    #[error("QUIC endpoint: {0}")]
    Quic(#[from] EndpointError),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error("master key: {0}")]
    MasterKey(#[from] crate::store::crypto::KeyError),
    #[error(transparent)]
    Tree(#[from] ispvm_actors::tree::TreeError),
    #[error("notifier: {0}")]
    Notify(#[from] crate::notify::NotifyError),
}

/// A started server; stop it with [`RunningServer::shutdown`].
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    /// HTTPS ingest, when enabled.
    pub https_addr: Option<SocketAddr>,
    pub store: Store,
    pub metrics: Arc<ServerMetrics>,
    /// The actor tree: live state per entity and the alert engines.
    pub tree: MonitorTree,
    /// Counts and logs persisted notifications; ends when the tree stops.
    notifications: JoinHandle<()>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Re-reads the revocation list; runs until shutdown aborts it.
    crl_renewal: JoinHandle<()>,
}

/// Connects the store, then starts the QUIC ingest endpoint and the HTTP server.
pub async fn start(config: &ServerConfig) -> Result<RunningServer, StartError> {
    let paths = config.tls_paths();
    let tls = TlsMaterial::load(&paths.ca, &paths.cert, &paths.key)?;
    let store = Store::connect(&config.database_url()).await?;
    start_with(config, store, tls).await
}

/// Starts with a store and TLS material already at hand (the demo and tests).
pub async fn start_with(
    config: &ServerConfig,
    store: Store,
    tls: TlsMaterial,
) -> Result<RunningServer, StartError> {
    let metrics = ServerMetrics::new();
    // Settings that can be wrong are checked before anything listens.
    let master_key = config.resolve_master_key()?;
    if master_key.is_none() {
        tracing::warn!(
            "no master key (ISPVM_MASTER_KEY): credential sets cannot be stored until one is set"
        );
    }
    let api_state = AppState::new(
        store.clone(),
        metrics.clone(),
        StatusPolicy {
            stale_after_ms: config.stale_after_ms,
        },
        &config.auth,
        master_key,
        config.tenant_defaults,
    )?;
    let api_state = api_state.with_http(&config.http);
    // The notifier sends incident transitions to the tenants' channels; the correlator
    // wakes it after each one it persisted, a timer covers retries and restarts.
    let notifier = crate::notify::Notifier::new(
        store.clone(),
        api_state.master_key.clone(),
        metrics.clone(),
        crate::notify::NotifyOptions::default(),
    )?;
    // The actor tree starts a supervisor (and alert engine) per stored tenant.
    let (notify_tx, mut notify_rx) = tokio::sync::mpsc::unbounded_channel();
    let cycle_metrics = metrics.clone();
    let tree_metrics = metrics.clone();
    let tree = MonitorTree::start(
        Arc::new(StoreDomain {
            store: store.clone(),
            metrics: metrics.clone(),
        }),
        Arc::new(SystemClock),
        TreeOptions {
            timers: true,
            notify: Some(notify_tx),
            on_cycle: Some(Arc::new(move |report| {
                AlertCycle { report }.emit(&cycle_metrics)
            })),
            on_event: Some(Arc::new(move |event| {
                EntityNotWatched { event }.emit(&tree_metrics)
            })),
            limits: config.actors,
            correlation: ispvm_actors::tree::CorrelationOptions {
                periods: config.evaluation,
                board: config.correlation.evidence,
                incidents: config.correlation.incidents,
                on_incident: Some(notifier.hook()),
            },
        },
    )
    .await?;
    let notified_metrics = metrics.clone();
    // Alert notifications stay a history (people are told about incidents, by the
    // notifier); here they are counted and logged once they are persisted.
    let notifications = tokio::spawn(async move {
        while let Some(notification) = notify_rx.recv().await {
            AlertNotified {
                notification: &notification,
            }
            .emit(&notified_metrics);
        }
    });
    let api_state = api_state.with_tree(tree.clone());
    let (stop, stopped) = watch::channel(false);
    let endpoint = server_endpoint(config.quic.listen, &tls, ALPN_INGEST)?;
    let quic_addr = endpoint
        .local_addr()
        .map_err(|source| EndpointError::Bind {
            addr: config.quic.listen,
            source,
        })?;
    let policy = config.timeseries_policy();
    let ingestor = Arc::new(
        Ingestor::new(store.clone(), config.limits, config.rate, metrics.clone())
            .with_policy(policy)
            .with_connections_per_agent(config.quic.max_connections_per_agent)
            .with_tree(tree.clone())
            .with_cluster(api_state.cluster.clone()),
    );
    let mut tasks = vec![notifier.spawn(stopped.clone())];
    let (ingest_tls, crl_renewal) = crate::ingest::tls::renewing(
        &tls,
        endpoint.clone(),
        std::time::Duration::from_millis(config.crl_check_ms.max(100)),
    )?;
    if config.timeseries.maintenance_interval_s > 0 {
        tasks.push(tokio::spawn(crate::store::maintenance::run(
            store.clone(),
            policy,
            Some(ingestor.cache()),
            std::time::Duration::from_secs(config.timeseries.maintenance_interval_s),
            stopped.clone(),
        )));
    }
    let mut https_addr = None;
    if let Some(listen) = config.https.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::HttpBind {
                addr: listen,
                source,
            })?;
        https_addr = Some(
            listener
                .local_addr()
                .map_err(|source| StartError::HttpBind {
                    addr: listen,
                    source,
                })?,
        );
        tasks.push(tokio::spawn(crate::ingest::https::serve(
            listener,
            ingest_tls.clone(),
            ingestor.clone(),
            metrics.clone(),
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::ingest::quic::serve(
        endpoint,
        ingestor,
        metrics.clone(),
        ingest_tls,
        stopped.clone(),
    )));

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| StartError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let http_task = tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, api_state, stopped).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tasks.push(http_task);
    tracing::info!(http = %http_addr, quic = %quic_addr, https_ingest = ?https_addr, store = store.engine(), "server started");
    Ok(RunningServer {
        http_addr,
        quic_addr,
        https_addr,
        store,
        metrics,
        tree,
        notifications,
        stop,
        tasks,
        crl_renewal,
    })
}

impl RunningServer {
    /// Stops accepting, finishes what is in flight, closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.crl_renewal.abort();
        for t in self.tasks {
            let _ = t.await;
        }
        self.tree.stop().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.notifications).await;
        self.store.close().await;
        tracing::info!("server stopped");
    }
}

/// Why the first administrator could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("creating the first administrator: {0}")]
    Catalog(#[from] crate::store::CatalogError),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The administrator a fresh installation starts with.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub tenant: String,
    pub username: String,
    /// Where the generated password was written (`None` when it came from the
    /// environment).
    pub password_file: Option<std::path::PathBuf>,
}

/// Username of the first administrator.
pub const BOOTSTRAP_USERNAME: &str = "admin";
/// File in the data directory that receives a generated first password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Writes `text` to `path`, readable by the owner only.
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

/// Makes sure someone can log in: when no platform administrator exists, creates user
/// `admin` (role admin, platform admin) in the configured `default_tenant`. Its password
/// is `password` (from `ISPVM_ADMIN_PASSWORD`) or, when none is given, a generated one
/// that is written to `<data_dir>/admin-password` (mode 0600), never to the log. Returns
/// `None` when an administrator already existed.
pub async fn bootstrap_admin(
    store: &Store,
    config: &ServerConfig,
    password: Option<String>,
) -> Result<Option<BootstrapAdmin>, BootstrapError> {
    let tenant = config.default_tenant.as_str();
    if store.ensure_tenant(tenant, tenant).await? {
        store.tenant(tenant).seed_starter_rules().await?;
    }
    if store.has_platform_admin().await? {
        return Ok(None);
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => {
            crate::store::users::validate_password(&p)?;
            (p, false)
        }
        None => {
            use rand::Rng;
            let p: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(24)
                .map(char::from)
                .collect();
            (p, true)
        }
    };
    let hash = crate::http::hash_password(&password, &config.auth)?;
    let spec = crate::store::users::UserSpec {
        role: crate::store::users::Role::Admin,
        display_name: "Administrator".into(),
        disabled: false,
    };
    store
        .tenant(tenant)
        .create_user(
            &crate::store::Actor::system(),
            BOOTSTRAP_USERNAME,
            &spec,
            &hash,
            true,
        )
        .await?;
    let password_file = if generated {
        let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
        write_private(&path, &password).map_err(|source| BootstrapError::Write {
            path: path.clone(),
            source,
        })?;
        // The password goes to the file (mode 0600) only: logs are shipped, kept and
        // read by more people than the administrator.
        tracing::warn!(
            tenant,
            username = BOOTSTRAP_USERNAME,
            file = %path.display(),
            "created the first administrator with a generated password: read it from the file"
        );
        Some(path)
    } else {
        tracing::info!(
            tenant,
            username = BOOTSTRAP_USERNAME,
            "created the first administrator with the password from ISPVM_ADMIN_PASSWORD"
        );
        None
    };
    Ok(Some(BootstrapAdmin {
        tenant: tenant.to_owned(),
        username: BOOTSTRAP_USERNAME.to_owned(),
        password_file,
    }))
}
