//! Relays: carry traffic the simulator does not serve itself (the server's ingest, the
//! agents' gossip) along the paths of the virtual network.
//!
//! A relay listens on a fresh loopback address in front of a real service standing at a
//! router of the topology (`dest_router`). What a client sends to the relay is passed on
//! only while a path joins the client's router (from its attached source address,
//! [`crate::attach`]) and `dest_router`, with the path's loss and delay, and the same
//! holds for what comes back. A client outside the model always gets through.
//!
//! - [`serve_udp`]: datagrams, NAT-like: one upstream socket per client address, so the
//!   service sees one peer per client and its replies find their way back; entries idle
//!   for [`UDP_IDLE`] go, and the table holds at most [`MAX_UDP_CLIENTS`]. QUIC (the
//!   server's ingest, gossip) runs over it unchanged.
//! - [`serve_tcp`]: streams (the HTTPS ingest): the upstream connection is opened only
//!   once a path exists (before that the client hears nothing, as behind a cut), bytes
//!   stop flowing in both directions while the path is down and each chunk waits out the
//!   path's delay. TCP retransmits what a lossy path drops, so TCP relays show delay,
//!   not loss.

use crate::api_session::PATH_RECHECK;
use crate::network::Network;
use crate::paths::PathQuality;
use crate::router_state::unix_seconds;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Clients one UDP relay keeps an upstream socket for. Past it, idle entries are evicted
/// first and datagrams of new clients are dropped while none is idle.
pub const MAX_UDP_CLIENTS: usize = 1_024;
/// A client that sent nothing for this long loses its upstream socket (QUIC keeps
/// idle connections alive well within it).
pub const UDP_IDLE: Duration = Duration::from_secs(120);
/// Largest datagram relayed (the largest UDP payload over IPv4).
pub const MAX_UDP_DATAGRAM: usize = 65_507;
/// Datagrams waiting out a path's delay at once, per relay; more are dropped, as a full
/// queue drops.
pub const MAX_DELAYED_DATAGRAMS: usize = 8_192;
/// Connections one TCP relay carries at once; more are closed at once.
pub const MAX_TCP_CONNECTIONS: usize = 256;
/// How long the upstream connection of a TCP relay may take.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a UDP relay looks for idle clients.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// The path between a peer and the relay's destination router, now.
fn path(net: &Network, peer: SocketAddr, dest_router: usize) -> Option<PathQuality> {
    net.reach(peer.ip(), dest_router, unix_seconds(SystemTime::now()))
        .quality()
}

/// Whether one datagram from or to `peer` crosses the path now; its one-way delay if so.
fn crosses(net: &Network, peer: SocketAddr, dest_router: usize) -> Option<Duration> {
    let q = path(net, peer, dest_router)?;
    (!q.drops()).then_some(q.delay)
}

/// Sends `datagram` to `to` through `socket` after `delay`: at once when there is none,
/// else from a task of its own (bounded by `delayed`; dropped when the queue is full).
async fn send_after(
    socket: &Arc<UdpSocket>,
    datagram: &[u8],
    to: Option<SocketAddr>,
    delay: Duration,
    delayed: &Arc<Semaphore>,
    cancel: &CancellationToken,
) {
    if delay.is_zero() {
        let _ = match to {
            Some(to) => socket.send_to(datagram, to).await,
            None => socket.send(datagram).await,
        };
        return;
    }
    let Ok(permit) = Arc::clone(delayed).try_acquire_owned() else {
        return;
    };
    let (socket, datagram, cancel) = (Arc::clone(socket), datagram.to_vec(), cancel.clone());
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let _ = match to {
            Some(to) => socket.send_to(&datagram, to).await,
            None => socket.send(&datagram).await,
        };
    });
}

/// One client of a UDP relay.
struct UdpClient {
    upstream: Arc<UdpSocket>,
    last_seen: Instant,
    /// Carries the destination's replies back to the client.
    back: JoinHandle<()>,
}

impl Drop for UdpClient {
    fn drop(&mut self) {
        self.back.abort();
    }
}

/// What a UDP relay needs to know.
pub(crate) struct UdpRelay {
    pub front: UdpSocket,
    pub dest: SocketAddr,
    pub dest_router: usize,
    pub net: Arc<Network>,
    pub cancel: CancellationToken,
}

