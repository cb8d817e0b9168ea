//! A running virtual ISP: one TCP listener and one TLS listener per simulated router.
//!
//! Every router gets its own loopback ports, so an agent polls it exactly as it would poll
//! a real router on 8728 (API) and 8729 (API-SSL), just at other addresses. Each accepted
//! connection is its own task; [`VirtualIsp::shutdown`] (or dropping the [`VirtualIsp`])
//! stops the listeners, the timeline and every open session.
//!
//! Faults are applied to the shared [`Network`], live ([`VirtualIsp::apply`]) or from the
//! topology's `[[timeline]]`; a router whose API is unreachable at the moment a connection
//! arrives closes it at once (the client sees a reset or EOF before any reply).

use crate::api_session::{self, Session};
use crate::faults::{Fault, FaultError, FaultId, FaultRecord};
use crate::network::{ApiState, Network};
use crate::router_state::unix_seconds;
use crate::tls::SimCa;
use crate::topology::{Credentials, RouterSpec, Topology};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A simulated router that is listening.
#[derive(Debug, Clone)]
pub struct RunningRouter {
    pub spec: RouterSpec,
    /// Where its RouterOS API answers (plain TCP, like port 8728).
    pub addr: SocketAddr,
    /// Where its API-SSL answers (TLS, like port 8729); the certificate is issued by
    /// [`VirtualIsp::tls_ca_pem`].
    pub tls_addr: SocketAddr,
    /// The login it accepts (its own, or the topology's).
    pub credentials: Credentials,
}

/// A virtual ISP whose routers answer the RouterOS API on their own ports.
#[derive(Debug)]
pub struct VirtualIsp {
    net: Arc<Network>,
    routers: Vec<RunningRouter>,
    ca_pem: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl VirtualIsp {
    /// Binds every router of `topology` on `(bind_ip, port 0)` twice (API and API-SSL),
    /// serves it in a task, and starts the topology's timeline.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the topology does not validate, or
    /// with the bind error; routers already bound are stopped again in both cases.
    pub async fn start(topology: Topology, bind_ip: IpAddr) -> io::Result<VirtualIsp> {
        topology
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let ca = SimCa::new().map_err(io::Error::other)?;
        let started = SystemTime::now();
        let net = Arc::new(Network::new(topology, started));
        let mut isp = VirtualIsp {
            routers: Vec::with_capacity(net.len()),
            ca_pem: ca.pem().to_owned(),
            cancel: CancellationToken::new(),
            tasks: Vec::with_capacity(net.len() + 1),
            net: Arc::clone(&net),
        };
        for (index, spec) in net.topology().routers.iter().enumerate() {
            // On error `isp` is dropped, which cancels the listeners started so far.
            let listener = TcpListener::bind(SocketAddr::new(bind_ip, 0)).await?;
            let tls_listener = TcpListener::bind(SocketAddr::new(bind_ip, 0)).await?;
            let addr = listener.local_addr()?;
            let tls_addr = tls_listener.local_addr()?;
            let acceptor = ca
                .acceptor_for(&spec.id, bind_ip)
                .map_err(io::Error::other)?;
            let credentials = net.topology().credentials_for(spec);
            tracing::debug!(router = %spec.id, %addr, %tls_addr, "simulated router listening");
            isp.tasks.push(tokio::spawn(accept_loop(
                Listeners {
                    plain: listener,
                    tls: tls_listener,
                    acceptor,
                },
                Arc::clone(&net),
                index,
                Arc::new(credentials.clone()),
                isp.cancel.child_token(),
            )));
            isp.routers.push(RunningRouter {
                spec: spec.clone(),
                addr,
                tls_addr,
                credentials,
            });
        }
        if !net.topology().timeline.is_empty() {
            isp.tasks.push(tokio::spawn(run_timeline(
                Arc::clone(&net),
                isp.cancel.child_token(),
            )));
        }
        Ok(isp)
    }

    /// The routers, in topology order, with the addresses each listens on.
    pub fn routers(&self) -> &[RunningRouter] {
        &self.routers
    }

    /// The router with this id.
    pub fn router(&self, id: &str) -> Option<&RunningRouter> {
        self.routers.iter().find(|r| r.spec.id == id)
    }

    pub fn topology(&self) -> &Topology {
        self.net.topology()
    }

    /// The live network (models and fault log) behind the routers.
    pub fn network(&self) -> &Arc<Network> {
        &self.net
    }

    /// The PEM certificate of the CA that issued every router's API-SSL certificate.
    pub fn tls_ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Applies a fault now; every router reports its effects from this instant.
    pub fn apply(&self, fault: Fault) -> Result<FaultId, FaultError> {
        self.net.apply(fault)
    }

    /// Ends a fault now.
    pub fn clear(&self, id: FaultId) -> Result<(), FaultError> {
        self.net.clear(id)
    }

    /// Faults in force now.
    pub fn active_faults(&self) -> Vec<FaultRecord> {
        self.net.active_faults_at(unix_seconds(SystemTime::now()))
    }

    /// Stops every listener, the timeline and every open session, then waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for handle in std::mem::take(&mut self.tasks) {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                tracing::warn!(error = %e, "a simulated router's task panicked");
            }
        }
    }
}

