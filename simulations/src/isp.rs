//! A running virtual ISP: one TCP listener per simulated router.
//!
//! Every router gets its own loopback port, so an agent polls it exactly as it would poll
//! a real router on 8728, just at a different address. Each accepted connection is its own
//! task; [`VirtualIsp::shutdown`] (or dropping the [`VirtualIsp`]) stops the listeners and
//! every open session.

use crate::api_session::{self, Session};
use crate::router_state::RouterModel;
use crate::topology::{Credentials, RouterSpec, Topology};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// A simulated router that is listening.
#[derive(Debug, Clone)]
pub struct RunningRouter {
    pub spec: RouterSpec,
    /// Where its RouterOS API answers.
    pub addr: SocketAddr,
    /// The login it accepts (its own, or the topology's).
    pub credentials: Credentials,
}

/// A virtual ISP whose routers answer the RouterOS API on their own ports.
#[derive(Debug)]
pub struct VirtualIsp {
    topology: Topology,
    routers: Vec<RunningRouter>,
    cancel: CancellationToken,
    listeners: Vec<JoinHandle<()>>,
}

impl VirtualIsp {
    /// Binds every router of `topology` on `(bind_ip, port 0)` and serves it in a task.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] if the topology does not validate, or
    /// with the bind error; routers already bound are stopped again in both cases.
    pub async fn start(topology: Topology, bind_ip: IpAddr) -> io::Result<VirtualIsp> {
        topology
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let started = SystemTime::now();
        let mut isp = VirtualIsp {
            routers: Vec::with_capacity(topology.routers.len()),
            cancel: CancellationToken::new(),
            listeners: Vec::with_capacity(topology.routers.len()),
            topology,
        };
        for spec in &isp.topology.routers {
            let Some(model) = RouterModel::from_topology(&isp.topology, &spec.id, started) else {
                // Unreachable for a validated topology: every router id comes from it.
                continue;
            };
            // On error `isp` is dropped, which cancels the listeners started so far.
            let listener = TcpListener::bind(SocketAddr::new(bind_ip, 0)).await?;
            let addr = listener.local_addr()?;
            let credentials = isp.topology.credentials_for(spec);
            tracing::debug!(router = %spec.id, %addr, "simulated router listening");
            isp.listeners.push(tokio::spawn(accept_loop(
                listener,
                Arc::new(model),
                Arc::new(credentials.clone()),
                isp.cancel.child_token(),
            )));
            isp.routers.push(RunningRouter {
                spec: spec.clone(),
                addr,
                credentials,
            });
        }
        Ok(isp)
    }

    /// The routers, in topology order, with the address each listens on.
    pub fn routers(&self) -> &[RunningRouter] {
        &self.routers
    }

    /// The router with this id.
    pub fn router(&self, id: &str) -> Option<&RunningRouter> {
        self.routers.iter().find(|r| r.spec.id == id)
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Stops every listener and closes every open session, then waits for them to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for handle in std::mem::take(&mut self.listeners) {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                tracing::warn!(error = %e, "a simulated router's listener panicked");
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

async fn accept_loop(
    listener: TcpListener,
    model: Arc<RouterModel>,
    credentials: Arc<Credentials>,
    cancel: CancellationToken,
) {
    let mut sessions = JoinSet::new();
    loop {
        // Reap sessions that ended so the set does not grow with every connection.
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                tracing::debug!(router = %model.spec.id, %peer, "API session opened");
                let _ = stream.set_nodelay(true);
                let session = Session::new(Arc::clone(&model), Arc::clone(&credentials));
                sessions.spawn(api_session::serve(stream, session, cancel.child_token()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(router = %model.spec.id, error = %e, "accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    // Sessions watch the same token and end on their own; abort any that do not.
    drop(listener);
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