/// Relays datagrams between clients of `front` and `dest` until cancelled.
pub(crate) async fn serve_udp(relay: UdpRelay) {
    let UdpRelay {
        front,
        dest,
        dest_router,
        net,
        cancel,
    } = relay;
    let front = Arc::new(front);
    let upstream_ip = front
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let delayed = Arc::new(Semaphore::new(MAX_DELAYED_DATAGRAMS));
    let mut clients: HashMap<SocketAddr, UdpClient> = HashMap::new();
    let mut buf = vec![0u8; MAX_UDP_DATAGRAM];
    let mut reap = tokio::time::interval(REAP_EVERY);
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            _ = reap.tick() => {
                clients.retain(|_, c| c.last_seen.elapsed() < UDP_IDLE);
                continue;
            }
            r = front.recv_from(&mut buf) => r,
        };
        let (n, client) = match received {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(%dest, error = %e, "relay receive failed");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
        };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        let Some(delay) = crosses(&net, client, dest_router) else {
            continue;
        };
        if !clients.contains_key(&client) {
            if clients.len() >= MAX_UDP_CLIENTS {
                clients.retain(|_, c| c.last_seen.elapsed() < UDP_IDLE);
            }
            if clients.len() >= MAX_UDP_CLIENTS {
                tracing::debug!(%dest, %client, "relay table full: datagram dropped");
                continue;
            }
            let upstream = match UdpSocket::bind(SocketAddr::new(upstream_ip, 0)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%dest, error = %e, "relay cannot open an upstream socket");
                    continue;
                }
            };
            if let Err(e) = upstream.connect(dest).await {
                tracing::warn!(%dest, error = %e, "relay cannot address the destination");
                continue;
            }
            let upstream = Arc::new(upstream);
            let back = tokio::spawn(carry_back(Back {
                upstream: Arc::clone(&upstream),
                front: Arc::clone(&front),
                client,
                dest_router,
                net: Arc::clone(&net),
                delayed: Arc::clone(&delayed),
                cancel: cancel.clone(),
            }));
            clients.insert(
                client,
                UdpClient {
                    upstream,
                    last_seen: Instant::now(),
                    back,
                },
            );
        }
        let Some(entry) = clients.get_mut(&client) else {
            continue;
        };
        entry.last_seen = Instant::now();
        let upstream = Arc::clone(&entry.upstream);
        send_after(&upstream, datagram, None, delay, &delayed, &cancel).await;
    }
}

/// The return direction of one UDP relay client.
struct Back {
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    dest_router: usize,
    net: Arc<Network>,
    delayed: Arc<Semaphore>,
    cancel: CancellationToken,
}

async fn carry_back(back: Back) {
    let mut buf = vec![0u8; MAX_UDP_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = back.cancel.cancelled() => return,
            r = back.upstream.recv(&mut buf) => r,
        };
        let n = match received {
            Ok(n) => n,
            // An ICMP "port unreachable" from a destination that is not listening (yet):
            // the socket stays usable.
            Err(_) => {
                tokio::select! {
                    () = back.cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
        };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        let Some(delay) = crosses(&back.net, back.client, back.dest_router) else {
            continue;
        };
        send_after(
            &back.front,
            datagram,
            Some(back.client),
            delay,
            &back.delayed,
            &back.cancel,
        )
        .await;
    }
}

/// What a TCP relay needs to know.
pub(crate) struct TcpRelay {
    pub listener: TcpListener,
    pub dest: SocketAddr,
    pub dest_router: usize,
    pub net: Arc<Network>,
    pub cancel: CancellationToken,
}

/// Relays connections to `listener` to `dest` until cancelled.
pub(crate) async fn serve_tcp(relay: TcpRelay) {
    let TcpRelay {
        listener,
        dest,
        dest_router,
        net,
        cancel,
    } = relay;
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, client)) => {
                if connections.len() >= MAX_TCP_CONNECTIONS {
                    tracing::debug!(%dest, %client, "TCP relay full: connection closed");
                    continue;
                }
                connections.spawn(carry_tcp(
                    stream,
                    client,
                    dest,
                    dest_router,
                    Arc::clone(&net),
                    cancel.clone(),
                ));
            }
            Err(e) => {
                tracing::debug!(%dest, error = %e, "TCP relay accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    connections.shutdown().await;
}

/// Waits until a path joins `client` and the destination; `false` when cancelled.
async fn path_up(
    net: &Network,
    client: SocketAddr,
    dest_router: usize,
    cancel: &CancellationToken,
) -> Option<PathQuality> {
    loop {
        if let Some(q) = path(net, client, dest_router) {
            return Some(q);
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(PATH_RECHECK) => {}
        }
    }
}

async fn carry_tcp(
    stream: TcpStream,
    client: SocketAddr,
    dest: SocketAddr,
    dest_router: usize,
    net: Arc<Network>,
    cancel: CancellationToken,
) {
    // Behind a broken path the client's handshake would never have arrived: open
    // nothing upstream and answer nothing until the path is there, but notice if the
    // client gives up.
    loop {
        if path(&net, client, dest_router).is_some() {
            break;
        }
        let mut probe = [0u8; 1];
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(PATH_RECHECK) => {}
            r = stream.peek(&mut probe) => match r {
                Ok(0) | Err(_) => return,
                // Data waits in the kernel; only the path matters now.
                Ok(_) => {
                    if path_up(&net, client, dest_router, &cancel).await.is_none() {
                        return;
                    }
                    break;
                }
            },
        }
    }
    let upstream = match tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(dest)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%dest, error = %e, "TCP relay cannot reach the destination");
            return;
        }
        Err(_) => return,
    };
    let _ = upstream.set_nodelay(true);
    let _ = stream.set_nodelay(true);
    let (client_rd, client_wr) = stream.into_split();
    let (up_rd, up_wr) = upstream.into_split();
    let forward = pump(client_rd, up_wr, client, dest_router, &net, &cancel);
    let backward = pump(up_rd, client_wr, client, dest_router, &net, &cancel);
    let _ = tokio::join!(forward, backward);
}

/// Copies `from` to `to` chunk by chunk, each chunk waiting for the path and its delay.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    client: SocketAddr,
    dest_router: usize,
    net: &Network,
    cancel: &CancellationToken,
) -> io::Result<()> {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            r = from.read(&mut chunk) => r?,
        };
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        let Some(q) = path_up(net, client, dest_router, cancel).await else {
            return Ok(());
        };
        if !q.delay.is_zero() {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(q.delay) => {}
            }
        }
        to.write_all(chunk.get(..n).unwrap_or_default()).await?;
    }
}