impl Drop for VirtualIsp {
    /// Dropping without `shutdown` still stops the routers (without waiting for them).
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Applies the topology's timeline: each fault at its `at_s`, cleared after `duration_s`.
async fn run_timeline(net: Arc<Network>, cancel: CancellationToken) {
    let start = tokio::time::Instant::now();
    // (offset, Some(index) to apply entry index | None, clear of applied id)
    let mut events: Vec<(f64, usize, bool)> = Vec::new();
    for (i, entry) in net.topology().timeline.iter().enumerate() {
        events.push((entry.at_s, i, true));
        if let Some(d) = entry.duration_s {
            events.push((entry.at_s + d, i, false));
        }
    }
    // Applies before clears at the same instant, so a zero duration still flaps.
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(y.2.cmp(&x.2)));
    let mut applied: Vec<Option<FaultId>> = vec![None; net.topology().timeline.len()];
    for (at_s, index, apply) in events {
        let when = start + Duration::from_secs_f64(at_s.clamp(0.0, 1e9));
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(when) => {}
        }
        let Some(entry) = net.topology().timeline.get(index) else {
            continue;
        };
        if apply {
            match net.apply(entry.fault.clone()) {
                Ok(id) => {
                    if let Some(slot) = applied.get_mut(index) {
                        *slot = Some(id);
                    }
                }
                Err(e) => tracing::warn!(index, error = %e, "timeline fault not applied"),
            }
        } else if let Some(id) = applied.get(index).copied().flatten()
            && let Err(e) = net.clear(id)
        {
            tracing::warn!(index, error = %e, "timeline fault not cleared");
        }
    }
}

struct Listeners {
    plain: TcpListener,
    tls: TcpListener,
    acceptor: TlsAcceptor,
}

async fn accept_loop(
    listeners: Listeners,
    net: Arc<Network>,
    router: usize,
    credentials: Arc<Credentials>,
    cancel: CancellationToken,
) {
    let mut sessions = JoinSet::new();
    loop {
        // Reap sessions that ended so the set does not grow with every connection.
        while sessions.try_join_next().is_some() {}
        let (accepted, tls) = tokio::select! {
            () = cancel.cancelled() => break,
            a = listeners.plain.accept() => (a, false),
            a = listeners.tls.accept() => (a, true),
        };
        match accepted {
            Ok((stream, peer)) => {
                if net.api_state(router, unix_seconds(SystemTime::now())) == ApiState::Unreachable {
                    // A dead router or a failed management plane: nobody answers.
                    tracing::debug!(router, %peer, "API connection refused (fault)");
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let session = Session::new(Arc::clone(&net), router, Arc::clone(&credentials));
                let token = cancel.child_token();
                if tls {
                    sessions.spawn(serve_tls(
                        stream,
                        listeners.acceptor.clone(),
                        session,
                        token,
                    ));
                } else {
                    sessions.spawn(api_session::serve(stream, session, token));
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(router, error = %e, "accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    // Sessions watch the same token and end on their own; abort any that do not.
    drop(listeners);
    let deadline = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = sessions.join_next() => if next.is_none() { break },
            () = &mut deadline => {
                sessions.shutdown().await;
                break;
            }
        }
    }
}

async fn serve_tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    session: Session,
    cancel: CancellationToken,
) {
    let handshake = tokio::select! {
        () = cancel.cancelled() => return,
        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
    };
    match handshake {
        Ok(Ok(tls)) => api_session::serve(tls, session, cancel).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "API-SSL handshake failed"),
        Err(_) => tracing::debug!("API-SSL handshake timed out"),
    }
}
