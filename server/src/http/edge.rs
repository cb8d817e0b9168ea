//! What every connection and request to the HTTP API passes before any route: a cap on
//! connections served at once, a deadline for a request's headers and one for the
//! whole request, and the client's address as the audit log and the login throttle see
//! it.
//!
//! Without them one client can hold the server with connections that never finish
//! their headers (slowloris), or requests whose body trickles in a byte a minute; and a
//! login budget per address means nothing behind a reverse proxy unless the proxy's
//! `X-Forwarded-For` is believed, and means nothing at all if anyone's is.

use super::AppState;
use crate::config::HttpConfig;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// The limits and trust of the HTTP edge, from `[http]`.
#[derive(Debug, Clone)]
pub struct Edge {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub trusted_proxies: Vec<IpNet>,
}

impl Edge {
    pub fn from_config(c: &HttpConfig) -> Self {
        Edge {
            header_read_timeout: Duration::from_millis(c.header_read_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(c.request_timeout_ms.max(1)),
            max_connections: c.max_connections.max(1),
            trusted_proxies: c.trusted_proxies.clone(),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer`: `peer` itself, unless `peer` is a
    /// trusted proxy; then the right-most address of `X-Forwarded-For` that is not a
    /// trusted proxy (the left-most ones are whatever the client chose to send).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => continue,
                Ok(ip) => return SocketAddr::new(ip, 0),
                // A malformed hop ends what can be believed.
                Err(_) => break,
            }
        }
        peer
    }
}

impl Default for Edge {
    fn default() -> Self {
        Edge::from_config(&HttpConfig::default())
    }
}

/// The client's address, as [`Edge::client`] resolved it.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedClient(pub SocketAddr);

/// The layer in front of every route: resolves the client address and bounds the
/// request's time.
pub(super) async fn guard(State(edge): State<Arc<Edge>>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = edge.client(peer, req.headers());
        req.extensions_mut().insert(ResolvedClient(client));
    }
    match tokio::time::timeout(edge.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            Json(json!({
                "error": format!("the request took over {} ms", edge.request_timeout.as_millis()),
                "code": "request_timeout",
            })),
        )
            .into_response(),
    }
}

/// Serves the API on `listener` until `stop` turns true, at most `max_connections` at a
/// time (more wait in the kernel's accept queue); then lets the connections finish
/// their requests, for up to 10 s.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let edge = Arc::clone(&state.edge);
    let app = super::router(state);
    let slots = Arc::new(Semaphore::new(edge.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: give the others time to end.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(remote))));
        let header_timeout = edge.header_read_timeout;
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "HTTP connection ended");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections still open 10 s after shutdown; closing them"
        );
        connections.abort_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn edge(trusted: &[&str]) -> Edge {
        Edge {
            trusted_proxies: trusted.iter().map(|t| t.parse().expect("net")).collect(),
            ..Edge::default()
        }
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        h
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let proxy: SocketAddr = "10.0.0.5:40000".parse().expect("addr");
        let anyone: SocketAddr = "198.51.100.7:40000".parse().expect("addr");
        let e = edge(&["10.0.0.0/8"]);
        let client = |peer, v| e.client(peer, &xff(v)).ip().to_string();
        assert_eq!(client(proxy, "203.0.113.9"), "203.0.113.9");
        // The client's own claim (left) is not believed; the hop the proxy saw is.
        assert_eq!(client(proxy, "1.2.3.4, 203.0.113.9"), "203.0.113.9");
        // Chained trusted proxies are skipped.
        assert_eq!(client(proxy, "203.0.113.9, 10.1.1.1"), "203.0.113.9");
        assert_eq!(client(proxy, "garbage"), "10.0.0.5");
        assert_eq!(client(anyone, "203.0.113.9"), "198.51.100.7");
        assert_eq!(
            edge(&[])
                .client(proxy, &xff("203.0.113.9"))
                .ip()
                .to_string(),
            "10.0.0.5"
        );
    }
}
