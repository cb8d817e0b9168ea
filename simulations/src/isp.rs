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
//!
//! Every router also answers UDP echo ([`crate::echo`]). Endpoints that should be placed
//! in the network ([`VirtualIsp::attach`]) use the address they are given as their
//! source; the routers and the relays ([`VirtualIsp::relay_udp`],
//! [`VirtualIsp::relay_tcp`]) then answer them only along a path that is up
//! ([`crate::paths`]): behind a cut, a connection is met with silence.

use crate::api_session::{self, PATH_RECHECK, Session};
use crate::attach::AttachError;
use crate::faults::{Fault, FaultError, FaultId, FaultRecord};
use crate::network::{ApiState, Network};
use crate::paths::PathQuality;
use crate::router_state::unix_seconds;
use crate::tls::SimCa;
use crate::topology::{Credentials, RouterSpec, Topology};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open API sessions one router keeps (held ones included); more connections are
/// refused. A real RouterOS router limits API sessions too.
const MAX_SESSIONS: usize = 1_024;

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
    /// Where it answers UDP echo (RFC 862), the path-aware stand-in for ping: only
    /// along a path that is up, with the path's loss and delay, also while its
    /// management plane is down, never while it is off ([`crate::echo`]).
    pub echo_addr: SocketAddr,
}

/// A virtual ISP whose routers answer the RouterOS API on their own ports.
#[derive(Debug)]
pub struct VirtualIsp {
    net: Arc<Network>,
    routers: Vec<RunningRouter>,
    ca_pem: String,
    /// Where routers and relays listen.
    bind_ip: IpAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// Relays started after the routers; they stop with them.
    relays: Mutex<Vec<JoinHandle<()>>>,
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
            tasks: Vec::with_capacity(2 * net.len() + 1),
            net: Arc::clone(&net),
            bind_ip,
            relays: Mutex::new(Vec::new()),
        };
        for (index, spec) in net.topology().routers.iter().enumerate() {
            // On error `isp` is dropped, which cancels the listeners started so far.
            let listener = TcpListener::bind(SocketAddr::new(bind_ip, 0)).await?;
            let tls_listener = TcpListener::bind(SocketAddr::new(bind_ip, 0)).await?;
            let echo = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?;
            let addr = listener.local_addr()?;
            let tls_addr = tls_listener.local_addr()?;
            let echo_addr = echo.local_addr()?;
            let acceptor = ca
                .acceptor_for(&spec.id, bind_ip)
                .map_err(io::Error::other)?;
            let credentials = net.topology().credentials_for(spec);
            tracing::debug!(router = %spec.id, %addr, %tls_addr, %echo_addr, "simulated router listening");
            isp.tasks.push(tokio::spawn(crate::echo::serve(
                echo,
                Arc::clone(&net),
                index,
                isp.cancel.child_token(),
            )));
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
                echo_addr,
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

    /// Places endpoint `name` at router `router` and returns the loopback address
    /// (in `127.1.0.0/16`) it must use as the source of everything it sends: routers,
    /// echo and relays then answer it only along a path from `router` that is up. The
    /// same name at the same router gets the same address again; see [`crate::attach`].
    pub fn attach(&self, name: &str, router: &str) -> Result<IpAddr, AttachError> {
        self.net.attach(name, router)
    }

    /// The path between two routers now: `Ok(None)` when none is up; `Err` names an id
    /// that is not a router. See [`crate::paths`].
    pub fn path(&self, from: &str, to: &str) -> Result<Option<PathQuality>, FaultError> {
        self.net
            .path_between(from, to, unix_seconds(SystemTime::now()))
    }

    /// Starts a UDP relay in front of `dest`, a real service standing at router
    /// `dest_router`, and returns the address clients send to instead: datagrams of an
    /// attached client cross it (both ways) only while a path joins its router and
    /// `dest_router`, with the path's loss and delay. One upstream socket per client,
    /// idle entries expire, the table is bounded (see [`crate::relay`]). It stops with
    /// the ISP. Fails with [`io::ErrorKind::InvalidInput`] for an unknown router.
    pub async fn relay_udp(&self, dest: SocketAddr, dest_router: &str) -> io::Result<SocketAddr> {
        let dest_router = self.router_index(dest_router)?;
        let front = UdpSocket::bind(SocketAddr::new(self.bind_ip, 0)).await?;
        let addr = front.local_addr()?;
        let task = tokio::spawn(crate::relay::serve_udp(crate::relay::UdpRelay {
            front,
            dest,
            dest_router,
            net: Arc::clone(&self.net),
            cancel: self.cancel.child_token(),
        }));
        self.keep_relay(task);
        tracing::debug!(%addr, %dest, "UDP relay listening");
        Ok(addr)
    }

    /// Starts a TCP relay in front of `dest` (at router `dest_router`), like
    /// [`VirtualIsp::relay_udp`] for streams: a connection is carried upstream only once
    /// a path is up, and its bytes stop while the path is down.
    pub async fn relay_tcp(&self, dest: SocketAddr, dest_router: &str) -> io::Result<SocketAddr> {
        let dest_router = self.router_index(dest_router)?;
        let listener = TcpListener::bind(SocketAddr::new(self.bind_ip, 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(crate::relay::serve_tcp(crate::relay::TcpRelay {
            listener,
            dest,
            dest_router,
            net: Arc::clone(&self.net),
            cancel: self.cancel.child_token(),
        }));
        self.keep_relay(task);
        tracing::debug!(%addr, %dest, "TCP relay listening");
        Ok(addr)
    }

    fn router_index(&self, id: &str) -> io::Result<usize> {
        self.net.index_of(id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                AttachError::UnknownRouter(id.to_owned()),
            )
        })
    }

    fn keep_relay(&self, task: JoinHandle<()>) {
        let mut relays = self.relays.lock().unwrap_or_else(PoisonError::into_inner);
        relays.retain(|t| !t.is_finished());
        relays.push(task);
    }

    /// Stops every listener, the timeline and every open session, then waits for them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let relays =
            std::mem::take(&mut *self.relays.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in std::mem::take(&mut self.tasks).into_iter().chain(relays) {
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
                let now = unix_seconds(SystemTime::now());
                // Behind a broken path the connection is held in silence (the session
                // waits for the path); only a peer that reaches the router is refused
                // by a dead router or a failed management plane.
                if net.reach(peer.ip(), router, now).is_up()
                    && net.api_state(router, now) == ApiState::Unreachable
                {
                    tracing::debug!(router, %peer, "API connection refused (fault)");
                    drop(stream);
                    continue;
                }
                if sessions.len() >= MAX_SESSIONS {
                    tracing::debug!(router, %peer, "API connection refused (too many sessions)");
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let session = Session::new(Arc::clone(&net), router, Arc::clone(&credentials))
                    .with_peer(peer.ip());
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
    // Behind a broken path the client's handshake does not arrive: wait for the path
    // (or for the client to give up) before answering it.
    loop {
        if session.reach(unix_seconds(SystemTime::now())).is_up() {
            break;
        }
        let mut probe = [0u8; 1];
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PATH_RECHECK) => {}
            r = stream.peek(&mut probe) => match r {
                Ok(0) | Err(_) => return,
                // The hello waits in the kernel; from here on only the path matters.
                Ok(_) => loop {
                    if session.reach(unix_seconds(SystemTime::now())).is_up() {
                        break;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(PATH_RECHECK) => {}
                    }
                },
            },
        }
    }
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
