//! Wiring of a running server: store, QUIC ingest, HTTP.

use crate::config::ServerConfig;
use crate::http::{AppState, router};
use crate::ingest::Ingestor;
use crate::store::{Store, StoreError};
use crate::telemetry::ServerMetrics;
use ispvm_actors::StatusPolicy;
use ispvm_cluster::quic::{ALPN_INGEST, EndpointError, server_endpoint};
use ispvm_cluster::{TlsError, TlsMaterial};
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
}

/// A started server; stop it with [`RunningServer::shutdown`].
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    /// HTTPS ingest, when enabled.
    pub https_addr: Option<SocketAddr>,
    pub store: Store,
    pub metrics: Arc<ServerMetrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
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
    let (stop, stopped) = watch::channel(false);
    let endpoint = server_endpoint(config.quic.listen, &tls, ALPN_INGEST)?;
    let quic_addr = endpoint
        .local_addr()
        .map_err(|source| EndpointError::Bind {
            addr: config.quic.listen,
            source,
        })?;
    let ingestor = Arc::new(Ingestor::new(
        store.clone(),
        config.limits,
        config.rate,
        metrics.clone(),
    ));
    let mut tasks = Vec::new();
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
        let tls_config = tls.server_config(&[b"http/1.1"])?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
        tasks.push(tokio::spawn(crate::ingest::https::serve(
            listener,
            acceptor,
            ingestor.clone(),
            metrics.clone(),
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::ingest::quic::serve(
        endpoint,
        ingestor,
        metrics.clone(),
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
    let app = router(AppState {
        store: store.clone(),
        metrics: metrics.clone(),
        default_tenant: config.default_tenant.clone(),
        status: StatusPolicy {
            stale_after_ms: config.stale_after_ms,
        },
    });
    let mut http_stopped = stopped;
    let http_task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = http_stopped.changed().await;
        });
        if let Err(e) = serve.await {
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
        stop,
        tasks,
    })
}

impl RunningServer {
    /// Stops accepting, finishes what is in flight, closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
        tracing::info!("server stopped");
    }
}
